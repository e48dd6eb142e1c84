//! A function's signature: its arguments' types and keys and its return type, without its
//! labels. What reviewed code was reviewed under: an approval keeps it, and the access rule
//! compares it with the function's as a call reads it.

use crate::{Map, Value};

/// The signature of a canonical Z8: `{"Z8K1": [[type, key], …], "Z8K2": type}` (labels and
/// everything else left out; anything missing or malformed is `null` in its place).
pub fn signature_of(z8: &Value) -> Value {
    let arguments: Vec<Value> = match z8.get("Z8K1") {
        Some(Value::Array(items)) => items
            .iter()
            .skip(1)
            .map(|argument| {
                Value::Array(vec![
                    argument.get("Z17K1").cloned().unwrap_or(Value::Null),
                    argument.get("Z17K2").cloned().unwrap_or(Value::Null),
                ])
            })
            .collect(),
        _ => vec![Value::Null],
    };
    let mut signature = Map::new();
    signature.insert("Z8K1".into(), Value::Array(arguments));
    signature.insert(
        "Z8K2".into(),
        z8.get("Z8K2").cloned().unwrap_or(Value::Null),
    );
    Value::Object(signature)
}

/// The signature of the function a stored object (a Z2, in any form) holds; `None` when its
/// value is not a well-formed function.
pub fn of_stored(z2: &Value) -> Option<Value> {
    let z8 = crate::canonicalize(z2.get("Z2K2")?).ok()?;
    (crate::build::type_zid(&z8) == Some("Z8")).then(|| signature_of(&z8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_signature_is_the_argument_types_and_keys_and_the_return_type_only() {
        let z8 = json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                             "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z40",
            "Z8K3": ["Z20"],
            "Z8K4": ["Z14", "Z10001"],
            "Z8K5": "Z10000"
        });
        assert_eq!(
            signature_of(&z8),
            json!({"Z8K1": [["Z6", "Z10000K1"]], "Z8K2": "Z40"})
        );
        let stored = json!({"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z10000"}, "Z2K2": z8});
        assert_eq!(of_stored(&stored), Some(signature_of(&z8)));
        let not_a_function = json!({"Z1K1": "Z2", "Z2K2": {"Z1K1": "Z6", "Z6K1": "x"}});
        assert_eq!(of_stored(&not_a_function), None);
    }
}
