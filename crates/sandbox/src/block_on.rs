//! Driving a call's future to completion on the calling thread.

use std::future::Future;
use std::time::Instant;

thread_local! {
    /// One single-threaded runtime per calling thread, created on first use: its timer
    /// bounds guests blocked in host calls (`poll_oneoff` sleeps), and wasmtime-wasi's
    /// host functions expect a tokio context.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread tokio runtime");
}

/// Runs `future` to completion, or returns `None` once `deadline` has passed while it was
/// waiting. (Wasm that computes without waiting is stopped by the epoch callback instead.)
pub(crate) fn block_on_until<F: Future>(deadline: Instant, future: F) -> Option<F::Output> {
    let deadline = tokio::time::Instant::from_std(deadline);
    RUNTIME.with(|runtime| {
        runtime.block_on(async { tokio::time::timeout_at(deadline, future).await.ok() })
    })
}
