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

/// The most stored objects a kept signature pins ([`pinned`]), and so the most the access
/// rule reads to compare them ([`first_changed`]), per request and approved implementation.
pub const MAX_PINNED: usize = 64;

/// Why [`pinned`] gave no signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinError<E> {
    /// The signature's types name more than [`MAX_PINNED`] stored objects.
    TooMany,
    /// Looking an object up failed.
    LookUp(E),
}

/// `signature` ([`signature_of`]) with what the stored objects its types name are now, as
/// `look_up` finds their values (`Z2K2`, any form; `None`: not stored):
/// `"definitions": {zid: pin, …}` (left out when there are none, so a signature of the
/// catalogue's types alone, those `is_builtin` says are the program's own, is
/// [`signature_of`]'s). Reviewed code was reviewed under the types as they were: an editor
/// who redefines one (its keys, its validator) changes what the code is given without
/// changing the function.
///
/// A stored function's pin is its own [`signature_of`]; a type's its canonical value without
/// its keys' labels; any other object's its canonical value; one not stored is `null`. The
/// objects those name are pinned in turn (text, a `Z6` written out, names nothing), up to
/// [`MAX_PINNED`] in all (no more are read).
pub fn pinned<E>(
    signature: Value,
    is_builtin: impl Fn(&str) -> bool,
    mut look_up: impl FnMut(&str) -> Result<Option<Value>, E>,
) -> Result<Value, PinError<E>> {
    let mut definitions = Map::new();
    let mut walk = Walk::from(&signature, &is_builtin);
    while let Some(zid) = walk.next() {
        if definitions.len() == MAX_PINNED {
            return Err(PinError::TooMany);
        }
        let pin = pin(look_up(&zid).map_err(PinError::LookUp)?);
        walk.follow(&pin, &is_builtin);
        definitions.insert(zid, pin);
    }
    let mut signature = signature;
    if let (Value::Object(m), false) = (&mut signature, definitions.is_empty()) {
        m.insert("definitions".into(), Value::Object(definitions));
    }
    Ok(signature)
}

/// The first stored object `signature`'s types name (as [`pinned`] walks them) whose pin is
/// not the one `kept` (a pinned signature's `definitions`) holds, or that `kept` lacks;
/// `None` when all are as kept. Reads only objects `kept` names, and at most [`MAX_PINNED`],
/// stopping at the first that differs.
pub fn first_changed<E>(
    signature: &Value,
    kept: &Map<String, Value>,
    is_builtin: impl Fn(&str) -> bool,
    mut look_up: impl FnMut(&str) -> Result<Option<Value>, E>,
) -> Result<Option<String>, E> {
    let mut walk = Walk::from(signature, &is_builtin);
    let mut read = 0;
    while let Some(zid) = walk.next() {
        let Some(kept_pin) = kept.get(&zid) else {
            return Ok(Some(zid));
        };
        // No approval keeps more; an imported one might.
        if read == MAX_PINNED {
            return Ok(Some(zid));
        }
        read += 1;
        let pin = pin(look_up(&zid)?);
        if pin != *kept_pin {
            return Ok(Some(zid));
        }
        walk.follow(&pin, &is_builtin);
    }
    Ok(None)
}

/// The pin of a stored object's value (`None`: not stored), as [`pinned`] keeps it.
pub fn pin(value: Option<Value>) -> Value {
    let Some(value) = value else {
        return Value::Null;
    };
    let mut value = crate::canonicalize(&value).unwrap_or(value);
    match crate::build::type_zid(&value) {
        Some("Z8") => signature_of(&value),
        Some("Z4") => {
            // Labels are not the type, as they are not the signature: translating a key's
            // name changes no value.
            if let Some(Value::Array(keys)) = value.get_mut("Z4K2") {
                for key in keys.iter_mut() {
                    if let Value::Object(key) = key {
                        key.remove("Z3K3");
                    }
                }
            }
            value
        }
        _ => value,
    }
}

/// The stored objects a signature's types name, each once, and those their pins name.
struct Walk {
    seen: HashSet<String>,
    pending: Vec<String>,
}

impl Walk {
    fn from(signature: &Value, is_builtin: &impl Fn(&str) -> bool) -> Walk {
        let mut walk = Walk {
            seen: HashSet::new(),
            pending: Vec::new(),
        };
        walk.follow(signature, is_builtin);
        walk
    }

    fn next(&mut self) -> Option<String> {
        self.pending.pop()
    }

    /// Adds each object `value` names that is not the program's own and not seen yet.
    fn follow(&mut self, value: &Value, is_builtin: &impl Fn(&str) -> bool) {
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(text)
                    if crate::ident::is_reference(text)
                        && !is_builtin(text)
                        && self.seen.insert(text.clone()) =>
                {
                    self.pending.push(text.clone());
                }
                Value::Array(items) => stack.extend(items),
                Value::Object(m) if m.get("Z1K1").and_then(Value::as_str) == Some("Z6") => {}
                Value::Object(m) => stack.extend(m.values()),
                _ => {}
            }
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
    /// The catalogue, as these tests have it: the short ZIDs.
    fn is_builtin(zid: &str) -> bool {
        zid.len() < 6
    }

    /// Looks objects up in `stored`, noting each ZID read in `reads`.
    fn look_up_in<'a>(
        stored: &'a [(impl AsRef<str>, Value)],
        reads: &'a std::cell::RefCell<Vec<String>>,
    ) -> impl FnMut(&str) -> Result<Option<Value>, ()> + 'a {
        |zid| {
            reads.borrow_mut().push(zid.to_owned());
            Ok(stored
                .iter()
                .find(|(known, _)| known.as_ref() == zid)
                .map(|(_, value)| value.clone()))
        }
    }

    #[test]
    fn a_pinned_signature_holds_what_the_stored_objects_its_types_name_are() {
        let reads = std::cell::RefCell::new(Vec::new());
        let catalogue_only = json!({"Z8K1": [["Z6", "Z10000K1"]], "Z8K2": "Z40"});
        assert_eq!(
            pinned(
                catalogue_only.clone(),
                is_builtin,
                look_up_in(&[] as &[(&str, Value)], &reads)
            ),
            Ok(catalogue_only),
            "the catalogue's types are the program's own: nothing to pin"
        );
        assert!(reads.borrow().is_empty());
        let key = |key_type: &str, labelled: &str| {
            json!({"Z1K1": "Z3", "Z3K1": key_type, "Z3K2": "Z10010K1",
                "Z3K3": {"Z1K1": "Z12", "Z12K1": ["Z11",
                    {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": labelled}]}})
        };
        let type_10010 = |labelled: &str| {
            json!({"Z1K1": "Z4", "Z4K1": "Z10010", "Z4K2": ["Z3", key("Z10011", labelled)],
                "Z4K3": "Z101"})
        };
        let type_10011 = json!({"Z1K1": "Z4", "Z4K1": "Z10011", "Z4K2": ["Z3"], "Z4K3": "Z101",
            "note": {"Z1K1": "Z6", "Z6K1": "Z10099"}});
        let type_function = json!({"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z4",
            "Z8K3": ["Z20", "Z10098"], "Z8K4": ["Z14", "Z10097"], "Z8K5": "Z10040"});
        let stored = [
            ("Z10010", type_10010("name")),
            ("Z10011", type_10011.clone()),
            ("Z10040", type_function),
        ];
        let signature = json!({"Z8K1": [["Z10010", "Z10000K1"],
                [{"Z1K1": "Z7", "Z7K1": "Z10040"}, "Z10000K2"]],
            "Z8K2": "Z10030"});
        let mut expected = signature.clone();
        let mut unlabelled = type_10010("name");
        unlabelled["Z4K2"][1]
            .as_object_mut()
            .unwrap()
            .remove("Z3K3");
        expected["definitions"] = json!({
            // Its keys' labels are not the type.
            "Z10010": unlabelled,
            "Z10011": type_10011,
            // A function's signature only: its testers and implementations are not types.
            "Z10040": {"Z8K1": [], "Z8K2": "Z4"},
            // Not stored: creating it changes what the signature names.
            "Z10030": null,
        });
        let kept = pinned(signature.clone(), is_builtin, look_up_in(&stored, &reads));
        assert_eq!(kept, Ok(expected.clone()));
        let mut read = reads.take();
        read.sort();
        assert_eq!(
            read,
            ["Z10010", "Z10011", "Z10030", "Z10040"],
            "each once; the text Z10099 is none"
        );

        let kept = expected["definitions"].as_object().unwrap();
        let changed = |stored: &[(&str, Value)]| {
            first_changed(&signature, kept, is_builtin, look_up_in(stored, &reads))
        };
        assert_eq!(changed(&stored), Ok(None));
        let mut relabelled = stored.clone();
        relabelled[0].1 = type_10010("another name");
        assert_eq!(changed(&relabelled), Ok(None), "labels may change");
        let mut redefined = stored.clone();
        redefined[1].1["Z4K3"] = json!("Z10050");
        assert_eq!(changed(&redefined), Ok(Some("Z10011".to_owned())));
        let mut created = stored.to_vec();
        created.push(("Z10030", json!({"Z1K1": "Z4", "Z4K1": "Z10030"})));
        assert_eq!(changed(&created), Ok(Some("Z10030".to_owned())));
        // The walk stops at the first change: Z10012, which nothing kept names, and Z10011,
        // are not read.
        reads.take();
        let mut names_more = stored.clone();
        names_more[0].1["Z4K2"][1]["Z3K1"] = json!("Z10012");
        assert_eq!(changed(&names_more), Ok(Some("Z10010".to_owned())));
        let read = reads.take();
        assert!(
            read.last().map(String::as_str) == Some("Z10010")
                && !read.iter().any(|zid| zid == "Z10011" || zid == "Z10012"),
            "{read:?}"
        );
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
        let reads = std::cell::RefCell::new(Vec::new());
        // The last names one not stored: MAX_PINNED in all.
        let fits = pinned(
            signature.clone(),
            is_builtin,
            look_up_in(&chain(MAX_PINNED - 1), &reads),
        )
        .unwrap();
        assert_eq!(fits["definitions"].as_object().unwrap().len(), MAX_PINNED);
        reads.take();
        assert_eq!(
            pinned(
                signature.clone(),
                is_builtin,
                look_up_in(&chain(MAX_PINNED), &reads)
            ),
            Err(PinError::TooMany)
        );
        assert_eq!(reads.take().len(), MAX_PINNED, "no more are read");
        // Nor are more read to compare, whatever an approval (an imported one) kept.
        let long = chain(MAX_PINNED + 10);
        let mut kept = Map::new();
        for (zid, value) in &long {
            kept.insert(zid.clone(), pin(Some(value.clone())));
        }
        reads.take();
        let changed = first_changed(&signature, &kept, is_builtin, look_up_in(&long, &reads));
        assert_eq!(changed, Ok(Some(format!("Z{}", 10100 + MAX_PINNED))));
        assert_eq!(reads.take().len(), MAX_PINNED);
    }
}
