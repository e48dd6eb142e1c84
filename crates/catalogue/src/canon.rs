//! Small builders for the canonical form the catalogue is written in (spec §1.3): bare
//! references, bare strings unless reference-like, benjamin arrays, Z12 labels.

use serde_json::json;
use zeval_zobject::ident::is_reference;
use zeval_zobject::{Map, Value};

/// The natural language every catalogue label is written in (English).
pub(crate) const LABEL_LANGUAGE: &str = "Z1002";

/// A canonical Z6: the bare string, or the escaped object when it looks like a reference
/// (canonical form keeps `{"Z1K1":"Z6","Z6K1":"Z41"}` so it is not read back as a Z9).
pub(crate) fn string(s: &str) -> Value {
    if is_reference(s) {
        escaped(s)
    } else {
        Value::from(s)
    }
}

/// An explicit Z6 object, whatever the string looks like.
pub(crate) fn escaped(s: &str) -> Value {
    json!({"Z1K1": "Z6", "Z6K1": s})
}

/// A canonical type from a compact expression: `Z6` is a reference, `[T]` is `Z881(T)`,
/// `Z882(A,B)` and `Z883(K,V)` are the generic pair and map.
pub(crate) fn type_expr(expr: &str) -> Value {
    let expr = expr.trim();
    if let Some(item) = expr.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
        return generic("Z881", &[type_expr(item)]);
    }
    if let Some((function, rest)) = expr.split_once('(') {
        let inner = rest
            .strip_suffix(')')
            .expect("type expression: unbalanced parenthesis");
        let args: Vec<Value> = split_top_level(inner).into_iter().map(type_expr).collect();
        return generic(function, &args);
    }
    assert!(is_reference(expr), "type expression {expr:?} is not a ZID");
    Value::from(expr)
}

/// Splits `A,B` at commas that are not nested in brackets or parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A canonical call of a generic type function with positional arguments `<fn>K1…`.
pub(crate) fn generic(function: &str, args: &[Value]) -> Value {
    let mut m = Map::new();
    m.insert("Z1K1".into(), "Z7".into());
    m.insert("Z7K1".into(), function.into());
    for (i, arg) in args.iter().enumerate() {
        m.insert(format!("{function}K{}", i + 1), arg.clone());
    }
    Value::Object(m)
}

/// A benjamin array: the item type first, then the items.
pub(crate) fn list(item_type: Value, items: impl IntoIterator<Item = Value>) -> Value {
    let mut array = vec![item_type];
    array.extend(items);
    Value::Array(array)
}

/// A list of references (testers, implementations) typed `item_type`.
pub(crate) fn ref_list(item_type: &str, zids: &[&str]) -> Value {
    list(item_type.into(), zids.iter().map(|z| Value::from(*z)))
}

/// A list of strings typed Z6.
pub(crate) fn string_list(items: &[&str]) -> Value {
    list("Z6".into(), items.iter().map(|s| string(s)))
}

/// A Z12 multilingual text holding one English Z11.
pub(crate) fn label(text: &str) -> Value {
    json!({
        "Z1K1": "Z12",
        "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": LABEL_LANGUAGE, "Z11K2": string(text)}],
    })
}

/// A Z32 multilingual stringset holding one English Z31 with `aliases`.
pub(crate) fn aliases(aliases: &[&str]) -> Value {
    json!({
        "Z1K1": "Z32",
        "Z32K1": ["Z31", {"Z1K1": "Z31", "Z31K1": LABEL_LANGUAGE, "Z31K2": string_list(aliases)}],
    })
}

/// A Z3 key declaration.
pub(crate) fn key(value_type: &str, key_id: &str, text: &str) -> Value {
    json!({"Z1K1": "Z3", "Z3K1": type_expr(value_type), "Z3K2": key_id, "Z3K3": label(text)})
}

/// The keys `<zid>K1…` of a type or error type, from `(type, label)` pairs in order.
pub(crate) fn keys(zid: &str, keys: &[(&str, &str)]) -> Value {
    let keys = keys
        .iter()
        .enumerate()
        .map(|(i, (value_type, text))| key(value_type, &format!("{zid}K{}", i + 1), text));
    list("Z3".into(), keys)
}

/// The persistent object `Z2` wrapping `value`, with an English label and, if any, aliases.
pub(crate) fn persistent(zid: &str, value: Value, text: &str, alias_list: &[&str]) -> Value {
    let mut m = Map::new();
    m.insert("Z1K1".into(), "Z2".into());
    m.insert("Z2K1".into(), escaped(zid));
    m.insert("Z2K2".into(), value);
    m.insert("Z2K3".into(), label(text));
    if !alias_list.is_empty() {
        m.insert("Z2K4".into(), aliases(alias_list));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_expressions() {
        assert_eq!(type_expr("Z6"), json!("Z6"));
        assert_eq!(
            type_expr("[Z3]"),
            json!({"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z3"})
        );
        assert_eq!(
            type_expr("Z883(Z39, [Z1])"),
            json!({"Z1K1": "Z7", "Z7K1": "Z883", "Z883K1": "Z39",
                   "Z883K2": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z1"}})
        );
    }

    #[test]
    fn strings_escape_only_reference_like_text() {
        assert_eq!(string("en"), json!("en"));
        assert_eq!(string("Z1K1"), json!("Z1K1"));
        assert_eq!(string("Z41"), json!({"Z1K1": "Z6", "Z6K1": "Z41"}));
    }

    #[test]
    #[should_panic(expected = "is not a ZID")]
    fn bad_type_expression_is_caught() {
        type_expr("string");
    }
}
