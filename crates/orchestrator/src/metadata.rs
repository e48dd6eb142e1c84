//! Result metadata: setting keys on a `Z22K2`, and the six `orchestration*` keys with real
//! measurements of the request (spec §1.7).

use std::time::{Duration, SystemTime};

use zeval_zobject::Value;
use zeval_zobject::build::{empty_metadata, is_map, set_metadata, type_zid, z6};
use zeval_zobject::metadata_format::{iso8601, mebibytes};

/// Sets `key` on metadata that may be absent, void, a bare Z5 or a map (the original's
/// `makeMappedResultEnvelope` rules), returning the map.
pub(crate) fn set(meta: Option<Value>, key: &str, value: Value) -> Value {
    let mut map = match meta {
        Some(m) if is_map(&m) => m,
        Some(m) if type_zid(&m) == Some("Z5") => {
            let mut map = empty_metadata();
            set_metadata(&mut map, "errors", m);
            map
        }
        _ => empty_metadata(),
    };
    set_metadata(&mut map, key, value);
    map
}

/// What the process measured when an orchestration started.
pub(crate) struct Start {
    wall: SystemTime,
    cpu: Duration,
}

impl Start {
    pub(crate) fn now() -> Start {
        Start {
            wall: SystemTime::now(),
            cpu: cpu_time(),
        }
    }

    /// The six `orchestration*` entries, in the original's order. Memory is what the
    /// request's values held at most (`peak_bytes`), not the server's RSS, and the host name
    /// is this instance's configured name.
    pub(crate) fn entries(&self, peak_bytes: u64, instance: &str) -> Vec<(&'static str, Value)> {
        self.texts(peak_bytes, instance)
            .into_iter()
            .map(|(key, text)| (key, z6(text)))
            .collect()
    }

    /// [`Self::entries`] as the strings they hold.
    pub(crate) fn texts(&self, peak_bytes: u64, instance: &str) -> Vec<(&'static str, String)> {
        let end = SystemTime::now();
        let cpu = cpu_time().saturating_sub(self.cpu);
        let duration = end.duration_since(self.wall).unwrap_or_default();
        vec![
            ("orchestrationMemoryUsage", mebibytes(peak_bytes)),
            (
                "orchestrationCpuUsage",
                format!("{} ms", cpu.as_micros() as f64 / 1000.0),
            ),
            ("orchestrationStartTime", iso8601(self.wall)),
            ("orchestrationEndTime", iso8601(end)),
            (
                "orchestrationDuration",
                format!("{} ms", duration.as_millis()),
            ),
            ("orchestrationHostname", instance.to_owned()),
        ]
    }
}

/// CPU time of the calling thread, which is the one running the request (the original
/// reports its whole process, which on a server shared by many requests says little about
/// this one). One `clock_gettime`: reading `/proc/self/stat` instead cost a trivial call a
/// quarter of its time.
fn cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_are_real() {
        let entries = Start::now().entries(3 * 1024 * 1024, "zeval-test");
        let keys: Vec<_> = entries.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys.len(), 6);
        assert_eq!(entries[5].1, z6("zeval-test"));
        assert_eq!(entries[0].1, z6(mebibytes(3 * 1024 * 1024)));
    }
}
