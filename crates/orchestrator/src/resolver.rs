//! Dereferencing ZIDs for one request (the original's `ReferenceResolver`, spec §2.3).
//!
//! Order: the built-in preload map (the catalogue's objects the original preloads, §2.6),
//! then this request's cache, then one fetch from the [`ObjectSource`] for the ZID. A ZID
//! the source does not have is a Z504 (cached); a failing source is what the original
//! reports as a thrown fetch error.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, RwLock};
use std::time::Instant;

use zeval_store::{ObjectSource, StoreError};
use zeval_zobject::Value;
use zeval_zobject::build::{list_items, obj, ref_zid, z6};
use zeval_zobject::error::z5;

use crate::engine::{Fail, R};
use crate::node::Node;

/// The longest ZID an object can have: `Z` and the 20 digits of a `u64` (stores number
/// theirs lower still). A reference built at run time (`Z808`, a `Z9` made from a string)
/// can name any string the budget allows, megabytes long.
const MAX_ZID_CHARS: usize = 21;

/// Whether `zid` could name an object: anything else is missing without a fetch, and is
/// neither kept in the request's cache nor recorded as read. Until 2026-12-06 each string was
/// kept, twice (the key and its Z504), by no budget: a recursion naming ever longer strings
/// held gigabytes by its deadline.
fn could_name_an_object(zid: &str) -> bool {
    zid.len() <= MAX_ZID_CHARS && zeval_zobject::ident::is_zid(zid)
}

/// The Z504 of a name that is no ZID, quoting at most [`crate::engine::QUOTE_CHARS`] of it.
fn no_such_object(name: &str) -> Value {
    let quoted = match name.char_indices().nth(crate::engine::QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    };
    z5("Z504", [z6(quoted)])
}

/// The normalized preload objects, built once per process on first use.
static PRELOADED: LazyLock<RwLock<HashMap<String, Value>>> = LazyLock::new(Default::default);

/// Why a dereference failed, as the original distinguishes them.
pub(crate) enum DerefError {
    /// The ZID does not exist: a Z504.
    Missing(Value),
    /// The source failed; the text is what the original's fetch error says.
    Fetch(String),
    /// The request's deadline passed before the source answered.
    Timeout,
}

/// The per-request resolver and cache.
pub(crate) struct Resolver<'s> {
    source: &'s dyn ObjectSource,
    cache: RefCell<HashMap<String, Result<Node, Value>>>,
    /// ZIDs read past `cache` (Z828's whole definitions, nested Z823 requests): with the
    /// keys of `cache`, every object this request read (see [`crate::trace`]).
    read_past_cache: RefCell<HashSet<String>>,
    /// Fetches (from the wiki, say) give up here: they count against the request's time.
    deadline: Instant,
}

impl<'s> Resolver<'s> {
    pub(crate) fn new(source: &'s dyn ObjectSource, deadline: Instant) -> Self {
        Resolver {
            source,
            cache: RefCell::new(HashMap::new()),
            read_past_cache: RefCell::new(HashSet::new()),
            deadline,
        }
    }

    /// One fetch from the source, bounded by the request's deadline, recorded as read.
    pub(crate) fn fetch_one(&self, zid: &str) -> Result<Option<Value>, DerefError> {
        if !could_name_an_object(zid) {
            return Ok(None);
        }
        self.record(zid);
        self.fetch_uncached(zid)
    }

    /// Records `zid` as read by this request (for objects read without [`Self::lookup`]).
    pub(crate) fn record(&self, zid: &str) {
        if could_name_an_object(zid)
            && !self.cache.borrow().contains_key(zid)
            && !self.read_past_cache.borrow().contains(zid)
        {
            self.read_past_cache.borrow_mut().insert(zid.to_owned());
        }
    }

    /// Every ZID this request read, sorted, each once.
    pub(crate) fn dependencies(&self) -> Vec<String> {
        let cache = self.cache.borrow();
        let past = self.read_past_cache.borrow();
        let mut all: Vec<String> = cache.keys().chain(past.iter()).cloned().collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    fn fetch_uncached(&self, zid: &str) -> Result<Option<Value>, DerefError> {
        // A source copies and drops what it fetches (the object caches do), each recursing
        // once per level: a stored object is up to 1,000 levels deep, a wiki's up to the
        // parser's 10,000, and a fetch may be asked for deep in a recursion. A debug server
        // overflowed reading an object 996 levels deep at the bottom of 19,000 levels.
        let fetched =
            crate::budget::with_room_for_json_levels(zeval_zobject::json::MAX_DEPTH, || {
                self.source
                    .fetch_before(&[zid.to_string()], Some(self.deadline))
            });
        match fetched {
            Ok(mut fetched) => Ok(fetched.remove(zid)),
            Err(StoreError::DeadlineExceeded { .. }) => Err(DerefError::Timeout),
            Err(e) if Instant::now() >= self.deadline => {
                tracing::debug!(%zid, error = %e, "a fetch failed at the deadline");
                Err(DerefError::Timeout)
            }
            Err(e) => Err(DerefError::Fetch(fetch_message(&e))),
        }
    }

    /// The persistent object (a normal Z2 node) for `zid`.
    pub(crate) fn dereference(&self, zid: &str) -> R<Node> {
        match self.lookup(zid) {
            Ok(node) => Ok(node),
            Err(DerefError::Missing(z5)) => Err(Fail::Error(z5)),
            Err(DerefError::Fetch(message)) => Err(Fail::Crash(format!("FetchError: {message}"))),
            Err(DerefError::Timeout) => Err(Fail::Timeout),
        }
    }

    /// Like [`Self::dereference`], keeping the two failure kinds apart (for Z828).
    pub(crate) fn lookup(&self, zid: &str) -> Result<Node, DerefError> {
        if !could_name_an_object(zid) {
            return Err(DerefError::Missing(no_such_object(zid)));
        }
        if let Some(cached) = self.cache.borrow().get(zid) {
            return cached.clone().map_err(DerefError::Missing);
        }
        if let Some(node) = preloaded_node(zid) {
            self.cache
                .borrow_mut()
                .insert(zid.to_string(), Ok(node.clone()));
            return Ok(node);
        }
        let fetched = self.fetch_uncached(zid)?;
        let entry = match fetched {
            Some(z2) => node_of_stored(z2),
            None => Err(z5("Z504", [z6(zid)])),
        };
        self.cache
            .borrow_mut()
            .insert(zid.to_string(), entry.clone());
        entry.map_err(DerefError::Missing)
    }
}

/// The nodes of the normal form of `z2`, a persistent object as its source gave it (or the
/// Z5 that refuses it). Both JSON forms are then dropped without recursing: an object is
/// first read where a call first refers to it, which may be deep in a recursion, on what is
/// left of a stack segment. The object as given is as deep as its source's parser allows (a
/// wiki's up to 10,000 levels); a list is 2 levels deep as stored and a chain of cells as deep
/// as it is long in normal form: a stored list of 24,000 strings, dropped recursively there,
/// overflowed the stack.
pub(crate) fn node_of_stored(z2: Value) -> Result<Node, Value> {
    let normal = zeval_zobject::normalize(&z2);
    zeval_zobject::depth::drop_iteratively(z2);
    let normal = normal?;
    let node = Node::from_json(&normal, &None);
    zeval_zobject::depth::drop_iteratively(normal);
    Ok(node)
}

fn fetch_message(e: &StoreError) -> String {
    match e {
        StoreError::Fetch { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

thread_local! {
    /// The preloaded objects as nodes, built once per thread: nodes are immutable and carry
    /// no scope, so requests on the same thread can share them, and building them again
    /// (a clone of the JSON, then every node) was a fifth of a small request. At most the
    /// catalogue's preloaded objects (a few hundred, under a MiB of nodes) per thread.
    static PRELOADED_NODES: RefCell<HashMap<String, Node>> = RefCell::new(HashMap::new());
}

/// [`preloaded`] as a node, from this thread's cache.
fn preloaded_node(zid: &str) -> Option<Node> {
    if !zeval_catalogue::is_preloaded(zid) {
        return None;
    }
    let cached = PRELOADED_NODES
        .try_with(|nodes| nodes.borrow().get(zid).cloned())
        .ok()
        .flatten();
    if cached.is_some() {
        return cached;
    }
    let node = Node::from_json(&preloaded(zid)?, &None);
    let _ = PRELOADED_NODES.try_with(|nodes| {
        nodes.borrow_mut().insert(zid.to_owned(), node.clone());
    });
    Some(node)
}

/// The preload-map entry for `zid`: `{Z2K1: Z6(zid), Z2K2: normalized definition}` (no
/// `Z1K1`, as in the original), with a function's `Z8K4` references replaced by the
/// implementation objects.
pub(crate) fn preloaded(zid: &str) -> Option<Value> {
    if !zeval_catalogue::is_preloaded(zid) {
        return None;
    }
    if let Some(v) = PRELOADED.read().ok()?.get(zid) {
        return Some(v.clone());
    }
    let built = build_preloaded(zid)?;
    if let Ok(mut map) = PRELOADED.write() {
        map.insert(zid.to_string(), built.clone());
    }
    Some(built)
}

fn build_preloaded(zid: &str) -> Option<Value> {
    let z2 = zeval_catalogue::get(zid)?;
    let mut value = zeval_zobject::normalize(z2.get("Z2K2")?).ok()?;
    if let Some(impls) = value.get("Z8K4").and_then(list_items) {
        let inlined: Vec<Value> = impls
            .into_iter()
            .map(|item| match ref_zid(item).and_then(zeval_catalogue::get) {
                Some(impl_z2) => {
                    zeval_zobject::normalize(&impl_z2["Z2K2"]).unwrap_or_else(|_| item.clone())
                }
                None => item.clone(),
            })
            .collect();
        let item_type = value["Z8K4"]["Z1K1"]["Z881K1"].clone();
        value["Z8K4"] = zeval_zobject::build::typed_list(item_type, inlined);
    }
    Some(obj([("Z2K1", z6(zid)), ("Z2K2", value)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue's objects, as the store's first layer serves them.
    struct Catalogue;

    impl ObjectSource for Catalogue {
        fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
            Ok(zids
                .iter()
                .filter_map(|zid| Some((zid.clone(), zeval_catalogue::get(zid)?.clone())))
                .collect())
        }
    }

    /// A name that is no ZID is missing without a fetch, and the request keeps nothing of it:
    /// a megabyte name was kept twice (the cache's key and its Z504, which quoted it
    /// whole), and recorded as read.
    #[test]
    fn a_name_that_is_no_zid_is_missing_and_kept_nowhere() {
        let source = Catalogue;
        let resolver = Resolver::new(&source, Instant::now() + std::time::Duration::from_secs(10));
        let long_number = format!("Z{}", "1".repeat(1 << 20));
        for name in [long_number.as_str(), "Z0", "z802", "Z802 ", "not a zid"] {
            let Err(DerefError::Missing(z504)) = resolver.lookup(name) else {
                panic!("{:.40} was found", name);
            };
            assert_eq!(z504["Z5K1"]["Z9K1"], "Z504");
            assert!(
                z504.to_string().len() < 1_000,
                "quoted {} bytes",
                z504.to_string().len()
            );
            resolver.record(name);
            assert!(matches!(resolver.fetch_one(name), Ok(None)));
        }
        assert!(resolver.cache.borrow().is_empty());
        assert!(resolver.dependencies().is_empty());
        // A ZID is still looked up, kept and recorded.
        assert!(resolver.lookup("Z802").is_ok());
        assert!(matches!(
            resolver.lookup("Z99999"),
            Err(DerefError::Missing(_))
        ));
        assert_eq!(resolver.dependencies(), ["Z802", "Z99999"]);
    }
}
