//! Real-call figures shared by every orchestrator through Redis (`ranking.redis_url`), so
//! that an implementation that is fast on the calls one node sees is promoted on all.
//!
//! One hash per implementation revision, `zeval:ranking:<zid>:<revision>`, with the fields
//! `calls`, `failures` and `b<bucket>` (the latency sketch's counts; sketches of the same
//! buckets add up exactly). A node sends what it recorded since its last flush as increments
//! and reads the totals back in the same script, so no node overwrites another's figures.
//! A hash lives [`KEEP`] after its last increment.
//!
//! What Redis answers is checked: a field that is not one of those, a bucket past the last or
//! a count that is not a non-negative integer is skipped. The scripts answer those fields
//! only ([`MAX_FIELDS`]), each value cut to [`VALUE_BYTES`]: a hash anyone who can write to
//! Redis filled with a million fields, or a 512 MB value, was sent back whole by `HGETALL`
//! and read by every flush and ranking read of that implementation. Redis failing never fails a call: the node keeps its increments and sends them
//! with the next flush (a script whose answer was lost may so count them twice).

use std::time::Duration;

use super::sketch::{BUCKETS, Sketch};
use crate::redis_pool::{RedisPool, RedisPoolError};

/// How long a revision's figures are kept after its last real call.
pub const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// The most fields read from one hash (every bucket, calls and failures).
pub const MAX_FIELDS: usize = BUCKETS + 2;

/// The most bytes of one value read: a count has at most 20 digits; one more makes a
/// longer value one that is skipped as not a count.
pub const VALUE_BYTES: usize = 21;

/// Increments. KEYS[1] the hash; ARGV[1] its lifetime in ms; then pairs of field and
/// increment. The script ends with [`TOTALS`].
const ADD: &str = r"
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
";

/// The stored figures as a first value when Redis has none (after Redis lost its data, or
/// the first node to use Redis). Arguments as for [`ADD`]; the script ends with [`TOTALS`].
const SEED: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 and #ARGV > 1 then
  for i = 2, #ARGV, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
";

/// Answers the totals: field and value pairs of the figures' own fields that are set, each
/// value cut to `{value_bytes}` bytes (filled in by [`script_text`]).
const TOTALS: &str = r"
local names = {'calls', 'failures'}
for b = 0, {last_bucket} do names[#names + 1] = 'b' .. b end
local values = redis.call('HMGET', KEYS[1], unpack(names))
local totals = {}
for i, name in ipairs(names) do
  if values[i] then
    totals[#totals + 1] = name
    totals[#totals + 1] = string.sub(values[i], 1, {value_bytes})
  end
end
return totals
";

/// `script` followed by [`TOTALS`] for this build's buckets.
fn script_text(script: &str) -> String {
    let totals = TOTALS
        .replace("{last_bucket}", &(BUCKETS - 1).to_string())
        .replace("{value_bytes}", &VALUE_BYTES.to_string());
    format!("{script}{totals}")
}

/// Real-call figures of one implementation revision.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Summary {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) sketch: Sketch,
}

impl Summary {
    pub(crate) fn is_empty(&self) -> bool {
        self.calls == 0 && self.failures == 0 && self.sketch.count() == 0
    }

    pub(crate) fn merge(&mut self, other: &Summary) {
        self.calls = self.calls.saturating_add(other.calls);
        self.failures = self.failures.saturating_add(other.failures);
        self.sketch.merge(&other.sketch);
    }

    /// As field and value pairs.
    fn fields(&self) -> Vec<(String, u64)> {
        let mut fields = vec![
            ("calls".to_owned(), self.calls),
            ("failures".to_owned(), self.failures),
        ];
        fields.extend(self.sketch.buckets().map(|(b, c)| (format!("b{b}"), c)));
        fields
    }

    /// From a hash's fields, skipping what is not a figure.
    fn from_fields(fields: &[(String, String)]) -> Summary {
        let mut summary = Summary::default();
        for (name, value) in fields.iter().take(MAX_FIELDS) {
            let Ok(count) = value.parse::<u64>() else {
                continue;
            };
            match name.as_str() {
                "calls" => summary.calls = count,
                "failures" => summary.failures = count,
                bucket => {
                    if let Some(bucket) = bucket.strip_prefix('b').and_then(|b| b.parse().ok()) {
                        let _ = summary.sketch.add_to_bucket(bucket, count);
                    }
                }
            }
        }
        summary
    }
}

/// The figures in Redis; see the module documentation.
pub struct SharedFigures {
    redis: RedisPool,
    add: String,
    seed: String,
}

impl SharedFigures {
    /// Figures in the Redis at `url`; each command waits at most `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RedisPoolError> {
        Ok(SharedFigures {
            redis: RedisPool::new(url, timeout, "ranking.redis_url", "shared ranking figures")?,
            add: script_text(ADD),
            seed: script_text(SEED),
        })
    }

    /// Failures so far (for `/metrics`).
    pub fn errors(&self) -> u64 {
        self.redis.errors()
    }

    fn key(zid: &str, revision: u64) -> String {
        format!("zeval:ranking:{zid}:{revision}")
    }

    fn script(
        &self,
        script: &str,
        zid: &str,
        revision: u64,
        pairs: &[(String, u64)],
    ) -> Result<Summary, RedisPoolError> {
        let fields: Vec<(String, String)> = self.redis.run(|conn| {
            let mut command = redis::cmd("EVAL");
            command
                .arg(script)
                .arg(1)
                .arg(Self::key(zid, revision))
                .arg(u64::try_from(KEEP.as_millis()).unwrap_or(u64::MAX));
            for (field, value) in pairs {
                command.arg(field).arg(value);
            }
            command.query(conn)
        })?;
        Ok(Summary::from_fields(&fields))
    }

    /// Adds `increments` to the shared figures; the totals after.
    pub(crate) fn add(
        &self,
        zid: &str,
        revision: u64,
        increments: &Summary,
    ) -> Result<Summary, RedisPoolError> {
        self.script(&self.add, zid, revision, &increments.fields())
    }

    /// The shared figures, first set to `stored` when Redis has none (nothing is written
    /// when `stored` is empty).
    pub(crate) fn read_or_seed(
        &self,
        zid: &str,
        revision: u64,
        stored: &Summary,
    ) -> Result<Summary, RedisPoolError> {
        let pairs = if stored.is_empty() {
            Vec::new()
        } else {
            stored.fields()
        };
        self.script(&self.seed, zid, revision, &pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_foreign_fields_are_skipped() {
        let mut summary = Summary {
            calls: 12,
            failures: 2,
            sketch: Sketch::default(),
        };
        for micros in [5, 500, 500, 50_000] {
            summary.sketch.add(Duration::from_micros(micros));
        }
        let mut fields: Vec<(String, String)> = summary
            .fields()
            .into_iter()
            .map(|(f, v)| (f, v.to_string()))
            .collect();
        assert_eq!(Summary::from_fields(&fields), summary);
        fields.extend(
            [
                ("b99999", "1"),
                ("b3", "-4"),
                ("b3", "many"),
                ("owner", "7"),
                ("bx", "1"),
            ]
            .map(|(f, v)| (f.to_owned(), v.to_owned())),
        );
        assert_eq!(Summary::from_fields(&fields), summary);
    }

    #[test]
    fn at_most_max_fields_are_read() {
        let fields: Vec<(String, String)> = (0..MAX_FIELDS + 50)
            .map(|i| (format!("b{}", i % BUCKETS), "1".to_owned()))
            .collect();
        assert_eq!(
            Summary::from_fields(&fields).sketch.count(),
            MAX_FIELDS as u64
        );
    }
}
