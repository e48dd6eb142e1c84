//! Builtins over objects: value by key (Z903), values by keys (Z904), reify (Z905),
//! abstract (Z908).

use crate::engine::R;
use crate::node::{Node, call_node, key, typed_list};

use super::reject;

fn key_name(z39: &Node) -> String {
    z39.get("Z39K1")
        .map(crate::engine::arg_name)
        .unwrap_or_default()
}

fn z39(name: &str) -> Node {
    Node::object(
        vec![
            (key("Z1K1"), Node::z9("Z39")),
            (key("Z39K1"), Node::z6(name)),
        ],
        None,
    )
}

fn key_value_pair_type() -> Node {
    call_node(
        "Z882",
        vec![("Z882K1", Node::z9("Z39")), ("Z882K2", Node::z9("Z1"))],
    )
}

fn pair(first: Node, second: Node) -> Node {
    Node::object(
        vec![
            (key("Z1K1"), key_value_pair_type()),
            (key("K1"), first),
            (key("K2"), second),
        ],
        None,
    )
}

/// Z903: `object[key]`.
pub(super) fn value_by_key(key_ref: &Node, object: &Node) -> R<Node> {
    let name = key_name(key_ref);
    match object.get(&name) {
        Some(v) => Ok(v.clone()),
        None => reject(format!("Object did not contain key \"{name}\"")),
    }
}

/// Z904: a `Z883(Z39, Z1)` map of the requested keys. Each key is a step, and the error
/// names the missing keys up to [`crate::engine::QUOTE_CHARS`] characters: a list of many
/// references to one long key (a list built by recursion shares its items) used to be
/// joined whole, the key copied once per item, with no bound.
pub(super) fn values_by_keys(keys: &Node, object: &Node) -> R<Node> {
    let mut pairs = Vec::new();
    let mut missing = String::new();
    let mut missing_any = false;
    for k in keys.list_items().unwrap_or_default() {
        crate::budget::step()?;
        let name = key_name(&k);
        match object.get(&name) {
            Some(v) => pairs.push(pair(k.clone(), v.clone())),
            None => {
                missing_any = true;
                let quoted = missing.chars().count();
                if quoted <= crate::engine::QUOTE_CHARS {
                    if quoted > 0 {
                        missing.push(',');
                    }
                    missing.extend(name.chars().take(crate::engine::QUOTE_CHARS + 1));
                }
            }
        }
    }
    if missing_any {
        if missing.chars().count() > crate::engine::QUOTE_CHARS {
            missing = missing
                .chars()
                .take(crate::engine::QUOTE_CHARS)
                .chain(['…'])
                .collect();
        }
        return reject(format!("Object did not contain key(s): {missing}"));
    }
    let map_type = call_node(
        "Z883",
        vec![("Z883K1", Node::z9("Z39")), ("Z883K2", Node::z9("Z1"))],
    );
    Ok(Node::object(
        vec![
            (key("Z1K1"), map_type),
            (key("K1"), typed_list(key_value_pair_type(), pairs)),
        ],
        None,
    ))
}

/// Z905: an object as a list of `(key, reified value)` pairs; a raw string as a Z6. Every
/// node is a step of the request's budget: a shared value reifies into a tree.
pub(super) fn reify(value: &Node) -> R<Node> {
    crate::budget::step()?;
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || match value {
        Node::Str(s) => Ok(Node::z6(s)),
        Node::Obj(o) => {
            let mut pairs = Vec::with_capacity(o.entries.len());
            for (k, v) in &o.entries {
                pairs.push(pair(z39(k), reify(v)?));
            }
            Ok(typed_list(key_value_pair_type(), pairs))
        }
        Node::Raw(v) => Ok(Node::z6(&v.to_string())),
    })
}

/// Z908: the inverse of reify.
pub(super) fn abstract_value(reified: &Node) -> R<Node> {
    crate::budget::step()?;
    if let Some(s) = reified.string_value() {
        return Ok(Node::Str(std::rc::Rc::from(s)));
    }
    let Some(items) = reified.list_items() else {
        return Ok(reified.clone());
    };
    let mut entries = Vec::with_capacity(items.len());
    // Keys are new strings, charged with their object only once it is built: checked on the
    // way, as a list of many references to one long key would otherwise copy it per item.
    let mut key_bytes = 0usize;
    for item in items {
        crate::budget::step()?;
        let name = item.get("K1").map(key_name).unwrap_or_default();
        key_bytes = key_bytes.saturating_add(name.len());
        crate::budget::check_reserve(key_bytes)?;
        let value = match item.get("K2") {
            Some(v) => stacker::maybe_grow(64 * 1024, 1024 * 1024, || abstract_value(v))?,
            None => Node::void(),
        };
        entries.push((key(&name), value));
    }
    Ok(Node::object(entries, None))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::budget::{BudgetLimits, install_or_share};
    use crate::engine::Fail;

    /// `count` references to one Z39 whose key is `length` characters long, as a list.
    fn keys(count: usize, length: usize) -> Node {
        let one = z39(&"k".repeat(length));
        typed_list(Node::z9("Z39"), vec![one; count])
    }

    #[test]
    fn missing_keys_are_named_briefly() {
        let _guard = install_or_share(
            BudgetLimits::default(),
            Instant::now() + Duration::from_secs(60),
        );
        let object = Node::object(vec![(key("Z1K1"), Node::z9("Z1"))], None);
        let Err(Fail::Error(error)) = values_by_keys(&keys(2_000, 64 * 1024), &object) else {
            panic!("the keys were found");
        };
        let text = error.to_string();
        assert!(text.len() < 4 * 1024, "{} bytes", text.len());
    }

    #[test]
    fn abstracting_many_long_keys_is_charged() {
        let _guard = install_or_share(
            BudgetLimits {
                max_request_memory_bytes: 16 * 1024 * 1024,
                ..BudgetLimits::default()
            },
            Instant::now() + Duration::from_secs(60),
        );
        let one = pair(z39(&"k".repeat(64 * 1024)), Node::z6("x"));
        let reified = typed_list(key_value_pair_type(), vec![one; 2_000]);
        let Err(Fail::Error(error)) = abstract_value(&reified) else {
            panic!("128 MiB of keys were built");
        };
        assert_eq!(error["Z5K2"]["Z590K1"]["Z6K1"], "memory", "{error}");
    }
}
