use std::time::{Duration, Instant};

use zeval_sandbox::{Limits, SandboxError};

use crate::common::{js_request, limits_with_wall_time, metered_quickjs, quickjs, wat_guest};

#[test]
fn wat_infinite_loop_times_out_within_twice_the_limit() {
    let _cpus = crate::common::timed();
    let guest = wat_guest("loop", r#"(module (func (export "_start") (loop (br 0))))"#);
    let limit = Duration::from_millis(200);
    let started = Instant::now();
    let error = guest.run(b"", &limits_with_wall_time(limit)).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, SandboxError::Timeout { limit: l } if l == limit),
        "{error:?}"
    );
    assert!(elapsed >= limit && elapsed < 2 * limit, "took {elapsed:?}");
}

#[test]
fn js_infinite_loop_times_out_within_twice_the_limit() {
    let _cpus = crate::common::timed();
    let limit = Duration::from_millis(300);
    let request = js_request("function Z1() { for (;;) {} }", "Z1", &[]);
    // Loaded (and, in this binary's fresh cache, compiled) before the clock starts.
    let guest = quickjs();
    let started = Instant::now();
    let error = guest
        .run(&request, &limits_with_wall_time(limit))
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, SandboxError::Timeout { .. }), "{error:?}");
    assert!(elapsed < 2 * limit, "took {elapsed:?}");
}

#[test]
fn a_guest_sleeping_in_a_host_call_is_cut_at_the_limit() {
    let _cpus = crate::common::timed();
    // poll_oneoff with one relative clock subscription of 60 s.
    let guest = wat_guest(
        "sleep",
        r#"(module
          (import "wasi_snapshot_preview1" "poll_oneoff"
            (func $poll (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            ;; subscription at 0: userdata 0, tag 0 (clock), clock id 1 (monotonic),
            ;; timeout 60e9 ns, precision 0, flags 0 (relative)
            (i32.store8 (i32.const 8) (i32.const 0))
            (i32.store (i32.const 16) (i32.const 1))
            (i64.store (i32.const 24) (i64.const 60000000000))
            (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 256)))))"#,
    );
    let limit = Duration::from_millis(200);
    let started = Instant::now();
    let error = guest.run(b"", &limits_with_wall_time(limit)).unwrap_err();
    assert!(matches!(error, SandboxError::Timeout { .. }), "{error:?}");
    assert!(
        started.elapsed() < 2 * limit,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn js_fuel_limit_stops_a_loop_and_fuel_is_reported() {
    let _cpus = crate::common::timed();
    let request = js_request("function Z1() { for (;;) {} }", "Z1", &[]);
    let limits = Limits {
        fuel: Some(50_000_000),
        ..Limits::default()
    };
    let error = metered_quickjs().run(&request, &limits).unwrap_err();
    assert!(
        matches!(error, SandboxError::OutOfFuel { limit: 50_000_000 }),
        "{error:?}"
    );

    let request = js_request("function Z1() { return 1; }", "Z1", &[]);
    let output = metered_quickjs().run(&request, &Limits::default()).unwrap();
    let fuel = output
        .fuel_consumed
        .expect("a metered sandbox reports the fuel burnt");
    assert!(fuel > 1_000 && fuel < 50_000_000, "fuel {fuel}");
}

#[test]
fn without_fuel_metering_no_fuel_is_reported_and_a_fuel_limit_is_refused() {
    let request = js_request("function Z1() { return 1; }", "Z1", &[]);
    let output = quickjs().run(&request, &Limits::default()).unwrap();
    assert_eq!(output.fuel_consumed, None, "metering is off by default");
    let limits = Limits {
        fuel: Some(50_000_000),
        ..Limits::default()
    };
    let error = quickjs().run(&request, &limits).unwrap_err();
    assert!(matches!(error, SandboxError::InvalidLimits(_)), "{error:?}");
}

/// The nice value of thread `tid` of this process (field 19 of its `stat`).
fn nice_of(tid: &str) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    after_name
        .split_whitespace()
        .nth(16)
        .unwrap()
        .parse()
        .unwrap()
}

/// The calling thread's id, from `/proc/thread-self` (a link to `<pid>/task/<tid>`).
fn own_tid() -> String {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_string_lossy().into_owned()
}

const LOOP_WAT: &str = r#"(module (func (export "_start") (loop (br 0))))"#;

/// A guest that loops, in a sandbox that never lowers a call's priority (a nice-19 thread
/// beside nice-0 busy threads is itself scheduled late, see "Fairness" in the crate docs,
/// which is not what the tests that use it measure), and its module cache.
fn loop_at_full_priority(name: &str) -> (tempfile::TempDir, zeval_sandbox::Guest) {
    let cache = tempfile::tempdir().unwrap();
    let mut config = zeval_sandbox::SandboxConfig::new(cache.path());
    config.lower_priority_after = None;
    let sandbox = zeval_sandbox::Sandbox::new(config).unwrap();
    let guest = sandbox.load_guest(name, LOOP_WAT.as_bytes()).unwrap();
    (cache, guest)
}

#[test]
fn a_busy_loop_under_cpu_contention_stops_near_its_deadline() {
    let _cpus = crate::common::loading_the_cpus();
    // Epoch ticks come late when the ticker thread shares the cores with busy threads (300
    // ticks took 2.3 s here); the deadline is checked against the real clock at each tick,
    // so it holds anyway.
    let (_cache, guest) = loop_at_full_priority("contended-loop");
    let limit = Duration::from_millis(300);
    let _contention = crate::busy_threads::BusyThreads::start(8);
    for _ in 0..3 {
        let started = Instant::now();
        let error = guest.run(b"", &limits_with_wall_time(limit)).unwrap_err();
        let elapsed = started.elapsed();
        // Two CPUs for nine threads: about a fifth of its time, so the load's doing
        // (`a_call_starved_of_the_cpus_says_so`), or, if it got more, its own.
        assert!(
            matches!(
                error,
                SandboxError::Timeout { .. } | SandboxError::Starved { .. }
            ),
            "{error:?}"
        );
        assert!(
            elapsed < limit + Duration::from_millis(150),
            "took {elapsed:?} for a limit of {limit:?}"
        );
    }
}

/// A loop that reaches its limit while other threads held the CPUs did not have its time:
/// the timeout is the load's (`Starved`), which callers do not count against the code. It
/// was the plain `Timeout`, the code's own. A loop that had the CPU
/// (`wat_infinite_loop_times_out_within_twice_the_limit`), and a guest asleep until its limit
/// (`a_guest_sleeping_in_a_host_call_is_cut_at_the_limit`), reach their own.
#[test]
fn a_call_starved_of_the_cpus_says_so() {
    let _cpus = crate::common::loading_the_cpus();
    let (_cache, guest) = loop_at_full_priority("starved-loop");
    let limit = Duration::from_millis(400);
    // Sixteen busy threads per CPU: about a seventeenth of its time.
    let _contention = crate::busy_threads::BusyThreads::per_cpu(16);
    let error = guest.run(b"", &limits_with_wall_time(limit)).unwrap_err();
    match error {
        SandboxError::Starved { limit: l, used } => {
            assert_eq!(l, limit);
            assert!(used * 4 < limit, "used {used:?}");
        }
        other => panic!("with the CPUs held: {other:?}"),
    }
}

#[test]
fn a_long_call_runs_at_the_lowest_priority_and_its_thread_is_restored_after() {
    let _cpus = crate::common::timed();
    let guest = wat_guest("nice-loop", LOOP_WAT);
    let short = wat_guest("nice-short", r#"(module (func (export "_start")))"#);
    let (tid_sender, tid_receiver) = std::sync::mpsc::channel();
    let caller = std::thread::spawn(move || {
        let tid = own_tid();
        let before = nice_of(&tid);
        short.run(b"", &Limits::default()).unwrap();
        assert_eq!(nice_of(&tid), before, "a short call changed the priority");
        tid_sender.send(tid.clone()).unwrap();
        let error = guest
            .run(b"", &limits_with_wall_time(Duration::from_millis(600)))
            .unwrap_err();
        assert!(matches!(error, SandboxError::Timeout { .. }), "{error:?}");
        (before, nice_of(&tid))
    });
    let tid = tid_receiver.recv().unwrap();
    // Lowered once the call has run 10 ms and its thread sees an epoch tick; on a machine
    // busy with other tests that can take a while, so look until the call is nearly over.
    let asked = Instant::now();
    let mut during = nice_of(&tid);
    while during != zeval_sandbox::LOWERED_NICE && asked.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(10));
        during = nice_of(&tid);
    }
    let (before, after) = caller.join().unwrap();
    assert_eq!(during, zeval_sandbox::LOWERED_NICE, "nice during the call");
    assert_eq!(after, before, "nice after the call");
}

#[test]
fn waiting_for_a_slot_counts_against_the_deadline() {
    let _cpus = crate::common::timed();
    let cache = tempfile::tempdir().unwrap();
    let mut config = zeval_sandbox::SandboxConfig::new(cache.path());
    config.pool.max_instances = 1;
    config.pool.reserve_instances = 0;
    let sandbox = zeval_sandbox::Sandbox::new(config).unwrap();
    let guest = sandbox
        .load_guest("one-slot-loop", LOOP_WAT.as_bytes())
        .unwrap();
    let holder = {
        let guest = guest.clone();
        std::thread::spawn(move || {
            guest.run(b"", &limits_with_wall_time(Duration::from_millis(250)))
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let limit = Duration::from_millis(300);
    let started = Instant::now();
    let error = guest.run(b"", &limits_with_wall_time(limit)).unwrap_err();
    let elapsed = started.elapsed();
    // Either the slot came free in time and the call then ran out of its remaining time, or
    // (on a loaded machine, where the holder overruns its own 250 ms) the slot never came
    // free before the deadline: both end at the one deadline, never after limit + wait. Both
    // are `Busy`: after waiting most of its time for a slot, the loop's timeout is the
    // load's, not its own (a plain `Timeout` made the orchestrator count it against the
    // implementation).
    assert!(matches!(error, SandboxError::Busy { .. }), "{error:?}");
    // On top of the limit, the wait would make it 250 ms + 300 ms; allow for a late wake-up
    // on a busy machine, well short of that.
    assert!(
        elapsed < limit + Duration::from_millis(200),
        "took {elapsed:?}: the slot wait came on top of the limit"
    );
    assert!(holder.join().unwrap().is_err());
}
