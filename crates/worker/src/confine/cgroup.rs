//! Whether a cgroup v2 memory limit holds the worker. The worker cannot set one up itself
//! (the parent would have to create a child cgroup, give it `memory.max` and move the worker
//! in); it only looks, so the report says whether a limit is there and, if not, precisely
//! why on this machine.
//!
//! Only cgroup v2 counts: a v1 memory hierarchy is named in the reason but not used.

use std::path::{Path, PathBuf};

use super::Feature;

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Where systemd's "hybrid" layout mounts cgroup v2 beside the v1 controllers.
const HYBRID_UNIFIED: &str = "/sys/fs/cgroup/unified";

// statfs(2) magic numbers (linux/magic.h).
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// What was found on this machine, gathered by [`detect`] and judged by [`assess`].
#[derive(Debug)]
pub(crate) struct Facts {
    /// The file-system magic of `/sys/fs/cgroup`, or why it could not be read.
    root_magic: Result<u64, String>,
    /// Whether `/sys/fs/cgroup/unified` is a cgroup2 mount (the hybrid layout).
    hybrid_unified: bool,
    /// Whether `/sys/fs/cgroup/memory` is a cgroup v1 mount.
    v1_memory: bool,
    /// The process's cgroup v2 path (the `0::` line of `/proc/self/cgroup`).
    own_path: Option<String>,
    /// The content of `cgroup.controllers` in the process's cgroup v2 directory.
    controllers: Option<String>,
    /// The content of `memory.max` there, or why it could not be read.
    memory_max: Option<Result<String, String>>,
}

/// Reads the facts and judges them. Must run before landlock and seccomp: it reads files.
pub(crate) fn detect() -> Feature {
    assess(&gather())
}

fn gather() -> Facts {
    let magic = |path: &str| {
        rustix::fs::statfs(path)
            .map(|s| s.f_type as u64)
            .map_err(|errno| errno.to_string())
    };
    let root_magic = magic(CGROUP_ROOT);
    let hybrid_unified = magic(HYBRID_UNIFIED) == Ok(CGROUP2_SUPER_MAGIC);
    let v1_memory = magic(&format!("{CGROUP_ROOT}/memory")) == Ok(CGROUP_SUPER_MAGIC);
    let own_path = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| own_v2_path(&text));
    let mut facts = Facts {
        root_magic,
        hybrid_unified,
        v1_memory,
        own_path,
        controllers: None,
        memory_max: None,
    };
    if let (Some(mount), Some(own)) = (v2_mount(&facts), facts.own_path.as_deref()) {
        let dir = join(&mount, own);
        facts.controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).ok();
        facts.memory_max = Some(
            std::fs::read_to_string(dir.join("memory.max")).map_err(|error| error.to_string()),
        );
    }
    facts
}

/// The cgroup v2 mount, if any.
fn v2_mount(facts: &Facts) -> Option<PathBuf> {
    if facts.root_magic == Ok(CGROUP2_SUPER_MAGIC) {
        Some(PathBuf::from(CGROUP_ROOT))
    } else if facts.hybrid_unified {
        Some(PathBuf::from(HYBRID_UNIFIED))
    } else {
        None
    }
}

/// The path of the `0::` (cgroup v2) line of `/proc/self/cgroup`.
fn own_v2_path(proc_self_cgroup: &str) -> Option<String> {
    proc_self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

fn join(mount: &Path, own: &str) -> PathBuf {
    match own.trim_matches('/') {
        "" => mount.to_path_buf(),
        relative => mount.join(relative),
    }
}

/// Judges the facts: `On` only when a `memory.max` below "max" holds the worker.
pub(crate) fn assess(facts: &Facts) -> Feature {
    let v1_note = if facts.v1_memory {
        format!(" (the memory controller is mounted as cgroup v1 at {CGROUP_ROOT}/memory)")
    } else {
        String::new()
    };
    let Some(mount) = v2_mount(facts) else {
        let root = match &facts.root_magic {
            Ok(TMPFS_MAGIC) => "a tmpfs of cgroup v1 hierarchies".to_owned(),
            Ok(CGROUP_SUPER_MAGIC) => "a cgroup v1 hierarchy".to_owned(),
            Ok(other) => format!("a file system of type {other:#x}"),
            Err(error) => format!("unreadable ({error})"),
        };
        return Feature::Unavailable(format!(
            "no cgroup v2 hierarchy: {CGROUP_ROOT} is {root}{v1_note}"
        ));
    };
    let Some(own) = &facts.own_path else {
        return Feature::Unavailable(format!(
            "cgroup v2 is mounted at {}, but /proc/self/cgroup names no cgroup v2 group",
            mount.display()
        ));
    };
    let dir = join(&mount, own);
    let controllers = facts.controllers.as_deref().unwrap_or("").trim();
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return Feature::Unavailable(format!(
            "no cgroup v2 memory controller: the worker's cgroup {} has the controllers \
             [{controllers}]{v1_note}",
            dir.display()
        ));
    }
    match &facts.memory_max {
        Some(Ok(max)) if max.trim() == "max" => Feature::Unavailable(format!(
            "the memory controller is available, but memory.max of {} is \"max\": the parent \
             must put the worker in a cgroup with a limit",
            dir.display()
        )),
        Some(Ok(max)) => match max.trim().parse::<u64>() {
            Ok(bytes) => Feature::On(format!(
                "memory.max {bytes} bytes ({} MiB) on {}",
                bytes / (1024 * 1024),
                dir.display()
            )),
            Err(_) => Feature::Unavailable(format!(
                "memory.max of {} reads {:?}, not a limit",
                dir.display(),
                max.trim()
            )),
        },
        Some(Err(error)) => Feature::Unavailable(format!(
            "the memory controller is available, but memory.max of {} cannot be read ({error}; \
             the root cgroup has none): the parent must put the worker in a cgroup with a limit",
            dir.display()
        )),
        None => Feature::Unavailable(format!("memory.max of {} was not read", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            root_magic: Ok(CGROUP2_SUPER_MAGIC),
            own_path: Some("/zeval/worker-1".to_owned()),
            controllers: Some("cpuset cpu io memory pids\n".to_owned()),
            memory_max: Some(Ok("536870912\n".to_owned())),
            hybrid_unified: false,
            v1_memory: false,
        }
    }

    #[test]
    fn a_limit_in_the_own_cgroup_is_on() {
        assert_eq!(
            assess(&facts()),
            Feature::On(
                "memory.max 536870912 bytes (512 MiB) on /sys/fs/cgroup/zeval/worker-1".to_owned()
            )
        );
    }

    #[test]
    fn no_limit_is_unavailable_with_the_reason() {
        let unlimited = Facts {
            memory_max: Some(Ok("max\n".to_owned())),
            ..facts()
        };
        assert!(assess(&unlimited).detail().contains("is \"max\""));

        let root = Facts {
            own_path: Some("/".to_owned()),
            memory_max: Some(Err("No such file or directory (os error 2)".to_owned())),
            ..facts()
        };
        let detail = assess(&root).detail().to_owned();
        assert!(
            detail.contains("memory.max of /sys/fs/cgroup cannot be read"),
            "{detail}"
        );

        let no_memory = Facts {
            controllers: Some("cpu pids\n".to_owned()),
            ..facts()
        };
        assert!(
            assess(&no_memory)
                .detail()
                .contains("has the controllers [cpu pids]")
        );
    }

    #[test]
    fn the_hybrid_layout_of_this_machine_is_explained() {
        let hybrid = Facts {
            root_magic: Ok(TMPFS_MAGIC),
            hybrid_unified: true,
            v1_memory: true,
            own_path: Some("/".to_owned()),
            controllers: Some("hugetlb\n".to_owned()),
            memory_max: Some(Err("No such file or directory (os error 2)".to_owned())),
        };
        assert_eq!(
            assess(&hybrid),
            Feature::Unavailable(
                "no cgroup v2 memory controller: the worker's cgroup /sys/fs/cgroup/unified has \
                 the controllers [hugetlb] (the memory controller is mounted as cgroup v1 at \
                 /sys/fs/cgroup/memory)"
                    .to_owned()
            )
        );
        let v1_only = Facts {
            hybrid_unified: false,
            ..hybrid
        };
        assert_eq!(
            assess(&v1_only),
            Feature::Unavailable(
                "no cgroup v2 hierarchy: /sys/fs/cgroup is a tmpfs of cgroup v1 hierarchies (the \
                 memory controller is mounted as cgroup v1 at /sys/fs/cgroup/memory)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn the_own_path_is_the_v2_line() {
        let text = "4:memory:/process_api/a80a\n1:cpu:/\n0::/zeval/w\n";
        assert_eq!(own_v2_path(text).as_deref(), Some("/zeval/w"));
        assert_eq!(own_v2_path("4:memory:/x\n"), None);
    }
}
