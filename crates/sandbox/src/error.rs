//! The sandbox's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Why a guest call (or loading a guest) failed. The limit variants carry the limit that was
/// reached so callers can name it in their messages.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The wall-time limit ([`crate::Limits::wall_time`]) was reached.
    #[error("the call exceeded its time limit of {} ms", limit.as_millis())]
    Timeout { limit: Duration },
    /// The fuel limit ([`crate::Limits::fuel`]) was used up.
    #[error("the call used up its fuel limit of {limit} units")]
    OutOfFuel { limit: u64 },
    /// Linear memory would have grown past [`crate::Limits::memory_bytes`].
    #[error("the call exceeded its memory limit of {limit} bytes")]
    MemoryLimit { limit: usize },
    /// The wasm stack ([`crate::SandboxConfig::max_wasm_stack`]) was exhausted.
    #[error("the call exceeded its stack limit of {limit} bytes")]
    StackOverflow { limit: usize },
    /// The guest wrote more than [`crate::Limits::max_output_bytes`] to stdout or stderr.
    #[error("the call exceeded its output limit of {limit} bytes")]
    OutputLimit { limit: usize },
    /// The input was larger than [`crate::Limits::max_input_bytes`]; the guest did not run.
    #[error("the input exceeds the limit of {limit} bytes")]
    InputLimit { limit: usize },
    /// The call ran in a reserve slot (every regular slot held a long call, see
    /// [`crate::PoolConfig::reserve_call_time`]) and reached the reserve's time limit: a
    /// limit of the server's load at the time, not of the call's own wall time.
    #[error("the call ran in the reserve while every slot held a long call, and exceeded its time limit there of {} ms", limit.as_millis())]
    ReserveTimeout { limit: Duration },
    /// Every instance slot of the guest stayed busy for the whole wall-time limit; or a
    /// call that waited a tenth of its wall time or more for a slot then ran out of time
    /// (the load's doing more than the code's; [`SandboxError::after_waiting`]).
    #[error("all {capacity} instance slots of guest {guest} stayed busy for {} ms", waited.as_millis())]
    Busy {
        guest: String,
        capacity: usize,
        waited: Duration,
    },
    /// The guest trapped or exited with a non-zero status; the message ends with the tail of
    /// its stderr.
    #[error("the guest failed: {0}")]
    Trap(String),
    /// The limits asked for something this sandbox cannot give (e.g. more memory than a pool
    /// slot holds, or fuel on an engine without fuel metering).
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    /// A guest module could not be compiled, deserialised or linked.
    #[error("cannot load guest {guest}: {message}")]
    Load { guest: String, message: String },
    /// Reading or writing the module cache (or a guest file) failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Building the engine, the ticker thread or a snapshot failed.
    #[error("sandbox setup failed: {0}")]
    Setup(String),
}

impl SandboxError {
    /// What a [`SandboxError::Timeout`] of a call becomes when the call first waited
    /// `waited` of its `wall_time` for a slot or a worker: the load's [`SandboxError::Busy`]
    /// when the wait took a tenth of that time or more (the code did not get its time), else
    /// the timeout, the code's own. Other errors are left as they are. The one rule of the
    /// in-process pool and the worker pool: callers count a plain timeout against the code.
    pub fn after_waiting(
        self,
        waited: std::time::Duration,
        wall_time: std::time::Duration,
        guest: impl FnOnce() -> String,
        capacity: usize,
    ) -> SandboxError {
        match self {
            SandboxError::Timeout { .. } if waited * 10 >= wall_time => SandboxError::Busy {
                guest: guest(),
                capacity,
                waited,
            },
            other => other,
        }
    }
}
