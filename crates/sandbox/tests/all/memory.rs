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

/// The fewest minor page faults of one call among `calls` calls of `guest` with empty stdin,
/// leaving out the first `skipped`.
fn fewest_faults(guest: &zeval_sandbox::Guest, calls: usize, skipped: usize) -> i64 {
    (0..calls)
        .map(|_| {
            let before = thread_minor_faults();
            guest.run(b"", &Limits::default()).unwrap();
            thread_minor_faults() - before
        })
        .skip(skipped)
        .min()
        .unwrap_or(i64::MAX)
}

/// Asserts that the pages written by a guest that writes one byte in every other 4 KiB page
/// of its first `pages * 8` KiB (`pages` separate runs of one dirty page) stay resident for
/// its later calls: the fewest faults of one call stay far below `pages`.
fn every_other_page_stays_resident(name: &str, pages: u32) {
    let guest = wat_guest(
        name,
        &format!(
            r#"(module (memory (export "memory") 32)
              (func (export "_start") (local $at i32)
                (loop
                  (i32.store8 (local.get $at) (i32.const 1))
                  (local.set $at (i32.add (local.get $at) (i32.const 8192)))
                  (br_if 0 (i32.lt_u (local.get $at) (i32.const {end}))))))"#,
            end = pages * 8192
        ),
    );
    // The first calls may each take a fresh slot of the pool.
    let fewest = fewest_faults(&guest, 13, 3);
    assert!(
        fewest < 32,
        "a call faulted {fewest} pages in again (it writes {pages})"
    );
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
    every_other_page_stays_resident("scattered-writes", 128);
}

/// The same with as many runs as `keep_resident` can hold pages, less one: 255 single dirty
/// pages, every other page of the first 2 MiB, within the default 1 MiB (256 pages) kept
/// resident. The vendored wasmtime offers the kernel's scan room for as many runs as
/// `keep_resident` has pages (so that the kernel's buffer fits a slab,
/// vendor/wasmtime/ZEVAL-PATCH.md, fourth change); with less room the scan would stop early
/// and the whole memory would be returned, and every call would fault its 255 pages in again.
#[test]
fn dirty_pages_in_as_many_runs_as_keep_resident_has_pages_stay_resident() {
    every_other_page_stays_resident("single-page-runs", 255);
}

/// A call that dirties more pages than `keep_resident` leaves later calls of the same guest
/// their own pages, not its. Without uffd write-protection, wasmtime's `PAGEMAP_SCAN` counts
/// every private page as written, so before the vendored patch (vendor/wasmtime/ZEVAL-PATCH.md)
/// a slot kept the first `keep_resident` bytes' worth of pages that one heavy call had written
/// (here 256 of 768, at low addresses), copied them back after every later call, and
/// decommitted the pages those calls did use (here 9 pages past 3.5 MiB), which every call
/// then faulted in again. Now a scan that stops early returns all of memory to the kernel: the
/// next call faults in its own pages once, and they stay resident after.
#[test]
fn a_call_over_keep_resident_leaves_later_calls_their_own_pages() {
    // Reads one byte of stdin; with one ("heavy"), writes every page from 64 KiB to 3 MiB.
    // Every call writes the 9 pages from 3.5 MiB on.
    let guest = wat_guest(
        "heavy-then-light",
        r#"(module
          (import "wasi_snapshot_preview1" "fd_read"
            (func $fd_read (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 64)
          (func $touch (param $from i32) (param $to i32)
            (loop
              (i32.store8 (local.get $from) (i32.const 1))
              (local.set $from (i32.add (local.get $from) (i32.const 4096)))
              (br_if 0 (i32.lt_u (local.get $from) (local.get $to)))))
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 1))
            (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
            (if (i32.load (i32.const 8))
              (then (call $touch (i32.const 65536) (i32.const 3145728))))
            (call $touch (i32.const 3670016) (i32.const 3706880))))"#,
    );
    for _ in 0..3 {
        guest.run(b"", &Limits::default()).unwrap();
    }
    guest.run(b"h", &Limits::default()).unwrap();
    // The first call after the heavy one faults its pages in again.
    let fewest = fewest_faults(&guest, 10, 2);
    assert!(
        fewest < 4,
        "after one heavy call, every later call faulted in {fewest} pages or more (it writes 10)"
    );
}
