//! Readings of this process for the metadata map (spec §1.7): resident memory (Linux
//! `/proc`; zero elsewhere), the calling thread's CPU time, wall-clock timestamps, and the
//! host name.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// `Date.prototype.toISOString()` of a time: `2021-06-01T12:34:56.789Z`.
pub(crate) fn iso8601(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `"<x.yy> MiB"`.
pub(crate) fn mebibytes(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
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
    fn iso8601_matches_javascript() {
        let time = UNIX_EPOCH + Duration::from_millis(1_622_550_896_789);
        assert_eq!(iso8601(time), "2021-06-01T12:34:56.789Z");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn formats() {
        assert_eq!(mebibytes(3 * 1024 * 1024 / 2), "1.50 MiB");
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
