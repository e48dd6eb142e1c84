//! Tests of confinement. Confinement is irreversible and process-wide, so each scenario runs
//! in a child: the test re-executes this test binary for itself alone, with
//! [`CHILD_ENV`] naming the scenario. The child performs it and exits at once (the harness
//! would otherwise make calls the filter kills); the parent watches from outside, through
//! the child's exit status, its output and its `/proc` files.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use super::*;

/// Names the scenario a re-executed test binary runs.
const CHILD_ENV: &str = "ZEVAL_CONFINE_TEST_CHILD";

/// The line a child prints once confined, before the part of the scenario that may kill it.
const CONFINED: &str = "CONFINED ";

/// Runs `scenario` and exits with its code if this process is the child for test `name`;
/// returns at once in the parent.
fn as_child(name: &str, scenario: impl FnOnce() -> Result<(), String>) {
    if std::env::var(CHILD_ENV).as_deref() != Ok(name) {
        return;
    }
    let code = match scenario() {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("scenario {name} failed: {message}");
            1
        }
    };
    std::process::exit(code);
}

/// Starts the child for test `name`, with piped stdio.
fn spawn(name: &str) -> Child {
    spawn_with(name, &[])
}

/// Starts the child for test `name`, with piped stdio and more environment variables.
fn spawn_with(name: &str, env: &[(&str, &std::path::Path)]) -> Child {
    let module = module_path!().split_once("::").expect("crate::module").1;
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &format!("{module}::{name}"),
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, name)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Confines the child and announces it with the report on stdout.
fn confine_and_announce() -> Result<ConfinementReport, String> {
    let report = confine(&ConfineOptions::default()).map_err(|e| format!("confine: {e}"))?;
    announce(&serde_json::to_string(&report).map_err(|e| e.to_string())?)?;
    Ok(report)
}

/// Prints a [`CONFINED`] line for the parent.
fn announce(text: &str) -> Result<(), String> {
    announce_line(&format!("{CONFINED}{text}"))
}

/// Prints `line` on a line of its own for the parent.
fn announce_line(line: &str) -> Result<(), String> {
    // The harness may have left "test name ... " on the current line.
    let mut stdout = std::io::stdout();
    write!(stdout, "\n{line}\n")
        .and_then(|()| stdout.flush())
        .map_err(|e| e.to_string())
}

/// The `RLIMIT_NICE` confinement can reach from this process: 20, unless the hard limit is
/// lower and `CAP_SYS_RESOURCE` (capability 24) is missing, as for root on some machines.
fn reachable_nice_limit() -> u64 {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = u64::from_str_radix(field(&status, "CapEff"), 16).unwrap();
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nice).maximum;
    match hard {
        Some(hard) if hard < 20 && effective & (1 << CAP_SYS_RESOURCE) == 0 => hard,
        _ => 20,
    }
}

/// Whether confinement keeps `CAP_SYS_NICE` (capability 23) on the confining thread: when
/// this process is root and has it.
fn keeps_sys_nice() -> bool {
    const CAP_SYS_NICE: u32 = 23;
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = u64::from_str_radix(field(&status, "CapEff"), 16).unwrap();
    is_root() && effective & (1 << CAP_SYS_NICE) != 0
}

/// Whether a confined worker can restore a lowered guest thread to nice 0.
fn restorable() -> bool {
    keeps_sys_nice() || reachable_nice_limit() == 20
}

/// The line a child prints, before confining itself, to name its confining thread.
const CONFINING_TID: &str = "CONFINING_TID ";

/// What a finished child left: its status, and its stdout and stderr.
struct Finished {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn report(&self) -> ConfinementReport {
        let json = self
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix(CONFINED))
            .unwrap_or_else(|| panic!("the child never confined itself:\n{}", self.describe()));
        serde_json::from_str(json).unwrap()
    }

    fn describe(&self) -> String {
        format!(
            "status {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    fn assert_killed_by(&self, signal: i32) {
        self.report();
        assert_eq!(self.status.signal(), Some(signal), "{}", self.describe());
    }

    fn assert_success(&self) {
        assert!(self.status.success(), "{}", self.describe());
    }
}

fn run(name: &str) -> Finished {
    run_with(name, &[])
}

fn run_with(name: &str, env: &[(&str, &std::path::Path)]) -> Finished {
    let output = spawn_with(name, env).wait_with_output().unwrap();
    Finished {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The landlock ABI of the running kernel, 0 without landlock.
#[allow(unsafe_code)]
fn kernel_landlock_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with the VERSION flag the call reads no attribute (null, size 0) and only
    // returns the ABI version.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    version.max(0)
}

/// `sched_setscheduler(0, policy)` for the calling thread.
#[allow(unsafe_code)]
fn set_policy(policy: libc::c_int) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is valid for the call; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The scheduling policy of the calling thread; `sched_getscheduler` is on the allowlist.
#[allow(unsafe_code)]
fn thread_policy() -> libc::c_int {
    // SAFETY: pid 0 is the calling thread; the call reads no memory.
    unsafe { libc::sched_getscheduler(0) }
}

/// Spawns a thread and waits until it runs its own code: a thread still starting makes calls
/// the filter kills (`rseq`, `set_robust_list`, `sched_getaffinity`, ...), as it would in a
/// worker that confined itself right after starting a thread.
fn spawn_started(body: impl FnOnce() + Send + 'static) -> Result<(), String> {
    let (started, wait_for_start) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = started.send(());
        body();
    });
    wait_for_start
        .recv()
        .map_err(|e| format!("the thread never started: {e}"))
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in\n{status}"))
        .trim()
}

#[test]
fn every_thread_of_a_confined_worker_is_filtered_unprivileged_and_limited() {
    const NAME: &str = "every_thread_of_a_confined_worker_is_filtered_unprivileged_and_limited";
    as_child(NAME, || {
        // A thread from before confinement, like the epoch ticker; it stays parked.
        spawn_started(|| {
            loop {
                std::thread::park();
            }
        })?;
        announce_line(&format!(
            "{CONFINING_TID}{}",
            rustix::thread::gettid().as_raw_nonzero()
        ))?;
        confine_and_announce()?;
        // Wait for the parent to look at /proc, then leave normally.
        let mut rest = Vec::new();
        std::io::stdin()
            .read_to_end(&mut rest)
            .map_err(|e| e.to_string())?;
        Ok(())
    });

    let mut child = spawn(NAME);
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut report = None;
    let mut confining = None;
    let mut line = String::new();
    while report.is_none() {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let output = child.wait_with_output().unwrap();
            panic!("the child ended before confining itself: {output:?}");
        }
        if let Some(json) = line.trim_end().strip_prefix(CONFINED) {
            report = Some(serde_json::from_str::<ConfinementReport>(json).unwrap());
        }
        if let Some(tid) = line.trim_end().strip_prefix(CONFINING_TID) {
            confining = Some(tid.to_owned());
        }
    }
    let report = report.unwrap();
    let confining = confining.expect("the child named its confining thread");

    // Every thread: the filter (mode 2), no new privileges and, as root, the new user.
    // Only the confining thread keeps a capability, CAP_SYS_NICE (bit 23), and only as root.
    let mut threads = Vec::new();
    let mut seen_confining = false;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap();
        let status = std::fs::read_to_string(task.path().join("status")).unwrap();
        threads.push(field(&status, "Name").to_owned());
        let is_confining = task.file_name().to_str() == Some(confining.as_str());
        seen_confining |= is_confining;
        assert_eq!(field(&status, "Seccomp"), "2", "{status}");
        assert_eq!(field(&status, "Seccomp_filters"), "1", "{status}");
        assert_eq!(field(&status, "NoNewPrivs"), "1", "{status}");
        if is_root() {
            assert_eq!(
                field(&status, "Uid"),
                "65534\t65534\t65534\t65534",
                "{status}"
            );
            assert_eq!(
                field(&status, "Gid"),
                "65534\t65534\t65534\t65534",
                "{status}"
            );
            assert_eq!(field(&status, "Groups"), "", "{status}");
            let caps = if is_confining && keeps_sys_nice() {
                "0000000000800000"
            } else {
                "0000000000000000"
            };
            assert_eq!(field(&status, "CapEff"), caps, "{status}");
            assert_eq!(field(&status, "CapPrm"), caps, "{status}");
            assert_eq!(field(&status, "CapInh"), "0000000000000000", "{status}");
            assert_eq!(field(&status, "CapAmb"), "0000000000000000", "{status}");
        }
    }
    assert!(seen_confining, "no thread {confining} in /proc/{pid}/task");
    // The harness's main thread, the test's thread and the parked one.
    assert!(threads.len() >= 3, "threads {threads:?}, report {report:?}");

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let limit = |name: &str| -> Vec<String> {
        let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(limit("Max core file size"), ["0", "0"], "{limits}");
    assert_eq!(limit("Max processes"), ["0", "0"], "{limits}");
    let nice = reachable_nice_limit().to_string();
    assert_eq!(
        limit("Max nice priority"),
        [nice.as_str(), nice.as_str()],
        "{limits}"
    );

    // Closing stdin lets the child read EOF and exit normally under the filter.
    drop(child.stdin.take());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");

    assert!(report.seccomp.is_on(), "{report:?}");
    assert!(report.seccomp.detail().starts_with(&format!(
        "{} system calls allowed",
        seccomp::ALLOWLIST.len()
    )));
    assert!(report.no_new_privs);
    if is_root() {
        let Feature::On(user) = &report.user else {
            panic!("{report:?}");
        };
        assert!(user.starts_with("nobody (65534:65534); "), "{user}");
        assert_eq!(
            user.contains("only the guest thread keeps a capability, CAP_SYS_NICE"),
            keeps_sys_nice(),
            "{user}"
        );
    } else {
        assert!(matches!(report.user, Feature::Unavailable(_)), "{report:?}");
    }
    // The child's stdio are pipes, so fsize is set.
    let limits = format!("core 0, fsize 0, nproc 0, nofile 0, nice {nice}, not dumpable");
    if nice == "20" {
        assert_eq!(report.rlimits, Feature::On(limits));
    } else if keeps_sys_nice() {
        assert_eq!(
            report.rlimits,
            Feature::On(format!(
                "core 0, fsize 0, nproc 0, nofile 0, nice {nice} (the guest thread's CAP_SYS_NICE \
                 restores long calls instead), not dumpable"
            ))
        );
    } else {
        let Feature::Partial(detail) = &report.rlimits else {
            panic!("{report:?}");
        };
        assert!(
            detail.starts_with(&format!("{limits} (RLIMIT_NICE is held at {nice}")),
            "{detail}"
        );
        assert!(detail.contains("cannot be restored"), "{detail}");
    }
    assert_eq!(report.priority_restorable, restorable(), "{report:?}");
    match kernel_landlock_abi() {
        0 => assert!(
            matches!(report.landlock, Feature::Unavailable(_)),
            "{report:?}"
        ),
        abi => {
            assert!(
                !matches!(report.landlock, Feature::Unavailable(_)),
                "{report:?}"
            );
            assert!(
                report
                    .landlock
                    .detail()
                    .starts_with(&format!("ABI v{abi}:"))
                    || report
                        .landlock
                        .detail()
                        .starts_with(&format!("kernel ABI v{abi},")),
                "{report:?}"
            );
        }
    }
    // The child saw the same cgroup facts as this (unconfined) process.
    assert_eq!(report.memory_cgroup, cgroup::detect());
}

#[test]
fn a_forbidden_system_call_kills_the_worker_with_sigsys() {
    const NAME: &str = "a_forbidden_system_call_kills_the_worker_with_sigsys";
    as_child(NAME, || {
        confine_and_announce()?;
        issue_forbidden_syscall().map_err(|e| format!("socket failed without a kill: {e}"))?;
        Err("the forbidden call returned".to_owned())
    });
    run(NAME).assert_killed_by(libc::SIGSYS);
}

#[test]
fn opening_a_file_after_confinement_kills_the_worker() {
    const NAME: &str = "opening_a_file_after_confinement_kills_the_worker";
    as_child(NAME, || {
        confine_and_announce()?;
        let opened = std::fs::File::open("/etc/passwd");
        Err(format!("open returned: {opened:?}"))
    });
    run(NAME).assert_killed_by(libc::SIGSYS);
}

#[test]
fn a_thread_started_before_confinement_is_filtered_too() {
    const NAME: &str = "a_thread_started_before_confinement_is_filtered_too";
    as_child(NAME, || {
        let (go, wait_for_go) = mpsc::channel::<()>();
        let (done, wait_for_done) = mpsc::channel();
        spawn_started(move || {
            if wait_for_go.recv().is_ok() {
                let _ = done.send(issue_forbidden_syscall());
            }
        })?;
        confine_and_announce()?;
        go.send(()).map_err(|e| e.to_string())?;
        let result = wait_for_done.recv().map_err(|e| e.to_string())?;
        Err(format!(
            "the older thread's forbidden call returned: {result:?}"
        ))
    });
    run(NAME).assert_killed_by(libc::SIGSYS);
}

#[test]
fn an_abort_shows_as_sigabrt_not_as_a_filter_kill() {
    const NAME: &str = "an_abort_shows_as_sigabrt_not_as_a_filter_kill";
    as_child(NAME, || {
        confine_and_announce()?;
        std::process::abort();
    });
    run(NAME).assert_killed_by(libc::SIGABRT);
}

#[test]
fn a_confined_worker_lowers_and_restores_its_own_threads_only() {
    const NAME: &str = "a_confined_worker_lowers_and_restores_its_own_threads_only";
    as_child(NAME, || {
        use rustix::process::{Pid, getpriority_process, setpriority_process};
        let io = |what: &'static str| move |e: rustix::io::Errno| format!("{what}: {e}");

        let (tid_sender, tid_receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tid_sender.send(rustix::thread::gettid());
            loop {
                std::thread::park();
            }
        });
        let other = tid_receiver.recv().map_err(|e| e.to_string())?;
        let me = Some(rustix::thread::gettid());
        let original = getpriority_process(me).map_err(io("getpriority"))?;
        // As root this thread keeps CAP_SYS_NICE, which restores whatever RLIMIT_NICE is.
        let restorable = keeps_sys_nice() || (reachable_nice_limit() == 20 && original >= 0);
        let report = confine_and_announce()?;
        if report.priority_restorable != restorable {
            return Err(format!("expected restorable {restorable}: {report:?}"));
        }

        // What zeval-sandbox does to a long call, on this thread, as the unprivileged user:
        // lowering is always allowed, coming back only with CAP_SYS_NICE or within
        // RLIMIT_NICE. Either way the filter lets the calls through: a refusal is the
        // kernel's EPERM, not a kill.
        setpriority_process(me, 19).map_err(io("setpriority 19"))?;
        set_policy(libc::SCHED_IDLE).map_err(|e| format!("SCHED_IDLE: {e}"))?;
        if thread_policy() != libc::SCHED_IDLE {
            return Err(format!("policy {} after SCHED_IDLE", thread_policy()));
        }
        let restored =
            set_policy(libc::SCHED_OTHER).and_then(|()| Ok(setpriority_process(me, original)?));
        match (restorable, restored) {
            (true, Ok(())) => {
                let now = getpriority_process(me).map_err(io("getpriority after"))?;
                if now != original || thread_policy() != libc::SCHED_OTHER {
                    return Err(format!(
                        "restored to nice {now}, policy {}; want nice {original}, SCHED_OTHER",
                        thread_policy()
                    ));
                }
            }
            (false, Err(e)) if e.raw_os_error() == Some(libc::EPERM) => {}
            (restorable, restored) => {
                return Err(format!("restorable {restorable}, restored: {restored:?}"));
            }
        }
        // Again: a second long call on the same thread is lowered and restored the same way.
        if restorable {
            setpriority_process(me, 19).map_err(io("setpriority 19 again"))?;
            set_policy(libc::SCHED_IDLE).map_err(|e| format!("SCHED_IDLE again: {e}"))?;
            set_policy(libc::SCHED_OTHER).map_err(|e| format!("SCHED_OTHER again: {e}"))?;
            setpriority_process(me, original).map_err(io("setpriority back again"))?;
        }
        // `who` 0 and a sibling thread are this process too.
        getpriority_process(None).map_err(io("getpriority 0"))?;
        setpriority_process(Some(other), 19).map_err(io("setpriority sibling"))?;
        if restorable {
            setpriority_process(Some(other), original).map_err(io("setpriority sibling back"))?;
        }

        // Another process (here the parent) is out of reach: the filter kills.
        announce("renicing the parent")?;
        let parent = Pid::from_raw(std::os::unix::process::parent_id() as i32);
        let reniced = setpriority_process(parent, 19);
        Err(format!("renicing the parent returned {reniced:?}"))
    });
    let finished = run(NAME);
    assert!(
        finished
            .stdout
            .contains(&format!("{CONFINED}renicing the parent")),
        "{}",
        finished.describe()
    );
    finished.assert_killed_by(libc::SIGSYS);
}

#[test]
fn raising_a_thread_above_normal_priority_kills_the_worker() {
    const NAME: &str = "raising_a_thread_above_normal_priority_kills_the_worker";
    as_child(NAME, || {
        let me = Some(rustix::thread::gettid());
        let original = rustix::process::getpriority_process(me).map_err(|e| e.to_string())?;
        confine_and_announce()?;
        // Below the floor the filter allows (0, or a negative starting nice); the kernel
        // would allow it with CAP_SYS_NICE.
        let raised = rustix::process::setpriority_process(me, original.min(0) - 5);
        Err(format!("raising the priority returned {raised:?}"))
    });
    run(NAME).assert_killed_by(libc::SIGSYS);
}

#[test]
fn a_real_time_policy_kills_the_worker() {
    const NAME: &str = "a_real_time_policy_kills_the_worker";
    as_child(NAME, || {
        confine_and_announce()?;
        let param = libc::sched_param { sched_priority: 1 };
        let result = sched_setscheduler_self(libc::SCHED_FIFO, &param);
        Err(format!("SCHED_FIFO returned {result:?}"))
    });
    run(NAME).assert_killed_by(libc::SIGSYS);
}

/// `sched_setscheduler(0, policy, param)` for the calling thread, with any static priority.
#[allow(unsafe_code)]
fn sched_setscheduler_self(policy: libc::c_int, param: &libc::sched_param) -> std::io::Result<()> {
    // SAFETY: `param` is valid for the call; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn landlock_alone_denies_files_and_network() {
    const NAME: &str = "landlock_alone_denies_files_and_network";
    const DIR_ENV: &str = "ZEVAL_CONFINE_TEST_DIR";
    as_child(NAME, || {
        // Set up before the ruleset: a listener to connect to, and the facts to compare.
        let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let parent = rustix::process::Pid::from_raw(std::os::unix::process::parent_id() as i32)
            .ok_or("no parent")?;
        let abi = kernel_landlock_abi();

        let feature = landlock::restrict_self().map_err(|e| e.to_string())?;
        announce(&serde_json::to_string(&feature).map_err(|e| e.to_string())?)?;

        let denied = |what: &str, result: std::io::Result<()>, expected: bool| match result {
            Err(e) if expected && e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
            Ok(()) if !expected => Ok(()),
            other => Err(format!(
                "{what} (ABI {abi}, expect denial: {expected}): {other:?}"
            )),
        };
        denied(
            "open",
            std::fs::File::open("/etc/passwd").map(drop),
            abi >= 1,
        )?;
        denied("read_dir", std::fs::read_dir("/").map(drop), abi >= 1)?;
        // In a directory of the parent's, which removes it whatever happens here.
        let dir = std::env::var_os(DIR_ENV).ok_or("no directory")?;
        denied(
            "create",
            std::fs::File::create(std::path::Path::new(&dir).join("created")).map(drop),
            abi >= 1,
        )?;
        denied(
            "connect",
            std::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)).map(drop),
            abi >= 4,
        )?;
        let signal = rustix::process::test_kill_process(parent).map_err(std::io::Error::from);
        // Denied by the signal scope (ABI 6); root may signal the parent otherwise.
        match (signal, abi >= 6) {
            (Err(e), true) if e.raw_os_error() == Some(libc::EPERM) => {}
            (Ok(()), false) => {}
            (other, scoped) => return Err(format!("kill(parent, 0), scoped {scoped}: {other:?}")),
        }
        drop(listener);
        Ok(())
    });
    let dir = tempfile::tempdir().unwrap();
    let finished = run_with(NAME, &[(DIR_ENV, dir.path())]);
    finished.assert_success();
    let json = finished
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(CONFINED))
        .unwrap();
    let feature: Feature = serde_json::from_str(json).unwrap();
    assert_eq!(
        kernel_landlock_abi() == 0,
        matches!(feature, Feature::Unavailable(_)),
        "{feature:?}"
    );
}

#[test]
fn the_report_serialises_with_a_state_and_a_detail() {
    let report = ConfinementReport {
        seccomp: Feature::On("34 system calls allowed".to_owned()),
        landlock: Feature::Partial("ABI v7: no file-system access".to_owned()),
        no_new_privs: true,
        user: Feature::On("nobody (65534:65534)".to_owned()),
        rlimits: Feature::On("core 0".to_owned()),
        memory_cgroup: Feature::Unavailable("no cgroup v2 hierarchy".to_owned()),
        priority_restorable: false,
    };
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "seccomp": {"state": "on", "detail": "34 system calls allowed"},
            "landlock": {"state": "partial", "detail": "ABI v7: no file-system access"},
            "no_new_privs": true,
            "user": {"state": "on", "detail": "nobody (65534:65534)"},
            "rlimits": {"state": "on", "detail": "core 0"},
            "memory_cgroup": {"state": "unavailable", "detail": "no cgroup v2 hierarchy"},
            "priority_restorable": false,
        })
    );
    assert_eq!(
        serde_json::from_value::<ConfinementReport>(json.clone()).unwrap(),
        report
    );
    // A report without the field (from an older worker) reads as restorable.
    let mut older = json;
    older.as_object_mut().unwrap().remove("priority_restorable");
    assert!(
        serde_json::from_value::<ConfinementReport>(older)
            .unwrap()
            .priority_restorable
    );
}
