//! Sandbox-wide and per-guest configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const MIB: usize = 1024 * 1024;

/// Configuration of a [`crate::Sandbox`]. Serializable so that the evaluator can hand it to
/// its worker processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// Where precompiled modules (`.cwasm`) are cached, keyed by module sha256, wasmtime
    /// version and engine configuration. Cached files are loaded as native code, so they are
    /// verified first: the directory and files must be owned by the server's effective uid
    /// and not writable by group or others, and each file must match the SHA-256 manifest
    /// entry written when it was compiled (otherwise it is compiled again; a directory that
    /// fails the check is not used).
    pub cache_dir: PathBuf,
    /// Instance pool sizing.
    pub pool: PoolConfig,
    /// Wasm stack of one call (Cranelift frames on a fiber stack of this size plus 1 MiB
    /// for host functions). Default 8 MiB: CPython 3.13 on WASI needs about that for its
    /// default recursion limit. QuickJS sets no limit of its own on WASI: its recursion
    /// ends here or in its C stack in linear memory, both reported as the stack limit.
    pub max_wasm_stack: usize,
    /// Count wasm fuel in every call, enabling [`crate::Limits::fuel`] and
    /// [`crate::RunOutput::fuel_consumed`]. Default off: the epoch deadline already bounds a
    /// call's CPU, and metering cost a trivial QuickJS call 13 % of its time, a CPython one
    /// about 10 % and JS fib(25) 8 % (`docs/benchmarks.md`, "Fuel metering off by default").
    pub fuel_metering: bool,
    /// Wall time after which a call's thread is lowered to nice 19 and `SCHED_IDLE` (the
    /// lowest OS scheduling priority) until the call ends, so that many long calls
    /// (`while (true) {}` up to their deadline) cannot delay the short calls of other users:
    /// the kernel then runs those first. Default 10 ms: well above an ordinary call (QuickJS
    /// ~0.1 ms, CPython about 1 ms),
    /// well below the default 10 s deadline. `None` never lowers. Lowering is skipped
    /// (with one warning in the log) when the process cannot raise the priority back
    /// afterwards, i.e. lacks `CAP_SYS_NICE` and a sufficient `RLIMIT_NICE`; see "Fairness"
    /// in the crate docs.
    pub lower_priority_after: Option<Duration>,
    /// Write `/tmp/perf-<pid>.map` naming every guest function's machine code, so that
    /// `perf report` attributes samples inside guests (QuickJS's and CPython's own C
    /// functions) instead of showing `[unknown]`. For profiling only (`zeval bench evaluator
    /// --perf-map`): it writes a file, which a confined worker may not. Default off. Not part
    /// of the module cache key: it changes no compiled code.
    pub perf_map: bool,
}

impl SandboxConfig {
    /// The defaults, caching modules in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            pool: PoolConfig::default(),
            max_wasm_stack: 8 * MIB,
            fuel_metering: false,
            lower_priority_after: Some(DEFAULT_LOWER_PRIORITY_AFTER),
            perf_map: false,
        }
    }
}

/// The default of [`SandboxConfig::lower_priority_after`]; also when a call counts as long for
/// a reserve of slots or workers where lowering is off ([`PoolConfig::reserve_instances`]).
pub const DEFAULT_LOWER_PRIORITY_AFTER: Duration = Duration::from_millis(10);

/// Sizing of the pooling instance allocator. Each guest gets its own pool (its own engine),
/// so one guest's slots cannot be taken by another, and memory residency is tuned per guest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolConfig {
    /// Use the pooling allocator with copy-on-write memory images. Default on. Off allocates
    /// every instance on demand (mmap per call), which is slower but has no fixed capacity.
    pub enabled: bool,
    /// Concurrent calls per guest (instances, memories, tables and fiber stacks in its pool).
    /// Default 32: with 2 cores, more calls than that in flight only queue longer. A call
    /// that finds every slot busy waits for one up to its wall-time limit, then fails with
    /// [`crate::SandboxError::Busy`].
    pub max_instances: u32,
    /// Slots beyond [`Self::max_instances`] that a call may take while every one of those
    /// holds a call older than [`crate::SandboxConfig::lower_priority_after`] (10 ms when
    /// that is unset); a call that finds `max_instances` calls in flight runs at most
    /// [`Self::reserve_call_time`]. Default twice the CPUs. Each slot holds its call until
    /// it ends, so a few clients' endless loops, each client within its per-client limit,
    /// held every slot, and every other call waited until its deadline; their loops run at
    /// the lowest priority and cost the others no CPU, the slots were the scarce thing.
    /// Calls in the reserve are cut to a second, so it keeps turning over. Zero: none.
    pub reserve_instances: u32,
    /// The longest a call that finds [`Self::max_instances`] calls in flight may run.
    /// Default 1 s.
    pub reserve_call_time: Duration,
    /// Largest linear memory of one slot; [`crate::Limits::memory_bytes`] above it is refused.
    /// Default 1 GiB (virtual address space only; pages are committed as the guest touches
    /// them).
    pub max_memory_bytes: usize,
    /// Largest wasm table of one slot, in elements. Default 100 000: an interpreter's
    /// indirect-call table holds one entry per address-taken function (QuickJS ~3 000,
    /// CPython ~10 000).
    pub max_table_elements: usize,
    /// Most bytes of a freed linear memory that are copied back from the snapshot (or zeroed)
    /// in place instead of returned to the OS, for guests not listed in
    /// [`Self::keep_resident`]. Default 1 MiB.
    ///
    /// With `PAGEMAP_SCAN` this bounds the copy that every call's reset makes: the pages a
    /// slot keeps private (everything its calls ever wrote, since without uffd
    /// write-protection the scan cannot tell which of them the last call wrote). A memory
    /// with more such pages is returned to the OS whole (the vendored wasmtime,
    /// vendor/wasmtime/ZEVAL-PATCH.md), so that the next call faults in only its own pages.
    /// A trivial call keeps about 50 pages (QuickJS) or 130 (CPython), so 1 MiB holds either
    /// with room to spare, and caps what a slot poisoned by one heavy call costs each later
    /// call at a 1 MiB copy.
    pub keep_resident_default: usize,
    /// Per-guest override of [`Self::keep_resident_default`], by guest name. Default:
    /// compiled modules ([`crate::MODULE_ENGINE_NAME`]) 0. QuickJS had 16 MiB, chosen before
    /// `PAGEMAP_SCAN`, when this was the first bytes of memory rather than a count of pages:
    /// with the scan it let one deep recursion leave every later call of its slot copying
    /// about 5 MiB back (a trivial JS call 41 → 214–230 µs, `zeval bench evaluator
    /// --after-heavy`, docs/benchmarks.md).
    pub keep_resident: BTreeMap<String, usize>,
}

impl PoolConfig {
    /// Instances (memories, tables, stacks) of a pool: the slots and their reserve.
    pub fn total_instances(&self) -> u32 {
        self.max_instances.saturating_add(self.reserve_instances)
    }

    /// The keep-resident size for `guest`.
    pub fn keep_resident_for(&self, guest: &str) -> usize {
        self.keep_resident
            .get(guest)
            .copied()
            .unwrap_or(self.keep_resident_default)
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_instances: 32,
            reserve_instances: 2 * std::thread::available_parallelism()
                .map_or(1, |cpus| cpus.get() as u32),
            reserve_call_time: Duration::from_secs(1),
            max_memory_bytes: 1024 * MIB,
            max_table_elements: 100_000,
            keep_resident_default: MIB,
            keep_resident: BTreeMap::from([
                // Compiled modules touch a few pages of a small memory: returning them costs
                // less than zeroing 1 MiB at every call (measured: 95–101 µs → 63–67 µs for
                // a short C or Rust call).
                (crate::MODULE_ENGINE_NAME.to_owned(), 0),
            ]),
        }
    }
}

/// What a guest sees beyond stdin/stdout/stderr. The default grants nothing; the fields
/// exist only for benchmarks that run an interpreter without its snapshot (CPython then
/// loads its stdlib from disk at every call).
#[derive(Debug, Clone, Default)]
pub struct GuestOptions {
    /// `(host directory, guest path)` preopened read-only. Default none.
    pub preopen_readonly: Option<(PathBuf, String)>,
    /// Environment variables. Default none.
    pub env: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_resident_falls_back_to_the_default() {
        let pool = PoolConfig::default();
        assert_eq!(pool.keep_resident_for("quickjs"), MIB);
        assert_eq!(pool.keep_resident_for("python"), MIB);
    }
}
