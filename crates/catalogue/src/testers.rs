//! The testers (Z20) of the built-in functions, Z8010–Z8882. They are data only: the backend
//! never runs them. Each result validator is a call whose first argument is left out (the
//! caller fills it in with the tested call's result).

use serde_json::json;

use crate::canon::{list, persistent, string};
use zeval_zobject::{Map, Value};

/// A canonical call of `function` with arguments `<function>K<n>`.
fn call(function: &str, args: impl IntoIterator<Item = (u32, Value)>) -> Value {
    let mut m = Map::new();
    m.insert("Z1K1".into(), "Z7".into());
    m.insert("Z7K1".into(), function.into());
    for (n, value) in args {
        m.insert(format!("{function}K{n}"), value);
    }
    Value::Object(m)
}

fn text(s: &str) -> Value {
    string(s)
}

fn boolean(b: bool) -> Value {
    json!({"Z1K1": "Z40", "Z40K1": if b { "Z41" } else { "Z42" }})
}

fn strings(item_type: &str, items: &[&str]) -> Value {
    list(item_type.into(), items.iter().map(|s| string(s)))
}

fn code_point(c: &str) -> Value {
    json!({"Z1K1": "Z86", "Z86K1": string(c)})
}

/// The testers' pair argument is written as a Z22 whose two halves are the pair's elements.
fn z22_pair(first: &str, second: &str) -> Value {
    json!({"Z1K1": "Z22", "Z22K1": string(first), "Z22K2": string(second)})
}

/// Expects the result to equal `s` (String equality, Z866).
fn is_string(s: &str) -> Value {
    call("Z866", [(2, text(s))])
}

/// Expects the result to equal `b` (Boolean equality, Z844).
fn is_boolean(b: bool) -> Value {
    call("Z844", [(2, boolean(b))])
}

/// `(zid, function, label, call, result validator)`.
type Tester = (&'static str, &'static str, &'static str, Value, Value);

/// Every tester, in ZID order.
#[rustfmt::skip]
pub(crate) fn testers() -> Vec<Tester> {
    let math = "\u{106}\u{e6}\u{3b2}\u{21d2}\u{2211}\u{1d4d0}\u{1d54b}";
    let abc = strings("Z6", &["a", "b", "c"]);
    let three = || strings("Z1", &["first", "second", "third"]);
    let (t, f) = (boolean(true), boolean(false));
    let double = "\u{1d54b}";
    vec![
        ("Z8010", "Z801", "Echo a string",
            call("Z801", [(1, text("testing Test"))]), is_string("testing Test")),
        ("Z8011", "Z801", "Echo a string beyond ASCII",
            call("Z801", [(1, text(math))]), is_string(math)),
        ("Z8012", "Z801", "Echo a Boolean",
            call("Z801", [(1, f.clone())]), is_boolean(false)),
        ("Z8013", "Z801", "Echo a typed list",
            call("Z801", [(1, abc.clone())]), call("Z889", [(2, abc), (3, "Z866".into())])),
        ("Z8020", "Z802", "If false picks else",
            call("Z802", [(1, f.clone()), (2, text("wrong")), (3, text("right"))]),
            is_string("right")),
        ("Z8021", "Z802", "If true picks a list",
            call("Z886", [(1, call("Z802", [
                (1, t.clone()), (2, strings("Z1", &["A", "B", "C"])), (3, text("wrong")),
            ]))]),
            is_string("ABC")),
        ("Z8100", "Z810", "Prepend a string",
            call("Z886", [(1, call("Z810", [
                (1, text("first")), (2, strings("Z1", &["second", "third"])),
            ]))]),
            is_string("firstsecondthird")),
        ("Z8110", "Z811", "First of three strings",
            call("Z811", [(1, three())]), is_string("first")),
        ("Z8120", "Z812", "Rest of three strings",
            call("Z886", [(1, call("Z812", [(1, three())]))]), is_string("secondthird")),
        ("Z8130", "Z813", "Empty list is empty",
            call("Z813", [(1, strings("Z1", &[]))]), is_boolean(true)),
        ("Z8131", "Z813", "One-element list is not empty",
            call("Z813", [(1, strings("Z1", &["Not Empty!"]))]), is_boolean(false)),
        ("Z8210", "Z821", "First of a pair of strings",
            call("Z821", [(1, z22_pair("first", "second"))]), is_string("first")),
        ("Z8220", "Z822", "Second of a pair of strings",
            call("Z822", [(1, z22_pair("first", "second"))]), is_string("second")),
        ("Z8440", "Z844", "true equals true",
            call("Z844", [(1, t.clone()), (2, t.clone())]), is_boolean(true)),
        ("Z8441", "Z844", "true differs from false",
            call("Z844", [(1, t.clone()), (2, f.clone())]), is_boolean(false)),
        ("Z8442", "Z844", "false differs from true",
            call("Z844", [(1, f.clone()), (2, t)]), is_boolean(false)),
        ("Z8443", "Z844", "false equals false",
            call("Z844", [(1, f.clone()), (2, f)]), is_boolean(true)),
        ("Z8660", "Z866", "Equal strings",
            call("Z866", [(1, text("Equals")), (2, text("Equals"))]), is_boolean(true)),
        ("Z8661", "Z866", "Strings differing in case",
            call("Z866", [(1, text("Equals")), (2, text("equals"))]), is_boolean(false)),
        ("Z8662", "Z866", "Different strings",
            call("Z866", [(1, text("Equals")), (2, text("different"))]), is_boolean(false)),
        ("Z8880", "Z888", "Same code point",
            call("Z888", [(1, code_point("\u{21d2}")), (2, code_point("\u{21d2}"))]),
            is_boolean(true)),
        ("Z8881", "Z888", "Different code points",
            call("Z888", [(1, code_point("\u{21d2}")), (2, code_point("="))]),
            is_boolean(false)),
        ("Z8882", "Z888", "Same code point beyond the BMP",
            call("Z888", [(1, code_point(double)), (2, code_point(double))]),
            is_boolean(true)),
    ]
}

/// The canonical Z2 of a tester.
pub(crate) fn build((zid, function, label, tested, validator): Tester) -> (String, Value) {
    let value = json!({"Z1K1": "Z20", "Z20K1": function, "Z20K2": tested, "Z20K3": validator});
    (zid.to_string(), persistent(zid, value, label, &[]))
}
