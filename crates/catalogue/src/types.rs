//! The built-in types (Z4): the 29 of `builtInTypes()` plus the lexeme-related Z7015 and
//! Z7138–Z7140 (spec §1.5). Every type's identity `Z4K1` is its own ZID.

use serde_json::json;

use crate::canon::{keys, persistent};
use zeval_zobject::Value;

/// One type: its keys `<zid>K1…` in order as `(type expression, label)`, and its validator.
pub(crate) struct TypeDef {
    pub(crate) zid: &'static str,
    pub(crate) label: &'static str,
    pub(crate) keys: &'static [(&'static str, &'static str)],
    pub(crate) validator: &'static str,
    pub(crate) aliases: &'static [&'static str],
}

const fn ty(
    zid: &'static str,
    label: &'static str,
    validator: &'static str,
    keys: &'static [(&'static str, &'static str)],
) -> TypeDef {
    TypeDef {
        zid,
        label,
        keys,
        validator,
        aliases: &[],
    }
}

#[rustfmt::skip]
pub(crate) const TYPES: &[TypeDef] = &[
    ty("Z1", "Object", "Z101", &[("Z4", "type")]),
    ty("Z2", "Persistent object", "Z102", &[
        ("Z6", "id"), ("Z1", "value"), ("Z12", "labels"), ("Z32", "aliases"),
    ]),
    ty("Z3", "Key", "Z103", &[("Z4", "value type"), ("Z6", "key id"), ("Z12", "label")]),
    ty("Z4", "Type", "Z104", &[("Z4", "identity"), ("[Z3]", "keys"), ("Z8", "validator")]),
    ty("Z5", "Error", "Z105", &[("Z50", "error type"), ("Z1", "error value")]),
    ty("Z6", "String", "Z106", &[("Z6", "value")]),
    ty("Z7", "Function call", "Z107", &[("Z8", "function")]),
    ty("Z8", "Function", "Z108", &[
        ("[Z17]", "arguments"), ("Z4", "return type"), ("[Z20]", "testers"),
        ("[Z14]", "implementations"), ("Z8", "identity"),
    ]),
    ty("Z9", "Reference", "Z109", &[("Z6", "reference id")]),
    ty("Z11", "Monolingual text", "Z111", &[("Z60", "language"), ("Z6", "text")]),
    ty("Z12", "Multilingual text", "Z112", &[("[Z11]", "texts")]),
    ty("Z14", "Implementation", "Z114", &[
        ("Z8", "function"), ("Z1", "composition"), ("Z16", "code"), ("Z8", "built-in"),
    ]),
    ty("Z16", "Code", "Z116", &[("Z61", "language"), ("Z6", "code")]),
    ty("Z17", "Argument declaration", "Z117", &[
        ("Z4", "type"), ("Z6", "key"), ("Z12", "label"),
    ]),
    ty("Z18", "Argument reference", "Z118", &[("Z6", "key id")]),
    ty("Z20", "Tester", "Z120", &[
        ("Z8", "function"), ("Z7", "call"), ("Z7", "result validation"),
    ]),
    ty("Z21", "Unit", "Z121", &[]),
    ty("Z22", "Evaluation result", "Z122", &[("Z1", "result"), ("Z1", "metadata")]),
    ty("Z23", "Nothing", "Z123", &[]),
    ty("Z31", "Monolingual stringset", "Z131", &[("Z60", "language"), ("[Z6]", "stringset")]),
    ty("Z32", "Multilingual stringset", "Z132", &[("[Z31]", "stringset")]),
    ty("Z39", "Key reference", "Z139", &[("Z6", "reference")]),
    ty("Z40", "Boolean", "Z140", &[("Z40", "identity")]),
    ty("Z50", "Error type", "Z150", &[("[Z3]", "keys")]),
    ty("Z60", "Natural language", "Z160", &[("Z6", "code"), ("[Z6]", "code aliases")]),
    ty("Z61", "Programming language", "Z161", &[("Z6", "code")]),
    ty("Z80", "Byte", "Z180", &[("Z6", "value")]),
    TypeDef { aliases: &["Character"], ..ty("Z86", "Code point", "Z186", &[("Z6", "value")]) },
    ty("Z99", "Quote", "Z199", &[("Z1", "quotation")]),
    TypeDef {
        aliases: &["PosInt"],
        ..ty("Z7015", "Positive integer", "Z101", &[("Z6", "value")])
    },
    ty("Z7138", "Indexed grammatical feature", "Z101", &[
        ("Z7015", "Index"), ("Z6", "Category"), ("Z6", "Feature"),
    ]),
    ty("Z7139", "Lexeme form", "Z101", &[("Z6", "spelling"), ("[Z7138]", "List of features")]),
    ty("Z7140", "Lexeme", "Z101", &[
        ("Z6", "Lemma"), ("Z60", "Language"), ("Z6", "Part of speech"),
        ("[Z7138]", "Fixed features"), ("[Z7139]", "List of forms"),
    ]),
];

/// The canonical Z2 of a type.
pub(crate) fn build(t: &TypeDef) -> Value {
    let value = json!({
        "Z1K1": "Z4",
        "Z4K1": t.zid,
        "Z4K2": keys(t.zid, t.keys),
        "Z4K3": t.validator,
    });
    persistent(t.zid, value, t.label, t.aliases)
}
