//! A function's signature: its arguments' types and keys and its return type, without its
//! labels. What reviewed code was reviewed under: an approval keeps it, with what the stored
//! types it names were then ([`pinned`]), and the access rule compares it with the
//! function's as a call reads it.

use std::collections::HashSet;

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

/// The most stored objects a kept signature pins ([`pinned`]): the access rule reads each
/// once per request that runs approved code under the signature.
pub const MAX_PINNED: usize = 64;

/// What an object a signature's types name is, as a store or a cache has it ([`pinned`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Named {
    /// The program's own (the catalogue's): it cannot change.
    Builtin,
    /// Not stored.
    Missing,
    /// Stored: its value (`Z2K2`, in any form).
    Stored(Value),
}

/// Why [`pinned`] gave no signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinError<E> {
    /// The signature's types name more than [`MAX_PINNED`] stored objects.
    TooMany,
    /// Looking an object up failed.
    LookUp(E),
}

/// `signature` ([`signature_of`]) with what the stored objects its types name are now, as
/// `look_up` finds them: `"definitions": {zid: pin, …}` (left out when there are none, so a
/// signature of the catalogue's types alone is [`signature_of`]'s). Reviewed code was
/// reviewed under the types as they were: an editor who redefines one (its keys, its
/// validator) changes what the code is given without changing the function.
///
/// A stored function's pin is its own [`signature_of`]; any other object's its canonical
/// value; one not stored is `null`. The objects those name are pinned in turn (text, a
/// `Z6` written out, names nothing), up to [`MAX_PINNED`] in all.
pub fn pinned<E>(
    signature: Value,
    mut look_up: impl FnMut(&str) -> Result<Named, E>,
) -> Result<Value, PinError<E>> {
    let mut definitions = Map::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut pending: Vec<String> = Vec::new();
    named_in(&signature, &mut seen, &mut pending);
    while let Some(zid) = pending.pop() {
        let pin = match look_up(&zid).map_err(PinError::LookUp)? {
            Named::Builtin => continue,
            Named::Missing => Value::Null,
            Named::Stored(value) => {
                let value = crate::canonicalize(&value).unwrap_or(value);
                match crate::build::type_zid(&value) {
                    Some("Z8") => signature_of(&value),
                    _ => value,
                }
            }
        };
        if definitions.len() == MAX_PINNED {
            return Err(PinError::TooMany);
        }
        named_in(&pin, &mut seen, &mut pending);
        definitions.insert(zid, pin);
    }
    let mut signature = signature;
    if let (Value::Object(m), false) = (&mut signature, definitions.is_empty()) {
        m.insert("definitions".into(), Value::Object(definitions));
    }
    Ok(signature)
}

/// Adds to `pending` each object `value` names that is not in `seen` yet (and to `seen`).
fn named_in(value: &Value, seen: &mut HashSet<String>, pending: &mut Vec<String>) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(text)
                if crate::ident::is_reference(text) && seen.insert(text.clone()) =>
            {
                pending.push(text.clone());
            }
            Value::Array(items) => stack.extend(items),
            Value::Object(m) if m.get("Z1K1").and_then(Value::as_str) == Some("Z6") => {}
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
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
    fn look_up_in<'a>(
        stored: &'a [(impl AsRef<str>, Value)],
    ) -> impl FnMut(&str) -> Result<Named, ()> + 'a {
        |zid| {
            if zid.len() < 6 {
                return Ok(Named::Builtin);
            }
            Ok(stored
                .iter()
                .find(|(known, _)| known.as_ref() == zid)
                .map_or(Named::Missing, |(_, value)| Named::Stored(value.clone())))
        }
    }

    #[test]
    fn a_pinned_signature_holds_what_the_stored_objects_its_types_name_are() {
        let catalogue_only = json!({"Z8K1": [["Z6", "Z10000K1"]], "Z8K2": "Z40"});
        assert_eq!(
            pinned(catalogue_only.clone(), look_up_in(&[] as &[(&str, Value)])),
            Ok(catalogue_only),
            "the catalogue's types are the program's own: nothing to pin"
        );
        let type_10010 = json!({"Z1K1": "Z4", "Z4K1": "Z10010",
            "Z4K2": ["Z3", {"Z1K1": "Z3", "Z3K1": "Z10011", "Z3K2": "Z10010K1",
                "Z3K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z4K3": "Z101"});
        let type_10011 = json!({"Z1K1": "Z4", "Z4K1": "Z10011", "Z4K2": ["Z3"], "Z4K3": "Z101",
            "note": {"Z1K1": "Z6", "Z6K1": "Z10099"}});
        let type_function = json!({"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z4",
            "Z8K3": ["Z20", "Z10098"], "Z8K4": ["Z14", "Z10097"], "Z8K5": "Z10040"});
        let stored = [
            ("Z10010", type_10010.clone()),
            ("Z10011", type_10011.clone()),
            ("Z10040", type_function.clone()),
        ];
        let signature = json!({"Z8K1": [["Z10010", "Z10000K1"],
                [{"Z1K1": "Z7", "Z7K1": "Z10040"}, "Z10000K2"]],
            "Z8K2": "Z10030"});
        let mut expected = signature.clone();
        expected["definitions"] = json!({
            "Z10010": type_10010,
            "Z10011": type_10011,
            // A function's signature only: its testers and implementations are not types.
            "Z10040": {"Z8K1": [], "Z8K2": "Z4"},
            // Not stored: creating it changes what the signature names.
            "Z10030": null,
        });
        assert_eq!(pinned(signature, look_up_in(&stored)), Ok(expected));
    }

    #[test]
    fn a_signature_pins_at_most_so_many_stored_objects() {
        // A chain of types, each naming the next.
        let chain = |length: usize| -> Vec<(String, Value)> {
            (0..length)
                .map(|n| {
                    let zid = format!("Z{}", 10100 + n);
                    let next = format!("Z{}", 10101 + n);
                    (
                        zid.clone(),
                        json!({"Z1K1": "Z4", "Z4K1": zid, "Z4K2": ["Z3", {
                        "Z1K1": "Z3", "Z3K1": next, "Z3K2": "K1"}]}),
                    )
                })
                .collect()
        };
        let signature = json!({"Z8K1": [["Z10100", "Z10000K1"]], "Z8K2": "Z6"});
        // The last names one not stored: MAX_PINNED in all.
        let fits = pinned(signature.clone(), look_up_in(&chain(MAX_PINNED - 1))).unwrap();
        assert_eq!(fits["definitions"].as_object().unwrap().len(), MAX_PINNED);
        assert_eq!(
            pinned(signature, look_up_in(&chain(MAX_PINNED))),
            Err(PinError::TooMany)
        );
    }
}
