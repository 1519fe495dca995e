//! OpenTofu's decrypt decision tree: an envelope through the method chain, or a plaintext that
//! the chain accepts (`docs/ENCRYPTION-FORMAT.md` §5.5, §5.6).

use crate::envelope::{Envelope, NotEnvelope, StateFields, VERSION};
use crate::error::{Error, NotPlaintext, Passthrough, PayloadError, Plaintext};
use crate::method::MethodError;
use crate::registry::UNENCRYPTED;
use stateseal_core::state::StateHeader;
use std::ops::Range;

use super::*;

impl TargetEncryption {
    /// Decrypts `buf`, which [`Envelope::parse_in_place`] has parsed into `parsed`, in place:
    /// the plaintext ends up at `buf[..len]` and its length is returned. On an error the
    /// buffer's contents are unspecified.
    pub(super) fn decrypt_parsed(
        &self,
        buf: &mut [u8],
        parsed: Result<(Envelope, Range<usize>), NotEnvelope>,
        kind: PayloadKind,
    ) -> Result<(usize, Status), Error> {
        let (env, ciphertext) = match parsed {
            Ok(parsed) => parsed,
            Err(not) => return Ok((buf.len(), self.accept_plaintext(buf, kind, not)?)),
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
            let result = if n + 1 == encrypted.len() {
                // The last attempt may consume the ciphertext.
                method.decrypt_within(&mut buf[..ciphertext.end], ciphertext.start)
            } else {
                let mut copy = buf[ciphertext.clone()].to_vec();
                method.decrypt_within(&mut copy, 0).map(|len| {
                    buf[..len].copy_from_slice(&copy[..len]);
                    len
                })
            };
            match result {
                Ok(len) => {
                    if kind == PayloadKind::State {
                        check_passthrough(state_fields.as_ref(), &buf[..len])?;
                    }
                    let status = if Some(idx) == self.chain.first() {
                        Status::Satisfied
                    } else {
                        Status::Migration
                    };
                    return Ok((len, status));
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
        data: &[u8],
        kind: PayloadKind,
        not: NotEnvelope,
    ) -> Result<Status, Error> {
        if self.chain.is_empty() {
            return Ok(Status::Satisfied);
        }
        let not_plaintext = match kind {
            PayloadKind::State | PayloadKind::Unknown => match StateHeader::parse(data) {
                Ok(h) if h.has_terraform_version() => None,
                Ok(_) => Some(NotPlaintext::NotAStateFile),
                Err(e) => Some(NotPlaintext::State(e)),
            },
            PayloadKind::Plan => {
                if data.len() >= 2 && &data[..2] == b"PK" {
                    None
                } else {
                    Some(NotPlaintext::NotAPlan {
                        start: String::from_utf8_lossy(&data[..data.len().min(2)]).into_owned(),
                    })
                }
            }
        };
        if let Some(not_plaintext) = not_plaintext {
            return Err(Error::InvalidPayload {
                target: self.name.clone(),
                cause: PayloadError {
                    not_envelope: not,
                    not_plaintext,
                },
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
        Ok(if self.primary_is_unencrypted() {
            Status::Satisfied
        } else {
            Status::Migration
        })
    }
}

pub(super) fn check_passthrough(fields: Option<&StateFields>, plain: &[u8]) -> Result<(), Error> {
    let Some(f) = fields else { return Ok(()) };
    let h = StateHeader::parse(plain).map_err(|cause| Error::InvalidPlaintext {
        which: Plaintext::Decrypted,
        cause,
    })?;
    if let (Some(envelope), Some(state)) = (f.serial, h.serial()) {
        if envelope != state {
            return Err(Error::PassthroughMismatch(Passthrough::Serial {
                envelope,
                state,
            }));
        }
    }
    if !f.lineage.is_empty() && f.lineage != h.lineage() {
        return Err(Error::PassthroughMismatch(Passthrough::Lineage {
            envelope: f.lineage.clone(),
            state: h.lineage(),
        }));
    }
    Ok(())
}
