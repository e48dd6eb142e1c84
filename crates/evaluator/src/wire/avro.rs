//! The Avro encodings of evaluation requests (spec §2.7), with the schemas of
//! `function-schemata/data/avro`, read and written by hand: the schemas are fixed and small,
//! and a generic Avro library decodes maps into hash maps, which loses the order of their
//! entries.
//!
//! A ZObject value is a union of four records. The trap: the branch order differs by place.
//! - `[Z6, Z9, Z99, Z1]` for a top-level value (the `zobject` field, `functionArguments`
//!   values, and the bare 0.0.1 body);
//! - `[Z1, Z6, Z9, Z99]` inside `Z1.valueMap` (`Z1.avsc`).
//!
//! Encoding of a normal value, tested in this order: a Z99 quote → `Z99 {Z99K1: JSON text}`;
//! a Z9 → `Z9`; a Z6 → `Z6`; anything else → `Z1` with every key, `Z1K1` included.
//!
//! Maps (`valueMap`, `functionArguments`) are written in the key order of the normal-form
//! value, which is the order of its JSON text, and read back in the order they were sent
//! (as the original's decoder builds a JavaScript object), so a value crosses the wire
//! unchanged, key order included.
//!
//! Limits: nesting is checked by `depth::check` before decoding (the decoder recurses),
//! against [`zeval_zobject::json::MAX_DEPTH`] levels of `Z1`; the decode then runs on a
//! stack big enough for that depth.

mod depth;

use zeval_zobject::{Map, Value};

use super::{ExecutorRequest, Request, WireError};

/// Top-level union branch indices.
const TOP_Z6: i64 = 0;
const TOP_Z9: i64 = 1;
const TOP_Z99: i64 = 2;
const TOP_Z1: i64 = 3;
/// `valueMap` union branch indices.
const INNER_Z1: i64 = 0;
const INNER_Z6: i64 = 1;
const INNER_Z9: i64 = 2;
const INNER_Z99: i64 = 3;

/// The versions whose records this module reads.
const VERSIONS: [&str; 4] = ["0.0.1", "0.0.2", "0.0.3", "0.0.4"];

/// Stack given to the decoder for deeply nested requests: it recurses once per `Z1` level.
const DEEP_STACK_BYTES: usize = 256 * 1024 * 1024;
/// Below this many `Z1` levels the caller's stack is enough.
const SHALLOW_DEPTH: usize = 64;

/// The union branches of one place (top level or inside `valueMap`).
struct Branches {
    z6: i64,
    z9: i64,
    z99: i64,
    z1: i64,
}

fn branches(inner: bool) -> Branches {
    if inner {
        Branches {
            z6: INNER_Z6,
            z9: INNER_Z9,
            z99: INNER_Z99,
            z1: INNER_Z1,
        }
    } else {
        Branches {
            z6: TOP_Z6,
            z9: TOP_Z9,
            z99: TOP_Z99,
            z1: TOP_Z1,
        }
    }
}

/// Decodes an Avro body: versioned (one length byte, the version, the record) or the bare
/// 0.0.1 union.
pub fn decode(body: &[u8]) -> Result<Request, WireError> {
    let (version, data) = split_version(body);
    if !VERSIONS.contains(&version) {
        return Err(WireError::Unrecognised(format!(
            "unknown serialization version {version:?}"
        )));
    }
    let error = |message: String| WireError::Avro {
        version: version.to_owned(),
        message,
    };
    let levels = depth::check(version, data, zeval_zobject::json::MAX_DEPTH).map_err(error)?;
    let decode = || -> Result<Request, String> {
        let mut reader = Reader {
            data,
            pos: 0,
            quoted_tokens_left: super::json::MAX_REQUEST_TOKENS,
        };
        let request = reader.request(version)?;
        let left = data.len() - reader.pos;
        if left > 0 {
            return Err(format!("{left} bytes left after the record"));
        }
        Ok(request)
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

/// Reads Avro binary data of the request schemas.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// JSON values the request may still make, all of them together: its maps' entries,
    /// the objects its strings and references become, and what its `Z99K1` quotes hold
    /// ([`super::json::MAX_REQUEST_TOKENS`], as for a JSON body). Only the quotes were
    /// counted until 2026-12-06: a 4-byte entry becomes a whole `Z6` object, so a 2 MiB
    /// body made some 520,000 objects (and a deep copy of them) where JSON allows fewer.
    quoted_tokens_left: usize,
}

impl Reader<'_> {
    /// Takes `n` of the request's JSON values.
    fn values(&mut self, n: usize) -> Result<(), String> {
        self.quoted_tokens_left = self.quoted_tokens_left.checked_sub(n).ok_or_else(|| {
            format!(
                "the request holds more than {} JSON values",
                super::json::MAX_REQUEST_TOKENS
            )
        })?;
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], String> {
        if self.data.len() - self.pos < n {
            return Err("the data ends early".to_owned());
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn long(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.bytes(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err("a varint is longer than 10 bytes".to_owned())
    }

    fn boolean(&mut self) -> Result<bool, String> {
        match self.bytes(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("{other} is not a boolean")),
        }
    }

    fn double(&mut self) -> Result<f64, String> {
        let bytes: [u8; 8] = self.bytes(8)?.try_into().expect("eight bytes");
        Ok(f64::from_le_bytes(bytes))
    }

    fn string(&mut self) -> Result<String, String> {
        let length = usize::try_from(self.long()?).map_err(|_| "a negative string length")?;
        let bytes = self.bytes(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8".to_owned())
    }

    fn request(&mut self, version: &str) -> Result<Request, String> {
        if version == "0.0.1" {
            return Ok(Request::FunctionCall {
                reentrant: false,
                zobject: self.value(false)?,
            });
        }
        let reentrant = self.boolean()?;
        if version == "0.0.2" {
            return Ok(Request::FunctionCall {
                reentrant,
                zobject: self.value(false)?,
            });
        }
        let remaining_time = if version == "0.0.4" {
            Some(self.double()?)
        } else {
            None
        };
        let coding_language = self.string()?;
        let code_string = self.string()?;
        let function_name = self.string()?;
        let function_arguments = self.map(false)?;
        Ok(Request::Executor(ExecutorRequest {
            reentrant,
            remaining_time,
            coding_language: Some(coding_language),
            code_string: Some(code_string),
            function_name: Some(function_name),
            function_arguments,
            signature: None,
            client: None,
        }))
    }

    /// A map of union values, its entries in the order sent (a key sent twice keeps its
    /// first place and its last value, as in a JavaScript object).
    fn map(&mut self, inner: bool) -> Result<Map<String, Value>, String> {
        let mut map = Map::new();
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(map);
            }
            if count < 0 {
                self.long()?; // the block's byte size
            }
            for _ in 0..count.unsigned_abs() {
                self.values(1)?;
                let key = self.string()?;
                let value = self.value(inner)?;
                map.insert(key, value);
            }
        }
    }

    fn value(&mut self, inner: bool) -> Result<Value, String> {
        let branch = self.long()?;
        let Branches { z6, z9, z99, z1 } = branches(inner);
        if branch == z1 {
            self.values(1)?;
            return self.map(true).map(Value::Object);
        }
        if ![z6, z9, z99].contains(&branch) {
            return Err(format!("union branch {branch} does not exist"));
        }
        // `{"Z1K1": "Z6", "Z6K1": text}`: three values.
        self.values(3)?;
        let text = self.string()?;
        if branch == z6 {
            Ok(zeval_zobject::build::z6(text))
        } else if branch == z9 {
            Ok(zeval_zobject::build::z9(text))
        } else {
            let tokens =
                zeval_zobject::json::structural_tokens(text.as_bytes(), self.quoted_tokens_left);
            if tokens > self.quoted_tokens_left {
                return Err(format!(
                    "Z99K1: the quotes hold more than {} JSON values",
                    super::json::MAX_REQUEST_TOKENS
                ));
            }
            self.quoted_tokens_left -= tokens;
            let quoted = zeval_zobject::json::parse(&text).map_err(|e| format!("Z99K1: {e}"))?;
            Ok(zeval_zobject::error::quote(quoted))
        }
    }
}

/// Why a value cannot be put into the Avro union.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Arrays, numbers, booleans and null have no branch.
    #[error("not a normal-form ZObject: {0}")]
    NotNormal(String),
}

/// Writes Avro binary data of the request schemas.
#[derive(Default)]
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn long(&mut self, n: i64) {
        let mut zigzag = ((n << 1) ^ (n >> 63)) as u64;
        loop {
            let byte = (zigzag & 0x7f) as u8;
            zigzag >>= 7;
            if zigzag == 0 {
                self.out.push(byte);
                return;
            }
            self.out.push(byte | 0x80);
        }
    }

    fn boolean(&mut self, value: bool) {
        self.out.push(u8::from(value));
    }

    fn double(&mut self, value: f64) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    fn string(&mut self, text: &str) {
        self.long(text.len() as i64);
        self.out.extend_from_slice(text.as_bytes());
    }

    /// A map as one block, entries in `entries`' order.
    fn map(&mut self, entries: &Map<String, Value>, inner: bool) -> Result<(), EncodeError> {
        if !entries.is_empty() {
            self.long(entries.len() as i64);
            for (key, value) in entries {
                self.string(key);
                self.value(value, inner)?;
            }
        }
        self.long(0);
        Ok(())
    }

    fn value(&mut self, value: &Value, inner: bool) -> Result<(), EncodeError> {
        let Branches { z6, z9, z99, z1 } = branches(inner);
        let object = match value {
            Value::Object(object) => object,
            Value::String(text) => {
                self.long(z6);
                self.string(text);
                return Ok(());
            }
            other => return Err(EncodeError::NotNormal(other.to_string())),
        };
        let type_zid = object.get("Z1K1").and_then(zeval_zobject::build::ref_zid);
        if type_zid == Some("Z99")
            && object.get("Z1K1").is_some_and(Value::is_object)
            && let Some(quoted) = object.get("Z99K1")
        {
            self.long(z99);
            self.string(&quoted.to_string());
            return Ok(());
        }
        let raw_type = object.get("Z1K1").and_then(Value::as_str);
        if raw_type == Some("Z9")
            && let Some(zid) = object.get("Z9K1").and_then(Value::as_str)
        {
            self.long(z9);
            self.string(zid);
            return Ok(());
        }
        if raw_type == Some("Z6")
            && let Some(text) = object.get("Z6K1").and_then(Value::as_str)
        {
            self.long(z6);
            self.string(text);
            return Ok(());
        }
        self.long(z1);
        self.map(object, true)
    }

    fn versioned(version: &str) -> Writer {
        let mut writer = Writer::default();
        writer.out.push(version.len() as u8);
        writer.out.extend_from_slice(version.as_bytes());
        writer
    }
}

/// Encodes `{reentrant, zobject}` as versioned Avro 0.0.2.
pub fn encode_v002(reentrant: bool, zobject: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut writer = Writer::versioned("0.0.2");
    writer.boolean(reentrant);
    writer.value(zobject, false)?;
    Ok(writer.out)
}

/// Encodes the executor form as versioned Avro 0.0.4 (missing strings are sent empty, and a
/// missing remaining time as 0). `functionArguments` and every `valueMap` keep the key order
/// of the request.
pub fn encode_v004(request: &ExecutorRequest) -> Result<Vec<u8>, EncodeError> {
    let mut writer = Writer::versioned("0.0.4");
    writer.boolean(request.reentrant);
    writer.double(request.remaining_time.unwrap_or(0.0));
    for text in [
        &request.coding_language,
        &request.code_string,
        &request.function_name,
    ] {
        writer.string(text.as_deref().unwrap_or_default());
    }
    writer.map(&request.function_arguments, false)?;
    Ok(writer.out)
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

    /// An executor request whose arguments and nested `valueMap` are in no sorted order.
    fn unsorted_request() -> ExecutorRequest {
        let mut nested = Map::new();
        for key in ["K9", "Z1K1", "K10", "K2", "b", "a"] {
            nested.insert(key.to_owned(), json!({"Z1K1": "Z6", "Z6K1": key}));
        }
        for i in (0..24).rev() {
            nested.insert(format!("Z1000K{i}x"), json!({"Z1K1": "Z9", "Z9K1": "Z41"}));
        }
        let mut arguments = Map::new();
        for i in [3, 1, 10, 2] {
            arguments.insert(format!("Z1000K{i}"), Value::Object(nested.clone()));
        }
        ExecutorRequest {
            reentrant: false,
            remaining_time: Some(15.0),
            coding_language: Some("javascript".into()),
            code_string: Some("function Z1000() {}".into()),
            function_name: Some("Z1000".into()),
            function_arguments: arguments,
            signature: None,
            client: None,
        }
    }

    fn keys(map: &Map<String, Value>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
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

    /// The `Z99K1` quotes of one request hold at most `MAX_REQUEST_TOKENS` JSON values
    /// together: each was bounded alone, so two quotes of `[0,0,…]` made twice the values.
    #[test]
    fn the_quotes_of_a_request_share_one_bound_of_values() {
        let half = super::super::json::MAX_REQUEST_TOKENS / 2 + 1;
        let quote = |tokens: usize| json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z99"}, "Z99K1": vec![0; tokens]});
        let call = |first: Value, second: Value| {
            json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"}, "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z801"},
                   "Z801K1": first, "Z801K2": second})
        };
        let both = encode_v002(false, &call(quote(half), quote(half))).unwrap();
        match decode(&both) {
            Err(error) => assert!(error.to_string().contains("JSON values"), "{error}"),
            Ok(_) => panic!("two quotes of {half} values each were decoded"),
        }
        let one = encode_v002(
            false,
            &call(quote(half), json!({"Z1K1": "Z6", "Z6K1": "x"})),
        );
        assert!(
            decode(&one.unwrap()).is_ok(),
            "one quote of {half} values was refused"
        );
    }

    /// A request's entries count against the same bound of JSON values as a JSON body's:
    /// a body of tiny `Z6` entries made a whole object of each, uncounted.
    #[test]
    fn entries_share_the_bound_of_values() {
        let entries = super::super::json::MAX_REQUEST_TOKENS / 4 + 1;
        let mut arguments = Map::new();
        for i in 0..entries {
            arguments.insert(format!("K{i}"), json!({"Z1K1": "Z6", "Z6K1": ""}));
        }
        let request = |arguments: Map<String, Value>| ExecutorRequest {
            reentrant: false,
            remaining_time: Some(15.0),
            coding_language: Some("python-3".into()),
            code_string: Some("def Z1000(Z1000K1): return Z1000K1".into()),
            function_name: Some("Z1000".into()),
            function_arguments: arguments,
            signature: None,
            client: None,
        };
        let body = encode_v004(&request(arguments.clone())).unwrap();
        match decode(&body) {
            Err(error) => assert!(error.to_string().contains("JSON values"), "{error}"),
            Ok(_) => panic!("{entries} entries were decoded ({} bytes)", body.len()),
        }
        let few: Map<String, Value> = arguments.into_iter().take(entries / 2).collect();
        let body = encode_v004(&request(few)).unwrap();
        assert!(
            decode(&body).is_ok(),
            "{} entries were refused",
            entries / 2
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
            signature: None,
            client: None,
        };
        let body = encode_v004(&request).unwrap();
        assert_eq!(decode(&body).unwrap(), Request::Executor(request));
    }

    /// Maps go on the wire in the request's key order, the same bytes every time, and come
    /// back in that order.
    #[test]
    fn maps_keep_their_key_order() {
        let request = unsorted_request();
        let body = encode_v004(&request).unwrap();
        for _ in 0..8 {
            assert_eq!(encode_v004(&unsorted_request()).unwrap(), body);
        }
        let Request::Executor(decoded) = decode(&body).unwrap() else {
            panic!("not the executor form")
        };
        assert_eq!(
            keys(&decoded.function_arguments),
            keys(&request.function_arguments)
        );
        for (ours, sent) in decoded
            .function_arguments
            .values()
            .zip(request.function_arguments.values())
        {
            let (Value::Object(ours), Value::Object(sent)) = (ours, sent) else {
                panic!("not objects")
            };
            assert_eq!(keys(ours), keys(sent));
        }
        let zobject = request.function_arguments["Z1000K3"].clone();
        let Request::FunctionCall { zobject: read, .. } =
            decode(&encode_v002(false, &zobject).unwrap()).unwrap()
        else {
            panic!("not a full call")
        };
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            serde_json::to_string(&zobject).unwrap()
        );
    }

    /// What the hand-written encoder writes is what the Avro library reads with the
    /// schema, and the other way round.
    #[test]
    fn the_avro_library_agrees() {
        use apache_avro::types::Value as Avro;
        let union = r#"[
          {"type": "record", "namespace": "ztypes", "name": "Z6", "fields": [{"name": "Z6K1", "type": "string"}]},
          {"type": "record", "namespace": "ztypes", "name": "Z9", "fields": [{"name": "Z9K1", "type": "string"}]},
          {"type": "record", "namespace": "ztypes", "name": "Z99", "fields": [{"name": "Z99K1", "type": "string"}]},
          {"type": "record", "namespace": "ztypes", "name": "Z1", "fields": [
            {"name": "valueMap", "type": {"type": "map", "values": ["ztypes.Z1", "ztypes.Z6", "ztypes.Z9", "ztypes.Z99"]}}
          ]}
        ]"#;
        let schema = apache_avro::Schema::parse_str(&format!(
            r#"{{"type": "record", "namespace": "ztypes", "name": "ZOBJECT", "fields": [
                {{"name": "reentrant", "type": "boolean"}},
                {{"name": "remainingTime", "type": "double"}},
                {{"name": "codingLanguage", "type": "string"}},
                {{"name": "codeString", "type": "string"}},
                {{"name": "functionName", "type": "string"}},
                {{"name": "functionArguments", "type": {{"type": "map", "values": {union}}}}}]}}"#
        ))
        .unwrap();
        let mut request = unsorted_request();
        request
            .function_arguments
            .insert("Z1000K4".into(), add_call());
        let body = encode_v004(&request).unwrap();
        let mut data = &body[6..];
        let read = apache_avro::from_avro_datum(&schema, &mut data, None).unwrap();
        assert!(data.is_empty());
        let Avro::Record(fields) = &read else {
            panic!("not a record")
        };
        assert_eq!(fields[1], ("remainingTime".to_owned(), Avro::Double(15.0)));
        assert_eq!(
            fields[4],
            ("functionName".to_owned(), Avro::String("Z1000".into()))
        );
        let written = apache_avro::to_avro_datum(&schema, read).unwrap();
        let mut library_body = body[..6].to_vec();
        library_body.extend_from_slice(&written);
        let Request::Executor(decoded) = decode(&library_body).unwrap() else {
            panic!("not the executor form")
        };
        // The library's maps are unordered: compare without order.
        assert_eq!(decoded, request);
    }

    #[test]
    fn bare_union_is_v001() {
        let mut writer = Writer::default();
        writer.value(&add_call(), false).unwrap();
        assert_eq!(
            decode(&writer.out).unwrap(),
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
        let mut trailing = body.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
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
