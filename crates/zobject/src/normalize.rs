//! `normalize`: any form (canonical, normal or mixed) to normal form (spec §1.3).

use crate::build::{list_type, typed_list, z6, z9};
use crate::ident::is_reference;
use crate::{Map, Value};

/// Stack kept free before recursing, and the size of each extra stack segment.
const STACK_RED_ZONE: usize = 128 * 1024;
const STACK_SEGMENT: usize = 2 * 1024 * 1024;

/// Normalizes a ZObject in any form.
///
/// The input must first be a well-formed mixed ZObject (the MIXED schema): on failure this
/// returns the Z5 (normal form), a Z502 tree whose leaves say what was wrong (Z521 number,
/// Boolean or null; Z523 missing `Z1K1`; Z525 bad key). Values nested deeper than
/// [`crate::depth::MAX_DEPTH`] give a Z502 around a Z500.
pub fn normalize(value: &Value) -> Result<Value, Value> {
    check(value)?;
    Ok(normalize_unchecked(value))
}

/// The checks [`normalize()`] makes before it builds anything: `Err` is the error it would
/// return, `Ok` says it would succeed. For callers that need to know whether a value is
/// well formed but not its normal form.
pub fn check(value: &Value) -> Result<(), Value> {
    crate::validate::validate_mixed(value)?;
    check_normal_size(value)?;
    check_verbatim_depth(value)
}

/// The deepest that JSON normal form keeps verbatim may nest, counted from where it begins:
/// 100 levels. Normal form keeps an error of the original's quirk (a Z5 whose `Z5K1` is a
/// Z501 or Z502) as it is given, arrays within it included, and what is kept so stays JSON
/// wherever the value goes, which copies and drops recursively, deep in a recursion too,
/// where only a red zone of stack is left. The parser admits 10,000 levels.
pub const MAX_VERBATIM_DEPTH: usize = 100;

/// Fails with a Z590 ("value depth") when JSON that normalizing keeps verbatim (an array in
/// an error quirk, and all it holds) nests deeper than [`MAX_VERBATIM_DEPTH`]. Without
/// recursion.
fn check_verbatim_depth(value: &Value) -> Result<(), Value> {
    // (value, within an error quirk)
    let mut stack = vec![(value, false)];
    while let Some((value, in_quirk)) = stack.pop() {
        if in_quirk && value.is_array() && crate::depth::exceeds(value, MAX_VERBATIM_DEPTH) {
            return Err(crate::error::z5(
                "Z590",
                [
                    z6("value depth"),
                    z6(format!(
                        "This object holds JSON kept as it is (an array in an error) nested \
                         more than {MAX_VERBATIM_DEPTH} levels deep."
                    )),
                ],
            ));
        }
        match value {
            Value::Object(m) => {
                let in_quirk = in_quirk || is_error_quirk(m);
                stack.extend(m.values().map(|c| (c, in_quirk)));
            }
            // An array in an error quirk is measured whole above; outside one it is a typed
            // list, which becomes objects.
            Value::Array(items) if !in_quirk => stack.extend(items.iter().map(|c| (c, false))),
            _ => {}
        }
    }
    Ok(())
}

/// The most nodes (objects, strings) a normal form may have. Normal form repeats a list's
/// item type in every cell, so a small canonical input (a large type, then many items) can
/// stand for a normal form many times its size; this bounds what normalizing may build.
/// A node costs about 100–130 bytes once built (a `Value`, a map entry, its key), and what
/// normalizing builds is held for the whole request outside the orchestrator's memory
/// budget: 1,000,000 nodes, about 128 MiB. It was 4,000,000 until 2026-12-05: a 17 KB
/// request (a 1,000-key item type and 1,330 items) then built some 500 MiB, and a few dozen
/// such requests at once ran the server out of memory. A 100 KiB request body of list items
/// normalizes to about 300,000 nodes.
pub const MAX_NORMAL_NODES: u64 = 1_000_000;

/// Fails with a Z590 ("value size") when the normal form of `value` would have more than
/// [`MAX_NORMAL_NODES`] nodes, computed from the input without building anything (and
/// without recursion, so any depth the parser admitted is fine).
fn check_normal_size(value: &Value) -> Result<(), Value> {
    let nodes = normal_nodes(value);
    if nodes > MAX_NORMAL_NODES {
        return Err(crate::error::z5(
            "Z590",
            [
                z6("value size"),
                z6(format!(
                    "The normal form of this object would have about {nodes} nodes, more than \
                     the {MAX_NORMAL_NODES} allowed."
                )),
            ],
        ));
    }
    Ok(())
}

/// An upper estimate of the nodes of `value`'s normal form: a string becomes a Z6 or Z9
/// (3 nodes); an object is itself plus its values; a list is one cell per item plus the
/// empty cell, each holding a copy of the list type (`Z881` around the item type).
fn normal_nodes(value: &Value) -> u64 {
    const STRING: u64 = 3;
    const LIST_TYPE: u64 = 7;
    enum Step<'a> {
        Visit(&'a Value),
        Object(usize),
        Array(usize),
    }
    let mut steps = vec![Step::Visit(value)];
    let mut sizes: Vec<u64> = Vec::new();
    while let Some(step) = steps.pop() {
        match step {
            Step::Visit(Value::Object(m)) => {
                steps.push(Step::Object(m.len()));
                steps.extend(m.values().rev().map(Step::Visit));
            }
            Step::Visit(Value::Array(items)) => {
                steps.push(Step::Array(items.len()));
                // In reverse, so the children's sizes come out in order.
                steps.extend(items.iter().rev().map(Step::Visit));
            }
            Step::Visit(_) => sizes.push(STRING),
            Step::Object(n) => {
                let total = sizes
                    .drain(sizes.len() - n..)
                    .fold(1u64, u64::saturating_add);
                sizes.push(total);
            }
            Step::Array(n) => {
                let children: Vec<u64> = sizes.drain(sizes.len() - n..).collect();
                // Children were pushed in order, so the first is the item type.
                let ty = LIST_TYPE.saturating_add(children.first().copied().unwrap_or(STRING));
                let cells = n.max(1) as u64;
                let items = children
                    .iter()
                    .skip(1)
                    .fold(0u64, |a, &b| a.saturating_add(b));
                sizes.push(
                    cells
                        .saturating_mul(ty.saturating_add(1))
                        .saturating_add(items),
                );
            }
        }
    }
    sizes.pop().unwrap_or(0)
}

/// Normalizes a value already known to be a well-formed mixed ZObject.
pub fn normalize_unchecked(value: &Value) -> Value {
    stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || match value {
        Value::String(s) if is_reference(s) => z9(s.as_str()),
        Value::String(s) => z6(s.as_str()),
        Value::Array(items) => {
            let item_type = items.first().map_or_else(|| z9("Z1"), normalize_unchecked);
            typed_list(item_type, items.iter().skip(1).map(normalize_unchecked))
        }
        Value::Object(m) => {
            if is_error_quirk(m) {
                return value.clone();
            }
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let verbatim = match (k.as_str(), v) {
                    ("Z1K1", Value::String(s)) => s == "Z6" || s == "Z9",
                    ("Z6K1" | "Z9K1", Value::String(_)) => true,
                    _ => false,
                };
                let v = if verbatim {
                    v.clone()
                } else {
                    normalize_unchecked(v)
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// The original returns Z5s whose `Z5K1.Z1K1` is Z501 or Z502 untouched (`normalize.js`).
fn is_error_quirk(m: &Map<String, Value>) -> bool {
    m.get("Z1K1").and_then(Value::as_str) == Some("Z5")
        && matches!(
            m.get("Z5K1")
                .and_then(|k| k.get("Z1K1"))
                .and_then(Value::as_str),
            Some("Z501" | "Z502")
        )
}

/// Wraps an inner error in the per-key Z526.
pub fn key_error(key: &str, inner: Value) -> Value {
    crate::error::z5("Z526", [crate::validate::key_reference(key), inner])
}

pub use crate::validate::not_wellformed;

/// The normal type of a typed list of `item`.
pub fn normal_list_type(item: Value) -> Value {
    list_type(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An error of the original's quirk is kept as it is, arrays within it too: those nest at
    /// most `MAX_VERBATIM_DEPTH` levels. One 9,000 deep became JSON that the orchestrator
    /// copied recursively wherever the value went.
    #[test]
    fn an_error_kept_as_it_is_holds_no_deep_arrays() {
        let quirk = |levels: usize| {
            let mut deep = json!("x");
            for _ in 0..levels {
                deep = Value::Array(vec![deep]);
            }
            let value =
                json!({"Z1K1": "Z5", "Z5K1": {"Z1K1": "Z501", "Z501K1": "m"}, "Z5K2": deep});
            // A typed list just as deep, beside it, is not kept verbatim.
            json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": value})
        };
        let shallow = quirk(MAX_VERBATIM_DEPTH);
        assert!(normalize(&shallow).is_ok());
        let deep = quirk(MAX_VERBATIM_DEPTH + 1);
        let error = normalize(&deep).unwrap_err();
        assert_eq!(error["Z5K1"]["Z9K1"], "Z590", "{error}");
        assert!(error.to_string().contains("kept as it is"), "{error}");
        crate::depth::drop_iteratively(deep);
        let mut list = json!("Z6");
        for _ in 0..500 {
            list = Value::Array(vec![json!("Z6"), list]);
        }
        assert!(
            check(&list).is_ok(),
            "a typed list of lists is no verbatim JSON"
        );
        crate::depth::drop_iteratively(list);
    }

    #[test]
    fn nested_lists_cost_their_size_not_its_square() {
        // Found by the fuzzer: each level used to copy the whole list type below it.
        let mut value = json!("Z6");
        for _ in 0..8_000 {
            value = Value::Array(vec![value]);
        }
        // On a server-sized stack (`limits.worker_stack_bytes`): the point is the time.
        let took = std::thread::Builder::new()
            .stack_size(64 * 1024 * 1024)
            .spawn(move || {
                let started = std::time::Instant::now();
                let normal = normalize(&value).expect("well-formed");
                let took = started.elapsed();
                crate::depth::drop_iteratively(normal);
                crate::depth::drop_iteratively(value);
                took
            })
            .unwrap()
            .join()
            .unwrap();
        eprintln!("8,000 nested lists normalized in {took:?}");
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn a_large_type_repeated_in_many_cells_is_refused() {
        // A 20,000-key type and 5,000 items: a few hundred KB that would normalize to a type
        // copy per cell, about 10^8 nodes.
        let ty: Map<String, Value> = std::iter::once(("Z1K1".to_owned(), json!("Z4")))
            .chain((1..20_000).map(|i| (format!("K{i}"), json!("x"))))
            .collect();
        let mut items = vec![Value::Object(ty)];
        items.extend((0..5_000).map(|_| json!("a")));
        let error = normalize(&Value::Array(items)).unwrap_err();
        assert_eq!(error["Z5K1"]["Z9K1"], "Z590", "{error}");
        assert_eq!(error["Z5K2"]["Z590K1"]["Z6K1"], "value size");
    }

    #[test]
    fn a_small_request_that_would_build_hundreds_of_megabytes_is_refused() {
        // 15 KB: a 1,000-key item type and 500 items, some 1.5 million nodes (~190 MiB)
        // once normalized, which the old limit of 4 million let through.
        let ty: Map<String, Value> = std::iter::once(("Z1K1".to_owned(), json!("Z4")))
            .chain((1..1_000).map(|i| (format!("K{i}"), json!("x"))))
            .collect();
        let mut items = vec![Value::Object(ty)];
        items.extend((0..500).map(|_| json!("a")));
        let list = Value::Array(items);
        assert!(list.to_string().len() < 16_000);
        let error = normalize(&list).unwrap_err();
        assert_eq!(error["Z5K2"]["Z590K1"]["Z6K1"], "value size", "{error}");
    }

    #[test]
    fn the_size_estimate_bounds_the_real_normal_form() {
        let value = json!(["Z6", "a", ["Z1", "b", {"Z1K1": "Z60", "Z60K1": "en"}], "c"]);
        let normal = normalize(&value).unwrap();
        fn count(v: &Value) -> u64 {
            match v {
                Value::Object(m) => 1 + m.values().map(count).sum::<u64>(),
                Value::Array(a) => 1 + a.iter().map(count).sum::<u64>(),
                _ => 1,
            }
        }
        assert!(normal_nodes(&value) >= count(&normal), "{normal}");
    }

    #[test]
    fn strings_and_references() {
        assert_eq!(normalize(&json!("Z40")).unwrap(), z9("Z40"));
        assert_eq!(normalize(&json!("Z1K1")).unwrap(), z6("Z1K1"));
    }

    #[test]
    fn numbers_fail_with_z521_under_the_key() {
        let err = normalize(&json!({"Z1K1": "Z6", "Z6K1": 2})).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("Z502") && text.contains("Z526") && text.contains("Z521"),
            "{text}"
        );
        crate::validate::validate(&err, "Z5", crate::Form::Normal).unwrap();
    }

    #[test]
    fn million_deep_array_gives_a_z5() {
        let mut v = Value::String("Z6".into());
        for _ in 0..1_000_000 {
            v = Value::Array(vec![v]);
        }
        let err = normalize(&v).unwrap_err();
        assert_eq!(crate::error::error_code(&err), Some("Z502"));
        crate::depth::drop_iteratively(v);
    }

    /// `==` on `Value` recurses, so deep values are compared with an explicit stack.
    fn iterative_eq(a: &Value, b: &Value) -> bool {
        let mut stack = vec![(a, b)];
        while let Some((a, b)) = stack.pop() {
            match (a, b) {
                (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                    stack.extend(x.iter().zip(y));
                }
                (Value::Object(x), Value::Object(y)) if x.len() == y.len() => {
                    for (k, v) in x {
                        match y.get(k) {
                            Some(w) => stack.push((v, w)),
                            None => return false,
                        }
                    }
                }
                (Value::Array(_) | Value::Object(_), _) => return false,
                (x, y) if x != y => return false,
                _ => {}
            }
        }
        true
    }

    #[test]
    fn deep_but_allowed_list_normalizes_on_a_small_stack() {
        // 4,000 nested benjamin arrays: 4,000 levels in, 8,000 levels out.
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let mut v = json!(["Z6"]);
                for _ in 0..4_000 {
                    v = Value::Array(vec![Value::from("Z1"), v]);
                }
                let normal = normalize(&v).unwrap();
                let canonical = crate::canonicalize(&normal).unwrap();
                let equal = iterative_eq(&canonical, &v);
                crate::depth::drop_iteratively(v);
                crate::depth::drop_iteratively(normal);
                crate::depth::drop_iteratively(canonical);
                equal
            });
        assert!(worker.unwrap().join().unwrap());
    }
}
