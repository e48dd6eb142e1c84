//! Schema validation of what a request sends: the same object is reached through several
//! `anyOf`/`oneOf` branches at each level of nesting, and until 2026-12-06 only checks that
//! passed were remembered. A call of 631 bytes, nested 13 levels under a quote, took the
//! release server 41 s to validate (5 s deadline), holding a core and a work slot; each
//! level multiplied that by about four.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{DEADLINE, MARGIN, Target, assert_refused, one_at_a_time, prefix};
use crate::common::{request, z2};

/// Levels of nesting: at the old rate, some 10^12 checks.
const LEVELS: usize = 30;

/// Calls of Echo nested `LEVELS` times under local keys, over `bottom`.
fn nested_calls(bottom: Value) -> Value {
    (0..LEVELS).fold(
        bottom,
        |inner, _| json!({"Z1K1": "Z7", "Z7K1": "Z801", "K1": inner}),
    )
}

/// An error kept as it is given (its list an array, which normal form does not allow).
fn invalid_bottom() -> Value {
    json!({"Z1K1": "Z5", "Z5K1": {"Z1K1": "Z502"}, "Z5K2": ["Z1"]})
}

fn quoted(value: Value) -> Value {
    json!({"Z1K1": "Z99", "Z99K1": value})
}

fn echo(value: Value) -> Value {
    json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": value})
}

#[test]
fn deeply_nested_values_are_validated_at_once() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    for (what, zobject) in [
        (
            "a quoted invalid value",
            echo(quoted(nested_calls(invalid_bottom()))),
        ),
        (
            "a quoted valid value",
            echo(quoted(nested_calls(json!("x")))),
        ),
        ("an invalid value", echo(nested_calls(invalid_bottom()))),
    ] {
        let timed = target.watched_call(zobject);
        let took = timed.took;
        match &timed.answer {
            Ok(answer) if answer.status == 200 && super::error_code(&answer.json()).is_none() => {
                assert!(took <= DEADLINE + MARGIN, "{what}: answered after {took:?}");
            }
            _ => {
                assert_refused(what, &timed, DEADLINE);
            }
        }
        eprintln!("{what}: answered in {took:?}");
    }
    // An editor's write is validated too.
    let orch = target.orch().to_owned();
    let started = Instant::now();
    let answer = request(
        "PUT",
        &format!("{orch}/v1/objects/Z10900"),
        Some(&target.editor),
        Some(&z2("Z10900", quoted(nested_calls(invalid_bottom())))),
    );
    let took = started.elapsed();
    assert!(
        took <= Duration::from_secs(5),
        "the write was answered after {took:?}: {}",
        prefix(&answer.text)
    );
    eprintln!("the write: {} in {took:?}", answer.status);
    target.assert_survived();
}
