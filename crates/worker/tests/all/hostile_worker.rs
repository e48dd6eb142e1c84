use std::path::PathBuf;
use std::time::{Duration, Instant};

use zeval_sandbox::{Limits, SandboxConfig, SandboxError};
use zeval_worker::{RunError, WorkerPool, WorkerPoolConfig, WorkerSpec};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/all/hostile_worker.py")
}

/// A pool of one stand-in worker behaving as `mode`, killed 300 ms past a call's deadline.
fn pool(mode: &str) -> WorkerPool {
    pool_of(mode, 1)
}

fn pool_of(mode: &str, max_workers: usize) -> WorkerPool {
    pool_with(mode, |config| config.max_workers = max_workers)
}

/// A pool of stand-in workers behaving as `mode`, with `adjust` applied to the settings of
/// [`pool`].
fn pool_with(mode: &str, adjust: impl FnOnce(&mut WorkerPoolConfig)) -> WorkerPool {
    let spec = WorkerSpec {
        guests: Vec::new(),
        sandbox: SandboxConfig::new("/nonexistent"),
        user: None,
        test_hooks: false,
        colocated: false,
    };
    let args = vec![script().into_os_string(), mode.into()];
    let mut config = WorkerPoolConfig {
        max_workers: 1,
        min_workers: 1,
        kill_margin: Duration::from_millis(300),
        ..WorkerPoolConfig::new("python3", args, spec)
    };
    adjust(&mut config);
    share_the_cpus();
    WorkerPool::start(config).expect("the stand-in worker starts")
}

/// Tests time their calls, and one test holds every CPU with busy threads: it runs alone
/// ([`load_the_cpus`]), the others beside each other.
static CPUS: std::sync::RwLock<()> = std::sync::RwLock::new(());

thread_local! {
    /// This test's hold on [`CPUS`], released when its thread ends with the test.
    static HOLD: std::cell::RefCell<Option<Hold>> = const { std::cell::RefCell::new(None) };
}

#[allow(dead_code, reason = "held for its drop")]
enum Hold {
    Shared(std::sync::RwLockReadGuard<'static, ()>),
    Alone(std::sync::RwLockWriteGuard<'static, ()>),
}

/// Holds [`CPUS`] shared for the rest of this test, unless it holds them already.
fn share_the_cpus() {
    HOLD.with(|hold| {
        if hold.borrow().is_none() {
            let guard = CPUS.read().unwrap_or_else(|e| e.into_inner());
            *hold.borrow_mut() = Some(Hold::Shared(guard));
        }
    });
}

/// Holds [`CPUS`] alone for the rest of this test, before it starts a pool.
fn load_the_cpus() {
    HOLD.with(|hold| {
        assert!(
            hold.borrow().is_none(),
            "take the CPUs before starting a pool"
        );
        let guard = CPUS.write().unwrap_or_else(|e| e.into_inner());
        *hold.borrow_mut() = Some(Hold::Alone(guard));
    });
}

fn limits(wall_time: Duration) -> Limits {
    Limits {
        wall_time,
        max_output_bytes: 4096,
        ..Limits::default()
    }
}

#[test]
fn a_well_behaved_worker_answers() {
    let pool = pool("ok");
    let done = pool
        .run(0, b"echo", &limits(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(done.stdout, b"echo");
    assert_eq!(pool.status().lost, 0);
}

/// Runs one call against `mode` and checks: it fails as `expected` says, within the deadline
/// plus the margin (and some slack for a loaded machine), and the worker was replaced.
fn misbehaves(mode: &str, expected: fn(&RunError) -> bool) {
    let pool = pool(mode);
    let first = pool.status().idle_pids;
    let deadline = Duration::from_millis(700);
    let started = Instant::now();
    let outcome = pool.run(0, b"x", &limits(deadline));
    let took = started.elapsed();
    let error = outcome
        .err()
        .unwrap_or_else(|| panic!("{mode}: the call succeeded"));
    assert!(expected(&error), "{mode}: unexpected error {error:?}");
    assert!(
        took < deadline + Duration::from_millis(300) + Duration::from_secs(2),
        "{mode}: the call took {took:?}"
    );
    let status = pool.status();
    assert_eq!(status.lost, 1, "{mode}: {status:?}");
    // The replacement is started in the background; it is a new process.
    let started = Instant::now();
    while pool.status().idle_pids.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{mode}: no replacement"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(
        pool.status().idle_pids,
        first,
        "{mode}: the same worker is still used"
    );
}

#[test]
fn a_worker_announcing_a_huge_frame_is_killed_without_the_allocation() {
    misbehaves("huge", |e| matches!(e, RunError::WorkerLost(_)));
}

#[test]
fn a_worker_trickling_its_answer_is_killed_at_the_deadline() {
    misbehaves("trickle", |e| {
        matches!(e, RunError::Sandbox(SandboxError::Timeout { .. }))
    });
}

#[test]
fn a_worker_sending_nonsense_is_killed() {
    misbehaves("garbage", |e| matches!(e, RunError::WorkerLost(_)));
}

#[test]
fn a_worker_answering_more_output_than_the_limit_is_killed() {
    misbehaves("overflow", |e| matches!(e, RunError::WorkerLost(_)));
}

/// A worker that answers a call twice: the second answer waits in the socket for the next
/// call, which may be another client's. That worker is never handed another call: the next
/// call runs in a new worker, and gets its own answer.
#[test]
fn a_worker_that_answers_twice_gets_no_other_call() {
    let pool = pool("twice");
    let first = pool
        .run(0, b"mine", &limits(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(first.stdout, b"mine");
    std::thread::sleep(Duration::from_millis(200));
    let next = pool
        .run(0, b"theirs", &limits(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        next.stdout, b"theirs",
        "the next call got the forged answer"
    );
    assert_eq!(pool.status().lost, 1, "{:?}", pool.status());
}

/// An idle worker that answers out of turn is killed as a call's worker is: its priority
/// restored and its exit awaited at most `REAP_WAIT`. This one holds 512 MiB and has lowered
/// itself to `SCHED_IDLE` while busy threads hold every CPU, so its exit, at its own
/// priority, takes longer than the next call's 3 s (with the restore left out, that call was
/// `Busy` at its deadline). The next call waited for it (a plain `wait`) until 2026-12-06.
///
/// Two busy threads per CPU starve a `SCHED_IDLE` thread as surely as more would; with 16
/// per CPU, the worker's exit and its replacement's start, both at normal priority, took
/// 1.8 s and more of the call's 3 s, and past them in 3 runs of 5.
#[test]
fn an_idle_worker_speaking_out_of_turn_does_not_hold_up_the_next_call() {
    // The restore needs CAP_SYS_NICE, or an RLIMIT_NICE that the stand-in worker, unlike a
    // confined worker, does not have.
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("not root: the restore of an unconfined stand-in is checked only as root");
        return;
    }
    load_the_cpus();
    let marker = tempfile::tempdir().unwrap();
    let spoke = marker.path().join("spoke");
    let pool = std::sync::Arc::new(pool_with("twice_heavy", |config| {
        config.args.push(spoke.clone().into_os_string());
    }));
    let first = pool
        .run(0, b"mine", &limits(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(first.stdout, b"mine");
    let asked = Instant::now();
    while !spoke.exists() {
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "the worker never spoke out of turn"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let busy = crate::busy_threads::BusyThreads::per_cpu(2);
    let (sender, receiver) = std::sync::mpsc::channel();
    let caller = {
        let pool = std::sync::Arc::clone(&pool);
        std::thread::spawn(move || {
            let started = Instant::now();
            let next = pool.run(0, b"theirs", &limits(Duration::from_secs(3)));
            let _ = sender.send((next, started.elapsed()));
        })
    };
    let answered = receiver.recv_timeout(Duration::from_secs(6));
    drop(busy);
    let (next, took) = answered.expect("no answer within 6 s: the call waited for the exit");
    caller.join().unwrap();
    assert_eq!(next.unwrap().stdout, b"theirs");
    assert!(took < Duration::from_secs(4), "the next call took {took:?}");
    assert_eq!(pool.status().lost, 1, "{:?}", pool.status());
}

#[test]
fn a_worker_that_dies_mid_call_fails_that_call() {
    misbehaves("die", |e| matches!(e, RunError::WorkerLost(_)));
}

#[test]
fn a_silent_worker_is_killed_at_the_deadline_plus_the_margin() {
    misbehaves("silent", |e| {
        matches!(e, RunError::Sandbox(SandboxError::Timeout { .. }))
    });
}

/// A call that waited a tenth of its time or more for a worker and then ran out of time
/// reports `Busy`, the load's doing; a call that had its time reports `Timeout`, its own.
/// (Both were `Timeout`, which the orchestrator counts against the implementation: filling
/// the workers made good implementations fail.)
#[test]
fn a_call_that_waited_for_its_worker_and_then_ran_out_of_time_is_busy() {
    let pool = pool_with("silent", |config| config.reserve_workers = 0);
    let first = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.run(0, b"first", &limits(Duration::from_millis(500))))
    };
    while pool.status().busy_pids.is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = pool.run(0, b"second", &limits(Duration::from_millis(2_500)));
    assert!(
        matches!(second, Err(RunError::Sandbox(SandboxError::Busy { .. }))),
        "{second:?}"
    );
    let first = first.join().unwrap();
    assert!(
        matches!(first, Err(RunError::Sandbox(SandboxError::Timeout { .. }))),
        "{first:?}"
    );
}

/// The caller of a call alone in flight checks for its answer without sleeping for at most
/// `lone_call_spin`, and never past the deadline: with a spin far longer than the call's
/// deadline, a silent worker is still given up at the deadline plus the margin. (A stand-in
/// worker answers well after the default 200 µs, so the other tests take the spin's way out
/// into `poll`.)
#[test]
fn a_lone_calls_spin_ends_at_its_deadline() {
    let pool = pool_with("silent", |config| {
        config.lone_call_spin = Duration::from_secs(60);
    });
    let deadline = Duration::from_millis(700);
    let started = Instant::now();
    let outcome = pool.run(0, b"x", &limits(deadline));
    let took = started.elapsed();
    assert!(
        matches!(
            outcome,
            Err(RunError::Sandbox(SandboxError::Timeout { .. }))
        ),
        "{outcome:?}"
    );
    assert!(
        took < deadline + Duration::from_millis(300) + Duration::from_secs(2),
        "the call took {took:?}"
    );
}

#[test]
fn a_call_does_not_wait_past_its_deadline_for_a_worker_to_start() {
    // Workers take 1.5 s to start and 1 s to answer. One is busy; the second call may not
    // wait the 1.5 s its new worker needs when its own deadline is 300 ms.
    let pool = pool_of("slow", 2);
    let busy = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.run(0, b"first", &limits(Duration::from_secs(5))))
    };
    while pool.status().busy_pids.is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let outcome = pool.run(0, b"second", &limits(Duration::from_millis(300)));
    let took = started.elapsed();
    assert!(
        matches!(outcome, Err(RunError::Sandbox(SandboxError::Busy { .. }))),
        "{outcome:?}"
    );
    assert!(took < Duration::from_millis(1_000), "waited {took:?}");
    assert_eq!(busy.join().unwrap().unwrap().stdout, b"first");
    // The worker started for the second call joins the pool for later calls.
    let started = Instant::now();
    while pool.status().idle_pids.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            pool.status()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn host_calls_are_answered_in_a_reentrant_call() {
    let pool = pool("host_call");
    let mut asked = Vec::new();
    let mut host = |request: &[u8], _: Instant| {
        asked.push(request.to_vec());
        b"pong".to_vec()
    };
    let done = pool
        .run_with(0, b"x", &limits(Duration::from_secs(5)), Some(&mut host))
        .unwrap();
    assert_eq!(done.stdout, b"pong");
    assert_eq!(asked, vec![b"ping".to_vec()]);
    assert_eq!(pool.status().lost, 0);
}

/// A host-call handler that panics (the server catches panics and goes on serving) gives
/// the worker up: it used to stay counted as alive and busy for good, so every such panic
/// took one worker from the pool, and its process was never reaped.
#[test]
fn a_call_whose_host_call_handler_panics_gives_its_worker_up() {
    let pool = pool("host_call");
    let first = pool.status().idle_pids;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut host = |_: &[u8], _: Instant| -> Vec<u8> { panic!("a handler's bug") };
        pool.run_with(0, b"x", &limits(Duration::from_secs(5)), Some(&mut host))
    }));
    assert!(unwound.is_err(), "the handler's panic went through");
    let status = pool.status();
    assert!(status.busy_pids.is_empty(), "{status:?}");
    let mut host = |_: &[u8], _: Instant| b"pong".to_vec();
    let done = pool
        .run_with(0, b"x", &limits(Duration::from_secs(5)), Some(&mut host))
        .unwrap();
    assert_eq!(done.stdout, b"pong");
    let status = pool.status();
    assert_eq!(status.alive, 1, "{status:?}");
    assert_ne!(
        status.idle_pids, first,
        "the worker that held the call was kept"
    );
}

#[test]
fn a_host_call_in_a_call_that_takes_none_is_a_protocol_breach() {
    misbehaves("host_call", |e| matches!(e, RunError::WorkerLost(_)));
}

#[test]
fn a_host_call_over_the_input_limit_is_a_protocol_breach() {
    let pool = pool("host_call_huge");
    let mut called = false;
    let mut host = |_: &[u8], _: Instant| {
        called = true;
        Vec::new()
    };
    let small = Limits {
        max_input_bytes: 1024,
        ..limits(Duration::from_secs(5))
    };
    let outcome = pool.run_with(0, b"x", &small, Some(&mut host));
    assert!(
        matches!(outcome, Err(RunError::WorkerLost(_))),
        "{outcome:?}"
    );
    assert!(!called, "the host never saw the request");
    assert_eq!(pool.status().lost, 1);
}

/// A module's bytes go to a worker once; after that only its key, until the worker says it
/// has dropped the module, when the same call sends them again.
#[test]
fn module_bytes_are_sent_until_the_worker_holds_the_module() {
    let pool = pool("modules");
    let wasm = b"\0asm\x01\0\0\0";
    let run = |key: &str| {
        let done = pool
            .run_module(key, wasm, b"", &limits(Duration::from_secs(5)))
            .unwrap();
        String::from_utf8(done.stdout).unwrap()
    };
    assert_eq!(run("a"), "bytes a");
    assert_eq!(run("a"), "key a");
    assert_eq!(run("b"), "bytes b");
    // The stand-in now holds only b: the key alone is refused, and the module is resent.
    assert_eq!(run("a"), "bytes a");
    assert_eq!(run("a"), "key a");
    assert_eq!(pool.status().lost, 0);
}

#[test]
fn a_worker_refusing_a_module_it_was_sent_is_a_protocol_breach() {
    let pool = pool("not_loaded");
    let outcome = pool.run_module("a", b"\0asm", b"", &limits(Duration::from_secs(5)));
    assert!(
        matches!(outcome, Err(RunError::WorkerLost(_))),
        "{outcome:?}"
    );
    assert_eq!(pool.status().lost, 1);
}

/// Whether this machine has one CPU, where a worker's CPU set says nothing of binding (says so
/// when it does, for the tests that then skip).
fn one_cpu() -> bool {
    let one = std::thread::available_parallelism().map_or(1, |n| n.get()) < 2;
    if one {
        eprintln!("skipped: one CPU");
    }
    one
}

/// With `colocate` on (off by default), a call alone in flight is bound to its caller's CPU;
/// one that starts while another runs is left to the kernel (binding callers that share a
/// CPU would pile their workers onto it).
#[test]
fn only_a_call_alone_in_flight_binds_its_worker_to_the_callers_cpu() {
    if one_cpu() {
        return;
    }
    let pool = std::sync::Arc::new(pool_with("affinity", |config| {
        config.max_workers = 2;
        config.colocate = true;
    }));
    let run = |pool: &WorkerPool, input: &[u8]| {
        let done = pool.run(0, input, &limits(Duration::from_secs(5))).unwrap();
        String::from_utf8(done.stdout).unwrap()
    };
    let alone = run(&pool, b"now");
    assert!(!alone.contains(','), "bound to one CPU: {alone}");
    let long = {
        let pool = pool.clone();
        std::thread::spawn(move || run(&pool, b"wait"))
    };
    std::thread::sleep(Duration::from_millis(300));
    let beside = run(&pool, b"now");
    assert!(beside.contains(','), "left to the kernel: {beside}");
    let long = long.join().unwrap();
    assert!(
        !long.contains(','),
        "the long call was alone when it began: {long}"
    );
}

/// By default (`colocate` off) even a call alone in flight leaves its worker's CPU set alone.
#[test]
fn by_default_no_call_binds_its_worker() {
    if one_cpu() {
        return;
    }
    let pool = pool_of("affinity", 2);
    let done = pool
        .run(0, b"now", &limits(Duration::from_secs(5)))
        .unwrap();
    let alone = String::from_utf8(done.stdout).unwrap();
    assert!(alone.contains(','), "bound to one CPU: {alone}");
}

/// Waits until the pool has two idle workers (at most 10 s).
fn until_two_idle(pool: &WorkerPool) {
    let started = Instant::now();
    while pool.status().idle_pids.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no second worker"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long a call past the running limit (1) waits while a 1 s call runs beside it, which
/// started 100 ms before; calls count as long after `long_after`
/// (`SandboxConfig::lower_priority_after`).
fn wait_beside_a_running_call(
    long_after: Option<Duration>,
    wait: Duration,
    restorable: bool,
) -> Duration {
    let pool = std::sync::Arc::new(pool_with("affinity", |config| {
        if !restorable {
            config.args.push("unrestorable".into());
        }
        config.max_workers = 2;
        config.min_workers = 2;
        config.max_running = 1;
        config.running_wait = wait;
        config.spec.sandbox.lower_priority_after = long_after;
    }));
    // Both workers idle, so that the second call finds one ready.
    until_two_idle(&pool);
    let run = |pool: &WorkerPool, input: &[u8]| {
        pool.run(0, input, &limits(Duration::from_secs(5))).unwrap();
    };
    let alone = Instant::now();
    run(&pool, b"now");
    assert!(alone.elapsed() < wait, "a call alone does not wait");

    // The stand-in answers "wait" after 1 s.
    let long = {
        let pool = pool.clone();
        std::thread::spawn(move || run(&pool, b"wait"))
    };
    std::thread::sleep(Duration::from_millis(100));
    let beside = Instant::now();
    run(&pool, b"now");
    let took = beside.elapsed();
    assert!(
        !long.is_finished(),
        "the long call still runs: the short one was not kept out until it ended"
    );
    long.join().unwrap();
    took
}

/// Asserts whether a call past the running limit waits the whole `running_wait` (300 ms)
/// beside a running call ([`wait_beside_a_running_call`]), or goes at once.
fn assert_waits_beside_a_running_call(long_after: Option<Duration>, restorable: bool, waits: bool) {
    let wait = Duration::from_millis(300);
    let took = wait_beside_a_running_call(long_after, wait, restorable);
    let case = format!("lowered after {long_after:?}, restorable {restorable}: took {took:?}");
    if waits {
        assert!(
            took >= wait - Duration::from_millis(20),
            "did not wait; {case}"
        );
    } else {
        assert!(took < wait - Duration::from_millis(100), "waited; {case}");
    }
}

#[test]
fn a_call_past_the_running_limit_waits_for_a_running_one_at_most_running_wait() {
    assert_waits_beside_a_running_call(None, true, true);
    assert_waits_beside_a_running_call(Some(Duration::from_secs(10)), true, true);
}

/// A call that has run past `lower_priority_after` runs at `SCHED_IDLE`, which yields its CPU
/// to any other thread: it no longer counts against the running limit, so a short call
/// beside it does not wait (the neighbour's calls waited `running_wait` each beside 8 busy
/// loops, and their p50 doubled).
#[test]
fn a_call_lowered_for_running_long_does_not_make_others_wait() {
    assert_waits_beside_a_running_call(Some(Duration::from_millis(50)), true, false);
}

/// Workers that cannot raise a thread back lower no call, so a long call competes for the
/// CPUs like any other and still counts against the running limit.
#[test]
fn a_long_call_still_counts_when_the_workers_cannot_lower_it() {
    assert_waits_beside_a_running_call(Some(Duration::from_millis(50)), false, true);
}

/// Polls the pool's status every 5 ms until `done` holds (at most 30 s), keeping the most
/// workers seen starting at once and whether a start was ever seen queued.
fn watch_starts(
    pool: &WorkerPool,
    done: impl Fn(&zeval_worker::PoolStatus) -> bool,
) -> (usize, bool) {
    let (mut most_starting, mut queued_seen) = (0, false);
    let started = Instant::now();
    loop {
        let status = pool.status();
        most_starting = most_starting.max(status.starting);
        queued_seen |= status.queued_starts > 0;
        if done(&status) {
            return (most_starting, queued_seen);
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{status:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn workers_start_one_at_a_time_and_the_rest_queue() {
    // Workers take 1.5 s to start and 1 s to answer. Three calls at once on one worker: the
    // two that find none idle each ask for one, and the second ask waits for the first start.
    let pool = pool_with("slow", |config| {
        config.max_workers = 4;
        config.min_workers = 1;
    });
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let input = format!("call {i}");
                let done = pool.run(0, input.as_bytes(), &limits(Duration::from_secs(20)));
                assert_eq!(done.unwrap().stdout, input.as_bytes());
            })
        })
        .collect();
    let (most_starting, queued_seen) = watch_starts(&pool, |status| {
        status.alive == 3 && status.idle_pids.len() == 3
    });
    for call in calls {
        call.join().unwrap();
    }
    assert_eq!(most_starting, 1, "{:?}", pool.status());
    assert!(
        queued_seen,
        "the second start was never queued: {:?}",
        pool.status()
    );
    let status = pool.status();
    assert_eq!(
        (status.starting, status.queued_starts, status.lost),
        (0, 0, 0)
    );
}

#[test]
fn a_call_asks_for_a_new_worker_only_after_waiting_start_after_for_a_busy_one() {
    // Four callers share one quick worker, back to back. With `start_after` longer than any
    // of their waits, none asks for another worker.
    let pool = pool_with("ok", |config| {
        config.max_workers = 4;
        config.min_workers = 1;
        config.start_after = Duration::from_secs(20);
    });
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let done = pool.run(0, b"echo", &limits(Duration::from_secs(30)));
                    assert_eq!(done.unwrap().stdout, b"echo");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.join().unwrap();
    }
    let status = pool.status();
    assert_eq!(status.alive, 1, "{status:?}");
    assert_eq!(
        (status.starting, status.queued_starts),
        (0, 0),
        "{status:?}"
    );
}

/// A pool of stand-in workers, up to `max_workers` and at least one, that retire after
/// `retire_idle_after`, grown by `max_workers` calls of 1 s at once.
fn grown_pool(max_workers: usize, retire_idle_after: Option<Duration>) -> WorkerPool {
    let pool = std::sync::Arc::new(pool_with("affinity", |config| {
        config.max_workers = max_workers;
        config.min_workers = 1;
        config.start_after = Duration::ZERO;
        config.retire_idle_after = retire_idle_after;
    }));
    let burst: Vec<_> = (0..max_workers)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                pool.run(0, b"wait", &limits(Duration::from_secs(20)))
                    .unwrap();
            })
        })
        .collect();
    for call in burst {
        call.join().unwrap();
    }
    let grown = pool.status();
    assert_eq!(grown.alive, max_workers, "{grown:?}");
    std::sync::Arc::into_inner(pool).unwrap()
}

/// Waits until at most `alive` workers are alive, at most `within` (else fails); how long.
fn until_alive_at_most(pool: &WorkerPool, alive: usize, within: Duration) -> Duration {
    let started = Instant::now();
    while pool.status().alive > alive {
        assert!(started.elapsed() < within, "{:?}", pool.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// A burst grows the pool; once its workers have been idle `retire_idle_after`, those beyond
/// `min_workers` are stopped, the least recently used first, none counted as lost, and the
/// pool still serves.
#[test]
fn workers_idle_past_retire_idle_after_are_stopped_down_to_min_workers() {
    let pool = grown_pool(3, Some(Duration::from_millis(500)));
    // The most recently used worker is the one kept.
    pool.run(0, b"now", &limits(Duration::from_secs(5)))
        .unwrap();
    let last_used = pool.status().idle_pids.last().copied().unwrap();
    let took = until_alive_at_most(&pool, 1, Duration::from_secs(10));
    // Retirement is checked every second: 0.5 s idle, then within about a second.
    assert!(
        took >= Duration::from_millis(300),
        "retired too soon: {took:?}"
    );
    let status = pool.status();
    assert_eq!(status.retired, 2, "{status:?}");
    assert_eq!(status.lost, 0, "{status:?}");
    assert_eq!(status.idle_pids, vec![last_used], "{status:?}");
    // The minimum stays, and serves.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(pool.status().alive, 1);
    pool.run(0, b"now", &limits(Duration::from_secs(5)))
        .unwrap();
}

/// `retire_idle_after` `None` keeps every worker the pool started.
#[test]
fn without_retire_idle_after_the_pool_keeps_its_workers() {
    let pool = grown_pool(2, None);
    std::thread::sleep(Duration::from_millis(2500));
    let status = pool.status();
    assert_eq!((status.alive, status.retired), (2, 0), "{status:?}");
}

/// When workers cannot be started, calls fail at once with [`RunError::Unavailable`] and the
/// reason, instead of waiting out their deadlines; and every caller is told, not only the one
/// whose start failed. (Repeated: a lost wake-up that left one caller of three asleep until
/// its deadline showed in about a quarter of the runs.)
#[test]
fn calls_fail_at_once_with_the_reason_when_no_worker_can_start() {
    for _ in 0..8 {
        no_worker_can_start();
    }
}

fn no_worker_can_start() {
    let marker = tempfile::tempdir().unwrap();
    let marker = marker.path().join("started");
    let pool = std::sync::Arc::new(pool_with("start_once", |config| {
        config.args.push(marker.clone().into_os_string());
    }));
    // The only worker dies in its call, and its replacement cannot start.
    let lost = pool.run(0, b"x", &limits(Duration::from_secs(5)));
    assert!(matches!(lost, Err(RunError::WorkerLost(_))), "{lost:?}");
    let deadline = Duration::from_secs(3);
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                (pool.run(0, b"x", &limits(deadline)), started.elapsed())
            })
        })
        .collect();
    for caller in callers {
        let (outcome, took) = caller.join().unwrap();
        match outcome {
            Err(RunError::Unavailable(reason)) => {
                assert!(!reason.is_empty());
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(took < deadline / 2, "a caller waited {took:?}");
    }
    // The starts the callers asked for end too, and none is left counted.
    until_alive_at_most(&pool, 0, Duration::from_secs(5));
}

/// A pool of two stand-in workers ("given") with a reserve of one worker whose calls run at
/// most 300 ms; calls count as long after `long_after`. Returns once both workers are idle.
fn pool_with_a_reserve(long_after: Duration) -> std::sync::Arc<WorkerPool> {
    let pool = std::sync::Arc::new(pool_with("given", |config| {
        config.max_workers = 2;
        config.min_workers = 2;
        config.reserve_workers = 1;
        config.reserve_call_time = Duration::from_millis(300);
        config.spec.sandbox.lower_priority_after = Some(long_after);
    }));
    until_two_idle(&pool);
    pool
}

/// Runs `input` through the "given" stand-in; the wall time the worker was given, and how
/// long the call took.
fn given(
    pool: &WorkerPool,
    input: &[u8],
    wall_time: Duration,
) -> Result<(Duration, Duration), RunError> {
    let started = Instant::now();
    let done = pool.run(0, input, &limits(wall_time))?;
    let micros: u64 = String::from_utf8(done.stdout).unwrap().parse().unwrap();
    Ok((Duration::from_micros(micros), started.elapsed()))
}

/// Fills both workers with endless loops (5 s each), and waits until they have run 100 ms.
fn loops_in_every_worker(
    pool: &std::sync::Arc<WorkerPool>,
) -> Vec<std::thread::JoinHandle<Duration>> {
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || given(&pool, b"loop", Duration::from_secs(5)).unwrap().0)
        })
        .collect();
    while pool.status().busy_pids.len() < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    loops
}

/// When every worker holds a long call (two clients' endless loops, say), a short call does
/// not wait for one to end: a reserve worker starts and serves it, and calls in the reserve
/// are cut to `reserve_call_time`, so that loops sent there too hold it only that long, one
/// after another. The pool never holds more than `max_workers + reserve_workers`, and the
/// long calls keep their own deadlines. (Without the reserve the short call waited for a loop
/// to end, past its own deadline.)
#[test]
fn when_every_worker_holds_a_long_call_short_calls_run_in_the_reserve() {
    let pool = pool_with_a_reserve(Duration::from_millis(50));
    let loops = loops_in_every_worker(&pool);

    let (wall_time, took) = given(&pool, b"now", Duration::from_secs(3)).unwrap();
    assert!(
        took < Duration::from_secs(2),
        "the short call took {took:?}"
    );
    assert!(
        wall_time <= Duration::from_millis(300),
        "given {wall_time:?}"
    );

    // Two more loops at once: each holds the one reserve worker for 300 ms at most, in turn.
    let watcher = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let mut most_alive = 0;
            for _ in 0..300 {
                most_alive = most_alive.max(pool.status().alive);
                std::thread::sleep(Duration::from_millis(5));
            }
            most_alive
        })
    };
    let more: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || given(&pool, b"loop", Duration::from_secs(3)))
        })
        .collect();
    for call in more {
        let (wall_time, took) = call.join().unwrap().unwrap();
        assert!(
            wall_time <= Duration::from_millis(300),
            "given {wall_time:?}"
        );
        assert!(
            took < Duration::from_millis(1_500),
            "a loop in the reserve took {took:?}"
        );
    }
    assert_eq!(watcher.join().unwrap(), 3, "max_workers + reserve_workers");
    for call in loops {
        let wall_time = call.join().unwrap();
        assert!(
            wall_time > Duration::from_secs(4),
            "a long call was cut: {wall_time:?}"
        );
    }
    let status = pool.status();
    assert_eq!(status.reserve_calls, 3, "{status:?}");
    assert_eq!(status.lost, 0, "{status:?}");
}

/// While a call in flight is still short, the reserve stays closed: the waiting call gets no
/// new worker (short calls free theirs soon), and fails at its deadline if none comes free.
#[test]
fn the_reserve_stays_closed_while_the_calls_in_flight_are_short() {
    let pool = pool_with_a_reserve(Duration::from_secs(10));
    let loops = loops_in_every_worker(&pool);
    let outcome = given(&pool, b"now", Duration::from_millis(500));
    assert!(
        matches!(outcome, Err(RunError::Sandbox(SandboxError::Busy { .. }))),
        "{outcome:?}"
    );
    let status = pool.status();
    assert_eq!((status.alive, status.reserve_calls), (2, 0), "{status:?}");
    for call in loops {
        call.join().unwrap();
    }
}

/// A worker that has served `recycle_after_calls` calls is stopped and replaced: a guest that
/// escaped into its worker sees a bounded number of the calls that follow (a busy worker was
/// kept for good). Not counted as lost; the call that reached the count has its answer.
#[test]
fn a_worker_is_replaced_after_serving_recycle_after_calls_calls() {
    let pool = pool_with("affinity", |config| {
        config.recycle_after_calls = Some(3);
    });
    let call = || {
        pool.run(0, b"now", &limits(Duration::from_secs(5)))
            .expect("the call is answered")
    };
    call();
    let first = pool.status().idle_pids;
    assert_eq!(first.len(), 1);
    call();
    assert_eq!(pool.status().idle_pids, first, "replaced too soon");
    call();
    let status = pool.status();
    assert_eq!((status.recycled, status.lost), (1, 0), "{status:?}");
    assert!(!status.idle_pids.contains(&first[0]), "{status:?}");
    // A replacement serves the next calls.
    call();
    let status = pool.status();
    assert_eq!(status.alive, 1, "{status:?}");
    assert!(
        !status.idle_pids.contains(&first[0]) && !status.idle_pids.is_empty(),
        "{status:?}"
    );
    // The recycled process is gone.
    let gone = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{}", first[0])).exists() {
        assert!(Instant::now() < gone, "the recycled worker still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}
