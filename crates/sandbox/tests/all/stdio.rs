//! The guest's standard input and output, served without wasmtime-wasi's preview 1 adapter
//! while the three descriptors are untouched (`zeval_sandbox`'s `stdio` module), answer as
//! wasmtime-wasi does. Each guest runs twice: as it is, and after an `fd_renumber(2, 2)`,
//! which changes nothing but hands the descriptors back to wasmtime-wasi.

use zeval_sandbox::{Limits, SandboxError};

use crate::common::wat_guest;

const INPUT: &[u8] = b"abcdefghij";

/// A guest whose `_start` runs `body` after the prelude of `via_wasi`, with helpers: `$log`
/// appends an i32 to a log at 1024 that `$flush_log` writes to stdout; `$iov` writes an iovec.
fn guest(name: &str, via_wasi: bool, body: &str) -> zeval_sandbox::Guest {
    let prelude = if via_wasi {
        "(call $log (call $renumber (i32.const 2) (i32.const 2)))"
    } else {
        "(call $log (i32.const 0))"
    };
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (global $at (mut i32) (i32.const 1024))
          (func $log (param i32)
            (i32.store (global.get $at) (local.get 0))
            (global.set $at (i32.add (global.get $at) (i32.const 4))))
          (func $iov (param $at i32) (param $buffer i32) (param $length i32)
            (i32.store (local.get $at) (local.get $buffer))
            (i32.store (i32.add (local.get $at) (i32.const 4)) (local.get $length)))
          (func $flush_log
            (call $iov (i32.const 16) (i32.const 1024) (i32.sub (global.get $at) (i32.const 1024)))
            (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8))))
          (func (export "_start")
            {prelude}
            {body}
            (call $flush_log)))"#
    );
    let mode = if via_wasi { "wasi" } else { "direct" };
    wat_guest(&format!("stdio-{name}-{mode}"), &wat)
}

/// A call's stdout and stderr, or its error.
type Outcome = Result<(Vec<u8>, Vec<u8>), SandboxError>;

/// Runs `body` both ways on [`INPUT`].
fn both_ways(name: &str, body: &str) -> [Outcome; 2] {
    [false, true].map(|via_wasi| {
        guest(name, via_wasi, body)
            .run(INPUT, &Limits::default())
            .map(|output| (output.stdout, output.stderr))
    })
}

#[test]
fn reads_and_writes_answer_as_wasmtime_wasi_does() {
    let body = r#"
        ;; Two iovecs, the first empty: the second is filled, and only it.
        (call $iov (i32.const 16) (i32.const 100) (i32.const 0))
        (call $iov (i32.const 24) (i32.const 100) (i32.const 3))
        (call $log (call $read (i32.const 0) (i32.const 16) (i32.const 2) (i32.const 8)))
        (call $log (i32.load (i32.const 8)))
        (call $log (i32.load (i32.const 100)))
        ;; No iovec, input left.
        (i32.store (i32.const 8) (i32.const 99))
        (call $log (call $read (i32.const 0) (i32.const 16) (i32.const 0) (i32.const 8)))
        (call $log (i32.load (i32.const 8)))
        ;; More entries than the host-call fuel covers.
        (call $log (call $read (i32.const 0) (i32.const 16) (i32.const 0x40000000) (i32.const 8)))
        (call $log (call $write (i32.const 1) (i32.const 16) (i32.const 0x40000000) (i32.const 8)))
        ;; The wrong direction, and a descriptor there is not.
        (call $log (call $read (i32.const 1) (i32.const 16) (i32.const 2) (i32.const 8)))
        (call $log (call $write (i32.const 0) (i32.const 16) (i32.const 2) (i32.const 8)))
        (call $log (call $read (i32.const 7) (i32.const 16) (i32.const 2) (i32.const 8)))
        ;; A buffer that runs past the memory's end, of which the read fills what is in it.
        (call $iov (i32.const 16) (i32.const 65528) (i32.const 100))
        (call $log (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 8)))
        (call $log (i32.load (i32.const 8)))
        (call $log (i32.load (i32.const 65528)))
        (call $log (i32.load (i32.const 65532)))
        ;; At the end of the input: with room, and with none.
        (call $iov (i32.const 16) (i32.const 100) (i32.const 4))
        (call $log (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 8)))
        (call $log (i32.load (i32.const 8)))
        (i32.store (i32.const 8) (i32.const 99))
        (call $log (call $read (i32.const 0) (i32.const 16) (i32.const 0) (i32.const 8)))
        (call $log (i32.load (i32.const 8)))
        ;; Writes with an empty first ciovec, to stdout and to stderr, and a write of nothing.
        (i32.store (i32.const 200) (i32.const 0x6f6c6568))
        (call $iov (i32.const 16) (i32.const 0) (i32.const 0))
        (call $iov (i32.const 24) (i32.const 200) (i32.const 4))
        (call $log (call $write (i32.const 1) (i32.const 16) (i32.const 2) (i32.const 8)))
        (call $log (i32.load (i32.const 8)))
        (call $log (call $write (i32.const 2) (i32.const 16) (i32.const 2) (i32.const 8)))
        (i32.store (i32.const 8) (i32.const 99))
        (call $log (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8)))
        (call $log (i32.load (i32.const 8)))
    "#;
    let [direct, via_wasi] = both_ways("answers", body);
    let (direct, via_wasi) = (direct.unwrap(), via_wasi.unwrap());
    assert_eq!(direct, via_wasi);
    // What the log says, so that both ways agreeing on nothing cannot pass.
    let (stdout, stderr) = direct;
    assert_eq!(&stdout[..4], b"helo");
    assert_eq!(stderr, b"helo");
    let log: Vec<u32> = stdout[4..]
        .chunks(4)
        .map(|word| u32::from_le_bytes(word.try_into().unwrap()))
        .collect();
    let text = |bytes: &[u8]| u32::from_le_bytes(bytes.try_into().unwrap());
    assert_eq!(
        log,
        [
            0,
            0,
            3,
            text(b"abc\0"),
            27, // EINTR: a read of nothing while input is left
            99,
            48, // ENOMEM
            48,
            8, // EBADF
            8,
            8,
            0,
            7,
            text(b"defg"),
            text(b"hij\0"),
            0,
            0,
            0, // at the end, a read of nothing reads 0 bytes
            0,
            0,
            4,
            0,
            0,
            0,
        ]
    );
}

#[test]
fn bad_pointers_trap_both_ways() {
    let cases = [
        (
            "misaligned-array",
            "(call $log (call $read (i32.const 0) (i32.const 18) (i32.const 1) (i32.const 8)))",
        ),
        (
            "array-past-the-end",
            "(call $log (call $read (i32.const 0) (i32.const 65532) (i32.const 1) (i32.const 8)))",
        ),
        (
            "result-past-the-end",
            "(call $iov (i32.const 16) (i32.const 100) (i32.const 4))
             (call $log (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 65534)))",
        ),
        (
            "misaligned-result",
            "(call $iov (i32.const 16) (i32.const 100) (i32.const 4))
             (call $log (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 10)))",
        ),
        (
            "read-filling-past-the-end",
            "(call $iov (i32.const 16) (i32.const 65534) (i32.const 10))
             (call $log (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 8)))",
        ),
        (
            "write-from-past-the-end",
            "(call $iov (i32.const 16) (i32.const 65530) (i32.const 10))
             (call $log (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8)))",
        ),
    ];
    for (name, body) in cases {
        for (way, result) in ["directly", "via wasmtime-wasi"]
            .into_iter()
            .zip(both_ways(name, body))
        {
            assert!(
                matches!(result, Err(SandboxError::Trap(_))),
                "{name}, {way}: {result:?}"
            );
        }
    }
}

#[test]
fn output_past_the_limit_is_the_output_limit_both_ways() {
    let limits = Limits {
        max_output_bytes: 100,
        ..Limits::default()
    };
    // 64 bytes twice: the second write crosses the limit.
    let body = "(call $iov (i32.const 16) (i32.const 0) (i32.const 64))
        (call $log (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8)))
        (call $log (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8)))";
    for via_wasi in [false, true] {
        let error = guest("limit", via_wasi, body)
            .run(INPUT, &limits)
            .unwrap_err();
        assert!(
            matches!(error, SandboxError::OutputLimit { limit: 100 }),
            "{via_wasi}: {error:?}"
        );
    }
}

#[test]
fn a_closed_stdin_is_wasmtime_wasis_to_answer() {
    // After `fd_close(0)`, a read of descriptor 0 is `EBADF`, as wasmtime-wasi says.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (i32.store (i32.const 16) (i32.const 100))
        (i32.store (i32.const 20) (i32.const 4))
        (if (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 8))
          (then (call $exit (i32.const 1))))
        (if (call $close (i32.const 0)) (then (call $exit (i32.const 2))))
        (call $exit (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 8)))))"#;
    let error = wat_guest("stdio-closed", wat)
        .run(INPUT, &Limits::default())
        .unwrap_err();
    let SandboxError::Trap(message) = error else {
        panic!("{error:?}")
    };
    // EBADF, 8, as the exit status.
    assert!(message.contains("exit status 8"), "{message}");
}
