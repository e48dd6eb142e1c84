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
    /// The call reached its wall-time limit having used less than a quarter of the time it
    /// ran (on the CPU or asleep; waits for the host's answers left out): other calls held
    /// the CPUs, so the load's doing more than the code's ([`SandboxError::after_running`]).
    #[error("the call reached its time limit of {} ms having used {} ms of it", limit.as_millis(), used.as_millis())]
    Starved { limit: Duration, used: Duration },
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

    /// What a [`SandboxError::Timeout`] of a call becomes when the guest used `used` (CPU
    /// time, and time asleep in `poll_oneoff`) of the `ran` it was not waiting for the
    /// host's answers: the load's [`SandboxError::Starved`] when that is less than a quarter,
    /// else the timeout, the code's own. A long call runs at the lowest priority, so other
    /// calls (one client's endless loops, within its limits) made heavy calls of everyone
    /// else reach their limit, and that was counted against their implementations (ranked
    /// as failing, recorded by their testers). A quarter, not a half: four calls at once on
    /// two CPUs get half each, and the code's own limit must stay its own there. Other
    /// errors are left as they are.
    ///
    /// Only when the guest itself ran for half its limit or more: one that spent its time
    /// waiting for its host calls' answers (slow `W.Call`s) ran for a few milliseconds of
    /// its own, and a fraction of those says nothing of the load (it made such a timeout the
    /// load's on a busy machine).
    pub fn after_running(self, used: Duration, ran: Duration) -> SandboxError {
        match self {
            SandboxError::Timeout { limit } if used * 4 < ran && ran * 2 >= limit => {
                SandboxError::Starved { limit, used }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_the_loads_when_the_call_used_less_than_a_quarter_of_its_time() {
        let limit = Duration::from_millis(1000);
        let timeout = || SandboxError::Timeout { limit };
        let ms = Duration::from_millis;
        assert!(matches!(
            timeout().after_running(ms(240), ms(1000)),
            SandboxError::Starved { used, .. } if used == ms(240)
        ));
        assert!(matches!(
            timeout().after_running(ms(250), ms(1000)),
            SandboxError::Timeout { .. }
        ));
        // A guest that waited for its host calls for most of its time ran too little of its
        // own for the fraction to tell.
        assert!(matches!(
            timeout().after_running(Duration::from_micros(165), ms(3)),
            SandboxError::Timeout { .. }
        ));
        // Other errors are left as they are.
        assert!(matches!(
            SandboxError::OutOfFuel { limit: 5 }.after_running(ms(0), ms(1000)),
            SandboxError::OutOfFuel { .. }
        ));
    }
}
