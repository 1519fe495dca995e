//! The key cache: what key providers returned, keyed on the provider and the stored metadata, so
//! that a key is derived (or fetched from a key service) once per process, not once per decrypt
//! attempt. Derivations per process are then the distinct salts read, plus one to encrypt.
//!
//! The key of an entry names the provider's storage key, the metadata stored under it, and the
//! same for every provider upstream of it (a chained provider's output depends on its inputs).
//! It holds no secret: metadata is stored in plaintext next to every ciphertext. Values are
//! [`Keys`], whose bytes are zeroized when an entry is evicted or the cache is dropped.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use stateseal_core::secret::Keys;

/// How many entries a cache keeps before evicting the oldest (a fleet rekey reads one salt or
/// data key per state; 1,024 keys cost about 64 KiB).
pub const CAPACITY: usize = 1024;

/// Identifies one provider's output: its storage key and stored metadata, then its upstream
/// providers' identities, as length-prefixed fields.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CacheKey(Vec<u8>);

impl CacheKey {
    /// `upstream` are the identities of the providers this one references, in dependency order.
    pub fn new(storage_key: &str, metadata: Option<&[u8]>, upstream: &[&CacheKey]) -> CacheKey {
        let mut b = Vec::with_capacity(storage_key.len() + metadata.map_or(0, <[u8]>::len) + 32);
        let mut field = |bytes: &[u8]| {
            b.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            b.extend_from_slice(bytes);
        };
        field(storage_key.as_bytes());
        match metadata {
            Some(m) => field(m),
            None => field(b"\xffnone"),
        }
        for u in upstream {
            field(&u.0);
        }
        CacheKey(b)
    }
}

/// One gate per key being derived right now, so that concurrent readers of states sharing a
/// salt (a parallel fleet rekey) derive it once: the first takes the gate and derives, the
/// others wait on it and then find the key cached. Keys that differ never wait for each other.
#[derive(Default)]
pub struct InFlight(Mutex<BTreeMap<CacheKey, Arc<Mutex<()>>>>);

impl InFlight {
    /// The gate for `k` (shared by everyone asking for `k` until [`InFlight::done`]).
    pub fn gate(&self, k: &CacheKey) -> Arc<Mutex<()>> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(k.clone()).or_default().clone()
    }

    /// Forgets the gate of `k` once its key is cached (later readers find it there).
    pub fn done(&self, k: &CacheKey) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(k);
    }
}

/// A bounded map from [`CacheKey`] to the [`Keys`] a provider returned for decryption, with
/// counters of what it saved.
#[derive(Default)]
pub struct KeyCache {
    entries: BTreeMap<CacheKey, Keys>,
    order: VecDeque<CacheKey>,
}

impl KeyCache {
    pub fn get(&self, k: &CacheKey) -> Option<Keys> {
        self.entries.get(k).cloned()
    }

    /// Keeps `keys` for `k`, evicting the oldest entry when full (its keys are zeroized on drop).
    pub fn insert(&mut self, k: CacheKey, keys: Keys) {
        if self.entries.insert(k.clone(), keys).is_none() {
            self.order.push_back(k);
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyCache({} entries)", self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateseal_core::secret::Secret;

    fn keys(b: u8) -> Keys {
        Keys {
            encryption_key: None,
            decryption_key: Some(Secret::new(vec![b; 32])),
        }
    }

    #[test]
    fn keys_differ_by_metadata_and_upstream() {
        let a = CacheKey::new("key_provider.pbkdf2.a", Some(b"{\"salt\":\"x\"}"), &[]);
        let b = CacheKey::new("key_provider.pbkdf2.a", Some(b"{\"salt\":\"y\"}"), &[]);
        let none = CacheKey::new("key_provider.pbkdf2.a", None, &[]);
        let chained = CacheKey::new("key_provider.pbkdf2.a", Some(b"{\"salt\":\"x\"}"), &[&b]);
        let all = [&a, &b, &none, &chained];
        for (i, x) in all.iter().enumerate() {
            for (j, y) in all.iter().enumerate() {
                assert_eq!(i == j, x == y, "{i} vs {j}");
            }
        }
        // field boundaries are unambiguous
        assert_ne!(
            CacheKey::new("ab", Some(b"c"), &[]),
            CacheKey::new("a", Some(b"bc"), &[])
        );
    }

    #[test]
    fn bounded_oldest_first() {
        let mut c = KeyCache::default();
        let k = |n: usize| CacheKey::new("p", Some(n.to_string().as_bytes()), &[]);
        for n in 0..CAPACITY + 5 {
            c.insert(k(n), keys(n as u8));
        }
        assert_eq!(c.len(), CAPACITY);
        assert!(c.get(&k(0)).is_none());
        assert!(c.get(&k(4)).is_none());
        assert_eq!(c.get(&k(5)), Some(keys(5)));
        assert_eq!(c.get(&k(CAPACITY + 4)), Some(keys((CAPACITY + 4) as u8)));
        // re-inserting an entry does not grow the order queue
        c.insert(k(CAPACITY + 4), keys(1));
        assert_eq!(c.order.len(), CAPACITY);
    }
}
