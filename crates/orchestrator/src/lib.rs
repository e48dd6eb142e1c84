//! The orchestrator: resolves a Wikifunctions function call (Z7) to a Z22 result (spec §2).
//!
//! It owns request checks (normalization, the Z7 check, static validation), argument
//! binding, the evaluation strategy (frames, call-by-need, lexical closures, eager deep
//! evaluation), the 28 built-in functions and the built-in validators, type checks, and the
//! result's metadata. Objects come from a [`zeval_store::ObjectSource`]; code
//! implementations go to a [`CodeEvaluator`] chosen per programming language. It runs no
//! code and serves no HTTP itself.
//!
//! Limits (see [`OrchestratorConfig`]): a per-request deadline (default 20 s) and a maximum
//! depth of nested function calls (default [`DEFAULT_MAX_DEPTH`]), so a user's recursion can
//! never overflow the Rust stack; calls from code back to the orchestrator (`W.Call`) run
//! inside the request, with limits of their own ([`reentry`]).

mod answer;
mod args;
mod budget;
mod builtins;
mod call;
pub use call::with_room_for_stored_objects;
pub mod code;
mod engine;
mod evaluated;
mod frame;
mod metadata;
mod node;
pub mod reentry;
mod resolver;
pub mod trace;
mod types;
mod validation;

use std::sync::Arc;
use std::time::{Duration, Instant};

use zeval_store::ObjectSource;
use zeval_zobject::Value;
use zeval_zobject::build::{failure, set_envelope_metadata, type_zid, z6, z22};
use zeval_zobject::depth::drop_iteratively;
use zeval_zobject::error::{quote, z5, z5_untyped};

pub use answer::Answer;
pub use budget::{
    BudgetLimits, DEFAULT_MAX_REQUEST_MEMORY_BYTES, DEFAULT_MAX_STEPS, DEFAULT_MAX_VALUE_DEPTH,
    DEFAULT_MAX_VALUE_NODES, MAX_ANSWER_TEXT_BYTES, MAX_METADATA_VALUE_BYTES,
    MAX_METADATA_VALUE_DEPTH, MAX_QUOTED_VALUE_BYTES, MAX_RECEIVED_METADATA_DEPTH,
    STACK_BYTES_PER_VALUE_LEVEL,
};
pub use code::{
    CodeCall, CodeEvaluator, EvaluatorFailure, EvaluatorRegistry, FirstImplementationSelector,
    ImplementationInfo, ImplementationPolicy, ImplementationSelector, NO_EVALUATOR_FOR, RunOutcome,
    SecondImplementationSelector, is_missing_evaluator, signature_of,
};

pub use trace::{NONDETERMINISTIC_BUILTINS, Outcome, Trace};

pub use reentry::{NestedCaller, ReentryLimits};

use answer::Z22;
use engine::{Engine, Fail};
use node::Node;

/// The default deepest nesting of function calls one request may reach. Calls in tail
/// position (a composition's body, If's branch) take no level, so only recursion that
/// still has work to do after the recursive call nests. Each level takes about 2.5 KiB of
/// (heap-grown) stack and is charged 4 KiB against the request's memory budget, so this
/// bounds the stack to about 100 MiB and the memory budget usually stops a runaway
/// recursion first.
pub const DEFAULT_MAX_DEPTH: usize = 40_000;

/// The default per-request deadline: the original's route timer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings shared by every request.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// The per-request deadline; past it the answer is Z558 "Function call timed out".
    pub timeout: Duration,
    /// The deepest nesting of function calls; past it the request fails with a Z507.
    pub max_depth: usize,
    /// The rest of each request's budget: value size and depth, steps, memory.
    pub budget: BudgetLimits,
    /// How code may call other functions (`W.Call`): depth and count ([`reentry`]).
    pub reentry: ReentryLimits,
    /// The name `orchestrationHostname` reports (not the machine's host name, which says
    /// more about the deployment than a caller needs to know).
    pub instance_name: String,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            timeout: DEFAULT_TIMEOUT,
            max_depth: DEFAULT_MAX_DEPTH,
            budget: BudgetLimits::default(),
            reentry: ReentryLimits::default(),
            instance_name: default_instance_name().to_owned(),
        }
    }
}

pub use zeval_zobject::metadata_format::default_instance_name;

/// Per-request options.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// Run static validation first (the request's `doValidate`).
    pub do_validate: bool,
    /// Answer in normal form instead of canonical form.
    pub return_normal: bool,
    /// The implementation selector (default: list order).
    pub selector: Option<Arc<dyn ImplementationSelector>>,
    /// A deadline shorter or longer than the configured one.
    pub timeout: Option<Duration>,
    /// The access rules for this request; `None` lets every implementation run.
    pub policy: Option<Arc<dyn ImplementationPolicy>>,
    /// The caller reads only the answer's value or its error ([`Answer::into_result`], as a
    /// tester's call and its validator do). Code evaluators are told so
    /// ([`CodeCall::value_only`]) and may leave out every metadata entry but `errors`; a code
    /// call below the request's top is told so whatever this says.
    pub value_only: bool,
    /// Who sent the request (the server's per-client key: a token or an address), for the
    /// limits counted across a client's requests ([`ReentryLimits::max_per_client`]);
    /// `None`: counted for nobody.
    pub client: Option<Arc<str>>,
}

/// The orchestrator: an object source, the evaluators, and the limits.
pub struct Orchestrator {
    source: Arc<dyn ObjectSource>,
    evaluators: EvaluatorRegistry,
    config: OrchestratorConfig,
    /// Built-in implementations whose answers are never cached ([`trace`]).
    pub(crate) nondeterministic: Vec<String>,
    /// Calls from code in progress, by client ([`ReentryLimits::max_per_client`]).
    pub(crate) client_calls: reentry::ClientCalls,
}

impl Orchestrator {
    /// An orchestrator fetching objects from `source` and running code through
    /// `evaluators`.
    pub fn new(
        source: Arc<dyn ObjectSource>,
        evaluators: EvaluatorRegistry,
        config: OrchestratorConfig,
    ) -> Self {
        Orchestrator {
            source,
            evaluators,
            config,
            nondeterministic: NONDETERMINISTIC_BUILTINS
                .iter()
                .map(|id| (*id).to_owned())
                .collect(),
            client_calls: Default::default(),
        }
    }

    /// Replaces the list of nondeterministic built-in implementations (by ZID, e.g. `Z966`)
    /// whose running makes an answer uncacheable (default [`NONDETERMINISTIC_BUILTINS`]).
    pub fn with_nondeterministic_builtins<S: Into<String>>(
        mut self,
        ids: impl IntoIterator<Item = S>,
    ) -> Self {
        self.nondeterministic = ids.into_iter().map(Into::into).collect();
        self
    }

    /// The settings.
    pub fn config(&self) -> &OrchestratorConfig {
        &self.config
    }

    /// Orchestrates one request (spec §2.2) and returns its Z22: canonical, unless
    /// `return_normal` is set or canonicalization fails.
    pub fn orchestrate(&self, input: &Value, options: &CallOptions) -> Value {
        self.answer(input, options).into_value()
    }

    /// [`Self::orchestrate`], also reporting what the evaluation read and whether its answer
    /// may be cached ([`Trace`]).
    pub fn orchestrate_traced(&self, input: &Value, options: &CallOptions) -> (Value, Trace) {
        let (answer, trace) = self.answer_traced(input, options);
        (answer.into_value(), trace)
    }

    /// [`Self::orchestrate`]'s answer before it is joined into one tree: write it with
    /// [`Answer::to_json`] to skip the tree (`answer`).
    pub fn answer(&self, input: &Value, options: &CallOptions) -> Answer {
        self.orchestrate_inner(input, options, false).0
    }

    /// [`Self::answer`] with its [`Trace`].
    pub fn answer_traced(&self, input: &Value, options: &CallOptions) -> (Answer, Trace) {
        let (answer, trace) = self.orchestrate_inner(input, options, true);
        let trace = trace.unwrap_or_else(|| Trace {
            dependencies: Vec::new(),
            outcome: Outcome::Error,
            nondeterministic: None,
            depends_on_load: false,
            stopped_by_load: false,
        });
        (answer, trace)
    }

    fn orchestrate_inner(
        &self,
        input: &Value,
        options: &CallOptions,
        traced: bool,
    ) -> (Answer, Option<Trace>) {
        let start = metadata::Start::now();
        let deadline = Instant::now() + options.timeout.unwrap_or(self.config.timeout);
        let default_selector = FirstImplementationSelector;
        let selector: &dyn ImplementationSelector = match &options.selector {
            Some(s) => s.as_ref(),
            None => &default_selector,
        };
        let budget = budget::install_or_share(self.config.budget, deadline);
        budget.set_client(options.client.clone());
        let policy = options.policy.as_deref();
        let engine = Engine::new(self, selector, policy, options.do_validate, deadline)
            .value_only(options.value_only);
        // Every wait of the store on this thread (approvals, the ranking's figures, compiled
        // artifacts, not only fetches) ends by the deadline too.
        let outcome = zeval_store::call_deadline::within(deadline, || engine.run_request(input));
        let trace = |outcome| {
            traced.then(|| Trace {
                dependencies: {
                    let mut read = engine.resolver.dependencies();
                    for zid in policy
                        .map(|policy| policy.objects_read())
                        .unwrap_or_default()
                    {
                        if !read.contains(&zid) {
                            read.push(zid);
                        }
                    }
                    read
                },
                outcome,
                nondeterministic: engine.nondeterministic().map(str::to_owned),
                depends_on_load: engine.depends_on_load(),
                stopped_by_load: engine.stopped_by_load(),
            })
        };
        let Some(result) = outcome else {
            // Past the deadline: how far it got depends on the load, among other things.
            engine.note_timeout();
            return (Answer::from_value(timed_out()), trace(Outcome::Timeout));
        };
        let trace = trace(match zeval_zobject::build::envelope_error(&result) {
            Some(_) => Outcome::Error,
            None => Outcome::Success,
        });
        drop(engine);
        let entries = start.texts(budget.peak_bytes(), &self.config.instance_name);
        drop(budget);
        (Answer::new(result, entries, !options.return_normal), trace)
    }
}

/// A failed Z22 whose metadata is the bare error. Every caller of `run_request` adds the
/// orchestration entries, which turn it into the `{errors: error}` map `failure` builds, so
/// building that map here first (and, for a canonical answer, compacting it) was wasted.
fn failed(error: Value) -> Value {
    z22(zeval_zobject::build::void(), error)
}

/// The original's timeout answer: normal form, no orchestration metadata.
fn timed_out() -> Value {
    failure(z5_untyped("Z558", "Function call timed out"))
}

impl Engine<'_> {
    /// The request pipeline; `None` when the deadline passed.
    fn run_request(&self, input: &Value) -> Option<Z22> {
        if type_zid(input) == Some("Z5") {
            return Some(Z22::Built(z22(zeval_zobject::build::void(), input.clone())));
        }
        // Built once and never copied: the answer is written from it (a copy, then dropping
        // it, was a third of such a request, 2026-12-07).
        static NOT_A_FUNCTION_CALL: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
            failed(z5(
                "Z539",
                [z6("The provided object is not a function call")],
            ))
        });
        let not_a_function_call = || Z22::Constant(&NOT_A_FUNCTION_CALL);
        // A string normalizes to a Z6 or Z9 and an array to a typed list, never to a Z7: once
        // normalize's checks pass, the answer is known without building the normal form.
        if matches!(input, Value::String(_) | Value::Array(_)) {
            return Some(match zeval_zobject::normalize::check(input) {
                Ok(()) => not_a_function_call(),
                Err(e) => Z22::Built(failed(e)),
            });
        }
        let normal = match zeval_zobject::normalize(input) {
            Ok(n) => n,
            Err(e) => return Some(Z22::Built(failed(e))),
        };
        if !is_function_call(&normal) {
            drop_iteratively(normal);
            return Some(not_a_function_call());
        }
        let call = Node::from_json(&normal, &None);
        let outcome = (|| {
            if self.do_validate()
                && let Some(error) = self.static_validation(&call)?
            {
                return Ok(failed(error));
            }
            let env = self.execute(&call, true, true)?;
            let meta = env.meta.unwrap_or_else(zeval_zobject::build::void);
            Ok(z22(env.value.to_answer_json()?, meta))
        })();
        match outcome {
            Ok(z22) => Some(Z22::Built(z22)),
            Err(Fail::Error(e)) => Some(Z22::Built(failed(e))),
            Err(Fail::Crash(message)) | Err(Fail::Evaluator(message)) => {
                // The store or an evaluator failed (busy, unreachable): not the call's doing.
                self.note_load();
                Some(Z22::Built(failed(crash_error(input, &message))))
            }
            Err(Fail::Timeout) => None,
        }
    }

    /// Orchestrates a call inside this request (Z823), with the same source, evaluators,
    /// deadline and validation flag; the answer is the normal Z22 with its metadata.
    pub(crate) fn orchestrate_nested(&self, call: &Value) -> engine::R<Value> {
        self.orchestrate_nested_until(call, self.deadline())
    }

    /// [`Engine::orchestrate_nested`] with its own deadline, never later than this request's
    /// (a call from code ends by the calling code's deadline, see [`reentry`]).
    pub(crate) fn orchestrate_nested_until(
        &self,
        call: &Value,
        deadline: Instant,
    ) -> engine::R<Value> {
        let start = metadata::Start::now();
        let nested = Engine::new(
            self.orchestrator,
            self.selector,
            self.policy,
            self.do_validate(),
            (Instant::now() + self.remaining()).min(deadline),
        )
        .value_only(self.is_value_only());
        // A call nested through Z823 counts towards the same depth limit.
        nested.inherit_depth(self);
        let budget = budget::install_or_share(self.orchestrator.config.budget, self.deadline());
        let outcome = zeval_store::call_deadline::within(nested.deadline(), || {
            nested.run_request(call).map(Z22::into_owned)
        });
        self.absorb(&nested);
        let Some(mut result) = outcome else {
            return Err(Fail::Timeout);
        };
        let instance = &self.orchestrator.config.instance_name;
        for (key, value) in start.entries(budget.peak_bytes(), instance) {
            set_envelope_metadata(&mut result, key, value);
        }
        Ok(result)
    }

    /// The whole persistent object of a built-in (labels included), as Z828 returns it:
    /// from the object source when it has it, else from the catalogue.
    pub(crate) fn full_definition(&self, zid: &str) -> Option<Node> {
        let from_source = self.resolver.fetch_one(zid).ok().flatten();
        let z2 = from_source.or_else(|| zeval_catalogue::get(zid).cloned())?;
        resolver::node_of_stored(z2).ok()
    }
}

/// The Z7 check of the pipeline: a normal Z7 whose `Z7K1` is a Z8 literal, reference, call
/// or argument reference, with only key-shaped keys.
fn is_function_call(v: &Value) -> bool {
    let Some(m) = v.as_object() else { return false };
    if type_zid(v) != Some("Z7") || m.get("Z1K1").is_some_and(Value::is_string) {
        return false;
    }
    let Some(f) = m.get("Z7K1") else { return false };
    let function_ok = matches!(type_zid(f), Some("Z8" | "Z9" | "Z7" | "Z18"));
    function_ok
        && m.keys()
            .all(|k| k == "Z1K1" || zeval_zobject::ident::is_key(k))
}

/// What the original answers when orchestration throws.
fn crash_error(input: &Value, message: &str) -> Value {
    let inner = z5(
        "Z500",
        [z6(format!(
            "Call tuples failed in returnOnFirstError. Error: {message}"
        ))],
    );
    z5("Z507", [quote(input.clone()), quote(inner)])
}
