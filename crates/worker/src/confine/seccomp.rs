//! The system-call allowlist of a confined worker, and the seccomp filter built from it.
//!
//! [`ALLOWLIST`] is the whole policy: a call it does not list, or lists with argument checks
//! that fail, kills the process (`SECCOMP_RET_KILL_PROCESS`, seen by the parent as SIGSYS).
//! The filter's architecture check also kills a call made through another ABI (x86's
//! `int 0x80`, x32), so the table's numbers are the only way in.
//!
//! To extend it: strace the real worker after confinement (`strace -f -e trace=all`), and
//! add a row with the reason, the narrowest argument check that is cheap (see [`Args`]), and
//! the caller that needs it. Numbers come from `libc::SYS_*`, so the table follows the
//! target architecture; a call that exists on only one architecture needs a `#[cfg]`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::ConfineError;

/// The highest fd the worker reads or writes: 0 is its socket to the parent, 1 is kept for
/// stray prints (and the tests), 2 is its log. Any other fd it holds (the memfds of wasm
/// images, anything a parent leaked by mistake) can only be mapped or closed.
pub(crate) const MAX_STDIO_FD: u64 = 2;

/// The lowest priority nice value there is, the highest a thread may be set to.
const LOWEST_NICE: i32 = 19;

/// An argument check on an allowed call. Numbers that depend on the process (its pid, its
/// threads) are filled in from [`Context`] when the filter is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Args {
    /// Any arguments.
    Any,
    /// The fd (argument 0) is at most [`MAX_STDIO_FD`].
    StdioFd,
    /// The fd (argument 0) is at most [`MAX_STDIO_FD`], and no destination address
    /// (argument 4 is NULL): `send`, as std's `UnixStream::write` makes it.
    StdioFdNoAddress,
    /// `which` (argument 0) is `PRIO_PROCESS` and `who` (argument 1) is 0 or a thread of this
    /// process: the worker's user (shared with other workers) owns other processes, whose
    /// priority must stay out of reach.
    OwnThreadPriority,
    /// As [`Args::OwnThreadPriority`], and the nice value (argument 2) is within
    /// [`Context::nice_floor`]`..=19`. The confining thread keeps `CAP_SYS_NICE`, with which
    /// the kernel would let it raise its threads above normal priority.
    OwnThreadNice,
    /// `pid` (argument 0) is 0, the calling thread.
    CallingThread,
    /// `pid` (argument 0) is 0 and the policy (argument 1) is `SCHED_OTHER` or `SCHED_IDLE`
    /// (exactly: `SCHED_RESET_ON_FORK` or'ed in fails too). The `sched_param` the third
    /// argument points to cannot be read by the filter, but the kernel refuses any static
    /// priority other than 0 with these policies, `CAP_SYS_NICE` or not: no real-time policy
    /// is reachable.
    CallingThreadIdleOrOther,
    /// The thread-group id (argument 0) is this process.
    OwnProcess,
    /// The request (argument 1) is [`PAGEMAP_SCAN`].
    PagemapScan,
}

/// `PAGEMAP_SCAN` (Linux 6.7, `linux/fs.h`): `_IOWR('f', 16, struct pm_scan_arg)`, whose
/// struct is twelve `__u64` fields. Older headers, such as this machine's, lack it.
pub(crate) const PAGEMAP_SCAN: u64 = (3 << 30) | ((12 * 8) << 16) | ((b'f' as u64) << 8) | 16;

/// One allowed system call.
#[derive(Debug)]
pub(crate) struct Allowed {
    /// The `libc` constant, e.g. `SYS_read`.
    pub(crate) symbol: &'static str,
    pub(crate) number: libc::c_long,
    pub(crate) args: Args,
    /// Who needs it, after confinement.
    pub(crate) why: &'static str,
}

impl Allowed {
    /// The system call's name, e.g. `read`.
    pub(crate) fn name(&self) -> &'static str {
        self.symbol.strip_prefix("SYS_").unwrap_or(self.symbol)
    }
}

/// A row of [`ALLOWLIST`]: the name and number come from the same `libc` constant.
macro_rules! allowed {
    ($sys:ident, $args:expr, $why:expr $(,)?) => {
        Allowed {
            symbol: stringify!($sys),
            number: libc::$sys,
            args: $args,
            why: $why,
        }
    };
}

/// Every system call a confined worker may make. Not here, so forbidden, among others:
/// `open`/`openat` (no file access), `socket`/`connect`/`bind`/`accept` (no network),
/// `execve`, `clone`/`clone3`/`fork` (no processes or threads), `ptrace`,
/// `process_vm_*`, `kill` (no signals to other processes), `prctl`, `set*id`,
/// `setrlimit`/`prlimit64`, `seccomp`, `bpf`, `ioctl` (but `PAGEMAP_SCAN`), `io_uring_*`, `userfaultfd`,
/// `perf_event_open`, `memfd_create`, `fstat`, `poll`/`ppoll`, `set_robust_list` and `rseq`
/// (thread start only), `membarrier`.
pub(crate) const ALLOWLIST: &[Allowed] = &[
    // Talking to the parent and logging.
    allowed!(SYS_read, Args::StdioFd, "requests from the parent on fd 0"),
    allowed!(SYS_readv, Args::StdioFd, "vectored reads of the same"),
    allowed!(
        SYS_recvfrom,
        Args::StdioFd,
        "std's UnixStream::read is recv(2) on fd 0"
    ),
    allowed!(SYS_write, Args::StdioFd, "responses on fd 0, logs on fd 2"),
    allowed!(
        SYS_writev,
        Args::StdioFd,
        "vectored writes of the same (std's write_vectored)"
    ),
    allowed!(
        SYS_sendto,
        Args::StdioFdNoAddress,
        "std's UnixStream::write is send(2), with MSG_NOSIGNAL, on fd 0"
    ),
    allowed!(
        SYS_close,
        Args::Any,
        "dropping fds the worker holds; it can open no new ones"
    ),
    // Memory: wasmtime's pooling allocator and glibc's malloc.
    allowed!(
        SYS_mmap,
        Args::Any,
        "wasmtime maps instance memories and CoW images; malloc"
    ),
    allowed!(
        SYS_mprotect,
        Args::Any,
        "wasmtime makes grown memory and tables accessible"
    ),
    allowed!(
        SYS_munmap,
        Args::Any,
        "malloc frees large blocks; thread stack teardown"
    ),
    allowed!(SYS_mremap, Args::Any, "realloc of large blocks"),
    allowed!(
        SYS_madvise,
        Args::Any,
        "wasmtime decommits the slots of finished instances"
    ),
    allowed!(SYS_brk, Args::Any, "malloc's main arena"),
    // Threads and time.
    allowed!(
        SYS_futex,
        Args::Any,
        "parking: std locks, thread join, tokio's current-thread park"
    ),
    allowed!(SYS_sched_yield, Args::Any, "lock back-off"),
    allowed!(
        SYS_clock_gettime,
        Args::Any,
        "clocks the vDSO cannot read, e.g. thread CPU time"
    ),
    allowed!(
        SYS_clock_nanosleep,
        Args::Any,
        "std::thread::sleep (the epoch ticker)"
    ),
    allowed!(SYS_nanosleep, Args::Any, "sleeping through an older libc"),
    allowed!(
        SYS_getrusage,
        Args::Any,
        "CPU time of the worker and its threads"
    ),
    allowed!(
        SYS_getrandom,
        Args::Any,
        "HashMap seeds and other randomness"
    ),
    allowed!(
        SYS_restart_syscall,
        Args::Any,
        "the kernel resumes a sleep a signal interrupted"
    ),
    // Signals: wasmtime turns faults in guest code into traps with a signal handler.
    allowed!(
        SYS_rt_sigaction,
        Args::Any,
        "wasmtime's trap handlers; abort() resets SIGABRT"
    ),
    allowed!(
        SYS_rt_sigprocmask,
        Args::Any,
        "signal masks around handlers and in abort()"
    ),
    allowed!(
        SYS_rt_sigreturn,
        Args::Any,
        "returning from any signal handler"
    ),
    allowed!(
        SYS_sigaltstack,
        Args::Any,
        "wasmtime's per-thread signal stack; std's teardown"
    ),
    allowed!(
        SYS_getpid,
        Args::Any,
        "abort()/raise() address the calling thread"
    ),
    allowed!(
        SYS_gettid,
        Args::Any,
        "the sandbox names the thread whose priority it changes"
    ),
    allowed!(
        SYS_tgkill,
        Args::OwnProcess,
        "abort()/raise() signal the calling thread, so a Rust abort shows as SIGABRT"
    ),
    // Priority of long guest calls (zeval-sandbox's priority module).
    allowed!(
        SYS_getpriority,
        Args::OwnThreadPriority,
        "reading a guest thread's nice value"
    ),
    allowed!(
        SYS_setpriority,
        Args::OwnThreadNice,
        "nice 19 for a long call and back (CAP_SYS_NICE or RLIMIT_NICE 20 allows the way \
         back; never above the worker's starting priority)"
    ),
    allowed!(
        SYS_sched_getscheduler,
        Args::CallingThread,
        "reading a guest thread's policy"
    ),
    allowed!(
        SYS_sched_setscheduler,
        Args::CallingThreadIdleOrOther,
        "SCHED_IDLE for a long call, SCHED_OTHER after it; both take static priority 0 only \
         (the kernel refuses others), so no real-time policy even with CAP_SYS_NICE"
    ),
    allowed!(
        SYS_sched_setaffinity,
        Args::CallingThread,
        "the serving thread takes back its starting CPU set once it has read a request (the \
         parent binds it to the caller's CPU for the wake-up: pool::colocate); its own set \
         only, and the kernel keeps it within the process's cpuset"
    ),
    allowed!(
        SYS_ioctl,
        Args::PagemapScan,
        "wasmtime's pooling allocator asks which pages of a returned instance's memory were \
         written (PAGEMAP_SCAN on /proc/self/pagemap, opened before confinement), to reset \
         only those; no other ioctl"
    ),
    // Ending.
    allowed!(SYS_exit, Args::Any, "a thread ends"),
    allowed!(SYS_exit_group, Args::Any, "the worker ends"),
];

/// The numbers that depend on the process.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// This process's pid (its thread-group id).
    pub(crate) pid: i32,
    /// Every thread of the process at confinement; no more can be created after it.
    pub(crate) tids: Vec<i32>,
    /// The lowest nice value `setpriority` may set: 0, or the confining thread's nice value
    /// at confinement if it started above normal priority, so that a lowered guest thread
    /// can still be restored to it. At most 0.
    pub(crate) nice_floor: i32,
}

/// Every thread of this process, from `/proc/self/task`. Checks that the list includes the
/// calling thread: a `/proc` of another pid namespace would name other numbers.
pub(crate) fn own_threads() -> Result<Vec<i32>, ConfineError> {
    let read_proc = |source| ConfineError::ReadProc {
        path: "/proc/self/task".to_owned(),
        source,
    };
    let mut tids = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").map_err(read_proc)? {
        let entry = entry.map_err(read_proc)?;
        if let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        {
            tids.push(tid);
        }
    }
    tids.sort_unstable();
    let me = rustix::thread::gettid().as_raw_nonzero().get();
    if !tids.contains(&me) {
        return Err(ConfineError::ThreadsNotListed { tid: me });
    }
    Ok(tids)
}

/// Compiles [`ALLOWLIST`] for the running architecture.
pub(crate) fn build(context: &Context) -> Result<BpfProgram, ConfineError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| ConfineError::UnsupportedArch(std::env::consts::ARCH))?;
    let mut rules = BTreeMap::new();
    for allowed in ALLOWLIST {
        rules.insert(allowed.number, conditions(allowed.args, context)?);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )?;
    Ok(filter.try_into()?)
}

/// Installs the filter on every thread at once (`SECCOMP_FILTER_FLAG_TSYNC`): the worker has
/// threads already (the epoch ticker), and a thread left unfiltered would hold every system
/// call. Also sets `PR_SET_NO_NEW_PRIVS` (on every thread, through TSYNC).
pub(crate) fn apply(program: &BpfProgram) -> Result<(), ConfineError> {
    seccompiler::apply_filter_all_threads(program).map_err(ConfineError::SeccompApply)
}

/// How many rows of [`ALLOWLIST`] check arguments.
pub(crate) fn checked_count() -> usize {
    ALLOWLIST
        .iter()
        .filter(|allowed| allowed.args != Args::Any)
        .count()
}

/// The rules of one row: any rule that matches allows the call; an empty list allows it
/// whatever the arguments.
fn conditions(args: Args, context: &Context) -> Result<Vec<SeccompRule>, ConfineError> {
    use SeccompCmpArgLen::{Dword, Qword};
    use SeccompCmpOp::{Eq, Ge, Le};
    let cond = |arg, len, op, value| SeccompCondition::new(arg, len, op, value);
    let rule = |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions);
    // `who`/`pid`/`tgid` are C ints; the filter compares their 32 bits as unsigned, so a
    // negative value never passes a comparison with a small positive one.
    let as_arg = |id: i32| u64::from(id as u32);
    Ok(match args {
        Args::Any => Vec::new(),
        Args::StdioFd => vec![rule(vec![cond(0, Dword, Le, MAX_STDIO_FD)?])?],
        Args::PagemapScan => vec![rule(vec![cond(1, Qword, Eq, PAGEMAP_SCAN)?])?],
        Args::StdioFdNoAddress => {
            vec![rule(vec![
                cond(0, Dword, Le, MAX_STDIO_FD)?,
                cond(4, Qword, Eq, 0)?,
            ])?]
        }
        Args::OwnThreadPriority => std::iter::once(0)
            .chain(context.tids.iter().copied())
            .map(|who| {
                rule(vec![
                    cond(0, Dword, Eq, libc::PRIO_PROCESS as u64)?,
                    cond(1, Dword, Eq, as_arg(who))?,
                ])
            })
            .collect::<Result<_, _>>()?,
        Args::OwnThreadNice => {
            // As unsigned 32-bit numbers, 0..=19 is `<= 19`, and a negative floor adds the
            // range from the floor up to -1, the top of the unsigned range.
            let mut ranges = vec![cond(2, Dword, Le, LOWEST_NICE as u64)?];
            if context.nice_floor < 0 {
                ranges.push(cond(2, Dword, Ge, as_arg(context.nice_floor))?);
            }
            let mut rules = Vec::new();
            for who in std::iter::once(0).chain(context.tids.iter().copied()) {
                for range in &ranges {
                    rules.push(rule(vec![
                        cond(0, Dword, Eq, libc::PRIO_PROCESS as u64)?,
                        cond(1, Dword, Eq, as_arg(who))?,
                        range.clone(),
                    ])?);
                }
            }
            rules
        }
        Args::CallingThread => vec![rule(vec![cond(0, Dword, Eq, 0)?])?],
        Args::CallingThreadIdleOrOther => [libc::SCHED_OTHER, libc::SCHED_IDLE]
            .into_iter()
            .map(|policy| {
                rule(vec![
                    cond(0, Dword, Eq, 0)?,
                    cond(1, Dword, Eq, as_arg(policy))?,
                ])
            })
            .collect::<Result<_, _>>()?,
        Args::OwnProcess => vec![rule(vec![cond(0, Dword, Eq, as_arg(context.pid))?])?],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls that must never be allowed, whatever strace shows: each opens a way out of the
    /// worker (files, network, processes, other processes' memory, privileges, the kernel's
    /// larger attack surfaces).
    fn forbidden() -> Vec<(&'static str, libc::c_long)> {
        let mut forbidden = vec![
            ("openat", libc::SYS_openat),
            ("openat2", libc::SYS_openat2),
            ("open_by_handle_at", libc::SYS_open_by_handle_at),
            ("socket", libc::SYS_socket),
            ("socketpair", libc::SYS_socketpair),
            ("connect", libc::SYS_connect),
            ("bind", libc::SYS_bind),
            ("accept4", libc::SYS_accept4),
            ("execve", libc::SYS_execve),
            ("execveat", libc::SYS_execveat),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("ptrace", libc::SYS_ptrace),
            ("process_vm_readv", libc::SYS_process_vm_readv),
            ("process_vm_writev", libc::SYS_process_vm_writev),
            ("kill", libc::SYS_kill),
            ("tkill", libc::SYS_tkill),
            ("prctl", libc::SYS_prctl),
            ("setuid", libc::SYS_setuid),
            ("setresuid", libc::SYS_setresuid),
            ("setgroups", libc::SYS_setgroups),
            ("setrlimit", libc::SYS_setrlimit),
            ("prlimit64", libc::SYS_prlimit64),
            ("seccomp", libc::SYS_seccomp),
            ("bpf", libc::SYS_bpf),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("userfaultfd", libc::SYS_userfaultfd),
            ("perf_event_open", libc::SYS_perf_event_open),
            ("memfd_create", libc::SYS_memfd_create),
            ("mount", libc::SYS_mount),
            ("unshare", libc::SYS_unshare),
            ("setns", libc::SYS_setns),
            ("pidfd_open", libc::SYS_pidfd_open),
            ("landlock_restrict_self", libc::SYS_landlock_restrict_self),
        ];
        #[cfg(target_arch = "x86_64")]
        forbidden.extend([
            ("open", libc::SYS_open),
            ("fork", libc::SYS_fork),
            ("vfork", libc::SYS_vfork),
        ]);
        forbidden
    }

    #[test]
    fn the_allowlist_holds_no_dangerous_call() {
        for (name, number) in forbidden() {
            assert!(
                !ALLOWLIST.iter().any(|allowed| allowed.number == number),
                "{name} must not be allowed"
            );
        }
    }

    #[test]
    fn ioctl_is_allowed_only_as_pagemap_scan() {
        let rows: Vec<_> = ALLOWLIST
            .iter()
            .filter(|allowed| allowed.number == libc::SYS_ioctl)
            .collect();
        assert_eq!(rows.len(), 1);
        assert!(matches!(rows[0].args, Args::PagemapScan));
        // `_IOWR('f', 16, struct pm_scan_arg)` as the kernel defines it.
        assert_eq!(PAGEMAP_SCAN, 0xC060_6610);
    }

    #[test]
    fn every_row_is_unique_named_and_explained() {
        let mut numbers: Vec<_> = ALLOWLIST.iter().map(|allowed| allowed.number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(
            numbers.len(),
            ALLOWLIST.len(),
            "a system call is listed twice"
        );
        for allowed in ALLOWLIST {
            assert!(allowed.symbol.starts_with("SYS_"), "{}", allowed.symbol);
            assert!(!allowed.why.is_empty(), "{} says not why", allowed.name());
        }
        assert!(
            ALLOWLIST
                .iter()
                .any(|allowed| allowed.name() == "exit_group")
        );
    }

    #[test]
    fn the_filter_compiles_for_this_architecture() {
        let context = Context {
            pid: 4242,
            tids: vec![4242, 4243],
            nice_floor: 0,
        };
        let program = build(&context).unwrap();
        // seccompiler itself refuses programs over the kernel's 4096 instructions; this keeps
        // a margin for the rows strace will add.
        assert!(program.len() < 1024, "{} instructions", program.len());
        // More threads mean more priority rules, not a failure.
        let many = Context {
            pid: 1,
            tids: (2..66).collect(),
            nice_floor: 0,
        };
        assert!(build(&many).unwrap().len() > program.len());
        // A worker started above normal priority gets the range down to its nice value too.
        let negative = Context {
            nice_floor: -5,
            ..context.clone()
        };
        assert!(build(&negative).unwrap().len() > program.len());
    }

    #[test]
    fn setpriority_has_one_rule_per_thread_and_nice_range() {
        let context = Context {
            pid: 4242,
            tids: vec![4242, 4243],
            nice_floor: 0,
        };
        // `who` 0 and the two threads, each with 0..=19 only.
        assert_eq!(conditions(Args::OwnThreadNice, &context).unwrap().len(), 3);
        let negative = Context {
            nice_floor: -3,
            ..context
        };
        // ... and with -3..=-1.
        assert_eq!(conditions(Args::OwnThreadNice, &negative).unwrap().len(), 6);
        assert_eq!(
            ALLOWLIST
                .iter()
                .find(|allowed| allowed.name() == "setpriority")
                .map(|allowed| allowed.args),
            Some(Args::OwnThreadNice)
        );
    }

    #[test]
    fn threads_of_this_process_are_listed() {
        let tids = own_threads().unwrap();
        assert!(tids.contains(&rustix::thread::gettid().as_raw_nonzero().get()));
    }
}
