//! The one source of the random bytes that end up in what we write: pbkdf2 salts and AES-GCM
//! nonces. It is the system generator, always, unless the test-only `fixed-randomness` feature
//! is compiled in AND a caller runs code inside [`with_fixed`]: then the draws on that thread
//! come from a list of fixed byte strings. That is how the test suite reproduces the shared
//! vectors (written with fixed salts and nonces) byte for byte through the real configuration,
//! key provider and method code.

use ring::rand::SecureRandom as _;

/// Fills `buf` with random bytes. `Err` only if the system generator fails (or, under
/// [`with_fixed`], if the next fixed draw is missing or has another length).
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), String> {
    #[cfg(feature = "fixed-randomness")]
    if let Some(r) = fixed::next(buf) {
        return r;
    }
    ring::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| "the system random number generator failed".to_string())
}

#[cfg(feature = "fixed-randomness")]
pub use fixed::{with_fixed, UnusedDraws};

#[cfg(feature = "fixed-randomness")]
mod fixed {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    thread_local! {
        static DRAWS: RefCell<Option<VecDeque<Vec<u8>>>> = const { RefCell::new(None) };
    }

    /// `None`: no fixed draws on this thread, use the system generator.
    pub(super) fn next(buf: &mut [u8]) -> Option<Result<(), String>> {
        DRAWS.with(|d| {
            let mut d = d.borrow_mut();
            let draws = d.as_mut()?;
            Some(match draws.pop_front() {
                Some(b) if b.len() == buf.len() => {
                    buf.copy_from_slice(&b);
                    Ok(())
                }
                Some(b) => Err(format!(
                    "fixed randomness: the code drew {} bytes, the next fixed draw has {}",
                    buf.len(),
                    b.len()
                )),
                None => Err(format!(
                    "fixed randomness: the code drew {} bytes after the last fixed draw",
                    buf.len()
                )),
            })
        })
    }

    /// Runs `f` with every random draw on this thread taken, in order, from `draws` (each
    /// must have exactly the length drawn). `Err` if `f` left draws unused. TEST ONLY: fixed
    /// salts and nonces destroy the security of what is written.
    pub fn with_fixed<R>(draws: &[&[u8]], f: impl FnOnce() -> R) -> Result<R, UnusedDraws> {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                DRAWS.with(|d| *d.borrow_mut() = None);
            }
        }
        DRAWS.with(|d| *d.borrow_mut() = Some(draws.iter().map(|b| b.to_vec()).collect()));
        let reset = Reset;
        let out = f();
        let left = DRAWS.with(|d| d.borrow().as_ref().map_or(0, VecDeque::len));
        drop(reset);
        if left > 0 {
            return Err(UnusedDraws(left));
        }
        Ok(out)
    }

    /// [`with_fixed`] ended with this many fixed draws not taken.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
    #[error("fixed randomness: {0} fixed draw(s) left unused")]
    pub struct UnusedDraws(pub usize);
}
