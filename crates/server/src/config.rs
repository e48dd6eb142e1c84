//! The one configuration struct of `zeval serve`, filled in three layers: the TOML file, then
//! `ZEVAL_*` environment variables, then command-line flags (each layer overrides the one
//! before). `zeval.toml` at the repository root lists every setting with its default; a test
//! checks that it parses to exactly [`Config::default`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for [`Config`].
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// A setting that cannot work as given.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A combination of settings that would leave the service open to abuse.
    #[error("unsafe configuration: {0}")]
    Unsafe(String),
    /// An environment variable has a value of the wrong shape.
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
}

/// Which services a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The orchestrator API (with objects, testers, metrics) and the evaluator API.
    #[default]
    All,
    /// Only the orchestrator API (code runs in process or on the configured evaluators).
    Orchestrator,
    /// Only the evaluator API.
    Evaluator,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Role::All),
            "orchestrator" => Ok(Role::Orchestrator),
            "evaluator" => Ok(Role::Evaluator),
            _ => Err(format!(
                "expected all, orchestrator or evaluator, got {s:?}"
            )),
        }
    }
}

/// Who may run function calls (Wikifunctions limited calls to logged-in users after its 2023
/// security report, then opened community-approved functions to everybody).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CallPolicy {
    /// Anybody may call anything.
    #[default]
    Open,
    /// Only requests with a valid token may call.
    Users,
    /// Anybody may call a function whose chosen implementation is approved; other calls
    /// need a valid token.
    Approved,
}

impl std::str::FromStr for CallPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(CallPolicy::Open),
            "users" => Ok(CallPolicy::Users),
            "approved" => Ok(CallPolicy::Approved),
            _ => Err(format!("expected open, users or approved, got {s:?}")),
        }
    }
}

/// The wire format spoken to a remote evaluator (spec §2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// `{reentrant, zobject}` JSON.
    Json,
    /// Versioned Avro 0.0.4, as the original orchestrator sends.
    #[default]
    Avro,
}

/// Where the code of one programming language runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EvaluatorEndpoint {
    /// The string `"in-process"`: this process's own sandbox.
    Named(InProcess),
    /// An evaluator service (e.g. another `zeval serve --role evaluator`).
    Remote {
        /// Its evaluate route, e.g. `http://127.0.0.1:6927/wikifunctions.org/v1/evaluate/`.
        url: String,
        /// The wire format.
        #[serde(default)]
        format: WireFormat,
    },
    /// Several evaluator services taking the same calls: each call goes to the one with the
    /// fewest calls outstanding, skipping those found down or draining, and a call whose
    /// evaluator died before answering goes to another (see `crate::evaluator_pool` and
    /// [`Failover`]).
    Pool {
        /// Their evaluate routes (at least one).
        urls: Vec<String>,
        /// The wire format.
        #[serde(default)]
        format: WireFormat,
    },
}

/// The only named endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InProcess {
    /// Run in this process.
    #[serde(rename = "in-process")]
    InProcess,
}

impl EvaluatorEndpoint {
    /// This process's sandbox.
    pub const IN_PROCESS: EvaluatorEndpoint = EvaluatorEndpoint::Named(InProcess::InProcess);
}

/// How an orchestrator spreads calls over remote evaluators, and how an evaluator node
/// leaves (see `crate::evaluator_pool` and `crate::drain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Failover {
    /// How often each remote evaluator's health is checked, in milliseconds (default 1000).
    pub health_interval_ms: u64,
    /// Longest wait for one health answer, in milliseconds (default 1000); past it the
    /// evaluator counts as down.
    pub health_timeout_ms: u64,
    /// Most times one code run is sent (default 3, at least 1): a run whose evaluator gave no
    /// response (connection refused, reset or closed before the status line) or refused it
    /// with 503 is sent again while the call has time left, to an evaluator not tried yet,
    /// else to one tried already (a Service URL may reach another pod). Never after an
    /// answer, even a cut or failing one. At most [`MAX_ATTEMPTS`]: a connection reset after
    /// the body was sent may come after the code started, so each attempt may run it again.
    pub max_attempts: usize,
    /// How long an evaluator node drains on SIGTERM, in milliseconds (default 30000): it
    /// refuses new calls (503, its health says `draining`) and waits for those in flight;
    /// past this it exits anyway.
    pub drain_timeout_ms: u64,
}

/// The largest `failover.max_attempts` accepted.
pub const MAX_ATTEMPTS: usize = 10;

/// The stack of the orchestrating threads per level of `limits.max_value_depth`
/// (`zeval_orchestrator::STACK_BYTES_PER_VALUE_LEVEL`): parsing and the orchestrator's own
/// walks grow their stacks as they need, but dropping a `serde_json::Value` and writing one
/// recurse once per level on the thread's own stack.
pub use zeval_orchestrator::STACK_BYTES_PER_VALUE_LEVEL;

/// The default `limits.worker_stack_bytes`: 80 MiB, the 64 MiB that the default
/// `max_value_depth` needs ([`min_worker_stack_bytes`]) and 16 MiB for the recursion above a
/// call of code. The orchestrator runs such a call where a value that deep fits, on a stack
/// segment of its own when less than that is left; with 16 MiB over, only a call some
/// thousands of levels deep in a recursion pays for one (a map of 64 MiB).
pub const DEFAULT_WORKER_STACK_BYTES: usize = 80 * 1024 * 1024;

/// The least `limits.worker_stack_bytes` taken for values `max_value_depth` levels deep
/// ([`STACK_BYTES_PER_VALUE_LEVEL`] each), and never less than Rust's default 2 MiB.
pub fn min_worker_stack_bytes(max_value_depth: usize) -> usize {
    max_value_depth
        .saturating_mul(STACK_BYTES_PER_VALUE_LEVEL)
        .max(2 * 1024 * 1024)
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            health_interval_ms: 1000,
            health_timeout_ms: 1000,
            max_attempts: 3,
            drain_timeout_ms: 30_000,
        }
    }
}

/// Size and concurrency limits of the HTTP services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest orchestrator request body in bytes. The original's body-parser default is
    /// "100kb" = 102400 bytes.
    pub orchestrator_body_bytes: usize,
    /// Largest evaluator request body in bytes. The original sets "2mb" = 2097152 bytes.
    pub evaluator_body_bytes: usize,
    /// Requests doing work (calls, tests, writes) at once on the orchestrator API; beyond it
    /// the answer is 503 with `Retry-After` rather than a queue without bound.
    pub max_concurrent_requests: usize,
    /// Work slots of the evaluator API, separate from the orchestrator's so that neither
    /// side can starve the other (default 32).
    pub evaluator_max_concurrent_requests: usize,
    /// Threads that run the evaluator API's guest calls from a queue when guests run in
    /// this process (`crate::guest_lanes`; `ZEVAL_GUEST_LANES`). Unset: the CPUs less a
    /// third of them (less one at least; one lane at least), and an evaluator node
    /// (`role = "evaluator"`) then runs its async side on the CPUs left. 0: none, every call
    /// on tokio's blocking threads.
    pub guest_lanes: Option<usize>,
    /// Work slots one client may hold at once on the orchestrator API (default 8); beyond it
    /// the answer is 429 with `Retry-After`. A client is its bearer token when it sends one,
    /// else its IP address.
    pub per_client_concurrent_requests: usize,
    /// Calls that may run beyond `max_concurrent_requests`, one for each client with nothing
    /// else in flight (default 8; 0: none; `ZEVAL_RESERVE_REQUESTS`): without them, eight
    /// clients within their per-client limits held every slot (see `crate::limits`).
    pub reserve_requests: usize,
    /// The deadline of a call run in the reserve, in milliseconds (default 1000;
    /// `ZEVAL_RESERVE_CALL_TIMEOUT_MS`).
    pub reserve_call_timeout_ms: u64,
    /// Work requests one client may start per minute on the orchestrator API (default 0: no
    /// limit); beyond it 429 with `Retry-After` until the next minute.
    pub per_client_requests_per_minute: u64,
    /// Proxies (addresses or ranges such as `10.0.0.0/8`) whose `X-Forwarded-For` names the
    /// client an anonymous request is counted under (see `crate::client_address`); default
    /// none: the peer's address, and the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// The prefix length an anonymous IPv6 client is counted under (default 64; 0 to 128;
    /// `ZEVAL_CLIENT_IPV6_PREFIX`): a host is usually given a whole /64, and counted by
    /// address it could be as many clients as it liked (see `crate::client_address`).
    pub client_ipv6_prefix: u8,
    /// A Redis shared by several orchestrators, to count the per-client limits across them
    /// (see `crate::shared_limits`); unset: each node counts alone.
    pub redis_url: Option<String>,
    /// The longest wait for one command to that Redis, in milliseconds (default 50); past it
    /// the node counts alone for a second.
    pub redis_timeout_ms: u64,
    /// A secret the clients' names are hashed with before they become Redis keys (HMAC-
    /// SHA-256; the same on every node; `ZEVAL_LIMITS_REDIS_KEY_SECRET`). Unset: plain
    /// SHA-256, which anyone who reads Redis can reverse for an IPv4 address by trying all
    /// 2^32 (a warning at start).
    pub redis_key_secret: Option<String>,
    /// Time a client has to send a whole request body once its headers are in, in
    /// milliseconds (default 10000); past it the answer is 408. Bodies are read before a
    /// work slot is taken, so a slow sender holds no slot while it sends.
    pub body_timeout_ms: u64,
    /// Time a client has to send a request's headers, in milliseconds (default 5000): from
    /// the moment it connects for the first request, from its first byte for later ones.
    /// Past it the connection is closed.
    pub header_timeout_ms: u64,
    /// Time a keep-alive connection may stay idle between requests, in milliseconds
    /// (default 60000); past it the connection is closed.
    pub idle_timeout_ms: u64,
    /// Open connections per listener (default 1024). At it, a connection of the client
    /// holding the most, with no request at work, is closed to make room for a new one;
    /// while none can be, new connections wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Open connections per client and listener (default 256, a quarter of
    /// `max_connections`; 0: no limit). A client is its peer's address, an IPv6 one by its
    /// network of `client_ipv6_prefix` bits; trusted proxies, which speak for many, have no
    /// limit. Past it new connections from that client are closed as soon as they are
    /// accepted, so that one address cannot hold every connection of the listener.
    pub max_connections_per_client: usize,
    /// Bytes of responses (of at least 64 KiB each) handed to connections and not yet taken
    /// by the kernel, per listener (default 256 MiB): a client that asks for large answers
    /// and does not read them holds them in memory until the idle timeout. Past it, a large
    /// response becomes a 503; one response is always let through. 0: no limit. The
    /// evaluator API's listener and the nested calls' callback route are not counted.
    pub max_unsent_response_bytes: usize,
    /// The same per client (default 32 MiB; trusted proxies have only the listener's limit;
    /// 0: no limit).
    pub max_unsent_response_bytes_per_client: usize,
    /// Cells (testers × implementations) one `POST /v1/test` may ask for (default 200);
    /// more is 400.
    pub max_test_cells: usize,
    /// Time budget of one `POST /v1/test`, in milliseconds (default 60000): cells not started
    /// before it are reported as not run.
    pub test_timeout_ms: u64,
    /// The longest one search of the store runs (`GET /v1/objects?search=`), in
    /// milliseconds; past it 503 (`zeval_store::SEARCH_TIME_LIMIT`, 1 s).
    pub search_time_ms: u64,
    /// The `Retry-After` value (seconds) sent with those 503s.
    pub retry_after_seconds: u64,
    /// Time budget of one function call in milliseconds; the original answers Z558 "Function
    /// call timed out" after 20 s.
    pub call_timeout_ms: u64,
    /// Stack size of the threads that orchestrate (ZObject code recurses over deep values).
    pub worker_stack_bytes: usize,
    /// The orchestrator's per-request budget (`zeval_orchestrator::BudgetLimits`): largest
    /// value, in nodes, any stage materialises (default 2,000,000); past it Z590.
    pub max_value_nodes: usize,
    /// Deepest value any stage materialises or a built-in builds (default 20,000: a normal
    /// list nests one level per element); past it Z590.
    pub max_value_depth: usize,
    /// Most steps (resolve iterations, call levels, nodes walked) of one request (default
    /// 50,000,000); past it Z590.
    pub max_steps: u64,
    /// Most host memory one request's live values may hold, in bytes (default 256 MiB); past
    /// it Z590.
    pub max_request_memory_bytes: usize,
    /// Most calls from code (`W.Call`) in progress inside one another (default 8, below the
    /// 32 sandbox slots of a guest); past it Z590 `reentrant depth`.
    pub max_reentrant_depth: usize,
    /// Most calls from code in one request (default 1,000); past it Z590 `nested calls`.
    pub max_nested_calls: u64,
    /// Most calls from code in progress at once in all the requests of one client on this
    /// node, counted per client as the work slots are (`per_client_concurrent_requests`);
    /// default 8, so that a client's 8 requests and their waiting guests hold at most 16 of
    /// the node's 32 executors. 0: no limit. Past it Z590 `client's calls from code`.
    pub max_reentrant_calls_per_client: usize,
}

impl Limits {
    /// The orchestrator's per-request budget these limits set.
    pub fn budget(&self) -> zeval_orchestrator::BudgetLimits {
        zeval_orchestrator::BudgetLimits {
            max_value_nodes: self.max_value_nodes,
            max_value_depth: self.max_value_depth,
            max_steps: self.max_steps,
            max_request_memory_bytes: self.max_request_memory_bytes,
        }
    }

    /// The bounds of calls from code these limits set.
    pub fn reentry(&self) -> zeval_orchestrator::ReentryLimits {
        zeval_orchestrator::ReentryLimits {
            max_depth: self.max_reentrant_depth,
            max_calls: self.max_nested_calls,
            max_per_client: self.max_reentrant_calls_per_client,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            orchestrator_body_bytes: 100 * 1024,
            evaluator_body_bytes: 2 * 1024 * 1024,
            max_concurrent_requests: 64,
            evaluator_max_concurrent_requests: 32,
            guest_lanes: None,
            per_client_concurrent_requests: 8,
            reserve_requests: 8,
            reserve_call_timeout_ms: 1000,
            per_client_requests_per_minute: 0,
            trusted_proxies: Vec::new(),
            client_ipv6_prefix: crate::client_address::DEFAULT_CLIENT_IPV6_PREFIX,
            redis_url: None,
            redis_timeout_ms: 50,
            redis_key_secret: None,
            body_timeout_ms: 10_000,
            header_timeout_ms: 5_000,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
            max_connections_per_client: 256,
            max_unsent_response_bytes: 256 * 1024 * 1024,
            max_unsent_response_bytes_per_client: 32 * 1024 * 1024,
            max_test_cells: 200,
            test_timeout_ms: 60_000,
            search_time_ms: zeval_store::SEARCH_TIME_LIMIT.as_millis() as u64,
            retry_after_seconds: 1,
            call_timeout_ms: 20_000,
            worker_stack_bytes: DEFAULT_WORKER_STACK_BYTES,
            max_value_nodes: zeval_orchestrator::DEFAULT_MAX_VALUE_NODES,
            max_value_depth: zeval_orchestrator::DEFAULT_MAX_VALUE_DEPTH,
            max_steps: zeval_orchestrator::DEFAULT_MAX_STEPS,
            max_request_memory_bytes: zeval_orchestrator::DEFAULT_MAX_REQUEST_MEMORY_BYTES,
            max_reentrant_depth: zeval_orchestrator::reentry::DEFAULT_MAX_REENTRANT_DEPTH,
            max_nested_calls: zeval_orchestrator::reentry::DEFAULT_MAX_NESTED_CALLS,
            max_reentrant_calls_per_client:
                zeval_orchestrator::reentry::DEFAULT_MAX_REENTRANT_CALLS_PER_CLIENT,
        }
    }
}

/// Where guest code runs (see `zeval_worker`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workers {
    /// Run guests in confined worker processes (default true): a seccomp allowlist,
    /// landlock, no new privileges, an unprivileged user, around the wasm sandbox. `false`
    /// runs them on the server's own threads, behind the wasm sandbox alone (for
    /// benchmarks and debugging).
    pub enabled: bool,
    /// Most worker processes, i.e. guest calls in flight (default 32).
    pub max_workers: usize,
    /// Workers kept started while idle (default 2).
    pub min_workers: usize,
    /// How long past a call's deadline a silent worker is given before it is killed, in
    /// milliseconds (default 1000).
    pub kill_margin_ms: u64,
    /// The user workers run as when the server runs as root: a name or `uid:gid`
    /// (default: `nobody`).
    pub user: Option<String>,
    /// Bind a worker to the CPU of the thread that waits for it, for a call that is the
    /// only one in flight (default false; `ZEVAL_WORKERS_COLOCATE`): the two then hand over
    /// on one CPU instead of waking an idle one. On a virtual machine whose host is slow to
    /// wake an idle vCPU that can save up to a millisecond a call; otherwise the caller
    /// waits for the worker's reset on the shared CPU (see
    /// `zeval_worker::WorkerPoolConfig::colocate`).
    pub colocate: bool,
    /// How long the thread waiting for a call that is the only one in flight keeps checking
    /// for the worker's answer before it sleeps, in microseconds (default 200; 0: sleep at
    /// once; `ZEVAL_WORKERS_LONE_CALL_SPIN_US`): waking a sleeping thread on another CPU
    /// can cost more than a short call (see `zeval_worker::WorkerPoolConfig::lone_call_spin`).
    pub lone_call_spin_us: u64,
    /// Guest calls that start at once without waiting; a call that finds this many in
    /// flight waits up to `running_wait_ms` for one to end, then starts anyway (default:
    /// twice the CPUs; calls lowered for running long do not count; see
    /// `zeval_worker::WorkerPoolConfig::max_running`).
    pub max_running: Option<usize>,
    /// The longest a call waits for `max_running`, in milliseconds (default 2).
    pub running_wait_ms: u64,
    /// How long a call that finds no idle worker waits for one to come free before it asks
    /// for a new one, in milliseconds (default 2; see
    /// `zeval_worker::WorkerPoolConfig::start_after`).
    pub start_after_ms: u64,
    /// Most workers starting at once (default 1; further starts queue; see
    /// `zeval_worker::WorkerPoolConfig::max_starting`).
    pub max_starting: usize,
    /// How long a worker beyond `min_workers` may stay idle before it is stopped, in
    /// seconds (default 60; 0: never; `ZEVAL_WORKERS_RETIRE_IDLE_AFTER_S`; see
    /// `zeval_worker::WorkerPoolConfig::retire_idle_after`).
    pub retire_idle_after_s: u64,
    /// How many calls one worker serves before it is stopped and replaced (default 10,000;
    /// 0: never; `ZEVAL_WORKERS_RECYCLE_AFTER_CALLS`): a guest that escaped into its worker
    /// sees at most that many of the calls that follow (see
    /// `zeval_worker::WorkerPoolConfig::recycle_after_calls`).
    pub recycle_after_calls: u64,
    /// Workers that may start beyond `max_workers` while every one of those holds a call
    /// that has run longer than 10 ms (default: twice the CPUs; 0: none;
    /// `ZEVAL_WORKERS_RESERVE`): a few clients' endless loops, each client within its
    /// per-client limit, cannot keep every other call waiting until its deadline (see
    /// `zeval_worker::WorkerPoolConfig::reserve_workers`).
    pub reserve_workers: Option<usize>,
    /// The longest a call that finds `max_workers` calls in flight may run, in milliseconds
    /// (default 1000; `ZEVAL_WORKERS_RESERVE_CALL_MS`).
    pub reserve_call_ms: u64,
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            enabled: true,
            max_workers: 32,
            min_workers: 2,
            kill_margin_ms: 1000,
            user: None,
            colocate: false,
            lone_call_spin_us: zeval_evaluator::DEFAULT_LONE_CALL_SPIN.as_micros() as u64,
            max_running: None,
            running_wait_ms: 2,
            start_after_ms: 2,
            max_starting: 1,
            retire_idle_after_s: zeval_evaluator::DEFAULT_RETIRE_IDLE_AFTER.as_secs(),
            recycle_after_calls: zeval_evaluator::DEFAULT_RECYCLE_AFTER_CALLS,
            reserve_workers: None,
            reserve_call_ms: zeval_evaluator::DEFAULT_RESERVE_CALL_TIME.as_millis() as u64,
        }
    }
}

/// The compilers of C and Rust implementations (see `zeval_compiler`), found at start;
/// a language whose compiler is missing has no executor (one warning in the log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Compiler {
    /// The Rust toolchain's sysroot (it needs the `wasm32-wasip1` target). Default: what
    /// `rustc --print sysroot` says in the server's working directory, so a
    /// `rust-toolchain.toml` there picks it.
    pub rust_sysroot: Option<PathBuf>,
    /// The clang to compile C with (default `clang-19`, else `clang`, from `PATH`).
    pub clang: Option<PathBuf>,
    /// A private directory for compiled implementations' artifacts, used instead of the
    /// object store (commands without a store, such as `zeval call`). Default unset: the
    /// store keeps them (an evaluator-only node: `<data_dir>/artifacts`).
    pub artifact_dir: Option<PathBuf>,
    /// Keep what calls compile (inline code, or stored code compiled after its save) in the
    /// artifact store, and compiled modules run in process in the module cache on disk.
    /// Default off: anyone who may call may send inline code, and each distinct source would
    /// be kept forever (up to 32 MiB each); such artifacts are then kept in memory only
    /// (256 MiB, least recently used dropped) and compiled again after a restart. `zeval
    /// call` turns it on: it runs alone, and its next run would compile again.
    pub keep_call_time_artifacts: bool,
    /// The most bytes of compiled artifacts the store keeps for the implementations one
    /// author saved (default 256 MiB: a C artifact is tens of KiB, a Rust one a few hundred).
    /// The store keeps the artifacts of current and approved revisions only, and these count;
    /// a save that would take its author past the budget with a new artifact is stored, but
    /// its artifact is kept in memory only, and its compilation report says so.
    pub stored_artifact_bytes_per_author: u64,
}

/// [`Compiler::stored_artifact_bytes_per_author`] by default.
pub const DEFAULT_STORED_ARTIFACT_BYTES_PER_AUTHOR: u64 = 256 * 1024 * 1024;

impl Default for Compiler {
    fn default() -> Self {
        Compiler {
            rust_sysroot: None,
            clang: None,
            artifact_dir: None,
            keep_call_time_artifacts: false,
            stored_artifact_bytes_per_author: DEFAULT_STORED_ARTIFACT_BYTES_PER_AUTHOR,
        }
    }
}

/// How a function's implementations are ordered (see `crate::ranking`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankingSettings {
    /// Rank implementations by tester results and real calls, and let a failing code
    /// implementation fall through to the next. Off: list order, as the original.
    pub enabled: bool,
    /// Successful real calls needed before their p50 replaces the testers' figures.
    pub min_live_calls: u64,
    /// A challenger must cost less than this share of the implementation ahead of it.
    pub promote_factor: f64,
    /// One call in this many goes to an implementation without enough real calls (0: never).
    pub explore_every: u64,
    /// How long a computed order is used before it is computed again, in milliseconds (and,
    /// with `redis_url`, how old another node's figures may be).
    pub refresh_ms: u64,
    /// How often real-call figures are written to the store (and Redis), in milliseconds.
    pub flush_ms: u64,
    /// A Redis shared by several orchestrators, so that the real-call figures of every node
    /// rank implementations on all (see `crate::ranking::shared`); unset: each node alone.
    pub redis_url: Option<String>,
    /// The longest wait for one command to that Redis, in milliseconds (default 50); past it
    /// the node ranks with its own figures for a second.
    pub redis_timeout_ms: u64,
}

impl Default for RankingSettings {
    fn default() -> Self {
        let d = crate::ranking::RankingConfig::default();
        RankingSettings {
            enabled: d.enabled,
            min_live_calls: d.policy.min_live_calls,
            promote_factor: d.policy.promote_factor,
            explore_every: d.explore_every,
            refresh_ms: d.refresh.as_millis() as u64,
            flush_ms: d.flush.as_millis() as u64,
            redis_url: None,
            redis_timeout_ms: 50,
        }
    }
}

impl RankingSettings {
    /// The ranking's configuration.
    pub fn config(&self) -> crate::ranking::RankingConfig {
        let d = crate::ranking::RankingConfig::default();
        crate::ranking::RankingConfig {
            enabled: self.enabled,
            policy: crate::ranking::order::Policy {
                min_live_calls: self.min_live_calls,
                promote_factor: self.promote_factor.clamp(0.0, 1.0),
                ..d.policy
            },
            explore_every: self.explore_every,
            refresh: std::time::Duration::from_millis(self.refresh_ms),
            flush: std::time::Duration::from_millis(self.flush_ms.max(1)),
        }
    }
}

/// The result cache of function calls (see `crate::result_cache`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Remember answers at all (default true).
    pub enabled: bool,
    /// Bytes the in-process cache may hold (default 64 MiB); past it the least recently
    /// used answers go. Not used with `redis_url`.
    pub max_bytes: usize,
    /// A Redis shared by several nodes (`redis://host:port/db`, `unix:///path`); unset: in
    /// process.
    pub redis_url: Option<String>,
    /// Longest wait for Redis per connect, read or write, in milliseconds (default 50);
    /// past it the call goes uncached.
    pub redis_timeout_ms: u64,
    /// How long a successful answer is kept, in seconds (default 30 days).
    pub success_ttl_seconds: u64,
    /// How long an error answer (timeout, evaluator failure, any Z5) is kept, in seconds
    /// (default 60).
    pub failure_ttl_seconds: u64,
    /// Largest answer kept, in bytes of JSON (default 1 MiB).
    pub max_value_bytes: usize,
    /// Most objects one answer may depend on to be kept (default 1000).
    pub max_dependencies: usize,
    /// Functions whose calls are never cached, nor any call that reads them.
    pub uncacheable: Vec<String>,
    /// Keep what a JavaScript or Python code string compiles to, and run it in later calls
    /// of the same code string instead of compiling again (default true). The server keeps one
    /// cache per worker process (at most 4 MiB each); see `zeval_sandbox::code_cache`. Unlike the answers
    /// above, nothing of a call's result is kept.
    pub compiled_code: bool,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            max_bytes: 64 * 1024 * 1024,
            redis_url: None,
            redis_timeout_ms: 50,
            success_ttl_seconds: 30 * 24 * 3600,
            failure_ttl_seconds: 60,
            max_value_bytes: 1024 * 1024,
            max_dependencies: 1000,
            uncacheable: Vec::new(),
            compiled_code: true,
        }
    }
}

/// Who may do what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Access {
    /// Who may run calls: `open`, `users` or `approved`.
    pub calls: CallPolicy,
}

/// Everything `zeval serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which services to run.
    pub role: Role,
    /// Address of the orchestrator API (the original's port 6254).
    pub listen: SocketAddr,
    /// Address of the evaluator API (the original's port 6927).
    pub evaluator_listen: SocketAddr,
    /// Directory of the embedded store (`zeval.sqlite`), created on the first run.
    pub data_dir: PathBuf,
    /// The object store's database when it is not the embedded SQLite file:
    /// `postgres://user:password@host:port/database` (PostgreSQL, shared by several nodes),
    /// or `sqlite://PATH`. Unset: `<data_dir>/zeval.sqlite`.
    pub database_url: Option<String>,
    /// A MediaWiki `api.php` consulted for ZIDs neither the catalogue nor the store has.
    pub wiki_url: Option<String>,
    /// Directory of the guest interpreters built by `guests/build.sh` (default:
    /// `$ZEVAL_GUEST_DIR`, else `/var/cache/zeval/guests`).
    pub guest_dir: Option<PathBuf>,
    /// Size, time and concurrency limits.
    pub limits: Limits,
    /// Access rules.
    pub access: Access,
    /// Where guest code runs.
    pub workers: Workers,
    /// The compilers of the compiled languages (C, Rust) and where their artifacts go.
    pub compiler: Compiler,
    /// How implementations are ordered.
    pub ranking: RankingSettings,
    /// The result cache of function calls.
    pub cache: CacheSettings,
    /// The secret an orchestrator sends to the evaluator API in `X-Zeval-Evaluator-Secret`.
    /// When set, evaluate requests without it are 401; when unset, the evaluator API must
    /// listen on a loopback address (`zeval serve` refuses to start otherwise).
    pub evaluator_secret: Option<String>,
    /// The name this instance reports in call metadata instead of the machine's host name
    /// (unset: a random name per process).
    pub instance_name: Option<String>,
    /// Count wasm fuel in guest calls and report it as `executionFuelConsumed` (default
    /// false: the wall-time deadline bounds a call's CPU already, and metering costs a
    /// trivial call about a tenth of its time; `zeval_sandbox::SandboxConfig::fuel_metering`).
    pub fuel_metering: bool,
    /// The orchestrator's URL as remote evaluators reach it (`http://host:port`), where they
    /// post the nested calls of reentrant code. Unset: the orchestrator listener as bound
    /// (loopback for an unspecified address such as 0.0.0.0).
    pub callback_url: Option<String>,
    /// Where each programming language runs, keyed by the `Z61K1` code. A key matches a code
    /// equal to it or starting with `<key>-` (so `python` covers `python-3-9`); `*` matches
    /// every language. Languages not matched run in process.
    pub evaluators: BTreeMap<String, EvaluatorEndpoint>,
    /// Health checks, retries and drain of remote evaluators.
    pub failover: Failover,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            role: Role::All,
            listen: SocketAddr::from(([127, 0, 0, 1], 6254)),
            evaluator_listen: SocketAddr::from(([127, 0, 0, 1], 6927)),
            data_dir: PathBuf::from("./zeval-data"),
            database_url: None,
            wiki_url: None,
            guest_dir: None,
            limits: Limits::default(),
            access: Access::default(),
            workers: Workers::default(),
            compiler: Compiler::default(),
            ranking: RankingSettings::default(),
            cache: CacheSettings::default(),
            evaluator_secret: None,
            instance_name: None,
            fuel_metering: false,
            callback_url: None,
            evaluators: BTreeMap::new(),
            failover: Failover::default(),
        }
    }
}

/// The `ZEVAL_*` variables that [`Config::apply_env`] reads, with the field each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("ZEVAL_ROLE", "role"),
    ("ZEVAL_LISTEN", "listen"),
    ("ZEVAL_EVALUATOR_LISTEN", "evaluator_listen"),
    ("ZEVAL_DATA_DIR", "data_dir"),
    ("ZEVAL_DATABASE_URL", "database_url"),
    ("ZEVAL_WIKI_URL", "wiki_url"),
    ("ZEVAL_GUEST_DIR", "guest_dir"),
    ("ZEVAL_CALLS", "access.calls"),
    ("ZEVAL_RANKING", "ranking.enabled"),
    ("ZEVAL_RANKING_REDIS_URL", "ranking.redis_url"),
    ("ZEVAL_CACHE", "cache.enabled"),
    ("ZEVAL_CACHE_MAX_BYTES", "cache.max_bytes"),
    ("ZEVAL_CACHE_REDIS_URL", "cache.redis_url"),
    (
        "ZEVAL_CACHE_SUCCESS_TTL_SECONDS",
        "cache.success_ttl_seconds",
    ),
    (
        "ZEVAL_CACHE_FAILURE_TTL_SECONDS",
        "cache.failure_ttl_seconds",
    ),
    (
        "ZEVAL_CACHE_UNCACHEABLE",
        "cache.uncacheable (comma-separated)",
    ),
    (
        "ZEVAL_ORCHESTRATOR_BODY_BYTES",
        "limits.orchestrator_body_bytes",
    ),
    ("ZEVAL_EVALUATOR_BODY_BYTES", "limits.evaluator_body_bytes"),
    (
        "ZEVAL_MAX_CONCURRENT_REQUESTS",
        "limits.max_concurrent_requests",
    ),
    ("ZEVAL_CALL_TIMEOUT_MS", "limits.call_timeout_ms"),
    ("ZEVAL_MAX_VALUE_NODES", "limits.max_value_nodes"),
    ("ZEVAL_MAX_VALUE_DEPTH", "limits.max_value_depth"),
    ("ZEVAL_MAX_STEPS", "limits.max_steps"),
    (
        "ZEVAL_MAX_REQUEST_MEMORY_BYTES",
        "limits.max_request_memory_bytes",
    ),
    ("ZEVAL_MAX_REENTRANT_DEPTH", "limits.max_reentrant_depth"),
    ("ZEVAL_MAX_NESTED_CALLS", "limits.max_nested_calls"),
    (
        "ZEVAL_MAX_REENTRANT_CALLS_PER_CLIENT",
        "limits.max_reentrant_calls_per_client",
    ),
    (
        "ZEVAL_EVALUATOR_MAX_CONCURRENT_REQUESTS",
        "limits.evaluator_max_concurrent_requests",
    ),
    (
        "ZEVAL_PER_CLIENT_CONCURRENT_REQUESTS",
        "limits.per_client_concurrent_requests",
    ),
    (
        "ZEVAL_PER_CLIENT_REQUESTS_PER_MINUTE",
        "limits.per_client_requests_per_minute",
    ),
    ("ZEVAL_RESERVE_REQUESTS", "limits.reserve_requests"),
    ("ZEVAL_GUEST_LANES", "limits.guest_lanes"),
    (
        "ZEVAL_RESERVE_CALL_TIMEOUT_MS",
        "limits.reserve_call_timeout_ms",
    ),
    ("ZEVAL_LIMITS_REDIS_URL", "limits.redis_url"),
    ("ZEVAL_LIMITS_REDIS_KEY_SECRET", "limits.redis_key_secret"),
    ("ZEVAL_TRUSTED_PROXIES", "limits.trusted_proxies"),
    ("ZEVAL_CLIENT_IPV6_PREFIX", "limits.client_ipv6_prefix"),
    ("ZEVAL_BODY_TIMEOUT_MS", "limits.body_timeout_ms"),
    ("ZEVAL_HEADER_TIMEOUT_MS", "limits.header_timeout_ms"),
    ("ZEVAL_IDLE_TIMEOUT_MS", "limits.idle_timeout_ms"),
    ("ZEVAL_MAX_CONNECTIONS", "limits.max_connections"),
    (
        "ZEVAL_MAX_CONNECTIONS_PER_CLIENT",
        "limits.max_connections_per_client",
    ),
    ("ZEVAL_MAX_TEST_CELLS", "limits.max_test_cells"),
    ("ZEVAL_TEST_TIMEOUT_MS", "limits.test_timeout_ms"),
    ("ZEVAL_SEARCH_TIME_MS", "limits.search_time_ms"),
    ("ZEVAL_WORKERS", "workers.enabled"),
    ("ZEVAL_MAX_WORKERS", "workers.max_workers"),
    ("ZEVAL_WORKERS_COLOCATE", "workers.colocate"),
    (
        "ZEVAL_WORKERS_RETIRE_IDLE_AFTER_S",
        "workers.retire_idle_after_s",
    ),
    (
        "ZEVAL_WORKERS_RECYCLE_AFTER_CALLS",
        "workers.recycle_after_calls",
    ),
    (
        "ZEVAL_WORKERS_LONE_CALL_SPIN_US",
        "workers.lone_call_spin_us",
    ),
    ("ZEVAL_WORKERS_RESERVE", "workers.reserve_workers"),
    ("ZEVAL_WORKERS_RESERVE_CALL_MS", "workers.reserve_call_ms"),
    ("ZEVAL_WORKER_USER", "workers.user"),
    ("ZEVAL_RUST_SYSROOT", "compiler.rust_sysroot"),
    ("ZEVAL_CLANG", "compiler.clang"),
    ("ZEVAL_EVALUATOR_SECRET", "evaluator_secret"),
    ("ZEVAL_INSTANCE_NAME", "instance_name"),
    ("ZEVAL_CALLBACK_URL", "callback_url"),
    (
        "ZEVAL_EVALUATOR_URL",
        "evaluators.\"*\" (remote, Avro; several URLs separated by commas)",
    ),
    ("ZEVAL_DRAIN_TIMEOUT_MS", "failover.drain_timeout_ms"),
];

impl Config {
    /// Parses TOML text.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Overrides fields from `ZEVAL_*` variables, read through `get` (so tests need not touch
    /// the process environment). Empty values are ignored.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parsed<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env {
                name: name.into(),
                value: value.into(),
                message: e.to_string(),
            })
        }
        /// The non-empty entries of a comma-separated list.
        fn comma_list(value: &str) -> Vec<String> {
            value
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(str::to_owned)
                .collect()
        }
        for &(name, _) in ENV_VARS {
            let Some(value) = get(name).filter(|v| !v.is_empty()) else {
                continue;
            };
            let v = value.as_str();
            match name {
                "ZEVAL_ROLE" => self.role = parsed(name, v)?,
                "ZEVAL_LISTEN" => self.listen = parsed(name, v)?,
                "ZEVAL_EVALUATOR_LISTEN" => self.evaluator_listen = parsed(name, v)?,
                "ZEVAL_DATA_DIR" => self.data_dir = PathBuf::from(v),
                "ZEVAL_DATABASE_URL" => self.database_url = Some(value.clone()),
                "ZEVAL_WIKI_URL" => self.wiki_url = Some(value.clone()),
                "ZEVAL_GUEST_DIR" => self.guest_dir = Some(PathBuf::from(v)),
                "ZEVAL_CALLS" => self.access.calls = parsed(name, v)?,
                "ZEVAL_RANKING" => self.ranking.enabled = parsed(name, v)?,
                "ZEVAL_RANKING_REDIS_URL" => self.ranking.redis_url = Some(value.clone()),
                "ZEVAL_CACHE" => self.cache.enabled = parsed(name, v)?,
                "ZEVAL_CACHE_MAX_BYTES" => self.cache.max_bytes = parsed(name, v)?,
                "ZEVAL_CACHE_REDIS_URL" => self.cache.redis_url = Some(value.clone()),
                "ZEVAL_CACHE_SUCCESS_TTL_SECONDS" => {
                    self.cache.success_ttl_seconds = parsed(name, v)?
                }
                "ZEVAL_CACHE_FAILURE_TTL_SECONDS" => {
                    self.cache.failure_ttl_seconds = parsed(name, v)?
                }
                "ZEVAL_CACHE_UNCACHEABLE" => self.cache.uncacheable = comma_list(v),
                "ZEVAL_ORCHESTRATOR_BODY_BYTES" => {
                    self.limits.orchestrator_body_bytes = parsed(name, v)?
                }
                "ZEVAL_EVALUATOR_BODY_BYTES" => self.limits.evaluator_body_bytes = parsed(name, v)?,
                "ZEVAL_MAX_CONCURRENT_REQUESTS" => {
                    self.limits.max_concurrent_requests = parsed(name, v)?
                }
                "ZEVAL_CALL_TIMEOUT_MS" => self.limits.call_timeout_ms = parsed(name, v)?,
                "ZEVAL_MAX_VALUE_NODES" => self.limits.max_value_nodes = parsed(name, v)?,
                "ZEVAL_MAX_VALUE_DEPTH" => self.limits.max_value_depth = parsed(name, v)?,
                "ZEVAL_MAX_STEPS" => self.limits.max_steps = parsed(name, v)?,
                "ZEVAL_MAX_REQUEST_MEMORY_BYTES" => {
                    self.limits.max_request_memory_bytes = parsed(name, v)?
                }
                "ZEVAL_MAX_REENTRANT_DEPTH" => self.limits.max_reentrant_depth = parsed(name, v)?,
                "ZEVAL_MAX_NESTED_CALLS" => self.limits.max_nested_calls = parsed(name, v)?,
                "ZEVAL_MAX_REENTRANT_CALLS_PER_CLIENT" => {
                    self.limits.max_reentrant_calls_per_client = parsed(name, v)?
                }
                "ZEVAL_EVALUATOR_MAX_CONCURRENT_REQUESTS" => {
                    self.limits.evaluator_max_concurrent_requests = parsed(name, v)?
                }
                "ZEVAL_PER_CLIENT_CONCURRENT_REQUESTS" => {
                    self.limits.per_client_concurrent_requests = parsed(name, v)?
                }
                "ZEVAL_RESERVE_REQUESTS" => self.limits.reserve_requests = parsed(name, v)?,
                "ZEVAL_GUEST_LANES" => self.limits.guest_lanes = Some(parsed(name, v)?),
                "ZEVAL_RESERVE_CALL_TIMEOUT_MS" => {
                    self.limits.reserve_call_timeout_ms = parsed(name, v)?
                }
                "ZEVAL_PER_CLIENT_REQUESTS_PER_MINUTE" => {
                    self.limits.per_client_requests_per_minute = parsed(name, v)?
                }
                "ZEVAL_LIMITS_REDIS_URL" => self.limits.redis_url = Some(value.clone()),
                "ZEVAL_LIMITS_REDIS_KEY_SECRET" => {
                    self.limits.redis_key_secret = Some(value.clone());
                }
                "ZEVAL_TRUSTED_PROXIES" => self.limits.trusted_proxies = comma_list(v),
                "ZEVAL_CLIENT_IPV6_PREFIX" => self.limits.client_ipv6_prefix = parsed(name, v)?,
                "ZEVAL_BODY_TIMEOUT_MS" => self.limits.body_timeout_ms = parsed(name, v)?,
                "ZEVAL_HEADER_TIMEOUT_MS" => self.limits.header_timeout_ms = parsed(name, v)?,
                "ZEVAL_IDLE_TIMEOUT_MS" => self.limits.idle_timeout_ms = parsed(name, v)?,
                "ZEVAL_MAX_CONNECTIONS" => self.limits.max_connections = parsed(name, v)?,
                "ZEVAL_MAX_CONNECTIONS_PER_CLIENT" => {
                    self.limits.max_connections_per_client = parsed(name, v)?
                }
                "ZEVAL_MAX_TEST_CELLS" => self.limits.max_test_cells = parsed(name, v)?,
                "ZEVAL_TEST_TIMEOUT_MS" => self.limits.test_timeout_ms = parsed(name, v)?,
                "ZEVAL_SEARCH_TIME_MS" => self.limits.search_time_ms = parsed(name, v)?,
                "ZEVAL_WORKERS" => self.workers.enabled = parsed(name, v)?,
                "ZEVAL_MAX_WORKERS" => self.workers.max_workers = parsed(name, v)?,
                "ZEVAL_WORKERS_COLOCATE" => self.workers.colocate = parsed(name, v)?,
                "ZEVAL_WORKERS_RETIRE_IDLE_AFTER_S" => {
                    self.workers.retire_idle_after_s = parsed(name, v)?
                }
                "ZEVAL_WORKERS_RECYCLE_AFTER_CALLS" => {
                    self.workers.recycle_after_calls = parsed(name, v)?
                }
                "ZEVAL_WORKERS_LONE_CALL_SPIN_US" => {
                    self.workers.lone_call_spin_us = parsed(name, v)?
                }
                "ZEVAL_WORKERS_RESERVE" => self.workers.reserve_workers = Some(parsed(name, v)?),
                "ZEVAL_WORKERS_RESERVE_CALL_MS" => self.workers.reserve_call_ms = parsed(name, v)?,
                "ZEVAL_WORKER_USER" => self.workers.user = Some(value.clone()),
                "ZEVAL_RUST_SYSROOT" => self.compiler.rust_sysroot = Some(value.into()),
                "ZEVAL_CLANG" => self.compiler.clang = Some(value.into()),
                "ZEVAL_EVALUATOR_SECRET" => self.evaluator_secret = Some(value.clone()),
                "ZEVAL_INSTANCE_NAME" => self.instance_name = Some(value.clone()),
                "ZEVAL_CALLBACK_URL" => self.callback_url = Some(value.clone()),
                "ZEVAL_EVALUATOR_URL" => {
                    let urls: Vec<String> = v
                        .split(',')
                        .map(str::trim)
                        .filter(|url| !url.is_empty())
                        .map(str::to_owned)
                        .collect();
                    let endpoint = match <[String; 1]>::try_from(urls) {
                        Ok([url]) => EvaluatorEndpoint::Remote {
                            url,
                            format: WireFormat::Avro,
                        },
                        Err(urls) => EvaluatorEndpoint::Pool {
                            urls,
                            format: WireFormat::Avro,
                        },
                    };
                    self.evaluators.insert("*".into(), endpoint);
                }
                "ZEVAL_DRAIN_TIMEOUT_MS" => self.failover.drain_timeout_ms = parsed(name, v)?,
                _ => unreachable!("ENV_VARS and apply_env disagree about {name}"),
            }
        }
        Ok(())
    }

    /// The name metadata reports for this instance: `instance_name`, else one random name
    /// per process (the same for the orchestrator and the evaluator).
    pub fn instance_name(&self) -> String {
        self.instance_name
            .clone()
            .unwrap_or_else(|| zeval_orchestrator::default_instance_name().to_owned())
    }

    /// The guest lanes of this node's evaluator API when its guests run in process
    /// (`limits.guest_lanes`; unset: `cpus` less a third of them, and less at least one, for
    /// the async side; at least one).
    pub fn guest_lanes(&self, cpus: usize) -> usize {
        self.limits
            .guest_lanes
            .unwrap_or_else(|| cpus.saturating_sub((cpus / 3).max(1)).max(1))
    }

    /// The async worker threads of `zeval serve` on a machine of `cpus` CPUs: for an
    /// evaluator node whose guests run in process on lanes, the CPUs the lanes leave (at
    /// least one), so that the threads that read and write requests do not take the lanes'
    /// CPUs from them; otherwise `None`, tokio's default of one per CPU.
    pub fn async_threads(&self, cpus: usize) -> Option<usize> {
        let lanes = self.guest_lanes(cpus);
        (self.role == Role::Evaluator && !self.workers.enabled && lanes > 0)
            .then(|| cpus.saturating_sub(lanes).max(1))
    }

    /// Refuses settings that would expose the service: an evaluator API listening anywhere
    /// but loopback without `evaluator_secret` would run code for anybody who can reach it.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.role != Role::Orchestrator
            && !self.evaluator_listen.ip().is_loopback()
            && self.evaluator_secret.as_deref().is_none_or(str::is_empty)
        {
            return Err(ConfigError::Unsafe(format!(
                "the evaluator API would listen on {} (not a loopback address) without a \
                 secret: set evaluator_secret (env ZEVAL_EVALUATOR_SECRET) so that only your \
                 orchestrator can call it, or listen on 127.0.0.1",
                self.evaluator_listen
            )));
        }
        crate::client_address::TrustedProxies::parse(&self.limits.trusted_proxies)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.limits.client_ipv6_prefix > 128 {
            return Err(ConfigError::Invalid(format!(
                "limits.client_ipv6_prefix: {} is not a prefix length (0 to 128)",
                self.limits.client_ipv6_prefix
            )));
        }
        let least = min_worker_stack_bytes(self.limits.max_value_depth);
        if self.limits.worker_stack_bytes < least {
            return Err(ConfigError::Invalid(format!(
                "limits.worker_stack_bytes: {} is less than the {least} bytes that values of \
                 limits.max_value_depth ({}) levels need (dropping and writing a value \
                 recurses once per level); a smaller stack would let a request abort the \
                 server",
                self.limits.worker_stack_bytes, self.limits.max_value_depth
            )));
        }
        if self.limits.search_time_ms == 0 {
            return Err(ConfigError::Invalid(
                "limits.search_time_ms: 0 would stop every search at once (at least 1)".into(),
            ));
        }
        if self.limits.reserve_call_timeout_ms == 0 && self.limits.reserve_requests > 0 {
            return Err(ConfigError::Invalid(
                "limits.reserve_call_timeout_ms: 0 would time out every call run in the \
                 reserve at once; set reserve_requests = 0 for no reserve"
                    .to_owned(),
            ));
        }
        if self.workers.reserve_call_ms == 0 && self.workers.reserve_workers != Some(0) {
            return Err(ConfigError::Invalid(
                "workers.reserve_call_ms: 0 would stop every call run in the reserve at once; \
                 set reserve_workers = 0 for no reserve"
                    .to_owned(),
            ));
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.failover.max_attempts) {
            return Err(ConfigError::Invalid(format!(
                "failover.max_attempts: {} is not from 1 to {MAX_ATTEMPTS} (each attempt may run \
                 the call's code again)",
                self.failover.max_attempts
            )));
        }
        if let Some(url) = self.callback_url.as_deref().filter(|u| !u.is_empty()) {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.trim_end_matches('/').contains('/')) {
                return Err(ConfigError::Invalid(format!(
                    "callback_url {url:?} is not http(s)://host[:port] (no path: zeval adds \
                     /v1/reentry/...)"
                )));
            }
        }
        if let Some((key, _)) = self
            .evaluators
            .iter()
            .find(|(_, endpoint)| matches!(endpoint, EvaluatorEndpoint::Pool { urls, .. } if urls.is_empty()))
        {
            return Err(ConfigError::Invalid(format!(
                "evaluators.{key:?} lists no URL: give at least one in `urls`"
            )));
        }
        Ok(())
    }

    /// The endpoint for a programming-language code (`Z61K1`): the longest matching key, else
    /// `*`, else in process.
    pub fn evaluator_for(&self, language: &str) -> &EvaluatorEndpoint {
        self.evaluators
            .iter()
            .filter(|(key, _)| {
                language == key.as_str()
                    || language
                        .strip_prefix(key.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|(key, _)| key.len())
            .map(|(_, endpoint)| endpoint)
            .or_else(|| self.evaluators.get("*"))
            .unwrap_or(&EvaluatorEndpoint::IN_PROCESS)
    }

    /// The guest directory in effect.
    pub fn guest_dir(&self) -> PathBuf {
        self.guest_dir
            .clone()
            .unwrap_or_else(zeval_evaluator::default_guest_dir)
    }

    /// The SQLite file of the embedded store.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("zeval.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_example_parses_to_the_defaults() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../zeval.toml"));
        let config = Config::from_file(path).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn every_field_of_the_example_is_commented_out_or_a_default() {
        // The example must mention every field, so that it documents them all.
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../zeval.toml"))
                .unwrap();
        for field in [
            "role",
            "listen",
            "evaluator_listen",
            "data_dir",
            "database_url",
            "wiki_url",
            "guest_dir",
            "orchestrator_body_bytes",
            "evaluator_body_bytes",
            "max_concurrent_requests",
            "retry_after_seconds",
            "call_timeout_ms",
            "worker_stack_bytes",
            "max_value_nodes",
            "max_value_depth",
            "max_steps",
            "max_request_memory_bytes",
            "max_reentrant_depth",
            "max_running",
            "running_wait_ms",
            "start_after_ms",
            "max_starting",
            "retire_idle_after_s",
            "recycle_after_calls",
            "reserve_workers",
            "reserve_call_ms",
            "lone_call_spin_us",
            "max_nested_calls",
            "max_reentrant_calls_per_client",
            "evaluator_max_concurrent_requests",
            "per_client_concurrent_requests",
            "reserve_requests",
            "guest_lanes",
            "reserve_call_timeout_ms",
            "per_client_requests_per_minute",
            "trusted_proxies",
            "client_ipv6_prefix",
            "redis_key_secret",
            "redis_timeout_ms",
            "body_timeout_ms",
            "header_timeout_ms",
            "idle_timeout_ms",
            "max_connections",
            "max_connections_per_client",
            "max_unsent_response_bytes",
            "max_unsent_response_bytes_per_client",
            "max_test_cells",
            "test_timeout_ms",
            "search_time_ms",
            "evaluator_secret",
            "instance_name",
            "fuel_metering",
            "callback_url",
            "calls",
            "[compiler]",
            "rust_sysroot",
            "clang",
            "artifact_dir",
            "keep_call_time_artifacts",
            "stored_artifact_bytes_per_author",
            "[ranking]",
            "min_live_calls",
            "promote_factor",
            "explore_every",
            "refresh_ms",
            "flush_ms",
            "[cache]",
            "max_bytes",
            "redis_url",
            "redis_timeout_ms",
            "success_ttl_seconds",
            "failure_ttl_seconds",
            "max_value_bytes",
            "max_dependencies",
            "uncacheable",
            "[evaluators]",
            "[failover]",
            "health_interval_ms",
            "health_timeout_ms",
            "max_attempts",
            "drain_timeout_ms",
            "urls",
        ] {
            assert!(text.contains(field), "zeval.toml does not mention {field}");
        }
        for (name, _) in ENV_VARS {
            assert!(text.contains(name), "zeval.toml does not mention {name}");
        }
    }

    #[test]
    fn a_stack_too_small_for_the_deepest_values_is_refused() {
        let mut config = Config::default();
        assert!(config.check().is_ok());
        config.limits.worker_stack_bytes = 1024 * 1024;
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("limits.worker_stack_bytes"), "{error}");
        // Deeper values need more; shallower ones do with less.
        config.limits.worker_stack_bytes = 64 * 1024 * 1024;
        config.limits.max_value_depth *= 2;
        assert!(config.check().is_err());
        config.limits.worker_stack_bytes = 8 * 1024 * 1024;
        config.limits.max_value_depth = 2_000;
        assert!(config.check().is_ok());
    }

    #[test]
    fn env_overrides_the_file_and_bad_values_are_errors() {
        let mut config = Config::from_toml(
            "listen = \"127.0.0.1:1\"\n[access]\ncalls = \"users\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(config.access.calls, CallPolicy::Users);
        config
            .apply_env(|name| match name {
                "ZEVAL_LISTEN" => Some("0.0.0.0:7000".into()),
                "ZEVAL_CALLS" => Some("approved".into()),
                "ZEVAL_RUST_SYSROOT" => Some("/opt/rust".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.listen, "0.0.0.0:7000".parse().unwrap());
        assert_eq!(config.access.calls, CallPolicy::Approved);
        assert_eq!(
            config.compiler.rust_sysroot.as_deref(),
            Some(Path::new("/opt/rust"))
        );
        let err = config
            .apply_env(|name| (name == "ZEVAL_ROLE").then(|| "everything".into()))
            .unwrap_err();
        assert!(err.to_string().contains("ZEVAL_ROLE"), "{err}");
    }

    #[test]
    fn the_cache_settings_come_from_the_file_and_the_environment() {
        let mut config = Config::from_toml(
            "[cache]\nmax_bytes = 1000\nuncacheable = [\"Z10001\"]\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(config.cache.max_bytes, 1000);
        assert_eq!(config.cache.uncacheable, ["Z10001"]);
        config
            .apply_env(|name| match name {
                "ZEVAL_CACHE" => Some("false".into()),
                "ZEVAL_CACHE_REDIS_URL" => Some("redis://127.0.0.1:6379/0".into()),
                "ZEVAL_CACHE_UNCACHEABLE" => Some("Z10002, Z10003,".into()),
                "ZEVAL_CACHE_FAILURE_TTL_SECONDS" => Some("5".into()),
                _ => None,
            })
            .unwrap();
        assert!(!config.cache.enabled);
        assert_eq!(
            config.cache.redis_url.as_deref(),
            Some("redis://127.0.0.1:6379/0")
        );
        assert_eq!(config.cache.uncacheable, ["Z10002", "Z10003"]);
        assert_eq!(config.cache.failure_ttl_seconds, 5);
        let err = config
            .apply_env(|name| (name == "ZEVAL_CACHE_MAX_BYTES").then(|| "lots".into()))
            .unwrap_err();
        assert!(err.to_string().contains("ZEVAL_CACHE_MAX_BYTES"), "{err}");
    }

    #[test]
    fn an_exposed_evaluator_api_needs_a_secret() {
        assert!(Config::default().check().is_ok());
        let mut exposed = Config {
            evaluator_listen: "0.0.0.0:6927".parse().unwrap(),
            ..Config::default()
        };
        let err = exposed.check().unwrap_err();
        assert!(err.to_string().contains("ZEVAL_EVALUATOR_SECRET"), "{err}");
        exposed.evaluator_secret = Some(String::new());
        assert!(exposed.check().is_err(), "an empty secret is no secret");
        exposed.evaluator_secret = Some("s3cret".into());
        assert!(exposed.check().is_ok());
        // An orchestrator alone does not serve the evaluator API.
        let orchestrator_only = Config {
            role: Role::Orchestrator,
            evaluator_listen: "0.0.0.0:6927".parse().unwrap(),
            ..Config::default()
        };
        assert!(orchestrator_only.check().is_ok());
    }

    #[test]
    fn an_evaluator_entry_takes_one_url_or_several() {
        let config = Config::from_toml(
            r#"
            [evaluators]
            javascript = { urls = ["http://a/", "http://b/"], format = "json" }
            python = { url = "http://p/" }
            [failover]
            max_attempts = 2
            "#,
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(
            config.evaluator_for("javascript"),
            &EvaluatorEndpoint::Pool {
                urls: vec!["http://a/".into(), "http://b/".into()],
                format: WireFormat::Json,
            }
        );
        assert!(matches!(
            config.evaluator_for("python"),
            EvaluatorEndpoint::Remote { .. }
        ));
        assert_eq!(config.failover.max_attempts, 2);
        assert!(config.check().is_ok());
        for attempts in [0, MAX_ATTEMPTS + 1, 1_000_000] {
            let mut many = config.clone();
            many.failover.max_attempts = attempts;
            let error = many.check().unwrap_err().to_string();
            assert!(error.contains("failover.max_attempts"), "{error}");
        }
        // ZEVAL_EVALUATOR_URL: one URL as before, several separated by commas.
        let mut env = Config::default();
        env.apply_env(|name| (name == "ZEVAL_EVALUATOR_URL").then(|| "http://x/".into()))
            .unwrap();
        assert!(
            matches!(&env.evaluators["*"], EvaluatorEndpoint::Remote { url, .. } if url == "http://x/")
        );
        env.apply_env(|name| {
            (name == "ZEVAL_EVALUATOR_URL").then(|| "http://x/, http://y/".into())
        })
        .unwrap();
        assert!(
            matches!(&env.evaluators["*"], EvaluatorEndpoint::Pool { urls, .. } if urls.len() == 2)
        );
        // An empty list cannot run anything.
        env.apply_env(|name| (name == "ZEVAL_EVALUATOR_URL").then(|| ",".into()))
            .unwrap();
        let err = env.check().unwrap_err();
        assert!(err.to_string().contains("no URL"), "{err}");
    }

    #[test]
    fn a_callback_url_is_a_base_url_without_a_path() {
        for good in [
            "http://10.0.0.12:6254",
            "https://orch.example/",
            "http://[fd00::1]:6254",
        ] {
            let mut config = Config::default();
            config
                .apply_env(|name| (name == "ZEVAL_CALLBACK_URL").then(|| good.into()))
                .unwrap();
            assert!(config.check().is_ok(), "{good}");
        }
        for bad in [
            "10.0.0.12:6254",
            "http://",
            "http://host/v1/reentry",
            "ftp://host",
        ] {
            let config = Config {
                callback_url: Some(bad.into()),
                ..Config::default()
            };
            let err = config.check().unwrap_err();
            assert!(err.to_string().contains("callback_url"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_ipv6_client_prefix_is_a_prefix_length() {
        for (value, ok) in [("56", true), ("128", true), ("0", true), ("129", false)] {
            let mut config = Config::default();
            config
                .apply_env(|name| (name == "ZEVAL_CLIENT_IPV6_PREFIX").then(|| value.into()))
                .unwrap();
            match config.check() {
                Ok(()) => assert!(ok, "{value} accepted"),
                Err(err) => {
                    assert!(!ok, "{value}: {err}");
                    assert!(err.to_string().contains("client_ipv6_prefix"), "{err}");
                }
            }
        }
    }

    #[test]
    fn the_worker_reserve_comes_from_the_environment_and_needs_time_for_its_calls() {
        let env = |reserve: &'static str, call_ms: &'static str| {
            move |name: &str| match name {
                "ZEVAL_WORKERS_RESERVE" => Some(reserve.into()),
                "ZEVAL_WORKERS_RESERVE_CALL_MS" => Some(call_ms.into()),
                _ => None,
            }
        };
        let mut config = Config::default();
        assert_eq!(config.workers.reserve_workers, None);
        assert_eq!(config.workers.reserve_call_ms, 1000);
        config.apply_env(env("3", "250")).unwrap();
        assert_eq!(config.workers.reserve_workers, Some(3));
        assert_eq!(config.workers.reserve_call_ms, 250);
        assert!(config.check().is_ok());
        for (reserve, ok) in [("3", false), ("0", true)] {
            let mut config = Config::default();
            config.apply_env(env(reserve, "0")).unwrap();
            match config.check() {
                Ok(()) => assert!(ok, "reserve {reserve} with 0 ms accepted"),
                Err(err) => {
                    assert!(!ok, "reserve {reserve}: {err}");
                    assert!(err.to_string().contains("reserve_call_ms"), "{err}");
                }
            }
        }
    }

    #[test]
    fn the_call_reserve_comes_from_the_environment_and_needs_time_for_its_calls() {
        let mut config = Config::default();
        assert_eq!(
            (
                config.limits.reserve_requests,
                config.limits.reserve_call_timeout_ms
            ),
            (8, 1000)
        );
        config
            .apply_env(|name| match name {
                "ZEVAL_RESERVE_REQUESTS" => Some("2".into()),
                "ZEVAL_RESERVE_CALL_TIMEOUT_MS" => Some("0".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.limits.reserve_requests, 2);
        let err = config.check().unwrap_err();
        assert!(err.to_string().contains("reserve_call_timeout_ms"), "{err}");
        config.limits.reserve_requests = 0;
        assert!(config.check().is_ok());
    }

    #[test]
    fn guest_lanes_leave_the_async_side_a_third_of_the_cpus() {
        let mut config = Config::default();
        let split = |config: &Config, cpus| (config.guest_lanes(cpus), config.async_threads(cpus));
        // Not an evaluator node with guests in process: tokio's own thread count.
        assert_eq!(split(&config, 2), (1, None));
        config.role = Role::Evaluator;
        assert_eq!(split(&config, 2), (1, None), "guests in worker processes");
        config.workers.enabled = false;
        assert_eq!(split(&config, 1), (1, Some(1)));
        assert_eq!(split(&config, 2), (1, Some(1)));
        assert_eq!(split(&config, 3), (2, Some(1)));
        assert_eq!(split(&config, 8), (6, Some(2)));
        config
            .apply_env(|name| (name == "ZEVAL_GUEST_LANES").then(|| "0".into()))
            .unwrap();
        assert_eq!(config.limits.guest_lanes, Some(0));
        assert_eq!(
            split(&config, 8),
            (0, None),
            "no lanes: tokio's own thread count"
        );
        config.limits.guest_lanes = Some(3);
        assert_eq!(split(&config, 8), (3, Some(5)));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("lisen = \"127.0.0.1:1\"", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn evaluators_match_by_language_family() {
        let config = Config::from_toml(
            r#"
            [evaluators]
            python = { url = "http://py/", format = "json" }
            "python-3-9" = "in-process"
            "*" = { url = "http://all/" }
            "#,
            Path::new("t.toml"),
        )
        .unwrap();
        let remote = |url: &str, format| EvaluatorEndpoint::Remote {
            url: url.into(),
            format,
        };
        assert_eq!(
            config.evaluator_for("python-3"),
            &remote("http://py/", WireFormat::Json)
        );
        assert_eq!(
            config.evaluator_for("python-3-9"),
            &EvaluatorEndpoint::IN_PROCESS
        );
        assert_eq!(
            config.evaluator_for("pythonic"),
            &remote("http://all/", WireFormat::Avro)
        );
        assert_eq!(
            Config::default().evaluator_for("javascript"),
            &EvaluatorEndpoint::IN_PROCESS
        );
    }
}
