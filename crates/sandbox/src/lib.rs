//! The wasm sandbox of zeval: the only crate that uses wasmtime. It owns the engine
//! configuration, the module cache, per-call limits, and running a guest interpreter
//! (a WASI preview 1 command) once per call in a fresh instance.
//!
//! # Calls
//! [`Sandbox::load_guest`] compiles a guest once (cached on disk as `.cwasm`, keyed by the
//! module's sha256, the wasmtime version and a digest of the engine configuration) and links
//! it once (`InstancePre`). [`Guest::run`] then creates a fresh `Store` and instance from the
//! guest's pool (copy-on-write memory image of the snapshot), feeds the input on stdin, runs
//! `_start`, and collects stdout/stderr. Nothing survives from one call to the next.
//! [`Sandbox::seal_guest_file`] and [`Sandbox::load_guest_sealed`] hand a guest's verified
//! compilation to other processes (the evaluator's workers) in a sealed memfd, which they map.
//!
//! # What a guest sees
//! - arguments: `argv[0]` (the guest name) only; environment: empty;
//! - files: none (no preopened directory, so every path fails with `ENOENT`/`EBADF`);
//! - sockets: none (WASI preview 1 cannot create them, and name lookup is off);
//! - stdin: the call's input; stdout/stderr: memory pipes capped at
//!   [`Limits::max_output_bytes`] each; crossing a cap traps at once ([`SandboxError::OutputLimit`]).
//!   Read and written by the host directly while the guest leaves the three descriptors as
//!   they are, with wasmtime-wasi's answers (`stdio`);
//! - clocks: wasmtime-wasi's defaults, i.e. the host's real wall clock (so `Date.now()` and
//!   `datetime.now()` are correct) and a monotonic clock starting anywhere; resolution as the
//!   host's. This is a choice, not an oversight: guests share no secrets with each other
//!   (nothing survives a call), but a guest run in the server's own process (workers off,
//!   `zeval call`) shares its process with the evaluator's secret, other requests' callback
//!   tokens and other clients' data, and a fine clock helps cache-timing attacks on those.
//!   The defence there is the sandbox's memory isolation, and workers (the default) keep
//!   such secrets out of the guest's process;
//! - waiting: `poll_oneoff` on at most 1,024 subscriptions (`EINVAL` past that; see
//!   `wasi_bounds`), cut at the call's deadline like any host call;
//! - randomness: `random_get` is the host's cryptographically secure generator, fresh per
//!   call. Guests must not bake seeds into their snapshot (the QuickJS guest reseeds
//!   `Math.random` from `random_get` at every call).
//! - its host: the `zeval` import module ([`host_call`]), through which a guest hands the
//!   caller of [`Guest::run_with`] a request and waits for the answer (the evaluator's
//!   reentrant calls); under [`Guest::run`] it answers "no host".
//!
//! # Limits ([`Limits`])
//! - wall time: one real-clock deadline per call, slot wait included. Epoch interruption is
//!   the cheap mechanism: a ticker thread advances every engine's epoch every [`EPOCH_TICK`]
//!   (1 ms) while any call runs (it sleeps while none does), and at each tick the call's
//!   epoch callback compares `Instant::now()` with the deadline and traps once it has
//!   passed. (Counting ticks alone would stretch the limit when the ticker is starved of
//!   CPU.) A guest waiting in a host call is cut by a host timer at the same deadline. The
//!   one exception: a [`ModuleHost`] built with [`ModuleHostConfig::epoch_interruption`] off
//!   compiles no epoch checks (they cost compiled code about a third of its time), so
//!   nothing in the process can stop its calls; a confined worker does this, and its parent
//!   kills it at the deadline;
//! - fuel: optional, counted when [`SandboxConfig::fuel_metering`] is on (default off);
//! - linear memory: a `ResourceLimiter` that traps when memory would grow past the limit
//!   (so allocation failure inside an interpreter is [`SandboxError::MemoryLimit`], not a
//!   guest-level error), and records the peak;
//! - wasm stack: [`SandboxConfig::max_wasm_stack`] (default 8 MiB; CPython 3.13 needs about
//!   that). Calls run on a fiber stack of that size + 1 MiB, independent of the caller's
//!   thread;
//! - input/output bytes: checked before the call / trapped on the write that crosses the cap.
//!
//! # Pool
//! Each guest has its own engine and pooling allocator ([`PoolConfig`]), with
//! `max_instances` slots (default 32 per guest on this 2-core machine). A call that finds
//! every slot busy waits for one until its deadline (the wait counts against its wall time),
//! then fails with [`SandboxError::Busy`]; it never falls back to unpooled allocation. While
//! every slot holds a call older than `lower_priority_after`, up to
//! [`PoolConfig::reserve_instances`] more slots are open, and a call in one of them runs at
//! most [`PoolConfig::reserve_call_time`] (1 s): a few clients' endless loops cannot hold
//! every slot from everyone else's short calls.
//!
//! # Fairness
//! A call that has run longer than [`SandboxConfig::lower_priority_after`] (default 10 ms of
//! wall time) has its thread lowered to nice [`LOWERED_NICE`] (19) and the `SCHED_IDLE`
//! policy by the epoch callback, and restored when the call ends (when its store is dropped,
//! on the same thread). `SCHED_IDLE` matters: under the kernel's EEVDF scheduler a nice-19
//! thread still finishes its slice before a waking normal thread runs, which costs other
//! callers milliseconds of tail latency; a `SCHED_IDLE` thread gives way at once. Linux
//! keeps nice values and policies per thread, and the call runs on its caller's thread, so only that call
//! is affected: 32 `while (true) {}` calls then share what the short calls of other users
//! leave, instead of delaying them for their whole deadline. Ordinary calls finish long
//! before the threshold and never change priority. A call without epoch checks (above) has
//! no callback: the ticker thread sends its thread a signal (`SIGURG`) once it is due, and
//! the thread lowers itself in the handler. (In a confined worker only the guest thread
//! keeps `CAP_SYS_NICE`, and the kernel lets a thread renice another only if it holds every
//! capability the other holds, so the ticker cannot do it directly.)
//!
//! Raising the priority back needs `CAP_SYS_NICE` (or `RLIMIT_NICE` of at least 20 - the
//! original nice value). A process without it cannot restore, so it does not lower either:
//! calling threads are pooled, and a thread left at nice 19 would slow every later call
//! landing on it. This is probed once per process on a throwaway thread and logged once
//! as a warning; such a deployment gets deadlines but not this fairness (grant
//! `CAP_SYS_NICE`, e.g. `AmbientCapabilities=CAP_SYS_NICE` in a systemd unit, or
//! `LimitNICE=40`). A lowered guest past its deadline can overshoot it by how long normal
//! work keeps every core busy: the epoch callback that stops it runs only when it gets a
//! core.
//!
//! # Module cache
//! Precompiled modules are native code, so a cached `.cwasm` is loaded only when it, its
//! directory and its manifest entry are owned by the effective uid and not writable by group
//! or others, and its SHA-256 matches the manifest entry written when it was compiled;
//! anything else is logged, removed and compiled again (see `cache.rs`).
//!
//! # Epoch versus fuel
//! Measured with the real QuickJS guest (snapshot, pooled, keep-resident 16 MiB), release
//! build, one thread, p50 per call, on the 2-core machine while other builds ran (load ~5):
//!
//! | call | epoch only | epoch + fuel metering | fuel burnt |
//! |---|---|---|---|
//! | trivial (`return 'a'`) | 61 µs | 65 µs | 169 k |
//! | `fib(25)` | 15.4 ms | 15.4 ms | 221 M |
//!
//! Fuel metering cost 0–7 % there, within that run's noise. On a quieter machine
//! (2026-12-04, `zeval bench evaluator --hop`, three alternated pairs) it cost a trivial
//! QuickJS call 13 % (48–50 µs without, 55–58 µs with), a CPython call about 10 % and JS
//! fib(25) 8 %. Choice: the wall-time limit is always enforced by epoch interruption (it also
//! covers time spent outside wasm); fuel metering is off by default
//! ([`SandboxConfig::fuel_metering`]). Turned on, the evaluator reports the fuel each call
//! burnt (`executionFuelConsumed`), and [`Limits::fuel`] can add a deterministic CPU cap.
//!
//! Other per-call figures from the same run: an empty WAT module 3 µs (the host's own
//! overhead: store, WASI context, fiber, pool slot); QuickJS without the snapshot ~1.2 ms
//! (it compiles the runner every call); keep-resident 1 MiB instead of 16 MiB 166 µs
//! instead of 65 µs. (That was before `PAGEMAP_SCAN`, when keep-resident was the first bytes
//! of memory; it is now a count of pages, and 1 MiB for QuickJS too: see
//! [`PoolConfig::keep_resident_default`].)

mod answer_first;
mod block_on;
mod cache;
pub mod code_cache;
mod config;
mod engine;
mod error;
mod guest;
pub mod host_call;
mod images;
mod limiter;
mod limits;
mod modules;
mod output;
mod priority;
mod sandbox;
mod sealed;
mod stdio;
mod wasi_bounds;
pub mod wizer;

use std::path::PathBuf;

pub use answer_first::{ResetLeft, answer_first};
pub use code_cache::{CodeCache, CodeLookup};
pub use config::{DEFAULT_LOWER_PRIORITY_AFTER, GuestOptions, PoolConfig, SandboxConfig};
pub use engine::EPOCH_TICK;
pub use error::SandboxError;
pub use guest::{Guest, PendingReset, RunOutput, ThreadClockReading};
pub use host_call::HostCalls;
pub use limits::Limits;
pub use modules::{MAX_COMPILATIONS_AT_ONCE, MODULE_ENGINE_NAME, ModuleHost, ModuleHostConfig};
pub use priority::LOWERED_NICE;
pub use sandbox::{Sandbox, module_file_digest};

/// The wasmtime release this crate is built against (pinned with `=` in the workspace
/// `Cargo.toml`; a unit test checks the two agree).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Whether long calls will be lowered in priority (see "Fairness"): probes it now, once per
/// process, on a throwaway thread. A process that is about to forbid itself new threads
/// (a confined worker) calls this first, so the probe never runs under the confinement.
pub fn priority_lowering_available() -> bool {
    priority::can_restore()
}

/// Turns off the lowering of long calls' priority for the rest of the process: for a process
/// that has since lost the right to raise a priority back (see "Fairness").
pub fn turn_priority_lowering_off() {
    priority::turn_lowering_off();
}

/// "wasmtime 48.0.8", for reports and metadata.
pub fn runtime_version() -> &'static str {
    concat!("wasmtime ", "48.0.8")
}

/// Where `guests/build.sh` puts the guests: `$ZEVAL_GUEST_DIR`, else `/var/cache/zeval/guests`.
pub fn default_guest_dir() -> PathBuf {
    std::env::var_os("ZEVAL_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/zeval/guests"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_the_workspace_pin() {
        let manifest =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
                .unwrap();
        // The pin is either `wasmtime = "=X"` or a table that starts
        // `wasmtime = { version = "=X", ...`.
        let short = format!("wasmtime = \"={WASMTIME_VERSION}\"");
        let table = format!("wasmtime = {{ version = \"={WASMTIME_VERSION}\",");
        assert!(
            manifest
                .lines()
                .map(str::trim)
                .any(|line| line == short || line.starts_with(&table)),
            "no line {short} or {table} in the workspace manifest"
        );
        assert_eq!(runtime_version(), format!("wasmtime {WASMTIME_VERSION}"));
    }
}
