use zeval_sandbox::{Limits, SandboxError};

use crate::common::{js_request, js_response, quickjs, wat_guest};

#[test]
fn wat_deep_recursion_is_a_stack_overflow() {
    let guest = wat_guest(
        "recurse",
        r#"(module (func $f (export "_start") (call $f)))"#,
    );
    let error = guest.run(b"", &Limits::default()).unwrap_err();
    let expected = 8 * 1024 * 1024;
    assert!(
        matches!(error, SandboxError::StackOverflow { limit } if limit == expected),
        "{error:?}"
    );
}

#[test]
fn js_deep_recursion_is_stopped_and_the_guest_stays_usable() {
    let request = js_request("function Z1() { return Z1() + 1; }", "Z1", &[]);
    match quickjs().run(&request, &Limits::default()) {
        // A JS error from the runner (QuickJS sets no stack limit of its own on WASI, but
        // the test allows for one)...
        Ok(output) => {
            let error = js_response(&output.stdout).unwrap_err();
            assert!(error.to_lowercase().contains("stack"), "{error}");
        }
        // ...or the wasm stack runs out first.
        Err(error) => assert!(
            matches!(error, SandboxError::StackOverflow { .. }),
            "{error:?}"
        ),
    }
    let request = js_request("function Z1() { return 2; }", "Z1", &[]);
    assert!(quickjs().run(&request, &Limits::default()).is_ok());
}

/// A guest with a C-style stack in its linear memory, laid out first (as clang's
/// `--stack-first` does): `$f` takes a 64 KiB frame below `$sp` and writes into it, then
/// recurses. The wasm stack has room for far more than 64 frames, so the memory stack runs
/// out first, below address 0.
const SHADOW_STACK_GUEST: &str = r#"(module
  (memory 80)
  (global $sp (mut i32) (i32.const 4194304))
  (func $f
    (global.set $sp (i32.sub (global.get $sp) (i32.const 65536)))
    (i32.store (global.get $sp) (i32.const 1))
    (call $f))
  (func (export "_start") (call $f)))"#;

#[test]
fn running_out_of_a_guests_own_stack_in_linear_memory_is_the_stack_limit() {
    let guest = wat_guest("shadow-stack", SHADOW_STACK_GUEST);
    let error = guest.run(b"", &Limits::default()).unwrap_err();
    assert!(
        matches!(error, SandboxError::StackOverflow { limit } if limit == 8 * 1024 * 1024),
        "{error:?}"
    );
}

#[test]
fn a_store_past_the_end_of_memory_stays_an_out_of_bounds_trap() {
    let guest = wat_guest(
        "past-the-end",
        r#"(module (memory 1) (func (export "_start") (i32.store (i32.const 70000) (i32.const 1))))"#,
    );
    let error = guest.run(b"", &Limits::default()).unwrap_err();
    assert!(
        matches!(&error, SandboxError::Trap(message) if message.contains("out of bounds")),
        "{error:?}"
    );
}

/// QuickJS sets no stack limit of its own on WASI, so a recursion of JS functions whose
/// frames are large (here 2,000 locals each) exhausts the C stack in linear memory long
/// before the wasm stack: the same stack limit, not an "out of bounds" trap.
#[test]
fn js_recursion_with_large_frames_is_the_stack_limit() {
    let locals: String = (0..2000).map(|i| format!("let a{i} = {i};")).collect();
    let code = format!(
        "function Z1() {{ function f(n) {{ {locals} return n === 0 ? a1 : f(n - 1) + a1999; }} return String(f(100000)); }}"
    );
    let request = js_request(&code, "Z1", &[]);
    let error = quickjs().run(&request, &Limits::default()).unwrap_err();
    assert!(
        matches!(error, SandboxError::StackOverflow { .. }),
        "{error:?}"
    );
    let request = js_request("function Z1() { return 2; }", "Z1", &[]);
    assert!(quickjs().run(&request, &Limits::default()).is_ok());
}
