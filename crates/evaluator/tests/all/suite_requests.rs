//! Whole requests through `evaluate_body`: the metadata map and its order.

use zeval_evaluator::{Evaluator, EvaluatorConfig, Family, Variant};
use zeval_zobject::build::{get_metadata, map_entries, string_value};

use crate::{evaluator, request};

#[test]
fn success_carries_the_metadata() {
    let code = "function Z1000(a, b) { return String(Number(a) + Number(b)); }";
    let z22 = evaluator().evaluate(request(Family::JavaScript, code, &["5", "8"]));
    assert_eq!(z22["Z22K1"]["Z6K1"], "13");
    let meta = &z22["Z22K2"];
    for key in [
        "evaluationMemoryUsage",
        "evaluationCpuUsage",
        "evaluationStartTime",
        "evaluationEndTime",
        "evaluationDuration",
        "evaluationHostname",
        "executionMemoryUsage",
        "executionCpuUsage",
        "programmingLanguageVersion",
    ] {
        assert!(get_metadata(meta, key).is_some(), "no {key} in {meta}");
    }
    assert!(
        get_metadata(meta, "executionFuelConsumed").is_none(),
        "fuel is counted only when metering is on: {meta}"
    );
    let version = get_metadata(meta, "programmingLanguageVersion")
        .and_then(string_value)
        .unwrap();
    assert!(version.contains("(wasmtime 48.0.8)"), "{version}");
    assert!(get_metadata(meta, "errors").is_none());
}

/// `"<n> ms"` (evaluation) or `"<n> μs"` (execution) as microseconds.
fn micros(meta: &serde_json::Value, key: &str) -> f64 {
    let text = get_metadata(meta, key)
        .and_then(string_value)
        .unwrap_or_else(|| panic!("no {key} in {meta}"));
    let (number, unit) = text.split_once(' ').unwrap();
    let number: f64 = number.parse().unwrap();
    match unit {
        "ms" => number * 1000.0,
        "μs" => number,
        _ => panic!("{key}: {text}"),
    }
}

#[test]
fn the_evaluation_uses_at_least_the_cpu_its_execution_did_and_not_much_more() {
    // Some tens of ms of CPU in the guest. The evaluation's CPU time is taken from the
    // guest's reading of the clock as it ended, and the wall time since: a mix-up of clocks
    // would show here as a figure far from the execution's.
    let code = "function Z1000(a) { let x = 0; for (let i = 0; i < 3e6; i++) { x += i % 7; } \
                return String(x > 0); }";
    let z22 = evaluator().evaluate(request(Family::JavaScript, code, &["1"]));
    assert_eq!(z22["Z22K1"]["Z6K1"], "true", "{z22}");
    let meta = &z22["Z22K2"];
    let execution = micros(meta, "executionCpuUsage");
    let evaluation = micros(meta, "evaluationCpuUsage");
    assert!(execution >= 5_000.0, "{meta}");
    assert!(
        evaluation >= execution && evaluation <= execution + 20_000.0,
        "evaluation {evaluation} µs against execution {execution} µs"
    );
}

#[test]
fn with_fuel_metering_on_the_fuel_burnt_is_reported() {
    let mut config = EvaluatorConfig {
        variant: Variant::JavascriptAll,
        ..EvaluatorConfig::default()
    };
    config.sandbox.fuel_metering = true;
    let metered = Evaluator::new(config).unwrap_or_else(|e| panic!("{e}"));
    let code = "function Z1000(a, b) { return String(Number(a) + Number(b)); }";
    let z22 = metered.evaluate(request(Family::JavaScript, code, &["5", "8"]));
    assert_eq!(z22["Z22K1"]["Z6K1"], "13");
    let fuel = get_metadata(&z22["Z22K2"], "executionFuelConsumed")
        .and_then(string_value)
        .unwrap_or_else(|| panic!("no executionFuelConsumed in {}", z22["Z22K2"]));
    assert!(fuel.parse::<u64>().is_ok_and(|fuel| fuel > 1_000), "{fuel}");
}

#[test]
fn errors_are_the_first_entry() {
    let code = "def Z1000():\n    raise ValueError('Hello, this is a good day to die')";
    let z22 = evaluator().evaluate(request(Family::Python, code, &[]));
    let entries = map_entries(&z22["Z22K2"]).unwrap();
    assert_eq!(string_value(entries[0].0), Some("errors"));
    assert_eq!(
        entries[0].1["Z5K2"]["Z6K1"],
        "Hello, this is a good day to die"
    );
    assert!(entries.len() > 6);
}

#[test]
fn a_bad_body_is_a_z5_not_a_crash() {
    let z22 = evaluator().evaluate_body(b"\x05garbage-and-more", None);
    let error = zeval_zobject::build::envelope_error(&z22).expect("an error");
    assert!(
        error["Z5K2"]["Z6K1"]
            .as_str()
            .unwrap()
            .contains("Unable to read the request")
    );
}

#[test]
fn the_metadata_names_the_instance_and_the_calls_own_memory() {
    let code = "function Z1000(a, b) { return String(Number(a) + Number(b)); }";
    let z22 = evaluator().evaluate(request(Family::JavaScript, code, &["5", "8"]));
    let meta = &z22["Z22K2"];
    let text = |key: &str| {
        get_metadata(meta, key)
            .and_then(string_value)
            .unwrap_or_else(|| panic!("no {key}"))
            .to_owned()
    };
    let host = text("evaluationHostname");
    assert_eq!(host, zeval_evaluator::default_instance_name());
    assert_eq!(host, evaluator().instance_name());
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert_ne!(host, machine.trim(), "the machine's host name");
    // The call's guest memory (a few MiB for QuickJS), not the test process's RSS, which
    // holds both interpreters' compiled code and is far larger.
    assert_eq!(text("evaluationMemoryUsage"), text("executionMemoryUsage"));
    let peak: u64 = text("executionPeakLinearMemory")
        .trim_end_matches(" bytes")
        .parse()
        .unwrap();
    assert_eq!(
        text("evaluationMemoryUsage"),
        zeval_zobject::metadata_format::mebibytes(peak)
    );
    // A request that runs nothing used nothing.
    let z22 = evaluator().evaluate_body(b"\x05garbage-and-more", None);
    assert_eq!(
        get_metadata(&z22["Z22K2"], "evaluationMemoryUsage").and_then(string_value),
        Some("0.00 MiB")
    );
}

/// The original evaluator unwraps `zobject` and reads `codingLanguage` from it, so the
/// executor form inside `zobject` runs like the top-level one (JavaScript and Python).
#[test]
fn the_executor_form_inside_zobject_runs() {
    for (language, code) in [
        (
            "javascript",
            "function Z1000( Z1000K1, Z1000K2 ) { return String( Number( Z1000K1 ) * Number( Z1000K2 ) ); }",
        ),
        (
            "python-3",
            "def Z1000(Z1000K1, Z1000K2):\n    return str(int(Z1000K1) * int(Z1000K2))",
        ),
    ] {
        let body = serde_json::json!({
            "reentrant": false,
            "zobject": {
                "codingLanguage": language,
                "codeString": code,
                "functionName": "Z1000",
                "functionArguments": {
                    "Z1000K1": {"Z1K1": "Z6", "Z6K1": "6"},
                    "Z1000K2": {"Z1K1": "Z6", "Z6K1": "7"}
                }
            }
        });
        let z22 = evaluator().evaluate_body(
            serde_json::to_string(&body).unwrap().as_bytes(),
            Some("application/json"),
        );
        assert_eq!(z22["Z22K1"]["Z6K1"], "42", "{language}: {z22}");
    }
}
