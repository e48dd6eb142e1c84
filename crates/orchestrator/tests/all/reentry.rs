//! Reentrant calls: code calling other functions inside the request (`W.Call`), with a
//! scripted evaluator standing in for the guests. Each nested call shares the request's
//! access rules and budget; the depth and the number of calls have typed limits (Z590).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use zeval_orchestrator::{
    CallOptions, CodeCall, CodeEvaluator, EvaluatorFailure, EvaluatorRegistry, ImplementationInfo,
    ImplementationPolicy, NestedCaller, Orchestrator, OrchestratorConfig, ReentryLimits,
};
use zeval_zobject::build::{failure, void, z22};

use crate::MapSource;

/// Runs code of the form `call ZID` (calls `ZID` with its own argument and answers the
/// result), `catch ZID` (the same, answering "caught" and the error's type when the call
/// fails), `count ZID` (calls `ZID` until refused; answers how many calls succeeded and the
/// refusal's limit), `upper` (upper-cases its argument) or `hold` (waits until
/// [`Scripted::release`], then answers its argument). Counts its runs, and those told that
/// only the value will be read ([`CodeCall::value_only`]).
#[derive(Default)]
struct Scripted {
    runs: AtomicUsize,
    value_only_runs: AtomicUsize,
    /// How many runs of `hold` wait, and whether they may go on.
    holding: (Mutex<(usize, bool)>, Condvar),
}

fn string_of(value: &Value) -> String {
    value["Z6K1"]
        .as_str()
        .or(value.as_str())
        .unwrap_or_default()
        .to_owned()
}

impl CodeEvaluator for Scripted {
    fn evaluate(&self, _: &CodeCall) -> Result<Value, EvaluatorFailure> {
        Err(EvaluatorFailure("only reentrant calls here".into()))
    }

    fn evaluate_reentrant(
        &self,
        call: &CodeCall,
        nested: &mut dyn NestedCaller,
    ) -> Result<Value, EvaluatorFailure> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if call.value_only {
            self.value_only_runs.fetch_add(1, Ordering::SeqCst);
        }
        if call.code == "unreachable" {
            return Err(EvaluatorFailure(
                "the evaluator could not be reached".into(),
            ));
        }
        let argument = call.arguments[0].1.clone();
        let deadline = Instant::now() + call.remaining_time;
        let mut words = call.code.split_whitespace();
        let answer = match (words.next(), words.next()) {
            (Some("hold"), None) => {
                let (state, changed) = &self.holding;
                let mut state = state.lock().unwrap();
                state.0 += 1;
                changed.notify_all();
                while !state.1 {
                    state = changed.wait(state).unwrap();
                }
                Ok(argument)
            }
            (Some("upper"), None) => {
                Ok(json!({"Z1K1": "Z6", "Z6K1": string_of(&argument).to_uppercase()}))
            }
            (Some("catch"), Some(zid)) => {
                match nested.call(zid, vec![(format!("{zid}K1"), argument)], deadline) {
                    Ok(value) => Ok(value),
                    Err(error) => Ok(json!({"Z1K1": "Z6",
                        "Z6K1": format!("caught {}", string_of(&error["Z5K1"]))})),
                }
            }
            (Some("call"), Some(zid)) => {
                nested.call(zid, vec![(format!("{zid}K1"), argument)], deadline)
            }
            (Some("count"), Some(zid)) => {
                let mut made = 0;
                loop {
                    match nested.call(zid, vec![(format!("{zid}K1"), argument.clone())], deadline) {
                        Ok(_) => made += 1,
                        Err(error) => {
                            let limit = string_of(&error["Z5K2"]["Z590K1"]);
                            break Ok(json!({"Z1K1": "Z6", "Z6K1": format!("{made} {limit}")}));
                        }
                    }
                }
            }
            // What the evaluator answers when code used its whole time limit, and when the
            // load stopped it.
            (Some("timeout"), None) => {
                Err(json!({"Z1K1": "Z5", "Z5K1": "Z558", "Z5K2": "Function call timed out"}))
            }
            (Some("sleep"), Some(ms)) => {
                std::thread::sleep(std::time::Duration::from_millis(ms.parse().unwrap()));
                Ok(argument)
            }
            (Some("busy"), None) => Err(json!({"Z1K1": "Z5", "Z5K1": "Z558",
                "Z5K2": "Function call timed out: every executor was busy for 10000 ms of the call's time"})),
            _ => Err(json!({"Z1K1": "Z5", "Z5K2": {"Z1K1": "Z6", "Z6K1": "bad script"}})),
        };
        Ok(match answer {
            Ok(value) => z22(value, void()),
            Err(error) => failure(error),
        })
    }
}

impl Scripted {
    /// Waits until `count` runs of `hold` wait.
    fn until_holding(&self, count: usize) {
        let (state, changed) = &self.holding;
        let mut state = state.lock().unwrap();
        while state.0 < count {
            state = changed.wait(state).unwrap();
        }
    }

    /// Lets every run of `hold` go on.
    fn release(&self) {
        let (state, changed) = &self.holding;
        state.lock().unwrap().1 = true;
        changed.notify_all();
    }
}

/// A string function `zid` whose one implementation `zid + 1` runs `script`.
fn function(zid: &str, implementation: &str, script: &str) -> [(String, Value); 2] {
    [
        (
            zid.to_owned(),
            json!({
                "Z1K1": "Z8",
                "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("{zid}K1"),
                         "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
                "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", implementation], "Z8K5": zid,
            }),
        ),
        (
            implementation.to_owned(),
            json!({"Z1K1": "Z14", "Z14K1": zid,
                   "Z14K3": {"Z1K1": "Z16", "Z16K1": {"Z1K1": "Z61", "Z61K1": "scripted"},
                             "Z16K2": script}}),
        ),
    ]
}

/// A string function `zid` with two implementations, `zid + 1` and `zid + 2`, running
/// `first` and `second`.
fn two_implementations(zid: &str, first: &str, second: &str) -> Vec<(String, Value)> {
    let number: u64 = zid[1..].parse().unwrap();
    let (one, two) = (format!("Z{}", number + 1), format!("Z{}", number + 2));
    let [(_, mut z8), first] = function(zid, &one, first);
    let [_, second] = function(zid, &two, second);
    z8["Z8K4"] = json!(["Z14", one, two]);
    vec![(zid.to_owned(), z8), first, second]
}

/// A string function `zid` whose one implementation `zid + 1` is a composition calling
/// `Z10000` (`upper`) on its argument.
fn composition_of_upper(zid: &str) -> [(String, Value); 2] {
    let number: u64 = zid[1..].parse().unwrap();
    let implementation = format!("Z{}", number + 1);
    let [(_, z8), (_, z14)] = function(zid, &implementation, "unused");
    [
        (zid.to_owned(), z8),
        (implementation, composition_calling(z14, zid, "Z10000")),
    ]
}

/// `z14` (an implementation of `zid`) made a composition calling `callee` on its argument.
fn composition_calling(mut z14: Value, zid: &str, callee: &str) -> Value {
    z14.as_object_mut().unwrap().remove("Z14K3");
    z14["Z14K2"] = json!({"Z1K1": "Z7", "Z7K1": callee,
                          format!("{callee}K1"): {"Z1K1": "Z18", "Z18K1": format!("{zid}K1")}});
    z14
}

/// A string function `zid` with two implementations: `zid + 1` a composition calling a
/// function `zid + 10` whose one implementation runs "timeout", and `zid + 2` "upper".
fn composition_of_timeout(zid: &str) -> Vec<(String, Value)> {
    let number: u64 = zid[1..].parse().unwrap();
    let callee = format!("Z{}", number + 10);
    let mut objects = two_implementations(zid, "unused", "upper");
    objects[1].1 = composition_calling(objects[1].1.clone(), zid, &callee);
    objects.extend(function(&callee, &format!("Z{}", number + 11), "timeout"));
    objects
}

/// A string function `zid` with two implementations: `zid + 1` a composition calling
/// `callee` on its argument, and `zid + 2` "upper".
fn composition_first(zid: &str, callee: &str) -> Vec<(String, Value)> {
    let mut objects = two_implementations(zid, "unused", "upper");
    objects[1].1 = composition_calling(objects[1].1.clone(), zid, callee);
    objects
}

/// A string function `zid` whose one implementation is in a language no evaluator runs.
fn in_a_language_nobody_runs(zid: &str, implementation: &str) -> [(String, Value); 2] {
    let [z8, (zid14, mut z14)] = function(zid, implementation, "unused");
    z14["Z14K3"]["Z16K1"]["Z61K1"] = json!("cobol");
    [z8, (zid14, z14)]
}

fn setup(reentry: ReentryLimits) -> (Orchestrator, Arc<Scripted>) {
    let objects: HashMap<String, Value> = [
        function("Z10000", "Z10001", "upper"),
        function("Z10010", "Z10011", "call Z10000"),
        function("Z10020", "Z10021", "call Z10020"),
        function("Z10030", "Z10031", "count Z10000"),
        function("Z10200", "Z10201", "call Z10210"),
        function("Z10210", "Z10211", "hold"),
        function("Z10220", "Z10221", "catch Z10080"),
        function("Z10230", "Z10231", "unreachable"),
        in_a_language_nobody_runs("Z10240", "Z10241"),
        function("Z10270", "Z10271", "sleep 300"),
    ]
    .into_iter()
    .flatten()
    .chain(two_implementations("Z10050", "call Z10050", "upper"))
    .chain(two_implementations("Z10060", "broken", "upper"))
    .chain(two_implementations("Z10080", "timeout", "upper"))
    .chain(two_implementations("Z10090", "busy", "upper"))
    .chain(composition_of_timeout("Z10100"))
    .chain(composition_of_upper("Z10070"))
    .chain(composition_first("Z10260", "Z10000"))
    .collect();
    let scripted = Arc::new(Scripted::default());
    let mut evaluators = EvaluatorRegistry::new();
    evaluators.register(["scripted"], scripted.clone());
    let config = OrchestratorConfig {
        reentry,
        ..OrchestratorConfig::default()
    };
    (
        Orchestrator::new(Arc::new(MapSource(objects)), evaluators, config),
        scripted,
    )
}

fn run(orchestrator: &Orchestrator, function: &str, text: &str, options: &CallOptions) -> Value {
    let call = json!({"Z1K1": "Z7", "Z7K1": function, format!("{function}K1"): text});
    orchestrator.orchestrate(&call, options)
}

fn error(result: &Value) -> Option<Value> {
    zeval_zobject::build::get_metadata(&result["Z22K2"], "errors").cloned()
}

#[test]
fn code_calls_another_function_in_the_request() {
    let (orchestrator, scripted) = setup(ReentryLimits::default());
    let result = run(&orchestrator, "Z10010", "abc", &CallOptions::default());
    assert_eq!(result["Z22K1"], "ABC", "{result}");
    assert_eq!(scripted.runs.load(Ordering::SeqCst), 2);
    // Each is the top of its own request (the nested call's too): both answer metadata.
    assert_eq!(scripted.value_only_runs.load(Ordering::SeqCst), 0);
}

#[test]
fn code_calls_are_told_when_only_the_value_is_read_nested_ones_too() {
    let (orchestrator, scripted) = setup(ReentryLimits::default());
    let value_only = CallOptions {
        value_only: true,
        ..CallOptions::default()
    };
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10010", "Z10010K1": "abc"});
    let answer = orchestrator.answer(&call, &value_only).into_result();
    assert_eq!(answer, Ok(json!({"Z1K1": "Z6", "Z6K1": "ABC"})));
    assert_eq!(scripted.runs.load(Ordering::SeqCst), 2);
    assert_eq!(scripted.value_only_runs.load(Ordering::SeqCst), 2);
    // An error still comes back.
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10060", "Z10060K1": "abc"});
    let refused = orchestrator.answer(&call, &value_only).into_result();
    assert!(refused.is_err(), "{refused:?}");
}

#[test]
fn code_below_the_top_of_a_request_is_told_that_only_its_value_is_read() {
    let (orchestrator, scripted) = setup(ReentryLimits::default());
    let result = run(&orchestrator, "Z10070", "abc", &CallOptions::default());
    assert_eq!(result["Z22K1"], "ABC", "{result}");
    assert_eq!(scripted.runs.load(Ordering::SeqCst), 1);
    assert_eq!(scripted.value_only_runs.load(Ordering::SeqCst), 1);
    // The composition at the top still answers with its implementation's metadata.
    let implementation =
        zeval_zobject::build::get_metadata(&result["Z22K2"], "implementationId").map(string_of);
    assert_eq!(implementation.as_deref(), Some("Z10071"), "{result}");
}

#[test]
fn recursion_stops_at_the_reentrant_depth() {
    let limits = ReentryLimits {
        max_depth: 5,
        ..ReentryLimits::default()
    };
    let (orchestrator, scripted) = setup(limits);
    let result = run(&orchestrator, "Z10020", "x", &CallOptions::default());
    let error = error(&result).unwrap_or_else(|| panic!("{result}"));
    assert_eq!(error["Z5K1"], "Z590", "{result}");
    assert_eq!(error["Z5K2"]["Z590K1"], "reentrant depth", "{result}");
    // The outermost run and five nested levels.
    assert_eq!(scripted.runs.load(Ordering::SeqCst), 6);
    // The counters were given back: the next request may nest as deep again.
    let again = run(&orchestrator, "Z10020", "x", &CallOptions::default());
    assert_eq!(error_limit(&again), Some("reentrant depth".to_owned()));
    assert_eq!(scripted.runs.load(Ordering::SeqCst), 12);
}

/// List order, with a failing code implementation falling through (as the server's ranking).
struct FallingThrough;

impl zeval_orchestrator::ImplementationSelector for FallingThrough {
    fn order(&self, _: &str, implementations: &[ImplementationInfo]) -> Vec<usize> {
        (0..implementations.len()).collect()
    }

    fn falls_through(&self) -> bool {
        true
    }
}

#[test]
fn a_request_limit_does_not_fall_through_to_the_next_implementation() {
    let limits = ReentryLimits {
        max_depth: 3,
        ..ReentryLimits::default()
    };
    let (orchestrator, scripted) = setup(limits);
    let options = CallOptions {
        selector: Some(Arc::new(FallingThrough)),
        ..CallOptions::default()
    };
    // Z10050 recurses through its first implementation; its second would answer at once.
    // Were the depth error an implementation's failure, the deepest level would fall
    // through to the second and the request would succeed, at up to 2^depth runs.
    let result = run(&orchestrator, "Z10050", "x", &options);
    assert_eq!(
        error_limit(&result),
        Some("reentrant depth".to_owned()),
        "{result}"
    );
    assert_eq!(scripted.runs.load(Ordering::SeqCst), 4);
    // An ordinary failure still falls through.
    let result = run(&orchestrator, "Z10060", "x", &options);
    assert_eq!(result["Z22K1"], "X", "{result}");
}

fn error_limit(result: &Value) -> Option<String> {
    error(result)?["Z5K2"]["Z590K1"].as_str().map(str::to_owned)
}

#[test]
fn nested_calls_are_counted_per_request() {
    let limits = ReentryLimits {
        max_calls: 7,
        ..ReentryLimits::default()
    };
    let (orchestrator, _) = setup(limits);
    for _ in 0..2 {
        let result = run(&orchestrator, "Z10030", "a", &CallOptions::default());
        assert_eq!(result["Z22K1"], "7 nested calls", "{result}");
    }
}

fn as_client(client: &str) -> CallOptions {
    CallOptions {
        client: Some(client.into()),
        ..CallOptions::default()
    }
}

/// Each call from code in progress is a guest waiting in an executor: one client's requests,
/// each within the depth limit, held as many executors as they liked (8 requests 8 deep held
/// 72, more than the 32 of the default pool).
#[test]
fn calls_from_code_in_progress_are_counted_across_a_clients_requests() {
    let limits = ReentryLimits {
        max_per_client: 2,
        ..ReentryLimits::default()
    };
    let (orchestrator, scripted) = setup(limits);
    let orchestrator = Arc::new(orchestrator);
    // Two requests of client "a" each wait in a call from code (Z10200 calls Z10210, which
    // holds).
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let orchestrator = orchestrator.clone();
            std::thread::spawn(move || run(&orchestrator, "Z10200", "held", &as_client("a")))
        })
        .collect();
    scripted.until_holding(2);
    // A third request of "a" may run code, but not call from it.
    let refused = run(&orchestrator, "Z10010", "abc", &as_client("a"));
    assert_eq!(
        error_limit(&refused),
        Some("client's calls from code".to_owned()),
        "{refused}"
    );
    // The refusal says nothing about the call: it is never cached.
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10010", "Z10010K1": "abc"});
    let (_, trace) = orchestrator.orchestrate_traced(&call, &as_client("a"));
    assert!(!trace.cacheable() && trace.stopped_by_load, "{trace:?}");
    // Another client, and a request without a client, are not held back.
    let (other, trace) = orchestrator.orchestrate_traced(&call, &as_client("b"));
    assert_eq!(other["Z22K1"], "ABC", "{other}");
    assert!(trace.cacheable(), "{trace:?}");
    let anonymous = run(&orchestrator, "Z10010", "abc", &CallOptions::default());
    assert_eq!(anonymous["Z22K1"], "ABC", "{anonymous}");
    scripted.release();
    for holder in holders {
        let result = holder.join().unwrap();
        assert_eq!(result["Z22K1"], "held", "{result}");
    }
    // The places were given back.
    let again = run(&orchestrator, "Z10010", "abc", &as_client("a"));
    assert_eq!(again["Z22K1"], "ABC", "{again}");
    // A recursion counts its levels against the client's places too.
    let deep = run(&orchestrator, "Z10020", "x", &as_client("a"));
    assert_eq!(
        error_limit(&deep),
        Some("client's calls from code".to_owned()),
        "{deep}"
    );
}

/// A timeout says nothing lasting about the call: code the load stopped (no executor free, or
/// cut to the reserve's time), and code that ran into its own wall time, which other calls
/// stretch. Its answer is never cached, nor a value that code answered after catching such a
/// failure of a call it made. Kept, they were given to every caller, for 60 s and 30 days.
#[test]
fn an_answer_the_load_decided_is_not_cacheable() {
    let (orchestrator, _) = setup(ReentryLimits::default());
    let call = |zid: &str| json!({"Z1K1": "Z7", "Z7K1": zid, format!("{zid}K1"): "x"});
    let (busy, trace) = orchestrator.orchestrate_traced(&call("Z10090"), &CallOptions::default());
    assert_eq!(error(&busy).unwrap()["Z5K1"], "Z558", "{busy}");
    assert!(trace.depends_on_load && !trace.cacheable(), "{trace:?}");
    // The load stopped it: a test run does not record it either.
    assert!(trace.stopped_by_load, "{trace:?}");
    let (own, trace) = orchestrator.orchestrate_traced(&call("Z10080"), &CallOptions::default());
    assert_eq!(error(&own).unwrap()["Z5K1"], "Z558", "{own}");
    assert!(!trace.cacheable(), "{trace:?}");
    // The code's own wall time: maybe shortened by the load, maybe not; a test run records it.
    assert!(!trace.stopped_by_load, "{trace:?}");
    let (caught, trace) = orchestrator.orchestrate_traced(&call("Z10220"), &CallOptions::default());
    assert_eq!(caught["Z22K1"], "caught Z558", "{caught}");
    assert!(!trace.cacheable(), "{trace:?}");
    // The plain timeout it caught was the callee's own: the caller's answer is its own, and
    // a test run records it. Such a cell went unrecorded.
    assert!(!trace.stopped_by_load, "{trace:?}");
    // No evaluator answered: nothing is known of the call.
    let (unreached, trace) =
        orchestrator.orchestrate_traced(&call("Z10230"), &CallOptions::default());
    assert!(error(&unreached).is_some(), "{unreached}");
    assert!(!trace.cacheable() && trace.stopped_by_load, "{trace:?}");
    // No evaluator runs the language at all: a lasting fact, kept.
    let (cobol, trace) = orchestrator.orchestrate_traced(&call("Z10240"), &CallOptions::default());
    assert!(error(&cobol).is_some(), "{cobol}");
    assert!(trace.cacheable(), "{trace:?}");
    // An error of the code's own is kept (briefly, by the server's cache).
    let (broken, trace) = orchestrator.orchestrate_traced(&call("Z10060"), &CallOptions::default());
    assert!(error(&broken).is_some(), "{broken}");
    assert!(trace.cacheable(), "{trace:?}");
}

/// Refuses every implementation whose ZID is `refused`.
struct Refuse(&'static str);

impl ImplementationPolicy for Refuse {
    fn allows(&self, function: &str, implementation: &ImplementationInfo) -> Result<(), String> {
        if implementation.zid.as_deref() == Some(self.0) {
            return Err(format!("{function}: {} is refused", self.0));
        }
        Ok(())
    }
}

#[test]
fn the_access_rules_apply_to_what_code_calls() {
    let (orchestrator, scripted) = setup(ReentryLimits::default());
    let options = CallOptions {
        policy: Some(Arc::new(Refuse("Z10001"))),
        ..CallOptions::default()
    };
    let result = run(&orchestrator, "Z10010", "abc", &options);
    let error = error(&result).unwrap_or_else(|| panic!("{result}"));
    assert_eq!(error["Z5K1"], "Z559", "{result}");
    // The caller ran; what it called did not.
    assert_eq!(scripted.runs.load(Ordering::SeqCst), 1);
}

/// List order that counts what it is asked and told.
#[derive(Default)]
struct Counting {
    ordered: AtomicUsize,
    observed: AtomicUsize,
    failed: AtomicUsize,
}

impl zeval_orchestrator::ImplementationSelector for Counting {
    fn order(&self, _: &str, implementations: &[ImplementationInfo]) -> Vec<usize> {
        self.ordered.fetch_add(1, Ordering::SeqCst);
        (0..implementations.len()).collect()
    }

    fn observe(&self, _: &str, _: &ImplementationInfo, run: &zeval_orchestrator::RunOutcome) {
        self.observed.fetch_add(1, Ordering::SeqCst);
        if run.failed {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn falls_through(&self) -> bool {
        true
    }
}

/// A function given inline, even one that names a stored function's ZID and
/// implementations, is neither ranked nor taught the ranking: its list is the caller's own,
/// and one request that named an implementation thousands of times recorded as many
/// failures (or fast runs) of it, for every caller of the stored function.
#[test]
fn a_function_given_inline_neither_asks_nor_teaches_the_ranking() {
    let (orchestrator, _) = setup(ReentryLimits::default());
    let counting = Arc::new(Counting::default());
    let options = CallOptions {
        selector: Some(counting.clone()),
        ..CallOptions::default()
    };
    let stored = run(&orchestrator, "Z10060", "x", &options);
    assert_eq!(stored["Z22K1"], "X", "{stored}");
    let (ordered, observed) = (
        counting.ordered.load(Ordering::SeqCst),
        counting.observed.load(Ordering::SeqCst),
    );
    assert!(
        ordered >= 1 && observed >= 2,
        "{ordered} orders, {observed} runs"
    );
    let [(_, mut z8), ..] = function("Z10060", "Z10061", "unused");
    z8["Z8K4"] = json!(["Z14", "Z10061", "Z10061", "Z10061", "Z10062"]);
    let inline = json!({"Z1K1": "Z7", "Z7K1": z8, "Z10060K1": "x"});
    let (result, trace) = orchestrator.orchestrate_traced(&inline, &options);
    assert_eq!(result["Z22K1"], "X", "{result}");
    // Still a call of Z10060 for what depends on it (`[cache] uncacheable` names functions).
    assert!(
        trace.dependencies.iter().any(|zid| zid == "Z10060"),
        "{trace:?}"
    );
    assert_eq!(counting.ordered.load(Ordering::SeqCst), ordered);
    assert_eq!(counting.observed.load(Ordering::SeqCst), observed);
}

/// An argument that fails (here a Boolean where the function takes a string) is the
/// caller's: no implementation ran, and the ranking hears nothing. It was evaluated inside
/// each implementation's run, so every code implementation failed in turn and each failure
/// was counted against it: anonymous calls with a bad argument ranked another function's
/// implementations down for every caller.
#[test]
fn an_argument_that_fails_teaches_the_ranking_nothing() {
    let (orchestrator, scripted) = setup(ReentryLimits::default());
    let counting = Arc::new(Counting::default());
    let options = CallOptions {
        selector: Some(counting.clone()),
        ..CallOptions::default()
    };
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10060",
                      "Z10060K1": {"Z1K1": "Z40", "Z40K1": "Z41"}});
    let result = orchestrator.orchestrate(&call, &options);
    let refused = error(&result).unwrap_or_else(|| panic!("{result}"));
    assert_eq!(refused["Z5K1"], "Z506", "{result}");
    assert_eq!(scripted.runs.load(Ordering::SeqCst), 0);
    assert_eq!(counting.observed.load(Ordering::SeqCst), 0, "{result}");
    // A composition (Z10101, first of two) reads its argument as it goes: the same.
    let composed = json!({"Z1K1": "Z7", "Z7K1": "Z10100",
                          "Z10100K1": {"Z1K1": "Z40", "Z40K1": "Z41"}});
    let result = orchestrator.orchestrate(&composed, &options);
    let refused = error(&result).unwrap_or_else(|| panic!("{result}"));
    assert_eq!(refused["Z5K1"], "Z506", "{result}");
    assert_eq!(counting.observed.load(Ordering::SeqCst), 0, "{result}");
    // A good argument: both implementations run ("broken" fails, "upper" answers), and
    // the ranking hears both.
    let good = run(&orchestrator, "Z10060", "x", &options);
    assert_eq!(good["Z22K1"], "X", "{good}");
    assert_eq!(counting.observed.load(Ordering::SeqCst), 2);
    assert_eq!(counting.failed.load(Ordering::SeqCst), 1);
}

/// List order that keeps how long each run took.
#[derive(Default)]
struct Timing(std::sync::Mutex<Vec<(String, std::time::Duration)>>);

impl zeval_orchestrator::ImplementationSelector for Timing {
    fn order(&self, _: &str, implementations: &[ImplementationInfo]) -> Vec<usize> {
        (0..implementations.len()).collect()
    }

    fn observe(&self, _: &str, run_of: &ImplementationInfo, run: &zeval_orchestrator::RunOutcome) {
        let zid = run_of.zid.clone().unwrap_or_default();
        self.0.lock().unwrap().push((zid, run.duration));
    }
}

/// A composition's time is its own: an argument it reads (evaluated as it goes, inside its
/// run) is the caller's, as code's is (evaluated before its run starts). Counted, an
/// anonymous caller who passed a slow argument made the composition look as slow as the
/// argument, for every caller's ranking: here 300 ms for a composition of a few.
#[test]
fn a_compositions_time_leaves_out_its_arguments() {
    let (orchestrator, _) = setup(ReentryLimits::default());
    let timing = Arc::new(Timing::default());
    let options = CallOptions {
        selector: Some(timing.clone()),
        ..CallOptions::default()
    };
    let slow_argument = json!({"Z1K1": "Z7", "Z7K1": "Z10270", "Z10270K1": "x"});
    let call = json!({"Z1K1": "Z7", "Z7K1": "Z10260", "Z10260K1": slow_argument});
    let started = std::time::Instant::now();
    let result = orchestrator.orchestrate(&call, &options);
    let took = started.elapsed();
    assert_eq!(result["Z22K1"], "X", "{result}");
    assert!(took >= std::time::Duration::from_millis(300), "{took:?}");
    let runs = timing.0.lock().unwrap().clone();
    eprintln!("the call: {took:?}; the composition's run: {runs:?}");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].0, "Z10261");
    assert!(
        runs[0].1 < std::time::Duration::from_millis(150),
        "the composition was timed at {:?}, its argument's 300 ms in",
        runs[0].1
    );
}

/// Code that used its whole time limit while the request had time left has failed: the call
/// falls through to the next implementation and the ranking hears a failure. A Z558 of the
/// load (no executor free) is not the code's: no fall-through, no failure. (The plain Z558
/// was taken for the request's own limit: no fall-through, and a success for the ranking.)
#[test]
fn code_that_runs_into_its_own_time_limit_falls_through_and_the_load_does_not() {
    let (orchestrator, _) = setup(ReentryLimits::default());
    let counting = Arc::new(Counting::default());
    let options = CallOptions {
        selector: Some(counting.clone()),
        ..CallOptions::default()
    };
    let own = run(&orchestrator, "Z10080", "x", &options);
    assert_eq!(own["Z22K1"], "X", "{own}");
    assert_eq!(counting.failed.load(Ordering::SeqCst), 1);
    let load = run(&orchestrator, "Z10090", "x", &options);
    let stopped = error(&load).unwrap_or_else(|| panic!("{load}"));
    assert_eq!(stopped["Z5K1"], "Z558", "{load}");
    assert_eq!(counting.failed.load(Ordering::SeqCst), 1);
    // A composition whose call ended so has failed (and, as a composition, answers it).
    let composed = run(&orchestrator, "Z10100", "x", &options);
    let failed = error(&composed).unwrap_or_else(|| panic!("{composed}"));
    assert_eq!(failed["Z5K1"], "Z558", "{composed}");
    assert_eq!(counting.failed.load(Ordering::SeqCst), 2);
}
