//! Key provider `pbkdf2`: derives a key from a passphrase (or a chained provider's key) with
//! PBKDF2-HMAC-SHA256/512 and a random salt stored in the metadata.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::{KeyProvider, Provided, ProviderError, Purpose};
use stateseal_core::secret::keys_from_value;
use stateseal_core::secret::{Keys, Secret};

pub const DEFAULT_ITERATIONS: i64 = 600_000;
pub const MIN_ITERATIONS: i64 = 200_000;
pub const DEFAULT_KEY_LENGTH: i64 = 32;
pub const DEFAULT_SALT_LENGTH: i64 = 32;
pub const MIN_PASSPHRASE_LENGTH: usize = 16;
/// OpenTofu puts no upper bound on the work factor stored in metadata; whoever can write the
/// envelope could make every reader spin. We refuse stored values above this.
pub const MAX_STORED_ITERATIONS: i64 = 20_000_000;
/// Likewise for the stored key length.
pub const MAX_STORED_KEY_LENGTH: i64 = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn parse(s: &str) -> Result<Hash, String> {
        match s {
            "sha256" => Ok(Hash::Sha256),
            "sha512" => Ok(Hash::Sha512),
            // OpenTofu's message for a blank name (checked against tofu 1.8.11 and 1.12.6).
            "" => Err("invalid key provider configuration: please specify a hash function".into()),
            other => Err(format!(
                "invalid key provider configuration: invalid hash function name: {other}"
            )),
        }
    }

    fn algorithm(self) -> ring::pbkdf2::Algorithm {
        match self {
            Hash::Sha256 => ring::pbkdf2::PBKDF2_HMAC_SHA256,
            Hash::Sha512 => ring::pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha512 => "sha512",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    passphrase: Option<String>,
    chain: Option<serde_json::Value>,
    key_length: Option<IntLike>,
    iterations: Option<IntLike>,
    hash_function: Option<String>,
    salt_length: Option<IntLike>,
}

/// HCL numbers, or strings holding a whole number (HCL converts those).
#[derive(Deserialize)]
#[serde(untagged)]
enum IntLike {
    Int(i64),
    Str(String),
}

impl IntLike {
    fn get(&self, name: &str) -> Result<i64, String> {
        match self {
            IntLike::Int(i) => Ok(*i),
            IntLike::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("{name} must be a whole number, got {s:?}")),
        }
    }
}

enum Source {
    Passphrase(Secret),
    Chain(Keys),
}

/// A configured pbkdf2 provider.
pub struct Pbkdf2 {
    source: Source,
    key_length: usize,
    iterations: NonZeroU32,
    hash: Hash,
    salt_length: usize,
}

/// The metadata stored in the envelope, fields in OpenTofu's order.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq, Eq)]
pub struct Metadata {
    #[serde(default, with = "stateseal_core::gojson::bytes")]
    pub salt: Vec<u8>,
    #[serde(default)]
    pub iterations: i64,
    #[serde(default)]
    pub hash_function: String,
    #[serde(default)]
    pub key_length: i64,
}

/// Builds the provider from its configuration.
pub fn build(config: &serde_json::Value) -> Result<Box<dyn KeyProvider>, crate::ConfigError> {
    let c: Config = super::decode_config(config)?;
    // A blank passphrase is no passphrase, as in OpenTofu (`c.Passphrase == ""`).
    let passphrase = c.passphrase.filter(|p| !p.is_empty());
    let source = match (passphrase, c.chain) {
        (Some(_), Some(_)) => return Err("passphrase and chain are mutually exclusive".into()),
        (None, None) => return Err("no passphrase provided and no chained provider defined".into()),
        (Some(p), None) => {
            let p = Secret::new(p.into_bytes());
            if p.len() < MIN_PASSPHRASE_LENGTH {
                return Err(crate::ConfigError::from(format!(
                    "passphrase is too short (minimum {MIN_PASSPHRASE_LENGTH} characters)"
                )));
            }
            Source::Passphrase(p)
        }
        (None, Some(chain)) => {
            let keys = keys_from_value(&chain).map_err(|e| format!("chain: {e}"))?;
            for (what, k) in [
                ("encryption", &keys.encryption_key),
                ("decryption", &keys.decryption_key),
            ] {
                if k.as_ref().is_some_and(|k| k.len() < MIN_PASSPHRASE_LENGTH) {
                    return Err(crate::ConfigError::from(format!(
                        "the chained key provider's {what} key is too short (minimum {MIN_PASSPHRASE_LENGTH} characters)"
                    )));
                }
            }
            Source::Chain(keys)
        }
    };
    let key_length = c
        .key_length
        .map(|v| v.get("key_length"))
        .transpose()?
        .unwrap_or(DEFAULT_KEY_LENGTH);
    if key_length <= 0 {
        return Err("the key length must be larger than zero".into());
    }
    let iterations = c
        .iterations
        .map(|v| v.get("iterations"))
        .transpose()?
        .unwrap_or(DEFAULT_ITERATIONS);
    if iterations <= 0 {
        return Err("the number of iterations must be larger than zero".into());
    }
    if iterations < MIN_ITERATIONS {
        return Err(crate::ConfigError::from(format!(
            "the number of iterations is dangerously low (<{MIN_ITERATIONS}), refusing to generate key"
        )));
    }
    let salt_length = c
        .salt_length
        .map(|v| v.get("salt_length"))
        .transpose()?
        .unwrap_or(DEFAULT_SALT_LENGTH);
    if salt_length <= 0 {
        return Err("the salt length must be larger than zero".into());
    }
    let hash = Hash::parse(c.hash_function.as_deref().unwrap_or("sha512"))?;
    Ok(Box::new(Pbkdf2 {
        source,
        key_length: usize::try_from(key_length)
            .map_err(|_| "key_length is too large".to_string())?,
        iterations: NonZeroU32::new(
            u32::try_from(iterations).map_err(|_| "iterations is too large".to_string())?,
        )
        .expect("checked > 0"),
        hash,
        salt_length: usize::try_from(salt_length)
            .map_err(|_| "salt_length is too large".to_string())?,
    }))
}

/// One PBKDF2 derivation.
pub fn derive(
    hash: Hash,
    passphrase: &[u8],
    salt: &[u8],
    iterations: NonZeroU32,
    key_length: usize,
) -> Secret {
    let mut out = vec![0u8; key_length];
    ring::pbkdf2::derive(hash.algorithm(), iterations, salt, passphrase, &mut out);
    Secret::new(out)
}

impl Pbkdf2 {
    fn passphrase(&self, purpose: Purpose<'_>) -> Result<Option<&Secret>, ProviderError> {
        match (&self.source, purpose) {
            (Source::Passphrase(p), _) => Ok(Some(p)),
            (Source::Chain(k), Purpose::Encrypt) => match &k.encryption_key {
                Some(k) => Ok(Some(k)),
                None => Err(ProviderError::Failed(
                    "no encryption key provided from upstream key provider".into(),
                )),
            },
            (Source::Chain(k), Purpose::Decrypt { .. }) => Ok(k.decryption_key.as_ref()),
        }
    }
}

impl KeyProvider for Pbkdf2 {
    fn provide(&self, purpose: Purpose<'_>) -> Result<Provided, ProviderError> {
        let passphrase = self.passphrase(purpose)?;
        match purpose {
            Purpose::Encrypt => {
                let passphrase = passphrase.expect("checked above");
                let mut salt = vec![0u8; self.salt_length];
                crate::randomness::fill(&mut salt).map_err(ProviderError::Failed)?;
                let key = derive(
                    self.hash,
                    passphrase.expose(),
                    &salt,
                    self.iterations,
                    self.key_length,
                );
                let meta = Metadata {
                    salt,
                    iterations: i64::from(self.iterations.get()),
                    hash_function: self.hash.name().into(),
                    key_length: self.key_length as i64,
                };
                Ok(Provided {
                    keys: Keys {
                        encryption_key: Some(key),
                        decryption_key: None,
                    },
                    metadata: Some(serde_json::to_vec(&meta).expect("metadata serializes")),
                })
            }
            Purpose::Decrypt { stored } => {
                let decryption_key = match (stored, passphrase) {
                    (Some(stored), Some(passphrase)) => decryption_key(stored, passphrase)?,
                    _ => None,
                };
                Ok(Provided {
                    keys: Keys {
                        encryption_key: None,
                        decryption_key,
                    },
                    metadata: None,
                })
            }
        }
    }
}

/// Derives the decryption key from stored metadata, or `None` if the metadata is not "present"
/// (OpenTofu's rule: salt, iterations, hash and key length must all be set).
fn decryption_key(stored: &[u8], passphrase: &Secret) -> Result<Option<Secret>, ProviderError> {
    let meta: Metadata =
        serde_json::from_slice(stored).map_err(|e| ProviderError::Metadata(e.to_string()))?;
    let (params, present) = meta
        .validate()
        .map_err(|e| ProviderError::Metadata(e.to_string()))?;
    if !present {
        return Ok(None);
    }
    let (hash, iterations, key_length) = params;
    Ok(Some(derive(
        hash,
        passphrase.expose(),
        &meta.salt,
        iterations,
        key_length,
    )))
}

impl Metadata {
    /// Checks stored parameters; returns them and whether the metadata is "present".
    #[allow(clippy::type_complexity)]
    pub fn validate(&self) -> Result<((Hash, NonZeroU32, usize), bool), MetadataError> {
        if self.iterations < 0 {
            return Err(MetadataError::NegativeIterations(self.iterations));
        }
        if self.key_length < 0 {
            return Err(MetadataError::NegativeKeyLength(self.key_length));
        }
        if self.iterations > MAX_STORED_ITERATIONS {
            return Err(MetadataError::TooManyIterations(self.iterations));
        }
        if self.key_length > MAX_STORED_KEY_LENGTH {
            return Err(MetadataError::KeyTooLong(self.key_length));
        }
        // OpenTofu's "present": every parameter set. None set is metadata that is not there (no
        // key: the next method is tried); some set and some not is invalid, and names them.
        let unset: Vec<&str> = [
            (self.salt.is_empty(), "salt is empty"),
            (self.iterations == 0, "iterations=0"),
            (self.hash_function.is_empty(), "hash_function is empty"),
            (self.key_length == 0, "key_length=0"),
        ]
        .into_iter()
        .filter_map(|(unset, what)| unset.then_some(what))
        .collect();
        if !unset.is_empty() && unset.len() < 4 {
            return Err(MetadataError::PartlySet(unset));
        }
        let present = unset.is_empty();
        let hash = if self.hash_function.is_empty() {
            Hash::Sha512
        } else {
            Hash::parse(&self.hash_function).map_err(MetadataError::Hash)?
        };
        let iterations = NonZeroU32::new(self.iterations.max(1) as u32).expect("max(1)");
        Ok(((hash, iterations, self.key_length.max(0) as usize), present))
    }
}

/// Why stored pbkdf2 metadata is refused (it is read from the file, so it is input: exit 5).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("invalid iterations in stored metadata: {0}")]
    NegativeIterations(i64),
    #[error("invalid key length in stored metadata: {0}")]
    NegativeKeyLength(i64),
    #[error("stored metadata asks for {0} pbkdf2 iterations, above the safety limit of {MAX_STORED_ITERATIONS}")]
    TooManyIterations(i64),
    #[error("stored key length {0} is above the limit of {MAX_STORED_KEY_LENGTH}")]
    KeyTooLong(i64),
    /// Some parameters set and some not: the unset ones, in OpenTofu's words.
    #[error("invalid pbkdf2 parameters in stored metadata: {} (each must be set, and above zero, when the others are)", .0.join(", "))]
    PartlySet(Vec<&'static str>),
    /// An unknown `hash_function` (the parser's words).
    #[error("{0}")]
    Hash(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// OpenTofu's `Example_decrypt` known-answer vector (keyprovider/pbkdf2/example_decrypt_test.go).
    #[test]
    fn opentofu_known_answer_vector() {
        let p = build(&json!({"passphrase": "correct-horse-battery-staple"})).unwrap();
        let meta = Metadata {
            salt: hex("10ec3d3fe02ad2bee6f1f5540f8e6bbe3b8b29445cf502d27d47ad554aa8971f"),
            iterations: 600000,
            hash_function: "sha512".into(),
            key_length: 32,
        };
        let stored = serde_json::to_vec(&meta).unwrap();
        let got = p
            .provide(Purpose::Decrypt {
                stored: Some(&stored),
            })
            .unwrap();
        assert_eq!(
            got.keys.decryption_key.unwrap().expose(),
            hex("225872367198760137e0a18580433447bbf578fbe2b87ff36aef3c175fe5709c").as_slice()
        );
    }

    #[test]
    fn encryption_key_is_reproduced_from_its_metadata() {
        let p = build(&json!({"passphrase": "a passphrase of some length", "iterations": 200000, "hash_function": "sha256", "key_length": 16, "salt_length": 12})).unwrap();
        let enc = p.provide(Purpose::Encrypt).unwrap();
        let meta = enc.metadata.unwrap();
        let parsed: Metadata = serde_json::from_slice(&meta).unwrap();
        assert_eq!(
            (
                parsed.salt.len(),
                parsed.iterations,
                parsed.hash_function.as_str(),
                parsed.key_length
            ),
            (12, 200000, "sha256", 16)
        );
        assert!(String::from_utf8(meta.clone())
            .unwrap()
            .starts_with("{\"salt\":"));
        let dec = p
            .provide(Purpose::Decrypt {
                stored: Some(&meta),
            })
            .unwrap();
        assert_eq!(enc.keys.encryption_key, dec.keys.decryption_key);
    }

    #[test]
    fn configuration_limits_have_opentofu_messages() {
        let err = |v| build(&v).err().unwrap().to_string();
        assert_eq!(
            err(json!({"passphrase": "short"})),
            "passphrase is too short (minimum 16 characters)"
        );
        assert_eq!(
            err(json!({})),
            "no passphrase provided and no chained provider defined"
        );
        // Blank values: what tofu 1.12.6 says (testdata/tofu-parity/05-…, 08-…).
        assert_eq!(
            err(json!({"passphrase": ""})),
            "no passphrase provided and no chained provider defined"
        );
        assert_eq!(
            err(json!({"passphrase": "x".repeat(16), "hash_function": ""})),
            "invalid key provider configuration: please specify a hash function"
        );
        assert_eq!(
            err(json!({"passphrase": "x".repeat(16), "iterations": 1000})),
            "the number of iterations is dangerously low (<200000), refusing to generate key"
        );
        assert_eq!(
            err(json!({"passphrase": "x".repeat(16), "hash_function": "sha1"})),
            "invalid key provider configuration: invalid hash function name: sha1"
        );
        assert_eq!(
            err(json!({"passphrase": "x".repeat(16), "key_length": 0})),
            "the key length must be larger than zero"
        );
        assert_eq!(
            err(json!({"passphrase": "x".repeat(16), "salt_length": -1})),
            "the salt length must be larger than zero"
        );
        assert!(err(json!({"passphrase": "x".repeat(16), "bogus": 1}))
            .contains("unknown field `bogus`"));
        assert_eq!(
            err(
                json!({"passphrase": "x".repeat(16), "chain": {"encryption_key": [1], "decryption_key": null}})
            ),
            "passphrase and chain are mutually exclusive"
        );
    }

    #[test]
    fn metadata_presence_and_stored_limits() {
        let p = build(&json!({"passphrase": "x".repeat(16)})).unwrap();
        let absent = p
            .provide(Purpose::Decrypt {
                stored: Some(b"{}"),
            })
            .unwrap();
        assert!(absent.keys.decryption_key.is_none());
        let dos =
            br#"{"salt":"AA==","iterations":2000000000,"hash_function":"sha512","key_length":32}"#;
        assert!(
            matches!(p.provide(Purpose::Decrypt { stored: Some(dos) }), Err(ProviderError::Metadata(m)) if m.contains("safety limit"))
        );
        for (partial, named) in [
            (
                &br#"{"salt":"AA==","iterations":0,"hash_function":"sha512","key_length":32}"#[..],
                "iterations=0",
            ),
            (
                br#"{"salt":"AA==","iterations":600000,"hash_function":"sha512","key_length":0}"#,
                "key_length=0",
            ),
            (
                br#"{"salt":"","iterations":0,"hash_function":"sha512","key_length":32}"#,
                "salt is empty, iterations=0",
            ),
        ] {
            assert!(
                matches!(p.provide(Purpose::Decrypt { stored: Some(partial) }), Err(ProviderError::Metadata(m)) if m.contains(named)),
                "{named}"
            );
        }
        let bad = br#"{"salt":"AA==","iterations":-1,"hash_function":"sha512","key_length":32}"#;
        assert!(matches!(
            p.provide(Purpose::Decrypt { stored: Some(bad) }),
            Err(ProviderError::Metadata(_))
        ));
        assert!(matches!(
            p.provide(Purpose::Decrypt { stored: Some(b"[") }),
            Err(ProviderError::Metadata(_))
        ));
    }

    #[test]
    fn chain_uses_upstream_keys() {
        let up: Vec<u8> = (1..=16).collect();
        let p = build(
            &json!({"chain": {"encryption_key": up, "decryption_key": up}, "iterations": 200000}),
        )
        .unwrap();
        let enc = p.provide(Purpose::Encrypt).unwrap();
        let dec = p
            .provide(Purpose::Decrypt {
                stored: enc.metadata.as_deref(),
            })
            .unwrap();
        assert_eq!(enc.keys.encryption_key, dec.keys.decryption_key);
        let short = build(&json!({"chain": {"encryption_key": [1, 2, 3], "decryption_key": null}}))
            .err()
            .unwrap()
            .to_string();
        assert!(short.contains("too short"), "{short}");
    }
}
