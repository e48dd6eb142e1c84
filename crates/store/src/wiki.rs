//! [`WikiSource`]: objects from a MediaWiki API with WikiLambda
//! (`?action=wikilambda_fetch&format=json&zids=A|B`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use zeval_zobject::Value;
use zeval_zobject::ident::is_zid;

use crate::{ObjectSource, StoreError};

/// How long one request may take, connecting included, unless configured otherwise.
pub const DEFAULT_WIKI_TIMEOUT: Duration = Duration::from_secs(10);

/// The most ZIDs asked for in one request. MediaWiki caps multi-value parameters at 50 for
/// ordinary clients (`apihighlimits` raises it to 500 for bots), so more ZIDs are split into
/// several requests, made one after the other.
pub const MAX_ZIDS_PER_REQUEST: usize = 50;

/// The largest response body read; a bigger one is a fetch error. 50 objects of a few
/// hundred kB each fit.
pub const MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// The most JSON values one answer may hold: its own and those of every object in it
/// together, counted before each is parsed. The body's byte limit alone let one answer of
/// 32 MiB of `[0,0,…]`, some 32 KiB on the wire with gzip, become about 17 million values
/// (2 GiB) in the host, for any call naming a ZID the store lacks. A full batch of 50
/// objects of 20,000 values each fits (the largest object in Wikifunctions' own built-in
/// definitions has some 3,400); at most about 128 MiB of values per answer.
pub const MAX_ANSWER_VALUES: usize = 1 << 20;

/// How long a ZID the wiki did not have is remembered as missing, unless configured
/// otherwise ([`WikiSource::with_missing_ttl`]): asking again within that time answers
/// "missing" without a request, so a flood of made-up ZIDs does not become a flood of wiki
/// requests. Short, because a ZID created on the wiki meanwhile is found only after it.
pub const DEFAULT_MISSING_TTL: Duration = Duration::from_secs(60);

/// The most ZIDs remembered as missing; past it the oldest are forgotten first (so the
/// memory held is bounded: a ZID is at most a few dozen bytes).
pub const MAX_MISSING_ENTRIES: usize = 10_000;

/// Fetches canonical Z2s from a wiki over HTTP (blocking).
///
/// A ZID the wiki does not return is absent from the answer (the orchestrator turns that
/// into Z504, as the original does), including when the wiki answers with an error object
/// instead of objects. Transport failures, non-200 answers, and bodies that are not JSON are
/// [`StoreError::Fetch`]. Only well-formed ZIDs are sent; others are simply absent.
///
/// ZIDs the wiki answered without are remembered as missing for [`DEFAULT_MISSING_TTL`] (at
/// most [`MAX_MISSING_ENTRIES`] of them). Only a plain answer counts: when the wiki answers
/// an error object for a batch of several ZIDs, it does not say which of them is missing,
/// so none is remembered. Clones share the memory.
#[derive(Debug, Clone)]
pub struct WikiSource {
    api_url: String,
    agent: ureq::Agent,
    timeout: Duration,
    missing: Arc<Mutex<MissingZids>>,
}

/// ZIDs the wiki did not have, each until it expires; expiry order is insertion order since
/// every entry lives equally long.
#[derive(Debug)]
struct MissingZids {
    ttl: Duration,
    until: HashMap<String, Instant>,
    /// (ZID, expiry), oldest first. A ZID remembered again appears twice; only the entry
    /// matching `until` counts.
    order: VecDeque<(String, Instant)>,
}

impl MissingZids {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            until: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, zid: &str, now: Instant) -> bool {
        self.until.get(zid).is_some_and(|until| *until > now)
    }

    fn remember(&mut self, zid: &str, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let until = now + self.ttl;
        self.until.insert(zid.to_string(), until);
        self.order.push_back((zid.to_string(), until));
        while let Some((oldest, oldest_until)) = self.order.front() {
            let expired = *oldest_until <= now;
            if !expired && self.until.len() <= MAX_MISSING_ENTRIES {
                break;
            }
            if self.until.get(oldest) == Some(oldest_until) {
                self.until.remove(oldest);
            }
            self.order.pop_front();
        }
    }
}

impl WikiSource {
    /// A source for the `api.php` at `api_url` (e.g. `https://www.wikifunctions.org/w/api.php`)
    /// with [`DEFAULT_WIKI_TIMEOUT`].
    pub fn new(api_url: impl Into<String>) -> Self {
        Self::with_timeout(api_url, DEFAULT_WIKI_TIMEOUT)
    }

    /// A source whose every request gives up after `timeout` (or sooner, at the deadline
    /// given to [`ObjectSource::fetch_before`]).
    pub fn with_timeout(api_url: impl Into<String>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("zeval/", env!("CARGO_PKG_VERSION")))
            // A redirect is answered as it is (a fetch error): followed, it would send the
            // request, from inside the cluster, wherever the answer names, and from
            // `https://` to `http://`.
            .max_redirects(0)
            .build();
        Self {
            api_url: api_url.into(),
            // The wiki's host is a name: looked up on the process's lookup threads, not on a
            // thread spawned and detached per new connection (see `zeval_resolver`).
            agent: zeval_resolver::agent(config),
            timeout,
            missing: Arc::new(Mutex::new(MissingZids::new(DEFAULT_MISSING_TTL))),
        }
    }

    /// Remembers missing ZIDs for `ttl` instead of [`DEFAULT_MISSING_TTL`] (zero: not at all).
    /// Starts with an empty memory.
    #[must_use]
    pub fn with_missing_ttl(mut self, ttl: Duration) -> Self {
        self.missing = Arc::new(Mutex::new(MissingZids::new(ttl)));
        self
    }

    fn missing(&self) -> MutexGuard<'_, MissingZids> {
        // Each method leaves the memory consistent, so a panic elsewhere cannot break it.
        self.missing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The API URL requests go to.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Asks for one batch, within `timeout`, adding what the wiki has to `found`.
    fn fetch_batch(
        &self,
        zids: &[&str],
        timeout: Duration,
        found: &mut HashMap<String, Value>,
    ) -> Result<(), StoreError> {
        let joined = zids.join("|");
        let fail = |message: String| StoreError::Fetch {
            zids: joined.clone(),
            message,
        };
        tracing::debug!(url = %self.api_url, zids = %joined, "fetching from the wiki");
        let mut response = self
            .agent
            .get(&self.api_url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .query("action", "wikilambda_fetch")
            .query("format", "json")
            .query("zids", &joined)
            .call()
            .map_err(|e| fail(format!("request to {} failed: {e}", self.api_url)))?;
        let status = response.status();
        if status != 200 {
            return Err(fail(format!("{} answered HTTP {status}", self.api_url)));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| {
                fail(format!(
                    "reading the answer of {} failed: {e}",
                    self.api_url
                ))
            })?;
        let mut values_left = MAX_ANSWER_VALUES;
        let answer = parse_counted(&body, &mut values_left)
            .map_err(|e| fail(format!("the answer could not be read: {e}")))?;
        let Value::Object(entries) = answer else {
            return Err(fail("the answer is not a JSON object".into()));
        };
        let error = entries.get("error");
        if let Some(error) = error {
            tracing::debug!(%error, "the wiki answered with an error; its ZIDs count as missing");
        }
        // An error answer for several ZIDs does not say which one is missing.
        let remember_missing = error.is_none() || zids.len() == 1;
        let now = Instant::now();
        for zid in zids {
            let Some(text) = entries
                .get(*zid)
                .and_then(|e| e.get("wikilambda_fetch"))
                .and_then(Value::as_str)
            else {
                if remember_missing {
                    self.missing().remember(zid, now);
                }
                continue;
            };
            let object = parse_counted(text, &mut values_left)
                .map_err(|e| fail(format!("the object of {zid} could not be read: {e}")))?;
            // As deep as the store takes its own objects, no deeper: until 2026-12-07 the
            // wiki's were taken to the parser's limit, ten times that. One that is deeper is
            // missing here, as the store would refuse it; the others of the batch are not.
            if zeval_zobject::depth::exceeds(&object, crate::MAX_OBJECT_DEPTH) {
                zeval_zobject::depth::drop_iteratively(object);
                tracing::warn!(
                    %zid,
                    "the wiki's object nests deeper than {} levels; taken as missing",
                    crate::MAX_OBJECT_DEPTH
                );
                if remember_missing {
                    self.missing().remember(zid, now);
                }
                continue;
            }
            found.insert(zid.to_string(), object);
        }
        Ok(())
    }
}

/// Parses `text` if it holds at most `values_left` JSON values ([`MAX_ANSWER_VALUES`]),
/// counted before anything is built, and takes them from `values_left`.
fn parse_counted(
    text: &str,
    values_left: &mut usize,
) -> Result<Value, zeval_zobject::json::JsonError> {
    let values = zeval_zobject::json::structural_tokens(text.as_bytes(), *values_left);
    if values > *values_left {
        return Err(zeval_zobject::json::JsonError::TooLarge {
            max: MAX_ANSWER_VALUES,
        });
    }
    *values_left -= values;
    zeval_zobject::json::parse(text)
}

impl ObjectSource for WikiSource {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        self.fetch_before(zids, None)
    }

    /// Each batch's request is bounded by the time left (and by the source's own timeout);
    /// once none is left, the ZIDs still wanted are [`StoreError::DeadlineExceeded`] and no
    /// request is made.
    fn fetch_before(
        &self,
        zids: &[String],
        deadline: Option<Instant>,
    ) -> Result<HashMap<String, Value>, StoreError> {
        let mut wanted: Vec<&str> = Vec::with_capacity(zids.len());
        {
            let missing = self.missing();
            let now = Instant::now();
            let mut seen = std::collections::HashSet::with_capacity(zids.len());
            for zid in zids {
                if is_zid(zid) && seen.insert(zid.as_str()) && !missing.contains(zid, now) {
                    wanted.push(zid);
                }
            }
        }
        let mut found = HashMap::new();
        for (index, batch) in wanted.chunks(MAX_ZIDS_PER_REQUEST).enumerate() {
            let timeout = match deadline {
                None => self.timeout,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let unasked = &wanted[index * MAX_ZIDS_PER_REQUEST..];
                        return Err(StoreError::DeadlineExceeded {
                            zids: unasked.join("|"),
                        });
                    }
                    left.min(self.timeout)
                }
            };
            self.fetch_batch(batch, timeout, &mut found)?;
        }
        Ok(found)
    }
}
