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
//!
//! # What a guest sees
//! - arguments: argv[0] (the guest name) only; environment: empty;
//! - files: none (no preopened directory, so every path fails with `ENOENT`/`EBADF`);
//! - sockets: none (WASI preview 1 cannot create them, and name lookup is off);
//! - stdin: the call's input; stdout/stderr: memory pipes capped at
//!   [`Limits::max_output_bytes`] each; crossing a cap traps at once ([`SandboxError::OutputLimit`]);
//! - clocks: wasmtime-wasi's defaults, i.e. the host's real wall clock (so `Date.now()` and
//!   `datetime.now()` are correct) and a monotonic clock starting anywhere; resolution as the
//!   host's. Timing side channels are not a concern here: guests share no secrets;
//! - randomness: `random_get` is the host's cryptographically secure generator, fresh per
//!   call. Guests must not bake seeds into their snapshot (the QuickJS guest reseeds
//!   `Math.random` from `random_get` at every call).
//!
//! # Limits ([`Limits`])
//! - wall time: epoch interruption; a ticker thread advances every engine's epoch every
//!   [`EPOCH_TICK`] (1 ms) and each call's deadline is its wall time in ticks + 1. A guest
//!   waiting in a host call is cut by a host timer with the same limit;
//! - fuel: optional, counted when [`SandboxConfig::fuel_metering`] is on (default);
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
//! every slot busy waits for one up to its wall-time limit, then fails with
//! [`SandboxError::Busy`]; it never falls back to unpooled allocation.
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
//! Fuel metering costs 0–7 %, within noise on compute. Choice: the wall-time limit is always
//! enforced by epoch interruption (it also covers time spent outside wasm); fuel metering is
//! on by default ([`SandboxConfig::fuel_metering`]) because the evaluator reports the fuel each
//! call burnt, and [`Limits::fuel`] can add a deterministic CPU cap (off by default).
//!
//! Other per-call figures from the same run: an empty WAT module 3 µs (the host's own
//! overhead: store, WASI context, fiber, pool slot); QuickJS without the snapshot ~1.2 ms
//! (it compiles the runner every call); keep-resident 1 MiB instead of 16 MiB 166 µs
//! instead of 65 µs.

mod block_on;
mod cache;
mod config;
mod engine;
mod error;
mod guest;
mod limiter;
mod limits;
mod output;
mod sandbox;
pub mod wizer;

use std::path::PathBuf;

pub use config::{GuestOptions, PoolConfig, SandboxConfig};
pub use engine::EPOCH_TICK;
pub use error::SandboxError;
pub use guest::{Guest, RunOutput};
pub use limits::Limits;
pub use sandbox::Sandbox;

/// The wasmtime release this crate is built against (pinned with `=` in the workspace
/// `Cargo.toml`; a unit test checks the two agree).
pub const WASMTIME_VERSION: &str = "48.0.8";

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
        let pin = format!("wasmtime = \"={WASMTIME_VERSION}\"");
        assert!(
            manifest.lines().any(|line| line.trim() == pin),
            "no line {pin}"
        );
        assert_eq!(runtime_version(), format!("wasmtime {WASMTIME_VERSION}"));
    }
}
