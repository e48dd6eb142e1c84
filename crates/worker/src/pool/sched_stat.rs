//! How much of a call's time a worker's guest had, read by its parent: what tells a call that
//! the load starved (killed at its deadline, ready to run but having had little of the CPU)
//! from one that used its time or went silent on its own.
//!
//! A long call runs at `SCHED_IDLE` and nice 19 (`zeval_sandbox` lowers long calls). While
//! other work holds every CPU such a guest gets almost no time: not enough to reach its epoch
//! check and answer, so the parent kills the worker at the kill margin, and the call was
//! answered as a plain timeout, the code's own (ranked against its implementation, recorded
//! by its testers) although the code hardly ran. The worker's own check
//! (`SandboxError::after_running`) never gets to run then; this one does it from outside,
//! from the kernel's scheduler statistics of the worker's serving thread
//! (`/proc/<pid>/task/<tid>/schedstat`, whose first field is its time on a CPU) and its state
//! at the kill (`R`: running or waiting for a CPU). The second field, the time it waited for
//! a CPU, would say it directly, but the kernel adds a wait only when the wait ends: a guest
//! that never gets a CPU again shows none.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

/// The scheduler statistics of one thread, kept open: each read is one `pread`, about a
/// microsecond, and every call through a worker reads them once at its start.
#[derive(Debug)]
pub(super) struct SchedStat(File);

impl SchedStat {
    /// The statistics of the thread `tid` of the process `pid`; `None` when the kernel
    /// keeps none (built without `CONFIG_SCHED_INFO`) or the thread has gone.
    pub(super) fn of(pid: u32, tid: u32) -> Option<SchedStat> {
        let file = File::open(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
        let stat = SchedStat(file);
        stat.on_cpu().map(|_| stat)
    }

    /// The time the thread has run on a CPU, so far; `None` once it has gone.
    pub(super) fn on_cpu(&self) -> Option<Duration> {
        // "<ns on a CPU> <ns waiting for one> <time slices>\n": 60 bytes at most.
        let mut text = [0u8; 96];
        let read = self.0.read_at(&mut text, 0).ok()?;
        let text = std::str::from_utf8(&text[..read]).ok()?;
        let on_cpu: u64 = text.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(on_cpu))
    }
}

/// Whether the thread `tid` of the process `pid` is running or waiting for a CPU (state `R`
/// in `/proc/<pid>/task/<tid>/stat`), rather than asleep or stopped. A starved guest is
/// runnable; a worker that went silent on its own (asleep, blocked, or trickling its answer)
/// is not, and its timeout stays its own however little CPU it used.
pub(super) fn is_runnable(pid: u32, tid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
        return false;
    };
    // "<tid> (<name>) <state> …": the name may hold spaces and parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "R")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Busy threads of this process while `check` runs.
    fn beside_busy_threads<T>(threads: usize, check: impl FnOnce() -> T) -> T {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinners: Vec<_> = (0..threads)
            .map(|_| {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let outcome = check();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for spinner in spinners {
            spinner.join().unwrap();
        }
        outcome
    }

    #[test]
    fn a_thread_beside_busy_ones_is_runnable_with_little_cpu_and_a_sleeping_one_is_not() {
        let mut spinning = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let mut sleeping = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let stat = SchedStat::of(spinning.id(), spinning.id()).expect("scheduler statistics");
        std::thread::sleep(Duration::from_millis(100));
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        let (on_cpu, runnable) = beside_busy_threads(16 * cpus, || {
            let before = stat.on_cpu().unwrap();
            std::thread::sleep(Duration::from_millis(500));
            (
                stat.on_cpu().unwrap() - before,
                is_runnable(spinning.id(), spinning.id()),
            )
        });
        let asleep = is_runnable(sleeping.id(), sleeping.id());
        for child in [&mut spinning, &mut sleeping] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        assert!(runnable, "a spinning thread");
        assert!(!asleep, "a sleeping thread");
        // About a seventeenth of a CPU's 500 ms.
        assert!(
            on_cpu < Duration::from_millis(250),
            "a thread beside {} busy ones ran {on_cpu:?} of 500 ms",
            16 * cpus
        );
        assert_eq!(stat.on_cpu(), None, "a reaped thread's statistics");
    }
}
