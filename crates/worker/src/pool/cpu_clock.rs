//! A worker's CPU time and run state, read by its parent: what tells a call that the load
//! starved (a worker killed at its deadline having run for little of it, though it was ready
//! to run) from one that used its time or went silent on its own.
//!
//! A long call runs at `SCHED_IDLE` and nice 19 (`zeval_sandbox` lowers long calls). While
//! other work holds every CPU such a guest gets almost no time: not enough to reach its epoch
//! check and answer, so the parent kills the worker at the kill margin, and the call was
//! answered as a plain timeout, the code's own (ranked against its implementation, recorded
//! by its testers) although the code hardly ran. The worker's own check
//! (`SandboxError::after_running`) never gets to run then; this one does it from outside.

// `clock_getcpuclockid` and `clock_gettime` on another process's clock have no safe wrapper
// in rustix.
#![allow(unsafe_code)]

use std::time::Duration;

/// The CPU-time clock of a child process: the time all its threads have run.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuClock(libc::clockid_t);

impl CpuClock {
    /// The clock of the process `pid`; `None` when the kernel names none (the process has
    /// gone).
    pub(super) fn of(pid: u32) -> Option<CpuClock> {
        let pid = libc::pid_t::try_from(pid).ok()?;
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `clock` is a valid place for the one `clockid_t` written.
        let status = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
        (status == 0).then_some(CpuClock(clock))
    }

    /// The CPU time the process has used so far; `None` once it has been reaped. One system
    /// call, about a microsecond: every call through a worker reads it once at its start.
    pub(super) fn read(self) -> Option<Duration> {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid place for the one `timespec` written.
        let status = unsafe { libc::clock_gettime(self.0, &mut now) };
        if status != 0 {
            return None;
        }
        Some(Duration::new(
            u64::try_from(now.tv_sec).ok()?,
            u32::try_from(now.tv_nsec).ok()?,
        ))
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

    #[test]
    fn a_childs_cpu_time_grows_while_it_runs_and_is_gone_once_reaped() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .spawn()
            .unwrap();
        let clock = CpuClock::of(child.id()).expect("a clock of a live child");
        let first = clock.read().expect("a live child's CPU time");
        std::thread::sleep(Duration::from_millis(100));
        let second = clock.read();
        child.wait().unwrap();
        let second = second.expect("a child not yet reaped");
        assert!(second > first, "{first:?} then {second:?}");
        assert_eq!(clock.read(), None, "a reaped child's clock");
    }

    #[test]
    fn a_spinning_thread_is_runnable_and_a_sleeping_one_is_not() {
        let mut spinning = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let mut sleeping = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let runnable = |child: &std::process::Child| is_runnable(child.id(), child.id());
        let states = (runnable(&spinning), runnable(&sleeping));
        for child in [&mut spinning, &mut sleeping] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        assert_eq!(states, (true, false), "(spinning, sleeping)");
    }
}
