//! The Redis backend, shared by every node configured with the same URL.
//!
//! Keys (ZIDs are checked to be `Z` and digits before they become part of a key):
//!
//! - `zeval:seq`: the global write sequence; `zeval:gen:<ZID>`: the sequence number of the
//!   last write of that object (absent: never written). A write runs one script that takes
//!   the next number and sets the generation, atomically.
//! - `zeval:epoch`: raised after a node failed to record a write (Redis was down), so that
//!   every entry stored before misses: the write it lost could have made any of them stale.
//! - `zeval:deps:<call key>`: the dependency ZIDs of the call's latest stored answer;
//!   `zeval:result:<entry key>`: the answer, where the entry key hashes the call, the epoch and
//!   every dependency with its generation. Both expire (see [`RedisSettings`]); generations do
//!   not, so run Redis with `maxmemory-policy volatile-lru` (only keys with a time to live are
//!   evicted) or none; [`RedisCache::check_eviction_policy`] refuses an `allkeys-*` policy.
//!
//! A lookup is three round trips: the dependency list, `seq` and `epoch` in one pipeline, the
//! generations in a second, the entry in a third. Every value is read with `GETRANGE`, never
//! `GET`: at most what a node of these limits writes (a number: 20 digits; a dependency list:
//! [`crate::Limits::max_dependencies`] ZIDs; an entry: [`crate::Limits::max_value_bytes`]) and
//! a byte more, which makes it a miss. Whoever can write to Redis could otherwise make every
//! lookup read a 512 MB value per key, for each of up to a thousand generations.
//!
//! Other nodes' writes: when a lookup or store sees a dependency at a generation this node
//! has not seen, it calls `on_remote_write(zid)` first (the server drops that object from its
//! own object cache) and does not store the answer it just computed, which may have read the
//! object from that cache; nor does it store any answer whose evaluation overlapped such a
//! notice (a count of notices travels in the [`Ticket`]).
//!
//! Bounds: every command waits at most [`RedisSettings::timeout`] for each connect, read or
//! write, and reads a bounded number of bytes (above), so a Redis that trickles its answers
//! holds a lookup at most that many reads;
//! after a failure Redis is skipped for [`RedisSettings::retry_after`] (calls go uncached,
//! one log line when it goes down and one when it is back); at most
//! [`MAX_IDLE_CONNECTIONS`] idle connections are kept; the map of generations seen holds at
//! most [`MAX_KNOWN_GENERATIONS`] ZIDs (then it starts over, which costs a few extra
//! invalidations, never a stale answer).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::{Connection, Value as RedisValue};

use crate::{Backend, CacheError, Cached, CallKey, Entry, Lookup, Stored, Ticket};

/// Idle connections kept for reuse.
pub const MAX_IDLE_CONNECTIONS: usize = 16;
/// The bytes before an entry's answer: its time stamp in milliseconds and a newline.
const ENTRY_HEADER_BYTES: usize = 24;

/// ZIDs whose last seen generation this node remembers.
pub const MAX_KNOWN_GENERATIONS: usize = 100_000;

/// The longest number read back: `u64::MAX` has 20 digits.
const NUMBER_BYTES: usize = 20;
/// The longest dependency read back: `Z` and 19 digits, then a newline.
const DEPENDENCY_BYTES: usize = 21;

const SEQ: &str = "zeval:seq";
const EPOCH: &str = "zeval:epoch";
/// Takes the next write number and makes it the object's generation.
const BUMP_SCRIPT: &str =
    "local s = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[2], s) return s";

/// How to reach Redis and how long to keep what.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://host:port/db`, `redis://:password@host/`, or `unix:///path/to/socket`.
    pub url: String,
    /// Longest wait for any one connect, read or write.
    pub timeout: Duration,
    /// How long Redis is skipped after it failed.
    pub retry_after: Duration,
    /// Time to live of the dependency lists (the longest entry time to live).
    pub dependencies_ttl: Duration,
}

/// Called with a ZID another node wrote (see the module doc).
pub type OnRemoteWrite = Box<dyn Fn(&str) + Send + Sync>;

/// The Redis backend.
pub struct RedisCache {
    client: redis::Client,
    settings: RedisSettings,
    idle: Mutex<Vec<Connection>>,
    down_until: Mutex<Option<Instant>>,
    /// A write could not be recorded: raise the epoch as soon as Redis answers again.
    lost_write: AtomicBool,
    known: Mutex<HashMap<String, u64>>,
    /// How many times `known` learned of another node's write (see [`Ticket`]).
    noticed: AtomicU64,
    /// At most this many entries in `known` ([`MAX_KNOWN_GENERATIONS`]).
    max_known: usize,
    /// What a lookup reads at most ([`RedisCache::with_read_limits`]).
    read_limits: crate::Limits,
    on_remote_write: Option<OnRemoteWrite>,
}

fn backend_error(e: redis::RedisError) -> CacheError {
    CacheError::Backend(e.to_string())
}

/// Whether `zid` may become part of a key: `Z` and 1 to 19 digits.
fn is_zid(zid: &str) -> bool {
    zid.strip_prefix('Z').is_some_and(|digits| {
        (1..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn generation_key(zid: &str) -> String {
    format!("zeval:gen:{zid}")
}

/// Adds a read of at most a number's digits and one byte more (a longer value reads as
/// digits [`as_u64`] does not take, so as 0, as a missing key does).
fn read_number(pipe: &mut redis::Pipeline, key: &str) {
    pipe.cmd("GETRANGE").arg(key).arg(0).arg(NUMBER_BYTES);
}

fn as_u64(value: &RedisValue) -> u64 {
    redis::from_redis_value_ref::<Option<u64>>(value)
        .ok()
        .flatten()
        .unwrap_or(0)
}

impl RedisCache {
    /// A backend for `settings` (the URL is checked now; nothing connects yet).
    pub fn new(
        settings: RedisSettings,
        on_remote_write: Option<OnRemoteWrite>,
    ) -> Result<Self, CacheError> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| CacheError::Config(format!("redis_url: {e}")))?;
        Ok(RedisCache {
            client,
            settings,
            idle: Mutex::new(Vec::new()),
            down_until: Mutex::new(None),
            lost_write: AtomicBool::new(false),
            known: Mutex::new(HashMap::new()),
            noticed: AtomicU64::new(0),
            max_known: MAX_KNOWN_GENERATIONS,
            read_limits: crate::Limits::default(),
            on_remote_write,
        })
    }

    /// Reads no entry larger, and no dependency list longer, than `limits` allow this node
    /// to store (by default [`crate::Limits::default`]'s): what is in Redis may have been
    /// written by anyone who can reach it, and a 512 MB entry was read and parsed whole, and
    /// a list of millions of dependencies asked for as many generations on every lookup.
    /// Anything over them is a miss.
    #[must_use]
    pub fn with_read_limits(mut self, limits: crate::Limits) -> Self {
        self.read_limits = limits;
        self
    }

    /// Refuses a Redis that may evict keys without a time to live (`maxmemory-policy
    /// allkeys-*`): an evicted generation would read as "never written", and an answer
    /// stored before the write could be served again. `Ok` when the policy is safe, or when
    /// Redis cannot say (unreachable now, or `CONFIG` disabled, as on some managed services):
    /// then the operator's word in the documentation has to do.
    pub fn check_eviction_policy(&self) -> Result<(), CacheError> {
        let policy = self.with(|conn| {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query::<Vec<String>>(conn)
        });
        match policy.as_deref() {
            Ok([_, policy]) if policy.starts_with("allkeys-") => Err(CacheError::Config(format!(
                "the Redis at redis_url evicts any key under memory pressure \
                 (maxmemory-policy {policy}), generations among them, which would let stale \
                 answers be served: set maxmemory-policy to volatile-lru or noeviction"
            ))),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "result cache: could not read Redis's maxmemory-policy; it must not be allkeys-*");
                Ok(())
            }
        }
    }

    /// Remembers the generations of at most `max` ZIDs instead of
    /// [`MAX_KNOWN_GENERATIONS`] (at least 1).
    pub fn with_max_known_generations(mut self, max: usize) -> Self {
        self.max_known = max.max(1);
        self
    }

    /// Runs `f` on a connection (an idle one, else a new one), within the timeouts; a
    /// failure marks Redis down for a moment.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, CacheError> {
        {
            let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
            match *down {
                Some(until) if Instant::now() < until => return Err(CacheError::Unavailable),
                Some(_) => *down = None,
                None => {}
            }
        }
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut connection = match pooled {
            Some(c) => c,
            None => self.connect().inspect_err(|e| self.went_down(e))?,
        };
        if self.lost_write.load(Ordering::Acquire) {
            // Before anything else: entries stored before the lost write must all miss.
            redis::cmd("INCR")
                .arg(EPOCH)
                .query::<u64>(&mut connection)
                .map_err(backend_error)
                .inspect_err(|e| self.went_down(e))?;
            self.lost_write.store(false, Ordering::Release);
            tracing::info!("result cache: raised the Redis epoch after a lost write");
        }
        let result = f(&mut connection)
            .map_err(backend_error)
            .inspect_err(|e| self.went_down(e))?;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(connection);
        }
        Ok(result)
    }

    fn connect(&self) -> Result<Connection, CacheError> {
        let timeout = self.settings.timeout;
        let connection = self
            .client
            .get_connection_with_timeout(timeout)
            .map_err(backend_error)?;
        connection
            .set_read_timeout(Some(timeout))
            .map_err(backend_error)?;
        connection
            .set_write_timeout(Some(timeout))
            .map_err(backend_error)?;
        Ok(connection)
    }

    fn went_down(&self, error: &CacheError) {
        let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if down.is_none() {
            tracing::warn!(%error, retry_in = ?self.settings.retry_after, "result cache: Redis failed; calls go uncached until it answers");
        }
        *down = Some(Instant::now() + self.settings.retry_after);
        // Connections that saw an error may be in any state.
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Notes the generations seen; returns whether any moved since this node last looked
    /// (telling the server of each such ZID first).
    fn observe(&self, dependencies: &[&str], generations: &[u64]) -> bool {
        let mut moved = false;
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for (&zid, &generation) in dependencies.iter().zip(generations) {
            let seen = known.get(zid).copied();
            // Never written anywhere (0) and never seen: nothing this node holds can be stale.
            if seen == Some(generation) || (seen.is_none() && generation == 0) {
                continue;
            }
            moved = true;
            if let Some(tell) = &self.on_remote_write {
                tell(zid);
            }
            self.noticed.fetch_add(1, Ordering::AcqRel);
            if known.len() >= self.max_known && seen.is_none() {
                known.clear();
            }
            known.insert(zid.to_owned(), generation);
        }
        moved
    }

    fn generations(
        &self,
        connection: &mut Connection,
        dependencies: &[&str],
    ) -> redis::RedisResult<Vec<u64>> {
        if dependencies.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for zid in dependencies {
            read_number(&mut pipe, &generation_key(zid));
        }
        // A key of another type (`WRONGTYPE`) reads as 0, as `MGET` read it, not as Redis
        // failing: that switched the cache off for everyone at each lookup.
        let values: Vec<redis::RedisResult<RedisValue>> = pipe.ignore_errors().query(connection)?;
        Ok(values
            .iter()
            .map(|value| value.as_ref().map_or(0, as_u64))
            .collect())
    }
}

impl Backend for RedisCache {
    fn lookup(&self, call: &CallKey) -> Result<Lookup, CacheError> {
        let hex = call.to_hex();
        let deps_key = format!("zeval:deps:{hex}");
        let max = self.read_limits.max_dependencies;
        let longest_list = max.saturating_mul(DEPENDENCY_BYTES);
        let found = self.with(|c| {
            let mut pipe = redis::pipe();
            pipe.cmd("EXISTS")
                .arg(&deps_key)
                .cmd("GETRANGE")
                .arg(&deps_key)
                .arg(0)
                .arg(longest_list);
            read_number(&mut pipe, SEQ);
            read_number(&mut pipe, EPOCH);
            // Keys of another type read as missing (see `generations`).
            type Read<T> = redis::RedisResult<T>;
            let (exists, deps, sequence, epoch): (
                Read<bool>,
                Read<Vec<u8>>,
                Read<RedisValue>,
                Read<RedisValue>,
            ) = pipe.ignore_errors().query(c)?;
            let exists = exists.unwrap_or(false);
            let deps = deps.unwrap_or_default();
            let (sequence, epoch) = (
                sequence.unwrap_or(RedisValue::Nil),
                epoch.unwrap_or(RedisValue::Nil),
            );
            let mut ticket = Ticket {
                call: *call,
                sequence: Some(as_u64(&sequence)),
                epoch: as_u64(&epoch),
                noticed: self.noticed.load(Ordering::Acquire),
            };
            // Longer than any list of `max`, not UTF-8, too many, or not ZIDs: not a list any
            // node wrote, so a miss (not a failure of Redis, which would switch the cache off
            // for everyone for a second). An empty list is a call that read no object.
            let deps = Some(deps)
                .filter(|d| exists && d.len() <= longest_list)
                .and_then(|d| String::from_utf8(d).ok());
            let Some(deps) = deps else {
                return Ok((ticket, None));
            };
            let dependencies: Vec<&str> = deps
                .split('\n')
                .filter(|z| !z.is_empty())
                .take(max + 1)
                .collect();
            if dependencies.len() > max || !dependencies.iter().all(|z| is_zid(z)) {
                return Ok((ticket, None));
            }
            let generations = self.generations(c, &dependencies)?;
            // Before the entry is read: if another node wrote a dependency, this node's object
            // cache must forget it before the evaluation that follows a miss.
            self.observe(&dependencies, &generations);
            // What this lookup noticed was dropped from the object cache before the
            // evaluation; only later notices can have been missed by it.
            ticket.noticed = self.noticed.load(Ordering::Acquire);
            let key = call.entry_key(
                ticket.epoch,
                dependencies
                    .iter()
                    .copied()
                    .zip(generations.iter().copied()),
            );
            // At most what this node would store, and the time stamp before it: a longer
            // entry was not written by a node of these limits, and is a miss.
            let most = self.read_limits.max_value_bytes + ENTRY_HEADER_BYTES;
            let entry: Option<Vec<u8>> = redis::cmd("GETRANGE")
                .arg(format!("zeval:result:{key}"))
                .arg(0)
                .arg(most)
                .query(c)?;
            let entry = entry.filter(|bytes| !bytes.is_empty() && bytes.len() <= most);
            Ok((ticket, entry.map(|bytes| (key, bytes))))
        })?;
        let (ticket, entry) = found;
        let Some((key, bytes)) = entry else {
            return Ok(Lookup::Miss(ticket));
        };
        // Stored as "<computed_at_ms>\n<answer>".
        let split = bytes.iter().position(|&b| b == b'\n');
        let parsed = split.and_then(|i| {
            let ms = std::str::from_utf8(&bytes[..i]).ok()?.parse::<i64>().ok()?;
            Some((ms, &bytes[i + 1..]))
        });
        match parsed {
            Some((computed_at_ms, answer)) => Ok(Lookup::Hit(Cached {
                bytes: answer.into(),
                computed_at_ms,
                key,
            })),
            None => Ok(Lookup::Miss(ticket)),
        }
    }

    fn store(&self, ticket: &Ticket, entry: &Entry<'_>) -> Result<Stored, CacheError> {
        let Some(sequence) = ticket.sequence else {
            return Ok(Stored::Failed);
        };
        let dependencies: Vec<&str> = entry.dependencies.iter().map(String::as_str).collect();
        if !dependencies.iter().all(|z| is_zid(z)) {
            return Ok(Stored::Raced);
        }
        let hex = ticket.call.to_hex();
        let ttl_ms = |d: Duration| d.as_millis().clamp(1, u64::MAX as u128) as u64;
        self.with(|c| {
            let generations = self.generations(c, &dependencies)?;
            let raced = generations.iter().any(|&g| g > sequence);
            if self.observe(&dependencies, &generations)
                || raced
                || self.noticed.load(Ordering::Acquire) != ticket.noticed
            {
                return Ok(Stored::Raced);
            }
            let key = ticket.call.entry_key(
                ticket.epoch,
                dependencies
                    .iter()
                    .copied()
                    .zip(generations.iter().copied()),
            );
            let mut value = format!("{}\n", entry.computed_at_ms).into_bytes();
            value.extend_from_slice(entry.bytes);
            redis::pipe()
                .cmd("SET")
                .arg(format!("zeval:deps:{hex}"))
                .arg(dependencies.join("\n"))
                .arg("PX")
                .arg(ttl_ms(self.settings.dependencies_ttl.max(entry.ttl)))
                .ignore()
                .cmd("SET")
                .arg(format!("zeval:result:{key}"))
                .arg(value)
                .arg("PX")
                .arg(ttl_ms(entry.ttl))
                .ignore()
                .query::<()>(c)?;
            Ok(Stored::Yes)
        })
    }

    fn bump(&self, zid: &str) -> Result<(), CacheError> {
        if !is_zid(zid) {
            return Ok(());
        }
        let result = self.with(|c| {
            redis::cmd("EVAL")
                .arg(BUMP_SCRIPT)
                .arg(2)
                .arg(SEQ)
                .arg(generation_key(zid))
                .query::<u64>(c)
        });
        match result {
            Ok(generation) => {
                // This node's own write: its object cache is already fresh.
                let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
                if known.len() >= self.max_known && !known.contains_key(zid) {
                    known.clear();
                }
                known.insert(zid.to_owned(), generation);
                Ok(())
            }
            Err(e) => {
                // Entries that read `zid` would stay valid: drop them all once Redis is back.
                self.lost_write.store(true, Ordering::Release);
                tracing::warn!(%zid, error = %e, "result cache: a write could not be recorded in Redis; every entry will be dropped once it answers");
                Err(e)
            }
        }
    }

    fn ticket(&self, call: &CallKey) -> Result<Ticket, CacheError> {
        let (sequence, epoch): (RedisValue, RedisValue) = self.with(|c| {
            let mut pipe = redis::pipe();
            read_number(&mut pipe, SEQ);
            read_number(&mut pipe, EPOCH);
            pipe.query(c)
        })?;
        Ok(Ticket {
            call: *call,
            sequence: Some(as_u64(&sequence)),
            epoch: as_u64(&epoch),
            noticed: self.noticed.load(Ordering::Acquire),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_zids_become_keys() {
        assert!(is_zid("Z1") && is_zid("Z10000"));
        for bad in [
            "",
            "Z",
            "z1",
            "Z1 ",
            "Z1\nZ2",
            "Z12345678901234567890",
            "Z1*",
        ] {
            assert!(!is_zid(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_url_is_a_configuration_error() {
        let settings = RedisSettings {
            url: "http://not-redis".into(),
            timeout: Duration::from_millis(10),
            retry_after: Duration::from_secs(1),
            dependencies_ttl: Duration::from_secs(1),
        };
        assert!(matches!(
            RedisCache::new(settings, None),
            Err(CacheError::Config(_))
        ));
    }
}
