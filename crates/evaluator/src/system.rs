//! Readings for the metadata map (spec §1.7): the calling thread's CPU time. How they are
//! written is `zeval_zobject::metadata_format`. (Memory is what the call's guest used, and
//! the host name is the configured instance name: neither reads the machine.)

use std::time::Duration;

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`).
pub(crate) fn thread_cpu_time() -> Duration {
    cpu_time::ThreadTime::try_now()
        .map(|time| time.as_duration())
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
        let before = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(thread_cpu_time() > before);
    }
}
