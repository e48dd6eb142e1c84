//! Per-call resource limits.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The limits of one guest call. Every field can be overridden in configuration (serde, with
/// the defaults below for missing fields); `wall_time` is given in milliseconds as
/// `wall_time_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock time for the whole call (waiting for a pool slot, instantiating, running),
    /// measured with the real clock from the start of [`crate::Guest::run`]. Enforced by
    /// epoch interruption (a ticker thread advances the epoch every [`crate::EPOCH_TICK`],
    /// and on each tick the call checks its deadline against the clock) and, for a guest that
    /// is blocked in a host call such as `poll_oneoff` (sleep), by a host timer; for compiled
    /// modules in a worker, which carry no epoch checks, by the parent killing the worker (see
    /// [`crate::ModuleHostConfig::epoch_interruption`]). Callers with
    /// a request deadline pass the smaller of this limit and the time left.
    /// Default 10 s: the original Wikifunctions evaluator gives a call about that long, and
    /// the timeout is reported to users as Z558 "Function call timed out".
    #[serde(
        rename = "wall_time_ms",
        serialize_with = "serialize_millis",
        deserialize_with = "deserialize_millis"
    )]
    pub wall_time: Duration,
    /// Wasm fuel (about one unit per wasm instruction). Default `None`: unlimited, because
    /// the wall time already bounds CPU, and fuel is deterministic but measured per engine.
    /// Only usable when [`crate::SandboxConfig::fuel_metering`] is on (it is by default; the
    /// consumed fuel is then reported in [`crate::RunOutput::fuel_consumed`]).
    pub fuel: Option<u64>,
    /// Linear memory of the guest, including the snapshot's own heap (QuickJS ~1.3 MiB).
    /// Default 128 MiB: what the issue asks for; enough for ordinary functions, small enough
    /// that 16 concurrent worst-case calls fit in RAM. Must not exceed
    /// [`crate::PoolConfig::max_memory_bytes`].
    pub memory_bytes: usize,
    /// Bytes given to the guest on stdin. Default 8 MiB: a request carrying a few large
    /// strings fits, while a request that would mostly be copied into guest memory does not.
    pub max_input_bytes: usize,
    /// Bytes the guest may write to stdout, and separately to stderr. Default 8 MiB: a large
    /// result fits; 100 MB of output is stopped as soon as the cap is crossed.
    pub max_output_bytes: usize,
}

/// 1 MiB, for readability of the defaults.
const MIB: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_time: Duration::from_secs(10),
            fuel: None,
            memory_bytes: 128 * MIB,
            max_input_bytes: 8 * MIB,
            max_output_bytes: 8 * MIB,
        }
    }
}

fn serialize_millis<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
}

fn deserialize_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_the_defaults() {
        let limits: Limits = serde_json::from_str(r#"{"wall_time_ms": 250}"#).unwrap();
        assert_eq!(limits.wall_time, Duration::from_millis(250));
        assert_eq!(limits.memory_bytes, 128 * MIB);
        assert_eq!(limits.fuel, None);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<Limits>(r#"{"wall_time": 250}"#).is_err());
    }

    #[test]
    fn round_trips() {
        let limits = Limits {
            fuel: Some(5),
            ..Limits::default()
        };
        let text = serde_json::to_string(&limits).unwrap();
        assert_eq!(serde_json::from_str::<Limits>(&text).unwrap(), limits);
    }
}
