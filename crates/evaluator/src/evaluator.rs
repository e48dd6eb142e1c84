//! The [`Evaluator`]: loads the guests once, and answers each request with a normal Z22.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use zeval_sandbox::{
    CodeCache, CodeLookup, Guest, GuestOptions, HostCalls, Limits, ModuleHost, ModuleHostConfig,
    RunOutput, Sandbox, SandboxError,
};
use zeval_zobject::build::{envelope_error, failure, void, z22};
use zeval_zobject::error::z5_untyped;
use zeval_zobject::metadata_format::{iso8601, mebibytes};
use zeval_zobject::{Map, Value};

use zeval_worker::{GuestSpec, RunError, WorkerPool, WorkerPoolConfig, WorkerSpec};

use crate::answer::{Answer, Entry};
use crate::artifacts::{Artifacts, Ready};
use crate::config::{EvaluatorConfig, Isolation, WorkerSettings};
use crate::error::EvaluatorError;
use crate::language::{Family, Variant};
use crate::plan::{executor_error, plan};
use crate::reentry::{Handler, NestedCalls, NestedErrors};
use crate::system;
use crate::wire::{self, ExecutorRequest, Request};

/// Where the unsnapshotted CPython guest expects its stdlib (see guests/python/README.md).
const PYTHON_STDLIB_GUEST_PATH: &str = "/usr/local/lib/python3.13";

/// The most characters of guest output (stdout, stderr) an error message quotes: enough to
/// recognise what went wrong, never bulk output echoed back to the caller.
pub const MAX_QUOTED_OUTPUT_CHARS: usize = 200;

/// The most JSON structural tokens the runner's answer may have
/// (`zeval_zobject::json::MAX_UNTRUSTED_TOKENS`), counted on the bytes before anything is
/// parsed. With the output itself capped by [`Limits::max_output_bytes`] (8 MiB by default)
/// while the guest writes it, the parsed answer stays under ~40 MiB of host memory per call
/// beside the guest's own limit, however the answer is shaped. A deep normal-form list is cut
/// earlier by the parser's depth limit (`zeval_zobject::json::MAX_DEPTH`).
pub const MAX_ANSWER_TOKENS: usize = zeval_zobject::json::MAX_UNTRUSTED_TOKENS;

/// One guest interpreter, loaded and linked.
#[derive(Clone)]
struct Runtime {
    runner: Runner,
    /// e.g. "QuickJS-ng 0.10.1 (wasmtime 48.0.8)".
    version: String,
}

/// Where a guest runs (see [`Isolation`]), and where the compiled code it hands back is kept
/// between calls, if anywhere ([`crate::EvaluatorConfig::code_cache`]).
#[derive(Clone)]
enum Runner {
    /// In this process's sandbox, on the calling thread, with this process's code cache.
    InProcess {
        guest: Guest,
        code_cache: Option<Arc<CodeCache>>,
    },
    /// In a confined worker process: guest number `index` of the pool's spec; with
    /// `code_cache`, each worker's own (see `zeval_sandbox::code_cache` on trust).
    Worker {
        pool: WorkerPool,
        index: u32,
        name: String,
        code_cache: bool,
    },
}

impl Runner {
    fn name(&self) -> &str {
        match self {
            Runner::InProcess { guest, .. } => guest.name(),
            Runner::Worker { name, .. } => name,
        }
    }

    /// Whether compiled code is kept between this guest's calls.
    fn caches_code(&self) -> bool {
        match self {
            Runner::InProcess { code_cache, .. } => code_cache.is_some(),
            Runner::Worker { code_cache, .. } => *code_cache,
        }
    }

    /// Runs the guest once, here or in a worker; `host` answers its host calls.
    fn run(
        &self,
        input: &[u8],
        limits: &Limits,
        host: Option<&mut dyn HostCalls>,
    ) -> Result<RunOutput, RunError> {
        match self {
            Runner::InProcess { guest, .. } => Ok(guest.run_with(input, limits, host)?),
            Runner::Worker { pool, index, .. } => pool.run_with(*index, input, limits, host),
        }
    }
}

/// Where compiled modules run: this process's module host, or the worker pool.
#[derive(Clone)]
enum ModuleRunner {
    InProcess(ModuleHost),
    Worker(WorkerPool),
}

impl ModuleRunner {
    fn run(&self, module: &Ready, input: &[u8], limits: &Limits) -> Result<RunOutput, RunError> {
        let key = module.key.to_string();
        match self {
            ModuleRunner::InProcess(host) => {
                // Compiling a module not in memory counts against the call's time, as it
                // does in a worker.
                let deadline = Instant::now() + limits.wall_time;
                let guest = host.load_within(&key, &module.wasm, deadline, limits.wall_time)?;
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(SandboxError::Timeout {
                        limit: limits.wall_time,
                    }
                    .into());
                }
                let limits = Limits {
                    wall_time: left,
                    ..limits.clone()
                };
                Ok(guest.run(input, &limits)?)
            }
            ModuleRunner::Worker(pool) => pool.run_module(&key, &module.wasm, input, limits),
        }
    }
}

/// What one run of a guest cost, for the metadata map.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// The guest's language version and the runtime, e.g. "CPython 3.13.5 (wasmtime 48.0.8)".
    pub language_version: String,
    /// CPU time of the calling thread during the run (the guest runs on it).
    pub cpu_time: std::time::Duration,
    /// Wall time of the run, instantiation included.
    pub duration: std::time::Duration,
    /// Fuel burnt (about one unit per wasm instruction), when metered.
    pub fuel_consumed: Option<u64>,
    /// Largest linear memory the guest reached.
    pub peak_memory_bytes: u64,
    /// This thread's CPU clock as the guest ended, when the guest ran on this thread.
    pub thread_clock_at_end: Option<zeval_sandbox::ThreadClockReading>,
}

/// The executor-level result of one call: the Z22 the original executor would print (no
/// service metadata), and the run's cost when the guest ran.
#[derive(Debug, Clone)]
pub struct Execution {
    /// `Z22(value, Z24)` or `Z22(Z24, {errors: Z5})`.
    pub z22: Value,
    /// `None` when the guest did not run at all.
    pub stats: Option<RunStats>,
}

/// Runs user functions in the wasm guests. Cheap to share between threads (`&self`
/// methods); each call blocks its thread while the guest runs.
pub struct Evaluator {
    variant: Variant,
    limits: Limits,
    runtimes: HashMap<Family, Runtime>,
    instance_name: String,
    /// The worker pool, when guests run in worker processes.
    workers: Option<WorkerPool>,
    /// Where compiled modules run.
    modules: ModuleRunner,
    /// Compiled implementations' artifacts; without them, compiled languages have no
    /// executor.
    artifacts: Option<Arc<Artifacts>>,
    /// Calls that found compiled code in a code cache ([`Evaluator::code_cache_hits`]);
    /// shared by the evaluators derived from this one.
    code_cache_hits: Arc<AtomicU64>,
}

impl Evaluator {
    /// Loads the guests the variant needs from `config.guest_dir` into a new sandbox.
    ///
    /// With [`Isolation::Workers`], this process loads no guest itself: it starts the worker
    /// pool, whose workers load the guests and confine themselves. (Unsnapshotted guests,
    /// a benchmark mode that reads the stdlib from disk at every call, always run in
    /// process.)
    pub fn new(config: EvaluatorConfig) -> Result<Self, EvaluatorError> {
        let families: Vec<Family> = Family::INTERPRETED
            .into_iter()
            .filter(|family| config.variant.has(*family))
            .collect();
        let (runtimes, workers, modules) = match &config.isolation {
            Isolation::Workers(settings) if !config.unsnapshotted => {
                let (runtimes, pool) = start_workers(&config, settings, &families)?;
                let modules = ModuleRunner::Worker(pool.clone());
                (runtimes, Some(pool), modules)
            }
            _ => {
                let sandbox = Sandbox::new(config.sandbox.clone())?;
                let mut runtimes = HashMap::new();
                for family in &families {
                    runtimes.insert(*family, load(&sandbox, &config, *family)?);
                }
                let modules = ModuleRunner::InProcess(sandbox.module_host(ModuleHostConfig {
                    disk_cache: config.module_disk_cache,
                    // A compilation may outlive its call (`ModuleHost::load_within`): on
                    // one thread, it takes one core, not all of them.
                    parallel_compilation: false,
                    ..ModuleHostConfig::default()
                })?);
                (runtimes, None, modules)
            }
        };
        Ok(Self {
            variant: config.variant,
            limits: config.limits,
            runtimes,
            instance_name: config.instance_name,
            workers,
            modules,
            artifacts: None,
            code_cache_hits: Arc::default(),
        })
    }

    /// This evaluator, running compiled languages (C, Rust) with `artifacts`.
    pub fn with_artifacts(mut self, artifacts: Arc<Artifacts>) -> Self {
        self.artifacts = Some(artifacts);
        self
    }

    /// The artifacts of compiled implementations, when compiled languages are on.
    pub fn artifacts(&self) -> Option<&Arc<Artifacts>> {
        self.artifacts.as_ref()
    }

    /// The worker pool's state, when guests run in worker processes.
    pub fn worker_status(&self) -> Option<zeval_worker::PoolStatus> {
        self.workers.as_ref().map(WorkerPool::status)
    }

    /// The worker pool, when guests run in worker processes (tests drive its hooks).
    pub fn worker_pool(&self) -> Option<&WorkerPool> {
        self.workers.as_ref()
    }

    /// An evaluator sharing this one's loaded guests, registering only the languages of
    /// `variant` (e.g. to serve the original's single-language deployments side by side).
    pub fn restricted_to(&self, variant: Variant) -> Evaluator {
        let runtimes = self
            .runtimes
            .iter()
            .filter(|(family, _)| variant.has(**family))
            .map(|(family, runtime)| (*family, runtime.clone()))
            .collect();
        Evaluator {
            variant,
            limits: self.limits.clone(),
            runtimes,
            instance_name: self.instance_name.clone(),
            workers: self.workers.clone(),
            modules: self.modules.clone(),
            artifacts: self.artifacts.clone(),
            code_cache_hits: Arc::clone(&self.code_cache_hits),
        }
    }

    /// The same evaluator with other per-call limits (sharing the loaded guests).
    pub fn with_limits(&self, limits: Limits) -> Evaluator {
        Evaluator {
            limits,
            ..self.restricted_to(self.variant)
        }
    }

    /// The deployment variant (which languages have an executor).
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The limits each call runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The language version reported for `family`, when its guest is loaded.
    pub fn language_version(&self, family: Family) -> Option<&str> {
        self.runtimes
            .get(&family)
            .map(|runtime| runtime.version.as_str())
    }

    /// The name reported as `evaluationHostname`.
    pub fn instance_name(&self) -> &str {
        &self.instance_name
    }

    /// How many calls found compiled code in a code cache ([`EvaluatorConfig::code_cache`]),
    /// in this process or for a worker, since the evaluator started (shared with the
    /// evaluators derived from it). Each was sent that code instead of its code string to
    /// compile, unless the code would have pushed its input over the input limit
    /// (`runner_input`).
    pub fn code_cache_hits(&self) -> u64 {
        self.code_cache_hits.load(Ordering::Relaxed)
    }

    /// Answers a request body in any encoding the original accepts (spec §3.1): always a
    /// normal-form Z22, with the `evaluation*`/`execution*` metadata. A `remainingTime`
    /// (milliseconds, in any form that carries it) caps the call's wall time from the moment
    /// the body arrived.
    pub fn evaluate_body(&self, body: &[u8], content_type: Option<&str>) -> Value {
        self.answer_body(body, content_type, None).into_value()
    }

    /// [`Evaluator::evaluate_body`] for a caller that answers the code's nested calls (see
    /// [`Evaluator::evaluate_with`]).
    pub fn evaluate_body_with(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        nested: &mut dyn NestedCalls,
    ) -> Value {
        self.answer_body(body, content_type, Some(nested))
            .into_value()
    }

    /// [`Evaluator::evaluate_body`] (or, with `nested`, [`Evaluator::evaluate_body_with`])
    /// as an [`Answer`], whose [`Answer::to_json`] writes the response without building the
    /// metadata map as a tree: what the HTTP route sends.
    pub fn answer_body(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        nested: Option<&mut dyn NestedCalls>,
    ) -> Answer {
        self.answer_body_for(body, content_type, nested, None)
    }

    /// [`Evaluator::answer_body`] for a call of `client` (`ExecutorRequest::client`, which
    /// no wire carries: an orchestrator names it in a header of its own).
    pub fn answer_body_for(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        nested: Option<&mut dyn NestedCalls>,
        client: Option<std::sync::Arc<str>>,
    ) -> Answer {
        let started = Started::now();
        match wire::decode_with_remaining_time(body, content_type) {
            Ok((request, remaining_time)) => {
                self.evaluate_from(request, remaining_time, client, started, nested)
            }
            Err(error) => self.finish(
                failure(z5_untyped(
                    "Z507",
                    &format!("Unable to read the request: {error}"),
                )),
                None,
                &started,
            ),
        }
    }

    /// Answers a decoded request: a normal-form Z22 with metadata. The executor form's
    /// `remaining_time` caps the call's wall time.
    pub fn evaluate(&self, request: Request) -> Value {
        self.answer(request, None).into_value()
    }

    /// [`Evaluator::evaluate`] for a caller that answers the code's nested calls (`W.Call`,
    /// see [`crate::reentry`]): `nested` runs them on this thread while the guest waits. The
    /// CPU time reported leaves them out (they report their own).
    pub fn evaluate_with(&self, request: Request, nested: &mut dyn NestedCalls) -> Value {
        self.answer(request, Some(nested)).into_value()
    }

    /// [`Evaluator::evaluate`] (with `nested`, [`Evaluator::evaluate_with`]) as an
    /// [`Answer`], for a caller that wants its metadata as text or not at all.
    pub fn answer(&self, request: Request, nested: Option<&mut dyn NestedCalls>) -> Answer {
        self.evaluate_from(request, None, None, Started::now(), nested)
    }

    fn evaluate_from(
        &self,
        request: Request,
        remaining_time: Option<f64>,
        client: Option<std::sync::Arc<str>>,
        mut started: Started,
        nested: Option<&mut dyn NestedCalls>,
    ) -> Answer {
        match plan(request, self.variant) {
            Ok(mut plan) => {
                if plan.request.remaining_time.is_none() {
                    plan.request.remaining_time = remaining_time;
                }
                if plan.request.client.is_none() {
                    plan.request.client = client;
                }
                let (execution, nested_cpu) =
                    self.execute_inner(plan.family, &plan.request, started.instant, nested);
                started.cpu += nested_cpu;
                self.finish(execution.z22, execution.stats.as_ref(), &started)
            }
            Err(error) => self.finish(failure(error), None, &started),
        }
    }

    /// Runs an executor request in the guest of `family`, as the original's executor does:
    /// the Z22 has no service metadata. A family that is not loaded gives the Z558 "No
    /// executor found" error.
    ///
    /// The call's wall time is the smaller of the configured limit and the request's
    /// `remaining_time` (seconds left on the caller's deadline), counted from now; pool
    /// slot waits count against it. A request with no time left answers the timeout Z558 at
    /// once, without running anything.
    pub fn execute(&self, family: Family, request: &ExecutorRequest) -> Execution {
        self.execute_inner(family, request, Instant::now(), None).0
    }

    /// [`Evaluator::execute`] with `nested` answering the code's nested calls (see
    /// [`Evaluator::evaluate_with`]).
    pub fn execute_with(
        &self,
        family: Family,
        request: &ExecutorRequest,
        nested: &mut dyn NestedCalls,
    ) -> Execution {
        self.execute_inner(family, request, Instant::now(), Some(nested))
            .0
    }

    /// [`Evaluator::execute`] for a request that arrived at `received`, with the CPU time
    /// the nested calls took on this thread.
    fn execute_inner(
        &self,
        family: Family,
        request: &ExecutorRequest,
        received: Instant,
        nested: Option<&mut dyn NestedCalls>,
    ) -> (Execution, Duration) {
        if family.is_compiled() {
            // Compiled code has no W.Call.
            return (
                self.execute_compiled(family, request, received),
                Duration::ZERO,
            );
        }
        let max_answer_bytes = self.limits.max_input_bytes;
        let mut handler = nested.map(|nested| Handler::new(nested, max_answer_bytes));
        let execution = self.execute_interpreted(family, request, received, handler.as_mut());
        let nested_cpu = handler.map_or(Duration::ZERO, |handler| handler.nested_cpu);
        (execution, nested_cpu)
    }

    /// [`Evaluator::execute_inner`] for JavaScript and Python.
    fn execute_interpreted(
        &self,
        family: Family,
        request: &ExecutorRequest,
        received: Instant,
        mut handler: Option<&mut Handler<'_>>,
    ) -> Execution {
        let Some(runtime) = self.runtimes.get(&family) else {
            let message = format!("No executor found for programming language {family}.");
            return Execution {
                z22: failure(z5_untyped("Z558", &message)),
                stats: None,
            };
        };
        let Some(limits) = limits_within(&self.limits, request.remaining_time, received) else {
            return Execution {
                z22: failure(timeout_error()),
                stats: None,
            };
        };
        let host = handler
            .as_deref_mut()
            .map(|handler| handler as &mut dyn HostCalls);
        let key = match &request.code_string {
            Some(source) if runtime.runner.caches_code() => Some(code_cache_key(
                runtime.runner.name(),
                request.function_name.as_deref().unwrap_or_default(),
                source,
            )),
            _ => None,
        };
        let started = Instant::now();
        // The input from the cache where the guest runs; whether the cache asks for the code
        // string's compiled code (which a run of its own produces, after this call).
        let asked = std::cell::Cell::new(false);
        let input_from = |cache: &CodeCache, key: &str| {
            let code = cache.lookup(key);
            asked.set(code == CodeLookup::CompileAndHandBack);
            if matches!(code, CodeLookup::Compiled(_)) {
                self.code_cache_hits.fetch_add(1, Ordering::Relaxed);
            }
            runner_input(request, &code, &limits)
        };
        let outcome = match (&runtime.runner, key.as_deref()) {
            (
                Runner::InProcess {
                    guest,
                    code_cache: Some(cache),
                },
                Some(key),
            ) => guest
                .run_with(&input_from(cache, key), &limits, host)
                .map_err(RunError::from)
                .map(|output| (output, asked.get().then(|| (Arc::clone(cache), key)))),
            (
                Runner::Worker {
                    pool,
                    index,
                    code_cache: true,
                    ..
                },
                Some(key),
            ) => pool
                .run_with_code(*index, &|cache| input_from(cache, key), &limits, host)
                .map(|(output, cache)| (output, asked.get().then_some((cache, key)))),
            _ => runtime
                .runner
                .run(
                    &runner_input(request, &CodeLookup::Compile, &limits),
                    &limits,
                    host,
                )
                .map(|output| (output, None)),
        };
        match outcome {
            Ok((output, keep_in)) => {
                let stats = run_stats(runtime, &output);
                let errors = handler.map(|handler| &mut handler.errors);
                let z22 = runner_output(&output.stdout, errors);
                if let Some((asked_in, key)) = keep_in {
                    self.compile_for_the_cache(runtime, request, &limits, started, key, &asked_in);
                }
                Execution {
                    z22,
                    stats: Some(stats),
                }
            }
            Err(error) => {
                tracing::debug!(guest = runtime.runner.name(), %error, "guest call failed");
                Execution {
                    z22: failure(run_error(&error)),
                    stats: None,
                }
            }
        }
    }

    /// Compiles `request`'s code string, and runs none of it, in a fresh instance of the
    /// guest where `runtime` runs it (this process, or a worker), and keeps what the
    /// runner hands back in that place's code cache under `key`. Within what is left of the
    /// call's wall time (`limits`, from `started`), and at most [`COMPILE_ONLY_TIME`]; with
    /// less than [`MIN_COMPILE_ONLY_TIME`] left, or when nothing comes of it, the cache that
    /// asked (`asked_in`) is told not to ask again for this code string.
    ///
    /// The entry comes from a run in which no user code ran: a call's own run could hand
    /// back anything its code chose (Python reaches the runner's frames, JavaScript could
    /// call the runner again), and approved code that evaluated its input would have let
    /// one caller choose what every later call of that code string ran.
    fn compile_for_the_cache(
        &self,
        runtime: &Runtime,
        request: &ExecutorRequest,
        limits: &Limits,
        started: Instant,
        key: &str,
        asked_in: &CodeCache,
    ) {
        // The call's answer waits for this run: at most COMPILE_ONLY_TIME of it (a wait for a
        // free worker included).
        let Some(wall_time) = compile_only_time(limits.wall_time, started.elapsed()) else {
            asked_in.decline(key);
            return;
        };
        let limits = Limits {
            wall_time,
            ..limits.clone()
        };
        let input = compile_only_input(request, &limits);
        let ran = match &runtime.runner {
            Runner::InProcess {
                guest,
                code_cache: Some(cache),
            } => guest
                .run(&input, &limits)
                .map(|output| (output, Arc::clone(cache)))
                .map_err(RunError::from),
            Runner::Worker {
                pool,
                index,
                code_cache: true,
                ..
            } => pool.run_with_code(*index, &|_| input.clone(), &limits, None),
            _ => return,
        };
        // Whatever went wrong (the code does not compile, its compiled code is too large, the
        // run failed or found no time), the code string is not asked for again: each try is
        // a run of its own.
        match ran {
            Ok((output, cache)) => match compiled_only(&output.stdout) {
                Some(compiled) => cache.insert(key, compiled),
                None => cache.decline(key),
            },
            Err(error) => {
                tracing::debug!(guest = runtime.runner.name(), %error, "compiling for the code cache failed");
                asked_in.decline(key);
            }
        }
    }

    /// [`Evaluator::execute_from`] for a compiled language: the artifact (compiled now
    /// only if the implementation was never saved through this server, e.g. `zeval call
    /// --objects`; the compilation counts against the call's time), then one run of it.
    fn execute_compiled(
        &self,
        family: Family,
        request: &ExecutorRequest,
        received: Instant,
    ) -> Execution {
        let not_run = |z5: Value| Execution {
            z22: failure(z5),
            stats: None,
        };
        let (Some(language), Some(artifacts)) = (family.compiled_language(), &self.artifacts)
        else {
            let message = format!("No executor found for programming language {family}.");
            return not_run(z5_untyped("Z558", &message));
        };
        if !self.variant.has(family) || !artifacts.toolchain().has(language) {
            let message = format!("No executor found for programming language {family}.");
            return not_run(z5_untyped("Z558", &message));
        }
        let Some(signature) = &request.signature else {
            return not_run(executor_error(
                "A compiled implementation needs its function's argument and return types: send the whole function call, with its Z8.",
            ));
        };
        let unit = zeval_compiler::Unit {
            language,
            function_name: request.function_name.clone().unwrap_or_default(),
            signature: signature.clone(),
            source: request.code_string.clone().unwrap_or_default(),
        };
        // A compilation (rare: saving compiles) gets only the time the call has left.
        let Some(budget) = limits_within(&self.limits, request.remaining_time, received)
            .map(|limits| limits.wall_time)
        else {
            return not_run(timeout_error());
        };
        // One deadline for compiling and running: what a compilation took is not given again.
        let deadline = Instant::now() + budget;
        let module = match artifacts.artifact_for_call(&unit, budget, request.client.as_deref()) {
            Ok(module) => module,
            // The load's doing, not the code's: a Z558 that says so, which the ranking,
            // the testers and the result cache do not hold against the implementation.
            Err(
                error @ (crate::artifacts::ArtifactError::Busy(_)
                | crate::artifacts::ArtifactError::Unfinished(_)),
            ) => {
                return not_run(load_timeout_error(&error.to_string()));
            }
            Err(error) => return not_run(executor_error(&error.to_string())),
        };
        let input =
            match zeval_compiler::encode_argument_map(signature, &request.function_arguments) {
                Ok(input) => input,
                Err(error) => return not_run(executor_error(&error.to_string())),
            };
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
        else {
            return not_run(timeout_error());
        };
        let limits = Limits {
            wall_time: left,
            ..self.limits.clone()
        };
        match self.modules.run(&module, &input, &limits) {
            Ok(output) => {
                let z22 = match zeval_compiler::decode_result(signature, &output.stdout) {
                    Ok(zeval_compiler::Answer::Value(value)) => z22(value, void()),
                    Ok(zeval_compiler::Answer::Failure(message)) => {
                        failure(executor_error(&message))
                    }
                    Err(error) => failure(executor_error(&error.to_string())),
                };
                let stats = RunStats {
                    language_version: format!(
                        "{} ({}, {})",
                        match language {
                            zeval_compiler::Language::C => "C17",
                            zeval_compiler::Language::Rust => "Rust 2021",
                        },
                        module.compiler,
                        zeval_sandbox::runtime_version()
                    ),
                    cpu_time: output.cpu_time,
                    duration: output.duration,
                    fuel_consumed: output.fuel_consumed,
                    peak_memory_bytes: output.peak_memory_bytes,
                    thread_clock_at_end: output.ended,
                };
                Execution {
                    z22,
                    stats: Some(stats),
                }
            }
            Err(error) => {
                tracing::debug!(module = %module.key, %error, "compiled call failed");
                not_run(run_error(&explain_compiled_trap(error)))
            }
        }
    }

    /// The service's metadata for an executor-level Z22 (`errors`, when present, stays the
    /// first entry), to be joined with it when the answer is written.
    fn finish(&self, z22: Value, stats: Option<&RunStats>, started: &Started) -> Answer {
        let end = SystemTime::now();
        // A guest that ran on this thread read its clock as it ended: that reading and the
        // wall time since (this thread's own work since, on a thread that does not block)
        // spare a system call here (see `ThreadClockReading`).
        let now = stats
            .and_then(|stats| stats.thread_clock_at_end)
            .map_or_else(system::thread_cpu_time, |ended| ended.now_estimate());
        let mut cpu = now.saturating_sub(started.cpu);
        if self.workers.is_some() {
            // The guest ran in a worker: its CPU time is not this thread's.
            cpu += stats.map_or(Duration::ZERO, |stats| stats.cpu_time);
        }
        let mut entries = Vec::with_capacity(13);
        if let Some(error) = envelope_error(&z22) {
            entries.push(("errors", Entry::Object(error.clone())));
        }
        let mut text = |key: &'static str, value: String| entries.push((key, Entry::Text(value)));
        // What this call used (the guest's peak linear memory), not the process's RSS.
        text(
            "evaluationMemoryUsage",
            mebibytes(stats.map_or(0, |stats| stats.peak_memory_bytes)),
        );
        text("evaluationCpuUsage", system::cpu_millis(cpu));
        text("evaluationStartTime", iso8601(started.wall));
        text("evaluationEndTime", iso8601(end));
        text(
            "evaluationDuration",
            format!("{} ms", started.instant.elapsed().as_millis()),
        );
        text("evaluationHostname", self.instance_name.clone());
        if let Some(stats) = stats {
            text("executionMemoryUsage", mebibytes(stats.peak_memory_bytes));
            text(
                "executionCpuUsage",
                format!("{} μs", stats.cpu_time.as_micros()),
            );
            text("programmingLanguageVersion", stats.language_version.clone());
            text(
                "executionDuration",
                format!("{} μs", stats.duration.as_micros()),
            );
            text(
                "executionPeakLinearMemory",
                format!("{} bytes", stats.peak_memory_bytes),
            );
            if let Some(fuel) = stats.fuel_consumed {
                text("executionFuelConsumed", fuel.to_string());
            }
        }
        Answer::new(z22, entries)
    }
}

/// When handling of a request began.
struct Started {
    wall: SystemTime,
    instant: Instant,
    cpu: std::time::Duration,
}

impl Started {
    fn now() -> Self {
        Self {
            wall: SystemTime::now(),
            instant: Instant::now(),
            cpu: system::thread_cpu_time(),
        }
    }
}

fn load(
    sandbox: &Sandbox,
    config: &EvaluatorConfig,
    family: Family,
) -> Result<Runtime, EvaluatorError> {
    let stem = family.guest_name();
    let (name, file) = if config.unsnapshotted {
        (format!("{stem}.raw"), format!("{stem}.raw.wasm"))
    } else {
        (stem.to_owned(), format!("{stem}.wasm"))
    };
    let path = config.guest_dir.join(&file);
    let wasm = std::fs::read(&path).map_err(|_| EvaluatorError::GuestMissing {
        path: path.clone(),
        dir: config.guest_dir.clone(),
    })?;
    let guest = if config.unsnapshotted && family == Family::Python {
        let options = GuestOptions {
            preopen_readonly: Some((
                config.guest_dir.join("python-stdlib"),
                PYTHON_STDLIB_GUEST_PATH.to_owned(),
            )),
            env: Vec::new(),
        };
        sandbox.load_guest_with_options(&name, &wasm, options)?
    } else {
        sandbox.load_guest(&name, &wasm)?
    };
    Ok(Runtime {
        runner: Runner::InProcess {
            guest,
            code_cache: (!family.is_compiled() && config.code_cache)
                .then(|| Arc::new(CodeCache::default())),
        },
        version: runtime_version(&config.guest_dir, family),
    })
}

/// "QuickJS-ng 0.10.1 (wasmtime 48.0.8)".
fn runtime_version(guest_dir: &Path, family: Family) -> String {
    let language = language_version(guest_dir, family);
    format!("{language} ({})", zeval_sandbox::runtime_version())
}

/// A call each guest runs once in a new worker before it is confined: the smallest
/// function of its language, through the same runner as every call.
fn warm_up_input(family: Family) -> Vec<u8> {
    let code = match family {
        Family::JavaScript => "function Z1000001() { return 'ready'; }",
        Family::Python => "def Z1000001():\n    return 'ready'",
        // Compiled families have no interpreter guest to warm up.
        Family::C | Family::Rust => "",
    };
    runner_input(
        &ExecutorRequest {
            reentrant: false,
            remaining_time: None,
            coding_language: None,
            code_string: Some(code.to_owned()),
            function_name: Some("Z1000001".to_owned()),
            function_arguments: Map::new(),
            signature: None,
            client: None,
        },
        &CodeLookup::Compile,
        &Limits::default(),
    )
}

/// Starts the worker pool for `families`: every worker loads their guests.
fn start_workers(
    config: &EvaluatorConfig,
    settings: &WorkerSettings,
    families: &[Family],
) -> Result<(HashMap<Family, Runtime>, WorkerPool), EvaluatorError> {
    let mut sandbox = config.sandbox.clone();
    // A worker holds one call at a time, so one pool slot per guest is all it uses (the
    // pool's own reserve stands in for a reserve of slots).
    sandbox.pool.max_instances = 1;
    sandbox.pool.reserve_instances = 0;
    // The guests are compiled (or taken from the module cache and verified) once here, for
    // the workers' configuration, and each worker maps the sealed code instead of reading
    // and verifying the cache itself.
    let sealer = Sandbox::new(sandbox.clone())?;
    let mut guests = Vec::new();
    let mut sealed_guests = Vec::new();
    for family in families {
        let name = family.guest_name().to_owned();
        let path = config.guest_dir.join(format!("{name}.wasm"));
        if !path.is_file() {
            return Err(EvaluatorError::GuestMissing {
                path,
                dir: config.guest_dir.clone(),
            });
        }
        let (sha256, sealed) = match sealer.seal_guest_file(&name, &path) {
            Ok((sha256, code)) => {
                sealed_guests.push(Arc::new(code));
                (sha256, true)
            }
            Err(error) => {
                tracing::warn!(guest = name, %error, "workers will load this guest from the module cache");
                // Read and hashed once here all the same, not by every worker that starts.
                (zeval_sandbox::module_file_digest(&path)?, false)
            }
        };
        guests.push(GuestSpec {
            name,
            path,
            sha256,
            sealed,
            warm_up_input: warm_up_input(*family),
        });
    }
    drop(sealer);
    let spec = WorkerSpec {
        guests,
        sandbox,
        user: settings.user.clone(),
        test_hooks: settings.test_hooks,
        // Set by the pool from its `colocate`.
        colocated: false,
    };
    let defaults = WorkerPoolConfig::new(&settings.program, settings.args.clone(), spec);
    let pool = WorkerPool::start(WorkerPoolConfig {
        max_workers: settings.max_workers.max(1),
        min_workers: settings.min_workers,
        kill_margin: settings.kill_margin,
        colocate: settings.colocate,
        lone_call_spin: settings.lone_call_spin,
        max_running: settings.max_running.unwrap_or(defaults.max_running),
        running_wait: settings.running_wait,
        start_after: settings.start_after,
        max_starting: settings.max_starting,
        retire_idle_after: settings.retire_idle_after,
        recycle_after_calls: settings.recycle_after_calls,
        reserve_workers: settings.reserve_workers.unwrap_or(defaults.reserve_workers),
        reserve_call_time: settings.reserve_call_time,
        sealed_guests,
        ..defaults
    })?;
    let runtimes = families
        .iter()
        .enumerate()
        .map(|(index, family)| {
            let runtime = Runtime {
                runner: Runner::Worker {
                    pool: pool.clone(),
                    index: index as u32,
                    name: family.guest_name().to_owned(),
                    code_cache: !family.is_compiled() && config.code_cache,
                },
                version: runtime_version(&config.guest_dir, *family),
            };
            (*family, runtime)
        })
        .collect();
    Ok((runtimes, pool))
}

/// The interpreter's version as `guests/build.sh` recorded it (`<stem>.version`).
fn language_version(guest_dir: &Path, family: Family) -> String {
    let recorded =
        std::fs::read_to_string(guest_dir.join(format!("{}.version", family.guest_name())))
            .map(|text| text.trim().to_owned())
            .unwrap_or_default();
    match (recorded.is_empty(), family) {
        (false, Family::Python) if !recorded.starts_with("CPython") => {
            format!("CPython {recorded}")
        }
        (false, _) => recorded,
        (true, Family::JavaScript) => "QuickJS".to_owned(),
        (true, Family::Python) => "CPython".to_owned(),
        (true, family) => family.to_string(),
    }
}

/// The byte between a runner's JSON and the compiled code after it, in its input and in its
/// answer (see `guests/*/runner.*`). JSON text never holds a raw NUL (it is escaped in
/// strings), so the first NUL ends the JSON. The compiled code travels as raw bytes, not as a
/// JSON string: base64 inside the JSON cost the QuickJS guest about a tenth of a trivial
/// call (`docs/benchmarks.md`, "Guests that write less per call").
const COMPILED_SEPARATOR: u8 = 0;

/// The runner's input (see `guests/*/runner.*`): the executor request without the routing
/// fields and its code string as JSON, then, with [`CodeLookup::Compiled`], the compiled code
/// a compile-only run of the same code string handed back (after [`COMPILED_SEPARATOR`]).
/// Compiled code that would make the input longer than `limits` allow is left out (the code
/// string is compiled instead). [`CodeLookup::CompileAndHandBack`] is run as
/// [`CodeLookup::Compile`]: the compiled code comes from a run of its own
/// ([`compile_only_input`]).
fn runner_input(request: &ExecutorRequest, code: &CodeLookup, limits: &Limits) -> Vec<u8> {
    let input = runner_input_with(request, code);
    if matches!(code, CodeLookup::Compiled(_)) && input.len() > limits.max_input_bytes {
        return runner_input_with(request, &CodeLookup::Compile);
    }
    input
}

/// The runner's input fields every request has: the function's name and the code string.
/// With its compiled code (`compiled`) the runner needs only how many lines the code string
/// has (JavaScript's messages tell a syntax error at the end of the code by its line), not
/// its text: QuickJS's JSON.parse costs about a hundred wasm instructions a byte, in every
/// call, for a string nothing reads. CPython's runner needs neither.
fn named_code(request: &ExecutorRequest, compiled: bool) -> Map<String, Value> {
    let mut object = Map::new();
    if let Some(name) = &request.function_name {
        object.insert("functionName".into(), Value::String(name.clone()));
    }
    match &request.code_string {
        Some(source) if compiled => {
            let newlines = source.bytes().filter(|&byte| byte == b'\n').count();
            object.insert("codeNewlines".into(), Value::from(newlines));
        }
        Some(source) => {
            object.insert("codeString".into(), Value::String(source.clone()));
        }
        None => {}
    }
    object
}

fn runner_input_with(request: &ExecutorRequest, code: &CodeLookup) -> Vec<u8> {
    let mut object = named_code(request, matches!(code, CodeLookup::Compiled(_)));
    object.insert(
        "functionArguments".into(),
        Value::Object(request.function_arguments.clone()),
    );
    let mut input = serde_json::to_vec(&Value::Object(object)).unwrap_or_default();
    if let CodeLookup::Compiled(compiled) = code {
        input.reserve_exact(1 + compiled.len());
        input.push(COMPILED_SEPARATOR);
        input.extend_from_slice(compiled);
    }
    input
}

/// The least wall time worth giving a run that only compiles a code string for the cache.
const MIN_COMPILE_ONLY_TIME: Duration = Duration::from_millis(50);

/// The most wall time a run that only compiles a code string for the cache gets (its call's
/// answer waits for it): CPython compiles a trivial function in well under a millisecond.
const COMPILE_ONLY_TIME: Duration = Duration::from_millis(250);

/// The wall time of a compile-only run in a call given `wall_time` that has run `elapsed`:
/// what is left, at most [`COMPILE_ONLY_TIME`]; `None` with less than
/// [`MIN_COMPILE_ONLY_TIME`] left.
fn compile_only_time(wall_time: Duration, elapsed: Duration) -> Option<Duration> {
    wall_time
        .checked_sub(elapsed)
        .filter(|left| *left >= MIN_COMPILE_ONLY_TIME)
        .map(|left| left.min(COMPILE_ONLY_TIME))
}

/// The runner's input for compiling the code string and running none of it
/// (`"compileOnly"`: the output limit, within which the runner hands back the compiled code
/// after its answer, `{"compiled": true}`, and a NUL).
fn compile_only_input(request: &ExecutorRequest, limits: &Limits) -> Vec<u8> {
    let mut object = named_code(request, false);
    object.insert("compileOnly".into(), limits.max_output_bytes.into());
    serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
}

/// The compiled code a compile-only run handed back: what follows the NUL after an answer
/// of `{"compiled": true}`.
fn compiled_only(stdout: &[u8]) -> Option<Vec<u8>> {
    /// Longer than any runner writes `{"compiled": true}`: what a worker writes is not
    /// trusted, and 8 MiB of `[0,0,…]` before the NUL parsed into some 400 MiB of values.
    const MAX_ANSWER_BYTES: usize = 64;
    let end = stdout.iter().position(|&byte| byte == COMPILED_SEPARATOR)?;
    if end > MAX_ANSWER_BYTES {
        return None;
    }
    let answer: Value = serde_json::from_slice(&stdout[..end]).ok()?;
    (answer.get("compiled") == Some(&Value::Bool(true))).then(|| stdout[end + 1..].to_vec())
}

/// The limits of a call with `remaining_time` seconds left since `received`: the configured
/// wall time capped by what is left, or `None` when nothing is left (zero, negative or NaN).
/// An unusable value (infinite) leaves the configured limit.
///
/// `remainingTime` is in seconds: the original's suites send 15, the original evaluator's own
/// limit in seconds, and its Python cases take far longer than 15 ms.
fn limits_within(
    limits: &Limits,
    remaining_time: Option<f64>,
    received: Instant,
) -> Option<Cow<'_, Limits>> {
    let Some(seconds) = remaining_time else {
        return Some(Cow::Borrowed(limits));
    };
    if seconds.is_nan() || seconds <= 0.0 {
        return None;
    }
    let Ok(remaining) = Duration::try_from_secs_f64(seconds) else {
        return Some(Cow::Borrowed(limits));
    };
    let left = remaining.checked_sub(received.elapsed())?;
    if left.is_zero() {
        return None;
    }
    if left >= limits.wall_time {
        return Some(Cow::Borrowed(limits));
    }
    Some(Cow::Owned(Limits {
        wall_time: left,
        ..limits.clone()
    }))
}

/// At most [`MAX_QUOTED_OUTPUT_CHARS`] characters of `text`, marked when cut.
fn quote(text: &str) -> Cow<'_, str> {
    quote_at_most(text, MAX_QUOTED_OUTPUT_CHARS)
}

/// At most `limit` characters of `text`, marked when cut.
pub(crate) fn quote_at_most(text: &str, limit: usize) -> Cow<'_, str> {
    match text.char_indices().nth(limit) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// The key of compiled code in a code cache: the guest that compiled it, the function name
/// the runner returns (JavaScript's compiled wrapper names it) and the code string, each but
/// the last length-prefixed so that no two triples make one key. A worker keeps one cache for
/// all its guests, and what one guest hands back must never be given to another: a Python
/// function that wrote bytes after the answer's separator would otherwise have them loaded
/// as QuickJS bytecode by a JavaScript function of the same name and text (a polyglot).
fn code_cache_key(guest: &str, function_name: &str, source: &str) -> String {
    format!(
        "{}:{guest}{}:{function_name}{source}",
        guest.len(),
        function_name.len()
    )
}

/// [`runner_output`] for the fuzz targets (`fuzz/`): guest stdout → executor-level Z22.
#[doc(hidden)]
pub fn parse_runner_output(stdout: &[u8]) -> Value {
    runner_output(stdout, None)
}

/// The runner's answer as an executor-level Z22 (spec §3.2 for empty or unparsable output).
/// Its size is bounded before it is parsed (see [`MAX_ANSWER_TOKENS`]); error messages
/// quote at most [`MAX_QUOTED_OUTPUT_CHARS`] of it.
///
/// An error the runner marks `"nestedError": n` is the `n`th error a nested call answered
/// (see [`crate::reentry`]): that Z5 is the call's error, when `errors` has it.
///
/// Anything after a [`COMPILED_SEPARATOR`] is dropped: a call's own run is never asked for
/// compiled code (a compile-only run is, [`compiled_only`]), so whatever follows was written
/// by the call's code.
fn runner_output(stdout: &[u8], errors: Option<&mut NestedErrors>) -> Value {
    let stdout = match stdout.iter().position(|&byte| byte == COMPILED_SEPARATOR) {
        Some(end) => &stdout[..end],
        None => stdout,
    };
    let text = String::from_utf8_lossy(stdout);
    if text.trim().is_empty() {
        return failure(z5_untyped("Z507", "Executor returned an empty response."));
    }
    if zeval_zobject::json::structural_tokens(stdout, MAX_ANSWER_TOKENS) > MAX_ANSWER_TOKENS {
        let message =
            format!("Function call exceeded the output limit of {MAX_ANSWER_TOKENS} JSON tokens");
        return failure(z5_untyped("Z507", &message));
    }
    let nonsense = || {
        failure(z5_untyped(
            "Z507",
            &format!("Executor returned some nonsense: {}.", quote(&text)),
        ))
    };
    let Ok(Value::Object(mut answer)) = zeval_zobject::json::parse(&text) else {
        return nonsense();
    };
    if let Some(result) = answer.remove("result") {
        return z22(result, void());
    }
    let nested = answer
        .remove("nestedError")
        .and_then(|index| usize::try_from(index.as_u64()?).ok())
        .and_then(|index| errors?.take(index));
    match answer.remove("error") {
        Some(Value::String(message)) => failure(nested.unwrap_or_else(|| executor_error(&message))),
        _ => nonsense(),
    }
}

fn run_stats(runtime: &Runtime, output: &RunOutput) -> RunStats {
    RunStats {
        language_version: runtime.version.clone(),
        cpu_time: output.cpu_time,
        duration: output.duration,
        fuel_consumed: output.fuel_consumed,
        peak_memory_bytes: output.peak_memory_bytes,
        thread_clock_at_end: output.ended,
    }
}

/// `"128 MiB"` for whole mebibytes, else `"<n> bytes"`.
fn size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The original's Z558 "Function call timed out".
fn timeout_error() -> Value {
    z5_untyped("Z558", zeval_zobject::error::TIMED_OUT)
}

/// A Z558 for a call the server's load stopped, not its own time limit: the original's text
/// and why (which the orchestrator reads as not the implementation's doing).
fn load_timeout_error(why: &str) -> Value {
    z5_untyped(
        "Z558",
        &format!("{}: {why}", zeval_zobject::error::TIMED_OUT),
    )
}

/// A compiled program's trap, with what it usually means in C or Rust terms: the bare
/// wasm trap names ("out of bounds memory access") say nothing to the author of the code.
fn explain_compiled_trap(error: RunError) -> RunError {
    let RunError::Sandbox(SandboxError::Trap(message)) = error else {
        return error;
    };
    let hint = if message.contains("out of bounds memory access") {
        " (in compiled code: a stack overflow, or a pointer outside the program's memory)"
    } else if message.contains("`unreachable` instruction executed") {
        " (in compiled code: abort(), __builtin_trap() or unreachable code was reached)"
    } else if message.starts_with("exit status") {
        " (the program called exit() before its function returned)"
    } else {
        ""
    };
    // Right after the trap's name, before any quoted stderr.
    let (cause, rest) = message
        .split_once("; stderr: ")
        .map_or((message.as_str(), String::new()), |(cause, stderr)| {
            (cause, format!("; stderr: {stderr}"))
        });
    RunError::Sandbox(SandboxError::Trap(format!("{cause}{hint}{rest}")))
}

/// The Z5 for a call that failed in the sandbox or lost its worker process.
fn run_error(error: &RunError) -> Value {
    match error {
        RunError::Sandbox(error) => limit_error(error),
        RunError::WorkerLost(status) => {
            tracing::warn!(status, "a worker process died during a call");
            z5_untyped(
                "Z507",
                "The executor failed: the process running the call stopped before it answered.",
            )
        }
        RunError::Unavailable(reason) => {
            tracing::error!(reason, "no worker process for a call");
            z5_untyped("Z507", zeval_zobject::error::NO_EXECUTOR)
        }
    }
}

/// The Z5 for a call the sandbox stopped. A timeout is the original's Z558; a call that
/// found no executor free until its deadline, or that was cut to the reserve's time while
/// every executor held a long call, is a Z558 that says so; every other limit names itself
/// and its value. A
/// guest failure quotes the sandbox's short description (the trap and at most 200 bytes of
/// stderr); other sandbox failures (setup, I/O) are logged and not described, since their
/// details name host paths.
fn limit_error(error: &SandboxError) -> Value {
    let message = match error {
        SandboxError::Timeout { .. } => return timeout_error(),
        SandboxError::Busy { waited, .. } => {
            return load_timeout_error(&format!(
                "every executor was busy for {} ms of the call's time",
                waited.as_millis()
            ));
        }
        SandboxError::ReserveTimeout { limit } => {
            return load_timeout_error(&format!(
                "while every executor held a long call, calls ran for at most {} ms",
                limit.as_millis()
            ));
        }
        SandboxError::Starved { limit, used } => {
            return load_timeout_error(&format!(
                "other calls held the CPUs: the call used {} ms of its {} ms",
                used.as_millis(),
                limit.as_millis()
            ));
        }
        SandboxError::OutOfFuel { limit } => {
            format!("Function call exceeded the fuel limit of {limit} units")
        }
        SandboxError::MemoryLimit { limit } => {
            format!(
                "Function call exceeded the memory limit of {}",
                size(*limit)
            )
        }
        SandboxError::StackOverflow { limit } => {
            format!("Function call exceeded the stack limit of {}", size(*limit))
        }
        SandboxError::OutputLimit { limit } => {
            format!(
                "Function call exceeded the output limit of {}",
                size(*limit)
            )
        }
        SandboxError::InputLimit { limit } => {
            format!(
                "The function call exceeds the input limit of {}",
                size(*limit)
            )
        }
        SandboxError::Trap(message) => {
            // The sandbox's message is the trap (a short host text) and at most 200 bytes of
            // stderr; the cap here keeps it short whatever the sandbox says.
            let message = quote_at_most(message, 2 * MAX_QUOTED_OUTPUT_CHARS);
            format!("The executor failed: the guest failed: {message}")
        }
        other => {
            // Debug-quoted: a worker's text is not trusted, and a newline in it would forge
            // log lines.
            tracing::warn!(error = ?other.to_string(), "the sandbox could not run a call");
            "The executor failed: the sandbox could not run the call.".to_owned()
        }
    };
    z5_untyped("Z507", &message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn runner_answers_become_executor_z22s() {
        let ok = runner_output(br#"{"result": {"Z1K1": "Z6", "Z6K1": "13"}}"#, None);
        assert_eq!(ok["Z22K1"]["Z6K1"], "13");
        assert!(zeval_zobject::build::is_void(&ok["Z22K2"]));
        let error = runner_output(br#"{"error": "boom"}"#, None);
        let z5 = zeval_zobject::build::envelope_error(&error).unwrap();
        assert_eq!(z5["Z5K2"]["Z6K1"], "boom");
        assert!(z5.get("Z5K1").is_none());
    }

    #[test]
    fn compiled_code_travels_as_raw_bytes_after_the_json() {
        let request = ExecutorRequest {
            reentrant: false,
            remaining_time: None,
            coding_language: None,
            code_string: Some("def f(): pass".to_owned()),
            function_name: Some("f".to_owned()),
            function_arguments: Map::new(),
            signature: None,
            client: None,
        };
        // The bytes may hold the separator themselves: only the first one ends the JSON.
        let compiled = CodeLookup::Compiled(Arc::from(&b"\x00raw\xff"[..]));
        let input = runner_input(&request, &compiled, &Limits::default());
        let end = input.iter().position(|&b| b == COMPILED_SEPARATOR).unwrap();
        assert_eq!(&input[end + 1..], b"\x00raw\xff");
        let json: Value = serde_json::from_slice(&input[..end]).unwrap();
        // The code string's text stays out with its compiled code; its newlines go.
        assert!(json.get("codeString").is_none(), "{json}");
        assert_eq!(json["codeNewlines"], 0);
        assert_eq!(json["functionName"], "f");
        assert!(json.get("compiled").is_none() && json.get("wantCompiled").is_none());
        let lines = ExecutorRequest {
            code_string: Some("def f():\n    pass\n".to_owned()),
            ..request.clone()
        };
        let input = runner_input(&lines, &compiled, &Limits::default());
        let end = input.iter().position(|&b| b == COMPILED_SEPARATOR).unwrap();
        let json: Value = serde_json::from_slice(&input[..end]).unwrap();
        assert_eq!(json["codeNewlines"], 2);
        // Compiled code over the input limit is left out: the code string is compiled.
        let small = Limits {
            max_input_bytes: end + 3,
            ..Limits::default()
        };
        let input = runner_input(&request, &compiled, &small);
        assert!(!input.contains(&COMPILED_SEPARATOR));
        let json: Value = serde_json::from_slice(&input).unwrap();
        assert_eq!(json["codeString"], "def f(): pass");

        // A call's run is never asked for its compiled code: what it writes after a NUL is
        // dropped. Only a compile-only run's answer hands compiled code back.
        let input = runner_input(
            &request,
            &CodeLookup::CompileAndHandBack,
            &Limits::default(),
        );
        assert!(!input.contains(&COMPILED_SEPARATOR));
        let json: Value = serde_json::from_slice(&input).unwrap();
        assert!(json.get("wantCompiled").is_none() && json.get("compileOnly").is_none());
        let answer = br#"{"result": {"Z1K1": "Z6", "Z6K1": "13"}}"#;
        let z22 = runner_output(&[&answer[..], b"\0\x00bytes"].concat(), None);
        assert_eq!(z22["Z22K1"]["Z6K1"], "13");
        assert_eq!(compiled_only(&[&answer[..], b"\0\x00bytes"].concat()), None);
        let only = compile_only_input(&request, &Limits::default());
        let json: Value = serde_json::from_slice(&only).unwrap();
        assert_eq!(json["codeString"], "def f(): pass");
        assert!(json["compileOnly"].is_u64() && json.get("functionArguments").is_none());
        assert_eq!(
            compiled_only(b"{\"compiled\": true}\0\x00bytes").as_deref(),
            Some(&b"\x00bytes"[..])
        );
        assert_eq!(compiled_only(b"{\"compiled\": true}"), None);
        // A long answer before the NUL is not parsed.
        let padded = format!(
            "{{\"compiled\": true, \"pad\": [{}0]}}\0x",
            "0,".repeat(100_000)
        );
        assert_eq!(compiled_only(padded.as_bytes()), None);
    }

    #[test]
    fn empty_and_nonsense_output() {
        let empty = runner_output(b"  \n", None);
        let z5 = zeval_zobject::build::envelope_error(&empty).unwrap();
        assert_eq!(z5["Z5K2"]["Z6K1"], "Executor returned an empty response.");
        let nonsense = runner_output(b"hello", None);
        let z5 = zeval_zobject::build::envelope_error(&nonsense).unwrap();
        assert_eq!(
            z5["Z5K2"]["Z6K1"],
            "Executor returned some nonsense: hello."
        );
    }

    #[test]
    fn compiled_traps_say_what_they_usually_mean() {
        let explained = |message: &str| match explain_compiled_trap(RunError::Sandbox(
            SandboxError::Trap(message.to_owned()),
        )) {
            RunError::Sandbox(SandboxError::Trap(text)) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            explained("wasm trap: out of bounds memory access; stderr: x"),
            "wasm trap: out of bounds memory access (in compiled code: a stack overflow, or a pointer outside the program's memory); stderr: x"
        );
        assert!(explained("exit status 3").ends_with("before its function returned)"));
        assert_eq!(explained("something else"), "something else");
    }

    #[test]
    fn sandbox_failures_name_no_host_path() {
        let failures = [
            SandboxError::Setup(
                "preopen /var/cache/zeval/guests/python-stdlib: No such file".to_owned(),
            ),
            SandboxError::Io {
                path: "/var/cache/zeval/module-cache/python.cwasm".into(),
                source: std::io::Error::other("denied"),
            },
            SandboxError::Load {
                guest: "python".to_owned(),
                message: "/root/.cache/x.cwasm: bad".to_owned(),
            },
        ];
        for failure in failures {
            let z5 = limit_error(&failure);
            let message = z5["Z5K2"]["Z6K1"].as_str().unwrap();
            assert!(message.starts_with("The executor failed: "), "{message}");
            assert!(!message.contains('/'), "{message}");
        }
    }

    #[test]
    fn guest_output_is_quoted_short() {
        let nonsense = runner_output("é".repeat(100_000).as_bytes(), None);
        let z5 = zeval_zobject::build::envelope_error(&nonsense).unwrap();
        let message = z5["Z5K2"]["Z6K1"].as_str().unwrap();
        assert_eq!(
            message.chars().count(),
            "Executor returned some nonsense: ".len()
                + MAX_QUOTED_OUTPUT_CHARS
                + "….".chars().count()
        );
        let trap = limit_error(&SandboxError::Trap("x".repeat(10_000)));
        assert!(trap["Z5K2"]["Z6K1"].as_str().unwrap().chars().count() < 500);
    }

    #[test]
    fn remaining_time_caps_the_wall_time() {
        let limits = Limits::default();
        let now = Instant::now();
        assert_eq!(
            limits_within(&limits, None, now).unwrap().wall_time,
            limits.wall_time
        );
        let capped = limits_within(&limits, Some(0.25), now).unwrap();
        assert!(capped.wall_time <= Duration::from_millis(250));
        assert!(capped.wall_time > Duration::from_millis(200));
        for none_left in [0.0, -1.0, f64::NAN] {
            assert!(limits_within(&limits, Some(none_left), now).is_none());
        }
        let long_ago = now - Duration::from_secs(1);
        assert!(limits_within(&limits, Some(0.5), long_ago).is_none());
        for plenty in [1e9, f64::INFINITY, f64::MAX] {
            let kept = limits_within(&limits, Some(plenty), now).unwrap();
            assert_eq!(kept.wall_time, limits.wall_time);
        }
    }

    /// A compile-only run adds at most 250 ms to its call, and never runs past the call's
    /// wall time (a wait for a free worker counts).
    #[test]
    fn a_compile_only_run_gets_at_most_250_ms_of_what_the_call_has_left() {
        let second = Duration::from_secs(1);
        let ms = Duration::from_millis;
        assert_eq!(
            compile_only_time(10 * second, ms(3)),
            Some(COMPILE_ONLY_TIME)
        );
        assert_eq!(COMPILE_ONLY_TIME, ms(250));
        assert_eq!(compile_only_time(second, ms(900)), Some(ms(100)));
        assert_eq!(compile_only_time(second, ms(960)), None);
        assert_eq!(compile_only_time(second, 2 * second), None);
    }

    #[test]
    fn code_cache_keys_tell_guests_names_and_code_apart() {
        let keys = [
            code_cache_key("quickjs", "f", "return 1"),
            code_cache_key("python", "f", "return 1"),
            code_cache_key("quickjs", "fr", "eturn 1"),
            code_cache_key("quickjs", "", "freturn 1"),
            code_cache_key("quickjsf", "", "return 1"),
        ];
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
    }

    #[test]
    fn limits_name_themselves() {
        let timeout = limit_error(&SandboxError::Timeout {
            limit: Duration::from_secs(1),
        });
        assert_eq!(timeout, z5_untyped("Z558", "Function call timed out"));
        assert!(zeval_zobject::error::is_plain_timeout(&timeout));
        // The load's stops are Z558 too, and say why: not the implementation's own limit.
        let busy = limit_error(&SandboxError::Busy {
            guest: "quickjs".into(),
            capacity: 32,
            waited: Duration::from_secs(10),
        });
        let cut = limit_error(&SandboxError::ReserveTimeout {
            limit: Duration::from_secs(1),
        });
        let starved = limit_error(&SandboxError::Starved {
            limit: Duration::from_secs(10),
            used: Duration::from_millis(900),
        });
        assert_eq!(
            starved["Z5K2"]["Z6K1"],
            "Function call timed out: other calls held the CPUs: the call used 900 ms of its 10000 ms"
        );
        for load in [&busy, &cut, &starved] {
            assert_eq!(zeval_zobject::error::error_code(load), Some("Z558"));
            assert!(!zeval_zobject::error::is_plain_timeout(load), "{load}");
        }
        assert!(cut.to_string().contains("at most 1000 ms"), "{cut}");
        let memory = limit_error(&SandboxError::MemoryLimit {
            limit: 128 * 1024 * 1024,
        });
        assert_eq!(
            memory["Z5K2"]["Z6K1"],
            "Function call exceeded the memory limit of 128 MiB"
        );
        let output = limit_error(&SandboxError::OutputLimit { limit: 1000 });
        assert_eq!(
            output["Z5K2"]["Z6K1"],
            "Function call exceeded the output limit of 1000 bytes"
        );
    }
}
