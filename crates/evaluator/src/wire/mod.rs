//! The request bodies the original evaluator accepts (spec §3.1), decoded into a
//! [`Request`], and encoded again for the orchestrator's remote path (spec §2.7).
//!
//! - JSON `{"reentrant": false, "zobject": <normal Z7>}` (the legacy full-call form);
//! - JSON executor form `{codingLanguage?, codeString, functionName, functionArguments}`;
//! - Avro: a bare union (0.0.1), or one byte holding the length of a version string followed
//!   by that string (`0.0.2`, `0.0.3`, `0.0.4`) and the Avro record ([`avro`]).

pub mod avro;
pub mod json;

use zeval_zobject::{Map, Value};

/// A decoded evaluation request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A whole normal-form Z7 with its Z8 and implementation inline (JSON `zobject`, Avro
    /// 0.0.1/0.0.2). The language, code and arguments are taken out of it.
    FunctionCall {
        /// Whether the caller offered to answer callbacks (zeval never calls back).
        reentrant: bool,
        /// The Z7.
        zobject: Value,
    },
    /// The executor form (JSON, Avro 0.0.3/0.0.4).
    Executor(ExecutorRequest),
}

/// The executor form of a request: what the original service hands its executor, plus the
/// language that picks the executor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutorRequest {
    /// Whether the caller offered to answer callbacks.
    pub reentrant: bool,
    /// Seconds left on the caller's deadline (Avro 0.0.4, JSON `remainingTime`). The
    /// evaluator caps the call's wall time with it; zero or less answers the timeout Z558
    /// without running.
    pub remaining_time: Option<f64>,
    /// `Z61K1` of the implementation's language: a language string or ZID.
    pub coding_language: Option<String>,
    /// The implementation's code.
    pub code_string: Option<String>,
    /// The function's ZID, which the code must define.
    pub function_name: Option<String>,
    /// The arguments by full key, as normal ZObjects.
    pub function_arguments: Map<String, Value>,
    /// The function's argument and return types, as a compiled implementation's calling
    /// convention needs them (zeval only: read from the `Z8` of a whole function call; the
    /// executor form and Avro do not carry it).
    pub signature: Option<zeval_compiler::Signature>,
    /// Who the call is for (a digest of the orchestrator's per-client key): a client has one
    /// place in line for the call-time compiler ([`crate::Artifacts::artifact_for_call`]). No
    /// wire format carries it: an orchestrator in the same process sets it, a remote one
    /// sends it in [`crate::client::CLIENT_HEADER`]. `None` (`zeval call`, an orchestrator
    /// without the evaluator secret, the original's): not counted.
    pub client: Option<std::sync::Arc<str>>,
}

/// Why a body could not be decoded. The service answers these with a Z5 in a Z22.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    /// The body is neither JSON nor a supported Avro encoding.
    #[error("the request body is not a supported encoding: {0}")]
    Unrecognised(String),
    /// JSON that does not have one of the accepted shapes.
    #[error("the JSON request is malformed: {0}")]
    Json(String),
    /// Avro data that does not match its schema.
    #[error("the Avro request (version {version}) is malformed: {message}")]
    Avro {
        /// The version the body announced.
        version: String,
        /// What was wrong.
        message: String,
    },
}

/// The encodings a client may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`, `{"reentrant", "zobject"}`.
    Json,
    /// `application/octet-stream`, versioned Avro 0.0.2 (the whole Z7).
    Avro002,
    /// `application/octet-stream`, versioned Avro 0.0.4 (the executor form).
    Avro004,
}

impl Encoding {
    /// The HTTP content type of bodies in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Avro002 | Encoding::Avro004 => "application/octet-stream",
        }
    }
}

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(Encoding::Json),
            "avro-0.0.2" => Ok(Encoding::Avro002),
            "avro-0.0.4" => Ok(Encoding::Avro004),
            other => Err(format!(
                "unknown encoding {other:?} (json, avro-0.0.2 or avro-0.0.4)"
            )),
        }
    }
}

/// Decodes a request body. `content_type` is a hint: JSON content types are parsed as JSON;
/// anything else is tried as Avro first when it does not look like JSON text.
pub fn decode(body: &[u8], content_type: Option<&str>) -> Result<Request, WireError> {
    decode_with_remaining_time(body, content_type).map(|(request, _)| request)
}

/// [`decode`], also returning the caller's remaining time in seconds when the body
/// carries one: `remainingTime` of the executor form (JSON, Avro 0.0.4), or beside `zobject`
/// in the JSON full-call form ([`json::decode_with_remaining_time`]).
pub fn decode_with_remaining_time(
    body: &[u8],
    content_type: Option<&str>,
) -> Result<(Request, Option<f64>), WireError> {
    let declared_json = content_type.is_some_and(|t| t.contains("json"));
    let looks_like_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if declared_json || looks_like_json {
        return json::decode_with_remaining_time(body);
    }
    let request = avro::decode(body)?;
    let remaining_time = match &request {
        Request::Executor(executor) => executor.remaining_time,
        Request::FunctionCall { .. } => None,
    };
    Ok((request, remaining_time))
}

/// Builds the executor form of a whole Z7 as the original client does for Avro 0.0.3/0.0.4:
/// the first implementation's language and code, `Z8K5` as the function name, and every key
/// other than `Z1K1`/`Z7K1` as an argument. `None` when the Z7 lacks any of these.
pub fn executor_form(zobject: &Value, reentrant: bool) -> Option<ExecutorRequest> {
    let function = zobject.get("Z7K1")?;
    let implementation = first_implementation(function)?;
    let code = implementation.get("Z14K3")?;
    let language = code.get("Z16K1")?.get("Z61K1")?.get("Z6K1")?.as_str()?;
    let code_string = code.get("Z16K2")?.get("Z6K1")?.as_str()?;
    let function_name = function.get("Z8K5")?.get("Z9K1")?.as_str()?;
    let arguments = zobject
        .as_object()?
        .iter()
        .filter(|(key, _)| *key != "Z1K1" && *key != "Z7K1")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Some(ExecutorRequest {
        reentrant,
        remaining_time: None,
        coding_language: Some(language.to_owned()),
        code_string: Some(code_string.to_owned()),
        function_name: Some(function_name.to_owned()),
        function_arguments: arguments,
        signature: None,
        client: None,
    })
}

/// The first element of `Z8K4` (a normal typed list, or a benjamin array).
pub(crate) fn first_implementation(function: &Value) -> Option<&Value> {
    match function.get("Z8K4")? {
        Value::Array(items) => items.get(1),
        list => list.get("K1"),
    }
}

/// Encodes `request` in `encoding`. The Avro 0.0.4 form needs the executor fields, which a
/// [`Request::FunctionCall`] provides through [`executor_form`]; `None` when it cannot.
pub fn encode(request: &Request, encoding: Encoding) -> Option<Vec<u8>> {
    encode_with_remaining_time(request, encoding, None)
}

/// [`encode`], sending `remaining_time` (seconds) where the encoding has room for it:
/// the executor form (JSON, Avro 0.0.4; it replaces the request's own) and the JSON
/// full-call form (beside `zobject`). Avro 0.0.2 has no such field. An Avro 0.0.4 body built
/// from a full call without one sends 15, as the original's tests do.
pub fn encode_with_remaining_time(
    request: &Request,
    encoding: Encoding,
    remaining_time: Option<f64>,
) -> Option<Vec<u8>> {
    let with_time = |executor: &ExecutorRequest| ExecutorRequest {
        remaining_time: remaining_time.or(executor.remaining_time),
        ..executor.clone()
    };
    match (encoding, request) {
        (Encoding::Json, Request::FunctionCall { reentrant, zobject }) => {
            Some(json::encode_call(*reentrant, zobject, remaining_time))
        }
        (Encoding::Json, Request::Executor(executor)) => {
            Some(json::encode_executor(&with_time(executor)))
        }
        (Encoding::Avro002, Request::FunctionCall { reentrant, zobject }) => {
            avro::encode_v002(*reentrant, zobject).ok()
        }
        (Encoding::Avro002, Request::Executor(_)) => None,
        (Encoding::Avro004, Request::FunctionCall { reentrant, zobject }) => {
            let mut executor = executor_form(zobject, *reentrant)?;
            executor.remaining_time = remaining_time.or(Some(15.0));
            avro::encode_v004(&executor).ok()
        }
        (Encoding::Avro004, Request::Executor(executor)) => {
            avro::encode_v004(&with_time(executor)).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base64(text: &str) -> Vec<u8> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut count = 0;
        let mut out = Vec::new();
        for byte in text.bytes().filter(|b| *b != b'=') {
            let value = alphabet.iter().position(|a| *a == byte).unwrap() as u32;
            bits = (bits << 6) | value;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
            }
        }
        out
    }

    /// Every body the original's tests POSTed decodes to the request they describe, and our
    /// encoder reproduces the Avro 0.0.4 bodies byte for byte (key order included).
    #[test]
    fn the_suite_bodies_decode() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/wikifunctions/evaluator/cases.json"
        );
        let cases: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut checked = 0;
        for case in &cases {
            let bodies = &case["posted_bodies"];
            let json_body = bodies["json"]["body_text"].as_str().unwrap();
            let Request::FunctionCall { zobject, .. } =
                decode(json_body.as_bytes(), Some("application/json")).unwrap()
            else {
                panic!("json body is not a full call")
            };
            let v002 = base64(bodies["avro-0.0.2"]["body_base64"].as_str().unwrap());
            assert_eq!(
                decode(&v002, Some("application/octet-stream")).unwrap(),
                Request::FunctionCall {
                    reentrant: false,
                    zobject: zobject.clone()
                }
            );
            if let Some(v004) = bodies.get("avro-0.0.4") {
                let body = base64(v004["body_base64"].as_str().unwrap());
                let Request::Executor(executor) = decode(&body, None).unwrap() else {
                    panic!()
                };
                let decoded = &v004["decoded"];
                assert_eq!(
                    executor.code_string.as_deref(),
                    decoded["codeString"].as_str()
                );
                assert_eq!(
                    executor.coding_language.as_deref(),
                    decoded["codingLanguage"].as_str()
                );
                assert_eq!(
                    Value::Object(executor.function_arguments.clone()),
                    decoded["functionArguments"]
                );
                let ours = encode(
                    &Request::FunctionCall {
                        reentrant: false,
                        zobject,
                    },
                    Encoding::Avro004,
                )
                .unwrap();
                assert_eq!(decode(&ours, None).unwrap(), Request::Executor(executor));
                assert_eq!(ours, body, "{}", case["name"]);
            }
            checked += 1;
        }
        assert_eq!(checked, cases.len());
        assert!(checked >= 20);
    }
}
