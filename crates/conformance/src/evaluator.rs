//! The evaluator suite (`../shared/wikifunctions/evaluator`, README there):
//! - `cases.json`: every case is POSTed, in every encoding it lists, to the real evaluator
//!   HTTP router in process (`tower::ServiceExt::oneshot`), once per deployment variant the
//!   case names; each post is one result, id `cases/<index>/<variant>/<encoding>`;
//! - `executor-cases.json`: every executor request is fed to the executor of its language,
//!   id `executor/<index>`.
//!
//! The guests come from `zeval_sandbox::default_guest_dir` (`$ZEVAL_GUEST_DIR`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request as HttpRequest, header};
use tower::ServiceExt;
use zeval_evaluator::wire::{self, Encoding, ExecutorRequest, Request};
use zeval_evaluator::{Evaluator, EvaluatorConfig, Family, Variant};
use zeval_zobject::Value;
use zeval_zobject::build::{get_metadata, is_map, is_void, z9};

use crate::manifest::{read_json, resolve_file_ref};
use crate::{ConformanceError, Report};

/// Where the original's tests POSTed.
const PATH: &str = "/wikifunctions.org/v1/evaluate/";
/// Largest response body read back from the router.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Runs both parts of the suite in `suite_dir`; `cases_override` replaces `cases.json`
/// (file references still resolve against `suite_dir`).
pub fn run(suite_dir: &Path, cases_override: Option<&Path>) -> Result<Report, ConformanceError> {
    let config = EvaluatorConfig::default();
    let guest_dir = config.guest_dir.clone();
    let evaluator = Evaluator::new(config).map_err(|error| ConformanceError::Format {
        path: guest_dir,
        message: error.to_string(),
    })?;
    run_with(&evaluator, suite_dir, cases_override)
}

/// [`run`] with an evaluator already built (its variant must be omnibus).
pub fn run_with(
    evaluator: &Evaluator,
    suite_dir: &Path,
    cases_override: Option<&Path>,
) -> Result<Report, ConformanceError> {
    let cases_path = cases_override
        .map(Path::to_path_buf)
        .unwrap_or_else(|| suite_dir.join("cases.json"));
    let cases = read_json(&cases_path)?;
    let executor_path = suite_dir.join("executor-cases.json");
    let executor_cases = read_json(&executor_path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|source| ConformanceError::Io {
            path: PathBuf::from("<tokio runtime>"),
            source,
        })?;

    let mut report = Report::new("evaluator");
    let cases = as_cases(&cases, &cases_path)?;
    for variant in Variant::ALL {
        let router =
            zeval_server::evaluator_api::router(Arc::new(evaluator.restricted_to(variant)));
        let group = format!("cases.json ({variant})");
        for case in cases {
            let listed = case["evaluator_variants"]
                .as_array()
                .is_some_and(|variants| {
                    variants.iter().any(|v| v.as_str() == Some(variant.name()))
                });
            if !listed {
                continue;
            }
            let index = case["index"].as_u64().unwrap_or_default();
            let name = case["name"].as_str().unwrap_or_default();
            let encodings = case["encodings"].as_array().cloned().unwrap_or_default();
            for encoding in encodings.iter().filter_map(Value::as_str) {
                let id = format!("cases/{index}/{variant}/{encoding}");
                let outcome = runtime.block_on(post_case(&router, case, encoding, suite_dir));
                report.push(&group, id, format!("{name}: {encoding}"), outcome);
            }
        }
    }
    for case in as_cases(&executor_cases, &executor_path)? {
        let index = case["index"].as_u64().unwrap_or_default();
        let name = case["name"].as_str().unwrap_or_default();
        let outcome = executor_case(evaluator, case, suite_dir);
        report.push(
            "executor-cases.json",
            format!("executor/{index}"),
            name.to_owned(),
            outcome,
        );
    }
    Ok(report)
}

fn as_cases<'a>(value: &'a Value, path: &Path) -> Result<&'a Vec<Value>, ConformanceError> {
    value.as_array().ok_or_else(|| ConformanceError::Format {
        path: path.to_path_buf(),
        message: "expected an array of cases".to_owned(),
    })
}

/// The body the original POSTed for `encoding` (stored in the case), or our encoding of
/// the request when the case does not store one.
fn body_for(case: &Value, encoding: &str, suite_dir: &Path) -> Result<(Vec<u8>, String), String> {
    if let Some(posted) = case.get("posted_bodies").and_then(|b| b.get(encoding)) {
        let content_type = posted["content_type"]
            .as_str()
            .unwrap_or("application/json")
            .to_owned();
        if let Some(text) = posted.get("body_text").and_then(Value::as_str) {
            return Ok((text.as_bytes().to_vec(), content_type));
        }
        if let Some(encoded) = posted.get("body_base64").and_then(Value::as_str) {
            return Ok((base64_decode(encoded)?, content_type));
        }
    }
    let zobject = resolve_file_ref(&case["request"], suite_dir).map_err(|e| e.to_string())?;
    let encoding: Encoding = encoding.parse()?;
    let request = Request::FunctionCall {
        reentrant: false,
        zobject,
    };
    let body = wire::encode(&request, encoding)
        .ok_or_else(|| format!("the request cannot be encoded as {encoding:?}"))?;
    Ok((body, encoding.content_type().to_owned()))
}

async fn post_case(
    router: &axum::Router,
    case: &Value,
    encoding: &str,
    suite_dir: &Path,
) -> Result<(), String> {
    let (body, content_type) = body_for(case, encoding, suite_dir)?;
    let request = HttpRequest::post(PATH)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    let response = router
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| e.to_string())?;
    if response.status() != 200 {
        return Err(format!("HTTP status {}", response.status()));
    }
    let json_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.contains("application/json"));
    if !json_type {
        return Err("the response is not application/json".to_owned());
    }
    let bytes = axum::body::to_bytes(response.into_body(), MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    let z22 = zeval_zobject::json::parse_slice(&bytes).map_err(|e| e.to_string())?;
    let expected = resolve_file_ref(&case["expected"], suite_dir).map_err(|e| e.to_string())?;
    if expected.is_null() {
        check_error_phrase(&z22, case["expected_error_contains"].as_str().unwrap_or(""))
    } else {
        check_expected(&z22, &expected)
    }
}

/// `getError` as the README defines it.
fn get_error(z22: &Value) -> Value {
    let meta = &z22["Z22K2"];
    if is_map(meta) {
        get_metadata(meta, "errors")
            .cloned()
            .unwrap_or_else(|| z9("Z24"))
    } else {
        meta.clone()
    }
}

fn check_expected(z22: &Value, expected: &Value) -> Result<(), String> {
    if z22["Z22K1"] != expected["Z22K1"] {
        return Err(format!(
            "Z22K1 is {} instead of {}",
            z22["Z22K1"], expected["Z22K1"]
        ));
    }
    let (error, expected_error) = (get_error(z22), get_error(expected));
    if error != expected_error {
        return Err(format!("the error is {error} instead of {expected_error}"));
    }
    check_void_or_map(z22)
}

fn check_void_or_map(z22: &Value) -> Result<(), String> {
    let meta = &z22["Z22K2"];
    if is_void(meta) || is_map(meta) {
        Ok(())
    } else {
        Err(format!("Z22K2 is neither void nor a map: {meta}"))
    }
}

fn check_error_phrase(z22: &Value, phrase: &str) -> Result<(), String> {
    if !is_void(&z22["Z22K1"]) {
        return Err(format!("Z22K1 is {} instead of void", z22["Z22K1"]));
    }
    let message = z22["Z22K2"]["K1"]["K1"]["K2"]["Z5K2"]["Z6K1"]
        .as_str()
        .ok_or_else(|| {
            format!(
                "no error message in the first metadata entry: {}",
                z22["Z22K2"]
            )
        })?;
    if message.contains(phrase) {
        Ok(())
    } else {
        Err(format!("{message:?} does not contain {phrase:?}"))
    }
}

fn executor_case(evaluator: &Evaluator, case: &Value, suite_dir: &Path) -> Result<(), String> {
    let family = match case["language"].as_str() {
        Some("javascript") => Family::JavaScript,
        Some("python3") => Family::Python,
        other => return Err(format!("unknown language {other:?}")),
    };
    let input = resolve_file_ref(&case["input"], suite_dir).map_err(|e| e.to_string())?;
    let expected = resolve_file_ref(&case["expected"], suite_dir).map_err(|e| e.to_string())?;
    let text = |key: &str| input.get(key).and_then(Value::as_str).map(str::to_owned);
    let request = ExecutorRequest {
        code_string: text("codeString"),
        function_name: text("functionName"),
        function_arguments: input
            .get("functionArguments")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        ..ExecutorRequest::default()
    };
    let z22 = evaluator.execute(family, &request).z22;
    let checks = case["checks"].as_array().cloned().unwrap_or_default();
    for check in checks.iter().filter_map(Value::as_str) {
        match check {
            "equal_without_Z1K1" => {
                let (actual, wanted) = (without_z1k1(&z22), without_z1k1(&expected));
                if actual != wanted {
                    return Err(format!("got {actual}, expected {wanted}"));
                }
            }
            "Z22K2_void_or_map" => check_void_or_map(&z22)?,
            other => return Err(format!("unknown check {other}")),
        }
    }
    Ok(())
}

fn without_z1k1(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(k, _)| *k != "Z1K1")
                .map(|(k, v)| (k.clone(), without_z1k1(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_z1k1).collect()),
        other => other.clone(),
    }
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
    {
        let value = ALPHABET
            .iter()
            .position(|a| *a == byte)
            .ok_or("invalid base64")? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode("BTAuMC40").unwrap(), b"\x050.0.4");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("*").is_err());
    }

    #[test]
    fn z1k1_is_stripped_everywhere() {
        let value = serde_json::json!({"Z1K1": "x", "a": {"Z1K1": "y", "b": "c"}});
        assert_eq!(without_z1k1(&value), serde_json::json!({"a": {"b": "c"}}));
    }
}
