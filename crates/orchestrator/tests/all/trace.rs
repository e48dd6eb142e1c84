//! `orchestrate_traced`: the objects a request read (its cache dependencies) and whether its
//! answer may be cached.

use std::time::Duration;

use serde_json::json;
use zeval_orchestrator::{CallOptions, OrchestratorConfig, Outcome};

use crate::orchestrator;

/// Z10002(x) = Z10001(x) = Z10000(x) = Z6 identity through compositions, two levels down.
fn chain() -> Vec<(&'static str, serde_json::Value)> {
    let function = |zid: &str, body: serde_json::Value| {
        json!({"Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("{zid}K1"),
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"],
            "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": zid, "Z14K2": body}],
            "Z8K5": zid})
    };
    let arg = |zid: &str| json!({"Z1K1": "Z18", "Z18K1": format!("{zid}K1")});
    vec![
        ("Z10000", function("Z10000", arg("Z10000"))),
        (
            "Z10001",
            function(
                "Z10001",
                json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": arg("Z10001")}),
            ),
        ),
        (
            "Z10002",
            function(
                "Z10002",
                json!({"Z1K1": "Z7", "Z7K1": "Z10001", "Z10001K1": arg("Z10002")}),
            ),
        ),
    ]
}

#[test]
fn every_object_read_is_a_dependency_down_to_the_deepest_function() {
    let o = orchestrator(&chain(), OrchestratorConfig::default());
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": "abc"});
    let (answer, trace) = o.orchestrate_traced(&call, &CallOptions::default());
    assert_eq!(answer["Z22K1"], "abc", "{answer}");
    for zid in ["Z10000", "Z10001", "Z10002"] {
        assert!(trace.dependencies.iter().any(|d| d == zid), "{trace:?}");
    }
    assert_eq!(trace.outcome, Outcome::Success);
    assert!(trace.cacheable());
    let mut sorted = trace.dependencies.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, trace.dependencies, "sorted, each once");
    // The untraced API answers the same.
    assert_eq!(
        o.orchestrate(&call, &CallOptions::default())["Z22K1"],
        answer["Z22K1"]
    );
}

#[test]
fn a_missing_object_is_a_dependency_and_an_error_outcome() {
    let o = orchestrator(&[], OrchestratorConfig::default());
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z12345", "Z12345K1": "x"});
    let (_, trace) = o.orchestrate_traced(&call, &CallOptions::default());
    assert_eq!(trace.outcome, Outcome::Error);
    // Creating Z12345 later must invalidate what this answer says.
    assert!(
        trace.dependencies.iter().any(|d| d == "Z12345"),
        "{trace:?}"
    );
}

#[test]
fn nested_requests_through_z823_add_their_reads() {
    let o = orchestrator(&chain(), OrchestratorConfig::default());
    let inner = json!({"Z1K1": "Z7", "Z7K1": "Z10001", "Z10001K1": "x"});
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z823", "Z823K1": {"Z1K1": "Z99", "Z99K1": inner}});
    let (answer, trace) = o.orchestrate_traced(&call, &CallOptions::default());
    assert!(
        trace.dependencies.iter().any(|d| d == "Z10000"),
        "{answer} {trace:?}"
    );
}

#[test]
fn a_nondeterministic_builtin_makes_the_answer_uncacheable() {
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z866", "Z866K1": "a", "Z866K2": "a"});
    let plain = orchestrator(&[], OrchestratorConfig::default());
    let (_, trace) = plain.orchestrate_traced(&call, &CallOptions::default());
    assert!(
        trace.cacheable(),
        "no built-in is nondeterministic by default"
    );
    // Mark String equality's implementation as if it were one.
    let marked =
        orchestrator(&[], OrchestratorConfig::default()).with_nondeterministic_builtins(["Z966"]);
    let (answer, trace) = marked.orchestrate_traced(&call, &CallOptions::default());
    assert_eq!(answer["Z22K1"]["Z40K1"], "Z41", "{answer}");
    assert_eq!(trace.nondeterministic.as_deref(), Some("Z966"));
    assert!(!trace.cacheable());
}

#[test]
fn a_timeout_is_reported_as_such() {
    let o = orchestrator(&chain(), OrchestratorConfig::default());
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": "abc"});
    let options = CallOptions {
        timeout: Some(Duration::ZERO),
        ..CallOptions::default()
    };
    let (_, trace) = o.orchestrate_traced(&call, &options);
    assert_eq!(trace.outcome, Outcome::Timeout);
}
