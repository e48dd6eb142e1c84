//! CPU sets of threads (`sched_getaffinity`/`sched_setaffinity`), for colocating a worker
//! with its caller (`pool::colocate`) and for the worker taking its own set back.

#![allow(unsafe_code)]

/// A set of CPUs.
#[derive(Clone, Copy)]
pub(crate) struct CpuSet(libc::cpu_set_t);

impl CpuSet {
    /// The set the calling thread may run on.
    pub(crate) fn of_calling_thread() -> Option<Self> {
        // SAFETY: a zeroed `cpu_set_t` is a valid (empty) set, and the kernel writes at most
        // the size given.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            (libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) == 0)
                .then_some(CpuSet(set))
        }
    }

    /// The CPU the calling thread runs on now, alone.
    pub(crate) fn current_cpu() -> Option<Self> {
        // SAFETY: `sched_getcpu` takes nothing; `CPU_SET` writes within the set, and the
        // number is checked against its size first.
        unsafe {
            let cpu = usize::try_from(libc::sched_getcpu()).ok()?;
            if cpu >= libc::CPU_SETSIZE as usize {
                return None;
            }
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            Some(CpuSet(set))
        }
    }

    /// Binds thread `tid` (0: the calling thread) to this set; whether the kernel agreed.
    pub(crate) fn bind(&self, tid: libc::pid_t) -> bool {
        // SAFETY: the set is a valid `cpu_set_t` of the size given; the kernel only reads it.
        unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &self.0) == 0 }
    }
}
