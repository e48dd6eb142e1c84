use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use zeval_sandbox::{Guest, Limits, Sandbox, SandboxConfig};

/// The machine's CPUs, as the tests of this binary (which run in parallel) share them.
static CPUS: RwLock<()> = RwLock::new(());

/// Held, shared, by a test that asserts how long a call took: no test that loads the CPUs on
/// purpose runs meanwhile, and the QuickJS guests are compiled before (the first test to use
/// one compiles it, on every CPU, at normal priority). A call's thread is lowered to
/// `SCHED_IDLE` after 10 ms, and beside busy threads of normal priority it may not run again
/// until long past its deadline: a JS loop's 300 ms limit took 687–812 ms in CI when the
/// order of the tests shifted.
pub(crate) fn timed() -> RwLockReadGuard<'static, ()> {
    quickjs();
    metered_quickjs();
    CPUS.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held, alone, by a test that loads the CPUs on purpose.
pub(crate) fn loading_the_cpus() -> RwLockWriteGuard<'static, ()> {
    CPUS.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The module cache of this test binary's sandboxes: a temporary directory.
fn cache_dir() -> &'static std::path::Path {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| tempfile::tempdir().expect("temporary cache dir"))
        .path()
}

/// One sandbox per test binary, with the default configuration.
pub(crate) fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new(SandboxConfig::new(cache_dir())).expect("sandbox"))
}

/// The snapshotted QuickJS guest in a sandbox that counts fuel
/// (`SandboxConfig::fuel_metering`, off by default).
pub(crate) fn metered_quickjs() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| {
        let config = SandboxConfig {
            fuel_metering: true,
            ..SandboxConfig::new(cache_dir())
        };
        Sandbox::new(config)
            .expect("metered sandbox")
            .load_guest_file("quickjs", &quickjs_path())
            .expect("load quickjs")
    })
}

fn quickjs_path() -> std::path::PathBuf {
    let path = zeval_sandbox::default_guest_dir().join("quickjs.wasm");
    assert!(
        path.exists(),
        "{} is missing: run guests/build.sh (or set ZEVAL_GUEST_DIR)",
        path.display()
    );
    path
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
        sandbox()
            .load_guest_file("quickjs", &quickjs_path())
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
