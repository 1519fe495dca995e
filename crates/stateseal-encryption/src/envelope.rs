//! The OpenTofu `v0` encryption envelope.
//!
//! Wire layout (Go `json.Marshal`, compact, no trailing newline), keys in this order:
//! `serial`, `lineage` (state only), `meta`, `encrypted_data`, `encryption_version`.
//! `meta` values and `encrypted_data` are standard padded base64. See `docs/ENCRYPTION-FORMAT.md` §1.
//!
//! Reading follows Go's `encoding/json`: key names match exactly first and then
//! case-insensitively, the last duplicate wins, unknown keys are ignored, and a type error
//! anywhere makes the whole input "not an envelope".

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use stateseal_core::gojson::{self, field_index, go_base64_decode};
use stateseal_core::json_scan;

/// The only envelope version that exists.
pub const VERSION: &str = "v0";

/// A parsed envelope. `meta` maps a storage key (`key_provider.TYPE.NAME` or an alias) to the
/// provider's metadata JSON (already base64-decoded).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// `Some` for state envelopes (`serial` may still be `None`, written as `null`).
    pub state_fields: Option<StateFields>,
    pub meta: BTreeMap<String, Vec<u8>>,
    pub encrypted_data: Vec<u8>,
    pub version: String,
}

/// The plaintext copies of `serial` and `lineage` that a state envelope carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateFields {
    pub serial: Option<i64>,
    pub lineage: String,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("state_fields", &self.state_fields)
            .field("meta_keys", &self.meta.keys().collect::<Vec<_>>())
            .field("encrypted_data_len", &self.encrypted_data.len())
            .field("version", &self.version)
            .finish()
    }
}

/// Why bytes are not an envelope (they may still be a valid plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotEnvelope {
    /// The bytes are not JSON of the envelope's shape; carries the JSON error text.
    Json(String),
    /// Valid JSON, but `encryption_version` is missing or empty.
    NoVersion,
}

impl Envelope {
    /// Parses `input` the way OpenTofu does. `Ok` means "this is an envelope" (the version is
    /// non-empty but not yet checked against [`VERSION`]).
    pub fn parse(input: &[u8]) -> Result<Envelope, NotEnvelope> {
        let env = RawFields::scan(input)?
            .decode()
            .map_err(NotEnvelope::Json)?;
        if env.version.is_empty() {
            return Err(NotEnvelope::NoVersion);
        }
        Ok(env)
    }

    /// Serializes the envelope byte for byte as OpenTofu writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        // Sized for everything, so the large base64 text is written once and never moved.
        let encoded = |n: usize| n.div_ceil(3) * 4;
        let meta: usize = self
            .meta
            .iter()
            .map(|(k, v)| k.len() * 6 + encoded(v.len()) + 8)
            .sum();
        let lineage = self
            .state_fields
            .as_ref()
            .map_or(0, |f| f.lineage.len() * 6);
        let mut out = String::with_capacity(
            encoded(self.encrypted_data.len()) + meta + lineage + self.version.len() * 6 + 128,
        );
        out.push('{');
        if let Some(sf) = &self.state_fields {
            out.push_str("\"serial\":");
            match sf.serial {
                Some(s) => out.push_str(&s.to_string()),
                None => out.push_str("null"),
            }
            out.push_str(",\"lineage\":");
            gojson::write_string(&mut out, &sf.lineage);
            out.push(',');
        }
        out.push_str("\"meta\":{");
        for (i, (k, v)) in self.meta.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            gojson::write_string(&mut out, k);
            out.push_str(":\"");
            b64.encode_string(v, &mut out);
            out.push('"');
        }
        out.push_str("},\"encrypted_data\":\"");
        base64_simd::STANDARD.encode_append(&self.encrypted_data, &mut out);
        out.push_str("\",\"encryption_version\":");
        gojson::write_string(&mut out, &self.version);
        out.push('}');
        out.into_bytes()
    }
}

impl Envelope {
    /// [`Envelope::parse`] of an owned buffer, decoding `encrypted_data` in place: the returned
    /// envelope's `encrypted_data` is `input`'s own allocation, with the ciphertext at the
    /// returned offset (hand both to [`crate::method::Method::decrypt_at`]), so a 64 MiB file
    /// costs one buffer, not three. When the bytes are not an envelope they come back untouched
    /// with the reason.
    pub fn parse_owned(mut input: Vec<u8>) -> Result<(Envelope, usize), (NotEnvelope, Vec<u8>)> {
        match Envelope::parse_in_place(&mut input) {
            Ok((mut env, ciphertext)) => {
                input.truncate(ciphertext.end);
                env.encrypted_data = input;
                Ok((env, ciphertext.start))
            }
            Err(e) => Err((e, input)),
        }
    }

    /// [`Envelope::parse`] of a buffer the caller owns (a `Vec` or any other memory), decoding
    /// `encrypted_data` in place: the ciphertext ends up at the returned range of `input`, and
    /// the returned envelope's own `encrypted_data` is empty. When the bytes are not an
    /// envelope they are left untouched.
    pub fn parse_in_place(input: &mut [u8]) -> Result<(Envelope, Range<usize>), NotEnvelope> {
        let base = input.as_ptr() as usize;
        let (raw_span, fast, mut env) = {
            let mut raw = RawFields::scan(input)?;
            let raw_span = raw.encrypted_data.map(|r| {
                let start = r.as_ptr() as usize - base;
                start..start + r.len()
            });
            // The fast case: a string without escapes (as every writer produces) is decoded
            // below, in place, so `decode` skips it.
            let fast = raw.encrypted_data.is_some_and(is_plain_string);
            if fast {
                raw.encrypted_data = None;
            }
            (raw_span, fast, raw.decode().map_err(NotEnvelope::Json)?)
        };
        if env.version.is_empty() {
            return Err(NotEnvelope::NoVersion);
        }
        let Some(raw_span) = raw_span else {
            return Ok((env, 0..0));
        };
        if !fast {
            // Decoded by `decode` (escapes, or `null`): the bytes are shorter than their JSON
            // text, so they fit where that text was.
            let data = std::mem::take(&mut env.encrypted_data);
            let at = raw_span.start..raw_span.start + data.len();
            input[at.clone()].copy_from_slice(&data);
            return Ok((env, at));
        }
        let span = raw_span.start + 1..raw_span.end - 1;
        // Checked first, so that bad base64 leaves the bytes untouched for the caller.
        if let Err(e) = base64_simd::STANDARD.check(&input[span.clone()]) {
            return Err(NotEnvelope::Json(format!(
                "encrypted_data: illegal base64 data: {e}"
            )));
        }
        let n = base64_simd::STANDARD
            .decode_inplace(&mut input[span.clone()])
            .map(|d| d.len())
            .unwrap_or_default();
        Ok((env, span.start..span.start + n))
    }
}

/// Whether a raw JSON value is a string without escapes (`encrypted_data` as every writer
/// produces it), which is base64-decoded straight from the input bytes.
fn is_plain_string(raw: &[u8]) -> bool {
    raw.len() >= 2 && raw[0] == b'"' && memchr::memchr(b'\\', raw).is_none()
}

/// An envelope's header: everything but the ciphertext, which is not decoded (cheap to get
/// for large files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub state_fields: Option<StateFields>,
    pub meta: BTreeMap<String, Vec<u8>>,
    pub version: String,
    /// Length of `encrypted_data` once decoded (computed from its base64 text).
    pub encrypted_data_len: usize,
}

impl Header {
    /// Parses the header of an envelope; same rules and errors as [`Envelope::parse`], except
    /// that `encrypted_data` is not base64-decoded.
    pub fn parse(input: &[u8]) -> Result<Header, NotEnvelope> {
        let mut raw = RawFields::scan(input)?;
        let data = raw.encrypted_data.take();
        let len = match data {
            None => 0,
            // the text between the quotes is the base64 as-is when it has no escapes
            Some(r) if r.first() == Some(&b'"') && memchr::memchr(b'\\', r).is_none() => {
                base64_decoded_len(&r[1..r.len() - 1])
            }
            Some(r) => serde_json::from_slice::<Option<Cow<'_, str>>>(r)
                .map_err(|e| NotEnvelope::Json(e.to_string()))?
                .map_or(0, |s| base64_decoded_len(s.as_bytes())),
        };
        let env = raw.decode().map_err(NotEnvelope::Json)?;
        if env.version.is_empty() {
            return Err(NotEnvelope::NoVersion);
        }
        Ok(Header {
            state_fields: env.state_fields,
            meta: env.meta,
            version: env.version,
            encrypted_data_len: len,
        })
    }
}

/// Field values as they appear in the JSON (raw bytes), before decoding. Go assigns fields in
/// input order; for each input key the exact field name wins over a case-insensitive match.
#[derive(Default)]
struct RawFields<'a> {
    serial: Option<&'a [u8]>,
    lineage: Option<&'a [u8]>,
    meta: Option<&'a [u8]>,
    encrypted_data: Option<&'a [u8]>,
    encryption_version: Option<&'a [u8]>,
}

const FIELDS: [&str; 5] = [
    "serial",
    "lineage",
    "meta",
    "encrypted_data",
    "encryption_version",
];

impl<'a> RawFields<'a> {
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a [u8]>> {
        let idx = field_index(&FIELDS, key)?;
        Some(match idx {
            0 => &mut self.serial,
            1 => &mut self.lineage,
            2 => &mut self.meta,
            3 => &mut self.encrypted_data,
            _ => &mut self.encryption_version,
        })
    }

    fn scan(input: &'a [u8]) -> Result<RawFields<'a>, NotEnvelope> {
        let mut out = RawFields::default();
        for (key, value) in
            json_scan::object_members(input).map_err(|e| NotEnvelope::Json(e.to_string()))?
        {
            if let Some(slot) = out.slot(&key) {
                *slot = Some(value);
            }
        }
        Ok(out)
    }

    fn decode(&self) -> Result<Envelope, String> {
        let serial: Option<i64> = parse_opt(self.serial, "serial")?.flatten();
        let lineage: Option<String> = parse_opt(self.lineage, "lineage")?.flatten();
        let meta_raw: Option<BTreeMap<String, Option<Cow<'_, str>>>> =
            parse_opt(self.meta, "meta")?.flatten();
        // The ciphertext is the one huge value: decode base64 straight from the input bytes
        // when the string has no escapes (it never has, as written).
        let fast = self.encrypted_data.filter(|r| is_plain_string(r));
        let data: Option<Cow<'_, str>> = match fast {
            Some(_) => None,
            None => parse_opt(self.encrypted_data, "encrypted_data")?.flatten(),
        };
        let version: Option<String> =
            parse_opt(self.encryption_version, "encryption_version")?.flatten();
        let mut meta = BTreeMap::new();
        for (k, v) in meta_raw.unwrap_or_default() {
            let bytes = match v {
                Some(s) => go_base64_decode(&s).map_err(|e| format!("meta[{k:?}]: {e}"))?,
                None => Vec::new(),
            };
            meta.insert(k, bytes);
        }
        let encrypted_data = match (fast, data) {
            (Some(raw), _) => base64_simd::STANDARD
                .decode_to_vec(&raw[1..raw.len() - 1])
                .map_err(|e| format!("encrypted_data: illegal base64 data: {e}"))?,
            (None, Some(s)) => go_base64_decode(&s).map_err(|e| format!("encrypted_data: {e}"))?,
            (None, None) => Vec::new(),
        };
        let state_fields = if self.serial.is_some() || self.lineage.is_some() {
            Some(StateFields {
                serial,
                lineage: lineage.unwrap_or_default(),
            })
        } else {
            None
        };
        Ok(Envelope {
            state_fields,
            meta,
            encrypted_data,
            version: version.unwrap_or_default(),
        })
    }
}

fn parse_opt<'a, T: serde::Deserialize<'a>>(
    raw: Option<&'a [u8]>,
    field: &str,
) -> Result<Option<Option<T>>, String> {
    match raw {
        None => Ok(None),
        Some(r) => serde_json::from_slice::<Option<T>>(r)
            .map(Some)
            .map_err(|e| format!("json: cannot unmarshal {field}: {e}")),
    }
}

fn base64_decoded_len(b64: &[u8]) -> usize {
    let chars = if memchr::memchr2(b'\r', b'\n', b64).is_some() {
        b64.iter().filter(|b| **b != b'\r' && **b != b'\n').count()
    } else {
        b64.len()
    };
    (chars / 4 * 3).saturating_sub(b64.iter().rev().take_while(|b| **b == b'=').count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_state_envelope_bytes() {
        let mut meta = BTreeMap::new();
        meta.insert(
            "key_provider.pbkdf2.main".to_string(),
            br#"{"salt":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","iterations":600000,"hash_function":"sha512","key_length":32}"#.to_vec(),
        );
        let env = Envelope {
            state_fields: Some(StateFields {
                serial: Some(7),
                lineage: "a<b>&c".into(),
            }),
            meta,
            encrypted_data: vec![0xa0, 0xa1, 0xa2],
            version: VERSION.into(),
        };
        let want = r#"{"serial":7,"lineage":"a\u003cb\u003e\u0026c","meta":{"key_provider.pbkdf2.main":"eyJzYWx0IjoiQUFFQ0F3UUZCZ2NJQ1FvTERBME9EeEFSRWhNVUZSWVhHQmthR3h3ZEhoOD0iLCJpdGVyYXRpb25zIjo2MDAwMDAsImhhc2hfZnVuY3Rpb24iOiJzaGE1MTIiLCJrZXlfbGVuZ3RoIjozMn0="},"encrypted_data":"oKGi","encryption_version":"v0"}"#;
        assert_eq!(String::from_utf8(env.to_bytes()).unwrap(), want);
        assert_eq!(Envelope::parse(want.as_bytes()).unwrap(), env);
    }

    #[test]
    fn plan_envelope_has_no_state_fields_and_empty_meta_is_an_object() {
        let env = Envelope {
            state_fields: None,
            meta: BTreeMap::new(),
            encrypted_data: vec![1],
            version: "v0".into(),
        };
        assert_eq!(
            env.to_bytes(),
            br#"{"meta":{},"encrypted_data":"AQ==","encryption_version":"v0"}"#
        );
    }

    #[test]
    fn go_reader_quirks() {
        // case-insensitive keys, last duplicate wins, unknown keys ignored, null meta is empty
        let env = Envelope::parse(br#"{"Encryption_Version":"v1","encryption_version":"v0","meta":null,"x":[1],"ENCRYPTED_DATA":"AQ=="}"#).unwrap();
        assert_eq!(env.version, "v0");
        assert!(env.meta.is_empty());
        assert_eq!(env.encrypted_data, vec![1]);
        // base64 with CR/LF inside is accepted
        assert_eq!(
            Envelope::parse(b"{\"encrypted_data\":\"A\\r\\nQ==\",\"encryption_version\":\"v0\"}")
                .unwrap()
                .encrypted_data,
            vec![1]
        );
    }

    #[test]
    fn type_errors_make_it_not_an_envelope() {
        assert!(matches!(
            Envelope::parse(br#"{"meta":{"a":{"b":1}},"encryption_version":"v0"}"#),
            Err(NotEnvelope::Json(_))
        ));
        assert!(matches!(
            Envelope::parse(br#"{"encrypted_data":"AQ","encryption_version":"v0"}"#),
            Err(NotEnvelope::Json(_))
        ));
        assert_eq!(
            Envelope::parse(br#"{"version":4,"terraform_version":"1.7.0"}"#),
            Err(NotEnvelope::NoVersion)
        );
        assert!(matches!(Envelope::parse(b""), Err(NotEnvelope::Json(_))));
        assert!(matches!(Envelope::parse(b"[1]"), Err(NotEnvelope::Json(_))));
    }

    #[test]
    fn parse_owned_decodes_in_place_and_leaves_bad_input_untouched() {
        let text = br#"{"serial":1,"lineage":"l","meta":{},"encrypted_data":"AAECAw==","encryption_version":"v0"}"#;
        let (env, offset) = Envelope::parse_owned(text.to_vec()).unwrap();
        assert_eq!(&env.encrypted_data[offset..], &[0, 1, 2, 3]);
        assert_eq!(Envelope::parse(text).unwrap().encrypted_data, [0, 1, 2, 3]);
        // escaped base64 (as Go may read it) takes the slow path, and lands where its text was
        let escaped = br#"{"encrypted_data":"AAEC\u0041w==","encryption_version":"v0"}"#;
        let (env, offset) = Envelope::parse_owned(escaped.to_vec()).unwrap();
        assert_eq!(
            (offset, &env.encrypted_data[offset..]),
            (18, &[0, 1, 2, 3][..])
        );
        // bad base64: not an envelope, and the bytes come back exactly as given
        let bad = br#"{"serial":1,"meta":{},"encrypted_data":"AA\"x==","encryption_version":"v0"}"#
            .to_vec();
        let bad2 = br#"{"serial":1,"meta":{},"encrypted_data":"AA!x==","encryption_version":"v0"}"#
            .to_vec();
        for b in [bad, bad2] {
            let (not, back) = Envelope::parse_owned(b.clone()).unwrap_err();
            assert!(matches!(not, NotEnvelope::Json(_)));
            assert_eq!(back, b);
            let mut in_place = b.clone();
            assert!(Envelope::parse_in_place(&mut in_place).is_err());
            assert_eq!(in_place, b);
        }
    }

    #[test]
    fn parse_in_place_leaves_the_ciphertext_in_the_callers_buffer() {
        let mut text = br#"{"serial":1,"lineage":"l","meta":{"k":"e30="},"encrypted_data":"AAECAw==","encryption_version":"v0"}"#.to_vec();
        let (env, at) = Envelope::parse_in_place(&mut text).unwrap();
        assert_eq!(&text[at], &[0, 1, 2, 3]);
        assert!(env.encrypted_data.is_empty());
        assert_eq!(env.meta["k"], b"{}");
        assert_eq!(env.state_fields.unwrap().serial, Some(1));
        // no ciphertext at all, or null: an empty range
        for text in [
            &br#"{"encryption_version":"v0"}"#[..],
            br#"{"encrypted_data":null,"encryption_version":"v0"}"#,
        ] {
            let (_, at) = Envelope::parse_in_place(&mut text.to_vec()).unwrap();
            assert!(at.is_empty(), "{at:?}");
        }
    }
}
