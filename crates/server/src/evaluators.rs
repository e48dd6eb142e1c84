//! The adapters from the orchestrator to evaluators: [`InProcess`] (this process's sandbox,
//! through `zeval_evaluator::Evaluator`) and [`Remote`] (an evaluator service over HTTP, JSON
//! or Avro 0.0.4), both [`CodeEvaluator`]s, each wrapped in [`Metered`] for `/metrics`.
//!
//! Code run by [`InProcess`] may call other functions (`W.Call`): its calls go back to the
//! orchestrator's request ([`CodeEvaluator::evaluate_reentrant`]), in process or through the
//! worker processes; code run by [`Remote`] posts them to this orchestrator's callback route
//! ([`crate::reentry_api`]), which hands them back to the request.
//!
//! A remote entry lists one evaluator or several ([`crate::evaluator_pool`]: least
//! outstanding runs, health checks, fail-over of runs left unrun); languages whose entries
//! name the same URL share its endpoint, so its outstanding count is the process's.
//!
//! Which one runs a language follows `[evaluators]` in the configuration
//! ([`Config::evaluator_for`]). The orchestrator matches the `Z61K1` string exactly, so every
//! known language string is registered: the original's default list plus the codes of the
//! catalogue's programming languages (Z600–Z620).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use zeval_evaluator::{
    Encoding, Evaluator, EvaluatorConfig, ExecutorRequest, Isolation, NestedCall, NestedCalls,
    Request, WorkerSettings,
};
use zeval_orchestrator::{
    CodeCall, CodeEvaluator, EvaluatorFailure, EvaluatorRegistry, NestedCaller,
};
use zeval_zobject::Value;
use zeval_zobject::build::{envelope_error, is_void, string_value};

use crate::config::{Config, EvaluatorEndpoint, WireFormat};
use crate::evaluator_pool::{Endpoint, Pool};
use crate::metrics::Metrics;
use crate::reentry_api::Message;

/// Why the evaluators could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvaluatorSetupError {
    /// The in-process evaluator could not load its guests.
    #[error("the in-process evaluator could not start: {0}")]
    InProcess(#[from] zeval_evaluator::EvaluatorError),
}

/// This process's evaluator for `config` (the guests loaded once). With `[workers]`
/// enabled and a `worker_program` (the server's own binary, which serves as a worker with
/// the argument `worker`), guests run in confined worker processes; otherwise on this
/// process's threads.
pub fn local_evaluator(
    config: &Config,
    worker_program: Option<&std::path::Path>,
) -> Result<Evaluator, zeval_evaluator::EvaluatorError> {
    let isolation = match worker_program {
        Some(program) if config.workers.enabled => {
            let workers = &config.workers;
            Isolation::workers(WorkerSettings {
                max_workers: workers.max_workers,
                min_workers: workers.min_workers,
                kill_margin: Duration::from_millis(workers.kill_margin_ms),
                user: workers.user.clone(),
                colocate: workers.colocate,
                lone_call_spin: Duration::from_micros(workers.lone_call_spin_us),
                max_running: workers.max_running,
                running_wait: Duration::from_millis(workers.running_wait_ms),
                start_after: Duration::from_millis(workers.start_after_ms),
                max_starting: workers.max_starting,
                retire_idle_after: (workers.retire_idle_after_s > 0)
                    .then(|| Duration::from_secs(workers.retire_idle_after_s)),
                recycle_after_calls: (workers.recycle_after_calls > 0)
                    .then_some(workers.recycle_after_calls),
                reserve_workers: workers.reserve_workers,
                reserve_call_time: Duration::from_millis(workers.reserve_call_ms),
                ..WorkerSettings::new(program, vec!["worker".into()])
            })
        }
        _ => Isolation::InProcess,
    };
    let mut evaluator_config = EvaluatorConfig {
        instance_name: config.instance_name(),
        isolation,
        code_cache: config.cache.compiled_code,
        module_disk_cache: config.compiler.keep_call_time_artifacts,
        ..EvaluatorConfig::new(config.guest_dir())
    };
    evaluator_config.sandbox.fuel_metering = config.fuel_metering;
    let evaluator = Evaluator::new(evaluator_config)?;
    let store = crate::compilation::artifact_store(config);
    Ok(match crate::compilation::artifacts(config, store) {
        Some(artifacts) => evaluator.with_artifacts(artifacts),
        None => evaluator,
    })
}

/// Every language string the registry routes.
pub(crate) fn language_strings() -> Vec<String> {
    let mut languages: Vec<String> = EvaluatorRegistry::DEFAULT_LANGUAGES
        .iter()
        .map(|s| s.to_string())
        .collect();
    for number in 600..=640 {
        if let Some(code) = zeval_catalogue::programming_language_code(&format!("Z{number}"))
            && !languages.iter().any(|l| l == code)
        {
            languages.push(code.to_owned());
        }
    }
    languages
}

/// The program an in-process evaluator loaded on first use starts its workers from
/// ([`start_workers_from`]).
static WORKER_PROGRAM: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();

/// Has every in-process evaluator this process loads on first use (an orchestrator node's,
/// for the languages its `[evaluators]` leaves to itself) run its guests in workers started
/// from `program`, as `zeval serve` does. Without it such an evaluator ran them in the
/// server's own process, outside the workers' confinement (until 2026-12-06). Commands that
/// run alone (`zeval call`, `zeval test`) do not call it. Only the first call counts.
pub fn start_workers_from(program: Option<std::path::PathBuf>) {
    let _ = WORKER_PROGRAM.set(program);
}

/// The orchestrator's evaluators for `config`. Without `shared`, the in-process evaluator
/// (and its guests) is loaded on first use, so an orchestrator whose languages all run
/// remotely, or that only runs built-ins and compositions, never needs the guests; its
/// workers are those of [`start_workers_from`], if any.
///
/// `shared` is an evaluator already loaded (the one the evaluator API of the same process
/// uses), so the guests are loaded once.
pub fn registry(
    config: &Config,
    metrics: &Arc<Metrics>,
    shared: Option<Arc<Evaluator>>,
) -> Result<EvaluatorRegistry, EvaluatorSetupError> {
    let loaded = OnceLock::new();
    if let Some(evaluator) = shared {
        let _ = loaded.set(Ok(evaluator));
    }
    let shared_in_process = Arc::new(InProcess {
        config: config.clone(),
        evaluator: loaded,
    });
    let timeout = Duration::from_millis(config.limits.call_timeout_ms);
    let mut registry = EvaluatorRegistry::new();
    // One endpoint per (URL, format) and one pool per entry, shared by the languages they
    // serve.
    let mut endpoints: HashMap<(String, WireFormat), Arc<Endpoint>> = HashMap::new();
    let mut pools: HashMap<(Vec<String>, WireFormat), Arc<Remote>> = HashMap::new();
    for language in language_strings() {
        let (urls, format) = match config.evaluator_for(&language) {
            EvaluatorEndpoint::Named(_) => {
                register(&mut registry, &language, shared_in_process.clone(), metrics);
                continue;
            }
            EvaluatorEndpoint::Remote { url, format } => (vec![url.clone()], *format),
            EvaluatorEndpoint::Pool { urls, format } => (urls.clone(), *format),
        };
        let remote = pools
            .entry((urls.clone(), format))
            .or_insert_with(|| {
                let members = urls
                    .iter()
                    .map(|url| {
                        endpoints
                            .entry((url.clone(), format))
                            .or_insert_with(|| {
                                Arc::new(Endpoint::new(
                                    zeval_evaluator::client::RemoteEvaluator::new(
                                        url.clone(),
                                        encoding(format),
                                        timeout,
                                    )
                                    .with_secret(config.evaluator_secret.clone()),
                                ))
                            })
                            .clone()
                    })
                    .collect();
                Arc::new(Remote {
                    pool: Pool::new(members, config.failover.max_attempts),
                    format,
                    stack_bytes: config.limits.worker_stack_bytes,
                })
            })
            .clone();
        register(&mut registry, &language, remote, metrics);
    }
    let endpoints: Vec<Arc<Endpoint>> = endpoints.into_values().collect();
    let failover = &config.failover;
    crate::evaluator_pool::spawn_health_checks(
        &endpoints,
        Duration::from_millis(failover.health_interval_ms),
        Duration::from_millis(failover.health_timeout_ms),
    );
    crate::evaluator_pool::add_metrics(metrics, &endpoints);
    Ok(registry)
}

/// Registers `inner` for `language`, counted in `metrics`.
fn register(
    registry: &mut EvaluatorRegistry,
    language: &str,
    inner: Arc<dyn CodeEvaluator>,
    metrics: &Arc<Metrics>,
) {
    let metered: Arc<dyn CodeEvaluator> = Arc::new(Metered {
        inner,
        metrics: metrics.clone(),
    });
    registry.register([language], metered);
}

fn encoding(format: WireFormat) -> Encoding {
    match format {
        WireFormat::Json => Encoding::Json,
        WireFormat::Avro => Encoding::Avro004,
    }
}

/// The evaluator request of `call` (also what `POST /v1/plan` hands a browser).
pub(crate) fn executor_request(call: &CodeCall) -> ExecutorRequest {
    ExecutorRequest {
        reentrant: false,
        remaining_time: Some(call.remaining_time.as_secs_f64()),
        coding_language: Some(call.language.clone()),
        code_string: Some(call.code.clone()),
        function_name: Some(call.function_name.clone()),
        function_arguments: call.arguments.iter().cloned().collect(),
        // Only compiled code needs the types (its calling convention is typed).
        signature: zeval_compiler::Language::from_code(&call.language)
            .and_then(|_| call.zobject.get("Z7K1"))
            .and_then(|function| zeval_compiler::Signature::from_function(function).ok()),
        client: client_for_compiler(call),
    }
}

/// Who `call` is for, as the evaluator's call-time compiler counts clients: a SHA-256 digest
/// of the request's per-client key (which may be a bearer token, and so never leaves the
/// orchestrator as it is: not in a header to a remote evaluator, nor in a `Debug` of the
/// request), and only for a compiled language, the only calls that may compile (so no other
/// call pays for the digest).
fn client_for_compiler(call: &CodeCall) -> Option<Arc<str>> {
    use sha2::Digest;
    zeval_compiler::Language::from_code(&call.language)?;
    let client = call.client.as_deref()?;
    Some(Arc::from(hex::encode(sha2::Sha256::digest(
        client.as_bytes(),
    ))))
}

/// This process's sandbox.
pub struct InProcess {
    config: Config,
    evaluator: OnceLock<Result<Arc<Evaluator>, String>>,
}

impl InProcess {
    fn evaluator(&self) -> Result<&Evaluator, EvaluatorFailure> {
        self.evaluator
            .get_or_init(|| {
                // Loaded on a call's thread, but for every call after it: the store it opens
                // (and migrates) is not cut at this call's deadline.
                zeval_store::call_deadline::without(|| {
                    local_evaluator(
                        &self.config,
                        WORKER_PROGRAM.get().and_then(Option::as_deref),
                    )
                })
                .map(Arc::new)
                .map_err(|e| {
                    // The detail names host paths (the guest directory): the log gets it,
                    // callers get a message that says what failed without them.
                    tracing::error!(error = %e, "the in-process evaluator could not start");
                    "The evaluator of this server could not start; see the server log.".to_owned()
                })
            })
            .as_ref()
            .map(Arc::as_ref)
            .map_err(|e| EvaluatorFailure(e.clone()))
    }
}

impl CodeEvaluator for InProcess {
    /// Only compiled code reads the function, for its typed signature (`executor_request`).
    fn reads_function_call(&self, language: &str) -> bool {
        zeval_compiler::Language::from_code(language).is_some()
    }

    fn evaluate(&self, call: &CodeCall) -> Result<Value, EvaluatorFailure> {
        self.run(call, None)
    }

    /// The code's `W.Call`s go to `nested` (the orchestrator, in the same request).
    fn evaluate_reentrant(
        &self,
        call: &CodeCall,
        nested: &mut dyn NestedCaller,
    ) -> Result<Value, EvaluatorFailure> {
        self.run(call, Some(nested))
    }
}

impl InProcess {
    fn run(
        &self,
        call: &CodeCall,
        nested: Option<&mut dyn NestedCaller>,
    ) -> Result<Value, EvaluatorFailure> {
        let evaluator = self.evaluator()?;
        if zeval_evaluator::language::family_for(&call.language, evaluator.variant()).is_none() {
            // As the original orchestrator: no evaluator for the language is a failure, so
            // the next implementation is tried.
            return Err(EvaluatorFailure(format!(
                "{} {}",
                zeval_orchestrator::NO_EVALUATOR_FOR,
                call.language
            )));
        }
        let answer = match nested {
            Some(nested) => {
                let request = ExecutorRequest {
                    reentrant: true,
                    ..executor_request(call)
                };
                evaluator.answer(
                    Request::Executor(request),
                    Some(&mut ToOrchestrator(nested)),
                )
            }
            None => evaluator.answer(Request::Executor(executor_request(call)), None),
        };
        Ok(if call.value_only {
            answer.into_value_errors_only()
        } else {
            answer.into_value()
        })
    }
}

/// The evaluator's nested calls, answered by the orchestrator.
struct ToOrchestrator<'a>(&'a mut dyn NestedCaller);

impl NestedCalls for ToOrchestrator<'_> {
    fn call(&mut self, call: NestedCall, deadline: Instant) -> Result<Value, Value> {
        self.0.call(&call.function, call.arguments, deadline)
    }
}

/// Evaluator services over HTTP: one or several taking the same calls
/// ([`crate::evaluator_pool::Pool`]).
pub struct Remote {
    pool: Pool,
    format: WireFormat,
    /// The stack of the thread that sends a reentrant call and reads its answer: the
    /// orchestrating threads' (`limits.worker_stack_bytes`), since encoding and decoding
    /// recurse through values as deep as a request can make them.
    stack_bytes: usize,
}

impl CodeEvaluator for Remote {
    fn evaluate(&self, call: &CodeCall) -> Result<Value, EvaluatorFailure> {
        let request = match self.format {
            WireFormat::Json => Request::FunctionCall {
                reentrant: false,
                zobject: call.zobject.clone(),
            },
            WireFormat::Avro => Request::Executor(executor_request(call)),
        };
        // The call's remaining time bounds each HTTP call and travels as `remainingTime`.
        let deadline = Instant::now() + call.remaining_time;
        let for_client = client_for_compiler(call);
        self.pool
            .run(deadline, |client, remaining| {
                client.try_evaluate_for(&request, remaining, None, for_client.as_deref())
            })
            .map_err(EvaluatorFailure)
    }

    /// The evaluator posts the code's `W.Call`s to this orchestrator's callback route
    /// ([`crate::reentry_api`]); this thread runs each inside the request while another one
    /// waits for the evaluator's answer. Without a callback URL (no orchestrator API in this
    /// process), the call is not reentrant.
    fn evaluate_reentrant(
        &self,
        call: &CodeCall,
        nested: &mut dyn NestedCaller,
    ) -> Result<Value, EvaluatorFailure> {
        let deadline = Instant::now() + call.remaining_time;
        let Some(registration) = crate::reentry_api::callbacks().register(deadline) else {
            return self.evaluate(call);
        };
        let request = match self.format {
            WireFormat::Json => Request::FunctionCall {
                reentrant: true,
                zobject: call.zobject.clone(),
            },
            WireFormat::Avro => Request::Executor(ExecutorRequest {
                reentrant: true,
                ..executor_request(call)
            }),
        };
        let for_client = client_for_compiler(call);
        std::thread::scope(|scope| {
            let done = registration.done.clone();
            let (url, secret) = (&registration.url, &registration.secret);
            let request = &request;
            let for_client = &for_client;
            // With Rust's default 2 MiB of stack, a list 2,000 deep (Z868 of 2,000
            // characters) overflowed it and aborted the process.
            let sender = std::thread::Builder::new()
                .name("zeval-remote-call".into())
                .stack_size(self.stack_bytes)
                .spawn_scoped(scope, move || {
                    // Bounded by the call's deadline, so `Done` always comes. A run sent on
                    // to another evaluator keeps the same callback route: nested calls of
                    // the evaluator that died went nowhere, and the next one makes its own.
                    // A panic must still send `Done`: the receiver below waits for it, and
                    // its channel never closes (the registration keeps a sender).
                    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.pool.run(deadline, |client, remaining| {
                            client.try_evaluate_for(
                                request,
                                remaining,
                                Some((url, secret)),
                                for_client.as_deref(),
                            )
                        })
                    }))
                    .unwrap_or_else(|_| {
                        Err("the request to the evaluator failed: an internal error".to_owned())
                    });
                    let _ = done.send(Message::Done(answer));
                });
            if let Err(e) = sender {
                return Err(EvaluatorFailure(format!(
                    "no thread to call the evaluator: {e}"
                )));
            }
            loop {
                match registration.receiver.recv() {
                    Ok(Message::Nested {
                        call,
                        reply,
                        deadline: by,
                        turn,
                    }) => {
                        let by = by.min(deadline);
                        // A call whose poster has gone (its connection closed) is not run.
                        if !reply.is_closed() {
                            let _ = reply.send(nested.call(&call.function, call.arguments, by));
                        }
                        drop(turn);
                    }
                    Ok(Message::Done(answer)) => return answer.map_err(EvaluatorFailure),
                    Err(_) => {
                        return Err(EvaluatorFailure(
                            "the remote evaluation ended without an answer".to_owned(),
                        ));
                    }
                }
            }
        })
    }
}

/// Counts code runs by language and outcome, their latency, and the sandbox limits hit.
pub struct Metered {
    inner: Arc<dyn CodeEvaluator>,
    metrics: Arc<Metrics>,
}

impl CodeEvaluator for Metered {
    fn reads_function_call(&self, language: &str) -> bool {
        self.inner.reads_function_call(language)
    }

    fn evaluate(&self, call: &CodeCall) -> Result<Value, EvaluatorFailure> {
        self.metered(call, || self.inner.evaluate(call))
    }

    fn evaluate_reentrant(
        &self,
        call: &CodeCall,
        nested: &mut dyn NestedCaller,
    ) -> Result<Value, EvaluatorFailure> {
        self.metered(call, || self.inner.evaluate_reentrant(call, nested))
    }
}

impl Metered {
    /// Runs `evaluate` and counts it. (A run's duration includes the nested calls its code
    /// made, which are counted as runs of their own too.)
    fn metered(
        &self,
        call: &CodeCall,
        evaluate: impl FnOnce() -> Result<Value, EvaluatorFailure>,
    ) -> Result<Value, EvaluatorFailure> {
        let started = Instant::now();
        let result = evaluate();
        let language = crate::metrics::language_label(call.language.as_str());
        let outcome = match &result {
            Err(_) => "unavailable",
            Ok(z22) => match envelope_error(z22).filter(|e| !is_void(e)) {
                None => "success",
                Some(error) => {
                    if let Some(kind) = limit_kind(error) {
                        self.metrics
                            .inc("zeval_sandbox_limit_hits_total", &[("kind", kind)]);
                    }
                    "error"
                }
            },
        };
        self.metrics.inc(
            "zeval_code_runs_total",
            &[("language", language), ("outcome", outcome)],
        );
        self.metrics.observe(
            "zeval_code_run_duration_seconds",
            &[("language", language)],
            started.elapsed(),
        );
        result
    }
}

/// Which sandbox limit an evaluator error reports, from its message (the evaluator's limit
/// messages name the limit: "Function call timed out", "… exceeded the memory limit of …").
pub fn limit_kind(error: &Value) -> Option<&'static str> {
    let message = error.get("Z5K2").and_then(|m| {
        string_value(m).map(str::to_owned).or_else(|| {
            m.as_object()?
                .iter()
                .find(|(k, _)| k.as_str() != "Z1K1")
                .and_then(|(_, v)| string_value(v))
                .map(str::to_owned)
        })
    })?;
    if let Some(why) = message.strip_prefix(zeval_zobject::error::TIMED_OUT) {
        return Some(match why {
            "" => "timeout",
            // Before "busy": "Compilation did not start: the compilers stayed busy: …", and
            // "Compilation did not finish in the call's time: …".
            why if why.contains("Compilation did not") => "compiler_busy",
            why if why.contains("busy") => "busy",
            why if why.contains("held the CPUs") => "starved",
            _ => "reserve",
        });
    }
    let limit = message
        .split("exceeded the ")
        .nth(1)?
        .split(" limit")
        .next()?;
    match limit {
        "fuel" => Some("fuel"),
        "memory" => Some("memory"),
        "stack" => Some("stack"),
        "output" => Some("output"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn limit_kinds_come_from_the_messages() {
        let z5 = |m: &str| json!({"Z1K1": "Z5", "Z5K1": "Z507", "Z5K2": {"Z1K1": "Z6", "Z6K1": m}});
        assert_eq!(limit_kind(&z5("Function call timed out")), Some("timeout"));
        assert_eq!(
            limit_kind(&z5(
                "Function call timed out: other calls held the CPUs: the call used 900 ms of its 10000 ms"
            )),
            Some("starved")
        );
        assert_eq!(
            limit_kind(&z5(
                "Function call timed out: Compilation did not start: other calls were compiling code until this call's deadline"
            )),
            Some("compiler_busy")
        );
        assert_eq!(
            limit_kind(&z5(
                "Function call timed out: Compilation did not start: the compilers stayed busy: 2 compilations"
            )),
            Some("compiler_busy")
        );
        // Busy in its time left: the compilations it waited behind.
        assert_eq!(
            limit_kind(&z5(
                "Function call timed out: Compilation did not finish in the call's time: its wall time ran out at 2999 ms; saving …"
            )),
            Some("compiler_busy")
        );
        assert_eq!(
            limit_kind(&z5(
                "Function call timed out: every executor was busy for 10000 ms of the call's time"
            )),
            Some("busy")
        );
        assert_eq!(
            limit_kind(&z5(
                "Function call timed out: while every executor held a long call, calls ran for at most 1000 ms"
            )),
            Some("reserve")
        );
        assert_eq!(
            limit_kind(&z5("Function call exceeded the memory limit of 128 MiB")),
            Some("memory")
        );
        assert_eq!(
            limit_kind(&z5("Function call exceeded the stack limit of 8 MiB")),
            Some("stack")
        );
        assert_eq!(limit_kind(&z5("TypeError: x is undefined")), None);
    }

    #[test]
    fn every_default_language_is_routed() {
        let languages = language_strings();
        for l in [
            "javascript",
            "javascript-es2020",
            "python-3-9",
            "python",
            "python-3-7",
        ] {
            assert!(
                languages.iter().any(|x| x == l),
                "{l} missing from {languages:?}"
            );
        }
    }
}
