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
