//! Type identities, `compareTypes`, and the Z4s the generic type functions Z881/Z882/Z883
//! return (spec §1.4, §1.5).

use crate::engine::R;
use crate::node::{Node, call_node, key, typed_list};

/// The identity of a type (`findIdentity`): a call or reference is its own identity; a Z4
/// has the identity of its `Z4K1`, except when that is a reference to a user-defined type,
/// where the Z4 itself is the identity.
///
/// Walked as a loop: a Z4 whose `Z4K1` is a Z4, and so on, can be as deep as a value may be
/// (`Z808` builds one at run time), and the recursion this was overflowed the stack of a
/// thread deep in a recursion.
pub(crate) fn identity(ty: &Node) -> Node {
    let mut chain = Vec::new();
    let mut innermost = ty;
    while innermost.is_type("Z4")
        && let Some(inner) = innermost.get("Z4K1")
    {
        chain.push(innermost);
        innermost = inner;
    }
    let mut id = innermost.clone();
    for z4 in chain.into_iter().rev() {
        if let Some(zid) = id.ref_zid()
            && !zeval_zobject::ident::is_built_in_type(zid)
        {
            id = z4.clone();
        }
    }
    id
}

/// The ZID naming a type, when it has one: a reference, or a Z4 whose identity is one.
fn named(ty: &Node) -> Option<String> {
    if let Some(z) = ty.as_str().or_else(|| ty.ref_zid()) {
        return Some(z.to_string());
    }
    if ty.is_type("Z4") {
        return ty.get("Z4K1").and_then(Node::ref_zid).map(str::to_string);
    }
    None
}

/// Whether a value of type `actual` may be used where `declared` is expected. Each
/// comparison is a step of the request's budget (types may share subtrees).
pub(crate) fn compare_types(actual: &Node, declared: &Node) -> R<bool> {
    crate::budget::step()?;
    let a = identity(actual);
    let d = identity(declared);
    if a.is_type("Z7") || d.is_type("Z7") {
        return Ok(true);
    }
    if d.as_str().or_else(|| d.ref_zid()) == Some("Z1") {
        return Ok(true);
    }
    if let (Some(x), Some(y)) = (named(&a), named(&d))
        && x == y
    {
        return Ok(true);
    }
    if a.is_type("Z4") && d.is_type("Z4") {
        let keys = |t: &Node| t.get("Z4K2").and_then(Node::list_items).unwrap_or_default();
        let (ka, kd) = (keys(&a), keys(&d));
        if ka.len() != kd.len() {
            return Ok(false);
        }
        for (x, y) in ka.iter().zip(&kd) {
            let same = match (x.get("Z3K1"), y.get("Z3K1")) {
                (Some(tx), Some(ty)) => {
                    stacker::maybe_grow(64 * 1024, 1024 * 1024, || compare_types(tx, ty))?
                }
                _ => false,
            };
            if !same {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    Ok(false)
}

/// A key declaration `Z3(type, id, English label)`.
fn key_declaration(ty: Node, id: &str, label: &str) -> Node {
    let text = Node::object(
        vec![
            (key("Z1K1"), Node::z9("Z11")),
            (key("Z11K1"), Node::z9("Z1002")),
            (key("Z11K2"), Node::z6(label)),
        ],
        None,
    );
    let labels = Node::object(
        vec![
            (key("Z1K1"), Node::z9("Z12")),
            (key("Z12K1"), typed_list(Node::z9("Z11"), vec![text])),
        ],
        None,
    );
    Node::object(
        vec![
            (key("Z1K1"), Node::z9("Z3")),
            (key("Z3K1"), ty),
            (key("Z3K2"), Node::z6(id)),
            (key("Z3K3"), labels),
        ],
        None,
    )
}

fn type_z4(identity: Node, keys: Vec<Node>) -> Node {
    Node::object(
        vec![
            (key("Z1K1"), Node::z9("Z4")),
            (key("Z4K1"), identity),
            (key("Z4K2"), typed_list(Node::z9("Z3"), keys)),
            (key("Z4K3"), Node::z9("Z831")),
        ],
        None,
    )
}

/// The Z4 of `Z881(item)`, whose identity is `call` (the call itself, "itsMe").
pub(crate) fn list_type_z4(call: &Node, item: Node) -> Node {
    let tail = call_node("Z881", vec![("Z881K1", item.clone())]);
    type_z4(
        call.clone(),
        vec![
            key_declaration(item, "K1", "head"),
            key_declaration(tail, "K2", "tail"),
        ],
    )
}

/// The Z4 of `Z882(first, second)`.
pub(crate) fn pair_type_z4(call: &Node, first: Node, second: Node) -> Node {
    type_z4(
        call.clone(),
        vec![
            key_declaration(first, "K1", "first"),
            key_declaration(second, "K2", "second"),
        ],
    )
}

/// The Z4 of `Z883(key, value)`.
pub(crate) fn map_type_z4(call: &Node, key_type: Node, value_type: Node) -> Node {
    let pair_call = call_node(
        "Z882",
        vec![("Z882K1", key_type.clone()), ("Z882K2", value_type.clone())],
    );
    let pair = pair_type_z4(&pair_call, key_type, value_type);
    let list_call = call_node("Z881", vec![("Z881K1", pair.clone())]);
    let list = list_type_z4(&list_call, pair);
    type_z4(call.clone(), vec![key_declaration(list, "K1", "elements")])
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    fn node(v: serde_json::Value) -> Node {
        Node::from_json(&zeval_zobject::normalize(&v).unwrap(), &None)
    }

    #[test]
    fn compare_types_rules() {
        let z6 = node(serde_json::json!("Z6"));
        let z40 = node(serde_json::json!("Z40"));
        let z1 = node(serde_json::json!("Z1"));
        let list = node(serde_json::json!({"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"}));
        let compare = |a: &Node, b: &Node| compare_types(a, b).ok().unwrap();
        assert!(compare(&z6, &z6));
        assert!(!compare(&z6, &z40));
        assert!(compare(&z40, &z1));
        assert!(compare(&z6, &list), "generic types are never checked");
        let user = node(
            serde_json::json!({"Z1K1": "Z4", "Z4K1": "Z10081", "Z4K2": ["Z3"], "Z4K3": "Z101"}),
        );
        let reference = node(serde_json::json!("Z10081"));
        assert!(compare(&reference, &user));
    }

    #[test]
    fn the_identity_of_a_deep_chain_of_types_needs_no_stack() {
        let (user_is_its_own, builtin_id) = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let z4 = |inner: Node| {
                    Node::object(
                        vec![(key("Z1K1"), Node::z9("Z4")), (key("Z4K1"), inner)],
                        None,
                    )
                };
                let innermost = z4(Node::z9("Z10081"));
                let mut user = innermost.clone();
                let mut builtin = Node::z9("Z6");
                for _ in 0..200_000 {
                    user = z4(user);
                    builtin = z4(builtin);
                }
                // A user-defined type's Z4 is its own identity (and so every Z4 around it
                // has that one); a built-in's is its ZID.
                let own = match (&identity(&user), &innermost) {
                    (Node::Obj(id), Node::Obj(inner)) => Rc::ptr_eq(id, inner),
                    _ => false,
                };
                (own, identity(&builtin).ref_zid().map(str::to_owned))
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(user_is_its_own);
        assert_eq!(builtin_id.as_deref(), Some("Z6"));
    }

    #[test]
    fn list_type_has_head_and_tail_keys() {
        let call = call_node("Z881", vec![("Z881K1", Node::z9("Z6"))]);
        let z4 = list_type_z4(&call, Node::z9("Z6")).to_json().unwrap();
        let canonical = zeval_zobject::canonicalize(&z4).unwrap();
        assert_eq!(canonical["Z4K1"]["Z7K1"], "Z881");
        assert_eq!(canonical["Z4K2"][1]["Z3K2"], "K1");
        assert_eq!(canonical["Z4K2"][2]["Z3K1"]["Z881K1"], "Z6");
        assert_eq!(canonical["Z4K3"], "Z831");
    }
}
