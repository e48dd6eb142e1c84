//! Driving a call's future to completion on the calling thread.

use std::future::Future;
use std::time::Duration;

thread_local! {
    /// One single-threaded runtime per calling thread, created on first use: its timer
    /// bounds guests blocked in host calls (`poll_oneoff` sleeps), and wasmtime-wasi's
    /// host functions expect a tokio context.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread tokio runtime");
}

/// Runs `future` to completion, or returns `None` once `limit` has passed while it was
/// waiting. (Wasm that computes without waiting is stopped by the epoch deadline instead.)
pub(crate) fn block_on_with_timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    RUNTIME
        .with(|runtime| runtime.block_on(async { tokio::time::timeout(limit, future).await.ok() }))
}
