//! Short constructors for writing schemas in Rust, close to their JSON Schema shape.

use super::engine::{JsonType, Keywords, Node, Reference};
use super::patterns::Pattern;

/// `$ref` to a named definition.
pub(crate) fn r(name: &'static str) -> Node {
    Node::Ref(Reference::new(name))
}

/// An empty schema to add keywords to.
pub(crate) fn k() -> Keywords {
    Keywords::default()
}

pub(crate) fn any_of(nodes: impl IntoIterator<Item = Node>) -> Node {
    k().any_of(nodes).into()
}

pub(crate) fn one_of(nodes: impl IntoIterator<Item = Node>) -> Node {
    k().one_of(nodes).into()
}

pub(crate) fn all_of(nodes: impl IntoIterator<Item = Node>) -> Node {
    k().all_of(nodes).into()
}

pub(crate) fn not(node: Node) -> Node {
    k().not(node).into()
}

/// `{type: <t>}`.
pub(crate) fn of_type(t: JsonType) -> Node {
    k().ty(t).into()
}

/// `{enum: [values], type: string}`.
pub(crate) fn string_enum(values: &[&'static str]) -> Node {
    k().enumeration(values).ty(JsonType::String).into()
}

/// `{pattern: p, type: string}`.
pub(crate) fn string_pattern(p: Pattern) -> Node {
    k().pattern(p).ty(JsonType::String).into()
}

impl From<Keywords> for Node {
    fn from(k: Keywords) -> Node {
        Node::Inline(Box::new(k))
    }
}

impl Keywords {
    pub(crate) fn reference(mut self, name: &'static str) -> Self {
        self.reference = Some(Reference::new(name));
        self
    }
    pub(crate) fn enumeration(mut self, values: &[&'static str]) -> Self {
        self.enumeration = Some(values.to_vec());
        self
    }
    pub(crate) fn not(mut self, node: Node) -> Self {
        self.not = Some(node);
        self
    }
    pub(crate) fn any_of(mut self, nodes: impl IntoIterator<Item = Node>) -> Self {
        self.any_of = nodes.into_iter().collect();
        self
    }
    pub(crate) fn one_of(mut self, nodes: impl IntoIterator<Item = Node>) -> Self {
        self.one_of = nodes.into_iter().collect();
        self
    }
    pub(crate) fn all_of(mut self, nodes: impl IntoIterator<Item = Node>) -> Self {
        self.all_of = nodes.into_iter().collect();
        self
    }
    pub(crate) fn ty(mut self, t: JsonType) -> Self {
        self.ty = Some(t);
        self
    }
    pub(crate) fn object(self) -> Self {
        self.ty(JsonType::Object)
    }
    pub(crate) fn pattern(mut self, p: Pattern) -> Self {
        self.pattern = Some(p);
        self
    }
    pub(crate) fn min_items(mut self, n: usize) -> Self {
        self.min_items = Some(n);
        self
    }
    pub(crate) fn tuple_items(mut self, nodes: impl IntoIterator<Item = Node>) -> Self {
        self.tuple_items = nodes.into_iter().collect();
        self
    }
    pub(crate) fn additional_items(mut self, node: Node) -> Self {
        self.additional_items = Some(node);
        self
    }
    pub(crate) fn all_items(mut self, node: Node) -> Self {
        self.all_items = Some(node);
        self
    }
    pub(crate) fn required(mut self, keys: &[&'static str]) -> Self {
        self.required = keys.to_vec();
        self
    }
    /// `additionalProperties: false`.
    pub(crate) fn closed(mut self) -> Self {
        self.closed = true;
        self
    }
    pub(crate) fn prop(mut self, key: &'static str, node: Node) -> Self {
        self.properties.push((key, node));
        self
    }
    pub(crate) fn props(mut self, props: impl IntoIterator<Item = (&'static str, Node)>) -> Self {
        self.properties.extend(props);
        self
    }
    pub(crate) fn pattern_prop(mut self, p: Pattern, node: Node) -> Self {
        self.pattern_properties.push((p, node));
        self
    }
    pub(crate) fn node(self) -> Node {
        self.into()
    }
}
