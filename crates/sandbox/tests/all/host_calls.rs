//! The `zeval` host-call imports (reentrant calls): a guest hands its host a request and waits
//! for the answer, which the caller of `Guest::run_with` computes on its own thread.

use std::time::{Duration, Instant};

use zeval_sandbox::host_call::{NO_HOST, REQUEST_TOO_LARGE};
use zeval_sandbox::{Guest, Limits, SandboxError};

use crate::common::wat_guest;

/// Sends the 4 bytes "ping" through `zeval.call`, then writes to stdout the call's return
/// value (4 bytes, little-endian) and the answer `zeval.answer` copied (at most 64 bytes).
fn pinger() -> Guest {
    wat_guest(
        "pinger",
        r#"(module
          (import "zeval" "call" (func $call (param i32 i32) (result i32)))
          (import "zeval" "answer" (func $answer (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write"
            (func $write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "ping")
          (func (export "_start") (local $copied i32)
            (i32.store (i32.const 100) (call $call (i32.const 0) (i32.const 4)))
            (local.set $copied (call $answer (i32.const 104) (i32.const 64)))
            ;; iovec at 300: the result and the answer, contiguous from 100
            (i32.store (i32.const 300) (i32.const 100))
            (i32.store (i32.const 304) (i32.add (i32.const 4) (local.get $copied)))
            (drop (call $write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 400)))))"#,
    )
}

/// The guest's stdout as (what `zeval.call` returned, the answer).
fn parse(stdout: &[u8]) -> (i32, Vec<u8>) {
    let returned = i32::from_le_bytes(stdout[..4].try_into().unwrap());
    (returned, stdout[4..].to_vec())
}

#[test]
fn the_host_answers_on_the_calling_thread() {
    let guest = pinger();
    let caller = std::thread::current().id();
    let mut seen = Vec::new();
    let mut host = |request: &[u8], deadline: Instant| {
        assert_eq!(std::thread::current().id(), caller, "the handler's thread");
        assert!(deadline > Instant::now());
        seen.push(request.to_vec());
        b"pong!".to_vec()
    };
    let output = guest
        .run_with(b"", &Limits::default(), Some(&mut host))
        .unwrap();
    assert_eq!(parse(&output.stdout), (5, b"pong!".to_vec()));
    assert_eq!(seen, vec![b"ping".to_vec()]);
}

#[test]
fn without_a_host_the_call_says_so() {
    let output = pinger().run(b"", &Limits::default()).unwrap();
    assert_eq!(parse(&output.stdout), (NO_HOST, Vec::new()));
}

#[test]
fn requests_and_answers_are_bounded_by_the_input_limit() {
    let limits = Limits {
        max_input_bytes: 3,
        ..Limits::default()
    };
    let mut called = false;
    let mut host = |_: &[u8], _: Instant| {
        called = true;
        Vec::new()
    };
    let output = pinger().run_with(b"", &limits, Some(&mut host)).unwrap();
    assert_eq!(parse(&output.stdout), (REQUEST_TOO_LARGE, Vec::new()));
    assert!(!called, "the host never saw the request");

    let limits = Limits {
        max_input_bytes: 8,
        ..Limits::default()
    };
    let mut too_long = |_: &[u8], _: Instant| vec![b'x'; 9];
    let output = pinger()
        .run_with(b"", &limits, Some(&mut too_long))
        .unwrap();
    assert_eq!(
        parse(&output.stdout),
        (0, Vec::new()),
        "an empty answer instead"
    );
}

#[test]
fn the_deadline_covers_the_host() {
    let _cpus = crate::common::timed();
    let limits = Limits {
        wall_time: Duration::from_millis(200),
        ..Limits::default()
    };
    let mut slow = |_: &[u8], deadline: Instant| {
        std::thread::sleep(
            deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(50),
        );
        b"late".to_vec()
    };
    let started = Instant::now();
    let error = pinger()
        .run_with(b"", &limits, Some(&mut slow))
        .unwrap_err();
    assert!(matches!(error, SandboxError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn the_hosts_cpu_time_is_not_the_guests() {
    let _cpus = crate::common::timed();
    let mut busy = |_: &[u8], _: Instant| {
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(150) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        b"done".to_vec()
    };
    let output = pinger()
        .run_with(b"", &Limits::default(), Some(&mut busy))
        .unwrap();
    assert_eq!(parse(&output.stdout), (4, b"done".to_vec()));
    assert!(output.duration >= Duration::from_millis(150));
    assert!(
        output.cpu_time < Duration::from_millis(100),
        "cpu {:?}",
        output.cpu_time
    );
}

#[test]
fn a_host_may_run_guests_itself() {
    // The handler runs outside the guest's fiber and executor, so it can run another call
    // (here the same guest, which itself calls a host that runs one more).
    let guest = pinger();
    let mut innermost = |_: &[u8], _: Instant| b"in".to_vec();
    let mut middle = |_: &[u8], _: Instant| {
        let output = guest
            .run_with(b"", &Limits::default(), Some(&mut innermost))
            .unwrap();
        let (_, answer) = parse(&output.stdout);
        [b"mid/".as_slice(), &answer].concat()
    };
    let output = guest
        .run_with(b"", &Limits::default(), Some(&mut middle))
        .unwrap();
    assert_eq!(parse(&output.stdout), (6, b"mid/in".to_vec()));
}
