//! `function-call-checks.json`: the expectations the original keeps in JavaScript test code
//! for the `function_call/*.json` objects.

use std::path::Path;

use zeval_zobject::Value;
use zeval_zobject::error::wrap_in_evaluation_error;

use crate::manifest::read_json;
use crate::{ConformanceError, Report};

use super::compact;

const FILE: &str = "function-call-checks.json";

pub(super) fn run(report: &mut Report, suite_dir: &Path) -> Result<(), ConformanceError> {
    let path = suite_dir.join(FILE);
    let checks = read_json(&path)?;
    let checks = checks
        .as_array()
        .ok_or_else(|| super::format_error(&path, "not a list"))?;
    for (i, check) in checks.iter().enumerate() {
        let name = check
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let file = check
            .get("file")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let input = read_json(&suite_dir.join(file))?;
        let outcome = match name.as_str() {
            "wrapMessageInEvaluationError" => wrap_check(check, &input),
            _ => avro_check(check),
        };
        report.push(FILE, format!("{FILE}#{i}"), name, outcome);
    }
    Ok(())
}

fn wrap_check(check: &Value, call: &Value) -> Result<(), String> {
    let message = check
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let actual = wrap_in_evaluation_error(call.clone(), message);
    if actual == check["expected"] {
        Ok(())
    } else {
        Err(format!("got {}", compact(&actual)))
    }
}

/// The Avro checks: not run here (see docs/deviations.md); they fail with the reason.
fn avro_check(check: &Value) -> Result<(), String> {
    let what = check
        .get("check")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(format!(
        "the Avro wire encoding is not implemented in the schemata runner: {what}"
    ))
}
