//! [`Layered`]: several sources asked in order; [`SharedCache`]: a bounded cache in front of
//! a source, shared between requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use zeval_zobject::Value;
pub use zeval_zobject::json::estimated_bytes;

use crate::{ObjectSource, StoreError};

/// Sources asked in order (catalogue → local → wiki): the first that has a ZID wins, and each
/// later source is asked only for the ZIDs still missing (and not at all once none are).
/// A failing source fails the whole fetch, as the original's failing wiki fetch does.
#[derive(Clone, Default)]
pub struct Layered {
    layers: Vec<Arc<dyn ObjectSource>>,
}

impl Layered {
    /// No layers yet; add them in priority order with [`Self::with`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a layer below the existing ones.
    #[must_use]
    pub fn with(self, source: impl ObjectSource + 'static) -> Self {
        self.with_shared(Arc::new(source))
    }

    /// Adds a layer that is also used elsewhere (e.g. the SQLite store the server writes to).
    #[must_use]
    pub fn with_shared(mut self, source: Arc<dyn ObjectSource>) -> Self {
        self.layers.push(source);
        self
    }

    /// How many layers there are.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers (every fetch then finds nothing).
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl std::fmt::Debug for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layered")
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl ObjectSource for Layered {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        self.fetch_before(zids, None)
    }

    /// Every layer is asked with the same deadline.
    fn fetch_before(
        &self,
        zids: &[String],
        deadline: Option<Instant>,
    ) -> Result<HashMap<String, Value>, StoreError> {
        let mut missing = unique(zids);
        let mut found = HashMap::with_capacity(missing.len());
        for layer in &self.layers {
            if missing.is_empty() {
                break;
            }
            let mut answer = layer.fetch_before(&missing, deadline)?;
            missing.retain(|zid| match answer.remove(zid) {
                Some(object) => {
                    found.insert(zid.clone(), object);
                    false
                }
                None => true,
            });
        }
        Ok(found)
    }
}

/// The default capacity of a [`SharedCache`], in objects.
///
/// Canonical Z2s are typically 1–20 kB in memory, so 10,000 entries hold every built-in plus
/// the working set of a busy wiki mirror.
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

/// The most bytes (as [`estimated_bytes`] counts them) a [`SharedCache`] holds, whatever
/// the count: 256 MiB. A stored object may be 100 KiB of JSON and a wiki's up to 32 MiB, and
/// several times that in memory, so 10,000 of them could have been gigabytes. An object of
/// more than a quarter of it is not kept.
pub const DEFAULT_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Hit and miss counts of a [`SharedCache`], for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// ZIDs answered from the cache.
    pub hits: u64,
    /// ZIDs passed on to the source (found there or not).
    pub misses: u64,
    /// Objects held now.
    pub entries: usize,
}

/// A cache in front of a source, shared between requests: at most `capacity` objects, the
/// least recently used evicted first. Missing ZIDs are not cached (a later write or a wiki
/// edit may create them).
///
/// Whoever writes to the source underneath must call [`Self::invalidate`] for the ZID it
/// wrote. A fetch that was already running when an invalidation happened does not cache
/// what it read, so a stale object cannot slip back in. A source that others write too (a
/// PostgreSQL store shared by several nodes) needs [`Self::with_max_age`]: nobody tells this
/// cache of their writes.
pub struct SharedCache<S> {
    source: S,
    capacity: usize,
    /// How long an entry is used after it was fetched ([`Self::with_max_age`]).
    max_age: Option<Duration>,
    /// The most bytes held ([`DEFAULT_CACHE_BYTES`] unless [`Self::with_max_bytes`]).
    max_bytes: usize,
    state: Mutex<LruState>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct LruState {
    /// ZID → (object, last-use tick, when it was fetched, its estimated bytes).
    entries: HashMap<String, (Value, u64, Instant, usize)>,
    /// The estimated bytes of every entry.
    bytes: usize,
    /// Last-use tick → ZID, oldest first.
    by_age: BTreeMap<u64, String>,
    tick: u64,
    /// Bumped by every invalidation.
    generation: u64,
}

impl LruState {
    /// The object of `zid`, unless it was fetched longer than `max_age` ago (it is then
    /// dropped).
    fn touch(&mut self, zid: &str, max_age: Option<Duration>) -> Option<Value> {
        if let (Some(max_age), Some((_, _, fetched, _))) = (max_age, self.entries.get(zid))
            && fetched.elapsed() >= max_age
        {
            self.remove(zid);
            return None;
        }
        self.tick += 1;
        let tick = self.tick;
        let (object, used, _, _) = self.entries.get_mut(zid)?;
        self.by_age.remove(used);
        *used = tick;
        self.by_age.insert(tick, zid.to_string());
        Some(object.clone())
    }

    fn insert(&mut self, zid: String, object: Value, capacity: usize, max_bytes: usize) {
        self.remove(&zid);
        let bytes = estimated_bytes(&object);
        if capacity == 0 || bytes > max_bytes / 4 {
            return;
        }
        while self.entries.len() >= capacity || self.bytes + bytes > max_bytes {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            if let Some((_, _, _, gone)) = self.entries.remove(&oldest) {
                self.bytes -= gone;
            }
        }
        self.tick += 1;
        self.by_age.insert(self.tick, zid.clone());
        self.bytes += bytes;
        self.entries
            .insert(zid, (object, self.tick, Instant::now(), bytes));
    }

    fn remove(&mut self, zid: &str) {
        if let Some((_, used, _, bytes)) = self.entries.remove(zid) {
            self.by_age.remove(&used);
            self.bytes -= bytes;
        }
    }
}

impl<S: ObjectSource> SharedCache<S> {
    /// A cache of at most `capacity` objects in front of `source`.
    pub fn new(source: S, capacity: usize) -> Self {
        Self {
            source,
            capacity,
            max_age: None,
            max_bytes: DEFAULT_CACHE_BYTES,
            state: Mutex::new(LruState::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Uses an object for at most `max_age` after it was fetched: for a source that others
    /// write too, so that their writes are seen within `max_age` (without it, never, as long
    /// as the object stayed in use). That matters beyond freshness: an approval is checked in
    /// the store, and the code that runs comes from here, so a node that kept an old revision
    /// would run it as approved once a newer one was.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Holds at most `max_bytes` of objects (as [`estimated_bytes`] counts them).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The source behind the cache.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Forgets `zid` (call it after writing `zid` to a source underneath).
    pub fn invalidate(&self, zid: &str) {
        let mut state = self.lock();
        state.generation += 1;
        state.remove(zid);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
        state.by_age.clear();
        state.bytes = 0;
    }

    /// Hits, misses and size so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.lock().entries.len(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruState> {
        // The state is consistent between statements, so a panic elsewhere cannot break it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<S: ObjectSource> ObjectSource for SharedCache<S> {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        self.fetch_before(zids, None)
    }

    /// Cached objects answer at once; the rest are fetched from the source with `deadline`.
    fn fetch_before(
        &self,
        zids: &[String],
        deadline: Option<Instant>,
    ) -> Result<HashMap<String, Value>, StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        let generation = {
            let mut state = self.lock();
            for zid in unique(zids) {
                match state.touch(&zid, self.max_age) {
                    Some(object) => {
                        found.insert(zid, object);
                    }
                    None => missing.push(zid),
                }
            }
            state.generation
        };
        self.hits.fetch_add(found.len() as u64, Ordering::Relaxed);
        if missing.is_empty() {
            return Ok(found);
        }
        self.misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        let fetched = self.source.fetch_before(&missing, deadline)?;
        let mut state = self.lock();
        let cacheable = state.generation == generation;
        for zid in missing {
            if let Some(object) = fetched.get(&zid) {
                if cacheable {
                    state.insert(zid.clone(), object.clone(), self.capacity, self.max_bytes);
                }
                found.insert(zid, object.clone());
            }
        }
        Ok(found)
    }
}

impl<S> std::fmt::Debug for SharedCache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// `zids` without repeats, in order.
fn unique(zids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(zids.len());
    zids.iter()
        .filter(|z| seen.insert(z.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_least_recently_used_entry_is_evicted_first() {
        let mut state = LruState::default();
        for zid in ["Z1", "Z2", "Z3"] {
            state.insert(zid.into(), json!(zid), 3, usize::MAX);
        }
        assert!(state.touch("Z1", None).is_some());
        state.insert("Z4".into(), json!("Z4"), 3, usize::MAX);
        let mut held: Vec<_> = state.entries.keys().cloned().collect();
        held.sort();
        assert_eq!(held, ["Z1", "Z3", "Z4"]);
        assert_eq!(state.by_age.len(), 3);
    }

    /// An object fetched longer ago than the cache's maximum age is fetched again: another
    /// node's write is seen. Without a maximum age the cache keeps serving what it fetched.
    #[test]
    fn an_entry_older_than_the_max_age_is_fetched_again() {
        struct Counter(AtomicU64);
        impl ObjectSource for Counter {
            fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
                let n = self.0.fetch_add(1, Ordering::SeqCst);
                Ok(zids.iter().map(|z| (z.clone(), json!(n))).collect())
            }
        }
        let zids = ["Z1".to_owned()];
        let fresh = SharedCache::new(Counter(AtomicU64::new(0)), 10)
            .with_max_age(Duration::from_millis(50));
        let kept = SharedCache::new(Counter(AtomicU64::new(0)), 10);
        for cache in [&fresh, &kept] {
            assert_eq!(cache.fetch(&zids).unwrap()["Z1"], 0);
            assert_eq!(cache.fetch(&zids).unwrap()["Z1"], 0, "within the max age");
        }
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(fresh.fetch(&zids).unwrap()["Z1"], 1, "past the max age");
        assert_eq!(kept.fetch(&zids).unwrap()["Z1"], 0);
    }

    /// The cache holds at most its bytes, whatever the count: large objects push out the
    /// least recently used, and one of more than a quarter of the bytes is not kept. Only
    /// the count bounded it, and 10,000 large objects could take gigabytes.
    #[test]
    fn large_objects_are_bounded_by_bytes() {
        let mut state = LruState::default();
        let object = |n: usize| json!("x".repeat(n));
        let max = 4_000;
        for zid in ["Z1", "Z2", "Z3", "Z4"] {
            state.insert(zid.into(), object(850), 100, max);
        }
        assert_eq!(state.entries.len(), 4);
        state.insert("Z5".into(), object(850), 100, max);
        assert!(state.bytes <= max, "{}", state.bytes);
        assert!(!state.entries.contains_key("Z1"), "the oldest stayed");
        assert_eq!(state.entries.len(), 4);
        state.insert("Z6".into(), object(2_000), 100, max);
        assert!(
            !state.entries.contains_key("Z6"),
            "an object over a quarter was kept"
        );
        assert_eq!(state.entries.len(), state.by_age.len());
    }

    #[test]
    fn capacity_zero_holds_nothing() {
        let mut state = LruState::default();
        state.insert("Z1".into(), json!(1), 0, usize::MAX);
        assert!(state.entries.is_empty() && state.by_age.is_empty());
    }
}
