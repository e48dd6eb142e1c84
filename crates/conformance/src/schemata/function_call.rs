//! `function-call-checks.json`: the expectations the original keeps in JavaScript test code
//! for the `function_call/*.json` objects.

use std::path::Path;

use zeval_zobject::Value;
use zeval_zobject::error::wrap_in_evaluation_error;

use zeval_evaluator::Request;
use zeval_evaluator::wire::avro::decode;
use zeval_evaluator::wire::executor_form;

use crate::manifest::{read_json, resolve_file_ref};
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
            _ => on_big_stack(|| avro_check(check, &input, suite_dir)),
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

/// Stack for the Avro checks: `too_big.json` nests a few hundred levels, and both
/// `apache-avro` and the converters recurse several frames per level.
const AVRO_STACK_BYTES: usize = 256 * 1024 * 1024;

fn on_big_stack(check: impl FnOnce() -> Result<(), String> + Send) -> Result<(), String> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(AVRO_STACK_BYTES)
            .spawn_scoped(scope, check)
            .map_err(|e| format!("could not start the check thread: {e}"))?
            .join()
            .unwrap_or_else(|_| Err("the check panicked".to_string()))
    })
}

/// The Avro checks: encoded here ([`super::avro`]), decoded by the evaluator's wire code.
fn avro_check(check: &Value, input: &Value, suite_dir: &Path) -> Result<(), String> {
    match check.get("version").and_then(Value::as_str) {
        None => {
            let body = super::avro::encode_v001(input)?;
            let name = check
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.contains("small") {
                let json = serde_json::to_string(input).map_err(|e| e.to_string())?;
                let json_length = json.encode_utf16().count();
                if body.len() as f64 * 2.5 < json_length as f64 {
                    Ok(())
                } else {
                    Err(format!(
                        "{} bytes of Avro for {json_length} of JSON",
                        body.len()
                    ))
                }
            } else {
                match decode(&body).map_err(|e| e.to_string())? {
                    Request::FunctionCall { zobject, .. } if &zobject == input => Ok(()),
                    other => Err(format!("decoded {}", compact(&request_json(&other)))),
                }
            }
        }
        Some(version) => {
            let wrapped = &check["wrapped_request"];
            let zobject =
                resolve_file_ref(&wrapped["zobject"], suite_dir).map_err(|e| e.to_string())?;
            let reentrant = wrapped["reentrant"].as_bool().unwrap_or(false);
            let mut request = executor_form(&zobject, reentrant)
                .ok_or("the call has no implementation, code, language or Z8K5")?;
            request.remaining_time = wrapped.get("remainingTime").and_then(Value::as_f64);
            let body = super::avro::encode_executor(version, &request)?;
            let decoded = request_json(&decode(&body).map_err(|e| e.to_string())?);
            if decoded == check["expected_decoded"] {
                Ok(())
            } else {
                Err(format!("decoded {}", compact(&decoded)))
            }
        }
    }
}

/// A decoded request as the JSON object the original's decoder returns.
fn request_json(request: &Request) -> Value {
    match request {
        Request::FunctionCall { reentrant, zobject } => {
            serde_json::json!({"reentrant": reentrant, "zobject": zobject})
        }
        Request::Executor(e) => {
            let mut out = serde_json::json!({"reentrant": e.reentrant});
            if let Some(time) = e.remaining_time {
                out["remainingTime"] = Value::from(time);
            }
            out["codingLanguage"] = Value::from(e.coding_language.clone());
            out["codeString"] = Value::from(e.code_string.clone());
            out["functionName"] = Value::from(e.function_name.clone());
            out["functionArguments"] = Value::Object(e.function_arguments.clone());
            out
        }
    }
}
