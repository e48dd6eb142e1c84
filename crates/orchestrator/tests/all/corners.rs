//! Corner behaviours of the original that a wider sample of its own cases shows: the error
//! for an argument (or a result) that is not of its declared type, and reifying objects whose
//! keys refer back to their own type.

use serde_json::json;
use zeval_orchestrator::{CallOptions, OrchestratorConfig};
use zeval_zobject::Value;
use zeval_zobject::build::get_metadata;

use crate::orchestrator;

/// A file of the orchestrator suite's `data/` directory.
fn suite_data(file: &str) -> Value {
    let path = format!(
        "{}/../../../shared/wikifunctions/orchestrator/data/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    zeval_zobject::json::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn error_of(result: &Value) -> Value {
    get_metadata(&result["Z22K2"], "errors")
        .cloned()
        .unwrap_or_else(|| panic!("no error in {result}"))
}

fn run(input: &Value, do_validate: bool) -> Value {
    orchestrator(&[], OrchestratorConfig::default()).orchestrate(
        input,
        &CallOptions {
            do_validate,
            ..CallOptions::default()
        },
    )
}

/// An argument whose value is a string where a Boolean is declared: the original's Z506
/// carries the declared type, the value's type, the value, and the Z518 type mismatch.
#[test]
fn an_argument_not_of_its_declared_type() {
    let input = suite_data("invalid_call_argument_not_of_declared_type.json");
    let expected = suite_data("invalid_call_argument_not_of_declared_type_expected.json");
    for do_validate in [true, false] {
        let result = run(&input, do_validate);
        assert_eq!(error_of(&result), expected, "doValidate {do_validate}");
    }
}

/// The value (`Z2K2`) of a file of the orchestrator suite's mock wiki.
fn wiki_value(zid: &str) -> (&str, Value) {
    let path = format!(
        "{}/../../../shared/wikifunctions/orchestrator/wiki/{zid}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let object = zeval_zobject::json::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    (zid, object["Z2K2"].clone())
}

/// The original's Z905 reifies the JSON of its (eagerly evaluated) argument: an object
/// becomes the list of its `(key, reified value)` pairs and a bare string of the normal form
/// (the `Z1K1` of a string or a reference, `Z6K1`, `Z9K1`) a string. This is that, over a
/// canonical value whose bare strings are references (as in the original's own expected
/// results, where every string is ZID-like and so stays an explicit Z6).
fn reified(canonical: &Value) -> Value {
    let pair_type = json!({"Z1K1": "Z7", "Z7K1": "Z882", "Z882K1": "Z39", "Z882K2": "Z1"});
    let entries: Vec<(String, Value)> = match canonical {
        Value::String(zid) => vec![
            ("Z1K1".into(), json!({"Z1K1": "Z6", "Z6K1": "Z9"})),
            ("Z9K1".into(), json!({"Z1K1": "Z6", "Z6K1": zid})),
        ],
        Value::Object(object) => object
            .iter()
            .map(|(key, value)| (key.clone(), reified(value)))
            .collect(),
        other => panic!("not in this test's canonical subset: {other}"),
    };
    let mut list = vec![pair_type.clone()];
    for (key, value) in entries {
        list.push(json!({"Z1K1": pair_type, "K1": {"Z1K1": "Z39", "Z39K1": key}, "K2": value}));
    }
    Value::Array(list)
}

/// Reifying objects of types whose keys refer back to their own type (the original's
/// "cyclical references" fixtures: Z30321 has a key of type Z30321, Z40321 and Z40421 refer
/// to each other, and Z30322/Z40322/Z40422 are persistent objects of them that refer to
/// themselves or each other) ends, and gives the reification of what the original's eager
/// evaluation makes of the argument: each reference is expanded until its key comes round
/// again with the same type, then left as a reference (the original's echo of these
/// arguments: `expected-echoed-kleenean-reference.json`,
/// `expected-echoed-unkleenean-reference.json`).
#[test]
fn reifying_self_referential_objects_ends_with_the_originals_result() {
    let objects = ["Z30321", "Z30322", "Z40321", "Z40322", "Z40421", "Z40422"].map(wiki_value);
    let cases = [
        (
            json!({"Z1K1": "Z30321", "Z30321K1": "Z30322"}),
            "expected-echoed-kleenean-reference.json",
        ),
        (
            json!({"Z1K1": "Z40321", "Z40321K1": "Z40322"}),
            "expected-echoed-unkleenean-reference.json",
        ),
    ];
    for (argument, echoed) in cases {
        let expected = reified(&suite_data(echoed));
        for do_validate in [true, false] {
            let o = orchestrator(&objects, OrchestratorConfig::default());
            let options = CallOptions {
                do_validate,
                ..CallOptions::default()
            };
            let echo = json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": argument});
            assert_eq!(
                o.orchestrate(&echo, &options)["Z22K1"],
                suite_data(echoed),
                "echo of {argument}"
            );
            let reify = json!({"Z1K1": "Z7", "Z7K1": "Z805", "Z805K1": argument});
            let result = o.orchestrate(&reify, &options);
            assert_eq!(
                result["Z22K1"], expected,
                "reify of {argument}, doValidate {do_validate}: {result}"
            );
        }
    }
}

/// Strings and arrays are answered without building their normal form: the error is the one
/// normalizing gives, or the Z539 when they are well formed (never a function call).
#[test]
fn strings_and_arrays_answer_what_normalizing_says() {
    let not_a_call = zeval_zobject::canonicalize(&zeval_zobject::error::z5(
        "Z539",
        [zeval_zobject::build::z6(
            "The provided object is not a function call",
        )],
    ))
    .unwrap();
    for input in [
        json!(""),
        json!("Z7"),
        json!("Z801"),
        json!([]),
        json!(["Z6", "a", "b"]),
        json!(["Z6", 1]),
        json!(["Z1", {"no": "type"}]),
        json!([{"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "x"}]),
        json!(["Z6", ["Z6", true]]),
    ] {
        let expected = match zeval_zobject::normalize(&input) {
            Ok(_) => not_a_call.clone(),
            Err(error) => zeval_zobject::canonicalize(&error).unwrap_or(error),
        };
        for do_validate in [true, false] {
            let result = run(&input, do_validate);
            assert_eq!(error_of(&result), expected, "{input}");
        }
    }
}
