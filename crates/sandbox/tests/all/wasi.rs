use zeval_sandbox::{Limits, SandboxError};

use crate::common::wat_guest;

/// Exits with the status computed by `body` (an i32 expression).
fn exit_with(name: &str, imports: &str, body: &str) -> SandboxError {
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          {imports}
          (memory (export "memory") 1)
          (func (export "_start") (call $exit {body})))"#
    );
    wat_guest(name, &wat)
        .run(b"", &Limits::default())
        .unwrap_err()
}

fn status(error: &SandboxError) -> &str {
    let SandboxError::Trap(message) = error else {
        panic!("{error:?}")
    };
    message
}

#[test]
fn exit_status_zero_is_success_and_others_are_reported() {
    let guest = wat_guest(
        "exit0",
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (call $exit (i32.const 0))))"#,
    );
    assert!(guest.run(b"", &Limits::default()).is_ok());
    let error = exit_with("exit3", "", "(i32.const 3)");
    assert!(status(&error).starts_with("exit status 3"), "{error}");
}

#[test]
fn the_guest_gets_argv0_only_and_no_environment() {
    // Exits with argc * 10 + number of environment variables.
    let error = exit_with(
        "counts",
        r#"(import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
           (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))"#,
        "(drop (call $args (i32.const 0) (i32.const 4)))
         (drop (call $env (i32.const 8) (i32.const 12)))
         (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 10)) (i32.load (i32.const 8)))",
    );
    assert!(status(&error).starts_with("exit status 10"), "{error}");
}

#[test]
fn the_guest_has_no_preopened_directory() {
    // fd_prestat_get(3) is how wasi-libc discovers preopens; 8 is EBADF.
    let error = exit_with(
        "prestat",
        r#"(import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))"#,
        "(call $prestat (i32.const 3) (i32.const 0))",
    );
    assert!(status(&error).starts_with("exit status 8"), "{error}");
}

#[test]
fn stdin_is_the_input() {
    // Reads stdin into memory and exits with its first byte.
    let guest = wat_guest(
        "echo",
        r#"(module
          (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 16))
            (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
            (call $exit (i32.load8_u (i32.const 64)))))"#,
    );
    let error = guest.run(b"*", &Limits::default()).unwrap_err();
    assert!(status(&error).starts_with("exit status 42"), "{error}");
}

/// Exits with 50 + the errno of one `poll_oneoff` of `count` subscriptions, each (memory
/// being zero) a relative real-time clock that is due at once.
fn poll_oneoff_errno_plus_50(count: u32) -> SandboxError {
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (import "wasi_snapshot_preview1" "poll_oneoff"
            (func $poll (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 2)
          (func (export "_start")
            (call $exit (i32.add (i32.const 50)
              (call $poll (i32.const 0) (i32.const 65536) (i32.const {count})
                          (i32.const 131000))))))"#
    );
    wat_guest(&format!("poll{count}"), &wat)
        .run(b"", &Limits::default())
        .unwrap_err()
}

/// One `poll_oneoff` waits on at most 1,024 subscriptions; past that it is `EINVAL` (28), as
/// Linux's `poll()` past `RLIMIT_NOFILE`. wasmtime-wasi alone took up to its host-call fuel,
/// about 1.6 million, with a host pollable apiece.
#[test]
fn poll_oneoff_waits_on_at_most_1024_subscriptions() {
    let at_the_bound = poll_oneoff_errno_plus_50(1024);
    assert!(
        status(&at_the_bound).starts_with("exit status 50"),
        "{at_the_bound}"
    );
    let past_it = poll_oneoff_errno_plus_50(1025);
    assert!(status(&past_it).starts_with("exit status 78"), "{past_it}");
}
