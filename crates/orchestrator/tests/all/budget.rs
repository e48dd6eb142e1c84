//! The per-request budget: values the orchestrator builds itself (not only its input) are
//! bounded in size, depth, steps and memory, and the access policy is asked before every
//! implementation runs, however it was reached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zeval_orchestrator::{
    BudgetLimits, CallOptions, ImplementationInfo, ImplementationPolicy, OrchestratorConfig,
};

use crate::{error_code, orchestrator};

/// Runs `f` on a thread with a 512 KiB stack: no bound may rely on a large stack.
fn on_small_stack(f: impl FnOnce() -> Value + Send + 'static) -> Value {
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no stack overflow")
}

/// The budget error's limit name (`Z590K1`), if the result failed with a Z590.
fn budget_limit(result: &Value) -> Option<String> {
    let error = zeval_zobject::build::get_metadata(&result["Z22K2"], "errors")?;
    (error["Z5K1"] == "Z590").then(|| error["Z5K2"]["Z590K1"].as_str().unwrap_or("").to_owned())
}

/// `Z10001(x)` = `[x, x]` (Z810 twice): the argument is evaluated once and shared.
fn duplicate() -> Value {
    let x = json!({"Z1K1": "Z18", "Z18K1": "Z10001K1"});
    json!({"Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": "Z10001K1",
                 "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z1", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10001", "Z14K2": {
            "Z1K1": "Z7", "Z7K1": "Z810", "Z810K1": x,
            "Z810K2": {"Z1K1": "Z7", "Z7K1": "Z810", "Z810K1": x, "Z810K2": ["Z1"]}}}],
        "Z8K5": "Z10001"})
}

/// `Z10001` applied `levels` times to "a": 2^levels leaves in a few kilobytes of request.
fn duplicated(levels: usize) -> Value {
    let mut call = json!("a");
    for _ in 0..levels {
        call = json!({"Z1K1": "Z7", "Z7K1": "Z10001", "Z10001K1": call});
    }
    call
}

#[test]
fn a_million_code_points_are_refused_before_they_are_built() {
    let result = on_small_stack(|| {
        let o = orchestrator(&[], OrchestratorConfig::default());
        let input = json!({"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "x".repeat(1_000_000)});
        o.orchestrate(&input, &CallOptions::default())
    });
    assert_eq!(
        budget_limit(&result).as_deref(),
        Some("value depth"),
        "{result}"
    );
}

#[test]
fn forty_levels_of_sharing_do_not_expand() {
    let started = Instant::now();
    let result = on_small_stack(|| {
        let o = orchestrator(&[("Z10001", duplicate())], OrchestratorConfig::default());
        o.orchestrate(&duplicated(40), &CallOptions::default())
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let limit = budget_limit(&result);
    assert!(
        matches!(
            limit.as_deref(),
            Some("value size" | "steps" | "memory" | "answer size")
        ),
        "{result}"
    );
}

#[test]
fn sharing_within_the_budget_still_answers() {
    let o = orchestrator(&[("Z10001", duplicate())], OrchestratorConfig::default());
    let result = o.orchestrate(&duplicated(3), &CallOptions::default());
    assert_eq!(error_code(&result), None, "{result}");
    // [[[a,a],[a,a]],[[a,a],[a,a]]]: 8 leaves.
    assert_eq!(result["Z22K1"].to_string().matches("\"a\"").count(), 8);
}

/// A result within the request's memory budget but holding more than
/// `MAX_ANSWER_TEXT_BYTES` of strings is refused: 2^10 shares of a 100 KiB string are 100
/// MiB once written out, which went on to be copied twice more after the budget was gone
/// (canonical form, text).
#[test]
fn an_answer_is_bounded_below_the_memory_budget() {
    let o = orchestrator(&[("Z10001", duplicate())], OrchestratorConfig::default());
    let mut call = json!("a".repeat(100 * 1024));
    for _ in 0..10 {
        call = json!({"Z1K1": "Z7", "Z7K1": "Z10001", "Z10001K1": call});
    }
    let result = o.orchestrate(&call, &CallOptions::default());
    assert_eq!(
        budget_limit(&result).as_deref(),
        Some("answer size"),
        "{}",
        &result.to_string()[..result.to_string().len().min(2_000)]
    );
    // Counted as written: 12 MiB of control characters are 72 MiB of `\u0001`s.
    let mut call = json!("\u{1}".repeat(12 * 1024));
    for _ in 0..10 {
        call = json!({"Z1K1": "Z7", "Z7K1": "Z10001", "Z10001K1": call});
    }
    let result = o.orchestrate(&call, &CallOptions::default());
    assert_eq!(budget_limit(&result).as_deref(), Some("answer size"));
}

#[test]
fn reifying_a_shared_value_is_bounded() {
    let result = on_small_stack(|| {
        let o = orchestrator(&[("Z10001", duplicate())], OrchestratorConfig::default());
        let input = json!({"Z1K1": "Z7", "Z7K1": "Z805", "Z805K1": duplicated(40)});
        o.orchestrate(&input, &CallOptions::default())
    });
    assert!(budget_limit(&result).is_some(), "{result}");
}

#[test]
fn steps_are_bounded() {
    let config = OrchestratorConfig {
        budget: BudgetLimits {
            max_steps: 2_000,
            ..BudgetLimits::default()
        },
        ..OrchestratorConfig::default()
    };
    let o = orchestrator(&[("Z10001", duplicate())], config);
    let result = o.orchestrate(&duplicated(12), &CallOptions::default());
    assert_eq!(budget_limit(&result).as_deref(), Some("steps"), "{result}");
}

#[test]
fn memory_is_bounded() {
    let config = OrchestratorConfig {
        budget: BudgetLimits {
            max_request_memory_bytes: 1024 * 1024,
            ..BudgetLimits::default()
        },
        ..OrchestratorConfig::default()
    };
    let o = orchestrator(&[], config);
    // 10,000 code points build about 3 MiB of nodes.
    let input = json!({"Z1K1": "Z7", "Z7K1": "Z868", "Z868K1": "m".repeat(10_000)});
    let result = o.orchestrate(&input, &CallOptions::default());
    assert_eq!(budget_limit(&result).as_deref(), Some("memory"), "{result}");
}

#[test]
fn metadata_names_the_instance_and_the_request_memory() {
    let config = OrchestratorConfig {
        instance_name: "node-under-test".into(),
        ..OrchestratorConfig::default()
    };
    let o = orchestrator(&[], config);
    let input = json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "hello"});
    let result = o.orchestrate(&input, &CallOptions::default());
    let meta = &result["Z22K2"];
    let get = |key: &str| zeval_zobject::build::get_metadata(meta, key).cloned();
    assert_eq!(get("orchestrationHostname"), Some(json!("node-under-test")));
    let memory = get("orchestrationMemoryUsage").unwrap();
    let mib: f64 = memory
        .as_str()
        .unwrap()
        .trim_end_matches(" MiB")
        .parse()
        .unwrap();
    assert!(
        mib < 1.0,
        "a trivial call reports {memory}, not the server's RSS"
    );
}

/// Refuses every implementation that is not a built-in (as `calls = "approved"` does for an
/// anonymous caller and an unapproved implementation), and remembers what it was asked.
#[derive(Default)]
struct BuiltInsOnly {
    asked: std::sync::Mutex<Vec<(String, &'static str)>>,
}

impl ImplementationPolicy for BuiltInsOnly {
    fn allows(
        &self,
        function_zid: &str,
        implementation: &ImplementationInfo,
    ) -> Result<(), String> {
        self.asked
            .lock()
            .unwrap()
            .push((function_zid.to_owned(), implementation.kind));
        if implementation.kind == "BuiltIn" {
            Ok(())
        } else {
            Err(format!("{function_zid} is not approved"))
        }
    }
}

fn with_policy(policy: &Arc<BuiltInsOnly>) -> CallOptions {
    CallOptions {
        policy: Some(policy.clone()),
        ..CallOptions::default()
    }
}

#[test]
fn a_nested_inline_function_is_checked_too() {
    // A built-in at the top (always allowed) whose argument calls an inline composition.
    let inline = json!({"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z6", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10002", "Z14K2": "ran"}], "Z8K5": "Z10002"});
    let input = json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": {"Z1K1": "Z7", "Z7K1": inline}});
    let policy = Arc::new(BuiltInsOnly::default());
    let o = orchestrator(&[], OrchestratorConfig::default());
    let result = o.orchestrate(&input, &with_policy(&policy));
    assert_eq!(error_code(&result).as_deref(), Some("Z559"), "{result}");
    assert!(!result["Z22K1"].to_string().contains("ran"), "{result}");
    let asked = policy.asked.lock().unwrap().clone();
    assert!(asked.contains(&("Z801".to_owned(), "BuiltIn")), "{asked:?}");
    assert!(
        asked.contains(&("Z10002".to_owned(), "Composition")),
        "{asked:?}"
    );
}

#[test]
fn a_stored_function_reached_from_a_composition_is_checked() {
    let o = orchestrator(&[("Z10001", duplicate())], OrchestratorConfig::default());
    let policy = Arc::new(BuiltInsOnly::default());
    let input = json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": duplicated(1)});
    let result = o.orchestrate(&input, &with_policy(&policy));
    assert_eq!(error_code(&result).as_deref(), Some("Z559"), "{result}");
}

#[test]
fn built_ins_run_under_a_policy() {
    let policy = Arc::new(BuiltInsOnly::default());
    let o = orchestrator(&[], OrchestratorConfig::default());
    let input = json!({"Z1K1": "Z7", "Z7K1": "Z801", "Z801K1": "hello"});
    let result = o.orchestrate(&input, &with_policy(&policy));
    assert_eq!(result["Z22K1"], "hello", "{result}");
}

/// Refuses the implementations of one function and lets everything else run.
struct Refuse(&'static str);

impl ImplementationPolicy for Refuse {
    fn allows(&self, function_zid: &str, _: &ImplementationInfo) -> Result<(), String> {
        if function_zid == self.0 {
            Err(format!("{function_zid} is not approved"))
        } else {
            Ok(())
        }
    }
}

/// Refuses everything, as a rule whose store could not answer does.
struct CannotCheck;

impl ImplementationPolicy for CannotCheck {
    fn allows(&self, function_zid: &str, _: &ImplementationInfo) -> Result<(), String> {
        Err(format!("{function_zid} could not be checked"))
    }

    fn could_not_check(&self) -> bool {
        true
    }
}

/// A refusal the rule could not check (the store busy) depends on the load and is never
/// kept; one it could is the answer. Both were kept alike, and a moment's load refused the
/// call to every caller for the errors' 60 s in the result cache.
#[test]
fn a_refusal_the_rule_could_not_check_is_never_kept() {
    let o = orchestrator(&[("Z10001", duplicate())], OrchestratorConfig::default());
    let input = duplicated(1);
    let refusals: [(&str, Arc<dyn ImplementationPolicy>); 2] = [
        ("could not check", Arc::new(CannotCheck)),
        ("refused", Arc::new(Refuse("Z10001"))),
    ];
    for (what, policy) in refusals {
        let options = CallOptions {
            policy: Some(policy),
            ..CallOptions::default()
        };
        let (result, trace) = o.orchestrate_traced(&input, &options);
        assert_eq!(
            error_code(&result).as_deref(),
            Some("Z559"),
            "{what}: {result}"
        );
        assert_eq!(trace.cacheable(), what == "refused", "{what}: {trace:?}");
    }
}

#[test]
fn a_type_validator_is_checked_before_it_runs() {
    // Type Z10010 whose validator Z10011 is a composition (it would accept everything).
    let validator = json!({"Z1K1": "Z8",
        "Z8K1": ["Z17",
            {"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": "Z10011K1", "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}},
            {"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": "Z10011K2", "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z1", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10011", "Z14K2": {"Z1K1": "Z18", "Z18K1": "Z10011K1"}}],
        "Z8K5": "Z10011"});
    let ty = json!({"Z1K1": "Z4", "Z4K1": "Z10010",
        "Z4K2": ["Z3", {"Z1K1": "Z3", "Z3K1": "Z6", "Z3K2": "Z10010K1", "Z3K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z4K3": "Z10011"});
    let o = orchestrator(
        &[("Z10010", ty), ("Z10011", validator)],
        OrchestratorConfig::default(),
    );
    let input = json!({"Z1K1": "Z7", "Z7K1": "Z801",
        "Z801K1": {"Z1K1": "Z10010", "Z10010K1": "x"}});
    let validating = CallOptions {
        do_validate: true,
        ..CallOptions::default()
    };
    let allowed = o.orchestrate(&input, &validating);
    assert_eq!(error_code(&allowed), None, "{allowed}");
    let refused = o.orchestrate(
        &input,
        &CallOptions {
            policy: Some(Arc::new(Refuse("Z10011"))),
            ..validating
        },
    );
    assert!(error_code(&refused).is_some(), "{refused}");
    assert!(refused.to_string().contains("Z559"), "{refused}");
}

/// `Z10001` applied `levels` times to `leaf`.
fn duplicated_from(levels: usize, leaf: Value) -> Value {
    let mut call = leaf;
    for _ in 0..levels {
        call = json!({"Z1K1": "Z7", "Z7K1": "Z10001", "Z10001K1": call});
    }
    call
}

/// A budget of `bytes` of memory and otherwise the defaults.
fn memory_budget(bytes: usize) -> OrchestratorConfig {
    OrchestratorConfig {
        budget: BudgetLimits {
            max_request_memory_bytes: bytes,
            ..BudgetLimits::default()
        },
        ..OrchestratorConfig::default()
    }
}

/// The request's reported peak memory (`orchestrationMemoryUsage`), in bytes.
fn reported_memory(result: &Value) -> f64 {
    let memory = zeval_zobject::build::get_metadata(&result["Z22K2"], "orchestrationMemoryUsage")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no memory usage in {result}"));
    let mib: f64 = memory.trim_end_matches(" MiB").parse().unwrap();
    mib * 1024.0 * 1024.0
}

/// A composition `Z10500(implementation)` that calls an inline function whose only
/// implementation is its argument: the argument's `Z14K2` (here a shared list) becomes a
/// composition body that is run.
fn run_argument_as_body(dag: Value) -> Value {
    let body = json!({"Z1K1": "Z7", "Z7K1": {"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z1",
        "Z8K3": ["Z20"], "Z8K4": ["Z14", {"Z1K1": "Z18", "Z18K1": "Z10500K1"}],
        "Z8K5": "Z10501"}});
    let function = json!({"Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": "Z10500K1",
                 "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z1", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10500", "Z14K2": body}],
        "Z8K5": "Z10500"});
    let call = json!({"Z1K1": "Z7", "Z7K1": function,
        "Z10500K1": {"Z1K1": "Z14", "Z14K2": dag}});
    // Only whether the list is empty leaves the request: the answer stays small.
    json!({"Z1K1": "Z7", "Z7K1": "Z813", "Z813K1": call})
}

#[test]
fn a_shared_value_run_as_a_composition_body_is_not_expanded() {
    // 2^8 leaves: expanded, the body would hold about 20 MiB of nodes (2^14: 1.4 GiB).
    let o = orchestrator(&[("Z10001", duplicate())], memory_budget(4 * 1024 * 1024));
    let input = run_argument_as_body(duplicated_from(8, json!(["Z6", "x"])));
    let result = o.orchestrate(&input, &CallOptions::default());
    assert_eq!(error_code(&result), None, "{result}");
    assert_eq!(
        result["Z22K1"],
        json!({"Z1K1": "Z40", "Z40K1": "Z42"}),
        "{result}"
    );
    let peak = reported_memory(&result);
    assert!(
        peak < 1024.0 * 1024.0,
        "peak {peak} bytes: the body was expanded"
    );
}

#[test]
fn materialising_the_answer_is_charged_to_the_memory_budget() {
    // 1,024 references to one 8 KiB string: 8 MiB of JSON from 8 KiB of nodes.
    let o = orchestrator(&[("Z10001", duplicate())], memory_budget(4 * 1024 * 1024));
    let input = duplicated_from(10, json!("y".repeat(8 * 1024)));
    let result = o.orchestrate(&input, &CallOptions::default());
    assert_eq!(
        budget_limit(&result).as_deref(),
        Some("memory"),
        "{}",
        &result.to_string()[..500.min(result.to_string().len())]
    );
}

#[test]
fn a_wrongly_typed_result_is_quoted_briefly() {
    // Declared to return a string, returns its argument: a Z11 holding 4 MiB of shared
    // list (the argument is evaluated eagerly). The Z517 quotes a little of it.
    let mut function = duplicate();
    function["Z8K1"][1]["Z17K2"] = json!("Z10002K1");
    function["Z8K2"] = json!("Z6");
    function["Z8K4"][1]["Z14K1"] = json!("Z10002");
    function["Z8K4"][1]["Z14K2"] = json!({"Z1K1": "Z18", "Z18K1": "Z10002K1"});
    function["Z8K5"] = json!("Z10002");
    let o = orchestrator(
        &[("Z10001", duplicate()), ("Z10002", function)],
        OrchestratorConfig::default(),
    );
    let list = duplicated_from(9, json!("y".repeat(8 * 1024)));
    let input = json!({"Z1K1": "Z7", "Z7K1": "Z10002",
        "Z10002K1": {"Z1K1": "Z11", "Z11K1": "en", "Z11K2": list}});
    let result = o.orchestrate(&input, &CallOptions::default());
    let text = result.to_string();
    assert_eq!(
        error_code(&result).as_deref(),
        Some("Z517"),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.len() < 20_000, "the error quotes {} bytes", text.len());
}

/// Z883 (a map type) refuses a key type other than a string or a key, and quotes it: a little
/// of it. A list of 4 MiB of shared strings passes as the type (types built at run time are
/// not compared), and was quoted whole, past every bound on answers.
#[test]
fn a_refused_map_key_type_is_quoted_briefly() {
    let o = orchestrator(&[("Z10001", duplicate())], OrchestratorConfig::default());
    let list = duplicated_from(9, json!("y".repeat(8 * 1024)));
    let input = json!({"Z1K1": "Z7", "Z7K1": "Z883", "Z883K1": list, "Z883K2": "Z6"});
    let result = o.orchestrate(&input, &CallOptions::default());
    let text = result.to_string();
    assert_eq!(
        error_code(&result).as_deref(),
        Some("Z516"),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.len() < 20_000, "the error quotes {} bytes", text.len());
}

/// Answers "ok" to every code call and records how many bytes of arguments it was sent.
#[derive(Default)]
struct Recording {
    argument_bytes: std::sync::Mutex<Vec<usize>>,
}

impl zeval_orchestrator::CodeEvaluator for Recording {
    fn evaluate(
        &self,
        call: &zeval_orchestrator::CodeCall,
    ) -> Result<Value, zeval_orchestrator::EvaluatorFailure> {
        let bytes = call
            .arguments
            .iter()
            .map(|(_, v)| v.to_string().len())
            .sum();
        self.argument_bytes.lock().unwrap().push(bytes);
        Ok(zeval_zobject::build::z22(
            json!({"Z1K1": "Z6", "Z6K1": "ok"}),
            zeval_zobject::build::void(),
        ))
    }
}

#[test]
fn arguments_for_code_are_charged_to_the_memory_budget() {
    let code = json!({"Z1K1": "Z8",
        "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z1", "Z17K2": "Z10600K1",
                 "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z8K2": "Z6", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10600",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": {"Z1K1": "Z61", "Z61K1": "recording"},
                      "Z16K2": "code"}}],
        "Z8K5": "Z10600"});
    let objects: std::collections::HashMap<String, Value> = [
        ("Z10001".to_owned(), duplicate()),
        ("Z10600".to_owned(), code),
    ]
    .into_iter()
    .collect();
    let recording = Arc::new(Recording::default());
    let mut evaluators = zeval_orchestrator::EvaluatorRegistry::new();
    evaluators.register(["recording"], recording.clone());
    let o = zeval_orchestrator::Orchestrator::new(
        Arc::new(crate::MapSource(objects)),
        evaluators,
        memory_budget(4 * 1024 * 1024),
    );
    // A small argument passes.
    let small = json!({"Z1K1": "Z7", "Z7K1": "Z10600", "Z10600K1": duplicated_from(2, json!("y"))});
    let result = o.orchestrate(&small, &CallOptions::default());
    assert_eq!(result["Z22K1"], "ok", "{result}");
    // 1,024 references to one 8 KiB string: 8 MiB of JSON for the evaluator.
    let large = json!({"Z1K1": "Z7", "Z7K1": "Z10600",
        "Z10600K1": duplicated_from(10, json!("y".repeat(8 * 1024)))});
    let result = o.orchestrate(&large, &CallOptions::default());
    assert_eq!(budget_limit(&result).as_deref(), Some("memory"), "{result}");
    let sent = recording.argument_bytes.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "the evaluator was sent {sent:?} bytes");
}

/// A call as wide as its function's declarations are long, both of which a request can
/// also build at run time. Binding found each argument by a scan of the call's keys, with
/// no step counted and no look at the clock: quadratic, and past any deadline. Each key is
/// now found at once, and each declaration is a step.
#[test]
fn binding_a_wide_call_is_linear_and_counts_its_steps() {
    const WIDTH: usize = 20_000;
    let declarations: Vec<Value> = std::iter::once(json!("Z17"))
        .chain(
            (1..=WIDTH)
                .map(|i| json!({"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("Z10000K{i}")})),
        )
        .collect();
    let function = json!({"Z1K1": "Z8", "Z8K1": declarations, "Z8K2": "Z6", "Z8K3": ["Z20"],
        "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": "Z10000", "Z14K2": "done"}],
        "Z8K5": "Z10000"});
    let mut call = serde_json::Map::new();
    call.insert("Z1K1".into(), json!("Z7"));
    call.insert("Z7K1".into(), function);
    for i in 1..=WIDTH {
        call.insert(format!("Z10000K{i}"), json!("x"));
    }
    let call = Value::Object(call);
    // Lists that deep (20,000 declarations) are within a budget that admits them.
    let deep_lists = BudgetLimits {
        max_value_depth: 100_000,
        ..BudgetLimits::default()
    };
    let o = orchestrator(
        &[],
        OrchestratorConfig {
            budget: deep_lists,
            ..OrchestratorConfig::default()
        },
    );
    let options = CallOptions {
        timeout: Some(Duration::from_secs(2)),
        ..CallOptions::default()
    };
    let started = Instant::now();
    // On the stack the server's orchestrating threads have, which values this deep need.
    let (result, call) = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || (o.orchestrate(&call, &options), call))
        .unwrap()
        .join()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(result["Z22K1"], "done", "{}", result["Z22K2"]);
    assert!(took < Duration::from_secs(4), "{took:?}");
    let few_steps = OrchestratorConfig {
        budget: BudgetLimits {
            max_steps: WIDTH as u64 / 2,
            ..deep_lists
        },
        ..OrchestratorConfig::default()
    };
    let result = orchestrator(&[], few_steps).orchestrate(&call, &CallOptions::default());
    assert_eq!(
        budget_limit(&result).as_deref(),
        Some("steps"),
        "{}",
        result["Z22K2"]
    );
}

/// Metadata a request sets itself (Z820), an error among it, is bounded as its answer is: a
/// value of 1,024 shares of a 100 KiB string went into the answer's metadata whole, some
/// 100 MiB beside a result bounded at 64 MiB.
#[test]
fn metadata_a_request_sets_is_bounded() {
    let o = orchestrator(&[("Z10001", duplicate())], OrchestratorConfig::default());
    let mut shared = json!("a".repeat(100 * 1024));
    for _ in 0..10 {
        shared = json!({"Z1K1": "Z7", "Z7K1": "Z10001", "Z10001K1": shared});
    }
    for name in ["k", "errors"] {
        let call = json!({"Z1K1": "Z7", "Z7K1": "Z820", "Z820K1": name, "Z820K2": shared});
        let result = o.orchestrate(&call, &CallOptions::default());
        let shown = result.to_string();
        assert_eq!(
            budget_limit(&result).as_deref(),
            Some("metadata size"),
            "{name}: {}",
            &shown[..shown.len().min(2_000)]
        );
    }
    // Deep but small: objects in objects, 120 times.
    let mut nested = json!("x");
    for _ in 0..120 {
        nested = json!({"Z1K1": "Z39", "K1": nested});
    }
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z820", "Z820K1": "k", "Z820K2": nested});
    let result = o.orchestrate(&call, &CallOptions::default());
    assert_eq!(
        budget_limit(&result).as_deref(),
        Some("metadata size"),
        "{}",
        result["Z22K2"]
    );
    let small = json!({"Z1K1": "Z7", "Z7K1": "Z820", "Z820K1": "k", "Z820K2": "v"});
    let result = o.orchestrate(&small, &CallOptions::default());
    let value = zeval_zobject::build::get_metadata(&result["Z22K2"], "k");
    assert_eq!(value, Some(&json!("v")), "{result}");
}
