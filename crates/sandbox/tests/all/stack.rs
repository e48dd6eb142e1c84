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
        // QuickJS's own stack check fires first and the runner reports a JS error...
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
