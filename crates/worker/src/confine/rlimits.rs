//! Resource limits and non-dumpability of a confined worker.
//!
//! Every limit is set to the same soft and hard value, so the worker cannot raise it again.

use std::os::fd::AsFd;

use rustix::fs::FileType;
use rustix::process::{
    DumpableBehavior, Resource, Rlimit, getrlimit, set_dumpable_behavior, setrlimit,
};

use super::{ConfineError, Feature};

/// Core dumps: none. A dump of a worker would write guest data (and whatever an exploit put
/// in memory) to disk.
pub(crate) const CORE_LIMIT: u64 = 0;

/// Size of files the worker may write: none. It writes no files; with landlock and seccomp it
/// cannot open any either, so this only covers a regular file it inherited.
pub(crate) const FSIZE_LIMIT: u64 = 0;

/// Processes and threads the worker's user may create: none. Checked by the kernel against
/// every process of the (real) user, so 0 forbids `fork` and thread creation outright. A
/// process whose real uid is 0, or with `CAP_SYS_RESOURCE` or `CAP_SYS_ADMIN`, is exempt,
/// which is one more reason to leave root first.
pub(crate) const NPROC_LIMIT: u64 = 0;

/// File descriptors the worker may open: none beyond those it holds (the kernel checks the
/// limit only when a new one is made). The seccomp filter allows no call that makes one, so
/// this is the second wall: a worker inherited `zeval serve`'s open-files limit, raised to
/// some thousands for its connections.
pub(crate) const NOFILE_LIMIT: u64 = 0;

/// Ceiling of the nice value an unprivileged thread may set itself back to, as
/// `20 - limit`: 20 allows nice 0. The sandbox lowers a long guest call to nice 19 and
/// `SCHED_IDLE` and restores nice 0 / `SCHED_OTHER` when it ends; without `CAP_SYS_NICE`
/// Linux allows the way back only within `RLIMIT_NICE`. No higher, so the worker cannot
/// raise itself above normal priority. Raising the hard limit needs `CAP_SYS_RESOURCE`, which
/// root may lack; the confining thread then relies on the `CAP_SYS_NICE` it keeps (see
/// `privileges.rs`).
pub(crate) const NICE_LIMIT: u64 = 20;

/// What [`set_before_drop`] achieved, for the report.
#[derive(Debug)]
pub(crate) struct EarlyLimits {
    /// Why `RLIMIT_FSIZE` was left alone, if it was.
    fsize_skipped: Option<String>,
    /// The `RLIMIT_NICE` in force.
    nice: u64,
}

/// Sets the limits that need privileges (raising `RLIMIT_NICE`'s hard limit needs
/// `CAP_SYS_RESOURCE`, which goes with root) and makes the process non-dumpable, which also
/// stops processes of the worker's future user from ptracing it or reading its `/proc`
/// files that need ptrace access.
pub(crate) fn set_before_drop() -> Result<EarlyLimits, ConfineError> {
    set(Resource::Core, "RLIMIT_CORE", CORE_LIMIT)?;

    // A write past the limit to a regular file raises SIGXFSZ, which kills the process; a
    // worker whose stderr (its log) was redirected to a file would die at its first log line.
    let fsize_skipped = stdio_regular_file();
    // When skipped, the confinement report says why (the pool logs it once).
    if fsize_skipped.is_none() {
        set(Resource::Fsize, "RLIMIT_FSIZE", FSIZE_LIMIT)?;
    }

    let nice = set_nice_limit()?;

    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|errno| ConfineError::Dumpable(errno.into()))?;
    Ok(EarlyLimits {
        fsize_skipped,
        nice,
    })
}

/// Forbids new processes and threads. Must follow the switch to the unprivileged user: the
/// limit counts the processes of the real user, and root ignores it.
pub(crate) fn forbid_new_processes() -> Result<(), ConfineError> {
    set(Resource::Nproc, "RLIMIT_NPROC", NPROC_LIMIT)
}

/// Forbids new file descriptors ([`NOFILE_LIMIT`]). Must follow everything that opens one
/// (landlock's ruleset), and precede the seccomp filter, which forbids `setrlimit`.
pub(crate) fn forbid_new_files() -> Result<(), ConfineError> {
    set(Resource::Nofile, "RLIMIT_NOFILE", NOFILE_LIMIT)
}

/// Whether a guest thread lowered to nice 19 and `SCHED_IDLE` can come back to `SCHED_OTHER`
/// and `nice` (its nice value at confinement): always with `CAP_SYS_NICE`, else only when
/// `RLIMIT_NICE` reaches down to `nice` (Linux allows an unprivileged thread nice values down
/// to `20 - RLIMIT_NICE`, and leaving `SCHED_IDLE` only when it could set its nice value).
pub(crate) fn priority_restorable(early: &EarlyLimits, cap_sys_nice: bool, nice: i32) -> bool {
    cap_sys_nice || 20 - i64::try_from(early.nice).unwrap_or(i64::MAX) <= i64::from(nice)
}

/// The report line for the limits set by [`set_before_drop`], [`forbid_new_processes`] and
/// [`forbid_new_files`].
/// `cap_sys_nice` and `nice` are as for [`priority_restorable`]: a `RLIMIT_NICE` below
/// [`NICE_LIMIT`] is only a problem when nothing else restores a lowered guest thread.
pub(crate) fn describe(early: &EarlyLimits, cap_sys_nice: bool, nice: i32) -> Feature {
    let mut missing = Vec::new();
    let fsize = match &early.fsize_skipped {
        None => format!("fsize {FSIZE_LIMIT}"),
        Some(reason) => {
            missing.push(reason.clone());
            "fsize unchanged".to_owned()
        }
    };
    let mut nice_detail = format!("nice {}", early.nice);
    if cap_sys_nice {
        if early.nice < NICE_LIMIT {
            nice_detail.push_str(" (the guest thread's CAP_SYS_NICE restores long calls instead)");
        }
    } else if !priority_restorable(early, cap_sys_nice, nice) {
        let reachable = 20 - i64::try_from(early.nice).unwrap_or(i64::MAX);
        let why = if early.nice < NICE_LIMIT {
            format!(
                "RLIMIT_NICE is held at {} by its hard limit, and raising it needs \
                 CAP_SYS_RESOURCE",
                early.nice
            )
        } else {
            format!("the worker started at nice {nice}")
        };
        missing.push(format!(
            "{why}: a lowered guest thread can only come back to nice {reachable}, not \
             {nice}, and without CAP_SYS_NICE long calls' priority cannot be restored"
        ));
    }
    let detail = format!(
        "core {CORE_LIMIT}, {fsize}, nproc {NPROC_LIMIT}, nofile {NOFILE_LIMIT}, {nice_detail}, not dumpable"
    );
    if missing.is_empty() {
        Feature::On(detail)
    } else {
        Feature::Partial(format!("{detail} ({})", missing.join("; ")))
    }
}

/// Sets `RLIMIT_NICE` to [`NICE_LIMIT`]. Raising the hard limit needs `CAP_SYS_RESOURCE`,
/// which even root may lack (in a container, say): then the soft limit is raised to the hard
/// one, the most there is, and that is returned for the report.
fn set_nice_limit() -> Result<u64, ConfineError> {
    match try_set(Resource::Nice, NICE_LIMIT) {
        Ok(()) => Ok(NICE_LIMIT),
        Err(errno) if errno == rustix::io::Errno::PERM => {
            let hard = getrlimit(Resource::Nice)
                .maximum
                .unwrap_or(NICE_LIMIT)
                .min(NICE_LIMIT);
            set(Resource::Nice, "RLIMIT_NICE", hard)?;
            Ok(hard)
        }
        Err(errno) => Err(ConfineError::ResourceLimit {
            resource: "RLIMIT_NICE",
            source: errno.into(),
        }),
    }
}

/// Why `RLIMIT_FSIZE` must stay as it is, if one of fds 0, 1 and 2 is a regular file.
fn stdio_regular_file() -> Option<String> {
    let stdio = [
        ("0", rustix::fs::fstat(std::io::stdin().as_fd())),
        ("1", rustix::fs::fstat(std::io::stdout().as_fd())),
        ("2", rustix::fs::fstat(std::io::stderr().as_fd())),
    ];
    stdio.into_iter().find_map(|(fd, stat)| {
        // A closed fd (EBADF) cannot be written to at all, so it needs no exception.
        let stat = stat.ok()?;
        (FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile).then(|| {
            format!(
                "fd {fd} is a regular file, and a write past RLIMIT_FSIZE would kill the worker \
                 with SIGXFSZ"
            )
        })
    })
}

/// Sets the soft and the hard limit of `resource` to `limit`.
fn set(resource: Resource, name: &'static str, limit: u64) -> Result<(), ConfineError> {
    try_set(resource, limit).map_err(|errno| ConfineError::ResourceLimit {
        resource: name,
        source: errno.into(),
    })
}

fn try_set(resource: Resource, limit: u64) -> rustix::io::Result<()> {
    setrlimit(
        resource,
        Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_what_is_missing() {
        let full = EarlyLimits {
            fsize_skipped: None,
            nice: 20,
        };
        assert_eq!(
            describe(&full, false, 0),
            Feature::On("core 0, fsize 0, nproc 0, nofile 0, nice 20, not dumpable".to_owned())
        );
        assert!(priority_restorable(&full, false, 0));
        let partial = EarlyLimits {
            fsize_skipped: Some("fd 2 is a regular file".to_owned()),
            nice: 0,
        };
        let Feature::Partial(detail) = describe(&partial, false, 0) else {
            panic!("expected partial, got {:?}", describe(&partial, false, 0));
        };
        assert!(
            detail.starts_with("core 0, fsize unchanged, nproc 0, nofile 0, nice 0"),
            "{detail}"
        );
        assert!(detail.contains("fd 2 is a regular file"), "{detail}");
        assert!(detail.contains("RLIMIT_NICE is held at 0"), "{detail}");
        assert!(detail.contains("cannot be restored"), "{detail}");
        assert!(!priority_restorable(&partial, false, 0));
        let five = EarlyLimits {
            fsize_skipped: None,
            nice: 5,
        };
        assert!(
            describe(&five, false, 0)
                .detail()
                .contains("can only come back to nice 15, not 0")
        );
        // A worker started at nice 15 or lower priority comes back within RLIMIT_NICE 5.
        assert!(priority_restorable(&five, false, 15));
        assert!(describe(&five, false, 15).is_on());
        // A worker started above normal priority cannot come back without the capability.
        assert!(!priority_restorable(&full, false, -5));
        assert!(
            describe(&full, false, -5)
                .detail()
                .contains("the worker started at nice -5")
        );
    }

    #[test]
    fn cap_sys_nice_covers_a_low_nice_limit() {
        let held = EarlyLimits {
            fsize_skipped: None,
            nice: 0,
        };
        assert!(priority_restorable(&held, true, 0));
        assert!(priority_restorable(&held, true, -5));
        assert_eq!(
            describe(&held, true, 0),
            Feature::On(
                "core 0, fsize 0, nproc 0, nofile 0, nice 0 (the guest thread's CAP_SYS_NICE restores \
                 long calls instead), not dumpable"
                    .to_owned()
            )
        );
    }
}
