//! Reentrant calls (`W.Call`) with the real guests: the evaluator hands each nested call to
//! its caller's [`NestedCalls`] and the answer back to the code; errors reach the code as
//! exceptions, and an uncaught one is the call's error, as the caller gave it.

use std::time::Instant;

use serde_json::json;
use zeval_evaluator::{Family, NestedCall, NestedCalls};
use zeval_zobject::Value;
use zeval_zobject::build::{envelope_error, z6};
use zeval_zobject::error::z5_str;

use crate::{evaluator, outcome, request};

/// Answers `Z10000(text)` with the text upper-cased, and fails every other function with a
/// Z590 "reentrant depth", recording what it was asked.
#[derive(Default)]
struct UpperCase {
    calls: Vec<NestedCall>,
}

impl NestedCalls for UpperCase {
    fn call(&mut self, call: NestedCall, deadline: Instant) -> Result<Value, Value> {
        assert!(
            deadline > Instant::now(),
            "the guest's deadline is still ahead"
        );
        self.calls.push(call.clone());
        if call.function != "Z10000" {
            return Err(z5_str("Z590", &["reentrant depth", "too deep"]));
        }
        let text = call
            .arguments
            .iter()
            .find(|(key, _)| key == "Z10000K1")
            .and_then(|(_, value)| value["Z6K1"].as_str())
            .unwrap_or_default();
        Ok(z6(text.to_uppercase()))
    }
}

const PYTHON_CALLS: &str =
    "def Z1000(Z1000K1):\n    return W.Call(\"Z10000\", Z10000K1=Z1000K1) + \"!\"";
const JS_CALLS: &str =
    "function Z1000(Z1000K1) { return W.Call('Z10000', {Z10000K1: Z1000K1}) + '!'; }";

#[test]
fn code_calls_another_function() {
    for (family, code) in [
        (Family::Python, PYTHON_CALLS),
        (Family::JavaScript, JS_CALLS),
    ] {
        let mut nested = UpperCase::default();
        let z22 = evaluator().evaluate_with(request(family, code, &["abc"]), &mut nested);
        assert_eq!(outcome(&z22), Ok("ABC!".to_owned()), "{family}: {z22}");
        assert_eq!(nested.calls.len(), 1, "{family}");
        assert_eq!(nested.calls[0].function, "Z10000");
        assert_eq!(
            nested.calls[0].arguments,
            vec![("Z10000K1".to_owned(), json!({"Z1K1": "Z6", "Z6K1": "abc"}))],
            "{family}: arguments are serialized like results"
        );
    }
}

#[test]
fn without_a_caller_code_fails_as_a_non_reentrant_executor() {
    for (family, code) in [
        (Family::Python, PYTHON_CALLS),
        (Family::JavaScript, JS_CALLS),
    ] {
        let z22 = evaluator().evaluate(request(family, code, &["abc"]));
        assert_eq!(
            outcome(&z22),
            Err("Non-reentrant executor tried to call back to the orchestrator".to_owned()),
            "{family}"
        );
    }
}

#[test]
fn errors_are_exceptions_the_code_may_catch() {
    let python = "def Z1000(Z1000K1):\n    try:\n        W.Call(\"Z10002\")\n    except ZError as e:\n        return e.args[0] + \" / \" + e.z5[\"Z5K1\"][\"Z9K1\"]";
    let javascript = "function Z1000(Z1000K1) { try { W.Call('Z10002', {}); } catch (e) { return (e instanceof W.Error) + ' ' + e.message + ' / ' + e.z5.Z5K1.Z9K1; } }";
    for (family, code, expected) in [
        (
            Family::Python,
            python,
            "Z590: reentrant depth: too deep / Z590",
        ),
        (
            Family::JavaScript,
            javascript,
            "true Z590: reentrant depth: too deep / Z590",
        ),
    ] {
        let mut nested = UpperCase::default();
        let z22 = evaluator().evaluate_with(request(family, code, &["x"]), &mut nested);
        assert_eq!(outcome(&z22), Ok(expected.to_owned()), "{family}: {z22}");
    }
}

#[test]
fn an_uncaught_error_is_the_calls_error_as_given() {
    let python = "def Z1000(Z1000K1):\n    return W.Call(\"Z10002\")";
    let javascript = "function Z1000(Z1000K1) { return W.Call('Z10002'); }";
    for (family, code) in [(Family::Python, python), (Family::JavaScript, javascript)] {
        let mut nested = UpperCase::default();
        let z22 = evaluator().evaluate_with(request(family, code, &["x"]), &mut nested);
        let error = envelope_error(&z22).unwrap_or_else(|| panic!("{family}: {z22}"));
        assert_eq!(
            error,
            &z5_str("Z590", &["reentrant depth", "too deep"]),
            "{family}"
        );
    }
    // A guest cannot pass off an error of its own making: only indices the evaluator gave
    // are substituted.
    let forged = "def Z1000(Z1000K1):\n    raise ZError(\"forged\", {\"Z1K1\": \"Z5\"}, 0)";
    let mut nested = UpperCase::default();
    let z22 = evaluator().evaluate_with(request(Family::Python, forged, &["x"]), &mut nested);
    assert_eq!(outcome(&z22), Err("forged".to_owned()), "{z22}");
}

#[test]
fn bad_requests_are_refused_in_the_guest() {
    let python = "def Z1000(Z1000K1):\n    try:\n        W.Call(\"Z10000\", Z2K1=\"x\")\n    except ZError as e:\n        return e.args[0]";
    let javascript =
        "function Z1000(Z1000K1) { try { W.Call('rm -rf', {}); } catch (e) { return e.message; } }";
    for (family, code, phrase) in [
        (Family::Python, python, "is not a key of Z10000"),
        (Family::JavaScript, javascript, "must be given by its ZID"),
    ] {
        let mut nested = UpperCase::default();
        let z22 = evaluator().evaluate_with(request(family, code, &["x"]), &mut nested);
        let message = outcome(&z22).unwrap_or_else(|e| panic!("{family}: {e}"));
        assert!(message.contains(phrase), "{family}: {message}");
        assert!(nested.calls.is_empty(), "{family}: nothing was called");
    }
}

/// Runs each nested call as another guest call of the same evaluator (alternating the
/// languages), `levels` deep: what the orchestrator does, without it.
struct Recursive {
    levels: usize,
}

const PYTHON_COUNTDOWN: &str = "def Z1000(Z1000K1):\n    n = int(Z1000K1)\n    return \"0\" if n == 0 else str(int(W.Call(\"Z1000\", Z1000K1=str(n - 1))) + 1)";
const JS_COUNTDOWN: &str = "function Z1000(Z1000K1) { const n = Number(Z1000K1); return n === 0 ? '0' : String(Number(W.Call('Z1000', {Z1000K1: String(n - 1)})) + 1); }";

impl NestedCalls for Recursive {
    fn call(&mut self, call: NestedCall, _: Instant) -> Result<Value, Value> {
        self.levels += 1;
        let argument = call.arguments[0].1["Z6K1"].as_str().unwrap_or_default();
        let (family, code) = if self.levels.is_multiple_of(2) {
            (Family::JavaScript, JS_COUNTDOWN)
        } else {
            (Family::Python, PYTHON_COUNTDOWN)
        };
        let z22 = evaluator().evaluate_with(request(family, code, &[argument]), self);
        match envelope_error(&z22) {
            Some(error) => Err(error.clone()),
            None => Ok(z22["Z22K1"].clone()),
        }
    }
}

#[test]
fn nested_calls_run_guests_of_their_own_on_the_same_thread() {
    let mut nested = Recursive { levels: 0 };
    let started = Instant::now();
    let z22 = evaluator().evaluate_with(
        request(Family::JavaScript, JS_COUNTDOWN, &["6"]),
        &mut nested,
    );
    assert_eq!(outcome(&z22), Ok("6".to_owned()), "{z22}");
    assert_eq!(nested.levels, 6);
    eprintln!("7 guest calls nested 6 deep: {:?}", started.elapsed());
}

/// Like [`Recursive`], in Python only, with `evaluator` (whose pool may be small).
struct PythonRecursion<'a> {
    evaluator: &'a zeval_evaluator::Evaluator,
}

impl NestedCalls for PythonRecursion<'_> {
    fn call(&mut self, call: NestedCall, _: Instant) -> Result<Value, Value> {
        let argument = call.arguments[0].1["Z6K1"].as_str().unwrap_or_default();
        let evaluator = self.evaluator;
        let z22 =
            evaluator.evaluate_with(request(Family::Python, PYTHON_COUNTDOWN, &[argument]), self);
        match envelope_error(&z22) {
            Some(error) => Err(error.clone()),
            None => Ok(z22["Z22K1"].clone()),
        }
    }
}

#[test]
fn nesting_deeper_than_the_pool_ends_at_the_deadline() {
    // Two slots: the third level waits for a slot the two callers above it hold, until the
    // deadline, and the whole call ends with the timeout, not a hang.
    let mut config = zeval_evaluator::EvaluatorConfig::default();
    config.sandbox.pool.max_instances = 2;
    config.sandbox.pool.reserve_instances = 0;
    config.limits.wall_time = std::time::Duration::from_millis(1500);
    let evaluator = zeval_evaluator::Evaluator::new(config).unwrap_or_else(|e| panic!("{e}"));
    let mut nested = PythonRecursion {
        evaluator: &evaluator,
    };
    let started = Instant::now();
    let z22 = evaluator.evaluate_with(
        request(Family::Python, PYTHON_COUNTDOWN, &["5"]),
        &mut nested,
    );
    let elapsed = started.elapsed();
    assert_eq!(
        outcome(&z22),
        Err("Function call timed out".to_owned()),
        "{z22}"
    );
    assert!(
        elapsed < std::time::Duration::from_millis(3000),
        "took {elapsed:?}"
    );
    // With the slots free again, a shallow recursion answers.
    let z22 = evaluator.evaluate_with(
        request(Family::Python, PYTHON_COUNTDOWN, &["1"]),
        &mut nested,
    );
    assert_eq!(outcome(&z22), Ok("1".to_owned()), "{z22}");
}
