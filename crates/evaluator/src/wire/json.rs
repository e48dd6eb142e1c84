//! The JSON bodies: `{"reentrant", "zobject"}` and the executor form.

use zeval_zobject::{Map, Value};

use super::{ExecutorRequest, Request, WireError};

/// The most JSON structural tokens (about the values) a JSON body may hold, counted before
/// anything is parsed: a parsed value takes about 128 bytes a token, so the evaluator's
/// 2 MiB body of `[0,0,…]` (2 bytes a token) parsed into a million values, some 128 MiB, per
/// request. Requests are in normal form, whose densest text, strings of one character
/// (`{"Z1K1":"Z6","Z6K1":"a"}`, about 6 bytes a token), fills 2 MiB with some 350,000
/// (canonical text could be denser: a list of empty strings, 3 bytes a token, passes the
/// bound at about 1.5 MiB).
pub const MAX_REQUEST_TOKENS: usize = 512 * 1024;

/// Decodes a JSON body (nesting bounded by [`zeval_zobject::json::MAX_DEPTH`], values by
/// [`MAX_REQUEST_TOKENS`]).
///
/// An object with `zobject` is the full-call form, unless `zobject` holds the executor form
/// (any of `codingLanguage`, `codeString`, `functionName`, `functionArguments`, and no
/// `Z1K1`); an object with any of those fields is the executor form; a bare object with
/// `Z1K1` is taken as the Z7 itself.
pub fn decode(body: &[u8]) -> Result<Request, WireError> {
    decode_with_remaining_time(body).map(|(request, _)| request)
}

/// [`decode`], also returning a top-level `remainingTime` (seconds; in the executor form
/// it is also in the request). The full-call form carries one only when zeval's client sent
/// it: the original orchestrator sends the remaining time in Avro 0.0.4 only.
pub fn decode_with_remaining_time(body: &[u8]) -> Result<(Request, Option<f64>), WireError> {
    if zeval_zobject::json::structural_tokens(body, MAX_REQUEST_TOKENS) > MAX_REQUEST_TOKENS {
        return Err(WireError::Json(format!(
            "the body holds more than {MAX_REQUEST_TOKENS} JSON values"
        )));
    }
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
    match object.remove("zobject") {
        // The original unwraps `zobject` and then looks for `codingLanguage` in what it
        // holds, so the executor form is accepted there too (without `Z1K1`, which would
        // make it a ZObject).
        Some(Value::Object(inner)) if is_executor_form(&inner) && !inner.contains_key("Z1K1") => {
            return executor(inner, reentrant).map(|mut request| {
                request.remaining_time = request.remaining_time.or(remaining_time);
                let remaining_time = request.remaining_time;
                (Request::Executor(request), remaining_time)
            });
        }
        Some(zobject) => {
            return Ok((Request::FunctionCall { reentrant, zobject }, remaining_time));
        }
        None => {}
    }
    if is_executor_form(&object) {
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

/// Whether `object` has any field of the executor form.
fn is_executor_form(object: &Map<String, Value>) -> bool {
    [
        "codingLanguage",
        "codeString",
        "functionName",
        "functionArguments",
    ]
    .iter()
    .any(|key| object.contains_key(*key))
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
        signature: None,
        client: None,
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

    /// A body of more values than [`MAX_REQUEST_TOKENS`] is refused before it is parsed,
    /// while 2 MiB of the densest ZObject text is not.
    #[test]
    fn bodies_of_too_many_values_are_refused_unparsed() {
        let zeros = format!(
            r#"{{"zobject":{{"Z1K1":"Z7","K1":[{}0]}}}}"#,
            "0,".repeat(MAX_REQUEST_TOKENS)
        );
        let error = decode(zeros.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("more than 524288 JSON values"), "{error}");
        let string = r#"{"Z1K1":"Z6","Z6K1":"a"},"#;
        let dense = format!(
            r#"{{"zobject":{{"Z1K1":"Z7","K1":[{}0]}}}}"#,
            string.repeat(2 * 1024 * 1024 / string.len())
        );
        assert!(dense.len() > 2 * 1024 * 1024 - 64);
        assert!(decode(dense.as_bytes()).is_ok());
    }

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

    /// The original evaluator unwraps `zobject` first, so the executor form inside it is a
    /// request like the top-level one.
    #[test]
    fn the_executor_form_inside_zobject() {
        let body = br#"{"reentrant": false, "remainingTime": 9, "zobject": {"codingLanguage": "javascript",
            "codeString": "function Z1000(Z1000K1) { return Z1000K1; }", "functionName": "Z1000",
            "functionArguments": {"Z1000K1": {"Z1K1": "Z6", "Z6K1": "x"}}}}"#;
        let (request, remaining) = decode_with_remaining_time(body).unwrap();
        let Request::Executor(executor) = request else {
            panic!("not the executor form: {request:?}")
        };
        assert_eq!(executor.coding_language.as_deref(), Some("javascript"));
        assert_eq!(executor.function_name.as_deref(), Some("Z1000"));
        assert_eq!(executor.remaining_time, Some(9.0));
        assert_eq!(remaining, Some(9.0));
        assert_eq!(
            executor.function_arguments["Z1000K1"],
            serde_json::json!({"Z1K1": "Z6", "Z6K1": "x"})
        );
        // A Z7 that happens to have such a key stays a full call.
        let call = decode(br#"{"zobject": {"Z1K1": "Z7", "Z7K1": "Z801", "codeString": "x"}}"#);
        assert!(matches!(call, Ok(Request::FunctionCall { .. })), "{call:?}");
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
