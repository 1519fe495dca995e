//! OpenTofu's decrypt decision tree: an envelope through the method chain, or a plaintext that
//! the chain accepts (`docs/ENCRYPTION-FORMAT.md` §5.5, §5.6).

use crate::envelope::{Envelope, NotEnvelope, StateFields, VERSION};
use crate::method::MethodError;
use crate::registry::UNENCRYPTED;
use crate::Error;
use stateseal_core::state::StateHeader;

use super::*;

impl TargetEncryption {
    pub(super) fn decrypt_parsed(
        &self,
        parsed: Result<(Envelope, usize), (NotEnvelope, Vec<u8>)>,
        kind: PayloadKind,
    ) -> Result<(Vec<u8>, Status), Error> {
        let (env, offset) = match parsed {
            Ok(parsed) => parsed,
            Err((not, data)) => return self.accept_plaintext(data, kind, not),
        };
        if self.chain.is_empty() {
            return Err(Error::EncryptedWithoutConfig {
                what: if kind == PayloadKind::State {
                    "This state file"
                } else {
                    "The given plan file"
                },
            });
        }
        if env.version != VERSION {
            return Err(Error::UnsupportedVersion(env.version));
        }
        let state_fields = env.state_fields.clone();
        let meta = env.meta;
        let mut ciphertext = Some(env.encrypted_data);
        let mut attempts = Vec::new();
        let mut no_key = true;
        let encrypted: Vec<usize> = self
            .chain
            .iter()
            .copied()
            .filter(|i| self.shared.config.methods[*i].kind != UNENCRYPTED)
            .collect();
        for (n, idx) in encrypted.iter().enumerate() {
            let prepared = self.setup(*idx, Some(&meta))?;
            let method = prepared.method.as_ref().expect("not unencrypted");
            let input = if n + 1 == encrypted.len() {
                ciphertext.take().unwrap_or_default()
            } else {
                ciphertext.clone().unwrap_or_default()
            };
            match method.decrypt_at(input, offset) {
                Ok(plain) => {
                    if kind == PayloadKind::State {
                        check_passthrough(state_fields.as_ref(), &plain)?;
                    }
                    let status = if Some(idx) == self.chain.first() {
                        Status::Satisfied
                    } else {
                        Status::Migration
                    };
                    return Ok((plain, status));
                }
                Err(e) => {
                    no_key &= e == MethodError::NoDecryptionKey;
                    attempts.push(format!(
                        "attempted decryption failed for {}: {e}",
                        self.name
                    ));
                }
            }
        }
        Err(Error::DecryptionFailed {
            target: self.name.clone(),
            attempts,
            no_key: no_key && !encrypted.is_empty(),
        })
    }

    fn accept_plaintext(
        &self,
        data: Vec<u8>,
        kind: PayloadKind,
        not: NotEnvelope,
    ) -> Result<(Vec<u8>, Status), Error> {
        if self.chain.is_empty() {
            return Ok((data, Status::Satisfied));
        }
        let verr = match kind {
            PayloadKind::State | PayloadKind::Unknown => match StateHeader::parse(&data) {
                Ok(h) if h.has_terraform_version() => None,
                Ok(_) => Some("Given payload is not a state file".to_string()),
                Err(e) => Some(e),
            },
            PayloadKind::Plan => {
                if data.len() >= 2 && &data[..2] == b"PK" {
                    None
                } else {
                    Some(format!(
                        "Invalid plan file {:?}",
                        String::from_utf8_lossy(&data[..data.len().min(2)])
                    ))
                }
            }
        };
        if let Some(verr) = verr {
            let message = match not {
                NotEnvelope::Json(j) => format!("invalid data format for decryption: {j}, {verr}"),
                NotEnvelope::NoVersion => {
                    format!("unable to determine data structure during decryption: {verr}")
                }
            };
            return Err(Error::InvalidPayload {
                target: self.name.clone(),
                message,
            });
        }
        if !self
            .chain
            .iter()
            .any(|i| self.shared.config.methods[*i].kind == UNENCRYPTED)
        {
            return Err(Error::UnencryptedPayload {
                target: self.name.clone(),
            });
        }
        let status = if self.primary_is_unencrypted() {
            Status::Satisfied
        } else {
            Status::Migration
        };
        Ok((data, status))
    }
}

pub(super) fn check_passthrough(fields: Option<&StateFields>, plain: &[u8]) -> Result<(), Error> {
    let Some(f) = fields else { return Ok(()) };
    let h = StateHeader::parse(plain).map_err(|e| {
        Error::InvalidPlaintext(format!("the decrypted state is not valid JSON: {e}"))
    })?;
    if let (Some(env), Some(st)) = (f.serial, h.serial()) {
        if env != st {
            return Err(Error::PassthroughMismatch(format!(
                "serial field mismatch {env} vs {st}"
            )));
        }
    }
    if !f.lineage.is_empty() && f.lineage != h.lineage() {
        return Err(Error::PassthroughMismatch(format!(
            "linage field mismatch {} vs {}",
            f.lineage,
            h.lineage()
        )));
    }
    Ok(())
}
