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
