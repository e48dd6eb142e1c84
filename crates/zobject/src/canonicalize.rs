//! `canonicalize`: any form to canonical form (spec §1.3).

use crate::ident::is_reference;
use crate::normalize::normalize;
use crate::{Map, Value};

/// Canonicalizes a ZObject in any form: normalizes it (forwarding any error), validates the
/// result as a normal-form Z1 (a Z502 tree if it is not one, e.g. a Z6 whose `Z1K1` is a
/// Z9), then compacts it.
pub fn canonicalize(value: &Value) -> Result<Value, Value> {
    let normal = normalize(value)?;
    let result = crate::validate::validate(&normal, "Z1", crate::Form::Normal)
        .map(|()| canonicalize_normal(&normal));
    // Dropping a `Value` recurses once per level; the normal form nests twice as deep as
    // the input.
    crate::depth::drop_iteratively(normal);
    result
}

/// Compacts a normal-form value without validating it.
pub fn canonicalize_normal(value: &Value) -> Value {
    stacker::maybe_grow(128 * 1024, 2 * 1024 * 1024, || compact(value))
}

fn compact(value: &Value) -> Value {
    let Value::Object(m) = value else {
        return value.clone();
    };
    match (m.get("Z1K1").and_then(Value::as_str), m.len()) {
        (Some("Z9"), 2) => {
            if let Some(Value::String(id)) = m.get("Z9K1")
                && is_reference(id)
            {
                return Value::String(id.clone());
            }
        }
        (Some("Z6"), 2) => {
            if let Some(Value::String(s)) = m.get("Z6K1") {
                if !is_reference(s) {
                    return Value::String(s.clone());
                }
                return value.clone();
            }
        }
        _ => {}
    }
    if let Some(item_type) = m.get("Z1K1").and_then(list_item_type) {
        let mut items = vec![canonicalize_normal(item_type)];
        let mut cell = m;
        while let Some(head) = cell.get("K1") {
            items.push(canonicalize_normal(head));
            match cell.get("K2").and_then(Value::as_object) {
                Some(next) => cell = next,
                None => break,
            }
        }
        return Value::Array(items);
    }
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), canonicalize_normal(v)))
            .collect::<Map<_, _>>(),
    )
}

/// The item type of a typed-list type: `Z881K1` of a Z7 call to Z881, or of the `Z4K1`
/// identity of a Z4 literal.
pub(crate) fn list_item_type(ty: &Value) -> Option<&Value> {
    let is_z881_call = |t: &Value| -> Option<bool> {
        Some(
            crate::build::ref_zid(field(t, "Z1K1")?) == Some("Z7")
                && crate::build::ref_zid(field(t, "Z7K1")?) == Some("Z881")
                && field(t, "Z881K1").is_some(),
        )
    };
    if is_z881_call(ty) == Some(true) {
        return field(ty, "Z881K1");
    }
    let identity = field(ty, "Z4K1")?;
    if crate::build::ref_zid(field(ty, "Z1K1")?) == Some("Z4")
        && is_z881_call(identity) == Some(true)
    {
        return field(identity, "Z881K1");
    }
    None
}

/// `value[key]` of an object. ZObjects have a handful of keys, and comparing them is cheaper
/// than hashing the one asked for (SipHash, the map's hasher, was an eighth of a trivial
/// request's time).
pub(crate) fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    map_field(value.as_object()?, key)
}

/// [`field`] of a map.
pub(crate) fn map_field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    const LINEAR_UP_TO: usize = 8;
    if map.len() > LINEAR_UP_TO {
        return map.get(key);
    }
    map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
}
