//! Per-call cost of the QuickJS guest: snapshot vs no snapshot, pooled vs on-demand, fuel
//! metering on vs off. Needs `guests/build.sh` to have run.
//!
//! `cargo bench -p zeval-sandbox --bench instantiate`

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use zeval_sandbox::{Guest, Limits, PoolConfig, Sandbox, SandboxConfig};

/// A request in the protocol of `guests/quickjs/runner.js`: string (Z6) arguments.
fn request(code: &str, arguments: &[&str]) -> Vec<u8> {
    let arguments: serde_json::Map<String, serde_json::Value> = arguments
        .iter()
        .enumerate()
        .map(|(i, value)| {
            (
                format!("Z1K{}", i + 1),
                serde_json::json!({"Z1K1": "Z6", "Z6K1": value}),
            )
        })
        .collect();
    serde_json::json!({"codeString": code, "functionName": "Z1", "functionArguments": arguments})
        .to_string()
        .into_bytes()
}

fn guest(cache: &Path, file: &str, pooled: bool, fuel: bool) -> Guest {
    let mut config = SandboxConfig::new(cache);
    config.pool = PoolConfig {
        enabled: pooled,
        ..PoolConfig::default()
    };
    config.fuel_metering = fuel;
    let sandbox = Sandbox::new(config).expect("sandbox");
    let path = zeval_sandbox::default_guest_dir().join(file);
    let name = file.trim_end_matches(".wasm");
    sandbox
        .load_guest_file(name, &path)
        .expect("run guests/build.sh first")
}

fn calls(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("cache dir");
    let limits = Limits::default();
    let add = request(
        "function Z1(a, b) { return String(Number(a) + Number(b)); }",
        &["2", "3"],
    );
    let fib = request(
        "function Z1(n) { const f = (k) => (k < 2 ? k : f(k - 1) + f(k - 2)); return String(f(Number(n))); }",
        &["25"],
    );

    let mut group = c.benchmark_group("quickjs add");
    for (label, file, pooled, fuel) in [
        ("snapshot pooled fuel", "quickjs.wasm", true, true),
        ("snapshot pooled epoch-only", "quickjs.wasm", true, false),
        ("snapshot on-demand fuel", "quickjs.wasm", false, true),
        ("raw pooled fuel", "quickjs.raw.wasm", true, true),
        ("raw on-demand fuel", "quickjs.raw.wasm", false, true),
    ] {
        let guest = guest(cache.path(), file, pooled, fuel);
        group.bench_function(label, |b| b.iter(|| guest.run(&add, &limits).expect("add")));
    }
    group.finish();

    let mut group = c.benchmark_group("quickjs fib(25)");
    group.sample_size(20);
    for (label, fuel) in [
        ("snapshot pooled fuel", true),
        ("snapshot pooled epoch-only", false),
    ] {
        let guest = guest(cache.path(), "quickjs.wasm", true, fuel);
        group.bench_function(label, |b| b.iter(|| guest.run(&fib, &limits).expect("fib")));
    }
    group.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
