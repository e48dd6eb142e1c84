//! Lowering the OS scheduling priority of a long guest call (see "Fairness" in the crate
//! docs).
//!
//! Linux keeps the nice value per thread, and a guest call runs entirely on its calling
//! thread (the fiber stack is switched on that thread), so renicing the thread renices the
//! call and nothing else.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{getpriority_process, setpriority_process};
use rustix::thread::gettid;

/// The nice value a long call is lowered to: the lowest priority there is.
pub const LOWERED_NICE: i32 = 19;

/// Whether this process may raise a thread's priority back after lowering it (needs
/// `CAP_SYS_NICE` or a sufficient `RLIMIT_NICE`). Probed once per process on a throwaway
/// thread, so a failed probe leaves no thread lowered. Without it, lowering is skipped
/// altogether: the calling threads are pooled, and a thread left at nice 19 would slow every
/// later call that lands on it.
fn can_restore() -> bool {
    static CAN_RESTORE: OnceLock<bool> = OnceLock::new();
    *CAN_RESTORE.get_or_init(|| {
        let probe = std::thread::Builder::new()
            .name("zeval-nice-probe".to_owned())
            .spawn(|| -> rustix::io::Result<()> {
                let tid = Some(gettid());
                let original = getpriority_process(tid)?;
                setpriority_process(tid, LOWERED_NICE)?;
                setpriority_process(tid, original)
            });
        let result = match probe {
            Ok(handle) => handle.join().unwrap_or(Err(rustix::io::Errno::INVAL)),
            Err(_) => Err(rustix::io::Errno::AGAIN),
        };
        match result {
            Ok(()) => true,
            Err(errno) => {
                tracing::warn!(
                    %errno,
                    "long guest calls will not be lowered in priority: this process cannot \
                     raise a thread's priority back (it needs CAP_SYS_NICE or RLIMIT_NICE)"
                );
                false
            }
        }
    })
}

/// The priority state of one call on the current thread: lowered once the call has run for
/// its threshold, restored when dropped (the store, which owns it, is dropped on the thread
/// that ran the call).
pub(crate) struct CallPriority {
    started: Instant,
    threshold: Option<Duration>,
    /// The thread's nice value before it was lowered, while lowered.
    lowered_from: Option<i32>,
}

impl CallPriority {
    /// `threshold` `None` never lowers.
    pub(crate) fn new(started: Instant, threshold: Option<Duration>) -> Self {
        Self {
            started,
            threshold,
            lowered_from: None,
        }
    }

    /// Lowers the current thread to [`LOWERED_NICE`] once the call has run past its
    /// threshold. Cheap when there is nothing to do (called on every epoch tick).
    pub(crate) fn lower_if_due(&mut self) {
        let Some(threshold) = self.threshold else {
            return;
        };
        if self.lowered_from.is_some() || self.started.elapsed() < threshold {
            return;
        }
        // Decided once per call, whatever happens below.
        self.threshold = None;
        if !can_restore() {
            return;
        }
        let tid = Some(gettid());
        match getpriority_process(tid) {
            Ok(original) if original < LOWERED_NICE => {
                match setpriority_process(tid, LOWERED_NICE) {
                    Ok(()) => self.lowered_from = Some(original),
                    Err(errno) => tracing::debug!(%errno, "could not lower a long call"),
                }
            }
            Ok(_) => {}
            Err(errno) => tracing::debug!(%errno, "could not read the thread's priority"),
        }
    }
}

impl Drop for CallPriority {
    fn drop(&mut self) {
        let Some(original) = self.lowered_from.take() else {
            return;
        };
        if let Err(errno) = setpriority_process(Some(gettid()), original) {
            // The probe said this works; log it once if the system changed its mind.
            static LOGGED: OnceLock<()> = OnceLock::new();
            LOGGED.get_or_init(|| {
                tracing::warn!(%errno, "could not restore the priority of a guest thread");
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice() -> i32 {
        getpriority_process(Some(gettid())).unwrap()
    }

    #[test]
    fn lowers_after_the_threshold_and_restores_on_drop() {
        std::thread::spawn(|| {
            let before = nice();
            let mut priority = CallPriority::new(Instant::now(), Some(Duration::from_millis(20)));
            priority.lower_if_due();
            assert_eq!(nice(), before, "lowered before the threshold");
            std::thread::sleep(Duration::from_millis(25));
            priority.lower_if_due();
            if can_restore() {
                assert_eq!(nice(), LOWERED_NICE);
            }
            drop(priority);
            assert_eq!(nice(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn no_threshold_never_lowers() {
        std::thread::spawn(|| {
            let before = nice();
            let mut priority = CallPriority::new(Instant::now() - Duration::from_secs(5), None);
            priority.lower_if_due();
            assert_eq!(nice(), before);
        })
        .join()
        .unwrap();
    }
}
