//! Brute-force throttling of password checks (Basic credentials and the console's sign-in),
//! per client address and per user name tried, with exponential back-off (issue 17, M1).
//!
//! The first [`FREE_FAILURES`] failures of an address or a name cost nothing more. Each further
//! failure starts a back-off of [`FIRST_BACK_OFF`] doubled per failure, up to [`MAX_BACK_OFF`];
//! during it every attempt from that address, or for that name, is refused with 429 and
//! `Retry-After` *before* any password is checked, so the right password is refused too and a
//! guess learns nothing. A success clears the address's and the name's record. A record is
//! forgotten [`FORGET_AFTER`] after its last failure.
//!
//! Each table holds at most [`MAX_ENTRIES`] records (names are kept as SHA-256 digests, so a
//! long name costs no memory): random names or addresses cannot grow memory. When a table is
//! full, forgotten records go first, then the one whose last failure is oldest. IPv6 addresses
//! are counted by their /64, the block one host usually controls.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before the back-off starts.
pub const FREE_FAILURES: u32 = 5;
/// The first back-off; each further failure doubles it.
pub const FIRST_BACK_OFF: Duration = Duration::from_secs(1);
/// The longest back-off.
pub const MAX_BACK_OFF: Duration = Duration::from_secs(15 * 60);
/// A record is forgotten this long after its last failure.
pub const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);
/// Records per table (addresses, names).
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Instant,
}

#[derive(Debug)]
struct Table<K> {
    records: HashMap<K, Record>,
}

impl<K: Hash + Eq + Copy> Table<K> {
    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let r = self.records.get(key)?;
        (r.blocked_until > now).then(|| r.blocked_until - now)
    }

    fn fail(&mut self, key: K, now: Instant) -> u32 {
        if !self.records.contains_key(&key) && self.records.len() >= MAX_ENTRIES {
            self.records
                .retain(|_, r| now.duration_since(r.last_failure) < FORGET_AFTER);
            if self.records.len() >= MAX_ENTRIES {
                if let Some(oldest) = self
                    .records
                    .iter()
                    .min_by_key(|(_, r)| r.last_failure)
                    .map(|(k, _)| *k)
                {
                    self.records.remove(&oldest);
                }
            }
        }
        let r = self.records.entry(key).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: now,
        });
        if now.duration_since(r.last_failure) >= FORGET_AFTER {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last_failure = now;
        if r.failures > FREE_FAILURES {
            r.blocked_until = now + back_off(r.failures - FREE_FAILURES);
        }
        r.failures
    }
}

/// The back-off after the `n`th failure beyond the free ones (n ≥ 1).
pub fn back_off(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(20);
    FIRST_BACK_OFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACK_OFF)
}

/// The server's failure records.
#[derive(Debug)]
pub struct Throttle {
    addresses: Mutex<Table<IpAddr>>,
    names: Mutex<Table<[u8; 32]>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            addresses: Mutex::new(Table {
                records: HashMap::new(),
            }),
            names: Mutex::new(Table {
                records: HashMap::new(),
            }),
        }
    }
}

/// An attempt refused without a check: answer 429 with `Retry-After` (whole seconds, rounded
/// up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
}

/// IPv4 as is; IPv6 by its /64 (an IPv4-mapped address as its IPv4 address).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn name_key(name: &str) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, name.as_bytes())
        .as_ref()
        .try_into()
        .expect("32 bytes")
}

impl Throttle {
    /// `Err` when the address or the name is in a back-off (check nothing then).
    pub fn check(&self, addr: Option<IpAddr>, name: &str) -> Result<(), Throttled> {
        let now = Instant::now();
        let by_addr = addr.and_then(|a| {
            self.addresses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .blocked(&address_key(a), now)
        });
        let by_name = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .blocked(&name_key(name), now);
        match by_addr.max(by_name) {
            None => Ok(()),
            Some(wait) => Err(Throttled {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }),
        }
    }

    /// Records a failed check; returns the failures now counted for the address and the name.
    pub fn failed(&self, addr: Option<IpAddr>, name: &str) -> (u32, u32) {
        let now = Instant::now();
        let a = addr.map_or(0, |a| {
            self.addresses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .fail(address_key(a), now)
        });
        let n = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fail(name_key(name), now);
        (a, n)
    }

    /// Clears the address's and the name's records after a success.
    pub fn succeeded(&self, addr: Option<IpAddr>, name: &str) {
        if let Some(a) = addr {
            self.addresses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .records
                .remove(&address_key(a));
        }
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .records
            .remove(&name_key(name));
    }

    /// Records held (addresses, names).
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.addresses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .records
                .len(),
            self.names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .records
                .len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn fail_back_off_starts_after_the_free_failures_and_doubles() {
        let t = Throttle::default();
        for _ in 0..FREE_FAILURES {
            assert!(t.check(ip("10.0.0.1"), "ci").is_ok());
            t.failed(ip("10.0.0.1"), "ci");
        }
        assert!(t.check(ip("10.0.0.1"), "ci").is_ok());
        t.failed(ip("10.0.0.1"), "ci");
        // Blocked by address (any name) and by name (any address).
        assert!(t.check(ip("10.0.0.1"), "other").is_err());
        assert!(t.check(ip("10.0.0.2"), "ci").is_err());
        assert!(t.check(ip("10.0.0.2"), "other").is_ok());
        assert_eq!(back_off(1), FIRST_BACK_OFF);
        assert_eq!(back_off(2), FIRST_BACK_OFF * 2);
        assert_eq!(back_off(5), FIRST_BACK_OFF * 16);
        assert_eq!(back_off(u32::MAX), MAX_BACK_OFF);
        t.succeeded(ip("10.0.0.1"), "ci");
        assert!(t.check(ip("10.0.0.1"), "ci").is_ok());
    }

    #[test]
    fn fail_random_names_and_addresses_do_not_grow_the_tables() {
        let t = Throttle::default();
        for i in 0..(MAX_ENTRIES as u32 + 500) {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.failed(Some(addr), &format!("name-{i}"));
        }
        assert_eq!(t.sizes(), (MAX_ENTRIES, MAX_ENTRIES));
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let t = Throttle::default();
        for i in 0..=FREE_FAILURES {
            t.failed(ip(&format!("2001:db8::{i}")), &format!("n{i}"));
        }
        assert!(t.check(ip("2001:db8::ffff"), "fresh").is_err());
        assert!(t.check(ip("2001:db9::1"), "fresh").is_ok());
    }
}
