use std::time::Duration;

use zeval_sandbox::{Limits, SandboxError};

use crate::common::{js_request, limits_with_wall_time, quickjs, run_js};

#[test]
fn globals_and_prototypes_do_not_leak_between_calls() {
    let polluted = run_js(
        "function Z1() { Object.prototype.polluted = 1; globalThis.leak = 2; return 'done'; }",
        "Z1",
        &[],
        &Limits::default(),
    );
    assert_eq!(polluted, "done");
    let checked = run_js(
        "function Z1() { return [typeof ({}).polluted, typeof globalThis.leak].join(); }",
        "Z1",
        &[],
        &Limits::default(),
    );
    assert_eq!(checked, "undefined,undefined");
}

#[test]
fn math_random_differs_between_calls() {
    let code = "function Z1() { return [Math.random(), Math.random()].join(); }";
    let numbers =
        |text: String| -> Vec<f64> { text.split(',').map(|n| n.parse().unwrap()).collect() };
    let first = numbers(run_js(code, "Z1", &[], &Limits::default()));
    let second = numbers(run_js(code, "Z1", &[], &Limits::default()));
    assert_ne!(first, second);
    assert_ne!(first[0], first[1]);
    assert!(first.iter().chain(&second).all(|n| (0.0..1.0).contains(n)));
}

#[test]
fn a_normal_call_succeeds_beside_hostile_ones() {
    // Not beside a test that loads the CPUs: the loop would not have its time (`Starved`).
    let _cpus = crate::common::timed();
    let hostile = std::thread::spawn(|| {
        let request = js_request("function Z1() { for (;;) {} }", "Z1", &[]);
        quickjs().run(&request, &limits_with_wall_time(Duration::from_secs(2)))
    });
    let bomb = std::thread::spawn(|| {
        let request = js_request(
            "function Z1() { const k = []; for (;;) k.push(new Array(1e5).fill(1)); }",
            "Z1",
            &[],
        );
        quickjs().run(&request, &Limits::default())
    });
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..20 {
        let sum = run_js(
            "function Z1(a, b) { return a + b; }",
            "Z1",
            &["2", "3"],
            &Limits::default(),
        );
        assert_eq!(sum, "23");
    }
    assert!(matches!(
        hostile.join().unwrap(),
        Err(SandboxError::Timeout { .. })
    ));
    assert!(matches!(
        bomb.join().unwrap(),
        Err(SandboxError::MemoryLimit { .. })
    ));
}

#[test]
fn the_guest_is_reusable_across_threads_and_many_calls() {
    let handles: Vec<_> = (0..4)
        .map(|n| {
            std::thread::spawn(move || {
                for i in 0..25 {
                    let value = run_js(
                        &format!("function Z1() {{ return String({n} * 100 + {i}); }}"),
                        "Z1",
                        &[],
                        &Limits::default(),
                    );
                    assert_eq!(value, (n * 100 + i).to_string());
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

/// Prints the byte at address 32, then overwrites it: a call that saw another call's write
/// would print `x`.
const PRINT_THEN_DIRTY: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "a")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store8 (i32.const 32) (i32.const 120))))"#;

/// [`PRINT_THEN_DIRTY`] in a pool of one instance, and limits that wait 100 ms for it.
fn print_then_dirty_in_one_slot() -> (zeval_sandbox::Guest, Limits) {
    let mut config = zeval_sandbox::SandboxConfig::new(tempfile::tempdir().unwrap().keep());
    config.pool.max_instances = 1;
    config.pool.reserve_instances = 0;
    let sandbox = zeval_sandbox::Sandbox::new(config).unwrap();
    let guest = sandbox
        .load_guest("print-then-dirty", PRINT_THEN_DIRTY.as_bytes())
        .unwrap();
    let limits = Limits {
        wall_time: Duration::from_millis(100),
        ..Limits::default()
    };
    (guest, limits)
}

#[test]
fn a_call_whose_reset_is_left_for_later_has_its_answer_and_keeps_its_slot_until_then() {
    let (guest, limits) = print_then_dirty_in_one_slot();
    let (output, pending) = guest.run_resetting_later(b"", &limits, None);
    assert_eq!(output.unwrap().stdout, b"a");
    // The instance is not back in the pool yet: its one slot stays taken.
    let error = guest.run(b"", &limits).unwrap_err();
    assert!(matches!(error, SandboxError::Busy { .. }), "{error}");
    drop(pending);
    // Reset: the next call sees the snapshot's byte, not the last call's write.
    for _ in 0..3 {
        let (output, pending) = guest.run_resetting_later(b"", &limits, None);
        assert_eq!(output.unwrap().stdout, b"a");
        drop(pending);
    }
}

#[test]
fn a_call_answered_first_keeps_one_reset_waiting_per_thread_and_every_call_a_fresh_instance() {
    let (guest, limits) = print_then_dirty_in_one_slot();
    // Many calls in one scope with one pool slot: each resets the one before it first, so
    // none is refused for want of a slot, and none sees the last one's write.
    let (outputs, left) = zeval_sandbox::answer_first(|| {
        (0..5)
            .map(|_| guest.run(b"", &limits).unwrap().stdout)
            .collect::<Vec<_>>()
    });
    assert_eq!(outputs, vec![b"a".to_vec(); 5]);
    assert!(
        left.is_waiting(),
        "the last call's reset is left to the caller"
    );
    // Until it is dropped the slot stays taken, for another thread as for a call outside.
    let elsewhere = std::thread::scope(|s| s.spawn(|| guest.run(b"", &limits)).join().unwrap());
    assert!(
        matches!(elsewhere, Err(SandboxError::Busy { .. })),
        "{elsewhere:?}"
    );
    drop(left);
    assert_eq!(guest.run(b"", &limits).unwrap().stdout, b"a");

    // Outside a scope nothing waits: the slot is free as soon as a call returns.
    guest.run(b"", &limits).unwrap();
    let elsewhere = std::thread::scope(|s| s.spawn(|| guest.run(b"", &limits)).join().unwrap());
    assert_eq!(elsewhere.unwrap().stdout, b"a");

    // A panic inside the scope resets the waiting call as it unwinds.
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        zeval_sandbox::answer_first(|| {
            guest.run(b"", &limits).unwrap();
            panic!("the caller's work failed");
        })
    }));
    assert!(unwound.is_err());
    let elsewhere = std::thread::scope(|s| s.spawn(|| guest.run(b"", &limits)).join().unwrap());
    assert_eq!(elsewhere.unwrap().stdout, b"a");
}
