//! A bounded cache of what was read from objects, keyed by object key and by the object's
//! identity (on S3 its ETag and time): a listing reads an object again only when what the
//! bucket lists under its key is not what was read before. Several server instances on one
//! bucket stay right with it, because the identity comes from the bucket's own listing, not
//! from what this instance wrote.
//!
//! Two generations bound it: entries go into the newer one; when that holds half the
//! capacity it becomes the older one and the previous older one is dropped. A hit in the older
//! generation moves the entry to the newer one, so whatever every listing uses stays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What was read for one key, and the identity of the object it was read from.
struct Entry<V> {
    identity: String,
    value: Arc<V>,
}

struct Generations<V> {
    newer: HashMap<String, Entry<V>>,
    older: HashMap<String, Entry<V>>,
}

/// At most `capacity` entries, one per key.
pub struct ReadCache<V> {
    capacity: usize,
    inner: Mutex<Generations<V>>,
}

impl<V> std::fmt::Debug for ReadCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl<V> ReadCache<V> {
    /// A cache of at most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> ReadCache<V> {
        ReadCache {
            capacity: capacity.max(2),
            inner: Mutex::new(Generations {
                newer: HashMap::new(),
                older: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations<V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What was read from `key` when it was `identity`; `None` when nothing was, or the key
    /// has another identity now.
    pub fn get(&self, key: &str, identity: &str) -> Option<Arc<V>> {
        let mut g = self.lock();
        if let Some(e) = g.newer.get(key) {
            return (e.identity == identity).then(|| e.value.clone());
        }
        let e = g.older.remove(key)?;
        if e.identity != identity {
            return None;
        }
        let value = e.value.clone();
        self.insert_in(&mut g, key, e);
        Some(value)
    }

    /// Remembers what was read from `key` as `identity` (replacing what was read before).
    pub fn put(&self, key: &str, identity: &str, value: Arc<V>) {
        let mut g = self.lock();
        g.older.remove(key);
        let entry = Entry {
            identity: identity.to_string(),
            value,
        };
        self.insert_in(&mut g, key, entry);
    }

    fn insert_in(&self, g: &mut Generations<V>, key: &str, entry: Entry<V>) {
        if !g.newer.contains_key(key) && g.newer.len() >= self.capacity / 2 {
            g.older = std::mem::take(&mut g.newer);
        }
        g.newer.insert(key.to_string(), entry);
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        let g = self.lock();
        g.newer.len() + g.older.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_identity_misses_and_a_put_replaces() {
        let c = ReadCache::new(10);
        c.put("a", "e1", Arc::new(1));
        assert_eq!(c.get("a", "e1").as_deref(), Some(&1));
        assert_eq!(c.get("a", "e2"), None);
        assert_eq!(c.get("b", "e1"), None);
        c.put("a", "e2", Arc::new(2));
        assert_eq!(c.get("a", "e1"), None);
        assert_eq!(c.get("a", "e2").as_deref(), Some(&2));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn it_stays_within_capacity_and_keeps_what_is_used() {
        let c = ReadCache::new(100);
        for round in 0..5 {
            for i in 0..20 {
                let k = format!("hot{i}");
                if c.get(&k, "e").is_none() {
                    assert_eq!(round, 0, "{k} was dropped although every round uses it");
                    c.put(&k, "e", Arc::new(i));
                }
            }
            for i in 0..20 {
                c.put(&format!("cold{round}-{i}"), "e", Arc::new(i));
            }
            assert!(c.len() <= 100, "{} entries", c.len());
        }
        let mut c = ReadCache::new(4);
        for i in 0..1000 {
            c.put(&i.to_string(), "e", Arc::new(i));
            assert!(c.len() <= 4);
        }
        c = ReadCache::new(0);
        c.put("x", "e", Arc::new(0));
        assert!(!c.is_empty());
    }
}
