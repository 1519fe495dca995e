//! The `hcl::Value` containers that carry key bytes into configuration evaluation: the
//! `key_provider` object a method's or provider's body is evaluated against holds every key byte
//! as an `hcl::Value::Number`. [`KeyValues`] owns that object and wipes it on drop;
//! [`scrub_hcl`] wipes any other `hcl::Value` that held them (an evaluated attribute).
//!
//! `hcl::Number` cannot be zeroized through the `zeroize` crate (it is not `Default`, and this
//! crate forbids `unsafe`): each number is overwritten in place with zero, and the overwritten
//! value is passed through [`std::hint::black_box`] so the store is not elided as dead.

use hcl::{Number, Value};
use zeroize::Zeroize;

use crate::config::KeyProviderBlock;
use stateseal_core::secret::{Keys, Secret};

/// Wipes every string and number in an `hcl::Value`, in place (numbers become `0`, strings
/// are zeroized and emptied).
pub(crate) fn scrub_hcl(v: &mut Value) {
    match v {
        Value::Number(n) => {
            *n = Number::from(0u8);
            std::hint::black_box(&*n);
        }
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(scrub_hcl),
        Value::Object(o) => o.values_mut().for_each(scrub_hcl),
        _ => {}
    }
}

/// The `key_provider` object (`{TYPE = {NAME = {encryption_key = [..], decryption_key = [..]}}}`)
/// that bodies are evaluated against. Scrubbed on drop.
pub(crate) struct KeyValues(Value);

impl KeyValues {
    pub(crate) fn new() -> Self {
        KeyValues(Value::Object(hcl::Map::new()))
    }

    /// Adds a provider's keys under `key_provider.TYPE.NAME`.
    pub(crate) fn insert(&mut self, kp: &KeyProviderBlock, keys: &Keys) {
        self.insert_named(&kp.kind, &kp.name, keys);
    }

    fn insert_named(&mut self, kind: &str, name: &str, keys: &Keys) {
        let Value::Object(map) = &mut self.0 else {
            return;
        };
        let inner = map
            .entry(kind.to_string())
            .or_insert_with(|| Value::Object(hcl::Map::new()));
        if let Value::Object(o) = inner {
            if let Some(mut old) = o.insert(name.to_string(), keys_value(keys)) {
                scrub_hcl(&mut old);
            }
        }
    }

    /// The object, borrowed (never cloned: a clone would escape the scrub).
    pub(crate) fn value(&self) -> &Value {
        &self.0
    }

    /// Wipes every key byte held (what `drop` does).
    fn scrub(&mut self) {
        scrub_hcl(&mut self.0);
    }
}

impl Drop for KeyValues {
    fn drop(&mut self) {
        self.scrub();
    }
}

/// A provider's output as configuration sees it: `{encryption_key = list(number),
/// decryption_key = list(number)}`; an absent key is `null`.
fn keys_value(k: &Keys) -> Value {
    let list = |s: &Option<Secret>| {
        s.as_ref().map_or(Value::Null, |s| {
            Value::Array(s.expose().iter().map(|b| Value::from(*b)).collect())
        })
    };
    let mut m = hcl::Map::new();
    m.insert("encryption_key".to_string(), list(&k.encryption_key));
    m.insert("decryption_key".to_string(), list(&k.decryption_key));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number and string left anywhere in `v`.
    fn leftovers(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Number(n) if n.as_u64() != Some(0) => out.push(n.to_string()),
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| leftovers(x, out)),
            Value::Object(o) => o.values().for_each(|x| leftovers(x, out)),
            _ => {}
        }
    }

    #[test]
    fn scrubbing_leaves_no_key_byte_in_the_containers() {
        let key: Vec<u8> = (1..=32).collect();
        let mut values = KeyValues::new();
        values.insert_named(
            "pbkdf2",
            "a",
            &Keys {
                encryption_key: Some(Secret::new(key.clone())),
                decryption_key: Some(Secret::new(key.iter().rev().copied().collect())),
            },
        );
        values.insert_named(
            "aws_kms",
            "b",
            &Keys {
                encryption_key: None,
                decryption_key: Some(Secret::new(key.clone())),
            },
        );
        let mut before = Vec::new();
        leftovers(values.value(), &mut before);
        assert_eq!(before.len(), 32 * 3, "the key bytes went in: {before:?}");

        values.scrub();
        let mut after = Vec::new();
        leftovers(values.value(), &mut after);
        assert!(after.is_empty(), "key bytes survived the scrub: {after:?}");
    }

    #[test]
    fn a_replaced_provider_value_is_scrubbed_too() {
        // Inserting the same provider twice must not drop the first keys unscrubbed: the
        // replaced value is returned by the map and wiped; what remains is the second set.
        let mut values = KeyValues::new();
        values.insert_named(
            "pbkdf2",
            "a",
            &Keys {
                encryption_key: Some(Secret::new(vec![7; 4])),
                decryption_key: None,
            },
        );
        values.insert_named(
            "pbkdf2",
            "a",
            &Keys {
                encryption_key: Some(Secret::new(vec![9; 4])),
                decryption_key: None,
            },
        );
        let mut left = Vec::new();
        leftovers(values.value(), &mut left);
        assert_eq!(left, vec!["9"; 4]);
    }

    #[test]
    fn scrub_hcl_wipes_strings_and_nested_numbers() {
        let mut v = Value::Array(vec![
            Value::from("passphrase-passphrase"),
            Value::Object(hcl::Map::from_iter([(
                "k".to_string(),
                Value::Array(vec![Value::from(200u8), Value::from(17u8)]),
            )])),
        ]);
        scrub_hcl(&mut v);
        let mut left = Vec::new();
        leftovers(&v, &mut left);
        assert!(left.is_empty(), "{left:?}");
    }
}
