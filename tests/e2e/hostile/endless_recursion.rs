//! Calls in tail position (a composition's body, the branch If chooses) take no call level,
//! so the depth limit no longer stops a recursion through them: an endless one must end at
//! the request's deadline or budget (its unread argument is a chain of one thunk per call,
//! charged to the memory budget), and one that nests (its recursive call is an argument) at
//! the depth limit or the memory budget.

use std::time::Duration;

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

/// `Z10710(list, x)` = If(is empty(list), x, Z10710(tail(list), x)): `x` is handed on
/// unread at every step and read at the end, through one argument reference per element.
fn store_carrying(target: &mut Target) {
    let list = json!({"Z1K1": "Z18", "Z18K1": "Z10710K1"});
    let carried = json!({"Z1K1": "Z18", "Z18K1": "Z10710K2"});
    let body = json!({"Z1K1": "Z7", "Z7K1": "Z802",
        "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": list},
        "Z802K2": carried,
        "Z802K3": {"Z1K1": "Z7", "Z7K1": "Z10710",
            "Z10710K1": {"Z1K1": "Z7", "Z7K1": "Z812", "Z812K1": list},
            "Z10710K2": carried}});
    store_over_a_list(target, "Z10710", json!("Z6"), body);
}

/// Stores `zid(list, x)`, a list of code points and an `x` of type `x_type`, returning a
/// string, with the composition `body` as its implementation `zid + 1`.
fn store_over_a_list(target: &mut Target, zid: &str, x_type: Value, body: Value) {
    let orch = target.orch().to_owned();
    let implementation_zid = format!("Z{}", zid[1..].parse::<u64>().unwrap() + 1);
    let declaration = |key: String, ty: Value| json!({"Z1K1": "Z17", "Z17K1": ty, "Z17K2": key, "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}});
    let list_type = json!({"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z86"});
    let function = |implementations: Value| {
        crate::common::z2(
            zid,
            json!({"Z1K1": "Z8",
                "Z8K1": ["Z17", declaration(format!("{zid}K1"), list_type.clone()),
                         declaration(format!("{zid}K2"), x_type.clone())],
                "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": implementations, "Z8K5": zid}),
        )
    };
    let implementation = crate::common::z2(
        &implementation_zid,
        json!({"Z1K1": "Z14", "Z14K1": zid, "Z14K2": body}),
    );
    super::put(&orch, &target.editor, zid, &function(json!(["Z14"])));
    super::put(&orch, &target.editor, &implementation_zid, &implementation);
    let listed = function(json!(["Z14", implementation_zid]));
    super::put(&orch, &target.editor, zid, &listed);
    target.remember(zid);
}

/// `Z10710` over the code points of `elements` characters, carrying `x`.
fn carrying(elements: usize, x: Value) -> Value {
    json!({"Z1K1": "Z7", "Z7K1": "Z10710",
        "Z10710K1": {"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "a".repeat(elements)},
        "Z10710K2": x})
}

/// Reading an argument handed on unread follows a chain of references, one inside the other:
/// it nested on the thread's own stack with no bound, and a chain long enough overflowed it,
/// aborting the server and every other caller's calls with it. Now each link counts against
/// the depth limit (apart from call levels) on a stack that grows: a chain of 15,000 links
/// is read, and one of three times that is refused at the limit.
#[test]
fn an_argument_handed_on_through_a_long_recursion_is_read_or_refused() {
    let _serial = one_at_a_time();
    let mut target = Target::start(&[("ZEVAL_CALL_TIMEOUT_MS", "30000")]);
    store_carrying(&mut target);
    let long = target.watched_call(carrying(15_000, json!("carried")));
    let answer = long.answer.as_ref().unwrap_or_else(|e| {
        panic!(
            "a chain of 15,000 links: no answer after {:?}: {e}",
            long.took
        )
    });
    assert_eq!(
        answer.json()["Z22K1"],
        "carried",
        "{}",
        super::prefix(&answer.text)
    );
    eprintln!("a chain of 15,000 links read in {:?}", long.took);
    let three_times = carrying(15_000, carrying(15_000, carrying(15_000, json!("x"))));
    let timed = target.watched_call(three_times);
    let code = assert_refused("a chain of 45,000 links", &timed, Duration::from_secs(30));
    assert_eq!(
        code,
        "Z507",
        "{:?}",
        timed.answer.as_ref().map(|a| super::prefix(&a.text))
    );
    eprintln!("a chain of 45,000 links refused in {:?}", timed.took);
    target.assert_survived();
}

/// A server whose budget lets a recursion 19,000 deep through (the default memory budget
/// stops it before), with a minute for each call.
fn deep_recursion_target() -> Target {
    Target::start(&[
        ("ZEVAL_CALL_TIMEOUT_MS", "60000"),
        ("ZEVAL_MAX_REQUEST_MEMORY_BYTES", "1073741824"),
    ])
}

/// Stores the code function `code_zid(x)` (`source` in `language`, `x` of type `x_type`,
/// answering a string) and `zid(list, x)` = If(is empty(list), `code_zid`(x),
/// Echo(`zid`(tail(list), x))): code called at the bottom of a recursion as deep as the list
/// is long, every step nesting twice.
fn store_code_at_the_bottom(
    target: &mut Target,
    zid: &str,
    x_type: Value,
    (code_zid, language, source): (&str, &str, &str),
) {
    let code = crate::common::z2(
        code_zid,
        super::code_function(code_zid, x_type.clone(), "Z6", language, source),
    );
    super::put(target.orch(), &target.editor, code_zid, &code);
    let list = json!({"Z1K1": "Z18", "Z18K1": format!("{zid}K1")});
    let x = json!({"Z1K1": "Z18", "Z18K1": format!("{zid}K2")});
    let mut again = json!({"Z1K1": "Z7", "Z7K1": zid});
    again[format!("{zid}K1")] = json!({"Z1K1": "Z7", "Z7K1": "Z812", "Z812K1": list});
    again[format!("{zid}K2")] = x.clone();
    let mut at_the_bottom = json!({"Z1K1": "Z7", "Z7K1": code_zid});
    at_the_bottom[format!("{code_zid}K1")] = x;
    let body = json!({"Z1K1": "Z7", "Z7K1": "Z802",
        "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": list},
        "Z802K2": at_the_bottom,
        "Z802K3": {"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": again}});
    store_over_a_list(target, zid, x_type, body);
}

/// A call of code at the bottom of a recursion 19,000 deep (Echo around the recursive call,
/// so every step nests twice), with an argument 10,000 levels deep (a list of 5,000 code
/// points): the evaluator writes that argument as JSON, once per level, on what is left of
/// the stack there. It aborted the server on a stack overflow (the client saw its connection
/// drop after 0.65 s); the call now runs on a stack segment with room for it. The memory
/// budget is raised to let a recursion this deep through: the default stops it before.
#[test]
fn code_called_at_the_bottom_of_a_deep_recursion_has_room_for_a_deep_argument() {
    let _serial = one_at_a_time();
    let mut target = deep_recursion_target();
    // Z10720(list, big) = If(is empty(list), Z10730(big), Echo(Z10720(tail(list), big))), where
    // Z10730 is JavaScript answering "ok".
    store_code_at_the_bottom(
        &mut target,
        "Z10720",
        json!("Z1"),
        (
            "Z10730",
            "Z600",
            "function Z10730( Z10730K1 ) { return 'ok'; }",
        ),
    );
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10720",
        "Z10720K1": {"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "a".repeat(19_000)},
        "Z10720K2": {"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "b".repeat(5_000)}});
    answers_and_survives(
        &mut target,
        call,
        "ok",
        "code at the bottom of 19,000 levels",
    );
}

/// Asserts that `call` is answered `expected` (`Z22K1`), and that the server survived it.
fn answers_and_survives(target: &mut Target, call: Value, expected: &str, what: &str) {
    let timed = target.watched_call(call);
    let answer = timed
        .answer
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: no answer after {:?}: {e}", timed.took));
    assert_eq!(
        answer.json()["Z22K1"],
        expected,
        "{what}: {}",
        super::prefix(&answer.text)
    );
    eprintln!("{what}: answered in {:?}", timed.took);
    target.assert_survived();
}

/// Turning a value into JSON stops at the depth limit (20,000 levels), and what was made
/// before the member that went past it is dropped where it stopped. At the bottom of a
/// recursion 19,000 deep, Z823 running a quoted call whose result is a list cell, its head a
/// list just within the limit and its tail one past it, dropped that head recursively on
/// what was left of a stack segment: the release server of `9b13cf2` aborted (the client's
/// connection dropped after 1.5 s). Under the default memory budget a recursion deep enough to
/// leave the thread's own stack is refused first (14,000 levels were; 10,000 reached the
/// bottom, and the limit, on the thread's own stack).
#[test]
fn json_left_half_made_at_the_depth_limit_deep_in_a_recursion_is_dropped_within_the_stack() {
    let _serial = one_at_a_time();
    let mut target = deep_recursion_target();
    // Z10780(list, x) = If(is empty(list), Z823(x), Echo(Z10780(tail(list), x))).
    let list = json!({"Z1K1": "Z18", "Z18K1": "Z10780K1"});
    let x = json!({"Z1K1": "Z18", "Z18K1": "Z10780K2"});
    let again = json!({"Z1K1": "Z7", "Z7K1": "Z10780",
        "Z10780K1": {"Z1K1": "Z7", "Z7K1": "Z812", "Z812K1": list}, "Z10780K2": x});
    let body = json!({"Z1K1": "Z7", "Z7K1": "Z802",
        "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": list},
        "Z802K2": {"Z1K1": "Z7", "Z7K1": "Z823", "Z823K1": x},
        "Z802K3": {"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": again}});
    store_over_a_list(&mut target, "Z10780", json!("Z1"), body);
    let code_points =
        |c: &str, n: usize| json!({"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": c.repeat(n)});
    let cell = json!({"Z1K1": "Z7", "Z7K1": "Z810",
        "Z810K1": code_points("b", 19_990), "Z810K2": code_points("c", 20_000)});
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10780",
        "Z10780K1": code_points("a", 19_000),
        "Z10780K2": {"Z1K1": "Z99", "Z99K1": cell}});
    let timed = target.watched_call(call);
    let answer = timed
        .answer
        .as_ref()
        .unwrap_or_else(|e| panic!("no answer after {:?}: {e}", timed.took));
    assert!(
        answer.text.contains("Z22"),
        "{}",
        super::prefix(&answer.text)
    );
    eprintln!(
        "a value past the depth limit at the bottom of 19,000 levels answered in {:?}",
        timed.took
    );
    target.assert_survived();
}

/// Stores `stored` as `stored_zid`, and `zid(list, x)` = If(is empty(list), If(is
/// empty(`stored_zid`), "empty", "not empty"), Echo(`zid`(tail(list), x))), then calls it
/// over 19,000 code points on a fresh server: the stored object is read first at the bottom
/// of a recursion 19,000 deep. The call must answer "not empty", and the server survive.
fn read_first_at_the_bottom_of_a_deep_recursion(stored_zid: &str, stored: Value, zid: &str) {
    let _serial = one_at_a_time();
    let mut target = deep_recursion_target();
    let stored = crate::common::z2(stored_zid, stored);
    super::put(target.orch(), &target.editor, stored_zid, &stored);
    let said = json!({"Z1K1": "Z7", "Z7K1": "Z802",
        "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": stored_zid},
        "Z802K2": "empty", "Z802K3": "not empty"});
    let call = recursion_to_the_bottom(&mut target, zid, said);
    let what = format!("{stored_zid} read at the bottom of 19,000 levels");
    answers_and_survives(&mut target, call, "not empty", &what);
}

/// Stores `zid(list, x)` = If(is empty(list), `at_the_bottom`, Echo(`zid`(tail(list), x)))
/// on `target` (its implementation `zid` + 1); its call over 19,000 code points.
fn recursion_to_the_bottom(target: &mut Target, zid: &str, at_the_bottom: Value) -> Value {
    let list = json!({"Z1K1": "Z18", "Z18K1": format!("{zid}K1")});
    let x = json!({"Z1K1": "Z18", "Z18K1": format!("{zid}K2")});
    let mut again = json!({"Z1K1": "Z7", "Z7K1": zid});
    again[format!("{zid}K1")] = json!({"Z1K1": "Z7", "Z7K1": "Z812", "Z812K1": list});
    again[format!("{zid}K2")] = x;
    let body = json!({"Z1K1": "Z7", "Z7K1": "Z802",
        "Z802K1": {"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": list},
        "Z802K2": at_the_bottom,
        "Z802K3": {"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": again}});
    store_over_a_list(target, zid, json!("Z6"), body);
    let mut call = json!({"Z1K1": "Z7", "Z7K1": zid});
    call[format!("{zid}K1")] = json!({"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "a".repeat(19_000)});
    call[format!("{zid}K2")] = json!("x");
    call
}

/// A stored object is read into nodes where a call first refers to it, and its normal form
/// dropped there. A stored list, 2 levels deep as stored, is a chain of cells as deep as it
/// is long in normal form: referred to first at the bottom of a recursion 19,000 deep, a list
/// of 24,000 strings was dropped recursively on what was left of a stack segment, and the
/// release server of `9b13cf2` aborted (the client's connection dropped after 1.1 s).
#[test]
fn a_long_stored_list_read_first_at_the_bottom_of_a_deep_recursion_fits_the_stack() {
    let mut list = vec![json!("Z6")];
    list.extend(std::iter::repeat_n(json!("a"), 24_000));
    read_first_at_the_bottom_of_a_deep_recursion("Z10790", Value::Array(list), "Z10800");
}

/// The object caches copy and drop what the store gives them, recursively, where a call
/// first refers to an object, which may be deep in a recursion. A stored object 996 levels
/// deep (lists of lists; the store's bound is 1,000) referred to first at the bottom of a
/// recursion 19,000 deep aborted a debug server (the client's connection dropped after
/// 4.9 s); the release server of `abda853` had the room. A fetch now runs with room for an
/// object as deep as the parser allows.
#[test]
fn a_deep_stored_object_read_first_at_the_bottom_of_a_deep_recursion_fits_the_stack() {
    let mut deep = json!(["Z1", "x"]);
    for _ in 0..995 {
        deep = json!(["Z1", deep]);
    }
    read_first_at_the_bottom_of_a_deep_recursion("Z10810", deep, "Z10820");
}

/// Under `calls = "approved"` the access rule reads each implementation's approved revision
/// and compares it with the copy the call read, where the call first reaches it, which may be
/// deep in a recursion. An approved composition holding a literal 990 levels deep (never
/// evaluated), first reached at the bottom of a recursion 19,000 deep: the rule now runs with
/// room for an object as deep as the parser allows, as fetches do.
#[test]
fn a_deep_approved_implementation_checked_first_at_the_bottom_of_a_deep_recursion_fits_the_stack() {
    let _serial = one_at_a_time();
    let mut target = Target::start(&[
        ("ZEVAL_CALL_TIMEOUT_MS", "60000"),
        ("ZEVAL_MAX_REQUEST_MEMORY_BYTES", "1073741824"),
        ("ZEVAL_CALLS", "approved"),
    ]);
    let mut deep = json!(["Z1", "x"]);
    for _ in 0..990 {
        deep = json!(["Z1", deep]);
    }
    // Z10850(x) = If(false, the deep literal, "checked").
    let checked = json!({"Z1K1": "Z7", "Z7K1": "Z802",
        "Z802K1": "Z42", "Z802K2": deep, "Z802K3": "checked"});
    let mut function = super::code_function("Z10850", json!("Z6"), "Z6", super::PYTHON, "");
    function["Z8K4"] = json!(["Z14", "Z10851"]);
    let implementation = json!({"Z1K1": "Z14", "Z14K1": "Z10850", "Z14K2": checked});
    for (zid, value) in [("Z10851", implementation), ("Z10850", function)] {
        super::put(
            target.orch(),
            &target.editor,
            zid,
            &crate::common::z2(zid, value),
        );
    }
    let at_the_bottom = json!({"Z1K1": "Z7", "Z7K1": "Z10850", "Z10850K1": "x"});
    let call = recursion_to_the_bottom(&mut target, "Z10860", at_the_bottom);
    for zid in ["Z10851", "Z10861"] {
        let answer = crate::common::request(
            "POST",
            &format!("{}/v1/objects/{zid}/approve", target.orch()),
            Some(&target.admin),
            None,
        );
        assert_eq!(answer.status, 200, "approve {zid}: {}", answer.text);
    }
    let what = "a deep approved implementation checked at the bottom of 19,000 levels";
    answers_and_survives(&mut target, call, "checked", what);
}

/// What code prints is parsed (10,000 levels at most) and kept as JSON where it is not
/// ZObjects, which copies and drops recursively. A Python call at the bottom of a recursion
/// 19,000 deep that printed, as its answer, an array 9,000 levels deep took the server down
/// (a stack overflow on a stack segment); it is refused where the answer is taken in.
#[test]
fn a_deep_array_printed_by_code_at_the_bottom_of_a_deep_recursion_is_refused() {
    let _serial = one_at_a_time();
    let mut target = deep_recursion_target();
    // Z10740(list, x) = If(is empty(list), Z10750(x), Echo(Z10740(tail(list), x))), where
    // Z10750 is Python that prints an answer of its own making and exits before the runner
    // writes one.
    store_code_at_the_bottom(
        &mut target,
        "Z10740",
        json!("Z6"),
        (
            "Z10750",
            super::PYTHON,
            "import os\ndef Z10750(Z10750K1):\n    data = b'{\"result\": ' + b'[' * 9000 + b'\"x\"' + b']' * 9000 + b'}'\n    while data:\n        data = data[os.write(1, data):]\n    os._exit(0)",
        ),
    );
    let call = |elements: usize| {
        json!({"Z1K1": "Z7", "Z7K1": "Z10740",
            "Z10740K1": {"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "a".repeat(elements)},
            "Z10740K2": "x"})
    };
    for elements in [19_000, 10] {
        let timed = target.watched_call(call(elements));
        let answer = timed
            .answer
            .as_ref()
            .unwrap_or_else(|e| panic!("{elements}: no answer after {:?}: {e}", timed.took));
        assert!(
            answer.text.contains("too deep"),
            "{elements}: {}",
            super::prefix(&answer.text)
        );
        eprintln!("{elements} levels: refused in {:?}", timed.took);
    }
    target.assert_survived();
}

/// An error of the original's quirk (a Z5 whose `Z5K1` is a Z501) is kept as it is given,
/// arrays within it too, and such arrays stay JSON wherever the value goes. One 9,000 levels
/// deep, handed down a recursion 19,000 deep to JavaScript as its argument, was written out
/// for the call recursively where only the engine's red zone was left. Such a value is now
/// refused where it is read.
#[test]
fn a_deep_array_in_an_error_kept_as_it_is_is_refused() {
    let _serial = one_at_a_time();
    let mut target = deep_recursion_target();
    // Z10760(list, x) = If(is empty(list), Z10770(x), Echo(Z10760(tail(list), x))), where
    // Z10770 is JavaScript answering "ok".
    store_code_at_the_bottom(
        &mut target,
        "Z10760",
        json!("Z1"),
        (
            "Z10770",
            "Z600",
            "function Z10770( Z10770K1 ) { return 'ok'; }",
        ),
    );
    // Written as text: the test's own threads would overflow copying such a value.
    let quirk = |levels: usize| {
        format!(
            r#"{{"Z1K1": "Z5", "Z5K1": {{"Z1K1": "Z501", "Z501K1": "m"}}, "Z5K2": {}"x"{}}}"#,
            r#"["Z1", "#.repeat(levels),
            "]".repeat(levels)
        )
    };
    // Static validation would find the error's `Z5K1` wanting: sent without it, as anyone
    // may.
    let unvalidated = |elements: usize, x: String| {
        let orch = target.orch().to_owned();
        let body = format!(
            r#"{{"zobject": {{"Z1K1": "Z7", "Z7K1": "Z10760",
                "Z10760K1": {{"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "{}"}},
                "Z10760K2": {x}}}, "doValidate": false}}"#,
            "a".repeat(elements)
        );
        target.watch(move || {
            super::Client::new(&orch, None, Duration::from_secs(120))
                .post_text("/wikifunctions.org/v1/evaluate/", &body)
        })
    };
    // A shallow one goes through to the code (which cannot read it: JavaScript has no type
    // for such a value).
    let answer = unvalidated(10, quirk(50)).expect("an answer");
    assert!(
        answer.status == 200 && answer.text.contains("Could not determine type"),
        "{}",
        super::prefix(&answer.text)
    );
    let started = std::time::Instant::now();
    let answer = unvalidated(19_000, quirk(9_000))
        .unwrap_or_else(|e| panic!("no answer after {:?}: {e}", started.elapsed()));
    assert!(
        answer.text.contains("kept as it is"),
        "{}",
        super::prefix(&answer.text)
    );
    eprintln!("refused in {:?}", started.elapsed());
    target.assert_survived();
}
