//! Readings of this process for the metadata map (spec §1.7): resident memory (Linux
//! `/proc`; zero elsewhere), the calling thread's CPU time, and the host name. How they are
//! written is `zeval_zobject::metadata_format`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a resident-memory reading is reused: reading `/proc/self/statm` costs a few
/// microseconds, a noticeable share of a trivial call, while RSS changes slowly.
const RESIDENT_READING_TTL: Duration = Duration::from_millis(20);

/// Resident set size of this process in bytes (a reading at most
/// [`RESIDENT_READING_TTL`] old).
pub(crate) fn resident_bytes() -> u64 {
    static LAST: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((at, bytes)) = *last
        && at.elapsed() < RESIDENT_READING_TTL
    {
        return bytes;
    }
    let bytes = read_resident_bytes();
    *last = Some((Instant::now(), bytes));
    bytes
}

fn read_resident_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`).
pub(crate) fn thread_cpu_time() -> Duration {
    cpu_time::ThreadTime::try_now()
        .map(|time| time.as_duration())
        .unwrap_or_default()
}

/// The host name, as `os.hostname()` gives it.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// `"<µs / 1000> ms"`, as the original prints `process.cpuUsage()` differences.
pub(crate) fn cpu_millis(time: Duration) -> String {
    let micros = time.as_micros();
    format!("{} ms", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(cpu_millis(Duration::from_micros(3521)), "3.521 ms");
    }

    #[test]
    fn readings_are_live() {
        assert!(resident_bytes() > 0);
        let before = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(thread_cpu_time() > before);
    }
}
