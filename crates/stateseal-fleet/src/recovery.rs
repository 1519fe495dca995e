//! Recovery keys inside OpenTofu's own envelopes: the data-key wraps that `stateseal
//! keyprovider` (an OpenTofu `external` key provider) stores in the envelope's
//! `external_data`, and the two ways back to the data key — a KMS key, or an offline age
//! identity (the recovery key).
//!
//! Why here: the same layout is written by the key provider and read by `dr drill`, which
//! must recover a state with the identity alone (no KMS call), so both sit beside each other.
//!
//! The layout (version 1), stored by OpenTofu as `meta["key_provider.external.<name>"] =
//! {"external_data": …}`:
//!
//! ```json
//! {"stateseal_recovery": 1,
//!  "wraps": [
//!    {"type": "aws_kms", "key_id": "arn:aws:kms:…", "ciphertext": "<base64 KMS ciphertext blob>"},
//!    {"type": "age", "recipient": "age1…", "ciphertext": "<base64 binary age file>"}]}
//! ```
//!
//! Every wrap holds the same 32-byte data key; any one of them recovers it (OR). Only public
//! recipients and key IDs are stored. Data keys are [`Secret`]s (zeroized on drop) and never
//! appear in an error.

use std::fmt;
use std::io::Read;

use base64::Engine;
use serde::{Deserialize, Serialize};
use stateseal_core::secret::Secret;
use stateseal_core::ServiceErrorKind;

/// The layout version this build writes and reads.
pub const LAYOUT_VERSION: u64 = 1;

/// The bytes of a data key.
pub const DATA_KEY_LEN: usize = 32;

/// The `external_data` object the key provider stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalData {
    pub stateseal_recovery: u64,
    pub wraps: Vec<Wrap>,
}

/// One wrap of the data key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Wrap {
    /// Encrypted by AWS KMS (`Encrypt`) under `key_id`.
    AwsKms { key_id: String, ciphertext: String },
    /// Encrypted to an age X25519 recipient.
    Age {
        recipient: String,
        ciphertext: String,
    },
}

impl Wrap {
    /// The key ARN or the age recipient: what the wrap is for.
    pub fn target(&self) -> &str {
        match self {
            Wrap::AwsKms { key_id, .. } => key_id,
            Wrap::Age { recipient, .. } => recipient,
        }
    }
}

/// Why a recovery step failed. Names the recipient or key; never holds key material.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The stored `external_data` is not this layout (modified, or another program's).
    Damaged { reason: String },
    /// An `--recipient` value is not an age X25519 public key.
    BadRecipient { recipient: String },
    /// The identity file cannot be read or holds no age X25519 identity.
    Identity { path: String, reason: String },
    /// None of the identities matches an age wrap (the recipients are listed).
    IdentityMismatch { recipients: Vec<String> },
    /// The envelope has no age wrap at all: nothing an identity could open.
    NoRecoveryRecipient,
    /// KMS refused or failed for this key.
    Kms {
        key_id: String,
        kind: ServiceErrorKind,
        disabled: bool,
        detail: String,
    },
    /// Neither KMS nor an identity was available to try.
    NoPath,
    /// The operating system's random source failed, or age could not encrypt.
    Sealing { reason: String },
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryError::Damaged { reason } => {
                write!(f, "the stored external_data is damaged: {reason}")
            }
            RecoveryError::BadRecipient { recipient } => write!(
                f,
                "recipient {recipient:?} is not an age X25519 public key (age1…)"
            ),
            RecoveryError::Identity { path, reason } => {
                write!(f, "recovery identity {path}: {reason}")
            }
            RecoveryError::IdentityMismatch { recipients } => write!(
                f,
                "the recovery identity matches none of the state's recipients ({})",
                recipients.join(", ")
            ),
            RecoveryError::NoRecoveryRecipient => {
                write!(f, "no recovery recipient: the state has no age wrap")
            }
            RecoveryError::Kms {
                key_id,
                kind,
                disabled,
                detail,
            } => {
                let why = if *disabled {
                    "the key is disabled".to_string()
                } else {
                    match kind {
                        ServiceErrorKind::AccessDenied => "access denied".to_string(),
                        ServiceErrorKind::Network => "KMS is unreachable".to_string(),
                        ServiceErrorKind::Throttled => "KMS is throttling".to_string(),
                        ServiceErrorKind::NotFound => "the key does not exist".to_string(),
                        _ => "KMS failed".to_string(),
                    }
                };
                write!(f, "KMS key {key_id}: {why} ({detail})")
            }
            RecoveryError::NoPath => write!(
                f,
                "no way to the data key: the state has no KMS wrap and no recovery identity is set"
            ),
            RecoveryError::Sealing { reason } => write!(f, "could not wrap the data key: {reason}"),
        }
    }
}

impl std::error::Error for RecoveryError {}

/// A fresh random data key.
pub fn new_data_key() -> Result<Secret, RecoveryError> {
    let mut key = vec![0u8; DATA_KEY_LEN];
    use ring::rand::SecureRandom as _;
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| RecoveryError::Sealing {
            reason: "the operating system's random source failed".into(),
        })?;
    Ok(Secret::new(key))
}

/// Parses age recipients (`age1…`), naming the first bad one.
pub fn parse_recipients(
    values: &[String],
) -> Result<Vec<(String, age::x25519::Recipient)>, RecoveryError> {
    values
        .iter()
        .map(|v| {
            v.trim()
                .parse::<age::x25519::Recipient>()
                .map(|r| (v.trim().to_string(), r))
                .map_err(|_| RecoveryError::BadRecipient {
                    recipient: v.clone(),
                })
        })
        .collect()
}

/// Reads an age identity file: `AGE-SECRET-KEY-1…` lines; `#` comments and blank lines are
/// skipped; anything else is an error (naming the line, never its content).
pub fn read_identities(path: &str) -> Result<Vec<age::x25519::Identity>, RecoveryError> {
    let fail = |reason: String| RecoveryError::Identity {
        path: path.to_string(),
        reason,
    };
    let mut text = zeroize::Zeroizing::new(String::new());
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = line
            .parse::<age::x25519::Identity>()
            .map_err(|_| fail(format!("line {} is not an age X25519 identity", n + 1)))?;
        out.push(id);
    }
    if out.is_empty() {
        return Err(fail("it holds no age identity (AGE-SECRET-KEY-1…)".into()));
    }
    Ok(out)
}

/// Wraps `key` to every age recipient.
pub fn wrap_age(
    key: &Secret,
    recipients: &[(String, age::x25519::Recipient)],
) -> Result<Vec<Wrap>, RecoveryError> {
    recipients
        .iter()
        .map(|(text, r)| {
            let sealed = age::encrypt(r, key.expose()).map_err(|e| RecoveryError::Sealing {
                reason: format!("age recipient {text}: {e}"),
            })?;
            Ok(Wrap::Age {
                recipient: text.clone(),
                ciphertext: b64().encode(sealed),
            })
        })
        .collect()
}

/// Opens the data key with the identities alone (no KMS call): the first age wrap one of them
/// decrypts. Returns the key and the recipient whose wrap opened it.
pub fn open_with_identities(
    data: &ExternalData,
    identities: &[age::x25519::Identity],
) -> Result<(Secret, String), RecoveryError> {
    let mut recipients = Vec::new();
    for w in &data.wraps {
        let Wrap::Age {
            recipient,
            ciphertext,
        } = w
        else {
            continue;
        };
        recipients.push(recipient.clone());
        let sealed = b64()
            .decode(ciphertext)
            .map_err(|e| RecoveryError::Damaged {
                reason: format!("age wrap for {recipient}: {e}"),
            })?;
        for id in identities {
            if let Ok(key) = age::decrypt(id, &sealed) {
                let key = Secret::new(key);
                check_len(&key, recipient)?;
                return Ok((key, recipient.clone()));
            }
        }
    }
    if recipients.is_empty() {
        return Err(RecoveryError::NoRecoveryRecipient);
    }
    Err(RecoveryError::IdentityMismatch { recipients })
}

fn check_len(key: &Secret, from: &str) -> Result<(), RecoveryError> {
    if key.len() != DATA_KEY_LEN {
        return Err(RecoveryError::Damaged {
            reason: format!(
                "the wrap for {from} holds {} bytes, not a {DATA_KEY_LEN}-byte data key",
                key.len()
            ),
        });
    }
    Ok(())
}

impl ExternalData {
    /// The layout around the given wraps.
    pub fn new(wraps: Vec<Wrap>) -> ExternalData {
        ExternalData {
            stateseal_recovery: LAYOUT_VERSION,
            wraps,
        }
    }

    /// Reads the layout from the stored `external_data` value.
    pub fn from_value(v: &serde_json::Value) -> Result<ExternalData, RecoveryError> {
        let data: ExternalData =
            serde_json::from_value(v.clone()).map_err(|e| RecoveryError::Damaged {
                reason: format!("not stateseal's recovery layout: {e}"),
            })?;
        if data.stateseal_recovery != LAYOUT_VERSION {
            return Err(RecoveryError::Damaged {
                reason: format!(
                    "layout version {} (this stateseal reads {LAYOUT_VERSION})",
                    data.stateseal_recovery
                ),
            });
        }
        if data.wraps.is_empty() {
            return Err(RecoveryError::Damaged {
                reason: "it holds no wrap".into(),
            });
        }
        Ok(data)
    }

    /// Whether any wrap is for an age recipient.
    pub fn has_recovery_recipient(&self) -> bool {
        self.wraps.iter().any(|w| matches!(w, Wrap::Age { .. }))
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// KMS wraps, behind the AWS SDK.
pub mod kms {
    use super::*;
    use aws_sdk_kms::primitives::Blob;

    /// A KMS client per region, built once from the standard credential chain, with
    /// `AWS_ENDPOINT_URL_KMS` (or `AWS_ENDPOINT_URL`) as the endpoint when set.
    pub struct Kms {
        default_region: Option<String>,
        clients: std::sync::Mutex<std::collections::HashMap<Option<String>, aws_sdk_kms::Client>>,
    }

    impl Kms {
        pub fn from_env() -> Kms {
            let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
            Kms {
                default_region: region,
                clients: Default::default(),
            }
        }

        /// The region in a key ARN, else the environment's.
        fn region_for(&self, key_id: &str) -> Option<String> {
            let parts: Vec<&str> = key_id.split(':').collect();
            if parts.len() > 3 && parts[0] == "arn" && !parts[3].is_empty() {
                return Some(parts[3].to_string());
            }
            self.default_region.clone()
        }

        async fn client(&self, key_id: &str) -> Result<aws_sdk_kms::Client, RecoveryError> {
            let region = self.region_for(key_id);
            let cached = self
                .clients
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&region)
                .cloned();
            if let Some(c) = cached {
                return Ok(c);
            }
            let settings = stateseal_aws::AwsSettings {
                region: region.clone(),
                ..Default::default()
            };
            let config =
                stateseal_aws::sdk_config(&settings)
                    .await
                    .map_err(|e| RecoveryError::Kms {
                        key_id: key_id.to_string(),
                        kind: ServiceErrorKind::Other,
                        disabled: false,
                        detail: format!("AWS configuration: {e}"),
                    })?;
            let mut b = aws_sdk_kms::config::Builder::from(&config);
            let endpoint = ["AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
            if let Some(e) = endpoint {
                b = b.endpoint_url(e);
            }
            let client = aws_sdk_kms::Client::from_conf(b.build());
            self.clients
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(region, client.clone());
            Ok(client)
        }

        /// Wraps `key` under `key_id` (KMS `Encrypt`).
        pub async fn wrap(&self, key: &Secret, key_id: &str) -> Result<Wrap, RecoveryError> {
            let out = self
                .client(key_id)
                .await?
                .encrypt()
                .key_id(key_id)
                .plaintext(Blob::new(key.expose().to_vec()))
                .send()
                .await
                .map_err(|e| kms_error(key_id, &e))?;
            let blob = out.ciphertext_blob.ok_or_else(|| RecoveryError::Kms {
                key_id: key_id.to_string(),
                kind: ServiceErrorKind::Other,
                disabled: false,
                detail: "Encrypt returned no ciphertext".into(),
            })?;
            Ok(Wrap::AwsKms {
                key_id: key_id.to_string(),
                ciphertext: b64().encode(blob.as_ref()),
            })
        }

        /// Opens the data key with the first KMS wrap that decrypts; the errors of each tried
        /// key when none does.
        pub async fn open(
            &self,
            data: &ExternalData,
        ) -> Result<(Secret, String), Vec<RecoveryError>> {
            let mut errors = Vec::new();
            for w in &data.wraps {
                let Wrap::AwsKms { key_id, ciphertext } = w else {
                    continue;
                };
                let sealed = match b64().decode(ciphertext) {
                    Ok(s) => s,
                    Err(e) => {
                        errors.push(RecoveryError::Damaged {
                            reason: format!("KMS wrap for {key_id}: {e}"),
                        });
                        continue;
                    }
                };
                let client = match self.client(key_id).await {
                    Ok(c) => c,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                let result = client
                    .decrypt()
                    .key_id(key_id)
                    .ciphertext_blob(Blob::new(sealed))
                    .send()
                    .await;
                match result {
                    Ok(out) => {
                        let Some(plain) = out.plaintext else {
                            continue;
                        };
                        let key = Secret::new(plain.into_inner());
                        if let Err(e) = check_len(&key, key_id) {
                            errors.push(e);
                            continue;
                        }
                        return Ok((key, key_id.clone()));
                    }
                    Err(e) => errors.push(kms_error(key_id, &e)),
                }
            }
            Err(errors)
        }
    }

    fn kms_error<E>(key_id: &str, e: &aws_sdk_kms::error::SdkError<E>) -> RecoveryError
    where
        E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_kms::error::ProvideErrorMetadata;
        let disabled = matches!(
            e.code(),
            Some("DisabledException" | "KMSInvalidStateException")
        );
        RecoveryError::Kms {
            key_id: key_id.to_string(),
            kind: stateseal_aws::classify(e),
            disabled,
            detail: stateseal_aws::describe_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (age::x25519::Identity, String) {
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        (id, public)
    }

    #[test]
    fn an_age_wrap_opens_with_its_identity_only() {
        let (id, public) = identity();
        let (other, _) = identity();
        let key = new_data_key().unwrap();
        let wraps = wrap_age(
            &key,
            &parse_recipients(std::slice::from_ref(&public)).unwrap(),
        )
        .unwrap();
        let data = ExternalData::new(wraps);
        let stored = serde_json::to_value(&data).unwrap();
        let back = ExternalData::from_value(&stored).unwrap();
        assert_eq!(back, data);
        let (opened, via) = open_with_identities(&back, &[other.clone(), id]).unwrap();
        assert_eq!(opened.expose(), key.expose());
        assert_eq!(via, public);
        match open_with_identities(&back, &[other]) {
            Err(RecoveryError::IdentityMismatch { recipients }) => assert_eq!(recipients, [public]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_state_without_an_age_wrap_has_no_recovery_recipient() {
        let data = ExternalData::new(vec![Wrap::AwsKms {
            key_id: "arn:aws:kms:us-east-1:1:key/k".into(),
            ciphertext: "AAAA".into(),
        }]);
        let (id, _) = identity();
        assert!(!data.has_recovery_recipient());
        assert!(matches!(
            open_with_identities(&data, &[id]),
            Err(RecoveryError::NoRecoveryRecipient)
        ));
    }

    #[test]
    fn damaged_layouts_are_named() {
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"stateseal_recovery": 2, "wraps": [{"type":"age","recipient":"r","ciphertext":""}]}),
            serde_json::json!({"stateseal_recovery": 1, "wraps": []}),
            serde_json::json!({"stateseal_recovery": 1, "wraps": [{"type":"rot13"}]}),
            serde_json::json!(null),
        ] {
            let e = ExternalData::from_value(&bad).unwrap_err();
            assert!(matches!(e, RecoveryError::Damaged { .. }), "{bad}: {e:?}");
        }
        let (id, public) = identity();
        let data = ExternalData::new(vec![Wrap::Age {
            recipient: public,
            ciphertext: "not base64!".into(),
        }]);
        assert!(matches!(
            open_with_identities(&data, &[id]),
            Err(RecoveryError::Damaged { .. })
        ));
    }

    #[test]
    fn bad_recipients_and_identity_files_are_named_without_their_secrets() {
        let e = parse_recipients(&["age1nope".into()]).unwrap_err();
        assert!(e.to_string().contains("age1nope"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        std::fs::write(&path, "# comment\nAGE-SECRET-KEY-1SECRETSECRET\n").unwrap();
        let Err(e) = read_identities(path.to_str().unwrap()) else {
            panic!("a bad identity line was accepted");
        };
        let text = e.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(!text.contains("SECRETSECRET"), "{text}");
        let (id, _) = identity();
        use age::secrecy::ExposeSecret;
        std::fs::write(
            &path,
            format!("# created: now\n{}\n", id.to_string().expose_secret()),
        )
        .unwrap();
        assert_eq!(read_identities(path.to_str().unwrap()).unwrap().len(), 1);
    }
}
