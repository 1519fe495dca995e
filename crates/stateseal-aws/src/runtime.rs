//! The process-wide runtime every synchronous SDK call runs on, and [`block_on_thread`] to reach
//! it from synchronous code (inside another tokio runtime included): SDK clients, their
//! connection pools and credential caches live in one runtime for the whole process.

use std::future::Future;
use std::sync::OnceLock;

/// The process-wide runtime every synchronous SDK call runs on. It lives as long as the process,
/// so connection pools and credential caches built on it stay valid between calls.
fn aws_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("stateseal-aws")
            .enable_all()
            .build()
            .expect("the AWS tokio runtime builds")
    })
}

/// Runs `fut` to completion on the process-wide AWS runtime and returns its output. A scoped
/// thread of its own calls into the runtime, so this is safe from synchronous code running inside
/// another runtime (where `Runtime::block_on` would panic); the calling thread blocks until the
/// future is done.
pub fn block_on_thread<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("stateseal-aws-call".into())
            .spawn_scoped(scope, || aws_runtime().block_on(fut))
            .expect("spawning a thread")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_thread_works_inside_a_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(async { block_on_thread(async { 7 }) });
        assert_eq!(got, 7);
    }
}
