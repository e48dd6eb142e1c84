use std::time::{Duration, Instant};

use zeval_sandbox::{Limits, SandboxError};

use crate::common::{js_request, quickjs, run_js, wat_guest};

#[test]
fn wat_100_mb_of_output_hits_the_output_limit() {
    let _cpus = crate::common::timed();
    // Writes 64 KiB of memory to stdout 1 600 times (100 MiB), ignoring errors.
    let guest = wat_guest(
        "spew",
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write"
            (func $write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 2)
          (func (export "_start") (local $i i32)
            (i32.store (i32.const 0) (i32.const 65536))
            (i32.store (i32.const 4) (i32.const 65536))
            (loop
              (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if 0 (i32.lt_u (local.get $i) (i32.const 1600))))))"#,
    );
    let limits = Limits::default();
    let started = Instant::now();
    let error = guest.run(b"", &limits).unwrap_err();
    assert!(
        matches!(error, SandboxError::OutputLimit { limit } if limit == limits.max_output_bytes),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn js_100_mb_result_hits_the_output_limit() {
    let request = js_request("function Z1() { return 'x'.repeat(100e6); }", "Z1", &[]);
    let limits = Limits {
        memory_bytes: 512 * 1024 * 1024,
        ..Limits::default()
    };
    let error = quickjs().run(&request, &limits).unwrap_err();
    assert!(
        matches!(error, SandboxError::OutputLimit { .. }),
        "{error:?}"
    );
}

#[test]
fn input_over_the_limit_is_refused_before_running() {
    let limits = Limits {
        max_input_bytes: 1024,
        ..Limits::default()
    };
    let error = quickjs().run(&[b' '; 2048], &limits).unwrap_err();
    assert!(
        matches!(error, SandboxError::InputLimit { limit: 1024 }),
        "{error:?}"
    );
}

#[test]
fn a_1_mb_argument_round_trips() {
    let big = "y".repeat(1024 * 1024);
    let result = run_js(
        "function Z1(s) { return String(s.length); }",
        "Z1",
        &[&big],
        &Limits::default(),
    );
    assert_eq!(result, (1024 * 1024).to_string());
}
