//! Ending a worker without holding up the call that ends it.
//!
//! A worker is killed mid-call when its guest overran the deadline, and a guest that ran long
//! runs at `SCHED_IDLE` and nice 19 (`zeval_sandbox` lowers long calls). A `SIGKILL`ed
//! process still has to run to exit: it tears down its address space on its own threads, at
//! their own priority. On CPUs that normal threads keep busy a `SCHED_IDLE` thread gets
//! almost no time, and the parent's `wait` for the killed worker took up to 22 s (measured:
//! a 2 s deadline answered after 6–24 s with four busy loops on this 2-core machine, the
//! calls stuck in `wait4`). So:
//! - after the kill, the worker's threads get the normal policy and nice 0 back
//!   ([`restore_normal_priority`]; the kernel allows it when the worker's `RLIMIT_NICE`
//!   lets it raise itself, as it must to end a long call, or when the server holds
//!   `CAP_SYS_NICE`), so that it ends and frees its memory promptly;
//! - the call waits at most [`REAP_WAIT`] for the exit (time for a killed worker at normal
//!   priority); past it the worker is reaped on a thread of its own, and stays counted as
//!   alive until it is, because its memory is not free yet.

// `sched_setscheduler`, `setpriority` and `waitpid` on another process have no safe wrapper
// in rustix.
#![allow(unsafe_code)]

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// The longest a call waits for a worker it killed to exit before leaving the reaping to a
/// thread of its own. 100 ms: a killed worker at normal priority exits within a few
/// milliseconds on this machine, even under load.
pub(super) const REAP_WAIT: Duration = Duration::from_millis(100);

/// Gives every thread of the (killed, not yet reaped) process `pid` the `SCHED_OTHER` policy
/// and nice 0. Best effort: a thread that has ended, or a kernel that refuses, is skipped.
///
/// The process is not reaped, so `pid` is still its own; a thread id read from its task list
/// may end (and, in theory, be reused) before its priority is set, which costs at most one
/// unrelated thread of this user being set to the default priority.
pub(super) fn restore_normal_priority(pid: u32) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain system calls on a thread id, with a valid `sched_param`.
        unsafe {
            libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param);
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 0);
        }
    }
}

/// Waits for our child `pid`, whose `Child` is gone (it was moved into a reaping thread that
/// could not start).
pub(super) fn wait_for_pid(pid: u32) {
    let mut status = 0;
    // SAFETY: waits for a child of this process that nothing else reaps.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
}

/// The exit status of `child` if it ends within `wait`.
pub(super) fn wait_within(child: &mut Child, wait: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_micros(100);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_process_is_reaped_within_the_wait() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert_eq!(wait_within(&mut child, Duration::from_millis(20)), None);
        child.kill().unwrap();
        restore_normal_priority(child.id());
        let status = wait_within(&mut child, Duration::from_secs(5)).expect("reaped");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    #[test]
    fn a_lowered_thread_gets_the_normal_policy_and_nice_back() {
        // A child that lowers itself, as the sandbox lowers a long call.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "renice -n 19 -p $$ >/dev/null && chrt -i -p 0 $$ && sleep 30",
            ])
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let lowered = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            // SAFETY: reads the policy of a thread id.
            unsafe { libc::sched_getscheduler(pid) == libc::SCHED_IDLE }
        });
        assert!(lowered, "the child never lowered itself");
        // Without CAP_SYS_NICE (not root) the kernel allows it only within RLIMIT_NICE, as it
        // does for the worker, whose limit the confinement sets; a plain test process has 0.
        if rustix::process::geteuid().as_raw() != 0 {
            child.kill().unwrap();
            child.wait().unwrap();
            eprintln!("not root: the restore is checked only with CAP_SYS_NICE");
            return;
        }
        restore_normal_priority(child.id());
        // SAFETY: reads the policy of a thread id.
        let policy = unsafe { libc::sched_getscheduler(pid) };
        let nice = rustix::process::getpriority_process(rustix::process::Pid::from_raw(pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(policy, libc::SCHED_OTHER);
        assert_eq!(nice.unwrap(), 0);
    }
}
