//! Integration tests of the orchestrator against an in-memory object source.

mod basics;
mod budget;
mod corners;
mod limits;
mod reentry;
mod trace;

use std::collections::HashMap;
use std::sync::Arc;

use zeval_orchestrator::{CallOptions, EvaluatorRegistry, Orchestrator, OrchestratorConfig};
use zeval_store::{ObjectSource, StoreError};
use zeval_zobject::Value;

/// Objects by ZID, given as canonical `Z2K2` values.
pub struct MapSource(pub HashMap<String, Value>);

impl ObjectSource for MapSource {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        Ok(zids
            .iter()
            .filter_map(|z| {
                let value = self.0.get(z)?.clone();
                Some((z.clone(), serde_json::json!({"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": z}, "Z2K2": value})))
            })
            .collect())
    }
}

/// An orchestrator over `objects` with no evaluators.
pub fn orchestrator(objects: &[(&str, Value)], config: OrchestratorConfig) -> Orchestrator {
    orchestrator_with(objects, EvaluatorRegistry::new(), config)
}

/// An orchestrator over `objects` with `evaluators`.
pub fn orchestrator_with(
    objects: &[(&str, Value)],
    evaluators: EvaluatorRegistry,
    config: OrchestratorConfig,
) -> Orchestrator {
    let map = objects
        .iter()
        .map(|(z, v)| (z.to_string(), v.clone()))
        .collect();
    Orchestrator::new(Arc::new(MapSource(map)), evaluators, config)
}

/// Runs a call with static validation on.
pub fn call(orchestrator: &Orchestrator, input: Value) -> Value {
    orchestrator.orchestrate(
        &input,
        &CallOptions {
            do_validate: true,
            ..CallOptions::default()
        },
    )
}

/// The error code of a canonical result, if any.
pub fn error_code(result: &Value) -> Option<String> {
    let error = zeval_zobject::build::get_metadata(&result["Z22K2"], "errors")?;
    error["Z5K1"].as_str().map(String::from)
}
