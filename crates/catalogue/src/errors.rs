//! The error types (Z50) Z500–Z559, without Z527–Z530 (which do not exist), and zeval's
//! Z590. Their keys
//! `<zid>K1…` are the arguments of a Z5 of that type, through `Z885(<zid>)` (spec §1.8).

use serde_json::json;

use crate::canon::{keys, persistent};
use zeval_zobject::Value;

/// `(zid, label, keys as (type expression, label))`.
type ErrorTypeDef = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Catalogue objects the pinned definitions lack: error types only the wiki front end uses
/// (spec §0, §1.8), and zeval's own additions.
///
/// Z590 "Request budget exceeded" is zeval's own: the orchestrator's per-request budget
/// (deadline aside) has no counterpart in the original. Z630 (C) and Z640 (Rust) are the
/// compiled programming languages zeval adds.
pub const NOT_IN_PINNED_DEFINITIONS: &[&str] = &["Z559", "Z590", "Z630", "Z640"];

#[rustfmt::skip]
pub(crate) const ERROR_TYPES: &[ErrorTypeDef] = &[
    ("Z500", "Unspecified error", &[("Z1", "error information")]),
    ("Z501", "JSON syntax error", &[("Z6", "error message"), ("Z6", "input")]),
    ("Z502", "Not well-formed", &[("Z50", "subtype"), ("Z5", "value")]),
    ("Z503", "Not implemented yet", &[("Z6", "feature name")]),
    ("Z504", "ZID not found", &[("Z6", "ZID")]),
    ("Z505", "Wrong number of arguments",
        &[("Z6", "expected"), ("Z6", "actual"), ("[Z1]", "arguments")]),
    ("Z506", "Argument type mismatch",
        &[("Z4", "expected"), ("Z4", "actual"), ("Z1", "argument"), ("Z5", "propagated error")]),
    ("Z507", "Error in evaluation", &[("Z7", "function call"), ("Z5", "propagated error")]),
    ("Z508", "Competing keys", &[("Z39", "key"), ("Z99", "object")]),
    ("Z509", "List of errors", &[("[Z5]", "errors")]),
    ("Z510", "Nil", &[]),
    ("Z511", "Key not found", &[("Z39", "key"), ("Z99", "object")]),
    ("Z512", "Test failed", &[("Z99", "expected result"), ("Z99", "actual result")]),
    ("Z513", "Persistent object without a value", &[("Z99", "object")]),
    ("Z514", "No such built-in", &[("Z14", "implementation")]),
    ("Z515", "Bad built-in ID", &[("Z14", "implementation")]),
    ("Z516", "Bad argument value", &[("Z18", "argument"), ("Z99", "bad value")]),
    ("Z517", "Return type mismatch",
        &[("Z4", "expected type"), ("Z4", "actual type"), ("Z1", "returned value"), ("Z5", "propagated error")]),
    ("Z518", "Object type mismatch", &[("Z4", "expected type"), ("Z1", "object"), ("Z5", "propagated error")]),
    ("Z519", "Benjamin array without a list type", &[("Z99", "offending value")]),
    ("Z520", "Benjamin array with a wrong list type", &[("Z99", "offending value")]),
    ("Z521", "Number, Boolean or null is not a ZObject", &[("Z99", "offending value")]),
    ("Z522", "Bad array element", &[("Z6", "index of offending element"), ("Z5", "propagated error")]),
    ("Z523", "Z1K1 missing", &[("Z99", "object")]),
    ("Z524", "Z1K1 is a string or an array", &[("Z99", "value")]),
    ("Z525", "Invalid key", &[("Z6", "key")]),
    ("Z526", "Bad key value", &[("Z39", "key"), ("Z5", "propagated error")]),
    ("Z531", "A Z6 has exactly two keys", &[("Z99", "object")]),
    ("Z532", "Z6K1 missing", &[("Z99", "object")]),
    ("Z533", "Z6K1 is not a string", &[("Z99", "value of Z6K1")]),
    ("Z534", "A Z9 has exactly two keys", &[("Z99", "object")]),
    ("Z535", "Z9K1 missing", &[("Z99", "object")]),
    ("Z536", "Z9K1 is not a string", &[("Z99", "value of Z9K1")]),
    ("Z537", "Z9K1 is not a reference", &[("Z6", "value of Z9K1")]),
    ("Z538", "Wrong namespace", &[("Z6", "page title")]),
    ("Z539", "Wrong content type", &[("Z6", "page title")]),
    ("Z540", "Invalid language code", &[("Z6", "language code")]),
    ("Z541", "Unknown language code", &[("Z6", "language code")]),
    ("Z542", "Unexpected type", &[("Z4", "expected type"), ("Z4", "actual type")]),
    ("Z543", "Type not found", &[("Z6", "type name")]),
    ("Z544", "Type name already taken",
        &[("Z6", "type ZID"), ("Z6", "type name"), ("Z6", "existing type name")]),
    ("Z545", "Type ZID already taken",
        &[("Z6", "type ZID"), ("Z6", "type name"), ("Z6", "existing type ZID")]),
    ("Z546", "Built-in type not found", &[("Z6", "type ZID"), ("Z6", "type name")]),
    ("Z547", "Invalid format", &[("Z99", "input")]),
    ("Z548", "Invalid JSON", &[("Z6", "error message"), ("Z99", "input")]),
    ("Z549", "Invalid reference", &[("Z6", "reference value")]),
    ("Z550", "Unknown reference", &[("Z6", "reference value")]),
    ("Z551", "Key type does not match the schema",
        &[("Z39", "key"), ("Z6", "expected type"), ("Z6", "actual type")]),
    ("Z552", "Array element of the wrong type",
        &[("Z6", "index of offending element"), ("Z4", "expected type"), ("Z99", "actual content")]),
    ("Z553", "Root type not allowed", &[("Z99", "root ZObject")]),
    ("Z554", "Label already used by another object", &[("Z6", "clashing ZID"), ("Z6", "language")]),
    ("Z555", "ZID does not match the page title", &[("Z6", "ZID"), ("Z6", "page title")]),
    ("Z556", "Invalid page title", &[("Z6", "title")]),
    ("Z557", "No permission to edit", &[("Z6", "message")]),
    ("Z558", "Invalid programming language", &[("Z6", "programming language")]),
    ("Z559", "No permission to run functions", &[]),
    ("Z590", "Request budget exceeded", &[("Z6", "limit"), ("Z6", "message")]),
];

/// The canonical Z2 of an error type.
pub(crate) fn build(&(zid, label, key_list): &ErrorTypeDef) -> (String, Value) {
    let value = json!({"Z1K1": "Z50", "Z50K1": keys(zid, key_list)});
    (zid.to_string(), persistent(zid, value, label, &[]))
}
