//! Leaving root for an unprivileged user, and proving it cannot come back.
//!
//! The ids are changed with glibc's `setgroups`, `setresgid` and `setresuid`, not rustix's:
//! Linux keeps credentials per thread and the raw system calls change only the calling
//! thread, while glibc's wrappers signal every other thread of the process to make the same
//! call (its "setxid" broadcast). The worker already has other threads when it confines
//! itself (the epoch ticker), and a thread left as root would defeat the drop.
//!
//! One capability survives, on one thread: `CAP_SYS_NICE`, on the confining thread, which
//! runs every guest call. zeval-sandbox lowers a long call's thread to nice 19 and
//! `SCHED_IDLE` and must bring it back to `SCHED_OTHER` and its old nice value when the call
//! ends; an unprivileged thread may do that only within `RLIMIT_NICE`, whose hard limit only
//! `CAP_SYS_RESOURCE` raises, and root often lacks that (in containers). Without the way
//! back, the lowering is turned off. The seccomp filter bounds what the capability can do:
//! nice values 0..=19 (or down to the worker's starting nice), `SCHED_OTHER` and `SCHED_IDLE`
//! only, on this process's threads only (see `seccomp.rs`).

use std::io;

use rustix::thread::{CapabilitySet, CapabilitySets};

use super::{ConfineError, Feature};

/// The user a worker runs as when the options name none.
pub(crate) const DEFAULT_USER: &str = "nobody";

/// The ids of `nobody` when `/etc/passwd` has no such user: the traditional overflow
/// uid/gid (the kernel's own `overflowuid`).
pub(crate) const FALLBACK_NOBODY: (u32, u32) = (65534, 65534);

/// Whom to become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The user name, when the ids came from one.
    pub(crate) name: Option<String>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Identity {
    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({}:{})", self.uid, self.gid),
            None => format!("{}:{}", self.uid, self.gid),
        }
    }
}

/// Resolves `ConfineOptions::user` against the text of `/etc/passwd` (read lazily, only
/// when a name must be looked up). The file is parsed directly instead of through
/// `getpwnam`, which may load NSS modules and talk to daemons in the middle of confinement.
pub(crate) fn resolve(
    spec: Option<&str>,
    passwd: impl FnOnce() -> io::Result<String>,
) -> Result<Identity, ConfineError> {
    let identity = match spec {
        None => {
            // The default must always work: fall back to the well-known ids.
            let (uid, gid) = passwd()
                .ok()
                .and_then(|text| lookup(&text, DEFAULT_USER))
                .unwrap_or(FALLBACK_NOBODY);
            Identity {
                name: Some(DEFAULT_USER.to_owned()),
                uid,
                gid,
            }
        }
        Some(spec) => match spec.split_once(':') {
            Some((uid, gid)) => {
                let parse = |id: &str| {
                    id.trim()
                        .parse::<u32>()
                        .map_err(|_| ConfineError::InvalidUser {
                            spec: spec.to_owned(),
                            reason: "expected a user name or \"uid:gid\" with two numbers",
                        })
                };
                Identity {
                    name: None,
                    uid: parse(uid)?,
                    gid: parse(gid)?,
                }
            }
            None => {
                let text = passwd().map_err(ConfineError::ReadPasswd)?;
                let (uid, gid) = lookup(&text, spec)
                    .ok_or_else(|| ConfineError::UnknownUser(spec.to_owned()))?;
                Identity {
                    name: Some(spec.to_owned()),
                    uid,
                    gid,
                }
            }
        },
    };
    if identity.uid == 0 || identity.gid == 0 {
        return Err(ConfineError::InvalidUser {
            spec: spec.unwrap_or(DEFAULT_USER).to_owned(),
            reason: "a worker must not run as root (uid 0) or with the root group (gid 0)",
        });
    }
    // -1 means "leave unchanged" to the set*id calls.
    if identity.uid == u32::MAX || identity.gid == u32::MAX {
        return Err(ConfineError::InvalidUser {
            spec: spec.unwrap_or(DEFAULT_USER).to_owned(),
            reason: "4294967295 (-1) is not a valid id",
        });
    }
    Ok(identity)
}

/// The uid and primary gid of `name` in passwd(5) text.
fn lookup(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// The capability the confining thread keeps, when it can: restoring a lowered guest
/// thread's priority needs it (see the module docs).
pub(crate) const KEPT: CapabilitySet = CapabilitySet::SYS_NICE;

/// The outcome of [`drop_root`].
#[derive(Debug)]
pub(crate) enum Dropped {
    /// Now running as this identity, in every thread.
    To {
        identity: Identity,
        /// Whether the calling thread kept [`KEPT`], or why not.
        kept: Result<(), String>,
    },
    /// The process was not root, and runs on as this uid.
    NotRoot { uid: u32 },
}

impl Dropped {
    pub(crate) fn describe(&self) -> Feature {
        match self {
            Dropped::To {
                identity,
                kept: Ok(()),
            } => Feature::On(format!(
                "{}; only the guest thread keeps a capability, CAP_SYS_NICE, to restore a long \
                 call's priority (the filter bounds it to nice 0..=19 or down to the starting \
                 nice, SCHED_OTHER and SCHED_IDLE on this process's threads)",
                identity.describe()
            )),
            Dropped::To {
                identity,
                kept: Err(why),
            } => Feature::On(format!(
                "{}; no capabilities ({why}, so long calls' priority cannot be restored \
                 unless RLIMIT_NICE allows it)",
                identity.describe()
            )),
            Dropped::NotRoot { uid } => {
                Feature::Unavailable(format!("not root: runs as uid {uid}"))
            }
        }
    }

    /// The capabilities the calling thread must hold after the switch (every other thread
    /// must hold none).
    pub(crate) fn kept_capabilities(&self) -> CapabilitySet {
        match self {
            Dropped::To { kept: Ok(()), .. } => KEPT,
            _ => CapabilitySet::empty(),
        }
    }
}

/// Switches every thread to the configured user when the process is root, then checks that
/// root cannot be regained. Supplementary groups go first (`setgroups` needs
/// `CAP_SETGID`), then the gid (`setresgid` too), then the uid, which drops every capability
/// of every thread except, on the calling thread, those `PR_SET_KEEPCAPS` keeps in the
/// permitted set; `capset` then narrows them to [`KEPT`].
pub(crate) fn drop_root(spec: Option<&str>) -> Result<Dropped, ConfineError> {
    if !rustix::process::geteuid().is_root() {
        return Ok(Dropped::NotRoot {
            uid: rustix::process::getuid().as_raw(),
        });
    }
    let identity = resolve(spec, || std::fs::read_to_string("/etc/passwd"))?;
    let step = |step: &'static str, result: io::Result<()>| {
        result.map_err(|source| ConfineError::DropPrivileges { step, source })
    };
    let errno = |result: rustix::io::Result<()>| result.map_err(io::Error::from);
    // Keeping a capability root does not have would fail after the switch: don't try.
    let keep = match rustix::thread::capabilities(None) {
        Ok(sets) if sets.permitted.contains(KEPT) => Ok(()),
        Ok(_) => Err("root has no CAP_SYS_NICE to keep".to_owned()),
        Err(errno) => Err(format!("could not read root's capabilities: {errno}")),
    };
    if keep.is_ok() {
        // Per thread: the other threads lose everything at the switch, as they should.
        step(
            "PR_SET_KEEPCAPS",
            errno(rustix::thread::set_keep_capabilities(true)),
        )?;
    }
    step("setgroups", clear_supplementary_groups())?;
    step("setresgid", set_all_gids(identity.gid))?;
    step("setresuid", set_all_uids(identity.uid))?;
    let kept = match keep {
        Ok(()) => {
            let kept = errno(rustix::thread::set_capabilities(
                None,
                CapabilitySets {
                    effective: KEPT,
                    permitted: KEPT,
                    inheritable: CapabilitySet::empty(),
                },
            ))
            .map_err(|error| format!("keeping CAP_SYS_NICE failed: {error}"));
            if kept.is_err() {
                // The thread still holds every capability root had in its permitted set.
                step(
                    "capset",
                    errno(rustix::thread::set_capabilities(
                        None,
                        CapabilitySets {
                            effective: CapabilitySet::empty(),
                            permitted: CapabilitySet::empty(),
                            inheritable: CapabilitySet::empty(),
                        },
                    )),
                )?;
            }
            step(
                "PR_SET_KEEPCAPS",
                errno(rustix::thread::set_keep_capabilities(false)),
            )?;
            kept
        }
        Err(why) => Err(why),
    };
    // Already empty (the switch clears it), but it is what an ambient capability would
    // hide in; clearing it costs one call.
    step(
        "PR_CAP_AMBIENT_CLEAR_ALL",
        errno(rustix::thread::clear_ambient_capability_set()),
    )?;
    if setuid_root_succeeds() {
        return Err(ConfineError::RegainedRoot);
    }
    Ok(Dropped::To { identity, kept })
}

/// Whether the calling thread may use `CAP_SYS_NICE` now.
pub(crate) fn holds_sys_nice() -> bool {
    rustix::thread::capabilities(None)
        .is_ok_and(|sets| sets.effective.contains(CapabilitySet::SYS_NICE))
}

/// Checks, from `/proc/self/task/<tid>/status`, that each of `tids` (every thread of the
/// process) runs with the identity's real, effective, saved and file-system ids, no
/// supplementary groups, no inheritable or ambient capabilities, and as permitted and
/// effective capabilities exactly `kept` for the calling thread `me` and none for the others.
/// This is what proves the glibc broadcast reached every thread.
pub(crate) fn verify_threads(
    identity: &Identity,
    tids: &[i32],
    me: i32,
    kept: CapabilitySet,
) -> Result<(), ConfineError> {
    for &tid in tids {
        let path = format!("/proc/self/task/{tid}/status");
        let status = std::fs::read_to_string(&path).map_err(|source| ConfineError::ReadProc {
            path: path.clone(),
            source,
        })?;
        let caps = if tid == me {
            kept
        } else {
            CapabilitySet::empty()
        };
        check_status(identity, &status, caps)
            .map_err(|detail| ConfineError::PrivilegesNotDropped { tid, detail })?;
    }
    Ok(())
}

/// Checks one thread's `/proc/.../status` text, which must show `caps` as its permitted and
/// effective capabilities; the error says which line is wrong.
pub(crate) fn check_status(
    identity: &Identity,
    status: &str,
    caps: CapabilitySet,
) -> Result<(), String> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .ok_or_else(|| format!("no {name} line"))
    };
    let all_equal = |name: &str, want: u32| -> Result<(), String> {
        let line = field(name)?;
        let ids: Vec<&str> = line.split_whitespace().collect();
        if ids.len() == 4 && ids.iter().all(|id| *id == want.to_string()) {
            Ok(())
        } else {
            Err(format!("{name}: {line} (want {want} four times)"))
        }
    };
    all_equal("Uid", identity.uid)?;
    all_equal("Gid", identity.gid)?;
    let groups = field("Groups")?;
    if !groups.is_empty() {
        return Err(format!("Groups: {groups} (want none)"));
    }
    for (name, want) in [
        ("CapInh", 0),
        ("CapPrm", caps.bits()),
        ("CapEff", caps.bits()),
        ("CapAmb", 0),
    ] {
        let value = field(name)?;
        if u64::from_str_radix(value, 16) != Ok(want) {
            return Err(format!("{name}: {value} (want {want:016x})"));
        }
    }
    Ok(())
}

#[allow(unsafe_code)]
fn clear_supplementary_groups() -> io::Result<()> {
    // SAFETY: a count of 0 with a null list is the documented way to clear the list; the
    // kernel reads no memory.
    let rc = unsafe { libc::setgroups(0, std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn set_all_gids(gid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments; glibc applies the change to every thread.
    let rc = unsafe { libc::setresgid(gid, gid, gid) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn set_all_uids(uid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments; glibc applies the change to every thread.
    let rc = unsafe { libc::setresuid(uid, uid, uid) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether `setuid(0)` works, which it must not once every id is unprivileged and the
/// capabilities are gone but `CAP_SYS_NICE`. Should it work, the process is root again (in
/// every thread, as for the drop) and the caller must not run guests.
#[allow(unsafe_code)]
fn setuid_root_succeeds() -> bool {
    // SAFETY: a plain integer argument.
    unsafe { libc::setuid(0) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                          zeval:x:990:985::/var/lib/zeval:/usr/sbin/nologin\n";

    fn passwd() -> io::Result<String> {
        Ok(PASSWD.to_owned())
    }

    fn no_passwd() -> io::Result<String> {
        Err(io::ErrorKind::NotFound.into())
    }

    #[test]
    fn the_default_is_nobody_from_passwd_or_the_well_known_ids() {
        let nobody = Identity {
            name: Some("nobody".to_owned()),
            uid: 65534,
            gid: 65534,
        };
        assert_eq!(resolve(None, passwd).unwrap(), nobody);
        assert_eq!(resolve(None, no_passwd).unwrap(), nobody);
        let other = || Ok("nobody:x:99:98::/:/sbin/nologin\n".to_owned());
        assert_eq!(
            resolve(None, other).unwrap(),
            Identity {
                name: Some("nobody".to_owned()),
                uid: 99,
                gid: 98
            }
        );
    }

    #[test]
    fn names_and_numeric_ids_resolve() {
        assert_eq!(
            resolve(Some("zeval"), passwd).unwrap(),
            Identity {
                name: Some("zeval".to_owned()),
                uid: 990,
                gid: 985
            }
        );
        assert_eq!(
            resolve(Some("1000:1001"), || panic!("numeric ids need no passwd")).unwrap(),
            Identity {
                name: None,
                uid: 1000,
                gid: 1001
            }
        );
    }

    #[test]
    fn root_unknown_and_malformed_users_are_refused() {
        assert!(matches!(
            resolve(Some("root"), passwd),
            Err(ConfineError::InvalidUser { .. })
        ));
        assert!(matches!(
            resolve(Some("0:0"), passwd),
            Err(ConfineError::InvalidUser { .. })
        ));
        assert!(matches!(
            resolve(Some("1000:0"), passwd),
            Err(ConfineError::InvalidUser { .. })
        ));
        assert!(matches!(
            resolve(Some("4294967295:1000"), passwd),
            Err(ConfineError::InvalidUser { .. })
        ));
        assert!(matches!(
            resolve(Some("ghost"), passwd),
            Err(ConfineError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve(Some("zeval"), no_passwd),
            Err(ConfineError::ReadPasswd(_))
        ));
        assert!(matches!(
            resolve(Some("a:b"), passwd),
            Err(ConfineError::InvalidUser { .. })
        ));
        // A prefix of a name is not the name.
        assert!(matches!(
            resolve(Some("nob"), passwd),
            Err(ConfineError::UnknownUser(_))
        ));
    }

    #[test]
    fn thread_status_checks_every_id_group_and_capability() {
        let nobody = Identity {
            name: None,
            uid: 65534,
            gid: 65534,
        };
        let good = "Name:\tt\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n\
                    Groups:\t\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n\
                    CapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n\
                    CapAmb:\t0000000000000000\n";
        let none = CapabilitySet::empty();
        assert_eq!(check_status(&nobody, good, none), Ok(()));
        let saved_root = good.replace(
            "Uid:\t65534\t65534\t65534\t65534",
            "Uid:\t65534\t65534\t0\t65534",
        );
        assert!(
            check_status(&nobody, &saved_root, none)
                .unwrap_err()
                .starts_with("Uid:")
        );
        let grouped = good.replace("Groups:\t\n", "Groups:\t0 \n");
        assert!(
            check_status(&nobody, &grouped, none)
                .unwrap_err()
                .starts_with("Groups:")
        );
        let capable = good.replace("CapEff:\t0000000000000000", "CapEff:\t0000000000000400");
        assert!(
            check_status(&nobody, &capable, none)
                .unwrap_err()
                .starts_with("CapEff:")
        );
        assert!(check_status(&nobody, "Uid:\t1\n", none).is_err());
        // The confining thread: CAP_SYS_NICE (bit 23) permitted and effective, nothing else.
        let nice = good
            .replace("CapPrm:\t0000000000000000", "CapPrm:\t0000000000800000")
            .replace("CapEff:\t0000000000000000", "CapEff:\t0000000000800000");
        assert_eq!(check_status(&nobody, &nice, KEPT), Ok(()));
        assert!(
            check_status(&nobody, &nice, none)
                .unwrap_err()
                .starts_with("CapPrm:")
        );
        assert!(
            check_status(&nobody, good, KEPT)
                .unwrap_err()
                .starts_with("CapPrm:")
        );
        let more = nice.replace("CapEff:\t0000000000800000", "CapEff:\t0000000000800400");
        assert!(
            check_status(&nobody, &more, KEPT)
                .unwrap_err()
                .starts_with("CapEff:")
        );
        let inheritable = nice.replace("CapInh:\t0000000000000000", "CapInh:\t0000000000800000");
        assert!(
            check_status(&nobody, &inheritable, KEPT)
                .unwrap_err()
                .starts_with("CapInh:")
        );
    }
}
