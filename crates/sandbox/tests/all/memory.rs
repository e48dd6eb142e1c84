use zeval_sandbox::{Limits, SandboxError};

use crate::common::{js_request, quickjs, wat_guest};

const MIB: usize = 1024 * 1024;

#[test]
fn wat_memory_bomb_hits_the_memory_limit() {
    // Grows by 1 MiB until memory.grow fails (it never does: the limiter traps first).
    let guest = wat_guest(
        "grow",
        r#"(module (memory (export "memory") 1)
          (func (export "_start")
            (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))))"#,
    );
    let limits = Limits {
        memory_bytes: 32 * MIB,
        ..Limits::default()
    };
    let error = guest.run(b"", &limits).unwrap_err();
    assert!(
        matches!(error, SandboxError::MemoryLimit { limit } if limit == 32 * MIB),
        "{error:?}"
    );
}

#[test]
fn js_memory_bomb_hits_the_memory_limit() {
    let request = js_request(
        "function Z1() { const keep = []; for (;;) keep.push(new Array(1e5).fill(keep.length)); }",
        "Z1",
        &[],
    );
    let limits = Limits {
        memory_bytes: 64 * MIB,
        ..Limits::default()
    };
    let error = quickjs().run(&request, &limits).unwrap_err();
    assert!(
        matches!(error, SandboxError::MemoryLimit { limit } if limit == 64 * MIB),
        "{error:?}"
    );
}

#[test]
fn peak_memory_is_reported() {
    let small = quickjs()
        .run(
            &js_request("function Z1() { return 1; }", "Z1", &[]),
            &Limits::default(),
        )
        .unwrap();
    let big = quickjs()
        .run(
            &js_request(
                "function Z1() { return 'x'.repeat(20e6).length; }",
                "Z1",
                &[],
            ),
            &Limits::default(),
        )
        .unwrap();
    assert!(
        small.peak_memory_bytes >= MIB as u64,
        "{}",
        small.peak_memory_bytes
    );
    assert!(big.peak_memory_bytes >= small.peak_memory_bytes + 19 * MIB as u64);
}

#[test]
fn a_limit_above_the_pool_slot_is_refused() {
    let guest = wat_guest("empty", r#"(module (func (export "_start")))"#);
    let limits = Limits {
        memory_bytes: usize::MAX,
        ..Limits::default()
    };
    assert!(matches!(
        guest.run(b"", &limits),
        Err(SandboxError::InvalidLimits(_))
    ));
}

/// Minor page faults of the calling thread so far (`minflt`, the 10th field of its `stat`).
fn thread_minor_faults() -> i64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    after_name
        .split_whitespace()
        .nth(7)
        .unwrap()
        .parse()
        .unwrap()
}

/// A call's dirty pages stay resident for the next call when they fit `keep_resident`, even
/// when they are scattered. The guest writes every other 4 KiB page of its first MiB: 128
/// separate runs of dirty pages, within the default 1 MiB kept resident. wasmtime 48.0.8's
/// dirty-page scan stopped at 32 runs and returned the rest to the kernel, so every call
/// faulted about 96 pages in again (CPython's calls leave about 80 runs); the vendored
/// wasmtime scans 1,024 (vendor/wasmtime/ZEVAL-PATCH.md). Without `PAGEMAP_SCAN` in the
/// kernel, wasmtime keeps the first MiB resident, which covers these pages too.
#[test]
fn scattered_dirty_pages_stay_resident_between_calls() {
    let guest = wat_guest(
        "scattered-writes",
        r#"(module (memory (export "memory") 32)
          (func (export "_start") (local $at i32)
            (loop
              (i32.store8 (local.get $at) (i32.const 1))
              (local.set $at (i32.add (local.get $at) (i32.const 8192)))
              (br_if 0 (i32.lt_u (local.get $at) (i32.const 1048576))))))"#,
    );
    let mut fewest = i64::MAX;
    for call in 0..13 {
        let before = thread_minor_faults();
        guest.run(b"", &Limits::default()).unwrap();
        // The first calls may each take a fresh slot of the pool.
        if call >= 3 {
            fewest = fewest.min(thread_minor_faults() - before);
        }
    }
    assert!(
        fewest < 32,
        "a call faulted {fewest} pages in again (it writes 128)"
    );
}
