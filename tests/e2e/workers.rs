//! The second wall (issue 9): guests run in confined worker processes of `zeval serve`.
//!
//! - every worker shows `Seccomp: 2` and `NoNewPrivs: 1` in `/proc/<pid>/status` (and runs
//!   as `nobody` when the server runs as root);
//! - a forbidden system call (the test-only hook) kills the worker with `SIGSYS`, the pool
//!   replaces it, and the next call succeeds;
//! - `SIGKILL` of a worker in the middle of a call gives that call a Z5 and loses no other
//!   call;
//! - the evaluator conformance suite passes through the workers as it does in process;
//! - a worker keeps the compiled Python code of its own calls, never another worker's;
//! - a burst of callers starts one worker at a time, and no more workers than calls in flight;
//! - every worker maps the guests' compiled code that the server verified and sealed once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zeval_evaluator::{
    Evaluator, EvaluatorConfig, ExecutorRequest, Family, Isolation, WorkerSettings,
};

use crate::common::{idle_worker_pids, pids, zeval_binary};
use crate::hostile::{
    Client, JAVASCRIPT, Target, call_of, code_function, error_code, one_at_a_time,
};

/// The evaluator API's `/_info` of `target`.
fn info(target: &Target) -> Value {
    let evaluator = target.server.evaluator.as_deref().expect("evaluator API");
    crate::common::request("GET", &format!("{evaluator}/_info"), None, None).json()
}

/// A `/proc/<pid>/status` field, e.g. `Seccomp`.
fn status_field(pid: u32, field: &str) -> String {
    proc_status_field(&format!("/proc/{pid}/status"), field)
}

/// A field of the `status` file at `path`.
fn proc_status_field(path: &str, field: &str) -> String {
    let status = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {path}"))
        .trim()
        .to_owned()
}

/// Waits until the pool has at least `at_least` idle workers (replacements start in the
/// background).
fn idle_workers(target: &Target, at_least: usize) -> Vec<u32> {
    let evaluator = target.server.evaluator.as_deref().expect("evaluator API");
    idle_worker_pids(evaluator, at_least)
}

fn is_root() -> bool {
    status_field(std::process::id(), "Uid")
        .split_whitespace()
        .next()
        == Some("0")
}

#[test]
fn workers_map_the_guests_code_that_the_server_sealed_once() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    for pid in idle_workers(&target, 2) {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        for guest in ["quickjs", "python"] {
            let name = format!("/memfd:zeval-{guest}.cwasm");
            assert!(maps.contains(&name), "worker {pid} maps no {name}:\n{maps}");
        }
    }
}

#[test]
fn every_worker_is_confined() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    let workers = idle_workers(&target, 2);
    let info = info(&target);
    assert_eq!(info["isolation"], "worker processes", "{info}");
    for pid in workers {
        assert_eq!(status_field(pid, "Seccomp"), "2", "worker {pid}");
        assert_eq!(status_field(pid, "NoNewPrivs"), "1", "worker {pid}");
        // No capability but CAP_SYS_NICE (bit 23), kept by the one thread that runs guests
        // so that it can raise a long call's priority back (the filter bounds its use).
        let mut nice_threads = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
            let capabilities = |field: &str| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix(field))
                    .map(|value| value.trim().to_owned())
                    .unwrap()
            };
            for field in ["CapEff:", "CapPrm:"] {
                match capabilities(field).as_str() {
                    "0000000000000000" => {}
                    "0000000000800000" if field == "CapEff:" => nice_threads += 1,
                    "0000000000800000" => {}
                    other => panic!("worker {pid} has capabilities {field} {other}"),
                }
            }
            assert_eq!(capabilities("Seccomp:"), "2", "a thread of worker {pid}");
        }
        assert!(
            nice_threads <= 1,
            "worker {pid}: {nice_threads} threads keep CAP_SYS_NICE"
        );
        if is_root() {
            let uid = status_field(pid, "Uid");
            assert!(
                uid.split_whitespace().all(|id| id == "65534"),
                "worker {pid} runs as {uid}, not nobody"
            );
        }
        // Its address space is bounded (no cgroup memory controller here to do it).
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let address_space = limits
            .lines()
            .find(|line| line.starts_with("Max address space"))
            .unwrap()
            .to_owned();
        assert!(
            !address_space.contains("unlimited"),
            "worker {pid}: {address_space}"
        );
        // It may open no file: until 2026-12-06 it inherited the server's open-files limit,
        // raised to thousands for its connections.
        let open_files: Vec<&str> = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .unwrap()
            .split_whitespace()
            .skip(3)
            .take(2)
            .collect();
        assert_eq!(open_files, ["0", "0"], "worker {pid}: {limits}");
        // A worker is a child of the server, not of anything else.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let parent: u32 = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(parent, target.server.pid());
    }
    let confinement = &info["workers"]["confinement"];
    assert_eq!(confinement["seccomp"]["state"], "on", "{info}");
    // "partial" on kernels before landlock ABI 8 (this machine has 7): the ruleset then holds
    // the thread that runs guests, and seccomp every thread.
    let landlock = confinement["landlock"]["state"]
        .as_str()
        .unwrap_or_default();
    assert!(landlock == "on" || landlock == "partial", "{info}");
    assert_eq!(confinement["no_new_privs"], true, "{info}");
    // And the workers still run code.
    let client = Client::new(target.orch(), None, Duration::from_secs(30));
    let answer = client.evaluate(&upper_case_call("wall")).unwrap();
    assert_eq!(answer.json()["Z22K1"], "WALL", "{}", answer.text);
}

fn upper_case_call(text: &str) -> Value {
    call_of(
        code_function(
            "Z10600",
            json!("Z6"),
            "Z6",
            JAVASCRIPT,
            "function Z10600( Z10600K1 ) { return Z10600K1.toUpperCase(); }",
        ),
        "Z10600",
        json!(text),
    )
}

/// A JavaScript call that computes for about `millis` and then answers "done".
fn slow_call(millis: u64) -> Value {
    call_of(
        code_function(
            "Z10601",
            json!("Z6"),
            "Z6",
            JAVASCRIPT,
            &format!(
                "function Z10601( Z10601K1 ) {{ const end = Date.now() + {millis}; \
                 while ( Date.now() < end ) {{}} return 'done'; }}"
            ),
        ),
        "Z10601",
        json!("x"),
    )
}

#[test]
fn sigkill_of_a_worker_mid_call_fails_that_call_only() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    idle_workers(&target, 2);
    let orch = target.orch().to_owned();

    // The victim: a call that computes for 3 s. Its worker is the first busy one.
    let victim = {
        let orch = orch.clone();
        std::thread::spawn(move || {
            Client::new(&orch, None, Duration::from_secs(30))
                .evaluate(&slow_call(3_000))
                .map(|answer| answer.json())
        })
    };
    let victim_pid = loop {
        if let Some(&pid) = pids(&info(&target)["workers"]["busy_pids"]).first() {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Other callers, in flight while the victim's worker dies: a slow one on another worker
    // and a burst of short ones.
    let bystander = {
        let orch = orch.clone();
        std::thread::spawn(move || {
            Client::new(&orch, None, Duration::from_secs(30))
                .evaluate(&slow_call(1_000))
                .map(|answer| answer.json())
        })
    };
    let short: Vec<_> = (0..6)
        .map(|i| {
            let orch = orch.clone();
            std::thread::spawn(move || {
                Client::new(&orch, None, Duration::from_secs(30))
                    .evaluate(&upper_case_call(&format!("item-{i}")))
                    .map(|answer| (i, answer.json()))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &victim_pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let z22 = victim
        .join()
        .unwrap()
        .expect("the victim's call is answered");
    assert_eq!(error_code(&z22).as_deref(), Some("Z507"), "{z22}");
    assert!(
        z22.to_string().contains("stopped before it answered"),
        "{z22}"
    );
    let z22 = bystander
        .join()
        .unwrap()
        .expect("the bystander is answered");
    assert_eq!(z22["Z22K1"], "done", "{z22}");
    for call in short {
        let (i, z22) = call.join().unwrap().expect("short calls are answered");
        assert_eq!(z22["Z22K1"], format!("ITEM-{i}"), "{z22}");
    }
    // The pool counted the loss, replaced the worker, and the next call succeeds.
    let after = info(&target);
    assert!(after["workers"]["lost"].as_u64() >= Some(1), "{after}");
    assert!(!pids(&after["workers"]["idle_pids"]).contains(&victim_pid));
    let answer = Client::new(&orch, None, Duration::from_secs(30))
        .evaluate(&upper_case_call("next"))
        .unwrap();
    assert_eq!(answer.json()["Z22K1"], "NEXT", "{}", answer.text);
}

#[test]
fn a_worker_that_dies_idle_is_replaced_and_its_replacements_live_on() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    let idle = idle_workers(&target, 2);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &idle[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(200));
    // Every call succeeds, whichever worker it is handed; the dead one is never used.
    let client = Client::new(target.orch(), None, Duration::from_secs(30));
    for i in 0..4 {
        let answer = client
            .evaluate(&upper_case_call(&format!("call-{i}")))
            .unwrap();
        assert_eq!(
            answer.json()["Z22K1"],
            format!("CALL-{i}"),
            "{}",
            answer.text
        );
    }
    // Replacements are started by short-lived threads, and a worker dies with the thread
    // that forked it (PR_SET_PDEATHSIG): they must outlive those threads, so that a second
    // later the pool has lost the one worker killed above and no other.
    std::thread::sleep(Duration::from_secs(1));
    let idle = idle_workers(&target, 2);
    for pid in &idle {
        let state = status_field(*pid, "State");
        assert!(!state.starts_with('Z'), "worker {pid} is a zombie: {state}");
    }
    assert_eq!(info(&target)["workers"]["lost"], 1, "{}", info(&target));
}

/// An evaluator whose workers are this build's `zeval worker`, with the test hooks on.
fn worker_evaluator(test_hooks: bool) -> Evaluator {
    Evaluator::new(worker_config(test_hooks)).expect("the workers start")
}

/// An evaluator whose guests all run in one worker (so every call meets the same one).
fn one_worker_evaluator() -> Evaluator {
    one_worker_evaluator_colocated(false)
}

/// [`one_worker_evaluator`], with `[workers] colocate` as given.
fn one_worker_evaluator_colocated(colocate: bool) -> Evaluator {
    Evaluator::new(EvaluatorConfig {
        isolation: Isolation::workers(WorkerSettings {
            min_workers: 1,
            max_workers: 1,
            colocate,
            ..WorkerSettings::new(zeval_binary(), vec!["worker".into()])
        }),
        ..EvaluatorConfig::default()
    })
    .expect("the worker starts")
}

/// The configuration of [`worker_evaluator`].
fn worker_config(test_hooks: bool) -> EvaluatorConfig {
    EvaluatorConfig {
        isolation: Isolation::workers(WorkerSettings {
            min_workers: 1,
            max_workers: 4,
            test_hooks,
            ..WorkerSettings::new(zeval_binary(), vec!["worker".into()])
        }),
        ..EvaluatorConfig::default()
    }
}

fn javascript_upper(text: &str) -> ExecutorRequest {
    executor_request(
        "javascript",
        "Z10600",
        "function Z10600( Z10600K1 ) { return Z10600K1.toUpperCase(); }",
        text,
    )
}

/// A request to run `name`, defined by `code` in `language`, with one string argument.
fn executor_request(language: &str, name: &str, code: &str, argument: &str) -> ExecutorRequest {
    let mut arguments = serde_json::Map::new();
    arguments.insert(format!("{name}K1"), json!({"Z1K1": "Z6", "Z6K1": argument}));
    ExecutorRequest {
        reentrant: false,
        remaining_time: None,
        coding_language: Some(language.into()),
        code_string: Some(code.into()),
        function_name: Some(name.into()),
        function_arguments: arguments,
        signature: None,
        client: None,
    }
}

#[test]
fn a_forbidden_system_call_kills_the_worker_and_the_next_call_succeeds() {
    let _serial = one_at_a_time();
    let evaluator = worker_evaluator(true);
    let pool = evaluator.worker_pool().expect("workers");
    let ended = pool.issue_forbidden_syscall().expect("the hook ran");
    assert_eq!(
        ended,
        format!("killed by signal {SIGSYS}"),
        "the seccomp filter did not kill the worker"
    );
    assert_eq!(pool.status().lost, 1);
    let execution = evaluator.execute(Family::JavaScript, &javascript_upper("after"));
    assert_eq!(execution.z22["Z22K1"]["Z6K1"], "AFTER", "{}", execution.z22);
}

#[test]
fn the_hook_is_refused_when_test_hooks_are_off() {
    let _serial = one_at_a_time();
    let evaluator = worker_evaluator(false);
    let pool = evaluator.worker_pool().expect("workers");
    // The worker treats the request as a protocol error and exits without issuing the call.
    let ended = pool.issue_forbidden_syscall().expect("the worker ended");
    assert!(ended.starts_with("exited with status"), "{ended}");
}

/// `SIGSYS`, the signal seccomp's kill action reports (31 on x86_64 and aarch64).
const SIGSYS: i32 = 31;

#[test]
fn the_evaluator_conformance_suite_passes_through_the_workers() {
    let _serial = one_at_a_time();
    let evaluator = worker_evaluator(false);
    let dir = zeval_conformance::default_shared_dir().join("evaluator");
    let report =
        zeval_conformance::evaluator::run_with(&evaluator, &dir, None).expect("the suite loads");
    println!("{}", report.summary());
    zeval_conformance::deviations::check_listed(&report).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.cases.len() >= 120,
        "only {} cases ran",
        report.cases.len()
    );
    // Every call went through a worker: none ran in this process.
    assert!(evaluator.worker_status().is_some());
}

/// [`worker_evaluator`] without test hooks, with compiled languages (artifacts in memory) and
/// a wall-time limit of `wall_time`.
fn compiled_worker_evaluator(wall_time: Duration) -> Evaluator {
    let mut config = worker_config(false);
    config.limits.wall_time = wall_time;
    let toolchain = zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default())
        .expect("the compilers");
    Evaluator::new(config)
        .expect("the workers start")
        .with_artifacts(std::sync::Arc::new(zeval_evaluator::Artifacts::new(
            toolchain, None,
        )))
}

/// A C implementation of `Z10600(Z10600K1)` (a string in, a string out).
fn c_call(code: &str, argument: &str) -> zeval_evaluator::Request {
    let mut arguments = serde_json::Map::new();
    arguments.insert("Z10600K1".into(), json!({"Z1K1": "Z6", "Z6K1": argument}));
    zeval_evaluator::Request::Executor(ExecutorRequest {
        coding_language: Some("c".into()),
        code_string: Some(code.to_owned()),
        function_name: Some("Z10600".into()),
        function_arguments: arguments,
        signature: Some(zeval_compiler::Signature {
            parameters: vec![("Z10600K1".to_owned(), zeval_compiler::Kind::String)],
            result: zeval_compiler::Kind::String,
        }),
        ..ExecutorRequest::default()
    })
}

/// `SCHED_IDLE` of `linux/sched.h`, as `/proc/<pid>/task/<tid>/stat` shows it.
const SCHED_IDLE: i64 = 5;

/// `(nice, policy)` of every thread of `pid`, from `/proc/<pid>/task/*/stat` (fields 19 and
/// 41), which any user may read.
fn thread_priorities(pid: u32) -> Vec<(i64, i64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| stat_fields(&task.ok()?.path().join("stat")))
        .filter_map(|fields| Some((fields.get(16)?.parse().ok()?, fields.get(38)?.parse().ok()?)))
        .collect()
}

/// The fields of a `/proc/.../stat` file after the command name (which is in parentheses
/// and may hold spaces): field N of proc(5) is at index N − 3.
fn stat_fields(path: &std::path::Path) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(path).ok()?;
    Some(
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// Compiled modules run in the workers without epoch checks (issue 10: they cost fib(27) a
/// third of its time), so their deadline is the parent's kill, and their priority is
/// lowered by the worker's ticker thread instead of by the call.
#[test]
fn compiled_code_in_a_worker_is_killed_at_its_deadline_and_lowered_when_long() {
    let _serial = one_at_a_time();
    let wall_time = Duration::from_millis(1500);
    let evaluator = compiled_worker_evaluator(wall_time);
    let pool = evaluator.worker_pool().expect("workers").clone();
    let result = |z22: &Value| z22["Z22K1"]["Z6K1"].as_str().map(str::to_owned);

    // A busy call of 700 ms, far past the 10 ms after which a call is lowered; an argument
    // starting with `q` returns at once. The call that compiles the code is a quick one: the
    // compile counts against the wall-time limit, and on a loaded 2-core CI machine compiling
    // and then busying 700 ms once took 1,514 ms against the 1,500 ms limit.
    let busy = "#define _POSIX_C_SOURCE 199309L\n#include <time.h>\nchar *Z10600(const char *Z10600K1) {\n    struct timespec start, now;\n    clock_gettime(CLOCK_MONOTONIC, &start);\n    if (Z10600K1[0] != 'q') do { clock_gettime(CLOCK_MONOTONIC, &now); } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < 700);\n    return (char *)Z10600K1;\n}\n";
    // Compiled, and the worker warm, before the watched call.
    let first = evaluator.evaluate(c_call(busy, "quick"));
    assert_eq!(result(&first).as_deref(), Some("quick"), "{first}");
    let idle_before = pool.status().idle_pids;
    let call = {
        std::thread::scope(|scope| {
            let running = scope.spawn(|| evaluator.evaluate(c_call(busy, "lowered")));
            let started = Instant::now();
            let mut seen_lowered = false;
            while started.elapsed() < Duration::from_millis(600) && !seen_lowered {
                std::thread::sleep(Duration::from_millis(50));
                for pid in pool.status().busy_pids {
                    seen_lowered |= thread_priorities(pid)
                        .iter()
                        .any(|&(nice, policy)| nice == 19 && policy == SCHED_IDLE);
                }
            }
            (running.join().expect("the call's thread"), seen_lowered)
        })
    };
    let (z22, seen_lowered) = call;
    assert_eq!(result(&z22).as_deref(), Some("lowered"), "{z22}");
    assert!(
        seen_lowered,
        "no thread of the busy worker was at nice 19 and SCHED_IDLE during a 700 ms call"
    );
    for pid in pool.status().idle_pids {
        let priorities = thread_priorities(pid);
        assert!(
            priorities
                .iter()
                .all(|&(nice, policy)| nice < 19 && policy == 0),
            "worker {pid} was not restored after the call: {priorities:?} (idle before: {idle_before:?})"
        );
    }

    // An endless loop: nothing in the worker can stop it; the parent kills it on time.
    let lost_before = pool.status().lost;
    let endless = "char *Z10600(const char *Z10600K1) { for (volatile int i = 0;; i++) {} }\n";
    let started = Instant::now();
    let z22 = evaluator.evaluate(c_call(endless, "x"));
    let took = started.elapsed();
    let message = z22.to_string();
    assert!(message.contains("timed out"), "{z22}");
    assert!(
        took < wall_time + Duration::from_millis(500),
        "the endless loop took {took:?} against a {wall_time:?} limit"
    );
    assert_eq!(
        pool.status().lost,
        lost_before + 1,
        "the worker was not killed: the module had epoch checks after all"
    );
    // The pool serves again after the kill (a quick call: a new worker may load the module).
    let z22 = evaluator.evaluate(c_call(busy, "quick after"));
    assert_eq!(result(&z22).as_deref(), Some("quick after"), "{z22}");
}

/// A `/proc/<pid>/task/<tid>/status` field.
fn task_status_field(pid: u32, tid: &str, field: &str) -> String {
    proc_status_field(&format!("/proc/{pid}/task/{tid}/status"), field)
}

/// The CPUs the calling thread may run on.
#[allow(unsafe_code)]
fn cpus_of_this_thread() -> Vec<usize> {
    // SAFETY: a zeroed `cpu_set_t` is a valid empty set; the kernel writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Binds the calling thread to `cpus`.
#[allow(unsafe_code)]
fn bind_this_thread(cpus: &[usize]) {
    // SAFETY: as in `cpus_of_this_thread`; the kernel only reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        assert_eq!(
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// With `[workers] colocate` (off by default), a call's worker wakes on the caller's CPU: on
/// a virtual machine slow to wake an idle CPU, waking one instead cost 0.2–1.5 ms per call.
/// The binding only decides where the two hand over: the worker's serving thread and the
/// caller both have their own CPU sets back once the request is read and the answer is in.
#[test]
fn a_worker_wakes_on_its_callers_cpu_and_both_take_their_cpu_sets_back() {
    let _serial = one_at_a_time();
    let cpus = cpus_of_this_thread();
    if cpus.len() < 2 {
        eprintln!("skipped: this thread may run on one CPU only ({cpus:?})");
        return;
    }
    let evaluator = one_worker_evaluator_colocated(true);
    let call = || {
        let execution = evaluator.execute(Family::JavaScript, &javascript_upper("cpu"));
        assert_eq!(execution.z22["Z22K1"]["Z6K1"], "CPU", "{}", execution.z22);
    };
    call();
    let pool = evaluator.worker_pool().expect("workers");
    let pid = pool.status().idle_pids[0];
    // The thread that serves requests is the command's (`zeval-main`), not the main thread.
    let serving = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| {
            let tid = task.ok()?.file_name().into_string().ok()?;
            let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
            (name.trim() == "zeval-main").then_some(tid)
        })
        .next()
        .expect("the worker's serving thread");
    let worker_cpus = task_status_field(pid, &serving, "Cpus_allowed_list");
    // The worker takes its own CPU set back as soon as it has read the request, so the
    // kernel may move it during the call, and now and then does on a loaded machine: most
    // answers, not all, come from the caller's CPU. A worker that is not bound answers from
    // wherever it last ran, i.e. from one CPU for both callers, or from either at random
    // (then 7 of 10 on each caller's CPU is a 3 % chance).
    const CALLS_PER_CPU: usize = 10;
    const ON_THE_CALLERS_CPU: usize = 7;
    for &cpu in cpus.iter().take(2) {
        bind_this_thread(&[cpu]);
        let mut answered_from = Vec::new();
        for _ in 0..CALLS_PER_CPU {
            call();
            // Field 39 of `stat`, the CPU the thread last ran on: it answered from there.
            let path = format!("/proc/{pid}/task/{serving}/stat");
            let fields = stat_fields(std::path::Path::new(&path)).expect("the thread's stat");
            answered_from.push(fields[36].clone());
            assert_eq!(
                task_status_field(pid, &serving, "Cpus_allowed_list"),
                worker_cpus,
                "the worker kept the caller's CPU"
            );
        }
        let on_the_callers = answered_from
            .iter()
            .filter(|ran_on| **ran_on == cpu.to_string())
            .count();
        assert!(
            on_the_callers >= ON_THE_CALLERS_CPU,
            "the worker ran off its caller's CPU {cpu}: it answered from {answered_from:?}"
        );
    }
    bind_this_thread(&cpus);
    call();
    assert_eq!(
        cpus_of_this_thread(),
        cpus,
        "the caller kept the worker's CPU"
    );
    assert_eq!(pool.status().lost, 0);
}

/// A call of the Python function `Z1000` defined by `code`, with one string argument.
fn python_call(code: &str, argument: &str) -> zeval_evaluator::Request {
    call_in("python-3", code, argument)
}

/// A call of the function `Z1000` defined by `code` in `language`, with one string argument.
fn call_in(language: &str, code: &str, argument: &str) -> zeval_evaluator::Request {
    zeval_evaluator::Request::Executor(executor_request(language, "Z1000", code, argument))
}

#[test]
fn a_worker_keeps_the_compiled_code_of_its_own_calls_only() {
    let _serial = one_at_a_time();
    let evaluator = one_worker_evaluator();
    let result = |code: &str, argument: &str| {
        let before = evaluator.code_cache_hits();
        let z22 = evaluator.evaluate(python_call(code, argument));
        let hits = evaluator.code_cache_hits() - before;
        (z22["Z22K1"]["Z6K1"].as_str().map(str::to_owned), hits)
    };
    let some = |text: &str| Some(text.to_owned());
    // Compiled, compiled and handed back, then run from the worker's cache.
    let upper = "def Z1000(Z1000K1):\n    return Z1000K1.upper()";
    assert_eq!(result(upper, "a"), (some("A"), 0));
    assert_eq!(result(upper, "b"), (some("B"), 0));
    assert_eq!(result(upper, "c"), (some("C"), 1));
    // Code that tries to forge what is kept for its code string affects nothing: what is kept
    // is compiled in a run of its own, in which none of the code runs.
    assert_eq!(result(FORGER, "a"), (some("honest a"), 0));
    assert_eq!(result(FORGER, "b"), (some("honest b"), 0));
    for (n, argument) in ["c", "d", "e"].into_iter().enumerate() {
        let hits = u64::from(n == 2);
        assert_eq!(
            result(VICTIM, argument),
            (Some(format!("victim {argument}")), hits)
        );
    }
    assert_eq!(result(FORGER, "f"), (some("honest f"), 1));
    // JavaScript's bytecode, the same way, in the same pool.
    let shout = "function Z1000(Z1000K1) { return Z1000K1.toUpperCase() + '!'; }";
    for (n, argument) in ["x", "y", "z"].into_iter().enumerate() {
        let before = evaluator.code_cache_hits();
        let z22 = evaluator.evaluate(call_in("javascript", shout, argument));
        let hits = evaluator.code_cache_hits() - before;
        let expected = format!("{}!", argument.to_uppercase());
        assert_eq!(z22["Z22K1"]["Z6K1"], expected.as_str(), "{z22}");
        assert_eq!(hits, u64::from(n == 2), "call {n} of the JavaScript code");
    }
    // Without the cache, every call through the worker compiles.
    let uncached = Evaluator::new(EvaluatorConfig {
        code_cache: false,
        ..worker_config(false)
    })
    .expect("the workers start");
    for argument in ["a", "b", "c"] {
        let z22 = uncached.evaluate(python_call(upper, argument));
        assert_eq!(z22["Z22K1"]["Z6K1"], argument.to_uppercase(), "{z22}");
    }
    assert_eq!(uncached.code_cache_hits(), 0);
}

/// Code that replaces the compiled code its runner hands back with another function's,
/// before anything is returned (the evaluator crate's test of the cache uses it too).
const FORGER: &str = include_str!("../../crates/evaluator/tests/all/code_cache_forger.py");

/// An honest function of the same name as [`FORGER`]'s.
const VICTIM: &str = "def Z1000(Z1000K1):\n    return 'victim ' + Z1000K1";

#[test]
fn a_burst_of_callers_starts_one_worker_at_a_time_no_more_than_it_needs_and_retires_them() {
    // Eight callers of a trivial function, back to back for 3 s, on a server with two
    // workers started. The pool used to start a worker for every call that found none idle,
    // all at once: such a burst started dozens of workers, each start competing with the
    // calls for the CPUs, and grew the pool to `max_workers` (32). It also kept them all
    // for good; idle for 1 s (here), those beyond `min_workers` (2) are now stopped.
    const CALLERS: usize = 8;
    let _serial = one_at_a_time();
    let target = Target::start(&[("ZEVAL_WORKERS_RETIRE_IDLE_AFTER_S", "1")]);
    idle_workers(&target, 2);
    let evaluator = target.server.evaluator.clone().expect("evaluator API");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (most_starting, calls) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut most_starting = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let info =
                    crate::common::request("GET", &format!("{evaluator}/_info"), None, None).json();
                let starting = info["workers"]["starting"].as_u64().expect("starting");
                most_starting = most_starting.max(starting);
                std::thread::sleep(Duration::from_millis(5));
            }
            most_starting
        });
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let target = &target;
                scope.spawn(move || {
                    let client = Client::new(
                        target.orch(),
                        Some(&target.neighbour),
                        Duration::from_secs(20),
                    );
                    let started = Instant::now();
                    let mut calls = 0;
                    while started.elapsed() < Duration::from_secs(3) {
                        let text = format!("burst {caller} {calls}");
                        let call = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": text});
                        let answer = client.evaluate(&call).expect("an answer");
                        if answer.status == 429 {
                            continue;
                        }
                        assert_eq!(
                            answer.json()["Z22K1"],
                            text.to_uppercase(),
                            "{}",
                            answer.text
                        );
                        calls += 1;
                    }
                    calls
                })
            })
            .collect();
        let calls: usize = callers.into_iter().map(|c| c.join().unwrap()).sum();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (watcher.join().unwrap(), calls)
    });
    let workers = info(&target)["workers"].clone();
    eprintln!("burst: {calls} calls, at most {most_starting} starting at once; then {workers}");
    assert!(calls > 0);
    assert!(
        most_starting <= 1,
        "{most_starting} workers started at once"
    );
    let alive = workers["alive"].as_u64().expect("alive");
    assert!(
        alive <= CALLERS as u64,
        "{alive} workers for {CALLERS} callers: {workers}"
    );
    // A worker may already have retired during the burst, if it was idle for a second then.
    let retired_before = workers["retired"].as_u64().expect("retired");
    assert!(
        alive + retired_before > 2,
        "the burst did not grow the pool: {workers}"
    );
    // Idle 1 s, checked every second: back to the minimum within a few seconds.
    let quiet = Instant::now();
    let retired = loop {
        let workers = info(&target)["workers"].clone();
        if workers["alive"] == 2 {
            break workers;
        }
        assert!(quiet.elapsed() < Duration::from_secs(15), "{workers}");
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "burst: back to 2 workers after {:?}: {retired}",
        quiet.elapsed()
    );
    assert_eq!(
        retired["retired"].as_u64(),
        Some(retired_before + alive - 2),
        "{retired}"
    );
    assert_eq!(retired["lost"], 0, "{retired}");
    let client = Client::new(
        target.orch(),
        Some(&target.neighbour),
        Duration::from_secs(20),
    );
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "after"});
    let answer = client.evaluate(&call).expect("an answer");
    assert_eq!(answer.json()["Z22K1"], "AFTER", "{}", answer.text);
}
