//! Configuration of an [`crate::Evaluator`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use zeval_sandbox::{Limits, SandboxConfig};

use crate::language::Variant;

/// How an evaluator is set up. Every field has a default ([`EvaluatorConfig::default`]).
#[derive(Debug, Clone)]
pub struct EvaluatorConfig {
    /// Where `guests/build.sh` put `quickjs.wasm` and `python.wasm` (default
    /// [`zeval_sandbox::default_guest_dir`]: `$ZEVAL_GUEST_DIR`, else
    /// `/var/cache/zeval/guests`).
    pub guest_dir: PathBuf,
    /// Which languages get an executor (default [`Variant::Omnibus`]).
    pub variant: Variant,
    /// The sandbox (module cache, pool, stack, fuel metering). Default: the sandbox's
    /// defaults with the module cache in `<guest_dir>/../module-cache`.
    pub sandbox: SandboxConfig,
    /// The limits of one call (default [`Limits::default`]: 10 s wall time, 128 MiB linear
    /// memory, 8 MiB of input and of output).
    pub limits: Limits,
    /// Load the guests without their snapshot (`*.raw.wasm`). Benchmarks only: every call
    /// then boots the interpreter and loads the runner.
    pub unsnapshotted: bool,
    /// The name reported in the `evaluationHostname` metadata key, instead of the machine's
    /// host name (which would tell every caller something about the deployment). Default
    /// [`default_instance_name`]: `zeval-` and 8 random hex digits, drawn once per process.
    pub instance_name: String,
    /// Where guests run. Default [`Isolation::InProcess`] for the library; `zeval serve`
    /// defaults to worker processes.
    pub isolation: Isolation,
    /// Keep what each JavaScript or Python code string compiles to (QuickJS bytecode, a
    /// CPython code object), and give it to later calls of the same code string and function
    /// name instead of compiling again (`zeval_sandbox::code_cache`): in
    /// this process for guests here, in each worker's own cache for guests in workers.
    /// Default on.
    pub code_cache: bool,
    /// Keep the modules of compiled implementations (C, Rust) that run in this process
    /// precompiled on disk, in the sandbox's module cache. Default on, for the library.
    /// `zeval serve` turns it off unless `[compiler] keep_call_time_artifacts`: any caller
    /// may send inline code, and each distinct module would leave a file behind forever.
    /// Workers compile in memory either way.
    pub module_disk_cache: bool,
}

/// Where an evaluator runs its guests.
#[derive(Debug, Clone, Default)]
pub enum Isolation {
    /// In this process's sandbox, on the calling thread: one wall (wasmtime). For
    /// benchmarks, tests and embedding.
    #[default]
    InProcess,
    /// In confined worker processes (`zeval_worker`): two walls. Boxed: the settings are
    /// many, and an evaluator holds one `Isolation`.
    Workers(Box<WorkerSettings>),
}

impl Isolation {
    /// [`Isolation::Workers`] with `settings`.
    pub fn workers(settings: WorkerSettings) -> Self {
        Isolation::Workers(Box::new(settings))
    }
}

/// How the evaluator's worker processes are started and supervised
/// (see `zeval_worker::WorkerPoolConfig` for what each limit bounds).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The program that serves as a worker (the server's own binary) and its arguments.
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Most worker processes (calls in flight). Default 32.
    pub max_workers: usize,
    /// Workers kept ready. Default 2.
    pub min_workers: usize,
    /// How long past a call's deadline a silent worker is given before it is killed.
    /// Default 1 s.
    pub kill_margin: Duration,
    /// The user workers run as when the server runs as root (`None`: `nobody`).
    pub user: Option<String>,
    /// Accept the test hook that issues a forbidden system call. Tests only.
    pub test_hooks: bool,
    /// Bind a worker to its caller's CPU for a call alone in flight
    /// (`zeval_worker::WorkerPoolConfig::colocate`). Default false.
    pub colocate: bool,
    /// How long the caller of a call alone in flight checks for its answer before it
    /// sleeps (`zeval_worker::WorkerPoolConfig::lone_call_spin`). Default
    /// [`zeval_worker::DEFAULT_LONE_CALL_SPIN`], 200 µs.
    pub lone_call_spin: Duration,
    /// Calls that start without waiting (`zeval_worker::WorkerPoolConfig::max_running`);
    /// `None`: the pool's default, twice the CPUs.
    pub max_running: Option<usize>,
    /// The longest a call waits for `max_running`. Default 2 ms.
    pub running_wait: Duration,
    /// How long a call that finds no idle worker waits for one to come free before it asks
    /// for a new one (`zeval_worker::WorkerPoolConfig::start_after`). Default 2 ms.
    pub start_after: Duration,
    /// Most workers starting at once (`zeval_worker::WorkerPoolConfig::max_starting`).
    /// Default 1.
    pub max_starting: usize,
    /// How long a worker beyond `min_workers` may stay idle before it is stopped
    /// (`zeval_worker::WorkerPoolConfig::retire_idle_after`). Default 60 s; `None`: never.
    pub retire_idle_after: Option<Duration>,
    /// How many calls one worker serves before it is replaced
    /// (`zeval_worker::WorkerPoolConfig::recycle_after_calls`). Default 10,000; `None`: never.
    pub recycle_after_calls: Option<u64>,
    /// Workers that may start beyond `max_workers` while every one of those holds a long
    /// call (`zeval_worker::WorkerPoolConfig::reserve_workers`); `None`: the pool's default,
    /// twice the CPUs.
    pub reserve_workers: Option<usize>,
    /// The longest a call that finds `max_workers` calls in flight may run
    /// (`zeval_worker::WorkerPoolConfig::reserve_call_time`). Default 1 s.
    pub reserve_call_time: Duration,
}

impl WorkerSettings {
    /// The defaults, running `program args` as a worker.
    pub fn new(program: impl Into<PathBuf>, args: Vec<OsString>) -> Self {
        Self {
            program: program.into(),
            args,
            max_workers: 32,
            min_workers: 2,
            kill_margin: Duration::from_secs(1),
            user: None,
            test_hooks: false,
            colocate: false,
            lone_call_spin: zeval_worker::DEFAULT_LONE_CALL_SPIN,
            max_running: None,
            running_wait: Duration::from_millis(2),
            start_after: Duration::from_millis(2),
            max_starting: 1,
            retire_idle_after: Some(zeval_worker::DEFAULT_RETIRE_IDLE_AFTER),
            recycle_after_calls: Some(zeval_worker::DEFAULT_RECYCLE_AFTER_CALLS),
            reserve_workers: None,
            reserve_call_time: zeval_worker::DEFAULT_RESERVE_CALL_TIME,
        }
    }
}

pub use zeval_zobject::metadata_format::default_instance_name;

impl Default for EvaluatorConfig {
    fn default() -> Self {
        let guest_dir = zeval_sandbox::default_guest_dir();
        Self::new(guest_dir)
    }
}

impl EvaluatorConfig {
    /// The defaults, with guests read from `guest_dir`.
    pub fn new(guest_dir: impl Into<PathBuf>) -> Self {
        let guest_dir = guest_dir.into();
        let cache_dir = guest_dir
            .parent()
            .map(|parent| parent.join("module-cache"))
            .unwrap_or_else(|| guest_dir.join("module-cache"));
        Self {
            guest_dir,
            variant: Variant::default(),
            sandbox: SandboxConfig::new(cache_dir),
            limits: Limits::default(),
            unsnapshotted: false,
            instance_name: default_instance_name().to_owned(),
            isolation: Isolation::InProcess,
            code_cache: true,
            module_disk_cache: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_instance_name_is_random_per_process_and_stable() {
        let name = default_instance_name();
        assert_eq!(name.len(), "zeval-".len() + 8, "{name}");
        assert!(name.starts_with("zeval-"));
        assert!(name[6..].chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert_eq!(default_instance_name(), name);
        assert_eq!(EvaluatorConfig::new("/nowhere").instance_name, name);
    }
}
