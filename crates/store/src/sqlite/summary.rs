//! What the store indexes about an object (type, labels) and ZID placeholder rewriting.
//! Pure functions over values, no I/O.

use zeval_zobject::Value;
use zeval_zobject::build::{ref_zid, string_value};
use zeval_zobject::ident::is_reference;

/// The English natural language, whose label is preferred for display.
const ENGLISH: &str = "Z1002";

/// The placeholder ZID of an object that has none yet (the Wikifunctions convention).
pub(super) const PLACEHOLDER: &str = "Z0";

/// The type of a Z2's value: `Z2K2.Z1K1` when it is a reference, or the function of a
/// generic type (`{"Z1K1":"Z7","Z7K1":"Z881",…}` → `Z881`).
pub(super) fn value_type(z2: &Value) -> Option<String> {
    let ty = match z2.get("Z2K2")? {
        // Canonical strings and references have no Z1K1; lists are typed lists.
        Value::String(s) if is_reference(s) => return Some("Z9".into()),
        Value::String(_) => return Some("Z6".into()),
        Value::Array(_) => return Some("Z881".into()),
        value => value.get("Z1K1")?,
    };
    let zid = match ref_zid(ty) {
        Some(zid) if zid != "Z7" => zid,
        _ => ref_zid(ty.get("Z7K1")?)?,
    };
    Some(zid.to_string())
}

/// Labels and aliases of a Z2 (`Z2K3` texts, `Z2K4` alias strings), with their language.
fn texts(z2: &Value) -> Vec<(Option<&str>, &str)> {
    let mut out = Vec::new();
    for item in list_items(z2.get("Z2K3").and_then(|l| l.get("Z12K1"))) {
        if let Some(text) = item.get("Z11K2").and_then(string_value) {
            out.push((item.get("Z11K1").and_then(ref_zid), text));
        }
    }
    for item in list_items(z2.get("Z2K4").and_then(|l| l.get("Z32K1"))) {
        let language = item.get("Z31K1").and_then(ref_zid);
        for alias in list_items(item.get("Z31K2")) {
            if let Some(text) = string_value(alias) {
                out.push((language, text));
            }
        }
    }
    out
}

/// The items of a canonical typed list (`["Z11", item, …]`: the first element is the type).
fn list_items(list: Option<&Value>) -> impl Iterator<Item = &Value> {
    list.and_then(Value::as_array)
        .into_iter()
        .flat_map(|items| items.iter().skip(1))
}

/// The label to show: the English one, else the first.
pub(super) fn display_label(z2: &Value) -> Option<String> {
    let labels: Vec<_> = list_items(z2.get("Z2K3").and_then(|l| l.get("Z12K1")))
        .filter_map(|item| {
            Some((
                item.get("Z11K1").and_then(ref_zid),
                item.get("Z11K2").and_then(string_value)?,
            ))
        })
        .collect();
    labels
        .iter()
        .find(|(language, _)| *language == Some(ENGLISH))
        .or(labels.first())
        .map(|(_, text)| text.to_string())
}

/// Lower-cased labels and aliases, one per line, for substring search.
pub(super) fn search_text(z2: &Value) -> String {
    texts(z2)
        .into_iter()
        .map(|(_, text)| text.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rewrites the placeholder ZID `Z0` to `zid` everywhere in `value`: the string `Z0`, and the
/// prefix of keys `Z0K<n>`, both as strings (e.g. `Z3K2`, `Z17K2`) and as object keys.
pub(super) fn replace_placeholder(value: &mut Value, zid: &str) {
    match value {
        Value::String(s) => {
            if let Some(replaced) = replaced_text(s, zid) {
                *s = replaced;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_placeholder(item, zid)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                replace_placeholder(&mut item, zid);
                map.insert(replaced_text(&key, zid).unwrap_or(key), item);
            }
        }
        _ => {}
    }
}

/// `value` with the placeholder replaced as `replace_placeholder` does when the store
/// creates an object: what a create validates must be what it stores. (The server's own
/// copy rewrote any `Z0K…`, `Z0Kx` and `Z0K01` too, which the store keeps as they are.)
pub fn with_placeholder_replaced(value: &Value, zid: &str) -> Value {
    let mut value = value.clone();
    replace_placeholder(&mut value, zid);
    value
}

fn replaced_text(s: &str, zid: &str) -> Option<String> {
    if s == PLACEHOLDER {
        return Some(zid.to_string());
    }
    let number = s.strip_prefix("Z0K")?;
    let is_key_number = !number.is_empty()
        && !number.starts_with('0')
        && number.bytes().all(|b| b.is_ascii_digit());
    is_key_number.then(|| format!("{zid}K{number}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_the_placeholder_and_its_numbered_keys_are_replaced() {
        let v = json!({"Z2K1": {"Z1K1": "Z6", "Z6K1": "Z0"}, "Z2K2": {"Z8K5": "Z0",
            "Z8K1": ["Z17", {"Z17K2": "Z0K1"}], "Z0K1": "x", "text": "Z01",
            "Z0Kx": "Z0K01"}});
        let fixed = with_placeholder_replaced(&v, "Z10004");
        assert_eq!(fixed["Z2K1"]["Z6K1"], "Z10004");
        assert_eq!(fixed["Z2K2"]["Z8K5"], "Z10004");
        assert_eq!(fixed["Z2K2"]["Z8K1"][1]["Z17K2"], "Z10004K1");
        assert_eq!(fixed["Z2K2"]["Z10004K1"], "x");
        assert_eq!(fixed["Z2K2"]["text"], "Z01");
        assert_eq!(fixed["Z2K2"]["Z0Kx"], "Z0K01");
    }

    fn labelled() -> Value {
        json!({
            "Z1K1": "Z2",
            "Z2K2": {"Z1K1": "Z8"},
            "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11",
                {"Z1K1": "Z11", "Z11K1": "Z1003", "Z11K2": "Invertir"},
                {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": "Reverse String"}]},
            "Z2K4": {"Z1K1": "Z32", "Z32K1": ["Z31",
                {"Z1K1": "Z31", "Z31K1": "Z1002", "Z31K2": ["Z6", "Mirror"]}]}
        })
    }

    #[test]
    fn prefers_the_english_label_and_searches_all_texts() {
        assert_eq!(
            display_label(&labelled()).as_deref(),
            Some("Reverse String")
        );
        assert_eq!(search_text(&labelled()), "invertir\nreverse string\nmirror");
        assert_eq!(value_type(&labelled()).as_deref(), Some("Z8"));
    }

    #[test]
    fn a_generic_type_is_indexed_by_its_function() {
        let z2 = json!({"Z2K2": {"Z1K1": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"}}});
        assert_eq!(value_type(&z2).as_deref(), Some("Z881"));
        assert_eq!(value_type(&json!({"Z2K2": "text"})).as_deref(), Some("Z6"));
        assert_eq!(value_type(&json!({"Z2K2": "Z41"})).as_deref(), Some("Z9"));
        assert_eq!(
            value_type(&json!({"Z2K2": ["Z6"]})).as_deref(),
            Some("Z881")
        );
    }

    #[test]
    fn rewrites_the_placeholder_in_values_and_keys_only() {
        let mut value = json!({
            "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z0"},
            "Z2K2": {"Z1K1": "Z8", "Z8K1": ["Z17", {"Z17K2": "Z0K1"}], "Z8K5": "Z0",
                     "Z0K1": "Z0K12", "other": ["Z01", "Z0K", "Z0K01", "Z0Kx", "Z10"]}
        });
        replace_placeholder(&mut value, "Z10000");
        assert_eq!(
            value,
            json!({
                "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z10000"},
                "Z2K2": {"Z1K1": "Z8", "Z8K1": ["Z17", {"Z17K2": "Z10000K1"}], "Z8K5": "Z10000",
                         "Z10000K1": "Z10000K12", "other": ["Z01", "Z0K", "Z0K01", "Z0Kx", "Z10"]}
            })
        );
    }
}
