//! A module's copy-on-write memory image, made when the module is loaded instead of at its
//! first instantiation, with the kernel's transient `EBUSY` retried.
//!
//! wasmtime makes the image lazily, when a module is first instantiated: on Linux it writes
//! the module's initial memory into a `memfd` and seals it (`F_SEAL_WRITE` among others), so
//! that nothing can change what every instance starts from. Sealing against writes fails with
//! `EBUSY` while the kernel still holds extra references to some of the file's pages (it
//! waits about 70 ms for them, then gives up). That is, most likely, what made a first call of
//! CPython (its image is 20 MB) fail on this VM, rarely, with "the guest failed: Device or
//! resource busy (os error 16)": no other step of that call returns `EBUSY`, though the failure
//! was not reproduced (2,200 sealed 20 MiB memfds, some under memory compaction, gave none).
//! At a first call it failed that call; in a worker's warm-up it failed the worker's start,
//! and with it `zeval serve`'s. Made here, at load, an `EBUSY` is waited out and retried (and
//! logged, so a recurrence shows whether this was the step), and the first call no longer
//! pays for the image.

use std::time::Duration;

use wasmtime::Module;

/// How many times the image is attempted before its error is returned.
const ATTEMPTS: u32 = 5;

/// The wait before the second attempt, doubled before each later one: at most 150 ms in all
/// (10 + 20 + 40 + 80), on top of the kernel's own wait in each attempt.
const FIRST_WAIT: Duration = Duration::from_millis(10);

/// Makes `module`'s memory image now (nothing to do where wasmtime maps none: without
/// copy-on-write images, or off Linux).
pub(crate) fn prepare(module: &Module) -> wasmtime::Result<()> {
    retrying_busy(|| module.initialize_copy_on_write_image())
}

/// Runs `attempt` until it succeeds, fails with something other than `EBUSY`, or has been
/// tried [`ATTEMPTS`] times.
fn retrying_busy<T>(mut attempt: impl FnMut() -> wasmtime::Result<T>) -> wasmtime::Result<T> {
    let mut wait = FIRST_WAIT;
    for _ in 1..ATTEMPTS {
        match attempt() {
            Err(error) if is_busy(&error) => {
                tracing::warn!(
                    "a module's memory image could not be sealed yet ({error:#}); retrying in {wait:?}"
                );
                std::thread::sleep(wait);
                wait *= 2;
            }
            other => return other,
        }
    }
    attempt()
}

fn is_busy(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            == Some(libc::EBUSY)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the memfd crate returns when the seals cannot be added: its own error, whose
    /// source is the system's.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot add seals to the memfd")]
    struct AddSeals(#[source] std::io::Error);

    fn busy() -> wasmtime::Error {
        wasmtime::Error::new(AddSeals(std::io::Error::from_raw_os_error(libc::EBUSY)))
    }

    #[test]
    fn busy_is_retried_until_it_clears() {
        let mut attempts = 0;
        let result = retrying_busy(|| {
            attempts += 1;
            if attempts < 3 {
                Err(busy())
            } else {
                Ok(attempts)
            }
        });
        assert_eq!(result.unwrap(), 3);
    }

    #[test]
    fn busy_that_stays_is_returned_after_the_last_attempt() {
        let mut attempts = 0;
        let result: wasmtime::Result<()> = retrying_busy(|| {
            attempts += 1;
            Err(busy())
        });
        assert!(is_busy(&result.unwrap_err()));
        assert_eq!(attempts, ATTEMPTS);
    }

    #[test]
    fn other_errors_are_returned_at_once() {
        let mut attempts = 0;
        let result: wasmtime::Result<()> = retrying_busy(|| {
            attempts += 1;
            Err(wasmtime::Error::new(std::io::Error::from_raw_os_error(
                libc::ENOMEM,
            )))
        });
        assert!(result.is_err());
        assert_eq!(attempts, 1);
    }

    #[test]
    fn a_module_with_a_data_segment_gets_its_image() {
        let engine = wasmtime::Engine::default();
        let module = Module::new(
            &engine,
            r#"(module (memory 1) (data (i32.const 0) "snapshot"))"#,
        )
        .unwrap();
        prepare(&module).unwrap();
    }
}
