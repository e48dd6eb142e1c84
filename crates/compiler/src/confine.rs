//! The confined compiler process: what a compiler child gives up before `exec`, and the
//! parent's side (wall-clock limit, capped output, mapping how it ended).
//!
//! Everything the child needs is prepared in the parent ([`Walls::prepare`]: the landlock
//! ruleset fd with its rules, the limits as integers); the `pre_exec` hook then makes only
//! system calls, which is what is safe between `fork` and `exec` in a threaded process.
//!
//! In the child, in this order:
//! 1. a new process group (so the parent can kill the whole tree) and
//!    `PR_SET_PDEATHSIG(SIGKILL)` (a compiler never outlives the server);
//! 2. resource limits, soft = hard so they cannot be raised: `RLIMIT_CPU`
//!    ([`Limits::cpu`], SIGXCPU at the limit, SIGKILL a second later), `RLIMIT_AS`
//!    ([`Limits::address_space`]), `RLIMIT_FSIZE` ([`Limits::output_bytes`]: a bigger write
//!    raises SIGXFSZ), `RLIMIT_NOFILE` 256, `RLIMIT_CORE` 0;
//! 3. as root only: `unshare(CLONE_NEWNET)` (an empty network namespace: no interfaces but a
//!    down loopback, so no network at all), then every capability dropped: securebits
//!    `NOROOT`, `NO_SETUID_FIXUP`, `KEEP_CAPS` off, `NO_CAP_AMBIENT_RAISE`, all locked (so an
//!    `exec` by uid 0 does not regain capabilities), the bounding set emptied, the ambient
//!    set cleared, and the effective, permitted and inheritable sets cleared with `capset`.
//!    The uid stays 0: the Rust toolchain lives in `/root/.rustup` and `/root` is 0700, so
//!    another user could not read it. Without capabilities, uid 0 can access only what file
//!    modes grant the owner, and landlock narrows that further;
//! 4. `PR_SET_NO_NEW_PRIVS`;
//! 5. landlock (best effort: the newest ABI the crate knows, as much as the kernel
//!    enforces): every file-system right handled, allowed are reading and executing beneath
//!    `/usr` (and `/lib`, `/lib64`, `/bin` resolved, on distributions where they are not
//!    symlinks into `/usr`), `/etc/ld.so.cache`, the extra read-only paths of the toolchain
//!    (the Rust sysroot), reading and writing `/dev/null`, reading `/dev/urandom`, and
//!    everything beneath the compilation's temp dir; every network right handled with no
//!    rule (no TCP); signals and abstract UNIX sockets scoped to the child's domain (it
//!    cannot signal or connect to the server).
//!
//! The parent reads stdout and stderr concurrently, keeping at most
//! [`Limits::captured_bytes`] of each and draining the rest, and kills the process group
//! when [`Limits::wall`] passes.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use landlock::{
    ABI, Access, AccessFs, AccessNet, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope,
};
use serde::{Deserialize, Serialize};

/// The newest landlock ABI whose rights are requested (as in the worker crate).
const REQUESTED_ABI: ABI = ABI::V10;

/// Limits of one compiler process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU time of each process of the compiler (`RLIMIT_CPU`, whole seconds, at least 1).
    pub cpu: Duration,
    /// Address space of each process (`RLIMIT_AS`).
    pub address_space: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`); also the artifact's size cap.
    pub output_bytes: u64,
    /// Wall-clock time of the whole compilation, after which the process group is killed.
    pub wall: Duration,
    /// Bytes of all the files under the compilation's temp dir together, checked every
    /// 20 ms (`TEMP_CHECK_INTERVAL`); past it the process group is killed. `RLIMIT_FSIZE` bounds
    /// each file only, and a compiler writes several (its objects, the linked module, its own
    /// temporaries).
    pub temp_bytes: u64,
    /// Bytes of stdout and of stderr kept (the rest is read and discarded).
    pub captured_bytes: usize,
}

/// What the kernel enforced of the confinement; one line per wall, for logs and status pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confinement {
    /// Landlock: which ABI, and whether fully enforced.
    pub landlock: String,
    /// The network namespace (root only).
    pub network_namespace: bool,
    /// Whether every capability is dropped before exec (root only; a non-root server has
    /// none to drop).
    pub capabilities_dropped: bool,
    /// The resource limits set.
    pub rlimits: String,
}

/// Everything the child's `pre_exec` hook needs, prepared in the parent.
pub(crate) struct Walls {
    ruleset: Option<OwnedFd>,
    root: bool,
    limits: Limits,
    parent: libc::pid_t,
    last_cap: u32,
    /// Kept alive for the report.
    confinement: Confinement,
}

impl Walls {
    /// Builds the landlock ruleset for a child working in `workdir` and reading beneath
    /// `read_only` (besides the system paths), and reads what the child will need.
    pub(crate) fn prepare(
        workdir: &Path,
        read_only: &[PathBuf],
        limits: Limits,
    ) -> Result<Walls, String> {
        let root = rustix::process::geteuid().is_root();
        let abi = kernel_landlock_abi();
        let ruleset = match abi {
            Some(_) => {
                Some(build_ruleset(workdir, read_only).map_err(|e| format!("landlock: {e}"))?)
            }
            None => None,
        };
        let landlock = match abi {
            None => "unavailable: the kernel has no landlock (file system and TCP not restricted)"
                .to_owned(),
            Some(v) if v >= 6 => format!(
                "kernel ABI v{v}: file system limited to the toolchains and the temp dir, no TCP, \
                 signals and abstract sockets scoped"
            ),
            Some(v) => format!(
                "kernel ABI v{v} (partial: {}): file system limited to the toolchains and the temp \
                 dir",
                if v >= 4 {
                    "signals and abstract sockets not scoped"
                } else {
                    "TCP not restricted, signals not scoped"
                }
            ),
        };
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(63);
        Ok(Walls {
            ruleset,
            root,
            limits,
            parent: libc::pid_t::try_from(std::process::id()).unwrap_or(0),
            last_cap,
            confinement: Confinement {
                landlock,
                network_namespace: root,
                capabilities_dropped: root,
                rlimits: format!(
                    "cpu {} s, address space {} MiB, file size {} MiB, open files \
                     {MAX_OPEN_FILES}, core 0",
                    limits.cpu.as_secs().max(1),
                    limits.address_space >> 20,
                    limits.output_bytes >> 20
                ),
            },
        })
    }

    pub(crate) fn confinement(&self) -> &Confinement {
        &self.confinement
    }
}

/// The landlock ABI the running kernel offers, if any.
#[allow(unsafe_code)]
fn kernel_landlock_abi() -> Option<i64> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_long = 1;
    // SAFETY: with the VERSION flag the kernel reads no memory (attr NULL, size 0) and
    // returns the ABI version or an error.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (version > 0).then_some(version)
}

fn build_ruleset(workdir: &Path, read_only: &[PathBuf]) -> Result<OwnedFd, String> {
    build_ruleset_inner(workdir, read_only)?
        .ok_or_else(|| "the kernel created no ruleset".to_owned())
}

fn build_ruleset_inner(workdir: &Path, read_only: &[PathBuf]) -> Result<Option<OwnedFd>, String> {
    let e = |e: landlock::RulesetError| e.to_string();
    let read = AccessFs::from_read(REQUESTED_ABI);
    let file_read = read & AccessFs::from_file(REQUESTED_ABI);
    let mut created = Ruleset::default()
        .handle_access(AccessFs::from_all(REQUESTED_ABI))
        .and_then(|r| r.handle_access(AccessNet::from_all(REQUESTED_ABI)))
        .and_then(|r| r.scope(Scope::from_all(REQUESTED_ABI)))
        .and_then(|r| r.create())
        .map_err(e)?;
    let mut dirs: Vec<PathBuf> = vec![PathBuf::from("/usr")];
    for path in ["/lib", "/lib64", "/bin"]
        .iter()
        .map(Path::new)
        .chain(read_only.iter().map(PathBuf::as_path))
    {
        // Landlock ties rules to inodes: a symlink must be resolved to what it names.
        if let Ok(real) = path.canonicalize()
            && !dirs.iter().any(|dir| real.starts_with(dir))
        {
            dirs.push(real);
        }
    }
    for dir in dirs {
        if let Ok(fd) = PathFd::new(&dir) {
            created = created.add_rule(PathBeneath::new(fd, read)).map_err(e)?;
        }
    }
    let files: [(&str, landlock::BitFlags<AccessFs>); 3] = [
        ("/etc/ld.so.cache", file_read),
        ("/dev/urandom", file_read),
        (
            "/dev/null",
            file_read | AccessFs::WriteFile | AccessFs::Truncate,
        ),
    ];
    for (path, access) in files {
        if let Ok(fd) = PathFd::new(path) {
            created = created.add_rule(PathBeneath::new(fd, access)).map_err(e)?;
        }
    }
    let workdir = PathFd::new(workdir).map_err(|e| e.to_string())?;
    created = created
        .add_rule(PathBeneath::new(workdir, AccessFs::from_all(REQUESTED_ABI)))
        .map_err(e)?;
    Ok(created.into())
}

/// Files a compiler process may hold open at once (`RLIMIT_NOFILE`): rustc opens the
/// sysroot's libraries (some tens), clang a few headers at a time.
const MAX_OPEN_FILES: u64 = 256;

/// How often the temp dir's size is checked against [`Limits::temp_bytes`]. A compiler
/// writes at most some hundreds of MiB a second here, so the dir ends up at most that much
/// past its bound for a moment.
pub(crate) const TEMP_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Entries of the temp dir counted in one check; a dir holding more counts as past its
/// bound (a compiler writes a few dozen files at most), so that the walk itself is bounded.
const MAX_TEMP_ENTRIES: usize = 10_000;

/// How a confined process ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) status: ExitStatus,
    /// Killed by the parent at the wall-clock limit.
    pub(crate) timed_out: bool,
    /// Killed by the parent when its temp dir held more than [`Limits::temp_bytes`].
    pub(crate) temp_full: bool,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) elapsed: Duration,
    /// CPU time of the process and the descendants it waited for.
    pub(crate) cpu_time: Duration,
}

/// Runs `program` with `args` in `workdir` under `walls`, with an environment of only `env`.
pub(crate) fn run(
    program: &Path,
    args: &[String],
    workdir: &Path,
    env: &[(&str, String)],
    walls: &Walls,
) -> io::Result<Outcome> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(workdir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child_walls = ChildWalls {
        ruleset: walls.ruleset.as_ref().map(AsRawFd::as_raw_fd),
        root: walls.root,
        parent: walls.parent,
        last_cap: walls.last_cap,
        cpu: walls.limits.cpu.as_secs().max(1),
        address_space: walls.limits.address_space,
        output_bytes: walls.limits.output_bytes,
    };
    install_pre_exec(&mut command, child_walls);
    let started = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id();
    let cap = walls.limits.captured_bytes;
    let stdout = child
        .stdout
        .take()
        .map(|pipe| std::thread::spawn(move || read_capped(pipe, cap)));
    let stderr = child
        .stderr
        .take()
        .map(|pipe| std::thread::spawn(move || read_capped(pipe, cap)));
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
            .ok_or_else(|| io::Error::other("child has no pid"))?,
        rustix::process::PidfdFlags::empty(),
    );
    let deadline = started + walls.limits.wall;
    let mut timed_out = false;
    let mut temp_full = false;
    let mut next_temp_check = started + TEMP_CHECK_INTERVAL;
    // Whether the temp dir is past its bound, checked once per interval.
    let mut temp_past_bound = || {
        let now = Instant::now();
        if now < next_temp_check {
            return false;
        }
        next_temp_check = now + TEMP_CHECK_INTERVAL;
        temp_bytes_exceed(workdir, walls.limits.temp_bytes)
    };
    match pidfd {
        Ok(pidfd) => loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                timed_out = true;
                break;
            }
            if temp_past_bound() {
                temp_full = true;
                break;
            }
            let mut fds = [rustix::event::PollFd::new(
                &pidfd,
                rustix::event::PollFlags::IN,
            )];
            let timeout = rustix::event::Timespec::try_from(left.min(TEMP_CHECK_INTERVAL))
                .unwrap_or(rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 20_000_000,
                });
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) => {}
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        },
        // Without pidfds (Linux < 5.3), poll the child.
        Err(_) => loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                break;
            }
            if temp_past_bound() {
                temp_full = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        },
    }
    // The leader is not reaped yet, so its pid (the group id) cannot have been reused:
    // killing the group now also ends anything it left behind.
    kill_group(pid);
    let (status, cpu_time) = wait_with_usage(pid)?;
    // Reaped above: the `Child` must not wait again (dropping it does not).
    drop(child);
    let join = |handle: Option<std::thread::JoinHandle<Vec<u8>>>| {
        handle.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    Ok(Outcome {
        status,
        timed_out,
        temp_full,
        stdout: join(stdout),
        stderr: join(stderr),
        elapsed: started.elapsed(),
        cpu_time,
    })
}

/// Whether the files under `dir` hold more than `bound` bytes together, or there are more
/// than [`MAX_TEMP_ENTRIES`] of them. A file counts its length or the blocks it takes,
/// whichever is more (`fallocate` takes blocks without growing the length); symbolic links
/// are not followed. Entries that vanish during the walk (a compiler deleting its
/// temporaries) count nothing; a directory or file that cannot be read otherwise (made
/// unreadable, a path too long to name) counts as past the bound, as no compiler makes one.
fn temp_bytes_exceed(dir: &Path, bound: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    let gone = |error: &io::Error| error.kind() == io::ErrorKind::NotFound;
    let mut total: u64 = 0;
    let mut entries = 0usize;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let listing = match std::fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(error) if gone(&error) => continue,
            Err(_) => return true,
        };
        for entry in listing {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) if gone(&error) => continue,
                Err(_) => return true,
            };
            entries += 1;
            if entries > MAX_TEMP_ENTRIES {
                return true;
            }
            let metadata = match entry.metadata() {
                Ok(metadata) => metadata,
                Err(error) if gone(&error) => continue,
                Err(_) => return true,
            };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                total = total.saturating_add(metadata.len().max(metadata.blocks() * 512));
                if total > bound {
                    return true;
                }
            }
        }
    }
    false
}

/// Reaps the child and returns its status and CPU time (user + system, its own and that of
/// the children it waited for, which is what Linux reports to `wait4`).
#[allow(unsafe_code)]
fn wait_with_usage(pid: u32) -> io::Result<(ExitStatus, Duration)> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    let mut status = 0;
    loop {
        // SAFETY: `status` and `usage` are valid for writes for the duration of the call;
        // the pid is our unreaped child.
        let (rc, usage) = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            (libc::wait4(pid, &mut status, 0, &mut usage), usage)
        };
        if rc == pid {
            let time = |t: libc::timeval| {
                Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
            };
            return Ok((
                ExitStatus::from_raw(status),
                time(usage.ru_utime) + time(usage.ru_stime),
            ));
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[allow(unsafe_code)]
fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: plain integer arguments; the group is the child's own (setpgid in the
        // child), and it is not reaped yet.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Reads all of `pipe`, keeping the first `cap` bytes.
fn read_capped(mut pipe: impl Read, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    kept
}

/// Plain values for the child: nothing in `pre_exec` allocates or locks.
#[derive(Clone, Copy)]
struct ChildWalls {
    ruleset: Option<i32>,
    root: bool,
    parent: libc::pid_t,
    last_cap: u32,
    cpu: u64,
    address_space: u64,
    output_bytes: u64,
}

#[allow(unsafe_code)]
fn install_pre_exec(command: &mut Command, walls: ChildWalls) {
    // SAFETY: the hook only makes system calls through libc with values copied into the
    // closure; it allocates nothing, takes no lock, and reports errors as raw errno values.
    unsafe {
        command.pre_exec(move || confine_child(&walls));
    }
}

/// Runs in the forked child, before `exec`: see the module docs for the order.
#[allow(unsafe_code)]
fn confine_child(walls: &ChildWalls) -> io::Result<()> {
    let check = |rc: libc::c_long| {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY (whole block): every call takes integers or pointers to locals that outlive it;
    // none allocates, so they are safe between fork and exec.
    unsafe {
        check(libc::setpgid(0, 0).into())?;
        check(
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            )
            .into(),
        )?;
        // The parent may have died before PDEATHSIG was armed.
        if libc::getppid() != walls.parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        let limit = |resource: libc::__rlimit_resource_t, soft: u64, hard: u64| {
            let rlimit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            check(libc::setrlimit(resource, &rlimit).into())
        };
        // SIGXCPU at the soft limit; SIGKILL at the hard one should it be caught.
        limit(libc::RLIMIT_CPU, walls.cpu, walls.cpu + 1)?;
        limit(libc::RLIMIT_AS, walls.address_space, walls.address_space)?;
        limit(libc::RLIMIT_FSIZE, walls.output_bytes, walls.output_bytes)?;
        limit(libc::RLIMIT_CORE, 0, 0)?;
        // Files open at once: a file unlinked while open takes its blocks out of sight of
        // the temp dir's walk, up to `RLIMIT_FSIZE` each; the server's own limit, raised to
        // thousands for its connections, was inherited.
        limit(libc::RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES)?;
        if walls.root {
            check(libc::unshare(libc::CLONE_NEWNET).into())?;
            const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
            const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
            const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
            const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
            const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
            const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
            const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;
            let bits = SECBIT_NOROOT
                | SECBIT_NOROOT_LOCKED
                | SECBIT_NO_SETUID_FIXUP
                | SECBIT_NO_SETUID_FIXUP_LOCKED
                | SECBIT_KEEP_CAPS_LOCKED
                | SECBIT_NO_CAP_AMBIENT_RAISE
                | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
            check(libc::prctl(libc::PR_SET_SECUREBITS, bits, 0, 0, 0).into())?;
            for cap in 0..=walls.last_cap {
                check(libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0).into())?;
            }
            check(
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                    0,
                    0,
                    0,
                )
                .into(),
            )?;
            #[repr(C)]
            struct Header {
                version: u32,
                pid: i32,
            }
            #[repr(C)]
            struct Data {
                effective: u32,
                permitted: u32,
                inheritable: u32,
            }
            const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
            let mut header = Header {
                version: LINUX_CAPABILITY_VERSION_3,
                pid: 0,
            };
            let data = [
                Data {
                    effective: 0,
                    permitted: 0,
                    inheritable: 0,
                },
                Data {
                    effective: 0,
                    permitted: 0,
                    inheritable: 0,
                },
            ];
            check(libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()))?;
        }
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0).into())?;
        if let Some(fd) = walls.ruleset {
            check(libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32))?;
        }
    }
    Ok(())
}

/// Runs `argv` under the same confinement as a compiler (a temp dir as cwd, empty
/// environment but `PATH`), for tests that probe the walls. Returns the exit status, stdout
/// and stderr.
#[doc(hidden)]
pub fn run_confined_for_test(
    argv: &[&str],
    limits: Limits,
) -> io::Result<(ExitStatus, Vec<u8>, Vec<u8>, Confinement)> {
    let dir = tempfile::tempdir()?;
    let walls = Walls::prepare(dir.path(), &[], limits).map_err(io::Error::other)?;
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::other("empty argv"))?;
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env = [("PATH", "/usr/bin:/bin".to_owned())];
    let outcome = run(Path::new(program), &args, dir.path(), &env, &walls)?;
    Ok((
        outcome.status,
        outcome.stdout,
        outcome.stderr,
        walls.confinement().clone(),
    ))
}

/// The signal that ended a process, if one did.
pub(crate) fn signal_of(status: &ExitStatus) -> Option<i32> {
    status.signal()
}
