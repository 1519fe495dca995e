//! Secret byte strings: key material and passphrases. Zeroized on drop, redacted in `Debug`.

use zeroize::{Zeroize, Zeroizing};

/// Secret bytes (a key or a passphrase). The contents never appear in `Debug` output and are wiped
/// from memory when the value is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Self {
        Secret::new(v)
    }
}

impl From<&[u8]> for Secret {
    fn from(v: &[u8]) -> Self {
        Secret::new(v.to_vec())
    }
}

/// Deserializes from a string (a secret key, token or passphrase in configuration).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Secret::new(s.into_bytes()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

/// The pair of keys a key provider hands to a method. In configuration this is the object
/// `{encryption_key = list(number), decryption_key = list(number)}`; an absent key is `null`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub encryption_key: Option<Secret>,
    pub decryption_key: Option<Secret>,
}

/// Why a `keys` value is not one.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// Not an object of byte lists (`message`: the decoder's words; never a key byte).
    #[error("invalid keys value: {0}")]
    Invalid(String),
    /// The `encryption_key` attribute is absent (it must be present, `null` when the keys were
    /// produced only for decryption).
    #[error("Missing encryption_key value")]
    MissingEncryptionKey,
}

/// The `keys` object as configured: `{encryption_key = [bytes], decryption_key = [bytes]}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysValue {
    /// Outer `None`: the attribute is missing; inner `None`: it is `null`.
    #[serde(default, deserialize_with = "present")]
    encryption_key: Option<Option<Vec<u8>>>,
    #[serde(default)]
    decryption_key: Option<Vec<u8>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Vec<u8>>>, D::Error> {
    <Option<Vec<u8>> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Reads a `keys` value (a key provider's output or a literal object). The `encryption_key`
/// attribute must be present (it is `null` when the keys were produced only for decryption).
pub fn keys_from_value(v: &serde_json::Value) -> Result<Keys, KeysError> {
    let k = <KeysValue as serde::Deserialize>::deserialize(v)
        .map_err(|e| KeysError::Invalid(e.to_string()))?;
    let Some(enc) = k.encryption_key else {
        return Err(KeysError::MissingEncryptionKey);
    };
    Ok(Keys {
        encryption_key: enc.filter(|k| !k.is_empty()).map(Secret::new),
        decryption_key: k.decryption_key.filter(|k| !k.is_empty()).map(Secret::new),
    })
}

/// Wipes every string and number in a JSON value (used for evaluated configuration bodies, which
/// can hold passphrases and key bytes).
pub fn scrub_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Number(_) => *v = serde_json::Value::Null,
        serde_json::Value::Array(a) => a.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(scrub_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = Secret::from(b"correct-horse-battery-staple".as_slice());
        let shown = format!(
            "{s:?} {:?}",
            Keys {
                encryption_key: Some(s.clone()),
                decryption_key: None
            }
        );
        assert!(!shown.contains("horse"), "{shown}");
        assert!(!shown.contains("99"), "{shown}"); // 'c' = 99: no byte values either
        assert!(shown.contains("redacted"));
    }
}
