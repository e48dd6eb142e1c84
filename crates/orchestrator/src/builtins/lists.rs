//! List builtins: prepend (Z910), head (Z911), tail (Z912), code points (Z968, Z986) and
//! list equality (Z989).

use zeval_zobject::build::z6;

use crate::engine::{Engine, R, error};
use crate::node::{Node, call_node, key, typed_list};

/// The item type of a list, read from its `Z1K1` (a Z881 call or a Z4 whose identity is
/// one); Z1 otherwise.
fn item_type(list: &Node) -> Node {
    let Some(ty) = list.type_node() else {
        return Node::z9("Z1");
    };
    if ty.is_call_to("Z881")
        && let Some(t) = ty.get("Z881K1")
    {
        return t.clone();
    }
    if ty.is_type("Z4")
        && let Some(t) = ty
            .get("Z4K1")
            .filter(|i| i.is_call_to("Z881"))
            .and_then(|i| i.get("Z881K1"))
    {
        return t.clone();
    }
    Node::z9("Z1")
}

/// Z910: a new first cell.
pub(super) fn prepend(element: &Node, list: &Node) -> Node {
    let ty = call_node("Z881", vec![("Z881K1", item_type(list))]);
    Node::object(
        vec![
            (key("Z1K1"), ty),
            (key("K1"), element.clone()),
            (key("K2"), list.clone()),
        ],
        None,
    )
}

/// Z911.
pub(super) fn head(list: &Node) -> R<Node> {
    match list.get("K1") {
        Some(h) => Ok(h.clone()),
        None => error("Z506", [z6("An empty list has no head.")]),
    }
}

/// Z912.
pub(super) fn tail(list: &Node) -> R<Node> {
    match (list.get("K1"), list.get("K2")) {
        (Some(_), Some(t)) => Ok(t.clone()),
        _ => error("Z506", [z6("An empty list has no tail.")]),
    }
}

/// Z968: a string as a list of code points (Unicode scalar values). The list nests one level
/// per code point, so its length is checked against the request's depth budget before
/// anything is built, and each code point is a step.
pub(super) fn code_points(string: &Node) -> R<Node> {
    let text = string.string_value().unwrap_or_default();
    let count = text.chars().count();
    crate::budget::check_depth(count)?;
    crate::budget::steps(count as u64)?;
    let items = text
        .chars()
        .map(|c| {
            Node::object(
                vec![
                    (key("Z1K1"), Node::z9("Z86")),
                    (key("Z86K1"), Node::z6(&c.to_string())),
                ],
                None,
            )
        })
        .collect();
    Ok(typed_list(Node::z9("Z86"), items))
}

/// Z986: concatenates code points (or strings).
pub(super) fn code_points_to_string(list: &Node) -> R<Node> {
    fn piece(item: &Node) -> &str {
        item.string_value()
            .or_else(|| item.get("Z86K1").and_then(Node::string_value))
            .unwrap_or_default()
    }
    let items = list.list_items().unwrap_or_default();
    // Measured first, so that the text is allocated once at its length: grown by doubling,
    // it held up to three times the memory budget's worth at once (the old buffer, the new
    // one, then the node's copy). One shared long string repeated in a list would
    // otherwise concatenate past any memory bound.
    let mut length = 0usize;
    for item in &items {
        length = length.saturating_add(piece(item).len());
        crate::budget::check_reserve(length)?;
        crate::budget::step()?;
    }
    let mut text = String::with_capacity(length);
    for item in &items {
        text.push_str(piece(item));
    }
    Ok(Node::z6(&text))
}

/// Z989: pairwise equality with a caller-given function, called with local keys.
pub(super) fn list_equality(
    engine: &Engine<'_>,
    first: &Node,
    second: &Node,
    equal: &Node,
) -> R<Node> {
    let (a, b) = (
        first.list_items().unwrap_or_default(),
        second.list_items().unwrap_or_default(),
    );
    for (x, y) in a.iter().zip(&b) {
        let call = Node::object(
            vec![
                (key("Z1K1"), Node::z9("Z7")),
                (key("Z7K1"), equal.clone()),
                (key("K1"), x.clone()),
                (key("K2"), y.clone()),
            ],
            None,
        );
        let result = engine.resolve(&call, false, true)?;
        match result.get("Z40K1").and_then(Node::ref_zid) {
            Some("Z41") if result.is_type("Z40") => {}
            Some("Z42") if result.is_type("Z40") => return Ok(Node::boolean(false)),
            _ => {
                return error(
                    "Z516",
                    [z6("Provided equality function did not return Boolean.")],
                );
            }
        }
    }
    Ok(Node::boolean(a.len() == b.len()))
}
