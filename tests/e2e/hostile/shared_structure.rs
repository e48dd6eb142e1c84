//! Item 3: `Z810(a, a)` shares structure and arguments are evaluated once, so 40 nested
//! "duplicate" compositions describe a value of 2^40 nodes in a body of a few kilobytes. The
//! final passes and the serialisation used to walk all of it with no deadline: a core pinned
//! and memory growing until the kernel killed the process.

use serde_json::{Value, json};

use super::{DEADLINE, Target, assert_refused, call_of, composition, one_at_a_time};

/// Levels of duplication: 2^40 nodes.
const LEVELS: usize = 40;

/// `duplicate(x) = Z810(x, x)`: the list `x` with `x` itself prepended.
fn duplicate() -> Value {
    let argument = json!({"Z1K1": "Z18", "Z18K1": "Z10400K1"});
    composition(
        "Z10400",
        json!({"Z1K1": "Z7", "Z7K1": "Z810", "Z810K1": argument, "Z810K2": argument}),
    )
}

#[test]
fn forty_nested_duplications_hit_the_budget_in_time() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    let mut value = json!(["Z6", "x"]);
    for _ in 0..LEVELS {
        value = call_of(duplicate(), "Z10400", value);
    }
    let body_bytes = value.to_string().len();
    assert!(
        body_bytes <= target_body_limit(),
        "the attack must fit the default body limit ({body_bytes} bytes)"
    );
    let timed = target.watched_call(value);
    let code = assert_refused("40 nested duplications", &timed, DEADLINE);
    let memory = target.memory();
    eprintln!(
        "item 3, {LEVELS} nested duplications ({body_bytes} bytes): {code} in {:?}, server RSS \
         {} MiB (peak {} MiB)",
        timed.took,
        memory.now_kib / 1024,
        memory.peak_kib / 1024
    );

    // The same through a stored function, called by ZID at every level.
    let mut target = target;
    let orch = target.orch().to_owned();
    let mut stored = crate::common::z2("Z10400", duplicate());
    stored["Z2K2"]["Z8K4"][1] = json!("Z10401");
    let implementation = crate::common::z2(
        "Z10401",
        json!({"Z1K1": "Z14", "Z14K1": "Z10400", "Z14K2":
            {"Z1K1": "Z7", "Z7K1": "Z810",
             "Z810K1": {"Z1K1": "Z18", "Z18K1": "Z10400K1"},
             "Z810K2": {"Z1K1": "Z18", "Z18K1": "Z10400K1"}}}),
    );
    let mut without_implementations = stored.clone();
    without_implementations["Z2K2"]["Z8K4"] = json!(["Z14"]);
    super::put(&orch, &target.editor, "Z10400", &without_implementations);
    super::put(&orch, &target.editor, "Z10401", &implementation);
    super::put(&orch, &target.editor, "Z10400", &stored);
    target.remember("Z10400");
    let mut value = json!(["Z6", "x"]);
    for _ in 0..LEVELS {
        value = json!({"Z1K1": "Z7", "Z7K1": "Z10400", "Z10400K1": value});
    }
    let timed = target.watched_call(value);
    let code = assert_refused("40 nested stored duplications", &timed, DEADLINE);
    eprintln!(
        "item 3, {LEVELS} nested stored duplications: {code} in {:?}",
        timed.took
    );
    target.assert_survived();
}

/// The orchestrator's default body limit (100 KiB, as the original's body parser).
fn target_body_limit() -> usize {
    100 * 1024
}
