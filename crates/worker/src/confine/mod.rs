//! What a worker gives up before it reads its first untrusted request, and the report of what
//! the kernel granted.
//!
//! A worker loads its guests, warms them up, then calls [`confine`] once, on the thread that
//! will run guests. From then on it can only use the fds it holds (its socket to the parent on
//! fd 0, its log on fd 2), memory, time, its own threads' priorities and signals: every other
//! system call kills it (the allowlist is one table, in `seccomp.rs`), it cannot open a file or a
//! network connection even through an allowed call (landlock), it runs as an unprivileged user
//! that cannot come back to root, and it may create no process, thread or file. Of root's
//! capabilities only `CAP_SYS_NICE` stays, on the confining thread alone, to restore the
//! priority of long guest calls; the filter bounds it to nice 0..=19 (or down to the worker's
//! starting nice) and `SCHED_OTHER`/`SCHED_IDLE` on the worker's own threads. Confinement is
//! irreversible and process-wide.
//!
//! Modules:
//! - `rlimits`: resource limits and non-dumpability;
//! - `privileges`: the switch from root to an unprivileged user, keeping `CAP_SYS_NICE` on the
//!   confining thread;
//! - `cgroup`: whether a cgroup v2 memory limit holds the worker (detection only);
//! - `landlock`: the ruleset that allows nothing;
//! - `seccomp`: the system-call allowlist (one table) and its filter;
//! - `report`: [`ConfinementReport`] and [`Feature`].

mod cgroup;
mod landlock;
mod privileges;
mod report;
mod rlimits;
mod seccomp;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{Ipv4Addr, TcpListener};

pub use report::{ConfinementReport, Feature};

/// How to confine a worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfineOptions {
    /// The user to run as when the process is root: `None` is `nobody` from `/etc/passwd`
    /// (65534:65534 when it has none); `Some("name")` a user of `/etc/passwd` (with its
    /// primary group); `Some("uid:gid")` numeric ids. Root (uid 0 or gid 0) is refused.
    /// Ignored when the process is not root: it cannot change user then.
    pub user: Option<String>,
}

/// Why a worker could not be confined. Any error leaves the process partly confined, in an
/// unknown state: the worker must exit without reading a request.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// A resource limit could not be set.
    #[error("could not set {resource}: {source}")]
    ResourceLimit {
        resource: &'static str,
        source: io::Error,
    },
    /// `PR_SET_DUMPABLE` failed.
    #[error("could not make the worker non-dumpable: {0}")]
    Dumpable(io::Error),
    /// [`ConfineOptions::user`] is malformed or names root.
    #[error("invalid worker user {spec:?}: {reason}")]
    InvalidUser { spec: String, reason: &'static str },
    /// [`ConfineOptions::user`] names a user `/etc/passwd` does not have.
    #[error("the worker user {0:?} is not in /etc/passwd")]
    UnknownUser(String),
    /// `/etc/passwd` could not be read to look a user name up.
    #[error("could not read /etc/passwd: {0}")]
    ReadPasswd(io::Error),
    /// A step of the switch to the unprivileged user failed.
    #[error("could not drop root privileges ({step}): {source}")]
    DropPrivileges {
        step: &'static str,
        source: io::Error,
    },
    /// `setuid(0)` worked after the switch: the process is root again.
    #[error("setuid(0) succeeded after dropping root: the worker is privileged again")]
    RegainedRoot,
    /// A thread kept an id, a group or a capability after the switch.
    #[error("thread {tid} kept privileges after the switch of user: {detail}")]
    PrivilegesNotDropped { tid: i32, detail: String },
    /// A file under `/proc/self` could not be read.
    #[error("could not read {path}: {source}")]
    ReadProc { path: String, source: io::Error },
    /// `/proc/self/task` does not list the calling thread.
    #[error(
        "/proc/self/task does not list this thread ({tid}): /proc belongs to another pid \
         namespace"
    )]
    ThreadsNotListed { tid: i32 },
    /// The confining thread's nice value could not be read.
    #[error("could not read the thread's nice value: {0}")]
    Nice(io::Error),
    /// `PR_SET_NO_NEW_PRIVS` could not be set or read back.
    #[error("could not set PR_SET_NO_NEW_PRIVS: {0}")]
    NoNewPrivs(io::Error),
    /// The landlock ruleset could not be built or applied (a kernel without landlock is not
    /// an error: it is reported as [`Feature::Unavailable`]).
    #[error("landlock: {0}")]
    Landlock(#[from] ::landlock::RulesetError),
    /// seccompiler has no filter for this architecture.
    #[error("no seccomp filter for the {0} architecture")]
    UnsupportedArch(&'static str),
    /// The allowlist did not compile to a filter.
    #[error("could not build the seccomp filter: {0}")]
    SeccompBuild(#[from] seccompiler::BackendError),
    /// The kernel refused the filter.
    #[error("could not install the seccomp filter: {0}")]
    SeccompApply(seccompiler::Error),
}

/// Confines the calling process for good: see the module docs for what it gives up. Call it
/// once, after loading and warming up the guests and before reading the first request, on the
/// thread that will run guests (landlock may hold only that thread; seccomp holds them all).
///
/// Anything that needs files, threads or a privileged call must happen before: e.g.
/// `zeval_sandbox::priority_lowering_available()` probes on a new thread, so a worker must
/// call it first. Every thread must also have started for real (run its own code) before
/// this call: a thread's start-up makes calls the filter kills (`rseq`, `set_robust_list`,
/// `prctl(PR_SET_NAME)`, `sched_getaffinity`), so a thread spawned just before and still
/// starting kills the process. A second call is killed by the filter (`setrlimit` is not
/// allowed).
///
/// Returns what the kernel granted; nothing is logged after the filter is installed, so the
/// caller reports it. On `Err` the process is in an unknown state and must exit.
pub fn confine(options: &ConfineOptions) -> Result<ConfinementReport, ConfineError> {
    // The order matters. Every step up to landlock needs system calls or files that landlock
    // or the filter forbid (setrlimit, prctl, set*id, /etc/passwd, /proc, statfs), and the
    // privileged ones need root.
    //
    // 1. Limits first, while still root: raising RLIMIT_NICE's hard limit to 20 needs
    //    CAP_SYS_RESOURCE, and the drop takes it away.
    let early_limits = rlimits::set_before_drop()?;
    // 2. Leave root. Checked below on every thread, once the thread list is final.
    let dropped = privileges::drop_root(options.user.as_deref())?;
    // 3. No new processes or threads: only now, as the unprivileged user, does the kernel
    //    enforce RLIMIT_NPROC. It also makes the thread list below final.
    rlimits::forbid_new_processes()?;
    let threads = seccomp::own_threads()?;
    let me = rustix::thread::gettid();
    if let privileges::Dropped::To { identity, .. } = &dropped {
        privileges::verify_threads(
            identity,
            &threads,
            me.as_raw_nonzero().get(),
            dropped.kept_capabilities(),
        )?;
    }
    // What a lowered guest thread must come back to, and whether it can.
    let nice = rustix::process::getpriority_process(Some(me))
        .map_err(|errno| ConfineError::Nice(errno.into()))?;
    let cap_sys_nice = privileges::holds_sys_nice();
    // 4. The memory cgroup is only detected, and detection reads files: before landlock.
    let memory_cgroup = cgroup::detect();
    // 5. No new privileges (set here to read it back while prctl is allowed; landlock and
    //    seccomp set it too, and TSYNC spreads it to every thread).
    rustix::thread::set_no_new_privs(true)
        .map_err(|errno| ConfineError::NoNewPrivs(errno.into()))?;
    let no_new_privs =
        rustix::thread::no_new_privs().map_err(|errno| ConfineError::NoNewPrivs(errno.into()))?;
    // The filter is compiled before landlock so that a mistake in the table fails here, with
    // nothing irreversible done to the file system view yet.
    let context = seccomp::Context {
        pid: rustix::process::getpid().as_raw_nonzero().get(),
        tids: threads,
        nice_floor: nice.min(0),
    };
    let program = seccomp::build(&context)?;
    // 6. Landlock before seccomp: landlock_create_ruleset, landlock_restrict_self and the
    //    prctl it makes are not on the allowlist.
    let landlock = landlock::restrict_self()?;
    // 7. No new file descriptors: landlock's ruleset was the last one opened, and the filter
    //    forbids setrlimit.
    rlimits::forbid_new_files()?;
    // 8. Last, the filter, on every thread at once. No logging from here on: a log
    //    subscriber that opens a file would be killed.
    seccomp::apply(&program)?;
    Ok(ConfinementReport {
        seccomp: Feature::On(format!(
            "{} system calls allowed ({} of them with argument checks), anything else kills the \
             process; on all {} threads",
            seccomp::ALLOWLIST.len(),
            seccomp::checked_count(),
            context.tids.len()
        )),
        landlock,
        no_new_privs,
        user: dropped.describe(),
        rlimits: rlimits::describe(&early_limits, cap_sys_nice, nice),
        memory_cgroup,
        priority_restorable: rlimits::priority_restorable(&early_limits, cap_sys_nice, nice),
    })
}

/// The system calls a confined worker may make, as `(name, why)`, in the order of the
/// allowlist; some are allowed only with checked arguments (see `seccomp.rs`). For logs and
/// status pages: everything else kills the worker.
pub fn allowed_system_calls() -> impl Iterator<Item = (&'static str, &'static str)> {
    seccomp::ALLOWLIST
        .iter()
        .map(|allowed| (allowed.name(), allowed.why))
}

/// Issues a system call the filter forbids (`socket(AF_INET, SOCK_STREAM)`, the first call of
/// binding a loopback TCP listener), for the test-only hook that proves the filter kills the
/// process. Returns only if the filter did not bite: `Ok` if the listener could be bound (and
/// was closed again), or the error the kernel gave instead.
pub fn issue_forbidden_syscall() -> io::Result<()> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map(drop)
}
