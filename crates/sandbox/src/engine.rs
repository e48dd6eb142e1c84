//! The wasmtime engine of one guest, and the epoch ticker shared by all engines.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::priority::Watchlist;
use crate::{SandboxConfig, SandboxError};

/// How often the ticker advances every engine's epoch. On every tick a running call compares
/// the real clock with its deadline, so a CPU-bound guest is stopped at most about one tick
/// (plus scheduling delay of the ticker and of the call's thread) after its limit, however
/// late the ticks come.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Room on the fiber stack above `max_wasm_stack` for host functions (WASI calls).
const HOST_STACK_HEADROOM: usize = 1024 * 1024;

/// How an engine differs from a guest's default one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EngineOptions {
    /// Let Cranelift compile on a thread pool (a confined worker may start no thread, so its
    /// engine compiles on the calling thread).
    pub(crate) parallel_compilation: bool,
    /// Map memory images copy-on-write (which needs a `memfd` per module compiled in memory:
    /// a confined worker can create none).
    pub(crate) copy_on_write_images: bool,
    /// Compile epoch checks into the code (at every function entry and loop back-edge), by
    /// which a call stops at its deadline. Without them nothing inside the process can stop
    /// a call: only for code run where the process is killed at the deadline instead (see
    /// [`crate::ModuleHostConfig::epoch_interruption`]).
    pub(crate) epoch_interruption: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            parallel_compilation: true,
            copy_on_write_images: true,
            epoch_interruption: true,
        }
    }
}

/// Builds the engine for a guest named `guest`.
pub(crate) fn build_engine(config: &SandboxConfig, guest: &str) -> Result<Engine, SandboxError> {
    build_engine_with(config, guest, EngineOptions::default())
}

/// [`build_engine`] with `options`.
pub(crate) fn build_engine_with(
    config: &SandboxConfig,
    guest: &str,
    options: EngineOptions,
) -> Result<Engine, SandboxError> {
    let mut wasm = Config::new();
    wasm.parallel_compilation(options.parallel_compilation);
    wasm.cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(options.epoch_interruption)
        .consume_fuel(config.fuel_metering)
        .max_wasm_stack(config.max_wasm_stack)
        // No wasm backtrace on traps: the messages name the trap only, and CPython ends
        // every call with `proc_exit`, a trap whose backtrace was captured and symbolised
        // on every call (about 20 µs of a trivial Python call).
        .wasm_backtrace_max_frames(None)
        .async_stack_size(config.max_wasm_stack + HOST_STACK_HEADROOM)
        // Snapshots are large data segments: map them copy-on-write instead of copying.
        .memory_init_cow(options.copy_on_write_images);
    if config.perf_map {
        wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if config.pool.enabled {
        let pool = &config.pool;
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_core_instances(pool.total_instances())
            .total_memories(pool.total_instances())
            .total_tables(pool.total_instances())
            .total_stacks(pool.total_instances())
            .total_component_instances(0)
            .total_gc_heaps(0)
            .max_memory_size(pool.max_memory_bytes)
            .table_elements(pool.max_table_elements)
            .linear_memory_keep_resident(pool.keep_resident_for(guest))
            .table_keep_resident(64 * 1024)
            // Reset only the pages a call wrote (Linux 6.7+ `PAGEMAP_SCAN`) instead of
            // rewriting all of the kept-resident memory: a trivial QuickJS call writes about
            // 50 pages of the 4.4 MiB it used to memset and copy back on every return.
            // `Auto` falls back to the full reset where the kernel lacks it. The ioctl is in
            // the workers' seccomp allowlist for this request only.
            .pagemap_scan(wasmtime::Enabled::Auto);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    Engine::new(&wasm).map_err(|e| SandboxError::Setup(format!("engine for {guest}: {e:#}")))
}

/// A hex digest of everything in `engine`'s configuration that a precompiled module depends
/// on, for the module cache key.
pub(crate) fn compatibility_digest(engine: &Engine) -> String {
    use sha2::Digest;
    use std::hash::Hash;

    /// Feeds `Hash` output into SHA-256, which (unlike `DefaultHasher`) is stable across
    /// Rust releases and processes.
    struct Sha256Hasher(sha2::Sha256);
    impl std::hash::Hasher for Sha256Hasher {
        fn finish(&self) -> u64 {
            unreachable!("only the SHA-256 digest is read")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha256Hasher(sha2::Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())
}

/// The engines whose epochs the ticker thread advances, and the calls without epoch checks
/// whose priority it lowers.
#[derive(Default)]
pub(crate) struct EngineRegistry {
    engines: Mutex<Vec<Engine>>,
    pub(crate) watchlist: Watchlist,
    /// Calls running now ([`EngineRegistry::running`]). The ticker sleeps while there are
    /// none: an idle process (a server between requests, each of up to 32 idle workers)
    /// would otherwise wake a thousand times a second for nothing.
    running: AtomicUsize,
    /// The ticker thread, to wake when a call starts.
    ticker: OnceLock<Thread>,
    /// Ticks so far.
    ticks: AtomicU64,
}

/// A call running in one of the registry's engines: the ticker ticks while one is alive.
pub(crate) struct RunningCall<'a>(&'a EngineRegistry);

impl Drop for RunningCall<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for EngineRegistry {
    fn drop(&mut self) {
        // A sleeping ticker would never see that its registry is gone.
        if let Some(ticker) = self.ticker.get() {
            ticker.unpark();
        }
    }
}

impl EngineRegistry {
    /// Marks a call as running until the returned guard is dropped. Taken before the call's
    /// store sets its epoch deadline, and held until its code can no longer run: its
    /// deadline is checked only on ticks.
    pub(crate) fn running(&self) -> RunningCall<'_> {
        if self.running.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(ticker) = self.ticker.get()
        {
            // Cheap when the ticker is awake: `unpark` then only sets its token.
            ticker.unpark();
        }
        RunningCall(self)
    }

    pub(crate) fn register(&self, engine: &Engine) {
        self.engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(engine.clone());
    }

    fn tick(&self) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        for engine in self
            .engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            engine.increment_epoch();
        }
        self.watchlist.lower_due();
    }
}

/// Starts the ticker thread; it ends by itself once `registry` is dropped. It ticks every
/// [`EPOCH_TICK`] while a call runs, and sleeps while none does
/// ([`EngineRegistry::running`] wakes it).
pub(crate) fn start_ticker(registry: &Arc<EngineRegistry>) -> Result<(), SandboxError> {
    let weak: Weak<EngineRegistry> = Arc::downgrade(registry);
    let ticker = std::thread::Builder::new()
        .name("zeval-epoch".to_owned())
        .spawn(move || {
            while let Some(registry) = weak.upgrade() {
                if registry.running.load(Ordering::Acquire) == 0 {
                    drop(registry);
                    // A call that starts after the check above unparks this thread, and a
                    // token left by an earlier unpark only costs one more turn of the loop.
                    std::thread::park();
                    continue;
                }
                registry.tick();
                drop(registry);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| SandboxError::Setup(format!("epoch ticker thread: {e}")))?;
    let _ = registry.ticker.set(ticker.thread().clone());
    // A call may have started before the handle was stored: it found no ticker to wake.
    ticker.thread().unpark();
    Ok(())
}

#[cfg(test)]
mod ticker_tests {
    use super::*;
    use std::time::Instant;

    fn ticks(registry: &EngineRegistry) -> u64 {
        registry.ticks.load(Ordering::Relaxed)
    }

    /// Waits up to 5 s for `done`, polling.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while !done() {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    #[test]
    fn the_ticker_ticks_only_while_a_call_runs() {
        let registry = Arc::new(EngineRegistry::default());
        start_ticker(&registry).unwrap();
        std::thread::sleep(EPOCH_TICK * 30);
        assert_eq!(ticks(&registry), 0, "no call ran: no tick");

        let running = registry.running();
        assert!(
            eventually(|| ticks(&registry) >= 10),
            "a running call gets ticks"
        );
        let second = registry.running();
        drop(running);
        let before = ticks(&registry);
        assert!(
            eventually(|| ticks(&registry) >= before + 10),
            "ticks go on while one call of two still runs"
        );
        drop(second);

        // The ticker may be inside a tick as the last call ends; after that, none.
        std::thread::sleep(EPOCH_TICK * 20);
        let idle = ticks(&registry);
        std::thread::sleep(EPOCH_TICK * 30);
        assert_eq!(ticks(&registry), idle, "no tick once no call runs");

        let again = registry.running();
        assert!(
            eventually(|| ticks(&registry) > idle),
            "the next call wakes the ticker"
        );
        drop(again);
    }
}
