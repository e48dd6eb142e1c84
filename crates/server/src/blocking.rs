//! Blocking work (the store, the orchestrator, guests) started from async handlers, run where
//! it costs the fewest hand-offs between threads.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work`, which blocks, from async code and returns its value, or its panic's message.
///
/// On the multi-threaded runtime (`zeval serve`) it runs on this thread, through tokio's
/// `block_in_place`: the runtime moves this thread's other tasks to another thread meanwhile,
/// and the handler goes on here, writing its response, once `work` is done. `spawn_blocking`
/// hands the work to a blocking thread and its answer back to an async one, and each hand-off
/// wakes a sleeping thread: on the 2-core VM this was measured on, 38 and 55 µs (p50) of a
/// `POST /v1/test` that took about 1 ms (`zeval bench library`, 2026-12-05).
///
/// The evaluator's route does not use it: under eight clients making short calls,
/// `block_in_place` lost 13 % of the calls per second, handing the thread's other tasks to
/// another thread on every call (`evaluator_api::run_blocking`). It suits a route whose work
/// is long next to that hand-off, such as a test run (hundreds of microseconds and more).
///
/// Elsewhere (a current-thread runtime, as in most tests) `block_in_place` is not allowed and
/// the work goes to the blocking pool. Either way nothing bounds `work` here: the caller's
/// limits (deadlines, work slots) do, as they did with `spawn_blocking`.
pub(crate) async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let multi_threaded = Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi_threaded {
        return tokio::task::block_in_place(|| catch_unwind(AssertUnwindSafe(work)))
            .map_err(|panic| panic_message(panic.as_ref()));
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| error.to_string())
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    format!("the task panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_runs_on_the_calling_thread_of_a_multi_threaded_runtime() {
        let caller = std::thread::current().id();
        let ran_on = run(|| std::thread::current().id()).await.unwrap();
        assert_eq!(ran_on, caller);
    }

    #[tokio::test]
    async fn work_goes_to_the_blocking_pool_from_a_current_thread_runtime() {
        let caller = std::thread::current().id();
        let ran_on = run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(ran_on, caller);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_is_an_error_on_either_runtime() {
        let error = run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(error.contains("boom"), "{error}");
        let on_pool = tokio::task::spawn_blocking(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(run(|| -> u32 { panic!("bang") }))
        })
        .await
        .unwrap()
        .unwrap_err();
        assert!(on_pool.contains("bang"), "{on_pool}");
    }
}
