//! The in-process backend: a map bounded by bytes, evicting the least recently used entries.
//!
//! Generations live in a fixed table of [`GENERATION_SLOTS`] atomic counters indexed by a
//! hash of the ZID, so they take fixed memory whatever is written: two ZIDs that share a
//! slot only cost extra misses (a write of one also invalidates answers that read the
//! other), never a stale hit. Each entry keeps the slot and generation of every dependency;
//! a lookup compares them with the table (one atomic read each) and drops the entry when
//! one moved.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::{Backend, CacheError, Cached, CallKey, Entry, Lookup, Stored, Ticket};

/// Generation slots (8 bytes each: 512 KiB).
pub const GENERATION_SLOTS: usize = 65_536;

/// What an entry costs besides its answer: the key, the map and order slots, the times.
const ENTRY_OVERHEAD: usize = 160;
/// What one dependency costs in an entry.
const DEPENDENCY_BYTES: usize = 16;

struct Held {
    dependencies: Box<[(u32, u64)]>,
    bytes: Arc<[u8]>,
    computed_at_ms: i64,
    expires: Instant,
    key: String,
    size: usize,
    tick: u64,
}

#[derive(Default)]
struct Lru {
    map: HashMap<CallKey, Held>,
    /// Recency: tick → key, oldest first.
    order: BTreeMap<u64, CallKey>,
    bytes: usize,
    tick: u64,
}

impl Lru {
    fn remove(&mut self, key: &CallKey) {
        if let Some(held) = self.map.remove(key) {
            self.order.remove(&held.tick);
            self.bytes -= held.size;
        }
    }
}

/// The in-process backend.
pub struct InProcess {
    lru: Mutex<Lru>,
    generations: Box<[AtomicU64]>,
    sequence: AtomicU64,
    max_bytes: usize,
}

impl InProcess {
    /// A cache holding at most `max_bytes` (answers plus bookkeeping).
    pub fn new(max_bytes: usize) -> Self {
        InProcess {
            lru: Mutex::new(Lru::default()),
            generations: (0..GENERATION_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            sequence: AtomicU64::new(0),
            max_bytes,
        }
    }

    fn slot(zid: &str) -> u32 {
        // SipHash with fixed keys: the same slot for a ZID for the life of the process.
        let mut hasher = std::hash::DefaultHasher::new();
        zid.hash(&mut hasher);
        (hasher.finish() % GENERATION_SLOTS as u64) as u32
    }

    fn generation(&self, slot: u32) -> u64 {
        self.generations[slot as usize].load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock leaves a consistent map (every change is one
        // statement); keep using it.
        self.lru.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Backend for InProcess {
    fn lookup(&self, call: &CallKey) -> Result<Lookup, CacheError> {
        let ticket = self.ticket(call)?;
        let mut lru = self.lock();
        let Some(held) = lru.map.get(call) else {
            return Ok(Lookup::Miss(ticket));
        };
        let fresh = held.expires > Instant::now()
            && held
                .dependencies
                .iter()
                .all(|&(slot, generation)| self.generation(slot) == generation);
        if !fresh {
            lru.remove(call);
            return Ok(Lookup::Miss(ticket));
        }
        let cached = Cached {
            bytes: held.bytes.clone(),
            computed_at_ms: held.computed_at_ms,
            key: held.key.clone(),
        };
        let old_tick = held.tick;
        lru.tick += 1;
        let tick = lru.tick;
        lru.order.remove(&old_tick);
        lru.order.insert(tick, *call);
        if let Some(held) = lru.map.get_mut(call) {
            held.tick = tick;
        }
        Ok(Lookup::Hit(cached))
    }

    fn store(&self, ticket: &Ticket, entry: &Entry<'_>) -> Result<Stored, CacheError> {
        let Some(sequence) = ticket.sequence else {
            return Ok(Stored::Failed);
        };
        let dependencies: Box<[(u32, u64)]> = entry
            .dependencies
            .iter()
            .map(|zid| {
                let slot = Self::slot(zid);
                (slot, self.generation(slot))
            })
            .collect();
        // A write after the lookup may have been missed by the evaluation.
        if dependencies.iter().any(|&(_, g)| g > sequence) {
            return Ok(Stored::Raced);
        }
        let size = entry.bytes.len() + ENTRY_OVERHEAD + DEPENDENCY_BYTES * dependencies.len();
        if size > self.max_bytes {
            return Ok(Stored::TooLarge);
        }
        let key = ticket.call.entry_key(
            0,
            entry
                .dependencies
                .iter()
                .map(String::as_str)
                .zip(dependencies.iter().map(|&(_, g)| g)),
        );
        let mut lru = self.lock();
        lru.remove(&ticket.call);
        while lru.bytes + size > self.max_bytes {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(held) = lru.map.remove(&oldest) {
                lru.bytes -= held.size;
            }
        }
        lru.tick += 1;
        let tick = lru.tick;
        lru.order.insert(tick, ticket.call);
        lru.bytes += size;
        lru.map.insert(
            ticket.call,
            Held {
                dependencies,
                bytes: Arc::from(entry.bytes),
                computed_at_ms: entry.computed_at_ms,
                expires: Instant::now() + entry.ttl,
                key,
                size,
                tick,
            },
        );
        Ok(Stored::Yes)
    }

    fn bump(&self, zid: &str) -> Result<(), CacheError> {
        let generation = self.sequence.fetch_add(1, Ordering::AcqRel) + 1;
        self.generations[Self::slot(zid) as usize].fetch_max(generation, Ordering::AcqRel);
        Ok(())
    }

    fn ticket(&self, call: &CallKey) -> Result<Ticket, CacheError> {
        Ok(Ticket {
            call: *call,
            sequence: Some(self.sequence.load(Ordering::Acquire)),
            epoch: 0,
            noticed: 0,
        })
    }

    fn held(&self) -> (u64, u64) {
        let lru = self.lock();
        (lru.map.len() as u64, lru.bytes as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Limits, ResultCache};

    fn key(n: u32) -> CallKey {
        CallKey::of_value(&serde_json::json!(n), &[])
    }

    fn entry<'a>(deps: &'a [String], bytes: &'a [u8]) -> Entry<'a> {
        Entry {
            dependencies: deps,
            bytes,
            computed_at_ms: 1,
            ttl: Duration::from_secs(60),
        }
    }

    fn miss(cache: &ResultCache, k: &CallKey) -> Ticket {
        match cache.lookup(k) {
            Lookup::Miss(t) => t,
            Lookup::Hit(c) => panic!("unexpected hit {c:?}"),
        }
    }

    fn deps(zids: &[&str]) -> Vec<String> {
        zids.iter().map(|z| z.to_string()).collect()
    }

    #[test]
    fn a_stored_answer_hits_until_a_dependency_is_written() {
        let cache = ResultCache::in_process(1 << 20, Limits::default());
        let k = key(1);
        let t = miss(&cache, &k);
        let d = deps(&["Z10000", "Z10001"]);
        assert_eq!(cache.store(&t, &entry(&d, b"answer")), Stored::Yes);
        let Lookup::Hit(hit) = cache.lookup(&k) else {
            panic!("no hit")
        };
        assert_eq!(&*hit.bytes, b"answer");
        assert_eq!(hit.key.len(), 64);
        cache.bump("Z99999");
        // Unrelated writes (unless they share a slot, which these do not) change nothing.
        assert!(matches!(cache.lookup(&k), Lookup::Hit(_)));
        cache.bump("Z10001");
        let t = miss(&cache, &k);
        assert_eq!(cache.store(&t, &entry(&d, b"new")), Stored::Yes);
        let Lookup::Hit(again) = cache.lookup(&k) else {
            panic!("no hit")
        };
        assert_eq!(&*again.bytes, b"new");
        assert_ne!(again.key, hit.key, "the key carries the generations");
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.stores, s.bumps), (3, 2, 2, 2));
    }

    #[test]
    fn a_write_during_the_evaluation_is_not_stored() {
        let cache = ResultCache::in_process(1 << 20, Limits::default());
        let k = key(2);
        let t = miss(&cache, &k);
        cache.bump("Z10000");
        let d = deps(&["Z10000"]);
        assert_eq!(cache.store(&t, &entry(&d, b"stale?")), Stored::Raced);
        assert!(matches!(cache.lookup(&k), Lookup::Miss(_)));
    }

    #[test]
    fn entries_expire() {
        let cache = ResultCache::in_process(1 << 20, Limits::default());
        let k = key(3);
        let t = miss(&cache, &k);
        let d = deps(&[]);
        let mut e = entry(&d, b"brief");
        e.ttl = Duration::from_millis(30);
        assert_eq!(cache.store(&t, &e), Stored::Yes);
        assert!(matches!(cache.lookup(&k), Lookup::Hit(_)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(cache.lookup(&k), Lookup::Miss(_)));
        assert_eq!(cache.stats().entries, 0, "an expired entry is dropped");
    }

    #[test]
    fn the_byte_bound_evicts_the_least_recently_used() {
        // Room for three entries of 1000 bytes.
        let cache = ResultCache::in_process(3 * (1000 + ENTRY_OVERHEAD), Limits::default());
        let value = vec![b'x'; 1000];
        let d = deps(&[]);
        for n in 0..3 {
            let t = miss(&cache, &key(n));
            assert_eq!(cache.store(&t, &entry(&d, &value)), Stored::Yes);
        }
        // Use 0, so 1 is the least recently used when 3 arrives.
        assert!(matches!(cache.lookup(&key(0)), Lookup::Hit(_)));
        let t = miss(&cache, &key(3));
        assert_eq!(cache.store(&t, &entry(&d, &value)), Stored::Yes);
        assert!(matches!(cache.lookup(&key(1)), Lookup::Miss(_)));
        for n in [0, 2, 3] {
            assert!(matches!(cache.lookup(&key(n)), Lookup::Hit(_)), "{n}");
        }
        let s = cache.stats();
        assert_eq!(s.entries, 3);
        assert!(s.bytes <= 3 * (1000 + ENTRY_OVERHEAD) as u64, "{s:?}");
    }

    #[test]
    fn limits_refuse_large_answers_and_many_dependencies() {
        let limits = Limits {
            max_value_bytes: 100,
            max_dependencies: 2,
        };
        let cache = ResultCache::in_process(1 << 20, limits);
        let t = miss(&cache, &key(4));
        let none = deps(&[]);
        assert_eq!(
            cache.store(&t, &entry(&none, &[b'x'; 101])),
            Stored::TooLarge
        );
        let three = deps(&["Z1", "Z2", "Z3"]);
        assert_eq!(
            cache.store(&t, &entry(&three, b"x")),
            Stored::TooManyDependencies
        );
        assert!(matches!(cache.lookup(&key(4)), Lookup::Miss(_)));
        // An answer larger than the whole cache is not kept either.
        let tiny = ResultCache::in_process(50, Limits::default());
        let t = miss(&tiny, &key(5));
        assert_eq!(tiny.store(&t, &entry(&none, b"x")), Stored::TooLarge);
        assert_eq!(tiny.stats().skipped, 1);
    }
}
