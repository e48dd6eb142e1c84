//! Guarding against hostile nesting in values built in memory.
//!
//! JSON text is bounded by [`crate::json::MAX_DEPTH`] when parsed, but values can also be
//! built programmatically. The functions that walk a whole ZObject (normalize, canonicalize,
//! validate) first measure its depth here without recursion and refuse values deeper than
//! [`MAX_DEPTH`] with a Z5.

use crate::Value;
use crate::build::z6;
use crate::error::z5;

/// The deepest nesting of arrays and objects that normalize, canonicalize and validate
/// accept: the same limit as JSON parsing.
pub const MAX_DEPTH: usize = crate::json::MAX_DEPTH;

/// Whether `value` nests arrays and objects more than `max` levels deep (a scalar is depth
/// 0, `[]` is depth 1). Iterative: safe on any depth.
pub fn exceeds(value: &Value, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        if depth + 1 > max {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

/// How many levels `value` nests arrays and objects (a scalar is depth 0, `[]` is depth 1).
/// Iterative: safe on any depth.
pub fn of(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, depth + 1))),
            Value::Object(m) => stack.extend(m.values().map(|c| (c, depth + 1))),
            _ => {}
        }
        deepest = deepest.max(depth + usize::from(v.is_array() || v.is_object()));
    }
    deepest
}

/// The Z5 for a value nested deeper than [`MAX_DEPTH`]: a Z502 around a Z500 that says so.
pub fn too_deep_error() -> Value {
    let message = format!("the ZObject nests deeper than {MAX_DEPTH} levels");
    crate::validate::not_wellformed(z5("Z500", [z6(message)]))
}

/// Drops a value without recursion. Dropping a `Value` normally recurses once per level, so
/// a value nested a million levels deep would overflow the stack.
pub fn drop_iteratively(value: Value) {
    let scalar = |v: &Value| !matches!(v, Value::Array(_) | Value::Object(_));
    let shallow = match &value {
        Value::Array(items) => items.iter().all(scalar),
        Value::Object(m) => m.values().all(scalar),
        _ => true,
    };
    if shallow {
        // One level: its drop does not recurse, and needs no stack of its own.
        return;
    }
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_depth_of_a_value() {
        assert_eq!(of(&serde_json::json!("x")), 0);
        assert_eq!(of(&serde_json::json!([])), 1);
        assert_eq!(of(&serde_json::json!({"a": [1, {"b": []}], "c": 2})), 4);
    }

    fn nested_arrays(depth: usize) -> Value {
        let mut v = Value::String("Z6".into());
        for _ in 0..depth {
            v = Value::Array(vec![v]);
        }
        v
    }

    #[test]
    fn measures_without_recursion() {
        let v = nested_arrays(1_000_000);
        assert!(exceeds(&v, MAX_DEPTH));
        drop_iteratively(v);
        let shallow = nested_arrays(3);
        assert!(!exceeds(&shallow, 3));
        assert!(exceeds(&shallow, 2));
    }
}
