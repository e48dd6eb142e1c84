//! The calling convention (version [`CONVENTION_VERSION`]) between zeval and an artifact:
//! the kinds of values, the signature read from a Z8, and the host side of the wire format
//! (encoding arguments for stdin, decoding the result record from stdout). The artifact side
//! is generated in `glue.rs` from the constants here, so the two cannot drift.

use zeval_zobject::Value;
use zeval_zobject::build::{list_items, ref_zid, string_value, type_zid, z6, z9};

/// The version of the calling convention; part of every [`ArtifactKey`](crate::ArtifactKey),
/// so changing the convention recompiles everything.
pub const CONVENTION_VERSION: u32 = 1;

/// Opens and closes every result record: a NUL (which no C string result and no JSON text
/// contains by accident) and a versioned tag.
pub const RECORD_MARKER: &[u8; 7] = b"\0ZEVAL1";

/// Tag of a result record.
pub const TAG_RESULT: u8 = b'R';
/// Tag of a failure record.
pub const TAG_FAILURE: u8 = b'E';

/// The largest payload [`decode_result`] accepts: the sandbox's stdout cap (8 MiB). A record
/// claiming more is refused before anything is built from it.
pub const MAX_PAYLOAD_BYTES: usize = 8 << 20;

/// Bytes a record adds around its payload: marker, tag, length, marker.
pub const RECORD_OVERHEAD: usize = 2 * RECORD_MARKER.len() + 1 + 4;

/// How a value crosses the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Z6: the string's text, UTF-8.
    String,
    /// Z40: one byte, 0 or 1.
    Boolean,
    /// Every other type: the value's normal-form JSON text.
    Json,
}

impl Kind {
    /// The kind for a type: a reference to Z6 (normal `{"Z1K1":"Z9","Z9K1":"Z6"}` or the bare
    /// canonical `"Z6"`) is [`Kind::String`], to Z40 [`Kind::Boolean`]; anything else (other
    /// references, Z7 calls that compute a type, Z4 literals) is [`Kind::Json`].
    pub fn for_type(ty: &Value) -> Kind {
        match ref_zid(ty) {
            Some("Z6") => Kind::String,
            Some("Z40") => Kind::Boolean,
            _ => Kind::Json,
        }
    }

    /// A short stable name, hashed into artifact keys.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::Json => "json",
        }
    }
}

/// What the compiled function takes and returns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    /// `(argument key, kind)` in declaration order, e.g. `("Z10000K1", Kind::String)`.
    pub parameters: Vec<(String, Kind)>,
    /// The kind of the return value.
    pub result: Kind,
}

impl Signature {
    /// Reads a Z8's arguments (`Z8K1`, a typed list of Z17) and return type (`Z8K2`), in normal
    /// form (`K1`/`K2` cells, `{"Z1K1":"Z6","Z6K1":...}` keys) or canonical form (an array
    /// whose first element is the item type, bare strings). The error says what is wrong.
    pub fn from_function(z8: &Value) -> Result<Signature, String> {
        let list = z8
            .get("Z8K1")
            .ok_or("the function has no Z8K1 (arguments)")?;
        let items: Vec<&Value> = match list {
            Value::Array(items) => items.iter().skip(1).collect(),
            Value::Object(_) => {
                list_items(list).ok_or("Z8K1 is not a typed list of argument declarations")?
            }
            _ => return Err("Z8K1 is not a typed list of argument declarations".to_owned()),
        };
        let mut parameters = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let position = index + 1;
            if type_zid(item).is_some_and(|zid| zid != "Z17") {
                return Err(format!("argument {position} is not a Z17 declaration"));
            }
            let key = item
                .get("Z17K2")
                .and_then(string_value)
                .ok_or_else(|| format!("argument {position} has no key (Z17K2)"))?;
            if !is_identifier(key) {
                return Err(format!("argument {position} has an unusable key {key:?}"));
            }
            if parameters.iter().any(|(other, _)| other == key) {
                return Err(format!("argument key {key} is declared twice"));
            }
            let ty = item
                .get("Z17K1")
                .ok_or_else(|| format!("argument {key} has no type (Z17K1)"))?;
            parameters.push((key.to_owned(), Kind::for_type(ty)));
        }
        let result = z8
            .get("Z8K2")
            .ok_or("the function has no Z8K2 (return type)")?;
        Ok(Signature {
            parameters,
            result: Kind::for_type(result),
        })
    }
}

/// Whether `name` can be a C and Rust identifier as written, which function names and
/// argument keys must be (they are pasted into the generated glue): ASCII letters, digits
/// and `_`, not starting with a digit, and not a Rust keyword (keys are ZIDs and never are).
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 64
        && !name.starts_with("__zeval")
}

/// Why the host side of the convention could not encode or decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConventionError {
    /// An argument the signature declares was not given.
    #[error("argument {0} is missing")]
    MissingArgument(String),
    /// An argument does not fit its declared kind.
    #[error("argument {key} is not a {expected}")]
    WrongArgument { key: String, expected: &'static str },
    /// An argument is larger than the 4 GiB a length prefix can say.
    #[error("argument {0} is too large")]
    ArgumentTooLarge(String),
    /// stdout does not end with a result record: the function exited, trapped or wrote over
    /// the record before the glue could finish.
    #[error("the function ended without producing a result")]
    NoRecord,
    /// The record is malformed or its payload does not fit the declared result kind.
    #[error("the function's result is malformed: {0}")]
    Malformed(String),
}

/// The outcome of a call, decoded from the artifact's stdout.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The function returned this value (normal form).
    Value(Value),
    /// The function failed (`zeval_error`, `NULL`, a panic, `Err`) with this message.
    Failure(String),
}

/// The stdin of one call: for each parameter in signature order, a u32 little-endian byte
/// length and the bytes. `arguments` are `(key, value)` in normal form, matched by key.
pub fn encode_arguments(
    signature: &Signature,
    arguments: &[(String, Value)],
) -> Result<Vec<u8>, ConventionError> {
    encode_with(signature, |key| {
        arguments
            .iter()
            .find(|(given, _)| given == key)
            .map(|(_, value)| value)
    })
}

/// [`encode_arguments`] from a map of arguments by key (as requests carry them), without
/// copying the values.
pub fn encode_argument_map(
    signature: &Signature,
    arguments: &serde_json::Map<String, Value>,
) -> Result<Vec<u8>, ConventionError> {
    encode_with(signature, |key| arguments.get(key))
}

fn encode_with<'a>(
    signature: &Signature,
    argument: impl Fn(&str) -> Option<&'a Value>,
) -> Result<Vec<u8>, ConventionError> {
    let mut out = Vec::new();
    for (key, kind) in &signature.parameters {
        let value = argument(key).ok_or_else(|| ConventionError::MissingArgument(key.clone()))?;
        let wrong = |expected| ConventionError::WrongArgument {
            key: key.clone(),
            expected,
        };
        let bytes: Vec<u8> = match kind {
            Kind::String => string_value(value)
                .ok_or_else(|| wrong("string (Z6)"))?
                .as_bytes()
                .to_vec(),
            Kind::Boolean => vec![u8::from(
                boolean_value(value).ok_or_else(|| wrong("Boolean (Z40)"))?,
            )],
            Kind::Json => serde_json::to_vec(value).map_err(|_| wrong("JSON value"))?,
        };
        let length = u32::try_from(bytes.len())
            .map_err(|_| ConventionError::ArgumentTooLarge(key.clone()))?;
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// The truth value of a Z40 in normal (`Z40K1` a Z9 to Z41/Z42, `Z1K1` either form) or
/// canonical form (the bare references `"Z41"`/`"Z42"`).
fn boolean_value(value: &Value) -> Option<bool> {
    let zid = match value {
        Value::String(_) => ref_zid(value)?,
        Value::Object(_) if type_zid(value) == Some("Z40") => ref_zid(value.get("Z40K1")?)?,
        Value::Object(_) => ref_zid(value)?,
        _ => return None,
    };
    match zid {
        "Z41" => Some(true),
        "Z42" => Some(false),
        _ => None,
    }
}

/// A normal-form Z40.
pub fn z40(value: bool) -> Value {
    zeval_zobject::build::obj([
        ("Z1K1", z9("Z40")),
        ("Z40K1", z9(if value { "Z41" } else { "Z42" })),
    ])
}

/// Finds the record at the end of `stdout` and decodes it.
///
/// The record is `MARKER, tag, payload, u32 LE payload length, MARKER` and is the last thing
/// the glue writes, so it is located from the end without searching: anything the user's
/// code printed before it is ignored, and a payload that contains the marker cannot confuse
/// the host. The payload is at most [`MAX_PAYLOAD_BYTES`].
pub fn decode_result(signature: &Signature, stdout: &[u8]) -> Result<Answer, ConventionError> {
    let (tag, payload) = locate_record(stdout).ok_or(ConventionError::NoRecord)?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(ConventionError::Malformed(format!(
            "{} bytes, more than the {MAX_PAYLOAD_BYTES} allowed",
            payload.len()
        )));
    }
    let text = || {
        std::str::from_utf8(payload)
            .map_err(|_| ConventionError::Malformed("the text is not valid UTF-8".to_owned()))
    };
    match tag {
        TAG_FAILURE => Ok(Answer::Failure(
            String::from_utf8_lossy(payload).into_owned(),
        )),
        TAG_RESULT => match signature.result {
            Kind::String => Ok(Answer::Value(z6(text()?))),
            Kind::Boolean => match payload {
                [0] => Ok(Answer::Value(z40(false))),
                [1] => Ok(Answer::Value(z40(true))),
                _ => Err(ConventionError::Malformed(
                    "a Boolean result is not one byte 0 or 1".to_owned(),
                )),
            },
            Kind::Json => {
                // Bounded like an interpreted guest's answer: 8 MiB of `[0,0,…]` would parse
                // into some 400 MiB of values in the host.
                let value = zeval_zobject::json::parse_untrusted(text()?)
                    .map_err(|e| ConventionError::Malformed(format!("returned JSON: {e}")))?;
                if !(value.is_object() || value.is_string()) {
                    return Err(ConventionError::Malformed(
                        "returned JSON is neither an object nor a string".to_owned(),
                    ));
                }
                Ok(Answer::Value(value))
            }
        },
        other => Err(ConventionError::Malformed(format!(
            "unknown record tag {other:#04x}"
        ))),
    }
}

/// The tag and payload of the record that ends `stdout`, if it ends with a well-formed one.
fn locate_record(stdout: &[u8]) -> Option<(u8, &[u8])> {
    let marker = RECORD_MARKER.len();
    let body = stdout.strip_suffix(RECORD_MARKER.as_slice())?;
    let (body, length) = body.split_at_checked(body.len().checked_sub(4)?)?;
    let length = usize::try_from(u32::from_le_bytes(length.try_into().ok()?)).ok()?;
    let start = body.len().checked_sub(length.checked_add(marker + 1)?)?;
    let record = &body[start..];
    if &record[..marker] != RECORD_MARKER {
        return None;
    }
    Some((record[marker], &record[marker + 1..]))
}

/// A record as the glue writes it (the host's tests and the glue's documentation use it).
pub fn encode_record(tag: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("payload fits the sandbox output cap");
    let mut out = Vec::with_capacity(payload.len() + RECORD_OVERHEAD);
    out.extend_from_slice(RECORD_MARKER);
    out.push(tag);
    out.extend_from_slice(payload);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(RECORD_MARKER);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sig(parameters: &[(&str, Kind)], result: Kind) -> Signature {
        Signature {
            parameters: parameters
                .iter()
                .map(|(key, kind)| ((*key).to_owned(), *kind))
                .collect(),
            result,
        }
    }

    #[test]
    fn kinds_follow_the_type_reference() {
        assert_eq!(
            Kind::for_type(&json!({"Z1K1": "Z9", "Z9K1": "Z6"})),
            Kind::String
        );
        assert_eq!(Kind::for_type(&json!("Z6")), Kind::String);
        assert_eq!(Kind::for_type(&json!("Z40")), Kind::Boolean);
        assert_eq!(
            Kind::for_type(&json!({"Z1K1": "Z9", "Z9K1": "Z40"})),
            Kind::Boolean
        );
        assert_eq!(Kind::for_type(&json!("Z13518")), Kind::Json);
        let call = json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"}, "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z881"},
            "Z881K1": {"Z1K1": "Z9", "Z9K1": "Z6"}});
        assert_eq!(Kind::for_type(&call), Kind::Json);
    }

    #[test]
    fn signatures_read_normal_and_canonical_functions() {
        let z17 = |key: &str, ty: &str| {
            json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z17"}, "Z17K1": {"Z1K1": "Z9", "Z9K1": ty},
                "Z17K2": {"Z1K1": "Z6", "Z6K1": key}})
        };
        let list_type = json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"}, "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z881"},
            "Z881K1": {"Z1K1": "Z9", "Z9K1": "Z17"}});
        let normal = json!({
            "Z1K1": {"Z1K1": "Z9", "Z9K1": "Z8"},
            "Z8K1": {"Z1K1": list_type, "K1": z17("Z10000K1", "Z6"),
                "K2": {"Z1K1": list_type, "K1": z17("Z10000K2", "Z40"), "K2": {"Z1K1": list_type}}},
            "Z8K2": {"Z1K1": "Z9", "Z9K1": "Z6"},
        });
        let expected = sig(
            &[("Z10000K1", Kind::String), ("Z10000K2", Kind::Boolean)],
            Kind::String,
        );
        assert_eq!(Signature::from_function(&normal).unwrap(), expected);
        let canonical = json!({"Z1K1": "Z8", "Z8K1": ["Z17",
            {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1"},
            {"Z1K1": "Z17", "Z17K1": "Z40", "Z17K2": "Z10000K2"}], "Z8K2": "Z6"});
        assert_eq!(Signature::from_function(&canonical).unwrap(), expected);
        let empty = json!({"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z40"});
        assert_eq!(
            Signature::from_function(&empty).unwrap(),
            sig(&[], Kind::Boolean)
        );
        let bad_key = json!({"Z1K1": "Z8", "Z8K1": ["Z17",
            {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "a;b"}], "Z8K2": "Z6"});
        assert!(
            Signature::from_function(&bad_key)
                .unwrap_err()
                .contains("unusable key")
        );
        let twice = json!({"Z1K1": "Z8", "Z8K1": ["Z17",
            {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "K1"},
            {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "K1"}], "Z8K2": "Z6"});
        assert!(
            Signature::from_function(&twice)
                .unwrap_err()
                .contains("twice")
        );
        assert!(Signature::from_function(&json!({"Z8K2": "Z6"})).is_err());
    }

    #[test]
    fn arguments_are_encoded_in_signature_order_by_key() {
        let signature = sig(
            &[
                ("K1", Kind::String),
                ("K2", Kind::Boolean),
                ("K3", Kind::Json),
            ],
            Kind::String,
        );
        let json_value = json!({"Z1K1": "Z6", "Z6K1": "x"});
        let args = vec![
            ("K3".to_owned(), json_value.clone()),
            (
                "K2".to_owned(),
                json!({"Z1K1": "Z40", "Z40K1": {"Z1K1": "Z9", "Z9K1": "Z41"}}),
            ),
            ("K1".to_owned(), json!({"Z1K1": "Z6", "Z6K1": "héllo"})),
        ];
        let bytes = encode_arguments(&signature, &args).unwrap();
        let json_text = serde_json::to_vec(&json_value).unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(&6u32.to_le_bytes());
        expected.extend_from_slice("héllo".as_bytes());
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.push(1);
        expected.extend_from_slice(&u32::try_from(json_text.len()).unwrap().to_le_bytes());
        expected.extend_from_slice(&json_text);
        assert_eq!(bytes, expected);
        // The normal form's Z1K1 reference and Z42.
        let no = [("K1".to_owned(), z40(false))];
        assert_eq!(
            encode_arguments(&sig(&[("K1", Kind::Boolean)], Kind::Boolean), &no).unwrap(),
            [1, 0, 0, 0, 0]
        );
        assert_eq!(
            encode_arguments(&signature, &args[..2]),
            Err(ConventionError::MissingArgument("K1".to_owned()))
        );
        let wrong = [("K1".to_owned(), json!({"Z1K1": "Z9", "Z9K1": "Z41"}))];
        assert_eq!(
            encode_arguments(&sig(&[("K1", Kind::String)], Kind::String), &wrong),
            Err(ConventionError::WrongArgument {
                key: "K1".to_owned(),
                expected: "string (Z6)"
            })
        );
        let not_bool = [("K1".to_owned(), json!({"Z1K1": "Z6", "Z6K1": "Z41"}))];
        assert!(
            encode_arguments(&sig(&[("K1", Kind::Boolean)], Kind::Boolean), &not_bool).is_err()
        );
    }

    #[test]
    fn results_are_found_at_the_end_of_stdout() {
        let string = sig(&[], Kind::String);
        let mut stdout = b"user output \0ZEVAL1 noise\n".to_vec();
        // A payload that itself looks like a record does not confuse the host.
        let tricky = encode_record(TAG_FAILURE, b"fake");
        stdout.extend(encode_record(TAG_RESULT, &tricky));
        let Answer::Value(value) = decode_result(&string, &stdout).unwrap() else {
            panic!("expected a value");
        };
        assert_eq!(value, z6(String::from_utf8(tricky).unwrap()));
        assert_eq!(
            decode_result(&string, &encode_record(TAG_FAILURE, b"boom")).unwrap(),
            Answer::Failure("boom".to_owned())
        );
        let boolean = sig(&[], Kind::Boolean);
        assert_eq!(
            decode_result(&boolean, &encode_record(TAG_RESULT, &[1])).unwrap(),
            Answer::Value(json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z40"},
                "Z40K1": {"Z1K1": "Z9", "Z9K1": "Z41"}}))
        );
        assert!(decode_result(&boolean, &encode_record(TAG_RESULT, &[2])).is_err());
        let json_kind = sig(&[], Kind::Json);
        assert_eq!(
            decode_result(
                &json_kind,
                &encode_record(TAG_RESULT, br#"{"Z1K1":"Z6","Z6K1":"7"}"#)
            )
            .unwrap(),
            Answer::Value(z6("7"))
        );
        assert!(decode_result(&json_kind, &encode_record(TAG_RESULT, b"7")).is_err());
        let many = format!(
            r#"{{"K1":[{}0]}}"#,
            "0,".repeat(zeval_zobject::json::MAX_UNTRUSTED_TOKENS)
        );
        let refused = decode_result(&json_kind, &encode_record(TAG_RESULT, many.as_bytes()));
        assert!(
            matches!(&refused, Err(ConventionError::Malformed(m)) if m.contains("more than")),
            "{refused:?}"
        );
        assert!(decode_result(&json_kind, &encode_record(TAG_RESULT, b"{")).is_err());
        assert!(decode_result(&string, &encode_record(TAG_RESULT, &[0xff])).is_err());
        assert!(decode_result(&string, &encode_record(b'X', b"")).is_err());
    }

    #[test]
    fn truncated_or_missing_records_are_errors() {
        let string = sig(&[], Kind::String);
        assert_eq!(decode_result(&string, b""), Err(ConventionError::NoRecord));
        assert_eq!(
            decode_result(&string, b"hello"),
            Err(ConventionError::NoRecord)
        );
        let record = encode_record(TAG_RESULT, b"abc");
        for cut in 0..record.len() {
            assert!(
                decode_result(&string, &record[cut + 1..]).is_err(),
                "cut {cut}"
            );
            assert!(decode_result(&string, &record[..cut]).is_err(), "cut {cut}");
        }
        // A length larger than stdout.
        let mut lying = record.clone();
        let at = lying.len() - RECORD_MARKER.len() - 4;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode_result(&string, &lying),
            Err(ConventionError::NoRecord)
        );
    }
}
