use serde_json::json;
use zeval_orchestrator::OrchestratorConfig;

use crate::{call, error_code, orchestrator};

#[test]
fn builtin_call_returns_canonical_value_and_metadata() {
    let o = orchestrator(&[], OrchestratorConfig::default());
    let result = call(
        &o,
        json!({"Z1K1": "Z7", "Z7K1": "Z866", "Z866K1": "a", "Z866K2": "a"}),
    );
    assert_eq!(result["Z22K1"], json!({"Z1K1": "Z40", "Z40K1": "Z41"}));
    let meta = &result["Z22K2"];
    for key in [
        "implementationId",
        "implementationType",
        "orchestrationDuration",
        "orchestrationHostname",
    ] {
        assert!(
            zeval_zobject::build::get_metadata(meta, key).is_some(),
            "{key}"
        );
    }
}

#[test]
fn composition_with_closure() {
    // Z10001(b) = Z10002(b)(): Z10002 returns a function literal that closes over its argument.
    let inner = json!({"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z40", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10003", "Z14K2": {"Z1K1": "Z18", "Z18K1": "Z10002K1"}}],
        "Z8K5": "Z10003"});
    let maker = json!({"Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z40", "Z17K2": "Z10002K1", "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z8", "Z8K3": ["Z20"], "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10002", "Z14K2": inner}], "Z8K5": "Z10002"});
    let o = orchestrator(&[("Z10002", maker)], OrchestratorConfig::default());
    let result = call(
        &o,
        json!({"Z1K1": "Z7", "Z7K1": {"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": {"Z1K1": "Z40", "Z40K1": "Z42"}}}),
    );
    assert_eq!(
        result["Z22K1"],
        json!({"Z1K1": "Z40", "Z40K1": "Z42"}),
        "{result}"
    );
}

#[test]
fn not_a_function_call_is_z539_and_missing_zid_is_z504() {
    let o = orchestrator(&[], OrchestratorConfig::default());
    assert_eq!(
        error_code(&call(&o, json!("Hello"))).as_deref(),
        Some("Z539")
    );
    let result = call(
        &o,
        json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "Z12345"}),
    );
    assert_eq!(error_code(&result).as_deref(), Some("Z504"), "{result}");
}
