//! Reentrant calls: code implementations calling other functions (`W.Call` in Python and
//! JavaScript), run inside the request that ran the code.
//!
//! The orchestrator hands the evaluator a [`NestedCaller`] with each code call
//! ([`crate::CodeEvaluator::evaluate_reentrant`]). The evaluator calls it on the
//! orchestrator's thread while the code waits, and each call is orchestrated as a call nested
//! in the request (as Z823 does): the same object source, selector, access rules
//! ([`crate::ImplementationPolicy`], checked for whatever the nested call runs), deadline,
//! budget (steps, memory, value size) and call depth.
//!
//! Two limits of their own bound how code may call back ([`ReentryLimits`]), each failing the
//! nested call with a Z590 "Request budget exceeded" naming the limit, which the code sees
//! as an exception and, if it does not catch it, becomes the error of the call:
//!
//! | limit | default | `zeval.toml` | Z590K1 |
//! |---|---|---|---|
//! | calls nested through code inside one another | [`DEFAULT_MAX_REENTRANT_DEPTH`] | `limits.max_reentrant_depth` | `reentrant depth` |
//! | calls made from code in one request | [`DEFAULT_MAX_NESTED_CALLS`] | `limits.max_nested_calls` | `nested calls` |
//! | calls from code in progress in all the requests of one client ([`crate::CallOptions::client`]) | [`DEFAULT_MAX_REENTRANT_CALLS_PER_CLIENT`] | `limits.max_reentrant_calls_per_client` | `client's calls from code` |
//!
//! The depth limit is what keeps a recursion through `W.Call` from holding one waiting guest
//! (a sandbox pool slot, or a worker process, and a thread's stack) per level without end:
//! the default stays well below the 32 slots of a guest's pool, so one request cannot wait on
//! itself for a slot.
//!
//! The per-client limit is what keeps one client's requests, each within the depth limit,
//! from holding every executor: each call from code in progress is a guest waiting in an
//! executor for its answer, so a client with 8 requests in flight, each 8 calls deep, held
//! 72 executors, more than the 32 of the default pool, and everyone else's calls waited for
//! one until their deadline. Counted per client, a client holds at most its requests'
//! running guests (one each) and this many waiting ones.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use zeval_zobject::Value;
use zeval_zobject::build::{envelope_error, is_void, obj, z6, z9};
use zeval_zobject::error::{z5, z5_untyped};

use crate::engine::{Engine, Fail};

/// Default of [`ReentryLimits::max_depth`].
pub const DEFAULT_MAX_REENTRANT_DEPTH: usize = 8;

/// Default of [`ReentryLimits::max_calls`].
pub const DEFAULT_MAX_NESTED_CALLS: u64 = 1_000;

/// Default of [`ReentryLimits::max_per_client`]: with the server's 8 requests per client, a
/// client holds at most 16 of the default 32 executors.
pub const DEFAULT_MAX_REENTRANT_CALLS_PER_CLIENT: usize = 8;

/// The bounds of reentrant calls, per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReentryLimits {
    /// How many calls through code may be in progress inside one another (a function's
    /// code calling a function whose code calls …). Default [`DEFAULT_MAX_REENTRANT_DEPTH`].
    pub max_depth: usize,
    /// How many calls code may make in one request, in all. Default
    /// [`DEFAULT_MAX_NESTED_CALLS`].
    pub max_calls: u64,
    /// How many calls through code may be in progress at once in all the requests of one
    /// client ([`crate::CallOptions::client`]; requests without one are not counted). 0: no
    /// limit. Default [`DEFAULT_MAX_REENTRANT_CALLS_PER_CLIENT`].
    pub max_per_client: usize,
}

impl Default for ReentryLimits {
    fn default() -> Self {
        ReentryLimits {
            max_depth: DEFAULT_MAX_REENTRANT_DEPTH,
            max_calls: DEFAULT_MAX_NESTED_CALLS,
            max_per_client: DEFAULT_MAX_REENTRANT_CALLS_PER_CLIENT,
        }
    }
}

/// What answers the calls code makes back to the orchestrator.
pub trait NestedCaller {
    /// Calls `function` (a ZID) with `arguments` (normal form, by full key). The result
    /// value in normal form, or the error (a normal Z5). `deadline` is the calling code's:
    /// the nested call ends by it (or by the request's, if that is earlier).
    fn call(
        &mut self,
        function: &str,
        arguments: Vec<(String, Value)>,
        deadline: Instant,
    ) -> Result<Value, Value>;
}

/// How many reentrant calls a request has in progress and has made; kept with the request's
/// budget, so that calls nested in one another share it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    depth: Cell<usize>,
    calls: Cell<u64>,
    /// Who sent the request ([`crate::CallOptions::client`]).
    pub(crate) client: RefCell<Option<Arc<str>>>,
}

/// Calls from code in progress, by client, across all of the orchestrator's requests. An
/// entry lives while its client has a call in progress, so the map holds at most one entry
/// per request in flight.
#[derive(Debug, Default)]
pub(crate) struct ClientCalls {
    in_progress: Mutex<HashMap<Arc<str>, usize>>,
}

impl ClientCalls {
    /// Takes a place for a call of `client`, unless it has `max` in progress already.
    fn try_take<'a>(&'a self, client: &Arc<str>, max: usize) -> Option<ClientCall<'a>> {
        let mut in_progress = self.lock();
        if in_progress.get(client).copied().unwrap_or(0) >= max {
            return None;
        }
        *in_progress.entry(client.clone()).or_default() += 1;
        Some(ClientCall {
            calls: self,
            client: client.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, usize>> {
        // The map is consistent between statements: a panic elsewhere leaves it usable.
        self.in_progress.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A client's place for one call from code in progress, given back on drop.
struct ClientCall<'a> {
    calls: &'a ClientCalls,
    client: Arc<str>,
}

impl Drop for ClientCall<'_> {
    fn drop(&mut self) {
        let mut in_progress = self.calls.lock();
        if let Some(held) = in_progress.get_mut(&self.client) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                in_progress.remove(&self.client);
            }
        }
    }
}

/// The [`NestedCaller`] of one code call: nested calls run in `engine`'s request.
pub(crate) struct EngineCaller<'e, 'o> {
    pub(crate) engine: &'e Engine<'o>,
}

/// Gives a level of reentrant depth back when a nested call ends.
struct Level<'a>(&'a Counters);

impl Drop for Level<'_> {
    fn drop(&mut self) {
        self.0.depth.set(self.0.depth.get().saturating_sub(1));
    }
}

impl NestedCaller for EngineCaller<'_, '_> {
    fn call(
        &mut self,
        function: &str,
        arguments: Vec<(String, Value)>,
        deadline: Instant,
    ) -> Result<Value, Value> {
        let limits = self.engine.orchestrator.config.reentry;
        let outcome = crate::budget::with_reentry(|counters| {
            // Every attempt counts, refused ones too, so that code retrying a refused call
            // in a loop runs out of calls as well.
            let calls = counters.calls.get().saturating_add(1);
            counters.calls.set(calls);
            if calls > limits.max_calls {
                return Err(exceeded(
                    "nested calls",
                    format!(
                        "Code made more than {} calls to other functions in this request.",
                        limits.max_calls
                    ),
                ));
            }
            let depth = counters.depth.get() + 1;
            if depth > limits.max_depth {
                return Err(exceeded(
                    "reentrant depth",
                    format!(
                        "Calls from code to other functions nest more than {} levels deep.",
                        limits.max_depth
                    ),
                ));
            }
            let client = counters.client.borrow().clone();
            let _place = match client {
                Some(client) if limits.max_per_client > 0 => {
                    let calls = &self.engine.orchestrator.client_calls;
                    let Some(place) = calls.try_take(&client, limits.max_per_client) else {
                        self.engine.note_load();
                        return Err(exceeded(
                            "client's calls from code",
                            format!(
                                "This client has {} calls from code to other functions in \
                                 progress in its requests already.",
                                limits.max_per_client
                            ),
                        ));
                    };
                    Some(place)
                }
                _ => None,
            };
            counters.depth.set(depth);
            let _level = Level(counters);
            self.run(function, arguments, deadline)
        });
        // Code only runs inside a request, which always has a budget.
        outcome.unwrap_or_else(|| Err(z5("Z507", [z6("W.Call outside a request")])))
    }
}

impl EngineCaller<'_, '_> {
    /// Orchestrates `function(arguments)` inside the request.
    fn run(
        &self,
        function: &str,
        arguments: Vec<(String, Value)>,
        deadline: Instant,
    ) -> Result<Value, Value> {
        let mut call = obj([("Z1K1", z9("Z7")), ("Z7K1", z9(function))]);
        for (key, value) in arguments {
            call[key.as_str()] = value;
        }
        match self.engine.orchestrate_nested_until(&call, deadline) {
            Ok(mut z22) => {
                if let Some(error) = envelope_error(&z22)
                    && !is_void(error)
                {
                    return Err(error.clone());
                }
                // Taken, not copied: it may be as large as the request's budget allows.
                Ok(z22
                    .as_object_mut()
                    .and_then(|z22| z22.remove("Z22K1"))
                    .unwrap_or_else(|| z9("Z24")))
            }
            Err(Fail::Error(error)) => Err(error),
            // The code may catch these and answer a value: the answer still depends on the
            // load, and must not be cached as the function's.
            Err(Fail::Timeout) => {
                self.engine.note_timeout();
                Err(z5_untyped("Z558", "Function call timed out"))
            }
            Err(Fail::Crash(message)) | Err(Fail::Evaluator(message)) => {
                self.engine.note_load();
                Err(z5("Z507", [z6(message)]))
            }
        }
    }
}

/// The Z590 of a breached reentry limit.
fn exceeded(limit: &str, message: String) -> Value {
    z5("Z590", [z6(limit), z6(message)])
}
