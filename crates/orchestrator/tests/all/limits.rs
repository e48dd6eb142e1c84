//! The depth limit, the deadline and the rest of the per-request budget.

use std::time::Duration;

use serde_json::json;
use zeval_orchestrator::{BudgetLimits, CallOptions, OrchestratorConfig};

use crate::{error_code, orchestrator};

/// `Z10000(list)`: If(is empty(list), "done", Z10000(tail(list))). Given the code points of
/// a 100,000-character string it would recurse 100,000 deep.
fn countdown() -> serde_json::Value {
    countdown_recursing_through(|call| call)
}

/// `Z10000(list)`: If(is empty(list), "done", `wrap`(Z10000(tail(list)))).
fn countdown_recursing_through(
    wrap: impl Fn(serde_json::Value) -> serde_json::Value,
) -> serde_json::Value {
    let arg = json!({"Z1K1": "Z18", "Z18K1": "Z10000K1"});
    let again = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": {"Z1K1": "Z7", "Z7K1": "Z812", "Z812K1": arg}});
    json!({"Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z86"}, "Z17K2": "Z10000K1",
                 "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z6", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10000", "Z14K2": {
            "Z1K1": "Z7", "Z7K1": "Z802",
            "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": arg},
            "Z802K2": "done",
            "Z802K3": wrap(again)}}],
        "Z8K5": "Z10000"})
}

/// A budget that admits the 100,000-element lists these tests build, so that the limit under
/// test (call depth, deadline, stack) is the one that stops them.
fn deep_lists() -> OrchestratorConfig {
    OrchestratorConfig {
        budget: BudgetLimits {
            max_value_depth: 200_000,
            ..BudgetLimits::default()
        },
        ..OrchestratorConfig::default()
    }
}

/// `Z10000(list)`: If(is empty(list), "done", Echo(Z10000(tail(list)))): the recursive call
/// is an argument of Echo, not in tail position, so every step nests.
fn nested_countdown() -> serde_json::Value {
    countdown_recursing_through(|call| json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": call}))
}

fn countdown_call(n: usize) -> serde_json::Value {
    json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": {"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "a".repeat(n)}})
}

#[test]
fn shallow_recursion_finishes() {
    let o = orchestrator(&[("Z10000", countdown())], OrchestratorConfig::default());
    let result = o.orchestrate(&countdown_call(50), &CallOptions::default());
    assert_eq!(result["Z22K1"], "done", "{result}");
}

#[test]
fn tail_recursion_over_10_000_elements_finishes_in_constant_stack() {
    // The recursive call is If's branch and the composition's body: it takes no call level
    // and no stack, so the default depth limit (far below 30,000 levels of three calls per
    // element) does not stop it, on a thread with a small stack.
    let worker = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let config = OrchestratorConfig {
                max_depth: 100,
                ..OrchestratorConfig::default()
            };
            let o = orchestrator(&[("Z10000", countdown())], config);
            o.orchestrate(&countdown_call(10_000), &CallOptions::default())
        })
        .unwrap();
    let result = worker.join().expect("no stack overflow");
    assert_eq!(result["Z22K1"], "done", "{result}");
}

/// `Z10000(list)`: If(is empty(list), Echo(`base`), Echo(Z10000(tail(list)))): `base` is
/// evaluated at the bottom of a nested recursion.
fn nested_countdown_ending_in(base: serde_json::Value) -> serde_json::Value {
    let mut z8 = nested_countdown();
    let mut echo = json!({"Z1K1": "Z7", "Z7K1": "Z801"});
    echo["Z801K1"] = base;
    z8["Z8K4"][1]["Z14K2"]["Z802K2"] = echo;
    z8
}

/// `levels` objects, each the `K1` of the one around it, with `"x"` in the last: built
/// without the JSON macros, which recurse.
fn nested_objects(levels: usize) -> serde_json::Value {
    let mut deep = json!("x");
    for _ in 0..levels {
        let mut level = serde_json::Map::new();
        level.insert("Z1K1".into(), json!("Z39"));
        level.insert("K1".into(), deep);
        deep = serde_json::Value::Object(level);
    }
    deep
}

/// At the bottom of a nested recursion, metadata holding `deep` is set (Z820) and dropped.
fn nested_countdown_to_deep_metadata(deep: serde_json::Value) -> serde_json::Value {
    let mut metadata = json!({"Z1K1": "Z7", "Z7K1": "Z820", "Z820K1": "k"});
    metadata["Z820K2"] = deep;
    nested_countdown_ending_in(metadata)
}

/// Values in metadata and errors are JSON, which drops and copies recursively: at the
/// bottom of a deep recursion, with as little stack left as the engine ever leaves, a value
/// as deep as metadata may hold is still dropped without overflowing it.
#[test]
fn deep_metadata_at_the_bottom_of_a_deep_recursion_fits_the_stack() {
    // As deep as a metadata value may be (`MAX_METADATA_VALUE_DEPTH`).
    let function = nested_countdown_to_deep_metadata(nested_objects(95));
    for levels in [100, 300, 1_000] {
        let function = function.clone();
        let result = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let o = orchestrator(&[("Z10000", function)], deep_lists());
                o.orchestrate(&countdown_call(levels), &CallOptions::default())
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(result.get("Z22K2").is_some(), "{levels}: {result}");
    }
}

/// At the bottom of a nested recursion, a value of the wrong type (`deep`, for String
/// equality) fails its check, and the error quotes it.
fn nested_countdown_to_a_deep_value_of_the_wrong_type(
    deep: serde_json::Value,
) -> serde_json::Value {
    let mut equality = json!({"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": "x"});
    equality["Z866K1"] = deep;
    nested_countdown_ending_in(equality)
}

/// An error quotes the value that failed, and errors travel as JSON, which copies and drops
/// recursively, wherever the call ends: at the bottom of a deep recursion only the engine's
/// red zone is left. So a value is quoted whole only when it is also as shallow as metadata
/// must be. (In normal form a level costs some 500 bytes of the quote's 64 KiB, so the byte
/// bound alone stopped at about 130 levels, which fit: this holds the depth bound.)
#[test]
fn a_deep_value_quoted_at_the_bottom_of_a_deep_recursion_is_quoted_briefly() {
    // 125 levels of objects: within the quote's byte bound, past its depth bound.
    let function = nested_countdown_to_a_deep_value_of_the_wrong_type(nested_objects(125));
    for levels in [100, 1_000] {
        let function = function.clone();
        let result = std::thread::Builder::new()
            // Room for this test's own copies of the function (a debug build copies JSON
            // in kilobytes per level); the recursion leaves it for stack segments.
            .stack_size(16 * 1024 * 1024)
            .spawn(move || {
                let o = orchestrator(&[("Z10000", function)], deep_lists());
                o.orchestrate(&countdown_call(levels), &CallOptions::default())
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        let error = zeval_zobject::build::get_metadata(&result["Z22K2"], "errors").unwrap();
        assert_eq!(error["Z5K1"], "Z506", "{levels}: {result}");
        let quoted = error["Z5K2"]["Z506K3"]
            .as_str()
            .expect("the value quoted as text");
        assert!(quoted.ends_with('…'), "{levels}: {quoted}");
    }
}

/// An evaluator that answers every call with the same Z22 (copied where the orchestrator
/// calls code, with the room it gives that call).
struct Answering(&'static serde_json::Value);

impl zeval_orchestrator::CodeEvaluator for Answering {
    fn evaluate(
        &self,
        _: &zeval_orchestrator::CodeCall,
    ) -> Result<serde_json::Value, zeval_orchestrator::EvaluatorFailure> {
        Ok(self.0.clone())
    }
}

/// `serde_json::Value`s this test builds too deep for its own stack to drop, kept to the end
/// of the process.
fn leaked(value: serde_json::Value) -> &'static serde_json::Value {
    Box::leak(Box::new(value))
}

/// JSON text nested `levels` deep: `open` repeated, `"x"`, `close` repeated.
fn nested_text(levels: usize, open: &str, close: &str) -> String {
    format!("{}\"x\"{}", open.repeat(levels), close.repeat(levels))
}

/// An evaluator that reads the function call (a remote one, C, Rust) is given the arguments
/// twice, in `arguments` and in the call, and the copy recursed once per level of a value as
/// deep as the budget allows. It was made before the room a code call is given: at the bottom
/// of a recursion, a list of 19,990 code points handed to code overflowed the stack.
#[test]
fn a_deep_argument_copied_into_the_function_call_at_the_bottom_of_a_recursion_fits_the_stack() {
    let answer = leaked(zeval_zobject::build::z22(
        json!({"Z1K1": "Z6", "Z6K1": "fine"}),
        zeval_zobject::build::void(),
    ));
    let code = json!({"Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": "Z10100K1",
                 "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10101"], "Z8K5": "Z10100"});
    let implementation = json!({"Z1K1": "Z14", "Z14K1": "Z10100",
        "Z14K3": {"Z1K1": "Z16", "Z16K1": {"Z1K1": "Z61", "Z61K1": "answers"}, "Z16K2": "any"}});
    let recursion = nested_countdown_handing_on_a_quote(json!({"Z1K1": "Z7", "Z7K1": "Z10100",
        "Z10100K1": {"Z1K1": "Z18", "Z18K1": "Z10000K2"}}));
    let mut outcomes = Vec::new();
    for (levels, elements) in [(10, 5), (10, 19_990), (1_000, 19_990)] {
        let objects = [
            ("Z10000", recursion.clone()),
            ("Z10100", code.clone()),
            ("Z10101", implementation.clone()),
        ];
        let result = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let mut evaluators = zeval_orchestrator::EvaluatorRegistry::new();
                evaluators.register(["answers"], std::sync::Arc::new(Answering(answer)));
                let o =
                    crate::orchestrator_with(&objects, evaluators, OrchestratorConfig::default());
                let mut call = countdown_call(levels);
                call["Z10000K2"] =
                    json!({"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "b".repeat(elements)});
                let result = o.orchestrate(&call, &CallOptions::default());
                (result["Z22K1"].clone(), error_code(&result))
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        outcomes.push(result);
    }
    // Answered alike, whatever the list's length: the code ran.
    for outcome in outcomes {
        assert_eq!(outcome, (json!("fine"), None));
    }
}

/// What code returns is parsed from its output (10,000 levels at most) and kept as JSON
/// where it is not objects and strings: an array, or metadata. Such JSON copies and drops
/// recursively, and a code call deep in a recursion takes its answer in with only the
/// engine's red zone of stack left. An answer holding JSON deeper than metadata may be is
/// refused where it is taken in.
#[test]
fn a_deep_answer_from_code_at_the_bottom_of_a_deep_recursion_is_refused() {
    let parse = |text: String| zeval_zobject::json::parse(&text).unwrap();
    let array = |levels: usize| {
        parse(format!(
            r#"{{"Z1K1": "Z22", "Z22K1": {}, "Z22K2": {{"Z1K1": "Z24"}}}}"#,
            nested_text(levels, "[", "]")
        ))
    };
    let metadata = |levels: usize| {
        parse(format!(
            r#"{{"Z1K1": "Z22", "Z22K1": "fine", "Z22K2": {}}}"#,
            nested_text(levels, r#"{"Z1K1": "Z39", "K1": "#, "}")
        ))
    };
    let code = json!({"Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10100K1",
                 "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10101"], "Z8K5": "Z10100"});
    let implementation = json!({"Z1K1": "Z14", "Z14K1": "Z10100",
        "Z14K3": {"Z1K1": "Z16", "Z16K1": {"Z1K1": "Z61", "Z61K1": "answers"}, "Z16K2": "any"}});
    let recursion =
        nested_countdown_ending_in(json!({"Z1K1": "Z7", "Z7K1": "Z10100", "Z10100K1": "x"}));
    let cases = [
        ("an array of 9,000 levels", array(9_000), true),
        ("metadata of 9,000 levels", metadata(9_000), true),
        ("an array of 90 levels", array(90), false),
        // As deep as received metadata may be (`MAX_RECEIVED_METADATA_DEPTH`): 199 objects
        // and the string in the last.
        ("metadata of 200 levels", metadata(199), false),
        ("metadata of 201 levels", metadata(200), true),
    ];
    for (what, answer, refused) in cases {
        let answer = leaked(answer);
        for levels in [10, 1_000] {
            let objects = [
                ("Z10000", recursion.clone()),
                ("Z10100", code.clone()),
                ("Z10101", implementation.clone()),
            ];
            let result = std::thread::Builder::new()
                .stack_size(16 * 1024 * 1024)
                .spawn(move || {
                    let mut evaluators = zeval_orchestrator::EvaluatorRegistry::new();
                    evaluators.register(["answers"], std::sync::Arc::new(Answering(answer)));
                    let o = crate::orchestrator_with(&objects, evaluators, deep_lists());
                    o.orchestrate(&countdown_call(levels), &CallOptions::default())
                })
                .unwrap()
                .join()
                .expect("no stack overflow");
            let message = result["Z22K2"].to_string();
            assert_eq!(
                error_code(&result).is_some() && message.contains("too deep"),
                refused,
                "{what} at {levels}: {message:.2000}"
            );
        }
    }
}

/// `Z10000(list, quoted)`: If(is empty(list), `bottom`, Echo(Z10000(tail(list), quoted))),
/// `bottom` reading the quote as `Z10000K2`.
fn nested_countdown_handing_on_a_quote(bottom: serde_json::Value) -> serde_json::Value {
    let list = json!({"Z1K1": "Z18", "Z18K1": "Z10000K1"});
    let quoted = json!({"Z1K1": "Z18", "Z18K1": "Z10000K2"});
    let again = json!({"Z1K1": "Z7", "Z7K1": "Z10000",
        "Z10000K1": {"Z1K1": "Z7", "Z7K1": "Z812", "Z812K1": list}, "Z10000K2": quoted});
    json!({"Z1K1": "Z8",
        "Z8K1": ["Z17",
            {"Z1K1": "Z17", "Z17K1": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z86"},
             "Z17K2": "Z10000K1", "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}},
            {"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": "Z10000K2",
             "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z1", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10000", "Z14K2": {
            "Z1K1": "Z7", "Z7K1": "Z802",
            "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": list},
            "Z802K2": bottom,
            "Z802K3": {"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": again}}}],
        "Z8K5": "Z10000"})
}

/// What `inspect` makes of the answer to `countdown_call(levels)` of `function` handed a
/// quote of objects nested 9,000 deep (`Z10000K2`), run on a thread of its own. The call and
/// the answer hold the deep value: they are kept, as the test's stack cannot drop it.
fn with_a_deep_quote_at_the_bottom<T: Send + 'static>(
    function: serde_json::Value,
    levels: usize,
    inspect: impl FnOnce(&serde_json::Value) -> T + Send + 'static,
) -> T {
    std::thread::Builder::new()
        .stack_size(16 * 1024 * 1024)
        .spawn(move || {
            let mut quote = serde_json::Map::new();
            quote.insert("Z1K1".into(), json!("Z99"));
            quote.insert("Z99K1".into(), nested_objects(9_000));
            let mut call = countdown_call(levels);
            call["Z10000K2"] = serde_json::Value::Object(quote);
            let o = orchestrator(&[("Z10000", function)], deep_lists());
            let result = o.orchestrate(&call, &CallOptions::default());
            let outcome = inspect(&result);
            std::mem::forget(result);
            std::mem::forget(call);
            outcome
        })
        .unwrap()
        .join()
        .expect("no stack overflow")
}

/// Built-ins that turn a value into JSON of their own and drop it (Z823's envelope of a
/// nested call, Z831's copy of the object it validates) do so deep in a recursion too, with
/// only the engine's red zone of stack left, and JSON drops recursively: a value of a
/// request, 3,000 levels deep, handed down a recursion to either overflowed the stack.
#[test]
fn json_a_built_in_makes_of_a_deep_value_is_dropped_within_the_stack() {
    let quoted = json!({"Z1K1": "Z18", "Z18K1": "Z10000K2"});
    let envelope = json!({"Z1K1": "Z7", "Z7K1": "Z823", "Z823K1": quoted});
    let validation = json!({"Z1K1": "Z7", "Z7K1": "Z831", "Z831K1": quoted,
        "Z831K2": {"Z1K1": "Z99", "Z99K1": "Z1"}});
    for (what, bottom) in [("Z823", envelope), ("Z831", validation)] {
        let function = nested_countdown_handing_on_a_quote(bottom);
        let mut outcomes = Vec::new();
        for levels in [10, 1_000] {
            outcomes.push(with_a_deep_quote_at_the_bottom(
                function.clone(),
                levels,
                |result| error_code(result).unwrap_or_else(|| "no error".into()),
            ));
        }
        // The bottom was reached, and answered alike: a quote of the deep value's own
        // (Z504 for its last `K1`'s type, the nested request's own doing), or its validation.
        let expected = if what == "Z823" { "Z504" } else { "no error" };
        assert_eq!(outcomes, [expected, expected], "{what}");
    }
}

/// Turning a value into JSON stops at the depth limit; the members made before the one that
/// went past it were dropped where it stopped, recursively, however deep they were: Z823 at
/// the bottom of a recursion, running a quoted call whose result is a list cell with a head
/// just within the limit and a tail past it, overflowed the stack.
#[test]
fn json_left_half_made_at_the_depth_limit_is_dropped_within_the_stack() {
    const LIMIT: usize = 20_000;
    let quoted = json!({"Z1K1": "Z18", "Z18K1": "Z10000K2"});
    let envelope = json!({"Z1K1": "Z7", "Z7K1": "Z823", "Z823K1": quoted});
    let function = nested_countdown_handing_on_a_quote(envelope);
    let config = || OrchestratorConfig {
        budget: BudgetLimits {
            max_value_depth: LIMIT,
            ..BudgetLimits::default()
        },
        ..OrchestratorConfig::default()
    };
    let mut outcomes = Vec::new();
    for levels in [10, 1_000] {
        let function = function.clone();
        let outcome = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let chars = |c: &str, n: usize| json!({"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": c.repeat(n)});
                let cell = json!({"Z1K1": "Z7", "Z7K1": "Z810",
                    "Z810K1": chars("b", LIMIT - 10), "Z810K2": chars("c", LIMIT)});
                let mut call = countdown_call(levels);
                call["Z10000K2"] = json!({"Z1K1": "Z99", "Z99K1": cell});
                let o = orchestrator(&[("Z10000", function)], config());
                let result = o.orchestrate(&call, &CallOptions::default());
                error_code(&result).unwrap_or_else(|| "no error".into())
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        outcomes.push(outcome);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_ne!(outcomes[0], "no error");
}

/// A schema error quotes the value it is about, and an error is copied and dropped wherever
/// it goes, recursively: every other error quotes at most 100 levels (64 KiB). Z831
/// validating a value 9,000 levels deep against a type it does not match (Z39 lacks `Z39K1`
/// at every level), at the bottom of a recursion, quoted it whole: 181,336 bytes of answer,
/// 9,000 levels deep. It is quoted briefly now.
#[test]
fn a_schema_error_at_the_bottom_of_a_recursion_quotes_a_deep_value_briefly() {
    let quoted = json!({"Z1K1": "Z18", "Z18K1": "Z10000K2"});
    let validation = json!({"Z1K1": "Z7", "Z7K1": "Z831", "Z831K1": quoted,
        "Z831K2": {"Z1K1": "Z99", "Z99K1": "Z39"}});
    let function = nested_countdown_handing_on_a_quote(validation);
    let mut outcomes = Vec::new();
    for levels in [10, 1_000] {
        outcomes.push(with_a_deep_quote_at_the_bottom(
            function.clone(),
            levels,
            |result| (error_code(result), result.to_string().len()),
        ));
    }
    for (code, bytes) in outcomes {
        assert_eq!(code.as_deref(), Some("Z502"));
        assert!(bytes < 16 * 1024, "an answer of {bytes} bytes");
    }
}

/// A stored object is fetched, normalised and read into nodes where a call first refers to
/// it, and its normal form dropped there. A list 2 levels deep as stored is a chain of cells
/// as deep as it is long in normal form: referred to first at the bottom of a recursion, a
/// stored list of 24,000 strings was dropped on what was left of a stack segment, and
/// overflowed it.
#[test]
fn a_long_stored_list_read_first_at_the_bottom_of_a_recursion_fits_the_stack() {
    let mut outcomes = Vec::new();
    for levels in [10, 1_000] {
        let outcome = std::thread::Builder::new()
            .stack_size(16 * 1024 * 1024)
            .spawn(move || {
                let mut list = vec![json!("Z6")];
                list.extend(std::iter::repeat_n(json!("a"), 24_000));
                let is_empty = json!({"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": "Z10001"});
                let said = json!({"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": is_empty,
                    "Z802K2": "empty", "Z802K3": "not empty"});
                let objects = [
                    ("Z10000", nested_countdown_ending_in(said)),
                    ("Z10001", serde_json::Value::Array(list)),
                ];
                let o = orchestrator(&objects, OrchestratorConfig::default());
                let result = o.orchestrate(&countdown_call(levels), &CallOptions::default());
                (result["Z22K1"].clone(), error_code(&result))
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        outcomes.push(outcome);
    }
    for outcome in outcomes {
        assert_eq!(outcome, (json!("not empty"), None));
    }
}

/// `Z10000(list, x)`: If(is empty(list), x, Z10000(tail(list), x)): `x` is handed on at
/// every step and read only at the end, through as many argument references as the list
/// has elements.
fn countdown_carrying_an_unread_argument() -> serde_json::Value {
    let list = json!({"Z1K1": "Z18", "Z18K1": "Z10000K1"});
    let carried = json!({"Z1K1": "Z18", "Z18K1": "Z10000K2"});
    json!({"Z1K1": "Z8",
        "Z8K1": ["Z17",
            {"Z1K1": "Z17", "Z17K1": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z86"},
             "Z17K2": "Z10000K1", "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}},
            {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K2",
             "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z6", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10000", "Z14K2": {
            "Z1K1": "Z7", "Z7K1": "Z802",
            "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": list},
            "Z802K2": carried,
            "Z802K3": {"Z1K1": "Z7", "Z7K1": "Z10000",
                "Z10000K1": {"Z1K1": "Z7", "Z7K1": "Z812", "Z812K1": list},
                "Z10000K2": carried}}}],
        "Z8K5": "Z10000"})
}

/// Reading an argument handed on unread through a tail recursion follows one reference per
/// step, each inside the last: that chain is a nesting like a call's, bounded by the depth
/// limit and run on a stack that grows. It recursed on the thread's own stack with no
/// bound, so one request of 300,000 steps overflowed it and aborted the process, every
/// other caller's calls with it.
#[test]
fn an_argument_handed_on_unread_is_read_within_the_depth_limit_and_the_stack() {
    let run = |elements: usize, max_depth: usize| {
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let config = OrchestratorConfig {
                    max_depth,
                    ..OrchestratorConfig::default()
                };
                let o = orchestrator(
                    &[("Z10000", countdown_carrying_an_unread_argument())],
                    config,
                );
                let call = json!({"Z1K1": "Z7", "Z7K1": "Z10000",
                    "Z10000K1": {"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "a".repeat(elements)},
                    "Z10000K2": "carried"});
                o.orchestrate(&call, &CallOptions::default())
            })
            .unwrap()
            .join()
            .expect("no stack overflow")
    };
    let within = run(10_000, 40_000);
    assert_eq!(within["Z22K1"], "carried", "{within}");
    let beyond = run(10_000, 1_000);
    let message = beyond.to_string();
    assert!(message.contains("Maximum call depth exceeded"), "{beyond}");
}

/// `Z10000(x)` = If(x = "stop", x, Z10000(x)), called with another text: an endless
/// recursion through tail calls only, which reads its argument at every step.
fn endless() -> serde_json::Value {
    let arg = json!({"Z1K1": "Z18", "Z18K1": "Z10000K1"});
    json!({"Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                 "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z6", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10000", "Z14K2": {
            "Z1K1": "Z7", "Z7K1": "Z802",
            "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K1": arg, "Z866K2": "stop"},
            "Z802K2": arg,
            "Z802K3": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": arg}}}],
        "Z8K5": "Z10000"})
}

/// The request's peak memory as its metadata reports it, in MiB.
fn peak_mib(result: &serde_json::Value) -> f64 {
    let memory = zeval_zobject::build::get_metadata(&result["Z22K2"], "orchestrationMemoryUsage")
        .and_then(|m| m.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no memory in {result}"));
    memory.trim_end_matches(" MiB").parse().unwrap()
}

#[test]
fn endless_tail_recursion_runs_in_constant_memory_until_its_steps_run_out() {
    let run = |max_steps| {
        let config = OrchestratorConfig {
            budget: BudgetLimits {
                max_steps,
                ..BudgetLimits::default()
            },
            ..OrchestratorConfig::default()
        };
        let o = orchestrator(&[("Z10000", endless())], config);
        let call = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "x"});
        o.orchestrate(&call, &CallOptions::default())
    };
    let short = run(20_000);
    let long = run(200_000);
    for result in [&short, &long] {
        assert_eq!(error_code(result).as_deref(), Some("Z590"), "{result}");
        assert!(result.to_string().contains("steps"), "{result}");
    }
    // Ten times the steps (thousands of calls more), the same memory: the frame of a call
    // whose argument was read is freed once the next call has its own.
    let (short, long) = (peak_mib(&short), peak_mib(&long));
    assert!(
        long < 1.0 && long <= short * 1.5 + 0.05,
        "{short} MiB, then {long} MiB"
    );
}

#[test]
fn nested_recursion_100_000_deep_is_a_z5_not_a_crash() {
    // On a thread with a small stack: the limit, not the stack, must stop the recursion.
    let worker = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let o = orchestrator(&[("Z10000", nested_countdown())], deep_lists());
            o.orchestrate(&countdown_call(100_000), &CallOptions::default())
        })
        .unwrap();
    let result = worker.join().expect("no stack overflow");
    // The depth limit or the memory budget (which each level is charged to) stops it.
    match error_code(&result).as_deref() {
        Some("Z507") => {
            let text = result.to_string();
            assert!(text.contains("Maximum call depth exceeded"), "{text}");
        }
        Some("Z590") => assert!(result.to_string().contains("memory"), "{result}"),
        _ => panic!("not stopped by a limit: {result}"),
    }
}

#[test]
fn nested_recursion_stops_at_the_depth_limit() {
    let config = OrchestratorConfig {
        max_depth: 500,
        ..OrchestratorConfig::default()
    };
    let o = orchestrator(&[("Z10000", nested_countdown())], config);
    let result = o.orchestrate(&countdown_call(1_000), &CallOptions::default());
    assert_eq!(error_code(&result).as_deref(), Some("Z507"), "{result}");
    assert!(
        result
            .to_string()
            .contains("Maximum call depth exceeded (500"),
        "{result}"
    );
    let shallow = o.orchestrate(&countdown_call(50), &CallOptions::default());
    assert_eq!(shallow["Z22K1"], "done", "{shallow}");
}

#[test]
fn deadline_gives_z558() {
    let o = orchestrator(
        &[("Z10000", countdown())],
        OrchestratorConfig {
            max_depth: 1_000_000,
            ..deep_lists()
        },
    );
    let options = CallOptions {
        timeout: Some(Duration::from_millis(200)),
        ..CallOptions::default()
    };
    let started = std::time::Instant::now();
    let result = o.orchestrate(&countdown_call(100_000), &options);
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = zeval_zobject::build::get_metadata(&result["Z22K2"], "errors").expect("an error");
    assert_eq!(error["Z5K1"]["Z9K1"], "Z558", "{result}");
    assert_eq!(error["Z5K2"]["Z6K1"], "Function call timed out");
}

#[test]
fn long_list_result_on_a_small_stack() {
    // 100,000 code points: 200,000 levels in normal form, built, returned and dropped on a
    // thread with a 512 KiB stack.
    let worker = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let o = orchestrator(&[], deep_lists());
            let input = json!({"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "b".repeat(100_000)});
            let result = o.orchestrate(&input, &CallOptions::default());
            result["Z22K1"].as_array().map(Vec::len)
        })
        .unwrap();
    assert_eq!(worker.join().expect("no stack overflow"), Some(100_001));
}

#[test]
fn recursion_through_z823_is_bounded_too() {
    // Z10005() = Z823(quote(Z10005())): every level orchestrates a nested request.
    let again = json!({"Z1K1": "Z7", "Z7K1": "Z10005"});
    let function = json!({"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z1", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10005", "Z14K2": {"Z1K1": "Z7", "Z7K1": "Z823",
            "Z823K1": {"Z1K1": "Z99", "Z99K1": again}}}],
        "Z8K5": "Z10005"});
    let worker = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let o = orchestrator(
                &[("Z10005", function)],
                OrchestratorConfig {
                    max_depth: 100,
                    ..OrchestratorConfig::default()
                },
            );
            o.orchestrate(
                &json!({"Z1K1": "Z7", "Z7K1": "Z10005"}),
                &CallOptions::default(),
            )
        })
        .unwrap();
    let result = worker.join().expect("no stack overflow");
    assert!(
        result.to_string().contains("Maximum call depth exceeded"),
        "{result}"
    );
}
