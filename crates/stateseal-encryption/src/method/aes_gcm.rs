//! Method `aes_gcm`: AES-GCM with a random 96-bit nonce. Output = nonce ‖ ciphertext ‖ tag.

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::KeyInit as _;
use ring::aead;
use serde::Deserialize;

use stateseal_core::secret::keys_from_value;

use super::{Method, MethodError};
use stateseal_core::secret::Secret;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    keys: Option<serde_json::Value>,
    #[serde(default)]
    aad: Option<Vec<u8>>,
}

/// A configured AES-GCM method.
pub struct AesGcm {
    encryption_key: Option<Cipher>,
    decryption_key: Option<Cipher>,
    aad: Vec<u8>,
}

/// ring covers AES-128 and AES-256; AES-192 (a 24-byte key, which OpenTofu accepts) uses the
/// RustCrypto implementation.
enum Cipher {
    Ring(Box<aead::LessSafeKey>),
    Aes192(Box<aes_gcm::AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>>),
}

impl Cipher {
    fn new(key: &Secret, which: &str) -> Result<Cipher, String> {
        let alg = match key.len() {
            16 => &aead::AES_128_GCM,
            32 => &aead::AES_256_GCM,
            24 => {
                let c = aes_gcm::AesGcm::new_from_slice(key.expose()).map_err(|e| e.to_string())?;
                return Ok(Cipher::Aes192(Box::new(c)));
            }
            n => {
                return Err(format!(
                    "invalid method configuration: AES-GCM requires the key length to be one of: 16, 24, 32, received {n} bytes in the {which} key"
                ))
            }
        };
        let unbound =
            aead::UnboundKey::new(alg, key.expose()).map_err(|_| "invalid AES key".to_string())?;
        Ok(Cipher::Ring(Box::new(aead::LessSafeKey::new(unbound))))
    }
}

pub fn build(config: &serde_json::Value) -> Result<Box<dyn Method>, crate::ConfigError> {
    let c: Config = crate::key_provider::decode_config(config)?;
    let keys = keys_from_value(&c.keys.ok_or("the keys attribute is required")?)
        .map_err(|e| e.to_string())?;
    let encryption_key = keys
        .encryption_key
        .as_ref()
        .map(|k| Cipher::new(k, "encryption"))
        .transpose()?;
    let decryption_key = keys
        .decryption_key
        .as_ref()
        .map(|k| Cipher::new(k, "decryption"))
        .transpose()?;
    Ok(Box::new(AesGcm {
        encryption_key,
        decryption_key,
        aad: c.aad.unwrap_or_default(),
    }))
}

impl Method for AesGcm {
    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, MethodError> {
        let cipher = self
            .encryption_key
            .as_ref()
            .ok_or(MethodError::NoEncryptionKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        crate::randomness::fill(&mut nonce).map_err(MethodError::Failed)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let body = &mut out[NONCE_LEN..];
        let tag: Vec<u8> = match cipher {
            Cipher::Ring(key) => key
                .seal_in_place_separate_tag(
                    aead::Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(&self.aad),
                    body,
                )
                .map_err(|_| MethodError::Failed("encryption failed".into()))?
                .as_ref()
                .to_vec(),
            Cipher::Aes192(c) => c
                .encrypt_in_place_detached(&nonce.into(), &self.aad, body)
                .map_err(|_| MethodError::Failed("encryption failed".into()))?
                .to_vec(),
        };
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn decrypt(&self, data: Vec<u8>) -> Result<Vec<u8>, MethodError> {
        self.decrypt_at(data, 0)
    }

    fn decrypt_at(&self, mut data: Vec<u8>, offset: usize) -> Result<Vec<u8>, MethodError> {
        let n = self.decrypt_within(&mut data, offset)?;
        data.truncate(n);
        Ok(data)
    }

    fn decrypt_within(&self, data: &mut [u8], offset: usize) -> Result<usize, MethodError> {
        let cipher = self
            .decryption_key
            .as_ref()
            .ok_or(MethodError::NoDecryptionKey)?;
        let len = data.len().saturating_sub(offset);
        if len == 0 {
            return Err(MethodError::DecryptionFailed(
                "cannot decrypt empty data".into(),
            ));
        }
        if len < NONCE_LEN {
            return Err(MethodError::DecryptionFailed(
                "cannot decrypt data because it is too small (likely data corruption)".into(),
            ));
        }
        let auth_failed =
            || MethodError::DecryptionFailed("cipher: message authentication failed".into());
        if len < NONCE_LEN + TAG_LEN {
            return Err(auth_failed());
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[offset..offset + NONCE_LEN]);
        match cipher {
            // ring decrypts and moves the plaintext to the front of the buffer in one pass.
            Cipher::Ring(key) => Ok(key
                .open_within(
                    aead::Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(&self.aad),
                    data,
                    offset + NONCE_LEN..,
                )
                .map_err(|_| auth_failed())?
                .len()),
            Cipher::Aes192(c) => {
                let tag_at = data.len() - TAG_LEN;
                let tag = aes_gcm::Tag::clone_from_slice(&data[tag_at..]);
                let body = offset + NONCE_LEN..tag_at;
                c.decrypt_in_place_detached(
                    &nonce.into(),
                    &self.aad,
                    &mut data[body.clone()],
                    &tag,
                )
                .map_err(|_| auth_failed())?;
                data.copy_within(body.clone(), 0);
                Ok(body.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn method(enc: &[u8], dec: &[u8], aad: Option<&[u8]>) -> Box<dyn Method> {
        build(&json!({"keys": {"encryption_key": enc, "decryption_key": dec}, "aad": aad})).unwrap()
    }

    #[test]
    fn roundtrip_every_key_size_with_and_without_aad() {
        for len in [16, 24, 32] {
            let k: Vec<u8> = (0..len as u8).collect();
            for aad in [None, Some(b"opentofu".as_slice())] {
                let m = method(&k, &k, aad);
                let ct = m.encrypt(b"Hello world!").unwrap();
                assert_eq!(ct.len(), 12 + 12 + 16);
                assert_eq!(m.decrypt(ct).unwrap(), b"Hello world!");
            }
        }
    }

    /// NIST GCM test case 14 (AES-256, zero key, zero IV, one zero block).
    #[test]
    fn nist_gcm_test_case_14() {
        let m = method(&[0; 32], &[0; 32], None);
        let mut ct = vec![0u8; 12];
        ct.extend(hexs(
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
        ));
        assert_eq!(m.decrypt(ct).unwrap(), vec![0u8; 16]);
    }

    fn hexs(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn opentofu_decrypt_failures() {
        let m = method(
            b"aeshi1quahb2Rua0ooquaiwahbonedoh",
            b"AiphoogheuwohShal8Aefohy7ooLeeyu",
            None,
        );
        assert_eq!(
            m.decrypt(vec![]).unwrap_err().to_string(),
            "decryption failed: cannot decrypt empty data"
        );
        assert!(m
            .decrypt(b"1".to_vec())
            .unwrap_err()
            .to_string()
            .contains("too small"));
        assert!(matches!(
            m.decrypt(vec![7; 26]),
            Err(MethodError::DecryptionFailed(_))
        ));
        let ct = m.encrypt(b"Hello world!").unwrap();
        // different decryption key: authentication fails
        assert_eq!(
            m.decrypt(ct.clone()).unwrap_err().to_string(),
            "decryption failed: cipher: message authentication failed"
        );
        let same = method(
            b"aeshi1quahb2Rua0ooquaiwahbonedoh",
            b"aeshi1quahb2Rua0ooquaiwahbonedoh",
            None,
        );
        let mut short = ct.clone();
        short.pop();
        assert!(matches!(
            same.decrypt(short),
            Err(MethodError::DecryptionFailed(_))
        ));
        let wrong_aad = method(
            b"aeshi1quahb2Rua0ooquaiwahbonedoh",
            b"aeshi1quahb2Rua0ooquaiwahbonedoh",
            Some(b"x"),
        );
        assert!(matches!(
            wrong_aad.decrypt(ct),
            Err(MethodError::DecryptionFailed(_))
        ));
    }

    #[test]
    fn key_length_and_missing_keys() {
        let e = build(&json!({"keys": {"encryption_key": vec![1u8; 12]}}))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "invalid method configuration: AES-GCM requires the key length to be one of: 16, 24, 32, received 12 bytes in the encryption key");
        assert_eq!(
            build(&json!({"keys": {"decryption_key": vec![1u8; 16]}}))
                .err()
                .unwrap()
                .to_string(),
            "Missing encryption_key value"
        );
        let m = build(&json!({"keys": {"encryption_key": vec![1u8; 16]}})).unwrap();
        assert_eq!(
            m.decrypt(vec![1; 40]).unwrap_err(),
            MethodError::NoDecryptionKey
        );
    }
}
