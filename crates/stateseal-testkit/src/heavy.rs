//! At most [`LIMIT`] tests of one test binary drive real Terraform at the same time.
//!
//! `cargo test` runs every test of a binary in parallel. On a 2-core machine a handful of
//! Terraform processes, each with its AWS SDK, plus moto (one Python process) and our own
//! binaries, slow moto down until the Terraform SDK retries a DynamoDB `PutItem` that had in
//! fact succeeded and then reports its own lock as held by someone else. Tests keep their
//! default parallelism; only the Terraform ones queue here. A permit is per test: the thread
//! that already holds one gets the same one again (a test may build its peers twice), and it is
//! released when the last clone is dropped.

use std::cell::RefCell;
use std::sync::{Arc, Condvar, Mutex, Weak};

/// Terraform-driving tests that may run at once.
pub const LIMIT: usize = 2;

static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

thread_local! {
    static HELD: RefCell<Weak<Permit>> = const { RefCell::new(Weak::new()) };
}

/// One test's right to drive Terraform; released on drop.
#[derive(Debug)]
pub struct Permit(());

impl Drop for Permit {
    fn drop(&mut self) {
        let mut n = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        *n -= 1;
        FREED.notify_one();
    }
}

/// This thread's permit, waiting for one when [`LIMIT`] tests hold theirs.
pub fn permit() -> Arc<Permit> {
    if let Some(p) = HELD.with(|h| h.borrow().upgrade()) {
        return p;
    }
    let mut n = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
    while *n >= LIMIT {
        n = FREED.wait(n).unwrap_or_else(|p| p.into_inner());
    }
    *n += 1;
    drop(n);
    let p = Arc::new(Permit(()));
    HELD.with(|h| *h.borrow_mut() = Arc::downgrade(&p));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_reuses_its_permit_and_others_wait_for_a_free_one() {
        let a = permit();
        let again = permit();
        assert!(Arc::ptr_eq(&a, &again), "one permit per test thread");
        let held = (0..LIMIT - 1)
            .map(|_| std::thread::spawn(permit).join().unwrap())
            .collect::<Vec<_>>();
        // LIMIT permits are out: a new thread must wait until one is dropped.
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let p = permit();
            tx.send(()).unwrap();
            drop(p);
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop((a, again));
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("a freed permit is handed on");
        waiter.join().unwrap();
        drop(held);
    }
}
