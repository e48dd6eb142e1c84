//! Lowering the OS scheduling priority of a long guest call (see "Fairness" in the crate
//! docs).
//!
//! Linux keeps the nice value and the scheduling policy per thread, and a guest call runs
//! entirely on its calling thread (the fiber stack is switched on that thread), so lowering
//! the thread lowers the call and nothing else.
//!
//! A long call is lowered twice: to nice 19, and to the `SCHED_IDLE` policy. Nice 19 alone
//! gives the call a small share of the CPU, but the kernel's EEVDF scheduler still lets it
//! finish its time slice before a waking short call runs, which shows as milliseconds in
//! other callers' tail latency; a `SCHED_IDLE` thread is preempted at once by any normal
//! thread that wakes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
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
/// Set when the process learns, after the probe, that it can no longer restore priorities
/// (a worker that gave up its privileges without keeping `CAP_SYS_NICE`).
static LOWERING_OFF: AtomicBool = AtomicBool::new(false);

/// Turns priority lowering off for the rest of the process's life.
pub(crate) fn turn_lowering_off() {
    LOWERING_OFF.store(true, Ordering::Relaxed);
}

pub(crate) fn can_restore() -> bool {
    if LOWERING_OFF.load(Ordering::Relaxed) {
        return false;
    }
    static CAN_RESTORE: OnceLock<bool> = OnceLock::new();
    *CAN_RESTORE.get_or_init(|| {
        let probe = std::thread::Builder::new()
            .name("zeval-nice-probe".to_owned())
            .spawn(|| -> std::io::Result<()> {
                let tid = Some(gettid());
                let original = getpriority_process(tid)?;
                setpriority_process(tid, LOWERED_NICE)?;
                set_policy(libc::SCHED_IDLE)?;
                set_policy(libc::SCHED_OTHER)?;
                setpriority_process(tid, original)?;
                Ok(())
            });
        let result = match probe {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(std::io::ErrorKind::Other.into())),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(
                    %error,
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
                if self.lowered_from.is_some()
                    && let Err(error) = set_policy(libc::SCHED_IDLE)
                {
                    tracing::debug!(%error, "could not make a long call SCHED_IDLE");
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
        let restored = set_policy(libc::SCHED_OTHER).and_then(|()| {
            setpriority_process(Some(gettid()), original).map_err(std::io::Error::from)
        });
        if let Err(error) = restored {
            // The probe said this works; log it once if the system changed its mind.
            static LOGGED: OnceLock<()> = OnceLock::new();
            LOGGED.get_or_init(|| {
                tracing::warn!(%error, "could not restore the priority of a guest thread");
            });
        }
    }
}

/// Sets the scheduling policy of the calling thread (`SCHED_IDLE` or `SCHED_OTHER`, both
/// with static priority 0).
#[allow(unsafe_code)]
fn set_policy(policy: libc::c_int) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, initialised `sched_param` that outlives the call, and pid 0
    // names the calling thread; the call reads nothing else from this process's memory.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The scheduling policy of the calling thread.
#[cfg(test)]
fn policy() -> libc::c_int {
    std::fs::read_to_string("/proc/thread-self/sched")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("policy"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(-1)
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
                assert_eq!(policy(), libc::SCHED_IDLE);
            }
            drop(priority);
            assert_eq!(nice(), before);
            assert_eq!(policy(), libc::SCHED_OTHER);
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
