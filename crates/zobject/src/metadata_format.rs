//! How the original writes metadata values (spec §1.7): times as JavaScript's
//! `toISOString()` and memory as `"<x.yy> MiB"`, and the instance name the host-name keys
//! report. Pure formatting; the readings are the services' own.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The name the `orchestrationHostname` and `evaluationHostname` keys report when none is
/// configured: `zeval-` and 8 hex digits, drawn once per process (so the calls of one process
/// can be told apart from another's without naming the machine). The digits come from the
/// standard library's per-process random hash seed.
pub fn default_instance_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        format!("zeval-{:08x}", hasher.finish() as u32)
    })
}

/// `Date.prototype.toISOString()` of a time: `2021-06-01T12:34:56.789Z`.
///
/// Every answer carries two of these; the digits are written by hand because the formatting
/// machinery cost a trivial request several per cent of its time.
pub fn iso8601(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        return format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60,
            since_epoch.subsec_millis()
        );
    };
    let mut out = String::with_capacity(24);
    push_digits(&mut out, year, 4);
    let parts = [
        ('-', month, 2),
        ('-', day, 2),
        ('T', (rest / 3600) as u32, 2),
        (':', (rest % 3600 / 60) as u32, 2),
        (':', (rest % 60) as u32, 2),
        ('.', since_epoch.subsec_millis(), 3),
    ];
    for (separator, value, width) in parts {
        out.push(separator);
        push_digits(&mut out, value, width);
    }
    out.push('Z');
    out
}

/// `value`'s last `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32) {
    for position in (0..width).rev() {
        let digit = value / 10u32.pow(position) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
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

/// `"<x.yy> MiB"`: what `format!("{:.2} MiB", bytes as f64 / 1048576.0)` writes (the
/// exact quotient rounded half to even), in integers. Every answer carries two of these,
/// and the float formatter's exact mode took its slow bignum path for most of them.
pub fn mebibytes(bytes: u64) -> String {
    const MIB: u128 = 1024 * 1024;
    if bytes > 1 << f64::MANTISSA_DIGITS {
        // The float would round the count first; not a size any guest reaches.
        return format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0));
    }
    let scaled = u128::from(bytes) * 100;
    let (mut hundredths, remainder) = (scaled / MIB, scaled % MIB);
    if 2 * remainder > MIB || (2 * remainder == MIB && hundredths % 2 == 1) {
        hundredths += 1;
    }
    let mut out = (hundredths / 100).to_string();
    out.push('.');
    push_digits(&mut out, (hundredths % 100) as u32, 2);
    out.push_str(" MiB");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn iso8601_matches_javascript() {
        let time = UNIX_EPOCH + Duration::from_millis(1_622_550_896_789);
        assert_eq!(iso8601(time), "2021-06-01T12:34:56.789Z");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_681_734_896_789);
        assert_eq!(iso8601(t), "2023-04-17T12:34:56.789Z");
        let far = UNIX_EPOCH + Duration::from_secs(253_402_300_800); // 10000-01-01
        assert_eq!(iso8601(far), "10000-01-01T00:00:00.000Z");
    }

    #[test]
    fn mebibytes_has_two_decimals() {
        assert_eq!(mebibytes(3 * 1024 * 1024 / 2), "1.50 MiB");
    }

    #[test]
    fn mebibytes_writes_what_the_float_formatter_writes() {
        let float = |bytes: u64| format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0));
        // The exact ties (x.xx5 MiB) are the odd multiples of 131,072 bytes (1/8 MiB);
        // every byte count next to them, and a spread of sizes.
        let mut counts: Vec<u64> = (0..20_000u64)
            .flat_map(|k| {
                let tie = k * 131_072;
                [tie.saturating_sub(1), tie, tie + 1, k * 10_485]
            })
            .collect();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..50_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            counts.push(state % (64 << 30));
        }
        counts.extend([0, 1, 5_242, 5_243, 1 << 53, (1 << 53) + 1, u64::MAX]);
        for bytes in counts {
            assert_eq!(mebibytes(bytes), float(bytes), "{bytes} bytes");
        }
    }
}
