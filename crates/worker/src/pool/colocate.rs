//! A call's worker runs on the CPU of the thread that waits for it
//! ([`super::WorkerPoolConfig::colocate`]).
//!
//! The caller writes the request and sleeps until the answer comes, so its CPU is free for
//! the worker. Left to itself, the kernel wakes the worker, and then the caller, on whichever
//! CPU is idle; on a virtual machine an idle virtual CPU is halted, and waking it costs the
//! host's scheduling latency: on this project's 2-vCPU machine a compiled call spent
//! 0.18–1.5 ms outside the sandbox, against 0.08–0.25 ms with both on one CPU
//! (`docs/benchmarks.md`, "A module's bytes sent once, and the worker on its caller's
//! CPU").
//! So for the exchange the caller's thread and the worker's serving thread are both bound to
//! the CPU the caller is on. The caller gets its own set back when the exchange ends, and
//! the worker as soon as it has read the request (`child::serve`): the binding decides
//! where the two wake, not where a long call may run.
//!
//! Only a call that is alone in flight is bound: with more, the CPUs are busy anyway, and
//! callers that share a CPU would pile their workers onto it.
//!
//! Every step is best effort: a refused `sched_setaffinity` (a worker of another user
//! without `CAP_SYS_NICE` here) leaves the kernel's choice, which is only slower.

use crate::affinity::CpuSet;

/// The caller's CPU set before the exchange, given back when dropped.
pub(super) struct Colocated {
    saved: Option<CpuSet>,
}

/// Binds this thread and the worker's thread `serving_thread` (a thread id, which the
/// worker reported) to the CPU this thread runs on now.
pub(super) fn colocate(serving_thread: u32) -> Colocated {
    let not_bound = Colocated { saved: None };
    let (Some(saved), Some(here), Ok(tid)) = (
        CpuSet::of_calling_thread(),
        CpuSet::current_cpu(),
        libc::pid_t::try_from(serving_thread),
    ) else {
        return not_bound;
    };
    if !here.bind(tid) || !here.bind(0) {
        return not_bound;
    }
    Colocated { saved: Some(saved) }
}

/// Whether `tid` is a thread of the (live, unreaped) process `pid`.
pub(super) fn is_thread_of(pid: u32, tid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists()
}

impl Drop for Colocated {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            saved.bind(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Cpus_allowed_list` of thread `tid` of this process.
    fn allowed(tid: i32) -> String {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn this_thread() -> i32 {
        rustix::thread::gettid().as_raw_nonzero().get()
    }

    #[test]
    fn only_a_processs_own_threads_are_its_threads() {
        let pid = std::process::id();
        let me = u32::try_from(this_thread()).unwrap();
        assert!(is_thread_of(pid, me));
        // A thread of another process (init's) is not one of ours.
        assert!(!is_thread_of(pid, 1));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(is_thread_of(child.id(), child.id()));
        assert!(!is_thread_of(child.id(), me));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn both_threads_are_bound_to_the_callers_cpu_and_the_caller_gets_its_set_back() {
        let (sent, received) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            sent.send(this_thread()).unwrap();
            let _ = stopped.recv();
        });
        let tid = received.recv().unwrap();
        let me = this_thread();
        let before = allowed(me);
        if !before.contains([',', '-']) {
            eprintln!("skipped: this thread may run on one CPU only ({before})");
            stop.send(()).unwrap();
            other.join().unwrap();
            return;
        }
        {
            let _colocated = colocate(u32::try_from(tid).unwrap());
            let here = allowed(me);
            assert!(!here.contains([',', '-']), "bound to one CPU: {here}");
            assert_eq!(allowed(tid), here, "the other thread is on the same CPU");
        }
        assert_eq!(allowed(me), before, "the caller's set is back");
        stop.send(()).unwrap();
        other.join().unwrap();
    }
}
