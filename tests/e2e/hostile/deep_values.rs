//! Item 1: values the orchestrator builds itself are as deep as a request can make them. Z868
//! turns an N-character string into an N-deep normal list; handing a million levels to code
//! used to overflow the worker stack and abort the whole process.

use serde_json::json;

use super::{
    DEADLINE, JAVASCRIPT, PYTHON, Target, assert_refused, call_of, code_function, one_at_a_time,
};

/// Characters in the hostile string: the million.
const LENGTH: usize = 1_000_000;

fn code_points_of(text: serde_json::Value) -> serde_json::Value {
    json!({"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": text})
}

fn list_of_code_points() -> serde_json::Value {
    json!({"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z86"})
}

#[test]
fn a_million_deep_list_handed_to_code_is_a_z5_not_a_crash() {
    let _serial = one_at_a_time();
    // The body limit is raised so the million characters can be sent as they are; the
    // variation below builds them inside the call and needs no raise.
    let target = Target::start(&[("ZEVAL_ORCHESTRATOR_BODY_BYTES", "4194304")]);
    let long_text = "a".repeat(LENGTH);

    let count_in_js = code_function(
        "Z10100",
        list_of_code_points(),
        "Z6",
        JAVASCRIPT,
        "function Z10100( Z10100K1 ) { return String( Z10100K1.length ); }",
    );
    let count_in_python = code_function(
        "Z10101",
        list_of_code_points(),
        "Z6",
        PYTHON,
        "def Z10101(Z10101K1):\n    return str(len(Z10101K1))",
    );
    // The long string made by code, inside a body of a few hundred bytes.
    let make_long_text = call_of(
        code_function(
            "Z10102",
            json!("Z6"),
            "Z6",
            JAVASCRIPT,
            &format!("function Z10102( Z10102K1 ) {{ return Z10102K1.repeat( {LENGTH} ); }}"),
        ),
        "Z10102",
        json!("a"),
    );
    // Code returning a million-element list: deep in normal form as soon as the host reads it.
    let long_list_from_js = call_of(
        code_function(
            "Z10103",
            json!("Z6"),
            "Z1",
            JAVASCRIPT,
            &format!(
                "function Z10103( Z10103K1 ) {{ return Array.from( {{ length: {LENGTH} }}, () => Z10103K1 ); }}"
            ),
        ),
        "Z10103",
        json!("a"),
    );
    // Code returning a value nested a million levels deep.
    let deep_value_from_python = call_of(
        code_function(
            "Z10104",
            json!("Z6"),
            "Z1",
            PYTHON,
            &format!(
                "def Z10104(Z10104K1):\n    v = [Z10104K1]\n    for _ in range({LENGTH}):\n        v = [v]\n    return v"
            ),
        ),
        "Z10104",
        json!("a"),
    );

    let attacks = [
        (
            "Z868 of a million characters into JavaScript",
            call_of(
                count_in_js.clone(),
                "Z10100",
                code_points_of(json!(long_text)),
            ),
        ),
        (
            "Z868 of a million characters into Python",
            call_of(count_in_python, "Z10101", code_points_of(json!(long_text))),
        ),
        (
            "Z868 of a million characters made by code, into JavaScript",
            call_of(count_in_js, "Z10100", code_points_of(make_long_text)),
        ),
        (
            "a million-element list returned by JavaScript",
            long_list_from_js,
        ),
        (
            "a million-deep list returned by Python",
            deep_value_from_python,
        ),
    ];
    for (what, attack) in attacks {
        let timed = target.watched_call(attack);
        let code = assert_refused(what, &timed, DEADLINE);
        eprintln!("item 1, {what}: {code} in {:?}", timed.took);
    }

    // The composition alone: a million code points returned to the caller. A budget may
    // refuse it (Z5) or the answer may be the whole list; either way in time, and no crash.
    let alone = code_points_of(json!("b".repeat(LENGTH)));
    let timed = target.watched_call(alone);
    let answer = timed
        .answer
        .as_ref()
        .unwrap_or_else(|e| panic!("a million code points returned: no answer: {e}"));
    assert!(
        timed.took <= DEADLINE + super::MARGIN,
        "a million code points returned: answered after {:?}",
        timed.took
    );
    if answer.status == 200 && super::error_code(&answer.json()).is_none() {
        let list = answer.json()["Z22K1"].as_array().map(Vec::len);
        assert_eq!(list, Some(LENGTH + 1), "the list came back incomplete");
    } else {
        assert_refused("a million code points returned", &timed, DEADLINE);
    }
    target.assert_survived();
}

/// Deep values travel to a remote evaluator too: the orchestrator encodes the call for it
/// (and reads its answer) on a thread of its own, which had Rust's default 2 MiB stack, so a
/// list nested as deep as the value depth limit lets a request make (Z868 of 19,000
/// characters, a 19 KB body) overflowed it and aborted the whole process.
#[test]
fn a_deep_list_sent_to_a_remote_evaluator_is_not_a_crash() {
    let _serial = one_at_a_time();
    let evaluator_data = tempfile::tempdir().unwrap();
    let evaluator =
        crate::common::Server::start(evaluator_data.path(), &["--role", "evaluator"], &[]);
    let evaluate_url = format!(
        "{}/wikifunctions.org/v1/evaluate/",
        evaluator.evaluator.as_deref().unwrap()
    );
    let target = Target::start_with(
        &["--role", "orchestrator"],
        &[("ZEVAL_EVALUATOR_URL", &evaluate_url)],
    );
    let count_in_js = code_function(
        "Z10100",
        list_of_code_points(),
        "Z6",
        JAVASCRIPT,
        "function Z10100( Z10100K1 ) { return String( Z10100K1.length ); }",
    );
    for length in [2_000, 19_000] {
        let attack = call_of(
            count_in_js.clone(),
            "Z10100",
            code_points_of(json!("a".repeat(length))),
        );
        let timed = target.watched_call(attack);
        let answer = timed
            .answer
            .as_ref()
            .unwrap_or_else(|e| panic!("{length} code points to a remote evaluator: {e}"));
        assert_eq!(answer.status, 200, "{}", answer.text);
        let z22 = answer.json();
        if super::error_code(&z22).is_none() {
            assert_eq!(z22["Z22K1"], json!(length.to_string()), "{}", answer.text);
        }
        eprintln!(
            "{length} code points to a remote evaluator: {} in {:?}",
            super::error_code(&z22).unwrap_or_else(|| z22["Z22K1"].to_string()),
            timed.took
        );
    }
    target.assert_survived();
}
