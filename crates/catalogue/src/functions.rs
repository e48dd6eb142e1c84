//! The built-in functions (Z8): the type validators Z101–Z199 and the functions Z801–Z899
//! (spec §2.6), and their implementations (Z14) Z201–Z299 and Z901–Z999.
//!
//! Every function `Zn` has an implementation object `Z(n+100)` whose `Z14K1` is `Zn`. All are
//! built-ins (`Z14K4` names the builtin by the implementation's own ZID) except Z985, the
//! composition behind Z885 "Errortype to type". A function's `Z8K4` lists one implementation;
//! Z123 lists Z220 (as the original does), not its own Z223.

use serde_json::json;

use crate::canon::{escaped, label, list, persistent, ref_list, type_expr};
use zeval_zobject::Value;
use zeval_zobject::ident::zid_number;

/// One function: its arguments `<zid>K1…` in order as `(type expression, label)`.
pub(crate) struct FunctionDef {
    pub(crate) zid: &'static str,
    pub(crate) label: &'static str,
    pub(crate) args: &'static [(&'static str, &'static str)],
    pub(crate) returns: &'static str,
    pub(crate) testers: &'static [&'static str],
    pub(crate) aliases: &'static [&'static str],
}

const fn function(
    zid: &'static str,
    label: &'static str,
    args: &'static [(&'static str, &'static str)],
    returns: &'static str,
    testers: &'static [&'static str],
) -> FunctionDef {
    FunctionDef {
        zid,
        label,
        args,
        returns,
        testers,
        aliases: &[],
    }
}

/// The functions Z801–Z899.
#[rustfmt::skip]
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        aliases: &["Identity"],
        ..function("Z801", "Echo", &[("Z1", "value")], "Z1", &["Z8010", "Z8011", "Z8012", "Z8013"])
    },
    function("Z802", "If", &[("Z40", "condition"), ("Z1", "then"), ("Z1", "else")], "Z1",
        &["Z8020", "Z8021"]),
    function("Z803", "Value by key", &[("Z39", "key"), ("Z1", "object")], "Z1", &[]),
    function("Z804", "Values by keys", &[("[Z39]", "keys"), ("Z1", "object")],
        "Z883(Z39,Z1)", &[]),
    function("Z805", "Reify", &[("Z1", "object")], "[Z1]", &[]),
    function("Z808", "Abstract", &[("[Z1]", "reified object")], "Z1", &[]),
    FunctionDef {
        aliases: &["Cons"],
        ..function("Z810", "Prepend element to list", &[("Z1", "element"), ("[Z1]", "list")],
            "[Z1]", &["Z8100"])
    },
    FunctionDef {
        aliases: &["Head"],
        ..function("Z811", "First element", &[("[Z1]", "list")], "Z1", &["Z8110"])
    },
    FunctionDef {
        aliases: &["Tail"],
        ..function("Z812", "List without first element", &[("[Z1]", "list")], "[Z1]", &["Z8120"])
    },
    function("Z813", "Is empty", &[("[Z1]", "list")], "Z40", &["Z8130", "Z8131"]),
    function("Z820", "Trigger metadata", &[("Z6", "key"), ("Z1", "value")], "Z1", &[]),
    function("Z821", "First of pair", &[("Z882(Z1,Z1)", "pair")], "Z1", &["Z8210"]),
    function("Z822", "Second of pair", &[("Z882(Z1,Z1)", "pair")], "Z1", &["Z8220"]),
    function("Z823", "Get envelope", &[("Z99", "quoted function call")], "Z882(Z1,Z1)", &[]),
    function("Z828", "Fetch persistent object", &[("Z99", "quoted reference")], "Z2", &[]),
    function("Z831", "Validate against schema",
        &[("Z99", "quoted object"), ("Z99", "quoted type")], "Z4", &[]),
    FunctionDef {
        aliases: &["Same Boolean"],
        ..function("Z844", "Boolean equality", &[("Z40", "first"), ("Z40", "second")], "Z40",
            &["Z8440", "Z8441", "Z8442", "Z8443"])
    },
    function("Z860", "Language from code", &[("Z6", "language code")], "Z60", &[]),
    FunctionDef {
        aliases: &["Same string"],
        ..function("Z866", "String equality", &[("Z6", "first"), ("Z6", "second")], "Z40",
            &["Z8660", "Z8661", "Z8662"])
    },
    function("Z868", "String to code points", &[("Z6", "string")], "[Z86]", &[]),
    function("Z881", "Typed list", &[("Z4", "element type")], "Z4", &[]),
    function("Z882", "Typed pair", &[("Z4", "first type"), ("Z4", "second type")], "Z4", &[]),
    function("Z883", "Typed map", &[("Z4", "key type"), ("Z4", "value type")], "Z4", &[]),
    function("Z885", "Error type to type", &[("Z50", "error type")], "Z4", &[]),
    function("Z886", "Code points to string", &[("[Z86]", "code points")], "Z6", &[]),
    function("Z888", "Code point equality", &[("Z86", "first"), ("Z86", "second")], "Z40",
        &["Z8880", "Z8881", "Z8882"]),
    function("Z889", "List equality",
        &[("[Z1]", "first"), ("[Z1]", "second"), ("Z8", "element equality")], "Z40", &[]),
    function("Z899", "Unquote", &[("Z99", "quote")], "Z1", &[]),
];

/// The type validators as `(zid, what it validates, argument type, return type)`. Each takes
/// one argument and returns it. The argument types of Z106 (Z4) and Z132 (Z12) are the
/// original's, odd as they look.
#[rustfmt::skip]
pub(crate) const VALIDATORS: &[(&str, &str, &str, &str)] = &[
    ("Z101", "object", "Z1", "Z1"),
    ("Z102", "persistent object", "Z2", "Z2"),
    ("Z103", "key", "Z3", "Z3"),
    ("Z104", "type", "Z4", "Z4"),
    ("Z105", "error", "Z5", "Z5"),
    ("Z106", "string", "Z4", "Z6"),
    ("Z107", "function call", "Z7", "Z7"),
    ("Z108", "function", "Z8", "Z8"),
    ("Z109", "reference", "Z9", "Z9"),
    ("Z110", "list", "[Z1]", "[Z1]"),
    ("Z111", "monolingual text", "Z11", "Z11"),
    ("Z112", "multilingual text", "Z12", "Z12"),
    ("Z114", "implementation", "Z14", "Z14"),
    ("Z116", "code", "Z16", "Z16"),
    ("Z117", "argument declaration", "Z17", "Z17"),
    ("Z118", "argument reference", "Z18", "Z18"),
    ("Z120", "tester", "Z20", "Z20"),
    ("Z121", "unit", "Z21", "Z21"),
    ("Z122", "evaluation result", "Z22", "Z22"),
    ("Z123", "nothing", "Z23", "Z23"),
    ("Z131", "monolingual stringset", "Z31", "Z31"),
    ("Z132", "multilingual stringset", "Z12", "Z32"),
    ("Z139", "key reference", "Z39", "Z39"),
    ("Z140", "Boolean", "Z40", "Z40"),
    ("Z150", "error type", "Z50", "Z50"),
    ("Z160", "natural language", "Z60", "Z60"),
    ("Z161", "programming language", "Z61", "Z61"),
    ("Z180", "byte", "Z80", "Z80"),
    ("Z186", "code point", "Z86", "Z86"),
    ("Z199", "quote", "Z99", "Z99"),
];

/// The validators whose `Z8K4` does not follow the `Z(n+100)` rule.
const IMPLEMENTATION_EXCEPTIONS: &[(&str, &str)] = &[("Z123", "Z220")];

/// The only implementation that is a composition: Z885's.
pub(crate) const COMPOSITION: &str = "Z985";

/// `Zn` → `Z(n+100)`: the implementation object whose `Z14K1` is `Zn`.
pub(crate) fn own_implementation(function_zid: &str) -> String {
    let n = zid_number(function_zid).expect("function tables hold ZIDs");
    format!("Z{}", n + 100)
}

/// The implementation a function lists in its `Z8K4`.
pub(crate) fn listed_implementation(function_zid: &str) -> String {
    IMPLEMENTATION_EXCEPTIONS
        .iter()
        .find(|(f, _)| *f == function_zid)
        .map_or_else(
            || own_implementation(function_zid),
            |(_, i)| (*i).to_string(),
        )
}

/// A function's `Z2K2` from its parts; `args` are `(type expression, label)` in key order.
fn function_value(zid: &str, args: &[(&str, &str)], returns: &str, testers: &[&str]) -> Value {
    let declarations = args.iter().enumerate().map(|(i, (arg_type, text))| {
        json!({
            "Z1K1": "Z17",
            "Z17K1": type_expr(arg_type),
            "Z17K2": format!("{zid}K{}", i + 1),
            "Z17K3": label(text),
        })
    });
    json!({
        "Z1K1": "Z8",
        "Z8K1": list("Z17".into(), declarations),
        "Z8K2": type_expr(returns),
        "Z8K3": ref_list("Z20", testers),
        "Z8K4": ref_list("Z14", &[&listed_implementation(zid)]),
        "Z8K5": zid,
    })
}

/// The function and its implementation object, as `(zid, canonical Z2)` pairs.
pub(crate) fn build_function(f: &FunctionDef) -> [(String, Value); 2] {
    let value = function_value(f.zid, f.args, f.returns, f.testers);
    [
        (
            f.zid.to_string(),
            persistent(f.zid, value, f.label, f.aliases),
        ),
        implementation(f.zid, f.label),
    ]
}

/// A validator and its implementation object, as `(zid, canonical Z2)` pairs.
pub(crate) fn build_validator(
    &(zid, noun, arg_type, returns): &(&str, &str, &str, &str),
) -> [(String, Value); 2] {
    let value = function_value(zid, &[(arg_type, noun)], returns, &[]);
    let text = format!("Validate {noun}");
    [
        (zid.to_string(), persistent(zid, value, &text, &[])),
        implementation(zid, &text),
    ]
}

/// The implementation object `Z(n+100)` of function `Zn`.
fn implementation(function_zid: &str, function_label: &str) -> (String, Value) {
    let zid = own_implementation(function_zid);
    let (value, text) = if zid == COMPOSITION {
        (
            error_type_to_type(function_zid),
            format!("{function_label}, as a composition"),
        )
    } else {
        let value = json!({"Z1K1": "Z14", "Z14K1": function_zid, "Z14K4": escaped(&zid)});
        (value, format!("{function_label}, built in"))
    };
    let object = persistent(&zid, value, &text, &[]);
    (zid, object)
}

/// Z985: `Z885(E)` is the type `{Z4K1: Z885(E), Z4K2: Z803(Z39 "Z50K1", E), Z4K3: Z101}`,
/// i.e. the keys of the error type E, read by Value-by-key. The argument references and the
/// key reference spell their strings as explicit Z6 objects, as the original does.
fn error_type_to_type(function_zid: &str) -> Value {
    let argument = json!({"Z1K1": "Z18", "Z18K1": escaped(&format!("{function_zid}K1"))});
    json!({
        "Z1K1": "Z14",
        "Z14K1": function_zid,
        "Z14K2": {
            "Z1K1": "Z4",
            "Z4K1": {"Z1K1": "Z7", "Z7K1": function_zid, format!("{function_zid}K1"): argument},
            "Z4K2": {
                "Z1K1": "Z7",
                "Z7K1": "Z803",
                "Z803K1": {"Z1K1": "Z39", "Z39K1": escaped("Z50K1")},
                "Z803K2": argument,
            },
            "Z4K3": "Z101",
        },
    })
}
