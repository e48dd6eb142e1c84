//! Compiled modules: one engine and pool shared by many modules, kept most-recently-used.

use std::time::Duration;

use zeval_sandbox::{Limits, ModuleHostConfig, SandboxError};

use crate::common::sandbox;

/// A WASI command that writes `text` to stdout.
fn printer(text: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{text}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = text.len()
    )
}

const SPIN: &str = r#"(module (func (export "_start") (loop (br 0))))"#;

fn quick() -> Limits {
    Limits {
        wall_time: Duration::from_millis(300),
        ..Limits::default()
    }
}

#[test]
fn modules_run_and_are_reused_by_key() {
    let host = sandbox().module_host(ModuleHostConfig::default()).unwrap();
    let first = host.load("a", printer("first").as_bytes()).unwrap();
    let second = host.load("b", printer("second").as_bytes()).unwrap();
    assert_eq!(first.run(b"", &quick()).unwrap().stdout, b"first");
    assert_eq!(second.run(b"", &quick()).unwrap().stdout, b"second");
    // The key decides: other bytes under a known key are not compiled again.
    let again = host.load("a", b"not wasm").unwrap();
    assert_eq!(again.run(b"", &quick()).unwrap().stdout, b"first");
    assert_eq!(host.loaded(), 2);
}

#[test]
fn the_least_recently_used_module_is_dropped() {
    let host = sandbox()
        .module_host(ModuleHostConfig {
            max_loaded: 2,
            ..ModuleHostConfig::default()
        })
        .unwrap();
    host.load("a", printer("a").as_bytes()).unwrap();
    host.load("b", printer("b").as_bytes()).unwrap();
    assert!(host.get("a").is_some()); // a is now the most recent
    host.load("c", printer("c").as_bytes()).unwrap();
    assert_eq!(host.loaded(), 2);
    assert!(host.get("b").is_none());
    assert!(host.get("a").is_some() && host.get("c").is_some());
}

#[test]
fn invalid_modules_fail_to_load_and_are_not_kept() {
    let host = sandbox().module_host(ModuleHostConfig::default()).unwrap();
    let error = host.load("bad", b"\0asm garbage").err().expect("an error");
    assert!(matches!(error, SandboxError::Load { .. }), "{error}");
    assert_eq!(host.loaded(), 0);
    // Importing anything beyond WASI cannot link.
    let needs_env = r#"(module (import "env" "f" (func)) (func (export "_start")))"#;
    assert!(host.load("env", needs_env.as_bytes()).is_err());
}

#[test]
fn modules_have_the_limits_of_guests() {
    // Not beside a test that loads the CPUs: the spin would not have its time (`Starved`).
    let _cpus = crate::common::timed();
    let host = sandbox().module_host(ModuleHostConfig::default()).unwrap();
    let spin = host.load("spin", SPIN.as_bytes()).unwrap();
    let error = spin.run(b"", &quick()).unwrap_err();
    assert!(matches!(error, SandboxError::Timeout { .. }), "{error}");
}

#[test]
fn modules_share_one_pool() {
    let mut config = zeval_sandbox::SandboxConfig::new(tempfile::tempdir().unwrap().keep());
    config.pool.max_instances = 1;
    config.pool.reserve_instances = 0;
    let sandbox = zeval_sandbox::Sandbox::new(config).unwrap();
    let host = sandbox.module_host(ModuleHostConfig::default()).unwrap();
    let spin = host.load("spin", SPIN.as_bytes()).unwrap();
    let print = host.load("print", printer("x").as_bytes()).unwrap();
    let busy = std::thread::spawn(move || spin.run(b"", &quick()));
    std::thread::sleep(Duration::from_millis(100));
    // The only slot is taken by the other module until its deadline.
    let limits = Limits {
        wall_time: Duration::from_millis(50),
        ..Limits::default()
    };
    let error = print.run(b"", &limits).unwrap_err();
    assert!(matches!(error, SandboxError::Busy { .. }), "{error}");
    assert!(busy.join().unwrap().is_err());
    assert_eq!(print.run(b"", &quick()).unwrap().stdout, b"x");
}

#[test]
fn without_the_disk_cache_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox =
        zeval_sandbox::Sandbox::new(zeval_sandbox::SandboxConfig::new(dir.path())).unwrap();
    let host = sandbox
        .module_host(ModuleHostConfig {
            disk_cache: false,
            parallel_compilation: false,
            ..ModuleHostConfig::default()
        })
        .unwrap();
    let guest = host.load("k", printer("mem").as_bytes()).unwrap();
    assert_eq!(guest.run(b"", &quick()).unwrap().stdout, b"mem");
    let written = std::fs::read_dir(dir.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(written, 0);
}

/// A WASI command that spins, reading the monotonic clock, for `millis` milliseconds.
fn clock_spinner(millis: u64) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $start i64)
    (drop (call $now (i32.const 1) (i64.const 1) (i32.const 0)))
    (local.set $start (i64.load (i32.const 0)))
    (loop $spin
      (drop (call $now (i32.const 1) (i64.const 1) (i32.const 0)))
      (br_if $spin (i64.lt_u (i64.sub (i64.load (i32.const 0)) (local.get $start))
                             (i64.const {nanos}))))))"#,
        nanos = millis * 1_000_000
    )
}

/// `(nice, policy)` of thread `tid` of this process (`/proc/self/task/<tid>/stat` fields 19
/// and 41).
fn priority_of(tid: i32) -> (i64, i64) {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    (fields[16].parse().unwrap(), fields[38].parse().unwrap())
}

/// Without epoch checks a call cannot lower itself; the ticker thread lowers it past the
/// threshold, and the call's thread is itself again afterwards.
#[test]
fn a_long_call_without_epoch_checks_is_lowered_by_the_ticker() {
    let _cpus = crate::common::timed();
    const SCHED_IDLE: i64 = 5;
    let cache = tempfile::tempdir().unwrap();
    let mut config = zeval_sandbox::SandboxConfig::new(cache.path());
    config.lower_priority_after = Some(Duration::from_millis(20));
    let host = zeval_sandbox::Sandbox::new(config)
        .unwrap()
        .module_host(ModuleHostConfig {
            epoch_interruption: false,
            ..ModuleHostConfig::default()
        })
        .unwrap();
    let guest = host.load("spin", clock_spinner(300).as_bytes()).unwrap();
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let call = std::thread::spawn(move || {
        tid_sender
            .send(rustix::thread::gettid().as_raw_nonzero().get())
            .unwrap();
        let before = priority_of(rustix::thread::gettid().as_raw_nonzero().get());
        let ran = guest.run(b"", &Limits::default());
        (before, ran.map(|_| ()))
    });
    let tid = tid.recv().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let during = priority_of(tid);
    let (before, ran) = call.join().unwrap();
    ran.unwrap();
    if zeval_sandbox::priority_lowering_available() {
        assert_eq!(during, (19, SCHED_IDLE), "before: {before:?}");
    }
    // The thread has ended; its priority was restored before it did (the unit tests of the
    // priority module check the restoring on a live thread).
}

/// Two slots and a reserve of one whose calls run at most 300 ms; calls count as long after
/// 50 ms.
fn host_with_a_reserve(reserve: u32) -> zeval_sandbox::ModuleHost {
    let mut config = zeval_sandbox::SandboxConfig::new(tempfile::tempdir().unwrap().keep());
    config.pool.max_instances = 2;
    config.pool.reserve_instances = reserve;
    config.pool.reserve_call_time = Duration::from_millis(300);
    config.lower_priority_after = Some(Duration::from_millis(50));
    let sandbox = zeval_sandbox::Sandbox::new(config).unwrap();
    sandbox.module_host(ModuleHostConfig::default()).unwrap()
}

/// A WASI command that sleeps 60 s in `poll_oneoff`: it holds its slot as an endless loop
/// would, without taking the CPUs from the other tests.
const SLEEP: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 60000000000))
    (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 256)))))"#;

/// Runs `module` on a thread with a 2 s deadline: its outcome and how long it took.
fn run_in_background(
    module: &zeval_sandbox::Guest,
) -> std::thread::JoinHandle<(Result<zeval_sandbox::RunOutput, SandboxError>, Duration)> {
    let module = module.clone();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let limits = Limits {
            wall_time: Duration::from_secs(2),
            ..Limits::default()
        };
        (module.run(b"", &limits), started.elapsed())
    })
}

/// In process, as in the worker pool: while every slot holds a long call (endless loops of
/// clients within their limits; here calls asleep until their deadline, which hold a slot the
/// same way without loading the machine for the timing tests beside this one), a short call
/// runs in a reserve slot at once instead of waiting for one to end; a long call sent there is
/// stopped at the reserve's 300 ms (and reports that limit), and the long calls in the regular
/// slots keep their deadlines. With no reserve the short call waits until its deadline.
#[test]
fn a_short_call_runs_in_the_reserve_while_every_slot_holds_a_long_one() {
    let _cpus = crate::common::timed();
    for reserve in [1, 0] {
        let host = host_with_a_reserve(reserve);
        let sleeper = host.load("sleep", SLEEP.as_bytes()).unwrap();
        let print = host.load("print", printer("x").as_bytes()).unwrap();
        let loops = [run_in_background(&sleeper), run_in_background(&sleeper)];
        std::thread::sleep(Duration::from_millis(100));
        let started = std::time::Instant::now();
        let short = print.run(b"", &quick());
        let took = started.elapsed();
        if reserve == 0 {
            assert!(matches!(short, Err(SandboxError::Busy { .. })), "{short:?}");
            for call in loops {
                let (outcome, _) = call.join().unwrap();
                assert!(outcome.is_err(), "a loop ended well");
            }
            continue;
        }
        assert_eq!(short.unwrap().stdout, b"x");
        assert!(
            took < Duration::from_millis(200),
            "the short call took {took:?}"
        );
        let (outcome, took) = run_in_background(&sleeper).join().unwrap();
        assert!(
            matches!(outcome, Err(SandboxError::ReserveTimeout { limit }) if limit == Duration::from_millis(300)),
            "{outcome:?}"
        );
        assert!(
            took < Duration::from_secs(1),
            "a loop in the reserve ran {took:?}"
        );
        for call in loops {
            let (outcome, took) = call.join().unwrap();
            assert!(
                matches!(outcome, Err(SandboxError::Timeout { .. })),
                "{outcome:?}"
            );
            assert!(
                took >= Duration::from_millis(1_900),
                "a long call was cut: {took:?}"
            );
        }
    }
}

/// A WASI command that asks `random_get` for 16 MiB into its memory, then prints `after`.
const LARGE_RANDOM: &str = r#"(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 257)
  (data (i32.const 16777316) "after")
  (func (export "_start")
    (drop (call $random (i32.const 0) (i32.const 16777216)))
    (i32.store (i32.const 16777416) (i32.const 16777316))
    (i32.store (i32.const 16777420) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 16777416) (i32.const 1)
                          (i32.const 16777424)))))"#;

/// What the host allocates on a guest's behalf for one `random_get` is bounded: a 16 MiB
/// request traps, where wasmtime-wasi's default (64 MiB) allocated and filled it, outside
/// the guest's memory limit (and before it checked the guest's pointer).
#[test]
fn a_large_random_get_is_refused() {
    let host = sandbox().module_host(ModuleHostConfig::default()).unwrap();
    let random = host.load("random", LARGE_RANDOM.as_bytes()).unwrap();
    let outcome = random.run(b"", &quick());
    assert!(
        !matches!(&outcome, Ok(output) if output.stdout == b"after"),
        "{outcome:?}"
    );
}

/// A module that keeps Cranelift busy for a while: `functions` functions of `adds` additions
/// each (`salt` makes the text, hence nothing cached, differ between runs).
fn slow_to_compile(functions: usize, adds: usize, salt: u64) -> String {
    let mut text = String::from("(module\n");
    for f in 0..functions {
        text += &format!("(func $f{f} (param i64) (result i64) local.get 0\n");
        for a in 0..adds {
            text += &format!("i64.const {} i64.add\n", salt ^ (f * adds + a) as u64);
        }
        text += ")\n";
    }
    text += "(func (export \"_start\")))";
    text
}

/// A module that is not in memory is compiled on a thread of its own; a call stops waiting
/// for it at the call's deadline (`load` held the call for the whole compilation, whatever
/// its deadline), and so does a call that waits for the one compilation slot. The
/// compilation goes on, and the next call finds its module.
#[test]
fn a_call_stops_waiting_for_a_long_compilation_at_its_deadline() {
    use std::sync::Arc;
    use std::time::Instant;
    let host = sandbox()
        .module_host(ModuleHostConfig {
            disk_cache: false,
            // As the evaluator's in-process host: one core per compilation.
            parallel_compilation: false,
            ..ModuleHostConfig::default()
        })
        .unwrap();
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let big: Arc<[u8]> = slow_to_compile(800, 200, salt).into_bytes().into();
    let small: Arc<[u8]> = printer("small").into_bytes().into();
    let limit = Duration::from_millis(200);
    let started = Instant::now();
    let error = host
        .load_within("big", &big, started + limit, limit)
        .err()
        .expect("the big module compiled within 200 ms");
    let waited = started.elapsed();
    assert!(
        matches!(error, SandboxError::Timeout { limit: l } if l == limit),
        "{error}"
    );
    assert!(waited < Duration::from_millis(1_500), "waited {waited:?}");
    let queued = Instant::now();
    let error = host
        .load_within("small", &small, queued + limit, limit)
        .err()
        .expect("a second compilation started beside the first");
    assert!(matches!(error, SandboxError::Timeout { .. }), "{error}");
    assert!(queued.elapsed() < Duration::from_millis(1_500));
    while host.get("big").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the compilation did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let compiled_after = started.elapsed();
    assert!(
        compiled_after > limit * 3,
        "the module compiled in {compiled_after:?}: too fast to show anything"
    );
    let later = Instant::now() + Duration::from_secs(60);
    let guest = host.load_within("small", &small, later, limit).unwrap();
    assert_eq!(guest.run(b"", &quick()).unwrap().stdout, b"small");
    eprintln!("the big module compiled in {compiled_after:?}; the call waited {waited:?}");
}

/// A sandbox whose module cache is in `dir`, and a module host's settings that compile on
/// one core, as the evaluator's in-process host does.
fn disk_cached_sandbox(dir: &std::path::Path) -> (zeval_sandbox::Sandbox, ModuleHostConfig) {
    let sandbox =
        zeval_sandbox::Sandbox::new(zeval_sandbox::SandboxConfig::new(dir.to_path_buf())).unwrap();
    let config = ModuleHostConfig {
        parallel_compilation: false,
        ..ModuleHostConfig::default()
    };
    (sandbox, config)
}

/// A module already in the disk cache is read back at once, without waiting for the one
/// compilation slot behind someone else's long compilation.
#[test]
fn a_module_in_the_disk_cache_does_not_wait_for_the_compilation_slot() {
    use std::sync::Arc;
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, config) = disk_cached_sandbox(dir.path());
    let small: Arc<[u8]> = printer("cached").into_bytes().into();
    sandbox
        .module_host(config.clone())
        .unwrap()
        .load("cached", &small)
        .unwrap();
    let host = sandbox.module_host(config).unwrap();
    let big: Arc<[u8]> = slow_to_compile(800, 200, 7).into_bytes().into();
    let limit = Duration::from_millis(200);
    let started = Instant::now();
    assert!(matches!(
        host.load_within("big", &big, started + limit, limit),
        Err(SandboxError::Timeout { .. })
    ));
    let started = Instant::now();
    let guest = host
        .load_within("cached", &small, started + limit, limit)
        .unwrap();
    assert_eq!(guest.run(b"", &quick()).unwrap().stdout, b"cached");
}

/// Every file under `dir` whose name ends with `suffix`.
fn files_ending(dir: &std::path::Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_ending(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    found
}

/// Only a verified copy in the disk cache is read back at once. Until 2026-12-06 a `.cwasm`
/// that merely existed, its manifest entry missing (a writer between its two renames, a
/// process killed there), sent the call to compile the module on its own thread: outside
/// the one compilation slot, and past the call's deadline.
#[test]
fn a_cached_module_without_its_manifest_is_compiled_within_the_deadline() {
    use std::sync::Arc;
    use std::time::Instant;
    // Two compilations of a large module: not beside a test that times its calls.
    let _cpus = crate::common::loading_the_cpus();
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, config) = disk_cached_sandbox(dir.path());
    let big: Arc<[u8]> = slow_to_compile(800, 200, 11).into_bytes().into();
    sandbox
        .module_host(config.clone())
        .unwrap()
        .load("big", &big)
        .unwrap();
    let manifests = files_ending(dir.path(), ".cwasm.sha256");
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    std::fs::remove_file(&manifests[0]).unwrap();
    let host = sandbox.module_host(config).unwrap();
    let limit = Duration::from_millis(200);
    let started = Instant::now();
    let answer = host.load_within("big", &big, started + limit, limit);
    let waited = started.elapsed();
    assert!(
        matches!(answer, Err(SandboxError::Timeout { .. })),
        "answered {:?} after {waited:?}",
        answer.as_ref().map(|_| "a module")
    );
    assert!(waited < Duration::from_millis(1_500), "waited {waited:?}");
    // The compilation goes on in the slot; done before the CPUs are given back.
    while host.get("big").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the compilation did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
