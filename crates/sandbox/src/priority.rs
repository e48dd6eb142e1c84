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

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::process::{Pid, getpriority_process, setpriority_process};
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
        if can_restore() {
            self.lowered_from = lower();
        }
    }
}

impl Drop for CallPriority {
    fn drop(&mut self) {
        if let Some(original) = self.lowered_from.take() {
            restore(original);
        }
    }
}

/// Calls whose code has no epoch checks (compiled modules in a worker, see
/// `ModuleHostConfig::epoch_interruption`) never run the epoch callback that lowers a long
/// call. The epoch ticker, which wakes every tick anyway, sends such a call's thread
/// [`LOWERING_SIGNAL`] once it is due, and the thread lowers itself in the handler.
///
/// Why a signal rather than lowering the thread from the ticker: in a confined worker the
/// guest thread alone keeps `CAP_SYS_NICE` (to come back from nice 19), and the kernel lets
/// a thread renice another only if it holds every capability the other has. A thread may
/// always lower itself, and the worker's filter allows exactly that.
#[derive(Default)]
pub(crate) struct Watchlist {
    calls: Mutex<Vec<Watched>>,
    next_id: AtomicU64,
}

struct Watched {
    id: u64,
    tid: Pid,
    lower_at: Instant,
    /// Whether the ticker has made its one decision for this call.
    decided: bool,
}

/// The signal that asks a watched call's thread to lower itself: `SIGURG`, whose default
/// action is to ignore it, so a stray one harms no thread. Nothing else in zeval uses it.
pub(crate) const LOWERING_SIGNAL: libc::c_int = libc::SIGURG;

thread_local! {
    /// Set while this thread runs a watched call: the handler acts only then, so a signal
    /// that arrives after the call ended leaves the thread alone.
    static IN_WATCHED_CALL: AtomicBool = const { AtomicBool::new(false) };
    /// The nice value the handler lowered this thread from, or [`NOT_LOWERED`].
    static LOWERED_FROM: AtomicI32 = const { AtomicI32::new(NOT_LOWERED) };
}

/// [`LOWERED_FROM`] when the handler has not lowered the thread (no nice value is this low).
const NOT_LOWERED: i32 = i32::MIN;

/// Installs the handler of [`LOWERING_SIGNAL`] for the process (once; later calls do
/// nothing). Call it before a worker confines itself; `rt_sigaction` stays allowed anyway.
#[allow(unsafe_code)]
pub(crate) fn install_lowering_handler() -> std::io::Result<()> {
    static INSTALLED: OnceLock<std::io::Result<()>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        // SAFETY: a zeroed `sigaction` is valid; the handler is an `extern "C"` function
        // that only makes async-signal-safe system calls and touches `const`-initialised
        // thread-locals (no lazy initialisation, no allocation) and errno, which it restores.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_lowering_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(LOWERING_SIGNAL, &action, std::ptr::null_mut()) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        }
    });
    match installed {
        Ok(()) => Ok(()),
        Err(error) => Err(std::io::Error::new(error.kind(), error.to_string())),
    }
}

#[allow(unsafe_code)]
extern "C" fn on_lowering_signal(_signal: libc::c_int) {
    if !IN_WATCHED_CALL.with(|flag| flag.load(Ordering::Relaxed)) {
        return;
    }
    // SAFETY: errno is this thread's; saved and put back so that the interrupted code sees
    // its own. `getpriority`, `setpriority` and `sched_setscheduler` are async-signal-safe
    // system calls on the calling thread (0), and `param` outlives the call.
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        // -1 is both a nice value and the error return: errno tells them apart.
        *errno = 0;
        let original = libc::getpriority(libc::PRIO_PROCESS, 0);
        let readable = original != -1 || *errno == 0;
        if readable
            && original < LOWERED_NICE
            && libc::setpriority(libc::PRIO_PROCESS, 0, LOWERED_NICE) == 0
        {
            LOWERED_FROM.with(|from| from.store(original, Ordering::Relaxed));
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
        }
        *errno = saved;
    }
}

/// A call on [`Watchlist`]: dropped on the call's thread when the call ends, which takes it
/// off the list and restores the thread if it was lowered.
pub(crate) struct Watch<'a> {
    list: &'a Watchlist,
    id: u64,
}

impl Watchlist {
    /// Watches the call running on the calling thread, which started at `started`, until the
    /// returned guard is dropped. Nothing is watched when `threshold` is `None`, when the
    /// process could not raise the thread back, or when the handler could not be installed.
    /// (The handler reads the nice value it lowers from, so a call that never becomes due
    /// costs no system call for it.)
    pub(crate) fn watch(&self, started: Instant, threshold: Option<Duration>) -> Option<Watch<'_>> {
        let threshold = threshold?;
        if !can_restore() {
            return None;
        }
        if let Err(error) = install_lowering_handler() {
            static LOGGED: OnceLock<()> = OnceLock::new();
            LOGGED.get_or_init(|| {
                tracing::warn!(%error, "long compiled calls will not be lowered in priority");
            });
            return None;
        }
        let tid = gettid();
        IN_WATCHED_CALL.with(|flag| flag.store(true, Ordering::Relaxed));
        LOWERED_FROM.with(|from| from.store(NOT_LOWERED, Ordering::Relaxed));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Watched {
            id,
            tid,
            lower_at: started + threshold,
            decided: false,
        });
        Some(Watch { list: self, id })
    }

    /// Signals the threads of the watched calls that have run past their threshold. Called
    /// by the ticker on every tick; cheap when nothing is watched.
    #[allow(unsafe_code)]
    pub(crate) fn lower_due(&self) {
        let mut calls = self.lock();
        if calls.is_empty() {
            return;
        }
        let now = Instant::now();
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        for call in calls.iter_mut() {
            if call.decided || now < call.lower_at {
                continue;
            }
            call.decided = true;
            // SAFETY: a system call with plain integer arguments, to a thread of this
            // process (the list's lock keeps its call, hence the thread, alive).
            unsafe {
                libc::tgkill(pid, call.tid.as_raw_nonzero().get(), LOWERING_SIGNAL);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Watched>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        {
            let mut calls = self.list.lock();
            if let Some(position) = calls.iter().position(|call| call.id == self.id) {
                calls.swap_remove(position);
            }
        }
        // A signal from now on finds the flag clear; one handled before lowered the thread,
        // and says so.
        IN_WATCHED_CALL.with(|flag| flag.store(false, Ordering::SeqCst));
        let original = LOWERED_FROM.with(|from| from.swap(NOT_LOWERED, Ordering::SeqCst));
        if original != NOT_LOWERED {
            restore(original);
        }
    }
}

/// Lowers the calling thread to [`LOWERED_NICE`] and `SCHED_IDLE`, and returns the nice
/// value it had, or `None` when it was not lowered.
fn lower() -> Option<i32> {
    let who = Some(gettid());
    let original = match getpriority_process(who) {
        Ok(original) if original < LOWERED_NICE => original,
        Ok(_) => return None,
        Err(errno) => {
            tracing::debug!(%errno, "could not read the thread's priority");
            return None;
        }
    };
    if let Err(errno) = setpriority_process(who, LOWERED_NICE) {
        tracing::debug!(%errno, "could not lower a long call");
        return None;
    }
    if let Err(error) = set_policy(libc::SCHED_IDLE) {
        tracing::debug!(%error, "could not make a long call SCHED_IDLE");
    }
    Some(original)
}

/// Gives the calling thread back `SCHED_OTHER` and the nice value `original`.
fn restore(original: i32) {
    let restored = set_policy(libc::SCHED_OTHER)
        .and_then(|()| setpriority_process(Some(gettid()), original).map_err(std::io::Error::from));
    if let Err(error) = restored {
        // The probe said this works; log it once if the system changed its mind.
        static LOGGED: OnceLock<()> = OnceLock::new();
        LOGGED.get_or_init(|| {
            tracing::warn!(%error, "could not restore the priority of a guest thread");
        });
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
    use std::sync::Arc;

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
    fn a_due_call_is_signalled_lowers_itself_and_is_restored_when_it_ends() {
        let list = Arc::new(Watchlist::default());
        let (watching, watched) = std::sync::mpsc::channel();
        let (lowered, check) = std::sync::mpsc::channel::<()>();
        let call = {
            let list = Arc::clone(&list);
            std::thread::spawn(move || {
                let before = nice();
                let watch = list.watch(Instant::now(), Some(Duration::from_millis(20)));
                assert!(watch.is_some());
                watching.send(()).unwrap();
                check.recv().unwrap();
                let during = (nice(), policy());
                drop(watch);
                (before, during, (nice(), policy()))
            })
        };
        watched.recv().unwrap();
        // Before the threshold the ticker leaves the call alone.
        list.lower_due();
        assert!(!list.lock()[0].decided);
        std::thread::sleep(Duration::from_millis(25));
        list.lower_due();
        assert!(list.lock()[0].decided);
        lowered.send(()).unwrap();
        let (before, during, after) = call.join().unwrap();
        if can_restore() {
            assert_eq!(during, (LOWERED_NICE, libc::SCHED_IDLE));
        }
        assert_eq!(after, (before, libc::SCHED_OTHER));
        assert!(list.lock().is_empty(), "the call left the list");
        assert!(
            list.watch(Instant::now(), None).is_none(),
            "no threshold, no watch"
        );
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
