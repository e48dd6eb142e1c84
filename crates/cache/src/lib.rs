//! zeval-cache: remembered answers of function calls (issue 11's result cache).
//!
//! It owns the key of an answer and the two places answers are kept; it does no
//! orchestration and knows nothing of HTTP. An answer is filed under
//!
//! - the **call** ([`CallKey`]: the call in canonical form, independent of key order and of
//!   canonical-vs-normal input, plus a context the caller chooses: access scope, validation,
//!   program version), and
//! - the **generation** of every object the evaluation read (its dependencies, recorded by
//!   the orchestrator). Every write of an object bumps its generation ([`ResultCache::bump`]),
//!   so the next lookup of any answer that read it computes another key and misses.
//!
//! Generations are values of one global write sequence: a write takes the next number and
//! makes it the object's generation. A lookup that misses notes the sequence
//! ([`Ticket`]); an answer whose dependencies were written after that (a write that raced
//! the evaluation) is not stored, since it may have read the old object.
//!
//! Backends ([`Backend`]): [`InProcess`] (bounded, least recently used by bytes) and
//! [`RedisCache`] (shared by several nodes; generations live in Redis). A backend that fails
//! degrades to "no cache": lookups miss, stores are dropped, each failure is logged and
//! counted, and a call never waits on it beyond its timeout.
//!
//! Limits enforced here ([`Limits`]): the bytes of one answer, the dependencies of one entry,
//! the bytes of the whole in-process cache; Redis has its own (see [`redis_backend`]).

mod key;
mod memory;
pub mod redis_backend;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use key::CallKey;
pub use memory::{GENERATION_SLOTS, InProcess};
pub use redis_backend::{RedisCache, RedisSettings};

/// Why a backend operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The backend is unreachable or answered wrongly.
    #[error("cache backend: {0}")]
    Backend(String),
    /// The backend failed recently and is skipped for a moment.
    #[error("cache backend unavailable (retrying in a moment)")]
    Unavailable,
    /// A setting is wrong (e.g. the Redis URL).
    #[error("cache configuration: {0}")]
    Config(String),
}

/// A remembered answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// The answer as it was stored (the serialized canonical Z22).
    pub bytes: Arc<[u8]>,
    /// When it was computed, in milliseconds since the Unix epoch.
    pub computed_at_ms: i64,
    /// The entry's key (hex), for the answer's metadata.
    pub key: String,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// An answer whose dependencies are all unchanged.
    Hit(Cached),
    /// No such answer: evaluate, then [`ResultCache::store`] with this ticket.
    Miss(Ticket),
}

/// What a miss hands to the store that follows it.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub(crate) call: CallKey,
    /// The write sequence when the lookup was made; `None` when the backend could not say
    /// (then nothing is stored).
    pub(crate) sequence: Option<u64>,
    /// The global epoch (Redis: raised to drop every entry at once).
    pub(crate) epoch: u64,
    /// How many other nodes' writes this node had noticed (Redis); an answer computed while
    /// it noticed another may have read an object its object cache held stale.
    pub(crate) noticed: u64,
}

impl Ticket {
    /// A ticket for storing without a lookup (a call that bypassed the cache).
    pub fn call(&self) -> CallKey {
        self.call
    }
}

/// One answer to store.
pub struct Entry<'a> {
    /// The dependencies' ZIDs, sorted, each once.
    pub dependencies: &'a [String],
    /// The serialized answer.
    pub bytes: &'a [u8],
    /// When it was computed (ms since the Unix epoch).
    pub computed_at_ms: i64,
    /// How long to keep it.
    pub ttl: Duration,
}

/// Why [`ResultCache::store`] kept or did not keep an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Kept.
    Yes,
    /// Larger than [`Limits::max_value_bytes`] (or than the whole in-process cache).
    TooLarge,
    /// More dependencies than [`Limits::max_dependencies`].
    TooManyDependencies,
    /// A dependency was written while the answer was computed (or this node had not yet
    /// seen a write another node made): it may be stale.
    Raced,
    /// The backend failed (logged and counted).
    Failed,
}

/// Where answers are kept.
pub trait Backend: Send + Sync {
    /// The answer for `call` if every dependency it was stored with is at the same
    /// generation; else a ticket for storing.
    fn lookup(&self, call: &CallKey) -> Result<Lookup, CacheError>;
    /// Keeps `entry` for `ticket`'s call unless a dependency was written after the ticket
    /// was issued ([`Stored::Raced`]) or it cannot fit ([`Stored::TooLarge`]).
    fn store(&self, ticket: &Ticket, entry: &Entry<'_>) -> Result<Stored, CacheError>;
    /// Records a write of `zid`: every answer that read it misses from now on.
    fn bump(&self, zid: &str) -> Result<(), CacheError>;
    /// A ticket without a lookup (for a call that bypassed the cache).
    fn ticket(&self, call: &CallKey) -> Result<Ticket, CacheError>;
    /// Entries and bytes held in this process (zero for a remote backend).
    fn held(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// Bounds of what one entry may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest answer kept, in bytes of its JSON; larger answers are computed every time.
    pub max_value_bytes: usize,
    /// Most dependencies one entry may have (each costs a generation read per lookup).
    pub max_dependencies: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_bytes: 1024 * 1024,
            max_dependencies: 1000,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Lookups answered from the cache.
    pub hits: AtomicU64,
    /// Lookups that found nothing usable.
    pub misses: AtomicU64,
    /// Backend failures (each also logged).
    pub errors: AtomicU64,
    /// Answers stored.
    pub stores: AtomicU64,
    /// Answers not stored: too large, too many dependencies, or raced by a write.
    pub skipped: AtomicU64,
    /// Writes that bumped a generation.
    pub bumps: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`Stats::hits`].
    pub hits: u64,
    /// See [`Stats::misses`].
    pub misses: u64,
    /// See [`Stats::errors`].
    pub errors: u64,
    /// See [`Stats::stores`].
    pub stores: u64,
    /// See [`Stats::skipped`].
    pub skipped: u64,
    /// See [`Stats::bumps`].
    pub bumps: u64,
    /// Entries held in this process.
    pub entries: u64,
    /// Bytes held in this process.
    pub bytes: u64,
}

/// A backend with its limits and counters: what the server uses.
pub struct ResultCache {
    backend: Box<dyn Backend>,
    limits: Limits,
    stats: Stats,
    name: &'static str,
}

impl ResultCache {
    /// A cache over `backend` (`name` says which, for logs).
    pub fn new(backend: Box<dyn Backend>, limits: Limits, name: &'static str) -> Self {
        ResultCache {
            backend,
            limits,
            stats: Stats::default(),
            name,
        }
    }

    /// The in-process cache holding at most `max_bytes`.
    pub fn in_process(max_bytes: usize, limits: Limits) -> Self {
        Self::new(Box::new(InProcess::new(max_bytes)), limits, "in-process")
    }

    /// Which backend this is.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The limits in effect.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Looks `call` up; a failing backend is a miss whose answer will not be stored.
    pub fn lookup(&self, call: &CallKey) -> Lookup {
        match self.backend.lookup(call) {
            Ok(Lookup::Hit(cached)) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Lookup::Hit(cached)
            }
            Ok(miss) => {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                miss
            }
            Err(e) => {
                self.failed("lookup", &e);
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                Lookup::Miss(Ticket {
                    call: *call,
                    sequence: None,
                    epoch: 0,
                    noticed: 0,
                })
            }
        }
    }

    /// A ticket for storing the answer of a call that was not looked up (bypassed).
    pub fn ticket(&self, call: &CallKey) -> Ticket {
        self.backend.ticket(call).unwrap_or_else(|e| {
            self.failed("ticket", &e);
            Ticket {
                call: *call,
                sequence: None,
                epoch: 0,
                noticed: 0,
            }
        })
    }

    /// Stores `entry` within the limits.
    pub fn store(&self, ticket: &Ticket, entry: &Entry<'_>) -> Stored {
        let outcome = if entry.bytes.len() > self.limits.max_value_bytes {
            Stored::TooLarge
        } else if entry.dependencies.len() > self.limits.max_dependencies {
            Stored::TooManyDependencies
        } else if ticket.sequence.is_none() {
            Stored::Failed
        } else {
            match self.backend.store(ticket, entry) {
                Ok(stored) => stored,
                Err(e) => {
                    self.failed("store", &e);
                    Stored::Failed
                }
            }
        };
        match outcome {
            Stored::Yes => self.stats.stores.fetch_add(1, Ordering::Relaxed),
            Stored::Failed => 0,
            _ => self.stats.skipped.fetch_add(1, Ordering::Relaxed),
        };
        outcome
    }

    /// Counts an answer the caller did not even offer (e.g. too large to serialize).
    pub fn note_skipped(&self) {
        self.stats.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a write of `zid` (after the write is visible in the store).
    pub fn bump(&self, zid: &str) {
        match self.backend.bump(zid) {
            Ok(()) => {
                self.stats.bumps.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.failed("bump", &e),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        let (entries, bytes) = self.backend.held();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            hits: get(&self.stats.hits),
            misses: get(&self.stats.misses),
            errors: get(&self.stats.errors),
            stores: get(&self.stats.stores),
            skipped: get(&self.stats.skipped),
            bumps: get(&self.stats.bumps),
            entries,
            bytes,
        }
    }

    fn failed(&self, what: &str, error: &CacheError) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        // An unavailable backend was logged when it went down; one line per failed call
        // would flood the log while it stays down.
        if !matches!(error, CacheError::Unavailable) {
            tracing::warn!(backend = self.name, %error, "result cache {what} failed; answering without the cache");
        }
    }
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
