//! The result cache of function calls (`[cache]` in `zeval.toml`), over `zeval-cache`.
//!
//! A call is looked up before it is orchestrated and its answer stored after, keyed by:
//!
//! - the call in canonical form (key order and canonical-vs-normal input do not matter);
//! - its **access scope**: `open` (no policy: `calls = "open"`, or a user's call) or
//!   `approved` (an anonymous call under `calls = "approved"`), so an answer computed with
//!   unapproved implementations never reaches a caller whose policy would refuse them;
//! - `doValidate`, and this program's version (built-ins are part of the program, so the
//!   catalogue's objects are left out of the dependencies: no write can change them);
//! - the generation of every stored object the evaluation read: every write through the
//!   repository (`PUT`, `POST`, approvals) bumps the written object's generation (in Redis
//!   when configured, so every node sees it).
//!
//! Kept: successes for `success_ttl_seconds` (default 30 days, as Wikifunctions' month),
//! errors (timeouts, evaluator failures, every Z5: zeval cannot tell a transient error from a
//! lasting one) for `failure_ttl_seconds` (default 60). Never kept: answers that ran a
//! nondeterministic built-in, answers that depend on the load or on the caller's other
//! requests (`zeval_orchestrator::Trace::depends_on_load`: a Z558 that says the load stopped
//! the code, a client's calls from code refused), calls that read a function listed in
//! `uncacheable`, answers larger than `max_value_bytes`, entries with more than
//! `max_dependencies` objects.
//!
//! A cached answer says so in its metadata: `functionCallCachedOn` (when it was computed,
//! RFC 3339, Wikifunctions' name) and `cacheKey`. A request bypasses the lookup with
//! `"bypassCache": true` in its body or `Cache-Control: no-cache`; its fresh answer replaces
//! the cached one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use zeval_cache::{Cached, CallKey, Entry, Limits, Lookup, RedisCache, RedisSettings, ResultCache};
use zeval_orchestrator::{Outcome, Trace};
use zeval_zobject::Value;
use zeval_zobject::build::{set_envelope_metadata, z6};

use crate::config::CacheSettings;
use crate::metrics::{Metrics, Sample};

/// How Redis is skipped after it failed: calls go uncached for this long before it is
/// tried again.
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How one call uses the cache, and what else of its request the call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUse {
    /// The access scope: `"open"` or `"approved"` (see the module doc).
    pub scope: &'static str,
    /// Skip the lookup. The fresh answer is stored only when it is a success: any caller
    /// may ask to bypass, and a failure it met (a timeout while the service was saturated)
    /// would otherwise replace a good answer for every caller.
    pub bypass: bool,
    /// A deadline shorter than the configured one (a call run in the reserve,
    /// [`crate::limits::ReservedTime`]). Only a successful answer of such a call is stored:
    /// a timeout it met would say nothing about the call under the usual deadline.
    pub timeout: Option<std::time::Duration>,
    /// Who sent the call ([`crate::limits::ClientKey`]), for the limits counted per client
    /// while it runs (`zeval_orchestrator::CallOptions::client`); not part of the cache key.
    pub client: Option<std::sync::Arc<str>>,
}

/// The server's result cache.
pub struct CallCache {
    cache: ResultCache,
    success_ttl: Duration,
    failure_ttl: Duration,
    uncacheable: HashSet<String>,
}

impl CallCache {
    /// The cache `settings` describe, or `None` when it is off. `on_remote_write` is told of
    /// objects another node wrote (the server drops them from its object cache).
    pub fn from_settings(
        settings: &CacheSettings,
        on_remote_write: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Option<Arc<CallCache>>, zeval_cache::CacheError> {
        if !settings.enabled {
            return Ok(None);
        }
        let limits = Limits {
            max_value_bytes: settings.max_value_bytes,
            max_dependencies: settings.max_dependencies,
        };
        let success_ttl = Duration::from_secs(settings.success_ttl_seconds);
        let cache = match settings.redis_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => {
                let backend = RedisCache::new(
                    RedisSettings {
                        url: url.to_owned(),
                        timeout: Duration::from_millis(settings.redis_timeout_ms.max(1)),
                        retry_after: REDIS_RETRY_AFTER,
                        dependencies_ttl: success_ttl,
                    },
                    Some(on_remote_write),
                )?
                .with_read_limits(limits);
                backend.check_eviction_policy()?;
                ResultCache::new(Box::new(backend), limits, "redis")
            }
            None => ResultCache::in_process(settings.max_bytes, limits),
        };
        tracing::info!(
            backend = cache.name(),
            max_bytes = settings.max_bytes,
            "result cache on"
        );
        Ok(Some(Arc::new(CallCache {
            cache,
            success_ttl,
            failure_ttl: Duration::from_secs(settings.failure_ttl_seconds),
            uncacheable: settings.uncacheable.iter().cloned().collect(),
        })))
    }

    /// Records a write of `zid` (call after the write is visible to the orchestrator).
    pub fn bump(&self, zid: &str) {
        self.cache.bump(zid);
    }

    /// The underlying cache (for its counters).
    pub fn cache(&self) -> &ResultCache {
        &self.cache
    }

    /// Answers `zobject` from the cache, else by `orchestrate` (whose answer it stores when
    /// it may).
    pub fn call(
        &self,
        zobject: &Value,
        do_validate: bool,
        using: &CacheUse,
        orchestrate: impl FnOnce() -> (Value, Option<Trace>),
    ) -> Value {
        let marked = crate::narrow::called_function(zobject)
            .is_some_and(|zid| self.uncacheable.contains(zid));
        let validation = if do_validate {
            "validate"
        } else {
            "no-validate"
        };
        let context = [env!("CARGO_PKG_VERSION"), using.scope, validation];
        let key = match CallKey::for_call(zobject, &context) {
            Some(key) if !marked => key,
            _ => return orchestrate().0,
        };
        let ticket = if using.bypass {
            self.cache.ticket(&key)
        } else {
            match self.cache.lookup(&key) {
                Lookup::Hit(cached) => match annotated(&cached) {
                    Some(answer) => return answer,
                    None => self.cache.ticket(&key),
                },
                Lookup::Miss(ticket) => ticket,
            }
        };
        let computed_at_ms = zeval_cache::now_ms();
        let (answer, trace) = orchestrate();
        if let Some(trace) = trace
            && ((using.timeout.is_none() && !using.bypass)
                || matches!(trace.outcome, Outcome::Success))
        {
            self.keep(&ticket, &answer, &trace, computed_at_ms);
        }
        answer
    }

    fn keep(&self, ticket: &zeval_cache::Ticket, answer: &Value, trace: &Trace, at_ms: i64) {
        if !trace.cacheable()
            || trace
                .dependencies
                .iter()
                .any(|zid| self.uncacheable.contains(zid))
        {
            return;
        }
        let ttl = match trace.outcome {
            Outcome::Success => self.success_ttl,
            Outcome::Error | Outcome::Timeout => self.failure_ttl,
        };
        if ttl.is_zero() {
            return;
        }
        // The catalogue's objects cannot be written (the program's version in the key
        // covers them); only stored objects are dependencies worth a generation.
        let dependencies: Vec<String> = trace
            .dependencies
            .iter()
            .filter(|zid| zeval_catalogue::get(zid).is_none())
            .cloned()
            .collect();
        let Some(bytes) =
            zeval_zobject::json::to_vec_within(answer, self.cache.limits().max_value_bytes)
        else {
            self.cache.note_skipped();
            return;
        };
        let stored = self.cache.store(
            ticket,
            &Entry {
                dependencies: &dependencies,
                bytes: &bytes,
                computed_at_ms: at_ms,
                ttl,
            },
        );
        tracing::debug!(
            ?stored,
            dependencies = dependencies.len(),
            "result cache store"
        );
    }

    /// Adds the cache's counters to `/metrics`.
    pub fn add_metrics(self: &Arc<Self>, metrics: &Metrics) {
        let cache = self.clone();
        metrics.add_sampler(Box::new(move || {
            let s = cache.cache.stats();
            let counter = |name, help, value: u64| Sample {
                name,
                kind: "counter",
                help,
                value: value as f64,
            };
            let gauge = |name, help, value: u64| Sample {
                name,
                kind: "gauge",
                help,
                value: value as f64,
            };
            vec![
                counter(
                    "zeval_result_cache_hits_total",
                    "Calls answered from the result cache.",
                    s.hits,
                ),
                counter(
                    "zeval_result_cache_misses_total",
                    "Result cache lookups that found no valid answer.",
                    s.misses,
                ),
                counter(
                    "zeval_result_cache_errors_total",
                    "Result cache backend failures (the call went on uncached).",
                    s.errors,
                ),
                counter(
                    "zeval_result_cache_stores_total",
                    "Answers stored in the result cache.",
                    s.stores,
                ),
                counter(
                    "zeval_result_cache_skipped_total",
                    "Answers not stored: too large, too many dependencies, or a racing write.",
                    s.skipped,
                ),
                counter(
                    "zeval_result_cache_invalidations_total",
                    "Object writes that invalidated cached answers.",
                    s.bumps,
                ),
                gauge(
                    "zeval_result_cache_entries",
                    "Answers held in this process's result cache.",
                    s.entries,
                ),
                gauge(
                    "zeval_result_cache_bytes",
                    "Bytes held in this process's result cache.",
                    s.bytes,
                ),
            ]
        }));
    }
}

/// The most JSON values a cached answer is read back with. An entry is at most
/// `max_value_bytes` (1 MiB), which as `[0,0,…]` is half a million values, some 40 MiB once
/// parsed, on every lookup; whoever can write the shared Redis could plant such entries. An
/// honest answer with more values is computed again.
pub const MAX_CACHED_ANSWER_VALUES: usize = 256 * 1024;

/// The cached answer with `functionCallCachedOn` and `cacheKey` in its metadata; `None` when
/// the stored bytes do not parse, or hold more than [`MAX_CACHED_ANSWER_VALUES`] values (then
/// the call is computed again).
fn annotated(cached: &Cached) -> Option<Value> {
    let text = std::str::from_utf8(&cached.bytes).ok()?;
    let mut z22 = zeval_zobject::json::parse_within_tokens(text, MAX_CACHED_ANSWER_VALUES).ok()?;
    let when = crate::backends::rfc3339(cached.computed_at_ms);
    add_metadata(&mut z22, "functionCallCachedOn", when);
    add_metadata(&mut z22, "cacheKey", cached.key.clone());
    Some(z22)
}

/// Adds a string entry to a Z22's metadata map, canonical (a benjamin array) or normal.
fn add_metadata(z22: &mut Value, key: &str, value: String) {
    if let Some(Value::Array(pairs)) = z22.get_mut("Z22K2").and_then(|m| m.get_mut("K1"))
        && let Some(pair_type) = pairs.first().cloned()
    {
        let mut pair = zeval_zobject::Map::new();
        pair.insert("Z1K1".into(), pair_type);
        pair.insert("K1".into(), Value::String(key.into()));
        pair.insert("K2".into(), Value::String(value));
        pairs.push(Value::Object(pair));
        return;
    }
    set_envelope_metadata(z22, key, z6(value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> CacheSettings {
        CacheSettings::default()
    }

    fn trace(deps: &[&str], outcome: Outcome) -> Option<Trace> {
        Some(Trace {
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            outcome,
            nondeterministic: None,
            depends_on_load: false,
            stopped_by_load: false,
        })
    }

    fn cache(settings: &CacheSettings) -> Arc<CallCache> {
        CallCache::from_settings(settings, Box::new(|_| {}))
            .unwrap()
            .unwrap()
    }

    fn answer(text: &str) -> Value {
        json!({"Z1K1": "Z22", "Z22K1": text, "Z22K2": {
            "Z1K1": {"Z1K1": "Z7", "Z7K1": "Z883", "Z883K1": "Z6", "Z883K2": "Z1"},
            "K1": [{"Z1K1": "Z7", "Z7K1": "Z882", "Z882K1": "Z6", "Z882K2": "Z1"}]}})
    }

    const OPEN: CacheUse = CacheUse {
        scope: "open",
        bypass: false,
        timeout: None,
        client: None,
    };

    fn call() -> Value {
        json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "abc"})
    }

    #[test]
    fn the_second_call_is_answered_from_the_cache_with_its_metadata() {
        let c = cache(&settings());
        let first = c.call(&call(), false, &OPEN, || {
            (answer("one"), trace(&["Z10000", "Z6"], Outcome::Success))
        });
        assert_eq!(first["Z22K1"], "one");
        let second = c.call(&call(), false, &OPEN, || panic!("not from the cache"));
        assert_eq!(second["Z22K1"], "one");
        let meta = &second["Z22K2"];
        let on = zeval_zobject::build::get_metadata(meta, "functionCallCachedOn").unwrap();
        assert!(on.as_str().unwrap().ends_with('Z'), "{on}");
        let key = zeval_zobject::build::get_metadata(meta, "cacheKey").unwrap();
        assert_eq!(key.as_str().unwrap().len(), 64);
        // Another scope, another validation flag: computed again.
        let approved = CacheUse {
            scope: "approved",
            ..OPEN
        };
        let other = c.call(&call(), false, &approved, || (answer("two"), None));
        assert_eq!(other["Z22K1"], "two");
        let validated = c.call(&call(), true, &OPEN, || (answer("three"), None));
        assert_eq!(validated["Z22K1"], "three");
        // A write of the dependency: computed again.
        c.bump("Z10000");
        let after = c.call(&call(), false, &OPEN, || (answer("four"), None));
        assert_eq!(after["Z22K1"], "four");
    }

    #[test]
    fn bypass_uncacheable_and_nondeterministic_are_computed() {
        let mut s = settings();
        s.uncacheable = vec!["Z10001".into()];
        let c = cache(&s);
        c.call(&call(), false, &OPEN, || {
            (answer("one"), trace(&["Z10000"], Outcome::Success))
        });
        let bypass = CacheUse {
            bypass: true,
            ..OPEN
        };
        let fresh = c.call(&call(), false, &bypass, || {
            (answer("fresh"), trace(&["Z10000"], Outcome::Success))
        });
        assert_eq!(fresh["Z22K1"], "fresh");
        // The bypassing call's answer replaced the old one.
        let again = c.call(&call(), false, &OPEN, || panic!("cached"));
        assert_eq!(again["Z22K1"], "fresh");
        // A call that read an uncacheable function deep down.
        let deep = json!({"Z1K1": "Z7", "Z7K1": "Z10002", "Z10002K1": "x"});
        for n in 0..2 {
            let a = c.call(&deep, false, &OPEN, || {
                (answer(&n.to_string()), trace(&["Z10001"], Outcome::Success))
            });
            assert_eq!(a["Z22K1"], n.to_string());
        }
        // A call of an uncacheable function.
        let marked = json!({"Z1K1": "Z7", "Z7K1": "Z10001", "Z10001K1": "x"});
        for n in 0..2 {
            let a = c.call(&marked, false, &OPEN, || {
                (answer(&n.to_string()), trace(&[], Outcome::Success))
            });
            assert_eq!(a["Z22K1"], n.to_string());
        }
        // A nondeterministic built-in ran.
        let random = json!({"Z1K1": "Z7", "Z7K1": "Z10003", "Z10003K1": "x"});
        for n in 0..2 {
            let a = c.call(&random, false, &OPEN, || {
                let mut t = trace(&[], Outcome::Success);
                if let Some(t) = &mut t {
                    t.nondeterministic = Some("Z999".into());
                }
                (answer(&n.to_string()), t)
            });
            assert_eq!(a["Z22K1"], n.to_string());
        }
        // The answer depended on the load (a client's calls from code refused, no executor
        // free): kept, one client's load would answer the others' calls.
        let loaded = json!({"Z1K1": "Z7", "Z7K1": "Z10004", "Z10004K1": "x"});
        for n in 0..2 {
            let a = c.call(&loaded, false, &OPEN, || {
                let mut t = trace(&[], Outcome::Error);
                if let Some(t) = &mut t {
                    t.depends_on_load = true;
                }
                (answer(&n.to_string()), t)
            });
            assert_eq!(a["Z22K1"], n.to_string());
        }
    }

    /// A call run in the reserve, with a shorter deadline: its timeout (or any error) is not
    /// kept, or every caller would get it for `failure_ttl_seconds`; its success is.
    #[test]
    fn a_call_with_a_shorter_deadline_keeps_only_its_success() {
        let c = cache(&settings());
        let reserved = CacheUse {
            timeout: Some(Duration::from_secs(1)),
            ..OPEN
        };
        for outcome in [Outcome::Timeout, Outcome::Error] {
            c.call(&call(), false, &reserved, || {
                (answer("cut"), trace(&["Z10000"], outcome))
            });
            let next = c.call(&call(), false, &OPEN, || (answer("full"), None));
            assert_eq!(next["Z22K1"], "full", "{outcome:?} was kept");
        }
        c.call(&call(), false, &reserved, || {
            (answer("quick"), trace(&["Z10000"], Outcome::Success))
        });
        let next = c.call(&call(), false, &OPEN, || panic!("not from the cache"));
        assert_eq!(next["Z22K1"], "quick");
    }

    /// A call that bypasses the cache stores its success, never its failure: any caller may
    /// bypass, and could otherwise replace a good answer with a timeout met under load.
    #[test]
    fn a_call_that_bypasses_the_cache_keeps_only_its_success() {
        let c = cache(&settings());
        let bypass = CacheUse {
            bypass: true,
            ..OPEN
        };
        c.call(&call(), false, &OPEN, || {
            (answer("good"), trace(&["Z10000"], Outcome::Success))
        });
        for outcome in [Outcome::Timeout, Outcome::Error] {
            let fresh = c.call(&call(), false, &bypass, || {
                (answer("failed"), trace(&["Z10000"], outcome))
            });
            assert_eq!(fresh["Z22K1"], "failed");
            let next = c.call(&call(), false, &OPEN, || panic!("not from the cache"));
            assert_eq!(
                next["Z22K1"], "good",
                "{outcome:?} replaced the good answer"
            );
        }
        c.call(&call(), false, &bypass, || {
            (answer("better"), trace(&["Z10000"], Outcome::Success))
        });
        let next = c.call(&call(), false, &OPEN, || panic!("not from the cache"));
        assert_eq!(next["Z22K1"], "better");
    }

    #[test]
    fn a_large_answer_is_not_cached_and_not_serialized_past_the_bound() {
        let mut s = settings();
        s.max_value_bytes = 1000;
        let c = cache(&s);
        let big = "x".repeat(5000);
        for n in 0..2 {
            let a = c.call(&call(), false, &OPEN, || {
                (answer(&format!("{n}{big}")), trace(&[], Outcome::Success))
            });
            assert!(a["Z22K1"].as_str().unwrap().starts_with(&n.to_string()));
        }
        assert_eq!(c.cache().stats().skipped, 2);
        assert!(zeval_zobject::json::to_vec_within(&json!("x".repeat(2000)), 1000).is_none());
        assert_eq!(
            zeval_zobject::json::to_vec_within(&json!("ab"), 1000).unwrap(),
            b"\"ab\""
        );
    }

    /// An entry that someone wrote into the shared Redis, within `max_value_bytes` but of
    /// half a million values, is not parsed: the call is computed again. It was parsed on
    /// every lookup (some 40 MiB each).
    #[test]
    fn a_cached_answer_of_too_many_values_is_computed_again() {
        let c = cache(&settings());
        let key = CallKey::for_call(
            &call(),
            &[env!("CARGO_PKG_VERSION"), OPEN.scope, "no-validate"],
        )
        .unwrap();
        let values = vec!["0"; 300_000].join(",");
        let forged = format!(r#"{{"Z1K1": "Z22", "Z22K1": [{values}], "Z22K2": "Z24"}}"#);
        assert!(forged.len() < settings().max_value_bytes);
        let ticket = c.cache().ticket(&key);
        let stored = c.cache().store(
            &ticket,
            &Entry {
                dependencies: &[],
                bytes: forged.as_bytes(),
                computed_at_ms: zeval_cache::now_ms(),
                ttl: Duration::from_secs(60),
            },
        );
        assert!(matches!(stored, zeval_cache::Stored::Yes), "{stored:?}");
        let answer = c.call(&call(), false, &OPEN, || (answer("fresh"), None));
        assert_eq!(answer["Z22K1"], "fresh");
    }

    #[test]
    fn errors_are_kept_briefly() {
        let mut s = settings();
        s.failure_ttl_seconds = 0;
        let c = cache(&s);
        for n in 0..2 {
            let a = c.call(&call(), false, &OPEN, || {
                (answer(&n.to_string()), trace(&[], Outcome::Timeout))
            });
            assert_eq!(
                a["Z22K1"],
                n.to_string(),
                "a zero failure TTL keeps nothing"
            );
        }
    }

    #[test]
    fn metadata_is_added_to_normal_and_void_metadata_too() {
        let mut normal = json!({"Z1K1": "Z22", "Z22K1": "x", "Z22K2": {"Z1K1": "Z24"}});
        add_metadata(&mut normal, "cacheKey", "k".into());
        let meta = &normal["Z22K2"];
        assert_eq!(
            zeval_zobject::build::get_metadata(meta, "cacheKey").and_then(|v| v.get("Z6K1")),
            Some(&json!("k"))
        );
    }
}
