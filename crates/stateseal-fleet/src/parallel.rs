//! Runs one async job per item with at most N in flight, and hands each result to the caller
//! as it arrives (for progress events). Results come back in the order of the items.

use std::future::Future;

use tokio::task::JoinSet;

/// Runs `job(item)` for every item, `concurrency` at a time (at least 1), calling `done` with
/// each result as it completes.
pub async fn run<I, T, Fut>(
    items: Vec<I>,
    concurrency: usize,
    job: impl Fn(I) -> Fut,
    mut done: impl FnMut(&T),
) -> Vec<T>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let total = items.len();
    let mut results: Vec<Option<T>> = (0..total).map(|_| None).collect();
    let mut pending = items.into_iter().enumerate();
    let mut set = JoinSet::new();
    let spawn = |set: &mut JoinSet<(usize, T)>, (i, item): (usize, I)| {
        let fut = job(item);
        set.spawn(async move { (i, fut.await) });
    };
    for next in pending.by_ref().take(concurrency.max(1)) {
        spawn(&mut set, next);
    }
    while let Some(joined) = set.join_next().await {
        let (i, t) = match joined {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        done(&t);
        results[i] = Some(t);
        if let Some(next) = pending.next() {
            spawn(&mut set, next);
        }
    }
    results.into_iter().flatten().collect()
}
