use std::sync::OnceLock;
use std::time::Duration;

use zeval_sandbox::{Guest, Limits, Sandbox, SandboxConfig};

/// One sandbox per test binary, with its module cache in a temporary directory.
pub(crate) fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<(tempfile::TempDir, Sandbox)> = OnceLock::new();
    &SANDBOX
        .get_or_init(|| {
            let cache = tempfile::tempdir().expect("temporary cache dir");
            let sandbox = Sandbox::new(SandboxConfig::new(cache.path())).expect("sandbox");
            (cache, sandbox)
        })
        .1
}

/// A guest from WAT text (wasmtime's `wat` feature compiles it).
pub(crate) fn wat_guest(name: &str, wat: &str) -> Guest {
    sandbox()
        .load_guest(name, wat.as_bytes())
        .expect("load WAT guest")
}

/// The snapshotted QuickJS guest; the tests need `guests/build.sh` to have run.
pub(crate) fn quickjs() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| {
        let path = zeval_sandbox::default_guest_dir().join("quickjs.wasm");
        assert!(
            path.exists(),
            "{} is missing: run guests/build.sh (or set ZEVAL_GUEST_DIR)",
            path.display()
        );
        sandbox()
            .load_guest_file("quickjs", &path)
            .expect("load quickjs")
    })
}

/// A request in the protocol of `guests/quickjs/runner.js`: string arguments (normal-form
/// Z6) keyed `<function>K1`, `<function>K2`, ...
pub(crate) fn js_request(code: &str, function: &str, arguments: &[&str]) -> Vec<u8> {
    let arguments: serde_json::Map<String, serde_json::Value> = arguments
        .iter()
        .enumerate()
        .map(|(i, value)| {
            (
                format!("{function}K{}", i + 1),
                serde_json::json!({"Z1K1": "Z6", "Z6K1": value}),
            )
        })
        .collect();
    serde_json::json!({
        "codeString": code,
        "functionName": function,
        "functionArguments": arguments,
    })
    .to_string()
    .into_bytes()
}

/// The runner's response: `Ok(string result)` or `Err(error message)`.
pub(crate) fn js_response(stdout: &[u8]) -> Result<String, String> {
    let response: serde_json::Value = serde_json::from_slice(stdout).expect("JSON on stdout");
    match (&response["result"]["Z6K1"], &response["error"]) {
        (serde_json::Value::String(result), _) => Ok(result.clone()),
        (_, serde_json::Value::String(error)) => Err(error.clone()),
        _ => panic!("unexpected response {response}"),
    }
}

/// Runs JS `code`, calling `function` with string `arguments`; returns its string result.
pub(crate) fn run_js(code: &str, function: &str, arguments: &[&str], limits: &Limits) -> String {
    let output = quickjs()
        .run(&js_request(code, function, arguments), limits)
        .expect("JS call");
    js_response(&output.stdout).expect("no JS error")
}

pub(crate) fn limits_with_wall_time(wall_time: Duration) -> Limits {
    Limits {
        wall_time,
        ..Limits::default()
    }
}
