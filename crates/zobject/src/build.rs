//! Builders and accessors for normal-form ZObjects: Z6, Z9, typed lists, pairs, the Z22
//! envelope and its `Z883(Z6, Z1)` metadata map (spec §1.4, §1.7).

use crate::{Map, Value};

/// A normal Z6 string `{"Z1K1":"Z6","Z6K1":s}`.
pub fn z6(s: impl Into<String>) -> Value {
    obj([("Z1K1", Value::from("Z6")), ("Z6K1", Value::from(s.into()))])
}

/// A normal Z9 reference `{"Z1K1":"Z9","Z9K1":zid}`.
pub fn z9(zid: impl Into<String>) -> Value {
    obj([
        ("Z1K1", Value::from("Z9")),
        ("Z9K1", Value::from(zid.into())),
    ])
}

/// The void value Z24, as a normal reference.
pub fn void() -> Value {
    z9("Z24")
}

/// Builds a JSON object from key/value pairs, keeping their order.
pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect::<Map<_, _>>(),
    )
}

/// A normal function call `{"Z1K1":Z9 Z7,"Z7K1":Z9 function, …arguments}`.
pub fn call<K: Into<String>>(function: &str, args: impl IntoIterator<Item = (K, Value)>) -> Value {
    let mut m = Map::new();
    m.insert("Z1K1".into(), z9("Z7"));
    m.insert("Z7K1".into(), z9(function));
    for (k, v) in args {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// The normal type `Z881(item)` of a typed list.
pub fn list_type(item: Value) -> Value {
    call("Z881", [("Z881K1", item)])
}

/// The normal type `Z882(first, second)` of a typed pair.
pub fn pair_type(first: Value, second: Value) -> Value {
    call("Z882", [("Z882K1", first), ("Z882K2", second)])
}

/// The normal type `Z883(key, value)` of a typed map.
pub fn map_type(key: Value, value: Value) -> Value {
    call("Z883", [("Z883K1", key), ("Z883K2", value)])
}

/// A normal typed list of `item_type` holding `items`: linked `K1`/`K2` cells, every cell
/// typed `Z881(item_type)`, ending in an empty cell.
pub fn typed_list(item_type: Value, items: impl IntoIterator<Item = Value>) -> Value {
    let ty = list_type(item_type);
    let mut items: Vec<Value> = items.into_iter().collect();
    // The first cell takes the type itself: copying a large type once more per list would
    // make nested lists cost the square of their depth.
    if items.is_empty() {
        return obj([("Z1K1", ty)]);
    }
    let first = items.remove(0);
    let mut list = obj([("Z1K1", ty.clone())]);
    for item in items.into_iter().rev() {
        list = obj([("Z1K1", ty.clone()), ("K1", item), ("K2", list)]);
    }
    obj([("Z1K1", ty), ("K1", first), ("K2", list)])
}

/// The elements of a normal typed list, walking `K1`/`K2` cells without recursion. Returns
/// `None` if a cell is not an object.
pub fn list_items(list: &Value) -> Option<Vec<&Value>> {
    let mut items = Vec::new();
    let mut cell = list.as_object()?;
    while let Some(head) = cell.get("K1") {
        items.push(head);
        cell = cell.get("K2")?.as_object()?;
    }
    Some(items)
}

/// A normal typed pair.
pub fn pair(first_type: Value, second_type: Value, first: Value, second: Value) -> Value {
    obj([
        ("Z1K1", pair_type(first_type, second_type)),
        ("K1", first),
        ("K2", second),
    ])
}

/// A Z22 evaluation result `{Z22K1: value, Z22K2: metadata}` in normal form.
pub fn z22(value: Value, metadata: Value) -> Value {
    obj([("Z1K1", z9("Z22")), ("Z22K1", value), ("Z22K2", metadata)])
}

/// A successful result: the value with void metadata.
pub fn success(value: Value) -> Value {
    z22(value, void())
}

/// A failed result: void with a metadata map `{errors: error}`.
pub fn failure(error: Value) -> Value {
    let mut meta = empty_metadata();
    set_metadata(&mut meta, "errors", error);
    z22(void(), meta)
}

/// An empty `Z883(Z6, Z1)` metadata map.
pub fn empty_metadata() -> Value {
    // Every answer carries one; a clone copies the maps' hash tables instead of hashing
    // every key again.
    static EMPTY: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
        obj([
            ("Z1K1", map_type(z9("Z6"), z9("Z1"))),
            ("K1", typed_list(pair_type(z9("Z6"), z9("Z1")), [])),
        ])
    });
    EMPTY.clone()
}

/// The canonical forms of the metadata map's empty value and of its pair type.
pub(crate) fn canonical_metadata_parts() -> &'static (Value, Value) {
    static PARTS: std::sync::LazyLock<(Value, Value)> = std::sync::LazyLock::new(|| {
        (
            crate::canonicalize::canonicalize_normal(&empty_metadata()),
            crate::canonicalize::canonicalize_normal(&pair_type(z9("Z6"), z9("Z1"))),
        )
    });
    &PARTS
}

/// Whether `v` is void: the reference Z24 (either form) or a Z21 instance.
pub fn is_void(v: &Value) -> bool {
    match v {
        Value::String(s) => s == "Z24",
        Value::Object(m) => {
            m.get("Z9K1").and_then(Value::as_str) == Some("Z24")
                || matches!(m.get("Z1K1").and_then(ref_zid), Some("Z21"))
        }
        _ => false,
    }
}

/// The ZID a reference names, in canonical (`"Z40"`) or normal (`{Z1K1:Z9,Z9K1:Z40}`) form.
pub fn ref_zid(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(m) if m.get("Z1K1").and_then(Value::as_str) == Some("Z9") => {
            m.get("Z9K1")?.as_str()
        }
        _ => None,
    }
}

/// The text of a string, in canonical (`"a"`) or normal (`{Z1K1:Z6,Z6K1:"a"}`) form.
pub fn string_value(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(m) if m.get("Z1K1").and_then(Value::as_str) == Some("Z6") => {
            m.get("Z6K1")?.as_str()
        }
        _ => None,
    }
}

/// The ZID of an object's type when its `Z1K1` is a reference (either form).
pub fn type_zid(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) => ref_zid(m.get("Z1K1")?),
        _ => None,
    }
}

/// Whether a metadata value is a typed map (its `Z1K1` names Z883, in either form).
pub fn is_map(v: &Value) -> bool {
    let Some(ty) = v.get("Z1K1") else {
        return false;
    };
    ty.get("Z7K1").and_then(ref_zid) == Some("Z883")
}

/// Looks up `key` in a metadata map, normal or canonical (a benjamin array `K1`).
pub fn get_metadata<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map_entries(map)?
        .into_iter()
        .find(|(k, _)| string_value(k) == Some(key))
        .map(|(_, v)| v)
}

/// The `(key, value)` entries of a typed map, normal or canonical.
pub fn map_entries(map: &Value) -> Option<Vec<(&Value, &Value)>> {
    let pairs: Vec<&Value> = match map.get("K1")? {
        Value::Array(items) => items.iter().skip(1).collect(),
        list => list_items(list)?,
    };
    Some(
        pairs
            .into_iter()
            .filter_map(|p| Some((p.get("K1")?, p.get("K2")?)))
            .collect(),
    )
}

/// Sets `key` in a normal metadata map: overwrites an existing entry in place, otherwise
/// appends a new pair at the end (the original's `setMetadataValue`).
pub fn set_metadata(map: &mut Value, key: &str, value: Value) {
    static TYPES: std::sync::LazyLock<(Value, Value)> = std::sync::LazyLock::new(|| {
        let pair_ty = pair_type(z9("Z6"), z9("Z1"));
        (pair_ty.clone(), list_type(pair_ty))
    });
    let (pair_ty, list_ty) = (TYPES.0.clone(), TYPES.1.clone());
    let Some(mut cell) = map.get_mut("K1") else {
        return;
    };
    loop {
        let is_last = cell.get("K1").is_none();
        if is_last {
            let new = obj([("Z1K1", pair_ty), ("K1", z6(key)), ("K2", value)]);
            let tail = obj([("Z1K1", list_ty)]);
            if let Value::Object(m) = cell {
                m.insert("K1".into(), new);
                m.insert("K2".into(), tail);
            }
            return;
        }
        if cell
            .get("K1")
            .and_then(|p| p.get("K1"))
            .and_then(string_value)
            == Some(key)
        {
            if let Some(entry) = cell.get_mut("K1") {
                entry["K2"] = value;
            }
            return;
        }
        cell = match cell.get_mut("K2") {
            Some(next) => next,
            None => return,
        };
    }
}

/// Sets a metadata key on a Z22, turning void or bare-Z5 metadata into a map first (the
/// original's `makeMappedResultEnvelope` rules).
pub fn set_envelope_metadata(z22: &mut Value, key: &str, value: Value) {
    let Some(meta) = z22.get_mut("Z22K2") else {
        return;
    };
    if !is_map(meta) {
        let previous = std::mem::replace(meta, empty_metadata());
        if type_zid(&previous) == Some("Z5") {
            set_metadata(meta, "errors", previous);
        }
    }
    set_metadata(meta, key, value);
}

/// Sets `entries` (normal-form values) on the metadata of a **canonical** Z22, as
/// [`set_envelope_metadata`] does on a normal one: each value is compacted on its own, so the
/// answer is what canonicalizing the whole normal envelope would give, without building and
/// compacting the map's normal form (about half of what a trivial request cost).
pub fn set_canonical_envelope_metadata<'k>(
    z22: &mut Value,
    entries: impl IntoIterator<Item = (&'k str, Value)>,
) {
    let Some(meta) = z22.get_mut("Z22K2") else {
        return;
    };
    let is_canonical_map = is_map(meta) && meta.get("K1").is_some_and(Value::is_array);
    if !is_canonical_map {
        let previous = std::mem::replace(meta, canonical_metadata_parts().0.clone());
        if type_zid(&previous) == Some("Z5") {
            set_canonical_metadata(meta, "errors", previous);
        }
    }
    for (key, value) in entries {
        let value = crate::canonicalize::canonicalize_normal(&value);
        set_canonical_metadata(meta, key, value);
    }
}

/// Sets `key` to `value` (both canonical) in a canonical metadata map: overwrites an existing
/// entry in place, otherwise appends a pair.
fn set_canonical_metadata(map: &mut Value, key: &str, value: Value) {
    let Some(Value::Array(pairs)) = map.get_mut("K1") else {
        return;
    };
    let existing = pairs
        .iter_mut()
        .skip(1)
        .find(|pair| pair.get("K1").and_then(string_value) == Some(key));
    if let Some(pair) = existing {
        pair["K2"] = value;
        return;
    }
    let pair_ty = canonical_metadata_parts().1.clone();
    let key = if crate::ident::is_reference(key) {
        z6(key)
    } else {
        Value::from(key)
    };
    pairs.push(obj([("Z1K1", pair_ty), ("K1", key), ("K2", value)]));
}

/// The error of a Z22: its `errors` metadata entry, `Z22K2` itself when that is not a map,
/// or `None` when there is no error (void).
pub fn envelope_error(z22: &Value) -> Option<&Value> {
    let meta = z22.get("Z22K2")?;
    let err = if is_map(meta) {
        get_metadata(meta, "errors")?
    } else {
        meta
    };
    (!is_void(err)).then_some(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_set_get_overwrite() {
        let mut meta = empty_metadata();
        set_metadata(&mut meta, "a", z6("1"));
        set_metadata(&mut meta, "b", z6("2"));
        set_metadata(&mut meta, "a", z6("3"));
        let keys: Vec<_> = map_entries(&meta)
            .unwrap()
            .iter()
            .map(|(k, _)| string_value(k).unwrap())
            .collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(get_metadata(&meta, "a"), Some(&z6("3")));
    }

    #[test]
    fn envelope_errors() {
        let ok = success(z6("x"));
        assert_eq!(envelope_error(&ok), None);
        let bad = failure(crate::error::z5("Z500", [z6("boom")]));
        assert_eq!(type_zid(envelope_error(&bad).unwrap()), Some("Z5"));
        let mut legacy = z22(void(), crate::error::z5("Z558", [z6("x")]));
        set_envelope_metadata(&mut legacy, "implementationType", z6("BuiltIn"));
        assert!(is_map(&legacy["Z22K2"]));
        assert!(envelope_error(&legacy).is_some());
    }

    #[test]
    fn canonical_metadata_matches_canonicalizing_the_normal_envelope() {
        let entries = || {
            [
                ("errors", z6("overwritten")),
                ("orchestrationDuration", z6("3 ms")),
                ("looksLikeAReference", z6("Z801")),
                ("implementationType", z6("BuiltIn")),
            ]
        };
        let starts = [
            success(z6("x")),
            failure(crate::error::z5("Z500", [z6("boom")])),
            z22(void(), crate::error::z5("Z558", [z6("x")])),
            {
                let mut with_map = success(z6("Z6"));
                set_envelope_metadata(&mut with_map, "implementationType", z6("Composition"));
                with_map
            },
        ];
        for start in starts {
            let mut normal = start.clone();
            for (key, value) in entries() {
                set_envelope_metadata(&mut normal, key, value);
            }
            let mut canonical = crate::canonicalize::canonicalize_normal(&start);
            set_canonical_envelope_metadata(&mut canonical, entries());
            assert_eq!(
                canonical,
                crate::canonicalize::canonicalize_normal(&normal),
                "from {start}"
            );
        }
    }

    #[test]
    fn list_round_trip() {
        let l = typed_list(z9("Z6"), [z6("a"), z6("b")]);
        assert_eq!(list_items(&l).unwrap(), [&z6("a"), &z6("b")]);
    }
}
