//! The evaluator of zeval: runs user-written JavaScript and Python functions inside the wasm
//! sandbox, compatible with the Wikifunctions function-evaluator service (spec §3).
//!
//! It owns:
//! - [`wire`]: the request bodies the original accepts (JSON, the executor form, Avro
//!   0.0.1–0.0.4), decoding and encoding;
//! - [`language`]: which guest runs a language string or ZID, per deployment [`Variant`];
//! - [`plan`]: the service's checks before anything runs (language, legacy Z7 validation);
//! - [`Evaluator`]: the guests (QuickJS and CPython, loaded once from the guest directory),
//!   one fresh sandboxed instance per call, and the Z22 with its metadata map (an
//!   [`Answer`], written as JSON without building the map when it goes out over HTTP);
//! - [`artifacts`]: compiled implementations (C, Rust): their artifacts in memory, in a
//!   persistent store, or compiled once by `zeval_compiler`, and run as modules of the
//!   sandbox (in process or in the worker processes, like the interpreters);
//! - [`reentry`]: nested calls from code (`W.Call`), answered by the evaluator's caller;
//! - [`client`]: a blocking HTTP client of a remote evaluator (the orchestrator's remote path).
//!
//! The HTTP clients of [`client`] and [`reentry`] find hosts with `zeval_resolver` (an IP
//! address without a lookup, a name on long-lived lookup threads, no thread per connection).
//!
//! For the interpreted languages, the calling convention and (de)serialization live in the runner scripts inside the guests
//! (`guests/quickjs/runner.js`, `guests/python/runner.py`); the protocol between host and
//! runner is documented at the top of each.

mod answer;
pub mod artifacts;
pub mod client;
pub mod config;
pub mod error;
mod evaluator;
pub mod language;
pub mod plan;
pub mod reentry;
mod system;
pub mod wire;

pub use answer::Answer;
pub use artifacts::{
    ArtifactDescription, ArtifactRecord, ArtifactStore, Artifacts, DirArtifactStore,
};
pub use config::{EvaluatorConfig, Isolation, WorkerSettings, default_instance_name};
pub use error::EvaluatorError;
#[doc(hidden)]
pub use evaluator::parse_runner_output;
pub use evaluator::{Evaluator, Execution, MAX_ANSWER_TOKENS, MAX_QUOTED_OUTPUT_CHARS, RunStats};
pub use language::{Family, Variant};
pub use reentry::{NestedCall, NestedCalls};
pub use wire::{Encoding, ExecutorRequest, Request};
/// Where the guests are by default (`$ZEVAL_GUEST_DIR`, else `/var/cache/zeval/guests`).
pub use zeval_sandbox::default_guest_dir;
/// Answering before a guest's instance is reset, for guests in this process (see
/// `zeval_sandbox::answer_first`).
pub use zeval_sandbox::{ResetLeft, answer_first};
pub use zeval_worker::{
    DEFAULT_LONE_CALL_SPIN, DEFAULT_RECYCLE_AFTER_CALLS, DEFAULT_RESERVE_CALL_TIME,
    DEFAULT_RETIRE_IDLE_AFTER,
};
