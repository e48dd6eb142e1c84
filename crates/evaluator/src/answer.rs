//! An evaluator's answer: the executor's Z22 and the service's metadata about the call, kept
//! apart until the answer leaves.
//!
//! The metadata map is a normal-form `Z883(Z6, Z1)`: every pair carries its `Z882` type and
//! every list cell its `Z881` type, so eleven short strings become about 6 KB of JSON. Built
//! as a `Value` tree and then serialised, that cost a trivial call tens of microseconds (a
//! fifth of its time in the 2026-12-03 profile). [`Answer::to_json`] writes the same bytes
//! straight from the strings, with the types' text rendered once per process;
//! [`Answer::into_value`] builds the tree for callers that want one. A unit test holds the
//! two to the same bytes.

use std::sync::LazyLock;

use zeval_zobject::Value;
use zeval_zobject::build::{map_type, obj, pair_type, typed_list, z6, z9};

/// One metadata entry's value.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// A string (`Z6`).
    Text(String),
    /// A ZObject as it is (the call's error).
    Object(Value),
}

/// A Z22 and its metadata, joined when the answer is written (see the module docs).
#[derive(Debug, Clone)]
pub struct Answer {
    z22: Value,
    metadata: Vec<(&'static str, Entry)>,
}

impl Answer {
    pub(crate) fn new(z22: Value, metadata: Vec<(&'static str, Entry)>) -> Self {
        Self { z22, metadata }
    }

    /// The normal-form Z22 with its metadata map as `Z22K2`.
    pub fn into_value(self) -> Value {
        let mut z22 = self.z22;
        z22["Z22K2"] = metadata_map(self.metadata);
        z22
    }

    /// The normal-form Z22 with only its `errors` entry in `Z22K2` (void when it has none), for
    /// a caller that reads nothing else of the metadata: a tester's call and its validator
    /// (`zeval_orchestrator::CallOptions::value_only`). Each entry of the map is a typed pair
    /// in a typed list cell, about 80 allocations: building the eleven of a trivial call was
    /// about 5 % of the server's CPU under `zeval bench library` (2026-12-05).
    pub fn into_value_errors_only(self) -> Value {
        let mut z22 = self.z22;
        let errors: Vec<_> = self
            .metadata
            .into_iter()
            .filter(|(key, _)| *key == "errors")
            .collect();
        z22["Z22K2"] = if errors.is_empty() {
            zeval_zobject::build::void()
        } else {
            metadata_map(errors)
        };
        z22
    }

    /// The bytes `serde_json::to_vec(&self.into_value())` gives, written without building
    /// the metadata map.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * 1024);
        let Value::Object(fields) = &self.z22 else {
            // Never the case (every Z22 the evaluator builds is an object); written the slow
            // way rather than wrongly.
            return serde_json::to_vec(&self.clone().into_value()).unwrap_or_default();
        };
        out.push(b'{');
        let mut wrote_metadata = false;
        for (index, (key, value)) in fields.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_string(&mut out, key);
            out.push(b':');
            if key == "Z22K2" {
                write_metadata_map(&mut out, &self.metadata);
                wrote_metadata = true;
            } else {
                write_value(&mut out, value);
            }
        }
        if !wrote_metadata {
            if !fields.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(br#""Z22K2":"#);
            write_metadata_map(&mut out, &self.metadata);
        }
        out.push(b'}');
        out
    }
}

/// The map's and the pair's types, built once: cloned per tree (a clone copies the maps'
/// tables instead of hashing every key again), and their JSON text, with the list's, for
/// [`write_metadata_map`].
struct Types {
    map: Value,
    pair: Value,
    map_text: Vec<u8>,
    list_text: Vec<u8>,
    pair_text: Vec<u8>,
}

static TYPES: LazyLock<Types> = LazyLock::new(|| {
    let map = map_type(z9("Z6"), z9("Z1"));
    let pair = pair_type(z9("Z6"), z9("Z1"));
    let empty_list = typed_list(pair.clone(), std::iter::empty());
    let text = |value: &Value| serde_json::to_vec(value).unwrap_or_default();
    Types {
        map_text: text(&map),
        list_text: text(&empty_list["Z1K1"]),
        pair_text: text(&pair),
        map,
        pair,
    }
});

/// A normal `Z883(Z6, Z1)` map of `pairs`, in order.
pub(crate) fn metadata_map(pairs: Vec<(&'static str, Entry)>) -> Value {
    let types = &*TYPES;
    let cells = pairs.into_iter().map(|(key, entry)| {
        let value = match entry {
            Entry::Text(text) => z6(text),
            Entry::Object(value) => value,
        };
        obj([("Z1K1", types.pair.clone()), ("K1", z6(key)), ("K2", value)])
    });
    let list = typed_list(types.pair.clone(), cells);
    obj([("Z1K1", types.map.clone()), ("K1", list)])
}

/// [`metadata_map`]'s JSON: the map, then one list cell per pair, then the empty cell.
fn write_metadata_map(out: &mut Vec<u8>, pairs: &[(&'static str, Entry)]) {
    let types = &*TYPES;
    out.extend_from_slice(br#"{"Z1K1":"#);
    out.extend_from_slice(&types.map_text);
    out.extend_from_slice(br#","K1":"#);
    for (key, entry) in pairs {
        out.extend_from_slice(br#"{"Z1K1":"#);
        out.extend_from_slice(&types.list_text);
        out.extend_from_slice(br#","K1":{"Z1K1":"#);
        out.extend_from_slice(&types.pair_text);
        out.extend_from_slice(br#","K1":"#);
        write_z6(out, key);
        out.extend_from_slice(br#","K2":"#);
        match entry {
            Entry::Text(text) => write_z6(out, text),
            Entry::Object(value) => write_value(out, value),
        }
        out.extend_from_slice(br#"},"K2":"#);
    }
    out.extend_from_slice(br#"{"Z1K1":"#);
    out.extend_from_slice(&types.list_text);
    out.push(b'}');
    // Close every cell, then the map.
    out.extend(std::iter::repeat_n(b'}', pairs.len() + 1));
}

fn write_z6(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(br#"{"Z1K1":"Z6","Z6K1":"#);
    write_string(out, text);
    out.push(b'}');
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    zeval_zobject::canonical_text::write_json_string(out, text);
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeval_zobject::build::{envelope_error, failure, void, z22};
    use zeval_zobject::error::z5_untyped;

    fn entries() -> Vec<(&'static str, Entry)> {
        vec![
            ("evaluationCpuUsage", Entry::Text("1.5 ms".into())),
            (
                "evaluationHostname",
                Entry::Text("a \"quoted\" \u{1F600}\n".into()),
            ),
            ("executionCpuUsage", Entry::Text("12 μs".into())),
        ]
    }

    #[test]
    fn the_map_is_the_typed_map_of_its_pairs() {
        let pair = pair_type(z9("Z6"), z9("Z1"));
        let cells = [("errors", z6("x")), ("evaluationDuration", z6("1 ms"))]
            .map(|(key, value)| obj([("Z1K1", pair.clone()), ("K1", z6(key)), ("K2", value)]));
        let expected = obj([
            ("Z1K1", map_type(z9("Z6"), z9("Z1"))),
            ("K1", typed_list(pair.clone(), cells)),
        ]);
        let pairs = vec![
            ("errors", Entry::Object(z6("x"))),
            ("evaluationDuration", Entry::Text("1 ms".into())),
        ];
        assert_eq!(metadata_map(pairs), expected);
        assert_eq!(
            metadata_map(Vec::new()),
            zeval_zobject::build::empty_metadata()
        );
    }

    #[test]
    fn written_text_is_the_serialised_tree() {
        let error = z5_untyped("Z507", "it went wrong: \u{0}\t\"");
        let mut with_error = entries();
        with_error.insert(0, ("errors", Entry::Object(error.clone())));
        let answers = [
            Answer::new(z22(z6("13"), void()), entries()),
            Answer::new(failure(error), with_error),
            Answer::new(z22(z6(""), void()), Vec::new()),
            // A Z22 without a metadata key gets one at the end, as assignment does.
            Answer::new(obj([("Z1K1", z9("Z22")), ("Z22K1", z6("x"))]), entries()),
        ];
        for answer in answers {
            let expected = serde_json::to_vec(&answer.clone().into_value()).unwrap();
            assert_eq!(
                String::from_utf8(answer.to_json()).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn an_answer_without_its_metadata_keeps_its_value_and_its_error() {
        let done = Answer::new(z22(z6("13"), void()), entries()).into_value_errors_only();
        assert_eq!(done, z22(z6("13"), void()));

        let error = z5_untyped("Z507", "it went wrong");
        let mut with_error = entries();
        with_error.insert(0, ("errors", Entry::Object(error.clone())));
        let failed = Answer::new(failure(error.clone()), with_error).into_value_errors_only();
        assert_eq!(failed["Z22K1"], void());
        assert_eq!(
            failed["Z22K2"],
            metadata_map(vec![("errors", Entry::Object(error.clone()))])
        );
        assert_eq!(envelope_error(&failed), Some(&error));
    }
}
