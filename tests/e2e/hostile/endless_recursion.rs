//! Calls in tail position (a composition's body, the branch If chooses) take no call level,
//! so the depth limit no longer stops a recursion through them: an endless one must end at
//! the request's deadline or budget (its unread argument is a chain of one thunk per call,
//! charged to the memory budget), and one that nests (its recursive call is an argument) at
//! the depth limit or the memory budget.

use serde_json::{Value, json};

use super::{DEADLINE, Target, assert_refused, one_at_a_time};

/// Stores `Z10700(x)` with the composition `body` as its implementation Z10701.
fn store(target: &mut Target, body: Value) {
    let orch = target.orch().to_owned();
    let function = crate::common::z2(
        "Z10700",
        json!({"Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10700K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14"], "Z8K5": "Z10700"}),
    );
    let implementation = crate::common::z2(
        "Z10701",
        json!({"Z1K1": "Z14", "Z14K1": "Z10700", "Z14K2": body}),
    );
    let mut with_implementation = function.clone();
    with_implementation["Z2K2"]["Z8K4"] = json!(["Z14", "Z10701"]);
    super::put(&orch, &target.editor, "Z10700", &function);
    super::put(&orch, &target.editor, "Z10701", &implementation);
    super::put(&orch, &target.editor, "Z10700", &with_implementation);
    target.remember("Z10700");
}

fn again(argument: Value) -> Value {
    json!({"Z1K1": "Z7", "Z7K1": "Z10700", "Z10700K1": argument})
}

#[test]
fn endless_tail_recursion_ends_in_time() {
    let _serial = one_at_a_time();
    let mut target = Target::start(&[]);
    let x = json!({"Z1K1": "Z18", "Z18K1": "Z10700K1"});
    // Z10700(x) = If(true, Z10700(x), x): the recursive call is If's branch and the body.
    store(
        &mut target,
        json!({"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": "Z41", "Z802K2": again(x.clone()), "Z802K3": x}),
    );
    let call = again(json!("x"));
    let timed = target.watched_call(call);
    let code = assert_refused("an endless tail recursion", &timed, DEADLINE);
    assert!(
        matches!(code.as_str(), "Z558" | "Z590"),
        "an endless tail recursion ends at the deadline or the budget, not {code}"
    );
    let memory = target.memory();
    eprintln!(
        "endless tail recursion: {code} in {:?}, server RSS peak {} MiB",
        timed.took,
        memory.peak_kib / 1024
    );
    target.assert_survived();
}

#[test]
fn endless_nested_recursion_stops_at_a_limit() {
    let _serial = one_at_a_time();
    let mut target = Target::start(&[]);
    let x = json!({"Z1K1": "Z18", "Z18K1": "Z10700K1"});
    // Z10700(x) = Echo(Z10700(x)): the recursive call is an argument, so every step nests.
    store(
        &mut target,
        json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": again(x)}),
    );
    let call = again(json!("x"));
    let timed = target.watched_call(call);
    let code = assert_refused("an endless nested recursion", &timed, DEADLINE);
    assert!(
        matches!(code.as_str(), "Z507" | "Z590" | "Z558"),
        "an endless nested recursion ends at the depth limit or the budget, not {code}"
    );
    eprintln!("endless nested recursion: {code} in {:?}", timed.took);
    target.assert_survived();
}
