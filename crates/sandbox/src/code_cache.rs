//! Compiled code that a guest handed back for a source text, kept for later calls of the same
//! source text.
//!
//! Every call gets a fresh instance of a guest's snapshot, so an interpreter compiles the
//! call's code string again each time: two thirds of a trivial CPython call's guest time,
//! two fifths of QuickJS's. A runner that can hand back what it compiled (CPython's
//! `marshal`, QuickJS's bytecode writer; see `guests/*/runner.*`) and run that instead is
//! given it by later calls of the same source, through this cache. What the compiled code is,
//! how it travels and what the key holds besides the code string (the evaluator adds the
//! function name) is the runner's protocol (`zeval-evaluator`); this is only the bounded map
//! and the rule of when to ask for it.
//!
//! Trust: an entry is what a guest answered for exactly its key, the whole source text, in a
//! run that compiled that text and ran none of it (the evaluator's compile-only run), and is
//! only ever given to calls of that same text. A call's own run is never asked for it: its
//! code could replace what the runner hands back (Python reaches the runner's frames), and
//! code that evaluates its input would then let one caller choose what every later caller of
//! that code ran. Unmarshalling a bad entry may still fail, inside the sandbox, for calls of
//! that code only. A cache belongs to one place
//! guests run: the evaluator's own process, or one worker process (the parent keeps it for
//! that worker, and drops it with the worker). Shared between workers, it would let a worker
//! that escaped its wasm sandbox forge entries for other users' code that other workers
//! would then run.
//!
//! Limits, enforced here: at most the configured bytes of keys and values together, least
//! recently used first out; an entry over [`MAX_ENTRY_BYTES`] is not kept; the record of
//! sources seen once (the "second sighting" rule below) holds at most [`MAX_SEEN`] hashes
//! and then starts again.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

/// The default byte budget of one cache (keys and compiled code together).
pub const DEFAULT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// The largest entry (source and compiled code) a cache keeps: bigger code is compiled on
/// every call, as before.
pub const MAX_ENTRY_BYTES: usize = 512 * 1024;

/// How many sources seen once are remembered (as 64-bit keyed hashes) before the record
/// starts again.
pub const MAX_SEEN: usize = 64 * 1024;

/// What a call of some source should do about its compiled code (and so what its runner is
/// sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeLookup {
    /// Run this, which an earlier call handed back for the same source.
    Compiled(Arc<[u8]>),
    /// Compile the source, and hand back what it compiled to: the source was seen before.
    CompileAndHandBack,
    /// Compile the source only: a source's first sighting (code run once, as most one-off
    /// calls are, pays nothing for the cache), or any call without a cache.
    Compile,
}

/// Least-recently-used compiled code by source text.
#[derive(Debug)]
pub struct CodeCache {
    max_bytes: usize,
    hasher: RandomState,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Arc<str>, Entry>,
    /// Entries by when they were last used (the key into `entries`).
    by_use: BTreeMap<u64, Arc<str>>,
    /// Keyed hashes of sources seen once and not (yet) cached.
    seen: HashSet<u64>,
    /// Keyed hashes of sources whose compiled code could not be had ([`CodeCache::decline`]):
    /// compiled at every call, never asked for again (until this record starts again, at
    /// [`MAX_SEEN`]).
    declined: HashSet<u64>,
    clock: u64,
    bytes: usize,
    hits: u64,
}

#[derive(Debug)]
struct Entry {
    compiled: Arc<[u8]>,
    last_used: u64,
}

impl Default for CodeCache {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BYTES)
    }
}

impl CodeCache {
    /// A cache of at most `max_bytes` of sources and compiled code.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            hasher: RandomState::new(),
            inner: Mutex::default(),
        }
    }

    /// What a call of `source` should do (and, for a hit, the compiled code).
    pub fn lookup(&self, source: &str) -> CodeLookup {
        let seen_hash = self.hasher.hash_one(source);
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let Some(entry) = inner.entries.get_mut(source) else {
            // A source that cannot make an entry, or whose compiled code could not be had,
            // is never asked for: asking costs a run of its own.
            if source.len() >= MAX_ENTRY_BYTES.min(self.max_bytes)
                || inner.declined.contains(&seen_hash)
            {
                return CodeLookup::Compile;
            }
            if inner.seen.contains(&seen_hash) {
                return CodeLookup::CompileAndHandBack;
            }
            if inner.seen.len() >= MAX_SEEN {
                inner.seen.clear();
            }
            inner.seen.insert(seen_hash);
            return CodeLookup::Compile;
        };
        let (previous, compiled) = (entry.last_used, Arc::clone(&entry.compiled));
        entry.last_used = now;
        if let Some(key) = inner.by_use.remove(&previous) {
            inner.by_use.insert(now, key);
        }
        inner.hits += 1;
        CodeLookup::Compiled(compiled)
    }

    /// Keeps `compiled`, what a guest handed back for `source`, evicting the least recently
    /// used entries beyond the byte budget.
    pub fn insert(&self, source: &str, compiled: Vec<u8>) {
        let size = source.len() + compiled.len();
        if size > MAX_ENTRY_BYTES || size > self.max_bytes {
            self.decline(source);
            return;
        }
        let seen_hash = self.hasher.hash_one(source);
        let mut inner = self.lock();
        inner.seen.remove(&seen_hash);
        if inner.entries.contains_key(source) {
            return;
        }
        inner.clock += 1;
        let now = inner.clock;
        let key: Arc<str> = Arc::from(source);
        inner.by_use.insert(now, Arc::clone(&key));
        inner.entries.insert(
            key,
            Entry {
                compiled: Arc::from(compiled),
                last_used: now,
            },
        );
        inner.bytes += size;
        while inner.bytes > self.max_bytes {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            if let Some(entry) = inner.entries.remove(&oldest) {
                inner.bytes -= oldest.len() + entry.compiled.len();
            }
        }
    }

    /// Records that `source`'s compiled code could not be had (it does not compile, it is too
    /// large, or the run that compiles it failed): later calls compile it without asking.
    pub fn decline(&self, source: &str) {
        let seen_hash = self.hasher.hash_one(source);
        let mut inner = self.lock();
        inner.seen.remove(&seen_hash);
        if inner.declined.len() >= MAX_SEEN {
            inner.declined.clear();
        }
        inner.declined.insert(seen_hash);
    }

    /// How many lookups found compiled code.
    pub fn hits(&self) -> u64 {
        self.lock().hits
    }

    /// Bytes held (sources and compiled code).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_compiled_once_then_asked_for_then_given() {
        let cache = CodeCache::default();
        assert_eq!(cache.lookup("def f(): pass"), CodeLookup::Compile);
        assert_eq!(
            cache.lookup("def f(): pass"),
            CodeLookup::CompileAndHandBack
        );
        cache.insert("def f(): pass", b"code".to_vec());
        assert_eq!(
            cache.lookup("def f(): pass"),
            CodeLookup::Compiled(Arc::from(&b"code"[..]))
        );
        // Another source, however similar, is another key.
        assert_eq!(cache.lookup("def f(): pass "), CodeLookup::Compile);
        assert_eq!(cache.hits(), 1);
    }

    /// A source whose compiled code could not be had, or that could not make an entry, is
    /// not asked for again: asking costs a run of its own at every call.
    #[test]
    fn sources_that_cannot_be_cached_are_not_asked_for_again() {
        let cache = CodeCache::default();
        for _ in 0..2 {
            cache.lookup("broken(");
        }
        cache.decline("broken(");
        for _ in 0..3 {
            assert_eq!(cache.lookup("broken("), CodeLookup::Compile);
        }
        let huge = "x".repeat(MAX_ENTRY_BYTES);
        for _ in 0..3 {
            assert_eq!(cache.lookup(&huge), CodeLookup::Compile);
        }
        cache.lookup("big");
        assert_eq!(cache.lookup("big"), CodeLookup::CompileAndHandBack);
        cache.insert("big", vec![0; MAX_ENTRY_BYTES]);
        assert_eq!(cache.lookup("big"), CodeLookup::Compile);
    }

    #[test]
    fn the_least_recently_used_entries_go_first_and_the_bytes_stay_under_the_budget() {
        // Each entry is 10 bytes: "src{n}" (4) + 6.
        let cache = CodeCache::new(30);
        for n in 0..3 {
            cache.insert(&format!("src{n}"), b"012345".to_vec());
        }
        assert_eq!(cache.bytes(), 30);
        // Using src0 makes src1 the least recently used.
        assert!(matches!(cache.lookup("src0"), CodeLookup::Compiled(_)));
        cache.insert("src3", b"012345".to_vec());
        assert_eq!(cache.bytes(), 30);
        assert!(!matches!(cache.lookup("src1"), CodeLookup::Compiled(_)));
        for kept in ["src0", "src2", "src3"] {
            assert!(
                matches!(cache.lookup(kept), CodeLookup::Compiled(_)),
                "{kept}"
            );
        }
        // Many distinct entries never hold more than the budget.
        for n in 0..1000 {
            cache.insert(&format!("s{n:03}"), b"0123456".to_vec());
            assert!(cache.bytes() <= 30);
        }
    }

    #[test]
    fn an_entry_over_the_entry_limit_is_not_kept() {
        let cache = CodeCache::new(2 * MAX_ENTRY_BYTES);
        cache.insert("big", vec![b'x'; MAX_ENTRY_BYTES]);
        assert_eq!(cache.bytes(), 0);
        assert!(!matches!(cache.lookup("big"), CodeLookup::Compiled(_)));
    }

    #[test]
    fn the_record_of_sources_seen_once_is_bounded() {
        let cache = CodeCache::default();
        for n in 0..(MAX_SEEN + 10) {
            assert_eq!(cache.lookup(&n.to_string()), CodeLookup::Compile);
        }
        assert!(cache.lock().seen.len() <= MAX_SEEN);
    }
}
