//! Canonical JSON text written straight from normal form, without building the canonical
//! tree.
//!
//! Every answer leaves as canonical JSON. Compacting the normal tree into a canonical one
//! and then serialising it allocates a map (a hash table and its entries) per object: about
//! forty of them for the smallest Z22 with its metadata, which was most of what a request
//! that only reports an error cost (2026-12-03 profile: 20 µs, of which building, hashing
//! and dropping the canonical tree took over half). [`write_canonical_normal`] writes the
//! bytes `serde_json::to_vec(&canonicalize_normal(v))` gives, and
//! [`write_canonical_envelope`] those of a canonical Z22 with entries added to its metadata
//! ([`crate::build::set_canonical_envelope_metadata`]). Unit tests hold each to its tree
//! counterpart.

use std::sync::LazyLock;

use crate::build::{canonical_metadata_parts, is_map, string_value, type_zid};
use crate::canonicalize::{list_item_type, map_field};
use crate::ident::is_reference;
use crate::{Map, Value};

/// Writes `serde_json::to_vec(&canonicalize_normal(value))`, for any value.
pub fn write_canonical_normal(value: &Value, out: &mut Vec<u8>) {
    // The same stack growth as `canonicalize_normal`: one frame per nesting level.
    stacker::maybe_grow(128 * 1024, 2 * 1024 * 1024, || write_compact(value, out));
}

fn write_compact(value: &Value, out: &mut Vec<u8>) {
    let Value::Object(m) = value else {
        write_json(out, value);
        return;
    };
    match (map_field(m, "Z1K1").and_then(Value::as_str), m.len()) {
        (Some("Z9"), 2) => {
            if let Some(Value::String(id)) = map_field(m, "Z9K1")
                && is_reference(id)
            {
                write_str(out, id);
                return;
            }
        }
        // A reference-like string keeps its Z6 object, which the generic case below writes
        // unchanged (both of its values are strings).
        (Some("Z6"), 2) => {
            if let Some(Value::String(s)) = map_field(m, "Z6K1")
                && !is_reference(s)
            {
                write_str(out, s);
                return;
            }
        }
        _ => {}
    }
    if let Some(item_type) = map_field(m, "Z1K1").and_then(list_item_type) {
        out.push(b'[');
        write_canonical_normal(item_type, out);
        let mut cell = m;
        while let Some(head) = map_field(cell, "K1") {
            out.push(b',');
            write_canonical_normal(head, out);
            match map_field(cell, "K2").and_then(Value::as_object) {
                Some(next) => cell = next,
                None => break,
            }
        }
        out.push(b']');
        return;
    }
    out.push(b'{');
    write_fields(out, m, |_, value, out| write_canonical_normal(value, out));
    out.push(b'}');
}

/// `"key":value` for every field of `map`, comma-separated, each value written by `value`.
fn write_fields(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    mut value: impl FnMut(&str, &Value, &mut Vec<u8>),
) {
    for (index, (key, field)) in map.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        value(key, field, out);
    }
}

/// Writes the canonical form of the normal Z22 `z22` with `entries` (key, string value) set
/// on its metadata, the bytes of `canonicalize_normal(z22)` followed by
/// [`crate::build::set_canonical_envelope_metadata`] with each value as a Z6.
///
/// Returns `false`, having written nothing, when the Z22 or its metadata has a shape this
/// writer does not cover (the caller then takes the tree path): it covers a Z22 object
/// whose metadata is absent, void, a bare Z5, or a normal `Z883` map whose pairs are
/// objects keyed by strings, which is every envelope the orchestrator builds.
pub fn write_canonical_envelope<K: AsRef<str>, V: AsRef<str>>(
    z22: &Value,
    entries: &[(K, V)],
    out: &mut Vec<u8>,
) -> bool {
    let Some(fields) = z22.as_object() else {
        return false;
    };
    if !is_generic_object(z22) {
        return false;
    }
    let metadata = match fields.get("Z22K2") {
        Some(meta) => match Metadata::read(meta, entries) {
            Some(metadata) => Some(metadata),
            None => return false,
        },
        None => None,
    };
    out.push(b'{');
    write_fields(out, fields, |key, value, out| match (&metadata, key) {
        (Some(metadata), "Z22K2") => metadata.write(out),
        _ => write_canonical_normal(value, out),
    });
    out.push(b'}');
    true
}

/// An object that compacts to an object of the same keys: not a Z9 or Z6 that compacts to
/// a string, nor a typed list that compacts to an array.
fn is_generic_object(value: &Value) -> bool {
    let Some(m) = value.as_object() else {
        return false;
    };
    let Some(ty) = map_field(m, "Z1K1") else {
        return true;
    };
    !matches!(ty.as_str(), Some("Z9" | "Z6")) && list_item_type(ty).is_none()
}

/// The canonical metadata map being written: the normal map's own fields (or none, for the
/// empty map that replaces void or a bare Z5), and its pairs with the entries applied.
struct Metadata<'a> {
    /// The normal map, when the metadata was one.
    map: Option<&'a Value>,
    pairs: Vec<Pair<'a>>,
}

struct Pair<'a> {
    key: &'a str,
    kind: PairKind<'a>,
}

enum PairKind<'a> {
    /// A pair of the normal map, written compacted, with its `K2` replaced when set.
    Existing {
        pair: &'a Value,
        replaced: Option<&'a str>,
    },
    /// A new pair whose value is a normal ZObject (the bare Z5 that becomes `errors`).
    Object(&'a Value),
    /// A new pair whose value is a string.
    Text(&'a str),
}

impl<'a> Metadata<'a> {
    /// The metadata `meta` will become, or `None` for a shape this writer leaves to the
    /// tree path.
    fn read<K: AsRef<str>, V: AsRef<str>>(meta: &'a Value, entries: &'a [(K, V)]) -> Option<Self> {
        let mut metadata = if is_map(meta) {
            Metadata {
                map: Some(meta),
                pairs: normal_pairs(meta)?,
            }
        } else {
            let mut pairs = Vec::new();
            if type_zid(meta) == Some("Z5") {
                // A Z5 compacts to an object of the same type only when it is an ordinary
                // object; anything stranger goes the tree way.
                if !is_generic_object(meta) {
                    return None;
                }
                pairs.push(Pair {
                    key: "errors",
                    kind: PairKind::Object(meta),
                });
            }
            Metadata { map: None, pairs }
        };
        for (key, text) in entries {
            let (key, text) = (key.as_ref(), text.as_ref());
            match metadata.pairs.iter_mut().find(|pair| pair.key == key) {
                Some(pair) => match &mut pair.kind {
                    PairKind::Existing { replaced, .. } => *replaced = Some(text),
                    other => *other = PairKind::Text(text),
                },
                None => metadata.pairs.push(Pair {
                    key,
                    kind: PairKind::Text(text),
                }),
            }
        }
        Some(metadata)
    }

    fn write(&self, out: &mut Vec<u8>) {
        let parts = &*CANONICAL_PARTS;
        let Some(map) = self.map.and_then(Value::as_object) else {
            out.extend_from_slice(br#"{"Z1K1":"#);
            out.extend_from_slice(&parts.map_type);
            out.extend_from_slice(br#","K1":["#);
            out.extend_from_slice(&parts.pair_type);
            self.write_pairs(out);
            out.extend_from_slice(b"]}");
            return;
        };
        out.push(b'{');
        write_fields(out, map, |key, value, out| {
            if key == "K1"
                && let Some(item_type) = value.get("Z1K1").and_then(list_item_type)
            {
                out.push(b'[');
                write_canonical_normal(item_type, out);
                self.write_pairs(out);
                out.push(b']');
            } else {
                write_canonical_normal(value, out);
            }
        });
        out.push(b'}');
    }

    /// Every pair, each preceded by a comma (they follow the list's item type).
    fn write_pairs(&self, out: &mut Vec<u8>) {
        let parts = &*CANONICAL_PARTS;
        for pair in &self.pairs {
            out.push(b',');
            match &pair.kind {
                PairKind::Existing {
                    pair,
                    replaced: None,
                } => write_canonical_normal(pair, out),
                PairKind::Existing {
                    pair,
                    replaced: Some(text),
                } => write_replaced_pair(pair, text, out),
                PairKind::Object(value) => {
                    write_new_pair_start(&parts.pair_type, pair.key, out);
                    write_canonical_normal(value, out);
                    out.push(b'}');
                }
                PairKind::Text(text) => {
                    write_new_pair_start(&parts.pair_type, pair.key, out);
                    write_string_value(out, text);
                    out.push(b'}');
                }
            }
        }
    }
}

/// The pairs of a normal map whose list and pairs have the shapes the orchestrator builds,
/// or `None`.
fn normal_pairs(map: &Value) -> Option<Vec<Pair<'_>>> {
    let list = map.get("K1")?;
    list.get("Z1K1").and_then(list_item_type)?;
    if !matches!(list, Value::Object(_)) {
        return None;
    }
    let mut pairs = Vec::new();
    let mut cell = list.as_object()?;
    while let Some(pair) = cell.get("K1") {
        if !is_generic_object(pair) || pair.get("Z1K1").is_none() {
            return None;
        }
        let key = match pair.get("K1")? {
            Value::String(key) => key.as_str(),
            key @ Value::Object(m) if m.len() == 2 => string_value(key)?,
            _ => return None,
        };
        pairs.push(Pair {
            key,
            kind: PairKind::Existing {
                pair,
                replaced: None,
            },
        });
        match cell.get("K2").and_then(Value::as_object) {
            Some(next) => cell = next,
            None => break,
        }
    }
    Some(pairs)
}

/// A normal pair compacted, with its `K2` (appended when missing) the string `text`.
fn write_replaced_pair(pair: &Value, text: &str, out: &mut Vec<u8>) {
    let Some(fields) = pair.as_object() else {
        return;
    };
    out.push(b'{');
    write_fields(out, fields, |key, value, out| {
        if key == "K2" {
            write_string_value(out, text);
        } else {
            write_canonical_normal(value, out);
        }
    });
    if !fields.contains_key("K2") {
        out.extend_from_slice(br#","K2":"#);
        write_string_value(out, text);
    }
    out.push(b'}');
}

/// `{"Z1K1":<pair type>,"K1":<key>,"K2":`, the start of a pair the entries add.
fn write_new_pair_start(pair_type: &[u8], key: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"Z1K1":"#);
    out.extend_from_slice(pair_type);
    out.extend_from_slice(br#","K1":"#);
    write_string_value(out, key);
    out.extend_from_slice(br#","K2":"#);
}

/// A string in canonical form: itself, or its Z6 object when it looks like a reference.
fn write_string_value(out: &mut Vec<u8>, text: &str) {
    if is_reference(text) {
        out.extend_from_slice(br#"{"Z1K1":"Z6","Z6K1":"#);
        write_str(out, text);
        out.push(b'}');
    } else {
        write_str(out, text);
    }
}

/// The canonical metadata map's type and pair type as JSON text, rendered once.
struct CanonicalParts {
    map_type: Vec<u8>,
    pair_type: Vec<u8>,
}

static CANONICAL_PARTS: LazyLock<CanonicalParts> = LazyLock::new(|| {
    let (empty_map, pair_type) = canonical_metadata_parts();
    let text = |value: &Value| serde_json::to_vec(value).unwrap_or_default();
    CanonicalParts {
        map_type: text(&empty_map["Z1K1"]),
        pair_type: text(pair_type),
    }
});

/// Writes `text` as a JSON string: the bytes `serde_json::to_writer` writes.
pub fn write_json_string(out: &mut Vec<u8>, text: &str) {
    write_str(out, text);
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    // Keys, ZIDs and most strings need no escape: copied as they are, which is what
    // serde_json writes for them.
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    // Writing to a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn write_json(out: &mut Vec<u8>, value: &Value) {
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::build::{
        empty_metadata, failure, set_canonical_envelope_metadata, set_metadata, void, z6, z22,
    };
    use crate::canonicalize::canonicalize_normal;
    use crate::error::{z5, z5_untyped};
    use crate::normalize;

    fn tree_text(value: &Value) -> String {
        serde_json::to_string(&canonicalize_normal(value)).unwrap()
    }

    fn written(value: &Value) -> String {
        let mut out = Vec::new();
        write_canonical_normal(value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn normal_values_write_as_their_canonical_trees() {
        let canonical = [
            json!("plain"),
            json!("Z42"),
            json!({"Z1K1": "Z6", "Z6K1": "Z42"}),
            json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": ["Z6", "a", "b\"\n\u{1F600}"]}),
            json!(["Z1"]),
            json!({"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": "text"}),
            json!({"Z1K1": {"Z1K1": "Z7", "Z7K1": "Z885", "Z885K1": "Z500"}, "Z500K1": "x"}),
            json!([{"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"}, ["Z6", "nested"]]),
        ];
        for value in canonical {
            let normal = normalize(&value).unwrap();
            assert_eq!(written(&normal), tree_text(&normal), "{value}");
            assert_eq!(written(&normal), value.to_string(), "{value}");
        }
        // Values that are not normal are compacted (or copied) as the tree path does.
        for odd in [
            json!(12),
            json!([1, {"Z1K1": "Z6", "Z6K1": "x"}]),
            json!({"Z1K1": "Z9", "Z9K1": "not a reference"}),
            json!({"Z1K1": "Z6", "Z6K1": 3}),
            json!({"no type": {"Z1K1": "Z6", "Z6K1": "x"}}),
            json!(null),
        ] {
            assert_eq!(written(&odd), tree_text(&odd), "{odd}");
        }
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for text in [
            "",
            "Z1K1",
            "plain text",
            "quote \" and backslash \\",
            "control \u{0}\u{1f} tab\t newline\n",
            "delete \u{7f}, accents é, emoji \u{1F600}, separator \u{2028}",
        ] {
            let mut out = Vec::new();
            write_json_string(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn deep_values_do_not_overflow_the_stack() {
        let mut value = z6("bottom");
        for _ in 0..100_000 {
            value = crate::build::obj([("Z1K1", Value::from("Z60")), ("Z60K1", value)]);
        }
        let text = written(&value);
        assert!(text.starts_with(r#"{"Z1K1":"Z60","Z60K1":{"#));
        crate::depth::drop_iteratively(value);
    }

    const ENTRIES: [(&str, &str); 3] = [
        ("orchestrationMemoryUsage", "0.00 MiB"),
        ("orchestrationHostname", "Z42"),
        ("implementationId", "a \"quoted\" \u{1F600}\n"),
    ];

    /// The tree path: canonicalize, then set the entries as Z6 values.
    fn envelope_by_tree(z22: &Value, entries: &[(&str, &str)]) -> String {
        let mut canonical = canonicalize_normal(z22);
        set_canonical_envelope_metadata(
            &mut canonical,
            entries.iter().map(|(key, text)| (*key, z6(*text))),
        );
        serde_json::to_string(&canonical).unwrap()
    }

    fn envelope_written(z22: &Value, entries: &[(&str, &str)]) -> Option<String> {
        let mut out = Vec::new();
        write_canonical_envelope(z22, entries, &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn envelopes_write_as_their_canonical_trees() {
        let error = z5("Z539", [z6("The provided object is not a function call")]);
        let mut with_entries = empty_metadata();
        set_metadata(&mut with_entries, "implementationId", z6("Z10001"));
        set_metadata(&mut with_entries, "Z20", z6("a reference-like key"));
        set_metadata(&mut with_entries, "errors", error.clone());
        let value = normalize(&json!({"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": "x"})).unwrap();
        let envelopes = [
            failure(error.clone()),
            z22(void(), error.clone()),
            z22(void(), z5_untyped("Z558", "Function call timed out")),
            z22(value.clone(), void()),
            z22(value.clone(), with_entries),
            z22(z6("Z6"), empty_metadata()),
            crate::build::obj([("Z1K1", crate::build::z9("Z22")), ("Z22K1", value)]),
        ];
        for z22 in &envelopes {
            for entries in [&ENTRIES[..], &[], &[("errors", "replaced")]] {
                assert_eq!(
                    envelope_written(z22, entries).as_deref(),
                    Some(envelope_by_tree(z22, entries).as_str()),
                    "{z22}"
                );
            }
        }
    }

    #[test]
    fn shapes_it_does_not_cover_are_left_to_the_tree() {
        let mut odd_pair = empty_metadata();
        set_metadata(&mut odd_pair, "k", z6("v"));
        odd_pair["K1"]["K1"]["K1"] = json!(["not a key"]);
        for z22 in [
            json!("Z22"),
            z22(void(), odd_pair),
            z22(void(), json!({"Z1K1": "Z6", "Z6K1": "not a map"})),
        ] {
            let written = envelope_written(&z22, &ENTRIES);
            if let Some(text) = written {
                // Covered after all: then it must be exact.
                assert_eq!(text, envelope_by_tree(&z22, &ENTRIES), "{z22}");
            }
        }
        assert_eq!(envelope_written(&json!("Z22"), &ENTRIES), None);
    }
}
