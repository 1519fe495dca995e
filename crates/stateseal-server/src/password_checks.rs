//! Password checks as a bounded resource. An argon2id verification costs ~19 MiB of memory and
//! tens of milliseconds of one core, by design; run without a bound, a flood of wrong
//! credentials (no account needed) made the server allocate gigabytes that the C allocator then
//! kept (issue 17, H1).
//!
//! So at most [`PasswordChecks::permits`] verifications run at once (one per core), each on
//! memory taken from a small pool of argon2 block buffers that are allocated once and reused,
//! never freed and reallocated per request. A check that finds every permit taken is not
//! queued: the caller answers 503 with `Retry-After` ([`Busy`]). An unknown user name costs the
//! same verification (against a decoy hash with the default parameters), so timing does not
//! tell which names exist.

use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Every permit is taken: answer 503 and let the client retry after [`Busy::RETRY_AFTER_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl Busy {
    /// What `Retry-After` says.
    pub const RETRY_AFTER_SECS: u64 = 1;
}

/// The server's password-check permits and the argon2 memory they reuse.
pub struct PasswordChecks {
    permits: Arc<Semaphore>,
    total: usize,
    /// Block buffers returned by finished checks (at most one per permit).
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl std::fmt::Debug for PasswordChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChecks")
            .field("permits", &self.total)
            .finish()
    }
}

impl Default for PasswordChecks {
    /// One concurrent check per core.
    fn default() -> Self {
        PasswordChecks::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// A permit to run one check; dropping it frees the permit.
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl PasswordChecks {
    /// At most `permits` checks at once (at least one).
    pub fn new(permits: usize) -> PasswordChecks {
        let total = permits.max(1);
        PasswordChecks {
            permits: Arc::new(Semaphore::new(total)),
            total,
            memory: Arc::default(),
        }
    }

    /// How many checks may run at once.
    pub fn permits(&self) -> usize {
        self.total
    }

    /// Buffers currently parked in the pool (for tests and `/metrics`-style introspection).
    pub fn pooled_buffers(&self) -> usize {
        self.memory.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// A permit, or [`Busy`] when every one is taken (never waits).
    pub fn try_permit(&self) -> Result<Permit, Busy> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| Busy)?;
        Ok(Permit {
            _permit: permit,
            memory: self.memory.clone(),
        })
    }
}

impl Permit {
    /// True when `password` matches the PHC string `phc` (argon2 only; anything else is a
    /// mismatch). Blocking: run it on the blocking pool.
    pub fn verify(&self, phc: &str, password: &[u8]) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let mut blocks = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        let ok = verify_into(&hash, password, &mut blocks);
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(blocks);
        ok
    }
}

/// Runs argon2 with the hash's algorithm, version, parameters and salt on `blocks` (grown to
/// the size the parameters need, and kept at that size), and compares in constant time.
fn verify_into(hash: &PasswordHash<'_>, password: &[u8], blocks: &mut Vec<Block>) -> bool {
    let (Some(expected), Some(salt)) = (&hash.hash, &hash.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..needed])
        .is_err()
    {
        return false;
    }
    let want = expected.as_bytes();
    out.len() == want.len() && out.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_like_argon2_and_reuses_its_memory() {
        let phc = crate::auth::hash_password("s3cret").unwrap();
        let checks = PasswordChecks::new(2);
        let permit = checks.try_permit().unwrap();
        assert!(permit.verify(&phc, b"s3cret"));
        assert!(!permit.verify(&phc, b"other"));
        assert!(!permit.verify("not a phc string", b"s3cret"));
        // One check at a time on this permit: one buffer, returned after each check.
        assert_eq!(checks.pooled_buffers(), 1);
    }

    #[test]
    fn fail_a_check_beyond_the_permits_is_refused_not_queued() {
        let checks = PasswordChecks::new(2);
        let a = checks.try_permit().unwrap();
        let _b = checks.try_permit().unwrap();
        assert_eq!(checks.try_permit().err(), Some(Busy));
        drop(a);
        assert!(
            checks.try_permit().is_ok(),
            "a freed permit is available again"
        );
    }
}
