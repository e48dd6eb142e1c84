use std::time::{Duration, Instant};

use zeval_sandbox::{Limits, SandboxError};

use crate::common::{js_request, limits_with_wall_time, quickjs, wat_guest};

#[test]
fn wat_infinite_loop_times_out_within_twice_the_limit() {
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
    let limit = Duration::from_millis(300);
    let request = js_request("function Z1() { for (;;) {} }", "Z1", &[]);
    let started = Instant::now();
    let error = quickjs()
        .run(&request, &limits_with_wall_time(limit))
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, SandboxError::Timeout { .. }), "{error:?}");
    assert!(elapsed < 2 * limit, "took {elapsed:?}");
}

#[test]
fn a_guest_sleeping_in_a_host_call_is_cut_at_the_limit() {
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
    let request = js_request("function Z1() { for (;;) {} }", "Z1", &[]);
    let limits = Limits {
        fuel: Some(50_000_000),
        ..Limits::default()
    };
    let error = quickjs().run(&request, &limits).unwrap_err();
    assert!(
        matches!(error, SandboxError::OutOfFuel { limit: 50_000_000 }),
        "{error:?}"
    );

    let request = js_request("function Z1() { return 1; }", "Z1", &[]);
    let output = quickjs().run(&request, &Limits::default()).unwrap();
    let fuel = output
        .fuel_consumed
        .expect("fuel metering is on by default");
    assert!(fuel > 1_000 && fuel < 50_000_000, "fuel {fuel}");
}
