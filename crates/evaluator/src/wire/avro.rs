//! The Avro encodings of evaluation requests (spec §2.7), with the schemas of
//! `function-schemata/data/avro` and the `apache-avro` crate.
//!
//! A ZObject value is a union of four records. The trap: the branch order differs by place.
//! - `[Z6, Z9, Z99, Z1]` for a top-level value (the `zobject` field, `functionArguments`
//!   values, and the bare 0.0.1 body);
//! - `[Z1, Z6, Z9, Z99]` inside `Z1.valueMap` (`Z1.avsc`).
//!
//! Encoding of a normal value, tested in this order: a Z99 quote → `Z99 {Z99K1: JSON text}`;
//! a Z9 → `Z9`; a Z6 → `Z6`; anything else → `Z1` with every key, `Z1K1` included.
//!
//! Limits: nesting is checked by [`depth::check`] before `apache-avro` decodes (its decoder
//! recurses), against [`zeval_zobject::json::MAX_DEPTH`] levels of `Z1`; the decode then
//! runs on a stack big enough for that depth.

mod depth;

use std::collections::HashMap;
use std::sync::OnceLock;

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use zeval_zobject::{Map, Value};

use super::{ExecutorRequest, Request, WireError};

/// The union of the four ZObject records, defined in top-level order.
const ZOBJECT_UNION: &str = r#"[
  {"type": "record", "namespace": "ztypes", "name": "Z6", "fields": [{"name": "Z6K1", "type": "string"}]},
  {"type": "record", "namespace": "ztypes", "name": "Z9", "fields": [{"name": "Z9K1", "type": "string"}]},
  {"type": "record", "namespace": "ztypes", "name": "Z99", "fields": [{"name": "Z99K1", "type": "string"}]},
  {"type": "record", "namespace": "ztypes", "name": "Z1", "fields": [
    {"name": "valueMap", "type": {"type": "map", "values": ["ztypes.Z1", "ztypes.Z6", "ztypes.Z9", "ztypes.Z99"]}}
  ]}
]"#;

/// Top-level union branch indices.
const TOP_Z6: u32 = 0;
const TOP_Z9: u32 = 1;
const TOP_Z99: u32 = 2;
const TOP_Z1: u32 = 3;
/// `valueMap` union branch indices.
const INNER_Z1: u32 = 0;
const INNER_Z6: u32 = 1;
const INNER_Z9: u32 = 2;
const INNER_Z99: u32 = 3;

/// Stack given to the decoder and converters for deeply nested requests: `apache-avro`
/// recurses a few frames per `Z1` level.
const DEEP_STACK_BYTES: usize = 256 * 1024 * 1024;
/// Below this many `Z1` levels the caller's stack is enough.
const SHALLOW_DEPTH: usize = 64;

fn record_schema(fields: &str) -> String {
    format!(
        r#"{{"type": "record", "namespace": "ztypes", "name": "ZOBJECT", "fields": [{fields}]}}"#
    )
}

fn schema(version: &str) -> Option<&'static Schema> {
    static V001: OnceLock<Schema> = OnceLock::new();
    static V002: OnceLock<Schema> = OnceLock::new();
    static V003: OnceLock<Schema> = OnceLock::new();
    static V004: OnceLock<Schema> = OnceLock::new();
    let parse = |text: String| Schema::parse_str(&text).expect("the built-in Avro schemas parse");
    let executor_fields = |remaining_time: bool| {
        format!(
            r#"{{"name": "reentrant", "type": "boolean"}},{}
               {{"name": "codingLanguage", "type": "string"}},
               {{"name": "codeString", "type": "string"}},
               {{"name": "functionName", "type": "string"}},
               {{"name": "functionArguments", "type": {{"type": "map", "values": {ZOBJECT_UNION}}}}}"#,
            if remaining_time {
                r#"{"name": "remainingTime", "type": "double"},"#
            } else {
                ""
            }
        )
    };
    Some(match version {
        "0.0.1" => V001.get_or_init(|| parse(ZOBJECT_UNION.to_owned())),
        "0.0.2" => V002.get_or_init(|| {
            parse(record_schema(&format!(
                r#"{{"name": "reentrant", "type": "boolean"}}, {{"name": "zobject", "type": {ZOBJECT_UNION}}}"#
            )))
        }),
        "0.0.3" => V003.get_or_init(|| parse(record_schema(&executor_fields(false)))),
        "0.0.4" => V004.get_or_init(|| parse(record_schema(&executor_fields(true)))),
        _ => return None,
    })
}

/// Decodes an Avro body: versioned (one length byte, the version, the record) or the bare
/// 0.0.1 union.
pub fn decode(body: &[u8]) -> Result<Request, WireError> {
    let (version, data) = split_version(body);
    let schema = schema(version).ok_or_else(|| {
        WireError::Unrecognised(format!("unknown serialization version {version:?}"))
    })?;
    let error = |message: String| WireError::Avro {
        version: version.to_owned(),
        message,
    };
    let levels = depth::check(version, data, zeval_zobject::json::MAX_DEPTH).map_err(error)?;
    let decode = || -> Result<Request, String> {
        let mut reader = data;
        let value =
            apache_avro::from_avro_datum(schema, &mut reader, None).map_err(|e| e.to_string())?;
        if !reader.is_empty() {
            return Err(format!("{} bytes left after the record", reader.len()));
        }
        to_request(version, value)
    };
    let result = if levels < SHALLOW_DEPTH {
        decode()
    } else {
        stacker::grow(DEEP_STACK_BYTES, decode)
    };
    result.map_err(error)
}

/// `("0.0.4", record bytes)` for a versioned body; `("0.0.1", body)` otherwise.
fn split_version(body: &[u8]) -> (&str, &[u8]) {
    if let Some((&length, rest)) = body.split_first() {
        let length = usize::from(length);
        if (5..=16).contains(&length)
            && rest.len() >= length
            && let Ok(version) = std::str::from_utf8(&rest[..length])
            && version.starts_with("0.0.")
        {
            return (version, &rest[length..]);
        }
    }
    ("0.0.1", body)
}

fn to_request(version: &str, value: Avro) -> Result<Request, String> {
    if version == "0.0.1" {
        return Ok(Request::FunctionCall {
            reentrant: false,
            zobject: from_union(value, false)?,
        });
    }
    let Avro::Record(fields) = value else {
        return Err("not a record".to_owned());
    };
    let mut fields: HashMap<String, Avro> = fields.into_iter().collect();
    let reentrant = matches!(fields.remove("reentrant"), Some(Avro::Boolean(true)));
    if version == "0.0.2" {
        let zobject = fields.remove("zobject").ok_or("no zobject field")?;
        return Ok(Request::FunctionCall {
            reentrant,
            zobject: from_union(zobject, false)?,
        });
    }
    let mut text = |key: &str| match fields.remove(key) {
        Some(Avro::String(s)) => Ok(s),
        _ => Err(format!("no string field {key}")),
    };
    let coding_language = text("codingLanguage")?;
    let code_string = text("codeString")?;
    let function_name = text("functionName")?;
    let remaining_time = match fields.remove("remainingTime") {
        Some(Avro::Double(time)) => Some(time),
        _ => None,
    };
    let Some(Avro::Map(arguments)) = fields.remove("functionArguments") else {
        return Err("no functionArguments map".to_owned());
    };
    let mut function_arguments = Map::new();
    for (key, value) in sorted(arguments) {
        function_arguments.insert(key, from_union(value, false)?);
    }
    Ok(Request::Executor(ExecutorRequest {
        reentrant,
        remaining_time,
        coding_language: Some(coding_language),
        code_string: Some(code_string),
        function_name: Some(function_name),
        function_arguments,
    }))
}

/// Map entries in a stable order (`apache-avro` decodes maps into a `HashMap`): `Z1K1`
/// first, then by key.
fn sorted(map: HashMap<String, Avro>) -> Vec<(String, Avro)> {
    let mut entries: Vec<_> = map.into_iter().collect();
    entries.sort_by(|(a, _), (b, _)| (a != "Z1K1", a).cmp(&(b != "Z1K1", b)));
    entries
}

fn from_union(value: Avro, inner: bool) -> Result<Value, String> {
    let Avro::Union(index, value) = value else {
        return Err("expected a union".to_owned());
    };
    let (z6, z9, z99, z1) = if inner {
        (INNER_Z6, INNER_Z9, INNER_Z99, INNER_Z1)
    } else {
        (TOP_Z6, TOP_Z9, TOP_Z99, TOP_Z1)
    };
    let Avro::Record(mut fields) = *value else {
        return Err("expected a record".to_owned());
    };
    let Some((_, field)) = fields.pop() else {
        return Err("empty record".to_owned());
    };
    match (index, field) {
        (i, Avro::String(s)) if i == z6 => Ok(zeval_zobject::build::z6(s)),
        (i, Avro::String(s)) if i == z9 => Ok(zeval_zobject::build::z9(s)),
        (i, Avro::String(text)) if i == z99 => {
            let quoted = zeval_zobject::json::parse(&text).map_err(|e| format!("Z99K1: {e}"))?;
            Ok(zeval_zobject::error::quote(quoted))
        }
        (i, Avro::Map(entries)) if i == z1 => {
            let mut object = Map::new();
            for (key, value) in sorted(entries) {
                object.insert(key, from_union(value, true)?);
            }
            Ok(Value::Object(object))
        }
        (i, _) => Err(format!(
            "union branch {i} does not hold the expected record"
        )),
    }
}

/// Why a value cannot be put into the Avro union.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Arrays, numbers, booleans and null have no branch.
    #[error("not a normal-form ZObject: {0}")]
    NotNormal(String),
    /// The crate refused the value.
    #[error("{0}")]
    Avro(String),
}

fn to_union(value: &Value, inner: bool) -> Result<Avro, EncodeError> {
    let (z6, z9, z99, z1) = if inner {
        (INNER_Z6, INNER_Z9, INNER_Z99, INNER_Z1)
    } else {
        (TOP_Z6, TOP_Z9, TOP_Z99, TOP_Z1)
    };
    let record =
        |name: &str, text: String| Avro::Record(vec![(name.to_owned(), Avro::String(text))]);
    let branch = |index: u32, value: Avro| Ok(Avro::Union(index, Box::new(value)));
    let object = match value {
        Value::Object(object) => object,
        Value::String(s) => return branch(z6, record("Z6K1", s.clone())),
        other => return Err(EncodeError::NotNormal(other.to_string())),
    };
    let type_zid = object.get("Z1K1").and_then(zeval_zobject::build::ref_zid);
    if type_zid == Some("Z99")
        && object.get("Z1K1").is_some_and(Value::is_object)
        && let Some(quoted) = object.get("Z99K1")
    {
        return branch(z99, record("Z99K1", quoted.to_string()));
    }
    let raw_type = object.get("Z1K1").and_then(Value::as_str);
    if raw_type == Some("Z9")
        && let Some(zid) = object.get("Z9K1").and_then(Value::as_str)
    {
        return branch(z9, record("Z9K1", zid.to_owned()));
    }
    if raw_type == Some("Z6")
        && let Some(text) = object.get("Z6K1").and_then(Value::as_str)
    {
        return branch(z6, record("Z6K1", text.to_owned()));
    }
    let mut entries = HashMap::with_capacity(object.len());
    for (key, value) in object {
        entries.insert(key.clone(), to_union(value, true)?);
    }
    branch(
        z1,
        Avro::Record(vec![("valueMap".to_owned(), Avro::Map(entries))]),
    )
}

fn versioned(version: &str, schema: &Schema, value: Avro) -> Result<Vec<u8>, EncodeError> {
    let data =
        apache_avro::to_avro_datum(schema, value).map_err(|e| EncodeError::Avro(e.to_string()))?;
    let mut body = Vec::with_capacity(1 + version.len() + data.len());
    body.push(version.len() as u8);
    body.extend_from_slice(version.as_bytes());
    body.extend_from_slice(&data);
    Ok(body)
}

/// Encodes `{reentrant, zobject}` as versioned Avro 0.0.2.
pub fn encode_v002(reentrant: bool, zobject: &Value) -> Result<Vec<u8>, EncodeError> {
    let schema = schema("0.0.2").expect("built-in schema");
    let record = Avro::Record(vec![
        ("reentrant".to_owned(), Avro::Boolean(reentrant)),
        ("zobject".to_owned(), to_union(zobject, false)?),
    ]);
    versioned("0.0.2", schema, record)
}

/// Encodes the executor form as versioned Avro 0.0.4 (missing strings are sent empty, and a
/// missing remaining time as 0).
pub fn encode_v004(request: &ExecutorRequest) -> Result<Vec<u8>, EncodeError> {
    let schema = schema("0.0.4").expect("built-in schema");
    let text = |value: &Option<String>| Avro::String(value.clone().unwrap_or_default());
    let mut arguments = HashMap::with_capacity(request.function_arguments.len());
    for (key, value) in &request.function_arguments {
        arguments.insert(key.clone(), to_union(value, false)?);
    }
    let record = Avro::Record(vec![
        ("reentrant".to_owned(), Avro::Boolean(request.reentrant)),
        (
            "remainingTime".to_owned(),
            Avro::Double(request.remaining_time.unwrap_or(0.0)),
        ),
        ("codingLanguage".to_owned(), text(&request.coding_language)),
        ("codeString".to_owned(), text(&request.code_string)),
        ("functionName".to_owned(), text(&request.function_name)),
        ("functionArguments".to_owned(), Avro::Map(arguments)),
    ]);
    versioned("0.0.4", schema, record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn add_call() -> Value {
        json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"}, "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z801"},
               "Z801K1": {"Z1K1": "Z6", "Z6K1": "5"},
               "Z801K2": {"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z99"}, "Z99K1": {"Z1K1": "Z6", "Z6K1": "q"}}})
    }

    #[test]
    fn v002_round_trips() {
        let body = encode_v002(false, &add_call()).unwrap();
        assert_eq!(&body[..6], b"\x050.0.2");
        assert_eq!(
            decode(&body).unwrap(),
            Request::FunctionCall {
                reentrant: false,
                zobject: add_call()
            }
        );
    }

    #[test]
    fn v004_round_trips() {
        let mut arguments = Map::new();
        arguments.insert("Z1000K1".into(), json!({"Z1K1": "Z6", "Z6K1": "5"}));
        arguments.insert("Z1000K2".into(), add_call());
        let request = ExecutorRequest {
            reentrant: false,
            remaining_time: Some(15.0),
            coding_language: Some("python-3".into()),
            code_string: Some("def Z1000(Z1000K1, Z1000K2): return Z1000K1".into()),
            function_name: Some("Z1000".into()),
            function_arguments: arguments,
        };
        let body = encode_v004(&request).unwrap();
        assert_eq!(decode(&body).unwrap(), Request::Executor(request));
    }

    #[test]
    fn bare_union_is_v001() {
        let schema = schema("0.0.1").unwrap();
        let data =
            apache_avro::to_avro_datum(schema, to_union(&add_call(), false).unwrap()).unwrap();
        assert_eq!(
            decode(&data).unwrap(),
            Request::FunctionCall {
                reentrant: false,
                zobject: add_call()
            }
        );
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let body = encode_v002(false, &add_call()).unwrap();
        assert!(decode(&body[..body.len() - 3]).is_err());
        assert!(decode(b"\x050.0.9xyz").is_err());
        assert!(decode(&[0xff; 64]).is_err());
    }

    #[test]
    fn hostile_nesting_is_refused_without_overflow() {
        // 0.0.2: reentrant=false, then Z1 { valueMap: { "a": Z1 { … } } } a million deep.
        let mut body = b"\x050.0.2\x00".to_vec();
        body.push(0x06); // top-level branch 3 (Z1), zigzag
        for _ in 0..1_000_000 {
            body.extend_from_slice(&[0x02, 0x02, b'a', 0x00]); // 1 entry, key "a", inner Z1
        }
        let error = decode(&body).unwrap_err();
        assert!(error.to_string().contains("deeper"), "{error}");
    }
}
