//! The QuickJS guest reads a request whose arguments are all strings itself, and writes a
//! string result's answer itself (guests/quickjs/src/string_call.rs); any other request
//! goes to runner.js's own reading. Both ways must give the same answer: each case here is
//! run with its string arguments alone, then with one more argument that is not a string
//! (a Z40, which the function never reads), on both paths of the code cache.

use zeval_evaluator::{ExecutorRequest, Request};
use zeval_zobject::{Map, Value};

use zeval_zobject::build::envelope_error;

use crate::evaluator;

/// What a call answered: its result, or its error (a Z5), without the metadata, which
/// holds timings.
fn outcome(z22: &Value) -> Value {
    match envelope_error(z22) {
        Some(error) => serde_json::json!({ "error": error }),
        None => z22["Z22K1"].clone(),
    }
}

fn string(value: &str) -> Value {
    serde_json::json!({ "Z1K1": "Z6", "Z6K1": value })
}

/// A request calling `Z1000` of `code` with `arguments` by key, with the Z40 `Z1000L1`
/// (after every key of theirs) added when `with_boolean`.
fn request(code: &str, arguments: &[(&str, Value)], with_boolean: bool) -> Request {
    let mut function_arguments: Map<String, Value> = arguments
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect();
    if with_boolean {
        function_arguments.insert(
            "Z1000L1".to_owned(),
            serde_json::json!({ "Z1K1": "Z40", "Z40K1": "Z41" }),
        );
    }
    Request::Executor(ExecutorRequest {
        coding_language: Some("javascript".to_owned()),
        code_string: Some(code.to_owned()),
        function_name: Some("Z1000".to_owned()),
        function_arguments,
        ..ExecutorRequest::default()
    })
}

/// The outcomes of four calls of `code` (the code cache compiles it at the second and runs
/// its bytecode from the third) read by the guest, then by runner.js; asserts they agree
/// and returns them.
fn both_ways(code: &str, arguments: &[(&str, Value)]) -> Value {
    let outcomes: Vec<Vec<Value>> = [false, true]
        .into_iter()
        .map(|with_boolean| {
            (0..4)
                .map(|_| outcome(&evaluator().evaluate(request(code, arguments, with_boolean))))
                .collect()
        })
        .collect();
    let first = &outcomes[0][0];
    for (way, calls) in outcomes.iter().enumerate() {
        for (call, answer) in calls.iter().enumerate() {
            assert_eq!(answer, first, "{code}: way {way}, call {call}");
        }
    }
    first.clone()
}

#[test]
fn strings_come_in_by_key_in_javascript_order_with_either_form_of_their_type() {
    // JavaScript sorts keys by UTF-16 code units: "Z1000K10" before "Z1000K2", and U+1F600
    // (whose first surrogate is 0xD83D) before U+FF5E, which UTF-8 puts the other way.
    let reference = serde_json::json!({ "Z1K1": { "Z1K1": "Z9", "Z9K1": "Z6" }, "Z6K1": "ref" });
    let arguments = [
        ("Z1000K2", string("two \"quoted\"\n\u{e9}\u{1}")),
        ("Z1000K10", string("ten")),
        ("Z1000K3", reference),
        ("Z1000K\u{1f600}", string("emoji")),
        ("Z1000K\u{ff5e}", string("tilde")),
    ];
    assert_eq!(
        both_ways(
            "function Z1000(...all) { return all.slice(0, 5).join('|'); } // strings 1",
            &arguments
        ),
        string("ten|two \"quoted\"\n\u{e9}\u{1}|ref|emoji|tilde")
    );
}

#[test]
fn every_kind_of_result_and_error_is_answered_the_same_both_ways() {
    let arguments = [("Z1000K1", string("a\u{1f600}b"))];
    for (code, expected) in [
        ("return Z1000K1 + '!';", Ok("a\u{1f600}b!")),
        ("return new String(Z1000K1);", Ok("a\u{1f600}b")),
        ("return '';", Ok("")),
        // A lone surrogate, which JSON escapes and Rust's strings cannot hold.
        ("return Z1000K1.slice(0, 2);", Err("")),
        ("return Z1000K1.length;", Err("")),
        ("return Z1000K1 === 'a' ? null : true;", Err("")),
        ("return [Z1000K1];", Err("")),
        ("throw new Error('no ' + Z1000K1);", Err("no a\u{1f600}b")),
        ("throw 'bare';", Err("bare")),
        ("return Z1000K1 +;", Err("")),
    ] {
        let code = format!("function Z1000(Z1000K1) {{ {code} }}");
        let answer = both_ways(&code, &arguments);
        // Other results and errors: the same both ways is what matters; a message given
        // here must be the error's.
        match expected {
            Ok(value) => assert_eq!(answer, string(value), "{code}"),
            Err("") => {}
            Err(message) => assert_eq!(
                answer["error"]["Z5K2"]["Z6K1"].as_str(),
                Some(message),
                "{code}: {answer}"
            ),
        }
    }
}
