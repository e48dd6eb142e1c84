//! Code implementations (Z14K3): the interface to evaluators (spec §2.7).
//!
//! The orchestrator does not run code itself. It hands a [`CodeCall`] to the
//! [`CodeEvaluator`] registered for the call's programming language (the `Z61K1` string,
//! matched exactly, as the original does). An [`EvaluatorFailure`] means "this evaluator could
//! not be reached or has no such language": the orchestrator then tries the next
//! implementation (§2.4 step 4). Any answer is final, including an error envelope.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use zeval_zobject::Value;

/// One call of a code implementation.
#[derive(Debug, Clone)]
pub struct CodeCall {
    /// The programming language, as written in `Z61K1` (e.g. `javascript`, `python-3`).
    pub language: String,
    /// The function's ZID (`Z8K5`), which is also the name the code must define.
    pub function_name: String,
    /// The code (`Z16K2`).
    pub code: String,
    /// The evaluated arguments in normal form, by their full key (`Z1000K1`), in declaration
    /// order.
    pub arguments: Vec<(String, Value)>,
    /// The whole request in the original's JSON shape: a normal Z7 whose `Z7K1` is the
    /// function with only this implementation in `Z8K4`, plus the arguments. `Null` for an
    /// evaluator that does not read it ([`CodeEvaluator::reads_function_call`]).
    pub zobject: Value,
    /// Time left before the orchestration deadline.
    pub remaining_time: Duration,
    /// Nothing of the answer's metadata but `errors` will be read: the call is below the
    /// request's top, or the caller reads only the value ([`crate::CallOptions::value_only`]).
    /// An evaluator may leave the rest out instead of building it (the server's own evaluator
    /// does; a remote one is asked for everything).
    pub value_only: bool,
    /// Who sent the request ([`crate::CallOptions::client`]), for what an evaluator shares
    /// among clients (the server's own evaluator gives each client one place in line for its
    /// call-time compiler). `None` outside a request or for a request without one.
    pub client: Option<Arc<str>>,
}

/// The evaluator could not be used; the orchestrator tries the next implementation. The
/// message becomes the Z507 text when every implementation fails.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct EvaluatorFailure(pub String);

/// Something that runs code implementations.
pub trait CodeEvaluator: Send + Sync {
    /// Whether this evaluator reads [`CodeCall::zobject`] for code in `language`. Building
    /// it copies the function object out of the orchestrator's nodes, so an evaluator that
    /// runs from the code and the arguments alone says no and gets `Null` there.
    fn reads_function_call(&self, language: &str) -> bool {
        let _ = language;
        true
    }

    /// Runs the call and returns the evaluator's Z22 in normal form, used as it is
    /// (metadata included).
    fn evaluate(&self, call: &CodeCall) -> Result<Value, EvaluatorFailure>;

    /// [`CodeEvaluator::evaluate`], with `nested` answering the calls the code makes to other
    /// functions (`W.Call`, see [`crate::reentry`]) while it waits. The default ignores
    /// `nested`: the code's calls then fail as in the original's non-reentrant executor.
    fn evaluate_reentrant(
        &self,
        call: &CodeCall,
        nested: &mut dyn crate::reentry::NestedCaller,
    ) -> Result<Value, EvaluatorFailure> {
        let _ = nested;
        self.evaluate(call)
    }
}

/// Which evaluator handles which programming language.
#[derive(Clone, Default)]
pub struct EvaluatorRegistry {
    by_language: HashMap<String, Arc<dyn CodeEvaluator>>,
}

impl EvaluatorRegistry {
    /// An empty registry: every code implementation is an evaluator failure.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes each of `languages` (exact `Z61K1` strings) to `evaluator`.
    pub fn register<S: AsRef<str>>(
        &mut self,
        languages: impl IntoIterator<Item = S>,
        evaluator: Arc<dyn CodeEvaluator>,
    ) -> &mut Self {
        for language in languages {
            self.by_language
                .insert(language.as_ref().to_string(), evaluator.clone());
        }
        self
    }

    /// The evaluator for `language`, if any.
    pub fn get(&self, language: &str) -> Option<&Arc<dyn CodeEvaluator>> {
        self.by_language.get(language)
    }

    /// The languages the original's default configuration routes to its evaluator
    /// (spec §2.1): the JavaScript and Python strings.
    pub const DEFAULT_LANGUAGES: [&'static str; 12] = [
        "javascript-es2020",
        "javascript-es2019",
        "javascript-es2018",
        "javascript-es2017",
        "javascript-es2016",
        "javascript-es2015",
        "javascript",
        "python-3-9",
        "python-3-8",
        "python-3-7",
        "python-3",
        "python",
    ];
}

/// In which order to try a function's implementations.
pub trait ImplementationSelector: Send + Sync {
    /// The indices of `implementations` (each a normal Z14, with its ZID when it was given
    /// by reference) in the order to try them. Indices left out are never tried.
    fn order(&self, function_zid: &str, implementations: &[ImplementationInfo]) -> Vec<usize>;

    /// [`ImplementationSelector::order`] for a call that must go on by `deadline`: a
    /// selector that reads figures (from a store) stops reading there and answers with what
    /// it has. The default asks [`ImplementationSelector::order`].
    fn order_within(
        &self,
        function_zid: &str,
        implementations: &[ImplementationInfo],
        deadline: std::time::Instant,
    ) -> Vec<usize> {
        let _ = deadline;
        self.order(function_zid, implementations)
    }

    /// [`ImplementationSelector::order_within`] for a request that runs nothing (a plan of
    /// what a call would run): a selector that gives some calls to implementations it knows
    /// little about does not count it as one, so that such requests, anyone's and cheap,
    /// cannot take those turns from calls. The default asks `order_within`.
    fn order_without_exploring(
        &self,
        function_zid: &str,
        implementations: &[ImplementationInfo],
        deadline: std::time::Instant,
    ) -> Vec<usize> {
        self.order_within(function_zid, implementations, deadline)
    }

    /// Told after each implementation of a persistent function with more than one
    /// implementation ran (built-ins excepted):
    /// how long it took and whether it failed. A ranking selector learns from it; the
    /// default forgets it.
    fn observe(&self, function_zid: &str, implementation: &ImplementationInfo, run: &RunOutcome) {
        let _ = (function_zid, implementation, run);
    }

    /// Whether a code implementation that answers an error (a Z5 from the evaluator or from
    /// the code) makes the orchestrator try the next implementation for this call. The
    /// original does not (its answer is the first implementation's, error or not), so the
    /// default is `false`; a ranking selector turns it on, and when every implementation
    /// fails the answer is the first one's error.
    fn falls_through(&self) -> bool {
        false
    }
}

/// How a [`EvaluatorFailure`] begins when no evaluator runs the implementation's language at
/// all: a lasting fact about the implementation here, not the load's
/// ([`is_missing_evaluator`]).
pub const NO_EVALUATOR_FOR: &str = "No evaluator is available for";

/// Whether an evaluator failure says that no evaluator runs the language ([`NO_EVALUATOR_FOR`]).
pub fn is_missing_evaluator(message: &str) -> bool {
    message.starts_with(NO_EVALUATOR_FOR)
}

/// How one implementation's run went, as [`ImplementationSelector::observe`] hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    /// Wall time of the run, nested calls included.
    pub duration: Duration,
    /// Whether it answered an error (or its evaluator could not run it).
    pub failed: bool,
}

/// Whether an implementation may run in this request: the access rules, checked by the
/// orchestrator each time it is about to run an implementation, whatever reached it (the
/// top-level call, a nested call, an inline function, a type validator, a call that code
/// returned, an object fetched from the wiki). The server hands one in per request
/// ([`crate::CallOptions::policy`]); without one everything may run.
pub trait ImplementationPolicy: Send + Sync {
    /// `Ok` if `implementation` of `function_zid` may run; else the message of the Z559
    /// "No permission to run functions" the call fails with. Asked at every run, on whatever
    /// stack a recursion has left: a stored object a check needs is best read, once, in
    /// [`Self::allows_as_read`], which is given room for one.
    fn allows(&self, function_zid: &str, implementation: &ImplementationInfo)
    -> Result<(), String>;

    /// `Ok` if a function not called by its own identity (given inline, or stored under
    /// another ZID than the `Z8K5` it names), whose identity is `function_zid` and whose
    /// signature is `signature`, may run implementations other than built-ins. `signature` is `{"Z8K1": [[type, key], …], "Z8K2": type}` with every type
    /// in canonical form. Asked once per such call, before the first implementation that
    /// is not a built-in; the default allows everything.
    fn allows_signature(&self, function_zid: &str, signature: &Value) -> Result<(), String> {
        let _ = (function_zid, signature);
        Ok(())
    }

    /// `Ok` if function `function_zid`, called by its own identity, may run implementations
    /// under `signature`, its signature as this request read it (in the form
    /// [`Self::allows_signature`] is given). Asked once per request, nested ones apart, and
    /// function, before [`Self::allows`], when [`Self::checks_reads`]. A policy that keeps
    /// the signature an implementation was approved under checks here that the copy about
    /// to run declares the one it checks approvals against: a request's copy of a function
    /// may be older than the store's. The default allows everything.
    fn allows_signature_as_read(
        &self,
        function_zid: &str,
        signature: &Value,
    ) -> Result<(), String> {
        let _ = (function_zid, signature);
        Ok(())
    }

    /// `Ok` if stored implementation `zid` may run as this request read it: `read` is its
    /// normal form, as fetched for this request (or a nested one, which reads anew). Asked
    /// once per request, nested ones apart, and implementation, before [`Self::allows`]. A
    /// policy that approves stored revisions checks here that the copy about to run is the
    /// revision it approved: a request's copy may be older than the store's (a cluster's
    /// node reads again only after seconds) or newer than what an earlier check read (an
    /// edit during a long request). The default allows everything.
    fn allows_as_read(&self, zid: &str, read: &Value) -> Result<(), String> {
        let _ = (zid, read);
        Ok(())
    }

    /// Whether [`Self::allows_as_read`] checks anything: when not, the orchestrator does not
    /// make the copy it would be given. The default: yes (a policy that checks nothing says
    /// so, rather than one that checks being skipped for want of saying it).
    fn checks_reads(&self) -> bool {
        true
    }

    /// Whether a check so far could not be made (the store busy or failing) and was answered
    /// as a refusal: the call's answer then depends on the load and is never kept
    /// ([`crate::Trace::depends_on_load`]). The default makes no such checks.
    fn could_not_check(&self) -> bool {
        false
    }

    /// The stored objects the policy read to decide, beyond those the call itself read (the
    /// types an approval pinned): an answer kept in the result cache depends on them too
    /// ([`crate::Trace::dependencies`]), so that a write of one makes it miss. The default
    /// reads none.
    fn objects_read(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The signature of a canonical Z8, as [`ImplementationPolicy::allows_signature`] is given
/// it (and as an approval keeps it).
pub use zeval_zobject::signature::signature_of;

/// What a selector knows about one implementation.
#[derive(Debug, Clone)]
pub struct ImplementationInfo {
    /// The Z14's ZID when `Z8K4` listed it by reference.
    pub zid: Option<String>,
    /// `BuiltIn`, `Composition` or `Evaluated`.
    pub kind: &'static str,
}

/// The original's default: list order.
#[derive(Debug, Clone, Copy, Default)]
pub struct FirstImplementationSelector;

impl ImplementationSelector for FirstImplementationSelector {
    fn order(&self, _: &str, implementations: &[ImplementationInfo]) -> Vec<usize> {
        (0..implementations.len()).collect()
    }
}

/// The conformance suite's selector: the second implementation first, then the first, then
/// the rest in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecondImplementationSelector;

impl ImplementationSelector for SecondImplementationSelector {
    fn order(&self, _: &str, implementations: &[ImplementationInfo]) -> Vec<usize> {
        let n = implementations.len();
        if n < 2 {
            return (0..n).collect();
        }
        [1, 0].into_iter().chain(2..n).collect()
    }
}
