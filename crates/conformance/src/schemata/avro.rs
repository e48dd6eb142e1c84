//! A small Avro encoder for the function-call checks: the ZObject union of
//! `schemata/data/avro` as a bare 0.0.1 body, and the versioned 0.0.3/0.0.4 executor
//! records. Decoding is the evaluator's own (`zeval_evaluator::wire::avro::decode`), so the
//! checks exercise the wire format the service really reads.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use zeval_evaluator::ExecutorRequest;
use zeval_zobject::Value;
use zeval_zobject::build::ref_zid;

/// The four ZObject records, in the branch order of a top-level value: Z6, Z9, Z99, Z1.
/// Inside `Z1.valueMap` the order is Z1, Z6, Z9, Z99.
const UNION: &str = r#"[
  {"type": "record", "namespace": "ztypes", "name": "Z6", "fields": [{"name": "Z6K1", "type": "string"}]},
  {"type": "record", "namespace": "ztypes", "name": "Z9", "fields": [{"name": "Z9K1", "type": "string"}]},
  {"type": "record", "namespace": "ztypes", "name": "Z99", "fields": [{"name": "Z99K1", "type": "string"}]},
  {"type": "record", "namespace": "ztypes", "name": "Z1", "fields": [
    {"name": "valueMap", "type": {"type": "map", "values": ["ztypes.Z1", "ztypes.Z6", "ztypes.Z9", "ztypes.Z99"]}}
  ]}
]"#;

fn executor_schema(remaining_time: bool) -> String {
    let time = if remaining_time {
        r#"{"name": "remainingTime", "type": "double"},"#
    } else {
        ""
    };
    format!(
        r#"{{"type": "record", "namespace": "ztypes", "name": "ZOBJECT", "fields": [
            {{"name": "reentrant", "type": "boolean"}}, {time}
            {{"name": "codingLanguage", "type": "string"}},
            {{"name": "codeString", "type": "string"}},
            {{"name": "functionName", "type": "string"}},
            {{"name": "functionArguments", "type": {{"type": "map", "values": {UNION}}}}}]}}"#
    )
}

/// A normal ZObject as a branch of the union (`inner`: inside a `valueMap`).
fn to_union(value: &Value, inner: bool) -> Result<Avro, String> {
    let (z6, z9, z99, z1) = if inner { (1, 2, 3, 0) } else { (0, 1, 2, 3) };
    let map = value
        .as_object()
        .ok_or_else(|| format!("not a normal ZObject: {value}"))?;
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let record = |name: &str, s: String| Avro::Record(vec![(name.to_string(), Avro::String(s))]);
    let (index, branch) = match map.get("Z1K1") {
        Some(t) if !t.is_string() && ref_zid(t) == Some("Z99") => {
            let quoted = map.get("Z99K1").map(Value::to_string).unwrap_or_default();
            (z99, record("Z99K1", quoted))
        }
        Some(Value::String(t)) if t == "Z9" => (z9, record("Z9K1", text("Z9K1"))),
        Some(Value::String(t)) if t == "Z6" => (z6, record("Z6K1", text("Z6K1"))),
        _ => {
            let mut entries = HashMap::with_capacity(map.len());
            for (key, member) in map {
                entries.insert(key.clone(), to_union(member, true)?);
            }
            (
                z1,
                Avro::Record(vec![("valueMap".to_string(), Avro::Map(entries))]),
            )
        }
    };
    Ok(Avro::Union(index, Box::new(branch)))
}

fn datum(schema: &str, value: Avro) -> Result<Vec<u8>, String> {
    let schema = Schema::parse_str(schema).map_err(|e| e.to_string())?;
    apache_avro::to_avro_datum(&schema, value).map_err(|e| e.to_string())
}

/// The bare 0.0.1 encoding of a normal ZObject (no version prefix).
pub(super) fn encode_v001(zobject: &Value) -> Result<Vec<u8>, String> {
    datum(UNION, to_union(zobject, false)?)
}

/// The versioned executor record: one byte with the version's length, the version
/// (`0.0.3`, or `0.0.4` with `remainingTime`), then the record.
pub(super) fn encode_executor(version: &str, request: &ExecutorRequest) -> Result<Vec<u8>, String> {
    let with_time = version == "0.0.4";
    let text = |v: &Option<String>| Avro::String(v.clone().unwrap_or_default());
    let mut arguments = HashMap::new();
    for (key, value) in &request.function_arguments {
        arguments.insert(key.clone(), to_union(value, false)?);
    }
    let mut fields = vec![("reentrant".to_string(), Avro::Boolean(request.reentrant))];
    if with_time {
        fields.push((
            "remainingTime".into(),
            Avro::Double(request.remaining_time.unwrap_or(0.0)),
        ));
    }
    fields.extend([
        ("codingLanguage".to_string(), text(&request.coding_language)),
        ("codeString".to_string(), text(&request.code_string)),
        ("functionName".to_string(), text(&request.function_name)),
        ("functionArguments".to_string(), Avro::Map(arguments)),
    ]);
    let data = datum(&executor_schema(with_time), Avro::Record(fields))?;
    let mut body = vec![u8::try_from(version.len()).map_err(|e| e.to_string())?];
    body.extend_from_slice(version.as_bytes());
    body.extend(data);
    Ok(body)
}
