//! `normalize`: any form (canonical, normal or mixed) to normal form (spec §1.3).

use crate::build::{list_type, obj, typed_list, z6, z9};
use crate::error::z5;
use crate::ident::{is_key, is_reference};
use crate::{Map, Value};

/// Normalizes a ZObject in any form. On failure returns the Z5 (normal form), a Z502 tree
/// whose leaves say what was wrong (Z521 number/boolean/null, Z523 missing `Z1K1`, Z525 bad
/// key).
pub fn normalize(value: &Value) -> Result<Value, Value> {
    check_mixed(value)?;
    Ok(normalize_unchecked(value))
}

/// Normalizes a value already known to be a well-formed mixed ZObject.
pub fn normalize_unchecked(value: &Value) -> Value {
    match value {
        Value::String(s) if is_reference(s) => z9(s.as_str()),
        Value::String(s) => z6(s.as_str()),
        Value::Array(items) => {
            let item_type = items.first().map_or_else(|| z9("Z1"), normalize_unchecked);
            typed_list(item_type, items.iter().skip(1).map(normalize_unchecked))
        }
        Value::Object(m) => {
            if is_error_quirk(m) {
                return value.clone();
            }
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let verbatim = match (k.as_str(), v) {
                    ("Z1K1", Value::String(s)) => s == "Z6" || s == "Z9",
                    ("Z6K1" | "Z9K1", Value::String(_)) => true,
                    _ => false,
                };
                let v = if verbatim { v.clone() } else { normalize_unchecked(v) };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// The original returns Z5s of type Z501/Z502 untouched (`normalize.js`).
fn is_error_quirk(m: &Map<String, Value>) -> bool {
    m.get("Z1K1").and_then(Value::as_str) == Some("Z5")
        && matches!(
            m.get("Z5K1").and_then(|k| k.get("Z1K1")).and_then(Value::as_str),
            Some("Z501" | "Z502")
        )
}

/// The MIXED schema: a string, an array of mixed objects, or an object with `Z1K1` whose keys
/// all match the key pattern.
fn check_mixed(value: &Value) -> Result<(), Value> {
    match mixed_error(value) {
        None => Ok(()),
        Some(inner) => Err(not_wellformed(inner)),
    }
}

fn mixed_error(value: &Value) -> Option<Value> {
    match value {
        Value::String(_) => None,
        Value::Array(items) => items.iter().find_map(mixed_error),
        Value::Object(m) => {
            if !m.contains_key("Z1K1") {
                return Some(z5("Z523", [crate::error::quote(value.clone())]));
            }
            for (k, v) in m {
                if k != "Z1K1" && !is_key(k) {
                    return Some(z5("Z525", [z6(k.as_str()), crate::error::quote(value.clone())]));
                }
                if let Some(inner) = mixed_error(v) {
                    return Some(key_error(k, inner));
                }
            }
            None
        }
        other => Some(z5("Z521", [crate::error::quote(json_as_string(other))])),
    }
}

fn json_as_string(v: &Value) -> Value {
    z6(v.to_string())
}

/// Wraps an inner error in the per-key Z526.
pub fn key_error(key: &str, inner: Value) -> Value {
    z5("Z526", [obj([("Z1K1", z9("Z39")), ("Z39K1", z6(key))]), inner])
}

/// Wraps an inner error in the Z502 "not wellformed" root.
pub fn not_wellformed(inner: Value) -> Value {
    let subtype = inner.get("Z5K1").cloned().unwrap_or_else(|| z9("Z500"));
    z5("Z502", [subtype, inner])
}

/// The normal type of a typed list of `item`.
pub fn normal_list_type(item: Value) -> Value {
    list_type(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_references() {
        assert_eq!(normalize(&json!("Z40")).unwrap(), z9("Z40"));
        assert_eq!(normalize(&json!("Z1K1")).unwrap(), z6("Z1K1"));
    }

    #[test]
    fn numbers_fail() {
        let err = normalize(&json!({"Z1K1": "Z6", "Z6K1": 2})).unwrap_err();
        assert!(err.to_string().contains("Z521"));
    }
}
