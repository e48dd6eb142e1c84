//! Turning schema errors into the original's Z5 tree (function-schemata `errorFormatter.js`,
//! codes from `data/errors/error_types.yaml`).
//!
//! - Each error is mapped to a leaf code by its keyword, its instance path and its data;
//!   errors without a code (`anyOf`, `oneOf`, `enum`, …) are dropped, and so are repeats of
//!   the same code at the same path.
//! - The leaves are hung in a tree by the `Z<n>K<m>` keys of their path (array indices and
//!   local keys are not part of it). A node with several errors aggregates them in a Z509;
//!   every key node is wrapped in a Z526; the root is a Z502.

use crate::Value;
use crate::build::{obj, typed_list, z6, z9};
use crate::error::{quote_briefly_ref, z5};

use super::engine::{Keyword, SchemaError};

/// The leaf error code of one schema error, if the original maps it to one.
fn code_of(e: &SchemaError<'_>, path: &str) -> Option<&'static str> {
    match &e.keyword {
        Keyword::Type(expected) => {
            if path.ends_with("Z6K1") && *expected == "string" {
                Some("Z533")
            } else if path.ends_with("Z1K1") && (e.data.is_string() || e.data.is_array()) {
                Some("Z524")
            } else if path.ends_with("Z9K1") && *expected == "string" {
                Some("Z536")
            } else if e.data.is_null() || e.data.is_number() || e.data.is_boolean() {
                Some("Z521")
            } else {
                None
            }
        }
        Keyword::Required(missing) => Some(match *missing {
            "Z6K1" => "Z532",
            "Z9K1" => "Z535",
            "Z1K1" => "Z523",
            "Z2K2" => "Z513",
            _ => "Z511",
        }),
        Keyword::Pattern if path.ends_with("Z9K1") => Some("Z537"),
        Keyword::Pattern => Some("Z549"),
        Keyword::AdditionalProperty(_) => Some("Z525"),
        Keyword::Not if path.ends_with("Z2K2") => Some("Z553"),
        _ => None,
    }
}

/// The Z5 of one leaf, with the arguments the original gives each code.
fn leaf(code: &'static str, e: &SchemaError<'_>) -> Value {
    // The original quotes the offending value whole. Here only while it is small and
    // shallow: it may be as large and as deep as a request (8 MiB, 10,000 levels), and the
    // error is copied and dropped wherever it goes, recursively.
    let quoted = || quote_briefly_ref(e.data);
    match (&e.keyword, code) {
        (Keyword::Required(missing), "Z511") => z5(code, [key_reference(missing), quoted()]),
        (Keyword::AdditionalProperty(key), _) => z5(code, [z6(key.as_str())]),
        (_, "Z549") => z5(code, [z6(e.data.as_str().unwrap_or_default())]),
        (_, "Z537") => z5(code, []),
        _ => z5(code, [quoted()]),
    }
}

/// A normal Z39 key reference.
pub fn key_reference(key: &str) -> Value {
    obj([("Z1K1", z9("Z39")), ("Z39K1", z6(key))])
}

#[derive(Default)]
struct TreeNode {
    key: String,
    children: Vec<TreeNode>,
    errors: Vec<Value>,
}

/// The Z502 root error for a failed validation, or `None` when no error maps to a code
/// (the original then reports no Z5; callers substitute a generic one).
pub(crate) fn root_error(errors: &[SchemaError<'_>]) -> Option<Value> {
    let mut root = TreeNode {
        key: String::new(),
        ..TreeNode::default()
    };
    let mut seen: Vec<(String, &str)> = Vec::new();
    for e in errors {
        let path = e.instance_path();
        let Some(code) = code_of(e, &path) else {
            continue;
        };
        if seen.iter().any(|(p, c)| *p == path && *c == code) {
            continue;
        }
        let mut node = &mut root;
        for key in path.split('/').filter(|s| is_global_key(s)) {
            let i = match node.children.iter().position(|c| c.key == key) {
                Some(i) => i,
                None => {
                    node.children.push(TreeNode {
                        key: key.to_string(),
                        ..TreeNode::default()
                    });
                    node.children.len() - 1
                }
            };
            node = &mut node.children[i];
        }
        node.errors.push(leaf(code, e));
        seen.push((path, code));
    }
    if root.children.is_empty() && root.errors.is_empty() {
        return None;
    }
    Some(fold(root, true))
}

/// `\bZ\d+K\d+\b` over a path segment: the segments that are global keys.
fn is_global_key(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('Z') else {
        return false;
    };
    match rest.split_once('K') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

fn fold(node: TreeNode, is_root: bool) -> Value {
    let mut all: Vec<Value> = node.children.into_iter().map(|c| fold(c, false)).collect();
    all.extend(node.errors);
    let aggregated = if all.len() == 1 {
        all.remove(0)
    } else {
        list_of_errors(all)
    };
    if is_root {
        not_wellformed(aggregated)
    } else {
        z5("Z526", [key_reference(&node.key), aggregated])
    }
}

/// A Z509 holding `errors` as a typed list of Z5.
pub fn list_of_errors(errors: Vec<Value>) -> Value {
    z5("Z509", [typed_list(z9("Z5"), errors)])
}

/// The Z502 "not wellformed" root around `inner`; its subtype is the inner error's code.
pub fn not_wellformed(inner: Value) -> Value {
    let subtype = inner.get("Z5K1").cloned().unwrap_or_else(|| z9("Z500"));
    z5("Z502", [subtype, inner])
}
