//! The parent's side: a pool of worker processes, each running one call at a time, and their
//! supervision.
//!
//! # Supervision
//! - A call takes an idle worker. When there is none, it waits
//!   [`WorkerPoolConfig::start_after`] for a busy one to come free, then asks for one more
//!   (while fewer than [`WorkerPoolConfig::max_workers`] are alive), started in the background,
//!   and waits for any worker to come free until its deadline (then [`SandboxError::Busy`],
//!   which callers report as a timeout). A worker that starts too late for that call serves the
//!   next one. At most [`WorkerPoolConfig::max_starting`] workers start at once; further
//!   starts queue.
//! - The parent waits for the answer until the call's deadline plus
//!   [`WorkerPoolConfig::kill_margin`]. A worker still silent then is killed (`SIGKILL`) and
//!   the call fails with [`SandboxError::Timeout`]. The call then waits at most
//!   100 ms for the killed worker to exit, after giving it its priority back (`reap`): a
//!   worker killed while its guest ran at `SCHED_IDLE` on busy CPUs took seconds to exit,
//!   and its call waited for it. The margin lets the worker's own epoch
//!   deadline answer first, which it does in all but pathological cases. Compiled modules
//!   run without epoch checks, so for them the kill is the deadline
//!   ([`WorkerPoolConfig::module_kill_margin`]).
//! - A worker that dies (a signal, the seccomp filter, an exit) or answers something that
//!   does not decode is reaped and dropped; its call fails with [`RunError::WorkerLost`]. No
//!   other call is affected: each worker holds one call.
//! - Whenever fewer than [`WorkerPoolConfig::min_workers`] are alive, a replacement is
//!   started in the background, so the next call finds a warm worker.
//! - Workers beyond `min_workers` that stay idle for [`WorkerPoolConfig::retire_idle_after`]
//!   are stopped, so the pool gives back what a burst took.
//! - A worker that has served [`WorkerPoolConfig::recycle_after_calls`] calls is stopped and
//!   replaced, so that a guest that escaped into its worker sees a bounded number of others'
//!   calls.
//! - When every one of the `max_workers` holds a long call (one older than the sandbox's
//!   `lower_priority_after`), up to [`WorkerPoolConfig::reserve_workers`] more may start, and
//!   a call that finds `max_workers` calls in flight runs at most
//!   [`WorkerPoolConfig::reserve_call_time`]: a few clients' endless loops, each within its
//!   per-client limit, cannot keep everyone else's short calls out until their deadline.
//!
//! # What the parent trusts
//! Nothing a worker sends: frames are bounded by the call's output limits before anything
//! is allocated ([`crate::protocol::max_response_frame`]), decoded defensively, and a worker
//! that breaks the protocol is killed. The thread a worker names for colocation is used only
//! when `/proc` lists it among the worker's own threads: a root parent may bind any thread's
//! CPU set, and an escaped guest would otherwise choose whose.

use std::borrow::Cow;
use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use zeval_sandbox::{CodeCache, HostCalls, Limits, RunOutput, SandboxError};

mod colocate;
mod exchange;
mod log_relay;
mod reap;
mod sched_stat;
mod spawner;

use exchange::{Deadlined, Deadlines, Exchange, HostCallsWithin, exchange};
use log_relay::relay_log;
use sched_stat::SchedStat;
use spawner::Spawner;

use crate::WorkerError;
use crate::confine::ConfinementReport;
use crate::protocol::{
    Hello, Request, Response, WorkerSpec, max_response_frame, read_json, write_json,
};

/// How a pool starts and supervises its workers.
#[derive(Debug, Clone)]
pub struct WorkerPoolConfig {
    /// The program to run (the server's own binary) and its arguments (e.g. `worker`).
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// What every worker loads and how it confines itself.
    pub spec: WorkerSpec,
    /// Most workers alive at once, i.e. most guest calls in flight. Default 32: what the
    /// in-process sandbox allowed per guest; more calls than that on a small machine only
    /// queue longer, and each worker holds its own guest memory (measured in
    /// `docs/benchmarks.md`).
    pub max_workers: usize,
    /// Workers kept alive even when idle (started with the pool, replaced when they die).
    /// Default 2.
    pub min_workers: usize,
    /// How long past a call's deadline the parent waits before it kills the worker.
    /// Default 1 s: the worker's own epoch deadline answers within milliseconds; a guest
    /// lowered to `SCHED_IDLE` on busy cores can be later, and killing it costs a restart.
    pub kill_margin: Duration,
    /// [`Self::kill_margin`] for compiled modules. A worker runs them without epoch checks
    /// (`ModuleHostConfig::epoch_interruption`), so it cannot stop one itself: this kill is
    /// their deadline. Default 10 ms: room for the answer of a call that ends at its
    /// deadline, such as one asleep in a host call, which the worker does stop on time.
    pub module_kill_margin: Duration,
    /// Bind a worker to its caller's CPU for a call that is the only one in flight
    /// (`colocate`), so that the two hand over on one CPU instead of waking an idle one.
    /// Default false. It took 0.07–0.15 ms off a lone call through a worker on this
    /// project's 2-vCPU virtual machine when it was measured first (2026-12-03). Since
    /// workers answer first and reset after, a lone caller sharing the worker's CPU waits
    /// for that reset, and on 2026-12-04 it cost one HTTP client 0.02–0.07 ms (JS) and
    /// 0.15–0.2 ms (Python) at p50, and its p99 doubled. What it still helps is one caller
    /// calling through one worker back to back without HTTP in between: JS p50 69–80 µs
    /// with it, 68–131 µs without (`docs/benchmarks.md`, "Colocation off by default"); set
    /// it for such traffic. It costs four system calls per call. With other calls in flight it is never used: binding callers that happen to
    /// share a CPU would pile their workers onto it (measured: 8 clients over HTTP lost 40 %
    /// of their throughput).
    pub colocate: bool,
    /// How long the caller of a call that is alone in flight (no other worker busy when it
    /// started) keeps checking for the worker's answer before it sleeps in `poll`. Default
    /// [`DEFAULT_LONE_CALL_SPIN`]. A sleeping caller must be woken by the kernel when the
    /// answer comes, and on this project's 2-vCPU virtual machine waking a thread on another
    /// vCPU costs tens of microseconds or more: with the check, a trivial JS call through a
    /// worker, back to back, took 42–68 µs instead of 128–131 µs at p50, and one HTTP
    /// client's p50 fell from 0.28 to 0.13–0.20 ms (JS) and from 0.23–0.32 to 0.09–0.11 ms
    /// (Python) (`docs/benchmarks.md`, "A lone call's caller checks for its answer before it
    /// sleeps"). Bounded by this time and by the
    /// call's deadline; each check yields the CPU to any other thread that is ready to run
    /// (`sched_yield`), so it only takes CPU time nobody else wants; with other calls in
    /// flight it is never used (the CPUs are busy, and a caller's wake-up is then not the
    /// cost), nor for a call bound to its caller's CPU ([`Self::colocate`]: the caller would
    /// compete with its worker for that CPU). Zero: sleep at once.
    pub lone_call_spin: Duration,
    /// Calls that start at once without waiting: a call that finds this many in flight waits
    /// up to [`Self::running_wait`] for one of them to end before it takes an idle worker
    /// anyway. Default twice the CPUs: more short calls running at once than that only
    /// take turns on the CPUs with their callers' HTTP work, and on this project's 2-vCPU
    /// machine 8 clients got 4–7 % more calls through, with a lower p99
    /// (`docs/benchmarks.md`, "At most twice the CPUs' worth of worker calls start at once").
    /// Only calls younger than the sandbox's `lower_priority_after` (10 ms) count: an older
    /// one runs at `SCHED_IDLE` and gives way to any other thread at once, so waiting for it
    /// gains nothing (all count when the workers cannot lower calls, see
    /// `PoolInner::lowered_after`). When they counted, a caller beside 8 busy loops waited
    /// `running_wait` on every call, and its p50 doubled (`docs/security.md`, "The neighbour
    /// test"). A young call delays a waiting call by `running_wait` at most; it never keeps it
    /// out.
    pub max_running: usize,
    /// The longest a call waits for [`Self::max_running`]. Default 2 ms.
    pub running_wait: Duration,
    /// How long a call that finds no idle worker waits for a busy one to come free before it
    /// asks for a new worker. Default 2 ms. A short call frees its worker in well under that,
    /// and a start costs tens of milliseconds of CPU (50–150 ms on this project's machine
    /// before workers mapped the guests' sealed code). When every call that found no idle
    /// worker asked for one at once, 8 HTTP clients of trivial calls grew a new server's pool
    /// to all 32 workers within seconds, and those starts held up the calls
    /// (docs/benchmarks.md, "Workers started one at a time, and only when calls wait").
    pub start_after: Duration,
    /// Most workers starting at once (at least 1); further starts queue. Default 1. A start is CPU-bound, so starts at once only share the CPUs
    /// with each other and with the calls running: one at a time, the first new worker is
    /// ready soonest, and a burst of callers, or of workers killed at their deadlines, takes
    /// at most one CPU's worth of starting from the calls.
    pub max_starting: usize,
    /// Workers that may start beyond [`Self::max_workers`] while every one of those holds a
    /// long call: one that has run past the sandbox's `lower_priority_after` (10 ms; 10 ms
    /// also when lowering is off). Default twice the CPUs, as [`Self::max_running`]. Each
    /// worker holds a call until it ends, so a few clients with endless loops up to their
    /// per-client limits (8 each by default: four clients for 32 workers) used to hold every
    /// worker, and every other call waited until its deadline. Calls beyond `max_workers`
    /// are cut to [`Self::reserve_call_time`], so the reserve turns over and serves short
    /// calls. Its workers retire like any other ([`Self::retire_idle_after`]). Zero: no
    /// reserve. The pool holds at most `max_workers + reserve_workers` workers.
    pub reserve_workers: usize,
    /// The longest a call that finds [`Self::max_workers`] calls in flight may run (its wall
    /// time is cut to this if it is longer). Default [`DEFAULT_RESERVE_CALL_TIME`] (1 s): far
    /// more than a short call needs, and what a client filling the reserve with loops holds
    /// each of its workers for. Such a call that runs out of it fails as a timeout (Z558),
    /// as it would have after waiting for a worker until its deadline.
    pub reserve_call_time: Duration,
    /// The compiled code of the spec's guests marked [`crate::GuestSpec::sealed`], in their
    /// order, as sealed memfds (`zeval_sandbox::Sandbox::seal_guest_file`): sent to every
    /// worker after its spec. Default none.
    pub sealed_guests: Vec<Arc<std::fs::File>>,
    /// How long a worker beyond [`Self::min_workers`] may stay idle before it is stopped
    /// (checked every second, the least recently used first). Default 60 s. A burst of calls
    /// grows the pool up to `max_workers`, and every worker holds its own guests' instance
    /// memory; without this the pool kept its peak size for good. A retired worker is not
    /// counted as lost. `None`: never.
    pub retire_idle_after: Option<Duration>,
    /// How many calls one worker serves before it is stopped and replaced (a replacement
    /// starts in the background when the pool is below `min_workers`, else when a call needs
    /// one). Default [`DEFAULT_RECYCLE_AFTER_CALLS`]. A guest that escaped its wasm sandbox
    /// into its worker process (still confined there) sees, and answers, the later calls that
    /// worker serves, other clients' among them: this bounds how many, where the pool would
    /// otherwise keep a busy worker for good. `None`: never.
    pub recycle_after_calls: Option<u64>,
    /// How long a starting worker may take to load, warm up and confine itself. Default
    /// 10 minutes: the first worker on a cold machine compiles the guests (CPython's takes
    /// minutes in a debug build).
    pub start_timeout: Duration,
}

impl WorkerPoolConfig {
    /// The defaults for `spec`, running `program args`.
    pub fn new(program: impl Into<PathBuf>, args: Vec<OsString>, spec: WorkerSpec) -> Self {
        Self {
            program: program.into(),
            args,
            spec,
            max_workers: 32,
            min_workers: 2,
            kill_margin: Duration::from_secs(1),
            module_kill_margin: Duration::from_millis(10),
            colocate: false,
            lone_call_spin: DEFAULT_LONE_CALL_SPIN,
            max_running: twice_the_cpus(),
            running_wait: Duration::from_millis(2),
            start_after: Duration::from_millis(2),
            max_starting: 1,
            reserve_workers: twice_the_cpus(),
            reserve_call_time: DEFAULT_RESERVE_CALL_TIME,
            sealed_guests: Vec::new(),
            retire_idle_after: Some(DEFAULT_RETIRE_IDLE_AFTER),
            recycle_after_calls: Some(DEFAULT_RECYCLE_AFTER_CALLS),
            start_timeout: Duration::from_secs(600),
        }
    }
}

/// The default of [`WorkerPoolConfig::max_running`] and [`WorkerPoolConfig::reserve_workers`].
pub fn twice_the_cpus() -> usize {
    2 * std::thread::available_parallelism().map_or(1, usize::from)
}

/// The default of [`WorkerPoolConfig::recycle_after_calls`]: 10,000 calls, a worker start
/// (tens of milliseconds of CPU) per 10,000 calls served.
pub const DEFAULT_RECYCLE_AFTER_CALLS: u64 = 10_000;

/// The default of [`WorkerPoolConfig::reserve_call_time`], for the settings that pass it on.
pub const DEFAULT_RESERVE_CALL_TIME: Duration = Duration::from_secs(1);

/// The default of [`WorkerPoolConfig::retire_idle_after`], for the settings that pass it on.
pub const DEFAULT_RETIRE_IDLE_AFTER: Duration = Duration::from_secs(60);

/// The default of [`WorkerPoolConfig::lone_call_spin`], for the settings that pass it on.
pub const DEFAULT_LONE_CALL_SPIN: Duration = Duration::from_micros(200);

/// Why a call through the pool failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The guest failed or hit a limit, as the sandbox reported it.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The worker running the call died or broke the protocol; the call is lost, and the
    /// worker is replaced.
    #[error("the worker process running the call was lost: {0}")]
    WorkerLost(String),
    /// No worker could be started.
    #[error("no worker process could be started: {0}")]
    Unavailable(String),
}

/// What `/_info` shows of the pool.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    pub max_workers: usize,
    pub alive: usize,
    pub idle_pids: Vec<u32>,
    /// In the order their calls started.
    pub busy_pids: Vec<u32>,
    /// Workers that died or were killed since the start.
    pub lost: u64,
    /// Workers stopped for having been idle [`WorkerPoolConfig::retire_idle_after`].
    pub retired: u64,
    /// Workers stopped for having served [`WorkerPoolConfig::recycle_after_calls`] calls.
    pub recycled: u64,
    /// [`WorkerPoolConfig::reserve_workers`].
    pub reserve_workers: usize,
    /// Calls that found `max_workers` calls in flight, so ran with at most
    /// [`WorkerPoolConfig::reserve_call_time`], since the start.
    pub reserve_calls: u64,
    /// Workers starting now (at most [`WorkerPoolConfig::max_starting`]), and asked for but
    /// waiting for those to finish; both are counted in `alive`.
    pub starting: usize,
    pub queued_starts: usize,
    /// What the kernel granted the newest worker.
    pub confinement: Option<ConfinementReport>,
    /// The newest worker's address-space limit (`RLIMIT_AS`), in bytes.
    pub address_space_limit_bytes: Option<u64>,
}

/// A pool of confined worker processes. Cheap to clone.
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    config: WorkerPoolConfig,
    state: Mutex<PoolState>,
    returned: Condvar,
    spawner: Spawner,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Worker>,
    /// Idle, busy, starting and queued workers.
    alive: usize,
    /// Workers starting now, each on a starter thread ([`PoolInner::start_in_background`]).
    starting: usize,
    /// Starts asked for while [`WorkerPoolConfig::max_starting`] were starting: the starter
    /// threads take them in turn.
    queued_starts: usize,
    /// Calls that found no idle worker and have waited [`WorkerPoolConfig::start_after`]: a
    /// call asks for a start only while fewer are starting or queued than this. Without it,
    /// every call that waited left a start behind, and a steady 8 callers grew the pool to
    /// `max_workers` although at most 8 calls were ever in flight.
    waiting: usize,
    /// Workers running a call, in the order the calls took them.
    busy: Vec<BusyWorker>,
    lost: u64,
    retired: u64,
    recycled: u64,
    reserve_calls: u64,
    confinement: Option<ConfinementReport>,
    address_space_limit: Option<u64>,
    /// When a worker last failed to start, and why: callers waiting for a worker then give
    /// up with that reason instead of waiting out their deadline.
    start_failure: Option<(Instant, String)>,
    /// Set when the pool is dropped: no more replacements.
    closed: bool,
}

/// A worker running a call, and since when.
struct BusyWorker {
    pid: u32,
    since: Instant,
}

/// A worker taken for a call.
struct Acquired {
    worker: Worker,
    /// No other worker was busy (only such a call is colocated with its caller:
    /// [`WorkerPoolConfig::colocate`]).
    alone: bool,
    /// `max_workers` calls were in flight: the call runs at most
    /// [`WorkerPoolConfig::reserve_call_time`].
    reserved: bool,
}

/// A worker taken for a call, until the call gives it back ([`PoolInner::release`]) or
/// gives it up ([`PoolInner::discard`]). A call that unwinds instead (a host-call handler
/// that panicked: the server catches panics and goes on) gives it up here: without this the
/// worker stayed counted as alive and busy for good, one fewer for every later call, and
/// its process was never reaped.
struct Taken<'a> {
    inner: &'a Arc<PoolInner>,
    worker: Option<Worker>,
}

impl Taken<'_> {
    fn worker_mut(&mut self) -> &mut Worker {
        self.worker
            .as_mut()
            .expect("a taken worker until it is handed on")
    }

    fn into_worker(mut self) -> Worker {
        self.worker
            .take()
            .expect("a taken worker is handed on once")
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            let pid = worker.pid();
            let status = self.inner.discard(worker);
            tracing::warn!(pid, status, "gave up a worker whose call did not end");
        }
    }
}

impl PoolState {
    /// The calls in flight that count against [`WorkerPoolConfig::max_running`]: those that
    /// started less than `long_after` ago (all of them when `long_after` is `None`).
    fn running_short(&self, long_after: Option<Duration>, now: Instant) -> usize {
        match long_after {
            None => self.busy.len(),
            Some(long_after) => self
                .busy
                .iter()
                .filter(|busy| now.saturating_duration_since(busy.since) < long_after)
                .count(),
        }
    }

    /// The calls in flight that started at least `long_after` ago.
    fn running_long(&self, long_after: Duration, now: Instant) -> usize {
        self.busy.len() - self.running_short(Some(long_after), now)
    }

    fn take_out_of_busy(&mut self, pid: u32) {
        self.busy.retain(|busy| busy.pid != pid);
    }

    /// Makes `worker` idle, as of now (retirement counts from here).
    fn push_idle(&mut self, mut worker: Worker) {
        worker.idle_since = Instant::now();
        self.idle.push(worker);
    }
}

struct Worker {
    child: Child,
    socket: UnixStream,
    /// The worker's thread that serves requests, as it reported it ([`Hello::Ready`]).
    serving_thread: Option<u32>,
    /// Keys of the compiled modules this worker has loaded, most recent last: their bytes
    /// are not sent again ([`Request::RunLoadedModule`]). At most [`MODULES_REMEMBERED`];
    /// the worker may have dropped some of them since, which it says.
    loaded_modules: Vec<String>,
    /// Compiled code this worker's guests handed back, for its later calls of the same
    /// source ([`WorkerPool::run_with_code`]). It lives and dies with the worker: an entry is
    /// never given to another worker (see `zeval_sandbox::code_cache` on trust).
    code_cache: Arc<CodeCache>,
    /// When it last became idle (or was started).
    idle_since: Instant,
    /// Calls it has served.
    calls: u64,
    /// Its serving thread's scheduler statistics, for a call that it overran
    /// ([`sched_stat`]).
    sched_stat: Option<SchedStat>,
}

/// The byte budget of one worker's [`CodeCache`]: with the default 32 workers at most, at
/// most 128 MiB of compiled code in the parent.
pub const CODE_CACHE_BYTES_PER_WORKER: usize = 4 * 1024 * 1024;

/// How many module keys the parent remembers per worker: as many as a worker keeps, in the
/// same order, so that a key sent alone is almost never refused.
const MODULES_REMEMBERED: usize = crate::child::MAX_LOADED_MODULES;

impl Worker {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the worker wrote anything (or closed its socket) while it held no call. It
    /// answers each request with one frame; anything more would be read as the next call's
    /// answer, which may be another client's: a worker that escaped its sandbox could forge
    /// it. Such a worker is not given another call.
    fn spoke_out_of_turn(&self) -> bool {
        let mut byte = [0u8; 1];
        let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
        !matches!(
            rustix::net::recv(&self.socket, &mut byte[..], flags),
            Err(rustix::io::Errno::AGAIN)
        )
    }

    fn has_loaded(&self, key: &str) -> bool {
        self.loaded_modules.iter().any(|loaded| loaded == key)
    }

    /// Records what `request` taught about the modules this worker holds, given its answer.
    fn learn(&mut self, request: &Request<'_>, response: &Response) {
        match (request, response) {
            (Request::RunLoadedModule { key, .. }, Response::ModuleNotLoaded) => {
                self.loaded_modules.retain(|loaded| loaded != key);
            }
            // A module that failed to compile or link is not held; anything else ran.
            (Request::RunModule { .. }, Response::Failed(SandboxError::Load { .. })) => {}
            // The worker holds it, and now as its most recently used (as the worker counts).
            (
                Request::RunModule { key, .. } | Request::RunLoadedModule { key, .. },
                Response::Ran(_) | Response::Failed(_),
            ) => {
                let known = match self.loaded_modules.iter().position(|loaded| loaded == key) {
                    Some(at) => self.loaded_modules.remove(at),
                    None => (*key).to_owned(),
                };
                if self.loaded_modules.len() >= MODULES_REMEMBERED {
                    self.loaded_modules.remove(0);
                }
                self.loaded_modules.push(known);
            }
            _ => {}
        }
    }
}

impl WorkerPool {
    /// Starts [`WorkerPoolConfig::min_workers`] workers (at least one: a pool that cannot
    /// start one fails here, not at the first call). The first is started alone, so that a
    /// cold module cache is compiled once when the guests do not come sealed
    /// ([`WorkerPoolConfig::sealed_guests`]; with them the caller has compiled already).
    pub fn start(mut config: WorkerPoolConfig) -> Result<Self, WorkerError> {
        config.spec.colocated = config.colocate;
        let pool = WorkerPool {
            inner: Arc::new(PoolInner {
                config,
                state: Mutex::new(PoolState::default()),
                returned: Condvar::new(),
                spawner: Spawner::start()?,
            }),
        };
        let first = pool.inner.spawn()?;
        {
            let mut state = pool.inner.lock();
            state.alive += 1;
            state.idle.push(first);
        }
        pool.inner.replenish();
        watch(&pool.inner)?;
        Ok(pool)
    }

    /// The pool's configuration.
    pub fn config(&self) -> &WorkerPoolConfig {
        &self.inner.config
    }

    /// Runs guest number `guest` of the spec once with `stdin` under `limits`, in a worker.
    /// Blocks the calling thread. [`Limits::wall_time`] covers the wait for a worker too.
    pub fn run(&self, guest: u32, stdin: &[u8], limits: &Limits) -> Result<RunOutput, RunError> {
        self.run_with(guest, stdin, limits, None)
    }

    /// [`WorkerPool::run`], with `host` answering the guest's host calls (see
    /// `zeval_sandbox::host_call`) on this thread: the worker sends each request to the
    /// parent and waits for the answer. A request longer than [`Limits::max_input_bytes`]
    /// is a protocol breach (the worker's sandbox refuses those), and ends the worker.
    pub fn run_with(
        &self,
        guest: u32,
        stdin: &[u8],
        limits: &Limits,
        host: Option<&mut dyn HostCalls>,
    ) -> Result<RunOutput, RunError> {
        let reentrant = host.is_some();
        self.call_with(
            stdin.len(),
            limits,
            |limits, _| Request::Run {
                guest,
                limits,
                stdin: Cow::Borrowed(stdin),
                reentrant,
            },
            host,
        )
        .map(|(output, _)| output)
    }

    /// [`WorkerPool::run_with`], with the input written by `stdin` from the serving worker's
    /// own [`CodeCache`], which is returned with the output so that what the guest handed
    /// back can be kept there. An input longer than [`Limits::max_input_bytes`] is refused
    /// by the worker's sandbox.
    pub fn run_with_code(
        &self,
        guest: u32,
        stdin: &dyn Fn(&CodeCache) -> Vec<u8>,
        limits: &Limits,
        host: Option<&mut dyn HostCalls>,
    ) -> Result<(RunOutput, Arc<CodeCache>), RunError> {
        let reentrant = host.is_some();
        self.call_with(
            0,
            limits,
            |limits, worker| Request::Run {
                guest,
                limits,
                stdin: Cow::Owned(stdin(&worker.code_cache)),
                reentrant,
            },
            host,
        )
    }

    /// Runs the compiled module `key` (whose bytes are `wasm`) once with `stdin` under
    /// `limits`, in a worker, as [`WorkerPool::run`] runs a guest. A worker compiles a module
    /// the first time it sees its key (within the call's wall time) and keeps the most
    /// recently used ones. Its bytes go to a worker only until that worker has loaded it.
    pub fn run_module(
        &self,
        key: &str,
        wasm: &[u8],
        stdin: &[u8],
        limits: &Limits,
    ) -> Result<RunOutput, RunError> {
        self.call_with(
            stdin.len(),
            limits,
            |limits, worker| {
                if worker.has_loaded(key) {
                    Request::RunLoadedModule { key, limits, stdin }
                } else {
                    Request::RunModule {
                        key,
                        wasm,
                        limits,
                        stdin,
                    }
                }
            },
            None,
        )
        .map(|(output, _)| output)
    }

    /// One call in a worker, with a handler of the guest's host calls: `request` builds the
    /// request for the worker found and the limits left then. It is built once more, with
    /// what is left then, when the worker answers that it no longer holds a module.
    fn call_with<'a>(
        &self,
        stdin_len: usize,
        limits: &Limits,
        request: impl Fn(Limits, &Worker) -> Request<'a>,
        host: Option<&mut dyn HostCalls>,
    ) -> Result<(RunOutput, Arc<CodeCache>), RunError> {
        let called = Instant::now();
        let deadline = called + limits.wall_time;
        if stdin_len > limits.max_input_bytes {
            return Err(SandboxError::InputLimit {
                limit: limits.max_input_bytes,
            }
            .into());
        }
        let Acquired {
            worker,
            alone,
            reserved,
        } = self.inner.acquire(deadline, called)?;
        let mut taken = Taken {
            inner: &self.inner,
            worker: Some(worker),
        };
        let worker = taken.worker_mut();
        let waited = called.elapsed();
        // The reserve's time cuts the call only when it ends before the call's own deadline.
        let reserve_deadline = Instant::now() + self.inner.config.reserve_call_time;
        let cut = reserved && reserve_deadline < deadline;
        let deadline = if cut { reserve_deadline } else { deadline };
        let pid = worker.pid();
        let dispatched = Instant::now();
        let on_cpu_before = worker.sched_stat.as_ref().and_then(SchedStat::on_cpu);
        // Set by the attempt: a compiled module runs without epoch checks, so the kill is its
        // deadline, and a guest that slept most of its time and then spun would look starved
        // from outside. Its timeout stays its own.
        let runs_module = std::cell::Cell::new(false);
        // Not for a call with host calls: those run on this thread during the exchange, and
        // may be long (nested calls), so it keeps its own CPU set.
        let colocated = worker
            .serving_thread
            .filter(|_| self.inner.config.colocate && alone && host.is_none())
            .map(colocate::colocate);
        // A colocated caller shares its CPU with the worker: checking for the answer there
        // would only compete with the worker for it (and push the worker off it).
        let spin = if alone && colocated.is_none() {
            self.inner.config.lone_call_spin
        } else {
            Duration::ZERO
        };
        let mut host = host;
        let mut attempt = || {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let request = request(
                Limits {
                    wall_time: remaining,
                    ..limits.clone()
                },
                &*worker,
            );
            let kill_margin = match request {
                Request::RunModule { .. } | Request::RunLoadedModule { .. } => {
                    runs_module.set(true);
                    self.inner.config.module_kill_margin
                }
                _ => self.inner.config.kill_margin,
            };
            let outcome = exchange(
                &mut *worker,
                &request,
                Deadlines {
                    call: deadline,
                    kill: deadline + kill_margin,
                },
                max_response_frame(limits),
                host.as_mut().map(|host| HostCallsWithin {
                    host: &mut **host,
                    max_request_bytes: limits.max_input_bytes,
                }),
                spin,
            );
            if let Ok(response) = &outcome {
                worker.learn(&request, response);
            }
            let sent_key_only = matches!(request, Request::RunLoadedModule { .. });
            (outcome, sent_key_only)
        };
        let outcome = match attempt() {
            // The worker dropped the module since it last ran it: once more, with its bytes
            // (`learn` has forgotten the key). Only an answer to a key alone is retried.
            (Ok(Response::ModuleNotLoaded), true) => attempt().0,
            (outcome, _) => outcome,
        };
        // A worker's sandbox stops a guest at the output limit, on each stream: more is a
        // breach, as any other answer that cannot be (the frame's own bound is both together).
        let outcome = match outcome {
            Ok(Response::Ran(output))
                if output.stdout.len() > limits.max_output_bytes
                    || output.stderr.len() > limits.max_output_bytes =>
            {
                Err(Exchange::Broken(format!(
                    "an answer with {} bytes of stdout and {} of stderr, over the limit of {}",
                    output.stdout.len(),
                    output.stderr.len(),
                    limits.max_output_bytes
                )))
            }
            outcome => outcome,
        };
        match outcome {
            Ok(Response::Ran(output)) => {
                let code_cache = Arc::clone(&worker.code_cache);
                self.inner.release(taken.into_worker());
                Ok((output, code_cache))
            }
            Ok(Response::Failed(error)) => {
                self.inner.release(taken.into_worker());
                match error {
                    SandboxError::Timeout { limit } => {
                        if cut {
                            tracing::info!(
                                pid,
                                "a call run while every worker held a long call was stopped at \
                                 the reserve's time limit"
                            );
                        }
                        Err(self.timeout(limit, cut, waited, limits.wall_time).into())
                    }
                    // The worker measured its guest's use of its time; the parent knows of
                    // the reserve's cut and of the wait for a worker, which say more.
                    SandboxError::Starved { limit, used } => {
                        let waited_long = waited * 10 >= limits.wall_time;
                        if cut || waited_long {
                            Err(self.timeout(limit, cut, waited, limits.wall_time).into())
                        } else {
                            Err(SandboxError::Starved { limit, used }.into())
                        }
                    }
                    error => Err(error.into()),
                }
            }
            Err(Exchange::TimedOut { in_host_calls }) => {
                // Read before the kill: a reaped worker has no statistics. Only a guest that
                // was ready to run can have been starved: a worker silent on its own (asleep,
                // blocked) keeps its own timeout.
                let worker = taken.worker_mut();
                let runnable = !runs_module.get()
                    && worker
                        .serving_thread
                        .is_some_and(|tid| sched_stat::is_runnable(pid, tid));
                let used = worker
                    .sched_stat
                    .as_ref()
                    .and_then(SchedStat::on_cpu)
                    .zip(on_cpu_before)
                    .filter(|_| runnable)
                    .map(|(now, before)| now.saturating_sub(before));
                // The kill margin included: the guest had that time too.
                let ran = dispatched.elapsed().saturating_sub(in_host_calls);
                let status = self.inner.discard(taken.into_worker());
                tracing::warn!(
                    pid,
                    status,
                    ?used,
                    ?ran,
                    "killed a worker that overran its call's deadline"
                );
                let error = self.timeout(limits.wall_time, cut, waited, limits.wall_time);
                // A guest that had little of the CPU is the load's, as the worker itself
                // would have said had it had the time to ([`sched_stat`]).
                Err(match used {
                    Some(used) => error.after_running(used, ran),
                    None => error,
                }
                .into())
            }
            // `exchange` answers host calls itself: one here is a broken exchange; so is a
            // second "not loaded", which answered a request that sent the module.
            Ok(Response::HostCall(_) | Response::ModuleNotLoaded) | Err(Exchange::Broken(_)) => {
                let reason = match outcome {
                    Err(Exchange::Broken(reason)) => reason,
                    Ok(Response::ModuleNotLoaded) => {
                        "a module it was sent is not loaded".to_owned()
                    }
                    _ => "an unanswered host call".to_owned(),
                };
                let status = self.inner.discard(taken.into_worker());
                tracing::warn!(pid, %reason, status, "lost a worker during a call");
                Err(RunError::WorkerLost(status))
            }
        }
    }

    /// The error of a call that ran out of time after waiting `waited` for its worker, of
    /// `wall_time`: the load's (the reserve's cut, or a long wait: see
    /// [`SandboxError::after_waiting`]) or the call's own ([`SandboxError::Timeout`]).
    fn timeout(
        &self,
        limit: Duration,
        cut: bool,
        waited: Duration,
        wall_time: Duration,
    ) -> SandboxError {
        if cut {
            SandboxError::ReserveTimeout {
                limit: self.inner.config.reserve_call_time,
            }
        } else {
            SandboxError::Timeout { limit }.after_waiting(
                waited,
                wall_time,
                || "worker pool".to_owned(),
                self.inner.config.max_workers,
            )
        }
    }

    /// Test hook: asks a worker to issue a forbidden system call, and reports how that
    /// worker ended (`"killed by signal 31"` for `SIGSYS`). The worker is replaced.
    pub fn issue_forbidden_syscall(&self) -> Result<String, RunError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let Acquired { mut worker, .. } = self.inner.acquire(deadline, Instant::now())?;
        let deadlines = Deadlines {
            call: deadline,
            kill: deadline,
        };
        match exchange(
            &mut worker,
            &Request::ForbiddenSyscall,
            deadlines,
            1024,
            None,
            Duration::ZERO,
        ) {
            Ok(_) => {
                self.inner.release(worker);
                Err(RunError::WorkerLost(
                    "the worker answered instead of dying".to_owned(),
                ))
            }
            // A test hook: it wants the real status, however long the exit takes.
            Err(_) => Ok(self.inner.discard_within(worker, Duration::from_secs(60))),
        }
    }

    /// The pool's current state.
    pub fn status(&self) -> PoolStatus {
        let state = self.inner.lock();
        PoolStatus {
            max_workers: self.inner.config.max_workers,
            alive: state.alive,
            idle_pids: state.idle.iter().map(Worker::pid).collect(),
            busy_pids: state.busy.iter().map(|busy| busy.pid).collect(),
            lost: state.lost,
            retired: state.retired,
            recycled: state.recycled,
            reserve_workers: self.inner.config.reserve_workers,
            reserve_calls: state.reserve_calls,
            starting: state.starting,
            queued_starts: state.queued_starts,
            confinement: state.confinement.clone(),
            address_space_limit_bytes: state.address_space_limit,
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        state.closed = true;
        for mut worker in state.idle.drain(..) {
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
    }
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle worker, a new one, or the first one returned before `deadline`.
    fn acquire(self: &Arc<Self>, deadline: Instant, called: Instant) -> Result<Acquired, RunError> {
        let mut counted_waiting = false;
        let acquired = self.acquire_counting(deadline, called, &mut counted_waiting);
        if counted_waiting {
            self.lock().waiting -= 1;
        }
        acquired
    }

    /// [`PoolInner::acquire`]; sets `counted_waiting` when it counted this call in
    /// [`PoolState::waiting`], which the caller then undoes.
    fn acquire_counting(
        self: &Arc<Self>,
        deadline: Instant,
        called: Instant,
        counted_waiting: &mut bool,
    ) -> Result<Acquired, RunError> {
        let mut state = self.lock();
        let mut asked_for_one = false;
        // Bounded by `running_wait` (and the call's deadline), however often it is woken.
        let wait_for_running_until = (called + self.config.running_wait).min(deadline);
        loop {
            if !state.idle.is_empty()
                && state.running_short(self.lowered_after(&state), Instant::now())
                    >= self.config.max_running
                && let Some(left) = wait_for_running_until.checked_duration_since(Instant::now())
            {
                state = self
                    .returned
                    .wait_timeout(state, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            if let Some(mut worker) = state.idle.pop() {
                // A worker that died while idle (killed from outside, the OOM killer), or
                // spoke out of turn, is reaped here and replaced; it is never handed a call.
                let spoke = worker.spoke_out_of_turn();
                match worker.child.try_wait() {
                    Ok(None) if !spoke => {
                        let reserved = state.busy.len() >= self.config.max_workers;
                        if reserved {
                            state.reserve_calls += 1;
                        }
                        state.busy.push(BusyWorker {
                            pid: worker.pid(),
                            since: Instant::now(),
                        });
                        return Ok(Acquired {
                            alone: state.busy.len() == 1,
                            reserved,
                            worker,
                        });
                    }
                    ended => {
                        drop(state);
                        let pid = worker.pid();
                        // A live one is killed as a call's is (`discard`): its priority
                        // restored, and its exit awaited at most `REAP_WAIT`. A plain `wait`
                        // here held this call for as long as a killed worker lowered to
                        // `SCHED_IDLE` takes to exit on busy CPUs (seconds).
                        let status = match ended {
                            Ok(Some(status)) => {
                                self.forget(pid);
                                describe(status)
                            }
                            Ok(None) => {
                                format!("wrote while it held no call, {}", self.discard(worker))
                            }
                            Err(_) => {
                                format!("could not be checked, {}", self.discard(worker))
                            }
                        };
                        tracing::warn!(pid, status, "lost an idle worker");
                        state = self.lock();
                        continue;
                    }
                }
            }
            // No idle worker: after `start_after`, ask for one more (at most one per caller,
            // and only while fewer are starting or queued than calls wait: a start that a
            // call asked for and no longer needs serves another), started in the background,
            // and wait for any worker to come free. The wait is bounded by the call's
            // deadline, not by how long a worker takes to start; a worker that starts too
            // late for this call serves the next one.
            let ask_from = called + self.config.start_after;
            let (capacity, reserve_opens_at) = self.capacity(&state, Instant::now());
            let may_ask = !asked_for_one && state.alive < capacity;
            if may_ask && Instant::now() >= ask_from {
                if !*counted_waiting {
                    *counted_waiting = true;
                    state.waiting += 1;
                }
                if state.starting + state.queued_starts < state.waiting {
                    asked_for_one = true;
                    state.alive += 1;
                    drop(state);
                    self.start_in_background();
                    state = self.lock();
                    continue;
                }
            }
            if let Some((failed_at, reason)) = &state.start_failure
                && *failed_at >= called
                && asked_for_one
            {
                return Err(RunError::Unavailable(reason.clone()));
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(SandboxError::Busy {
                    guest: "worker pool".to_owned(),
                    capacity: self.config.max_workers,
                    waited: called.elapsed(),
                }
                .into());
            };
            let mut wake_by = if may_ask && !*counted_waiting {
                left.min(ask_from.saturating_duration_since(Instant::now()))
            } else {
                left
            };
            // Calls become long with time alone, and nobody is woken for that.
            if let Some(opens) = reserve_opens_at {
                wake_by = wake_by.min(opens.saturating_duration_since(Instant::now()));
            }
            state = self
                .returned
                .wait_timeout(state, wake_by)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// How many workers may be alive now: [`WorkerPoolConfig::max_workers`], plus
    /// [`WorkerPoolConfig::reserve_workers`] while as many calls as `max_workers` are long;
    /// and, while the reserve is closed but `max_workers` calls are in flight, when it would
    /// open if none of them ended (a waiting call wakes then to ask for a reserve worker).
    fn capacity(&self, state: &PoolState, now: Instant) -> (usize, Option<Instant>) {
        let max = self.config.max_workers;
        if self.config.reserve_workers == 0 {
            return (max, None);
        }
        let long_after = self
            .config
            .spec
            .sandbox
            .lower_priority_after
            .unwrap_or(zeval_sandbox::DEFAULT_LOWER_PRIORITY_AFTER);
        if state.running_long(long_after, now) >= max {
            return (max + self.config.reserve_workers, None);
        }
        // `busy` is in the order the calls started: the `max`-th is the last to turn long.
        let opens_at = state
            .busy
            .get(max.saturating_sub(1))
            .map(|busy| busy.since + long_after)
            .filter(|&at| at > now);
        (max, opens_at)
    }

    /// How long a call runs before its worker lowers it (`SandboxConfig::lower_priority_after`),
    /// so that it stops counting against [`WorkerPoolConfig::max_running`]; `None` when the
    /// workers do not lower long calls, because the newest one reported that it could not
    /// raise a thread back (`ConfinementReport::priority_restorable`): a long call then
    /// competes for the CPUs like any other.
    fn lowered_after(&self, state: &PoolState) -> Option<Duration> {
        if state
            .confinement
            .as_ref()
            .is_some_and(|report| !report.priority_restorable)
        {
            return None;
        }
        self.config.spec.sandbox.lower_priority_after
    }

    fn release(self: &Arc<Self>, mut worker: Worker) {
        worker.calls += 1;
        if self
            .config
            .recycle_after_calls
            .is_some_and(|calls| worker.calls >= calls)
        {
            self.recycle(worker);
            return;
        }
        let mut state = self.lock();
        state.take_out_of_busy(worker.pid());
        state.push_idle(worker);
        drop(state);
        self.returned.notify_one();
    }

    /// Stops `worker`, which has served [`WorkerPoolConfig::recycle_after_calls`] calls, and
    /// has it replaced. It waits for its next request, so it ends at once; it is reaped on a
    /// thread of its own, so that the call that gave it back does not wait for that.
    fn recycle(self: &Arc<Self>, mut worker: Worker) {
        let pid = worker.pid();
        {
            let mut state = self.lock();
            state.take_out_of_busy(pid);
            state.alive -= 1;
            state.recycled += 1;
        }
        self.returned.notify_one();
        let _ = worker.child.kill();
        let reaper = std::thread::Builder::new()
            .name("zeval-worker-reap".to_owned())
            .spawn(move || {
                let status = worker.child.wait().map(describe).unwrap_or_default();
                tracing::debug!(pid, status, "recycled a worker");
            });
        if let Err(error) = reaper {
            tracing::warn!(%error, "no thread to reap a recycled worker; reaping it now");
            reap::wait_for_pid(pid);
        }
        self.replenish();
    }

    /// Kills `worker` and counts it lost; how it ended. It is reaped within
    /// [`reap::REAP_WAIT`], else on a thread of its own ([`reap`] says why), and stays
    /// counted alive until then; a replacement is started if the pool is below its minimum.
    fn discard(self: &Arc<Self>, worker: Worker) -> String {
        self.discard_within(worker, reap::REAP_WAIT)
    }

    /// [`PoolInner::discard`], waiting up to `wait` for the exit.
    fn discard_within(self: &Arc<Self>, worker: Worker, wait: Duration) -> String {
        let Worker {
            mut child, socket, ..
        } = worker;
        drop(socket);
        let pid = child.id();
        let _ = child.kill();
        reap::restore_normal_priority(pid);
        if let Some(status) = reap::wait_within(&mut child, wait) {
            self.forget(pid);
            return describe(status);
        }
        let pool = Arc::clone(self);
        let reaper = std::thread::Builder::new()
            .name("zeval-worker-reap".to_owned())
            .spawn(move || {
                let status = child.wait().map(describe).unwrap_or_default();
                tracing::debug!(pid, status, "reaped a killed worker");
                pool.forget(pid);
            });
        if let Err(error) = reaper {
            // No thread: reap here rather than leave a zombie counted alive forever. The
            // `Child` moved into the closure that failed to start, so wait by pid.
            tracing::warn!(%error, "no thread to reap a killed worker; reaping it now");
            reap::wait_for_pid(pid);
            self.forget(pid);
        }
        "killed by signal 9 (still exiting)".to_owned()
    }

    /// Counts the ended worker `pid` out and starts a replacement if one is missing.
    fn forget(self: &Arc<Self>, pid: u32) {
        {
            let mut state = self.lock();
            state.take_out_of_busy(pid);
            state.alive -= 1;
            state.lost += 1;
        }
        self.returned.notify_one();
        self.replenish();
    }

    /// Starts workers in the background until [`WorkerPoolConfig::min_workers`] are alive.
    fn replenish(self: &Arc<Self>) {
        let missing = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            let missing = self.config.min_workers.saturating_sub(state.alive);
            state.alive += missing;
            missing
        };
        for _ in 0..missing {
            self.start_in_background();
        }
    }

    /// Asks for one more worker, which joins the idle workers when ready. It starts now on a
    /// starter thread of its own when fewer than [`WorkerPoolConfig::max_starting`] are
    /// starting, else it queues, and a starter thread takes it when its own start is done.
    /// The caller has counted it in `alive`.
    fn start_in_background(self: &Arc<Self>) {
        {
            let mut state = self.lock();
            if state.starting >= self.config.max_starting.max(1) {
                state.queued_starts += 1;
                return;
            }
            state.starting += 1;
        }
        let pool = Arc::downgrade(self);
        let started = std::thread::Builder::new()
            .name("zeval-worker-start".to_owned())
            .spawn(move || {
                // One start a turn, then the next queued one, until none is left. A start's
                // outcome and the count of starts change under one lock, and then every
                // waiting call is woken: a call that found as many starts pending as calls
                // waiting did not ask for one, and must see that this one is over (when the
                // count went down later, unannounced, such a call slept until its deadline).
                while let Some(pool) = pool.upgrade() {
                    let outcome = pool.spawn();
                    let mut state = pool.lock();
                    match outcome {
                        Ok(worker) => state.push_idle(worker),
                        Err(error) => {
                            tracing::error!(%error, "could not start a worker");
                            state.alive -= 1;
                            state.start_failure = Some((Instant::now(), error.to_string()));
                        }
                    }
                    let more = if state.queued_starts > 0 {
                        state.queued_starts -= 1;
                        true
                    } else {
                        state.starting -= 1;
                        false
                    };
                    drop(state);
                    pool.returned.notify_all();
                    if !more {
                        return;
                    }
                }
            });
        if let Err(error) = started {
            // No thread to start it, nor the queued ones (a starter thread that is running
            // takes queued starts, but this one would have been the only one).
            let queued = {
                let mut state = self.lock();
                state.starting -= 1;
                if state.starting == 0 {
                    std::mem::take(&mut state.queued_starts)
                } else {
                    0
                }
            };
            self.start_failed(1 + queued, error.to_string());
        }
    }

    /// Counts `count` asked-for workers out of `alive` because they could not be started,
    /// and tells the waiting callers why.
    fn start_failed(&self, count: usize, reason: String) {
        let mut state = self.lock();
        state.alive -= count;
        state.start_failure = Some((Instant::now(), reason));
        drop(state);
        self.returned.notify_all();
    }

    /// Starts one worker and waits for it to be confined and ready.
    fn spawn(&self) -> Result<Worker, WorkerError> {
        let (parent_end, child_end) = UnixStream::pair()?;
        let mut command = Command::new(&self.config.program);
        command
            .args(&self.config.args)
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(child_end)))
            .stdout(Stdio::null())
            // A pipe, not the server's own stderr: what a worker writes is relayed with
            // bounds ([`relay_log`]), and the worker can take a file-size limit of 0.
            .stderr(Stdio::piped())
            // The worker sees no environment but what its logging needs.
            .env_clear();
        for key in ["RUST_LOG", "ZEVAL_LOG"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        let mut child = self.spawner.spawn(command).map_err(|e| {
            WorkerError::Setup(format!("starting {}: {e}", self.config.program.display()))
        })?;
        if let Some(log) = child.stderr.take() {
            let pid = child.id();
            let relay = std::thread::Builder::new()
                .name("zeval-worker-log".to_owned())
                .spawn(move || relay_log(pid, log));
            if let Err(error) = relay {
                tracing::warn!(%error, "no thread to relay a worker's log; it is dropped");
            }
        }
        let deadline = Instant::now() + self.config.start_timeout;
        let started = (|| -> Result<Hello, WorkerError> {
            let mut socket = Deadlined::new(&parent_end, deadline);
            write_json(&mut socket, &self.config.spec)?;
            if !self.config.sealed_guests.is_empty() {
                let descriptors: Vec<_> = self
                    .config
                    .sealed_guests
                    .iter()
                    .map(|file| std::os::fd::AsFd::as_fd(file.as_ref()))
                    .collect();
                crate::protocol::send_descriptors(&parent_end, &descriptors)?;
            }
            Ok(read_json(&mut socket)?)
        })();
        let (confinement, serving_thread) = match started {
            Ok(Hello::Ready {
                confinement,
                address_space_limit,
                serving_thread,
            }) => {
                self.lock().address_space_limit = address_space_limit;
                (confinement, serving_thread)
            }
            Ok(Hello::Failed { message }) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WorkerError::Setup(message));
            }
            Err(error) => {
                let _ = child.kill();
                let status = child.wait().map(describe).unwrap_or_default();
                return Err(WorkerError::Setup(format!(
                    "the worker did not start ({status}): {error}"
                )));
            }
        };
        // The thread id is the worker's word, and the parent binds that thread's CPU set
        // (`colocate`), which root may do to any thread: only one of the worker's own is
        // taken.
        let serving_thread = serving_thread.filter(|&tid| {
            let own = colocate::is_thread_of(child.id(), tid);
            if !own {
                tracing::warn!(
                    pid = child.id(),
                    tid,
                    "a worker named a serving thread that is not its own; it is not colocated"
                );
            }
            own
        });
        tracing::debug!(pid = child.id(), "worker ready");
        let first = self
            .lock()
            .confinement
            .replace(confinement.clone())
            .is_none();
        if first {
            log_confinement(&confinement);
        }
        let sched_stat = serving_thread.and_then(|tid| SchedStat::of(child.id(), tid));
        Ok(Worker {
            child,
            socket: parent_end,
            serving_thread,
            loaded_modules: Vec::new(),
            code_cache: Arc::new(CodeCache::new(CODE_CACHE_BYTES_PER_WORKER)),
            idle_since: Instant::now(),
            calls: 0,
            sched_stat,
        })
    }
}

/// How often idle workers are checked for having died, or idled long enough to retire.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the thread that reaps idle workers that died (killed from outside, the OOM killer)
/// and has them replaced, so the pool's count and `/_info` stay true even when no call comes.
/// (A call also checks the worker it takes.) The thread ends with the pool.
fn watch(pool: &Arc<PoolInner>) -> std::io::Result<()> {
    let pool = Arc::downgrade(pool);
    std::thread::Builder::new()
        .name("zeval-worker-watch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(WATCH_INTERVAL);
                let Some(pool) = pool.upgrade() else { return };
                pool.prune_idle();
                pool.retire_idle();
            }
        })
        .map(drop)
}

impl PoolInner {
    /// Reaps the idle workers that have ended, and starts replacements.
    fn prune_idle(self: &Arc<Self>) {
        let mut ended = Vec::new();
        {
            let mut state = self.lock();
            let mut index = 0;
            while index < state.idle.len() {
                match state.idle[index].child.try_wait() {
                    Ok(None) => index += 1,
                    outcome => {
                        let mut worker = state.idle.swap_remove(index);
                        state.alive -= 1;
                        state.lost += 1;
                        if outcome.is_err() {
                            let _ = worker.child.kill();
                            let _ = worker.child.wait();
                        }
                        ended.push((worker.pid(), outcome.ok().flatten().map(describe)));
                    }
                }
            }
        }
        if ended.is_empty() {
            return;
        }
        for (pid, status) in ended {
            tracing::warn!(
                pid,
                status = status.unwrap_or_default(),
                "an idle worker died"
            );
        }
        self.returned.notify_all();
        self.replenish();
    }

    /// Stops the workers idle for [`WorkerPoolConfig::retire_idle_after`], the least recently
    /// used first, while more than [`WorkerPoolConfig::min_workers`] are alive.
    fn retire_idle(&self) {
        let Some(after) = self.config.retire_idle_after else {
            return;
        };
        let mut retiring = Vec::new();
        {
            let mut state = self.lock();
            let now = Instant::now();
            while state.alive > self.config.min_workers {
                let oldest = state
                    .idle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, worker)| worker.idle_since)
                    .map(|(index, worker)| (index, worker.idle_since));
                match oldest {
                    Some((index, since)) if now.saturating_duration_since(since) >= after => {
                        retiring.push(state.idle.remove(index));
                        state.alive -= 1;
                        state.retired += 1;
                    }
                    _ => break,
                }
            }
        }
        if retiring.is_empty() {
            return;
        }
        // A call that could not ask for a start at `max_workers` may ask now.
        self.returned.notify_all();
        for mut worker in retiring {
            // Idle, it waits for a request: it ends at once, and nothing is lost.
            let _ = worker.child.kill();
            let status = worker.child.wait().map(describe).unwrap_or_default();
            tracing::debug!(pid = worker.pid(), status, "retired an idle worker");
        }
    }
}

/// Logs, once per pool, what the kernel granted the workers: every step not fully enforced
/// is a warning with its reason, so an operator never runs with less than they think.
fn log_confinement(report: &ConfinementReport) {
    tracing::info!(
        seccomp = report.seccomp.detail(),
        landlock = report.landlock.detail(),
        user = report.user.detail(),
        "guests run in confined worker processes"
    );
    for (step, feature) in [
        ("seccomp", &report.seccomp),
        ("landlock", &report.landlock),
        ("user", &report.user),
        ("resource limits", &report.rlimits),
        ("memory cgroup", &report.memory_cgroup),
    ] {
        if !feature.is_on() {
            tracing::warn!(
                step,
                detail = feature.detail(),
                "worker confinement is not complete"
            );
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}
