//! The JSON bodies: `{"reentrant", "zobject"}` and the executor form.

use zeval_zobject::{Map, Value};

use super::{ExecutorRequest, Request, WireError};

/// Decodes a JSON body (nesting bounded by [`zeval_zobject::json::MAX_DEPTH`]).
///
/// An object with `zobject` is the full-call form; one with any of `codingLanguage`,
/// `codeString`, `functionName`, `functionArguments` is the executor form; a bare object with
/// `Z1K1` is taken as the Z7 itself.
pub fn decode(body: &[u8]) -> Result<Request, WireError> {
    decode_with_remaining_time(body).map(|(request, _)| request)
}

/// [`decode`], also returning a top-level `remainingTime` (seconds; in the executor form
/// it is also in the request). The full-call form carries one only when zeval's client sent
/// it: the original orchestrator sends the remaining time in Avro 0.0.4 only.
pub fn decode_with_remaining_time(body: &[u8]) -> Result<(Request, Option<f64>), WireError> {
    let value =
        zeval_zobject::json::parse_slice(body).map_err(|e| WireError::Json(e.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(WireError::Json("the body is not a JSON object".to_owned()));
    };
    let reentrant = object
        .get("reentrant")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let remaining_time = object.get("remainingTime").and_then(Value::as_f64);
    if let Some(zobject) = object.remove("zobject") {
        return Ok((Request::FunctionCall { reentrant, zobject }, remaining_time));
    }
    let executor_keys = [
        "codingLanguage",
        "codeString",
        "functionName",
        "functionArguments",
    ];
    if executor_keys.iter().any(|key| object.contains_key(*key)) {
        return executor(object, reentrant)
            .map(|request| (Request::Executor(request), remaining_time));
    }
    if object.contains_key("Z1K1") {
        let zobject = Value::Object(object);
        return Ok((Request::FunctionCall { reentrant, zobject }, None));
    }
    Err(WireError::Json(
        "expected {\"zobject\": …} or {codingLanguage, codeString, functionName, functionArguments}"
            .to_owned(),
    ))
}

fn executor(mut object: Map<String, Value>, reentrant: bool) -> Result<ExecutorRequest, WireError> {
    let mut text = |key: &str| -> Result<Option<String>, WireError> {
        match object.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(WireError::Json(format!(
                "{key} must be a string, not {other}"
            ))),
        }
    };
    let coding_language = text("codingLanguage")?;
    let code_string = text("codeString")?;
    let function_name = text("functionName")?;
    let function_arguments = match object.remove("functionArguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments,
        Some(_) => {
            return Err(WireError::Json(
                "functionArguments must be an object".to_owned(),
            ));
        }
    };
    let remaining_time = object.get("remainingTime").and_then(Value::as_f64);
    Ok(ExecutorRequest {
        reentrant,
        remaining_time,
        coding_language,
        code_string,
        function_name,
        function_arguments,
    })
}

/// The full-call form as JSON, with `remainingTime` (seconds) beside `zobject` when
/// given (see [`decode_with_remaining_time`]).
pub fn encode_call(reentrant: bool, zobject: &Value, remaining_time: Option<f64>) -> Vec<u8> {
    let mut object = Map::new();
    object.insert("reentrant".into(), Value::Bool(reentrant));
    if let Some(time) = remaining_time {
        object.insert("remainingTime".into(), serde_json::json!(time));
    }
    object.insert("zobject".into(), zobject.clone());
    serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
}

/// The executor form as JSON (fields that are `None` are left out).
pub fn encode_executor(request: &ExecutorRequest) -> Vec<u8> {
    let mut object = Map::new();
    object.insert("reentrant".into(), Value::Bool(request.reentrant));
    if let Some(time) = request.remaining_time {
        object.insert("remainingTime".into(), serde_json::json!(time));
    }
    let fields = [
        ("codingLanguage", &request.coding_language),
        ("codeString", &request.code_string),
        ("functionName", &request.function_name),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            object.insert(key.into(), Value::String(value.clone()));
        }
    }
    object.insert(
        "functionArguments".into(),
        Value::Object(request.function_arguments.clone()),
    );
    serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_call_and_executor_forms() {
        let call = decode(br#"{"reentrant":false,"zobject":{"Z1K1":"Z7"}}"#).unwrap();
        assert!(matches!(
            call,
            Request::FunctionCall {
                reentrant: false,
                ..
            }
        ));
        let executor =
            decode(br#"{"codeString":"x","functionName":"Z1","functionArguments":{}}"#).unwrap();
        let Request::Executor(executor) = executor else {
            panic!("not the executor form")
        };
        assert_eq!(executor.code_string.as_deref(), Some("x"));
        assert_eq!(executor.coding_language, None);
    }

    #[test]
    fn the_remaining_time_travels_in_both_forms() {
        let zobject = serde_json::json!({"Z1K1": "Z7", "Z7K1": "Z801"});
        let body = encode_call(false, &zobject, Some(1234.5));
        let (request, remaining) = decode_with_remaining_time(&body).unwrap();
        assert_eq!(remaining, Some(1234.5));
        assert_eq!(
            request,
            Request::FunctionCall {
                reentrant: false,
                zobject
            }
        );
        let body = br#"{"codeString":"x","functionArguments":{},"remainingTime":20}"#;
        let (request, remaining) = decode_with_remaining_time(body).unwrap();
        assert_eq!(remaining, Some(20.0));
        let Request::Executor(executor) = request else {
            panic!("not the executor form")
        };
        assert_eq!(executor.remaining_time, Some(20.0));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            &b"[]"[..],
            b"{\"codeString\": 5}",
            b"{}",
            b"{",
            b"{\"functionArguments\": 1}",
        ] {
            assert!(decode(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn executor_form_round_trips() {
        let request = ExecutorRequest {
            coding_language: Some("javascript".into()),
            code_string: Some("function Z1(){}".into()),
            function_name: Some("Z1".into()),
            ..ExecutorRequest::default()
        };
        assert_eq!(
            decode(&encode_executor(&request)).unwrap(),
            Request::Executor(request)
        );
    }
}
