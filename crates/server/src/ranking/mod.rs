//! Ranking implementations: the fastest one that passes its testers is tried first, learned
//! from tester runs and real calls, and a failing implementation falls through to the next.
//!
//! [`Ranking`] is the orchestrator's [`ImplementationSelector`] for every call this server
//! makes. It keeps, per implementation revision, the latest result of each tester (in the
//! store, written by the testers route and `zeval test`) and a running summary of real
//! calls (count, failures and a latency `sketch::Sketch` of successes, in memory and
//! flushed to the store every [`RankingConfig::flush`]). With `ranking.redis_url` the
//! summaries are shared by every node through Redis ([`shared`]): a flush sends this node's
//! increments and reads the totals back, and totals older than [`RankingConfig::refresh`]
//! are read again when an order is computed. The order ([`order`]) is recomputed at most
//! every [`RankingConfig::refresh`] per function, from the previous order, with hysteresis.
//!
//! Exploration: an implementation with fewer than `min_live_calls` real calls would never
//! get any while another is first, so one call in [`RankingConfig::explore_every`] goes to
//! the first such implementation of the leader's tier; once each has its figures this stops.
//!
//! The stored `Z8K4` is never rewritten here: [`Ranking::ranked_z8k4`] gives the order for
//! the admin route (`POST /v1/objects/{zid}/ranking`) and `zeval test --write-ranking`.
//!
//! Bounds: at most [`MAX_TRACKED`] implementation revisions in memory (clean ones are
//! dropped first; past that, new ones go unmeasured until the next flush), at most
//! [`MAX_FUNCTIONS`] memoised orders (all dropped when full, then recomputed), at most
//! [`MAX_RANKED`] implementations ranked per function (the rest keep list order after them).

pub(crate) mod http;
pub mod order;
pub mod shared;
mod sketch;
#[cfg(test)]
#[path = "../../../cache/tests/all/redis_server.rs"]
mod test_redis_server;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use zeval_orchestrator::{ImplementationInfo, ImplementationSelector, RunOutcome};
use zeval_store::{CallStats, Store, TesterResult};
use zeval_zobject::Value;
use zeval_zobject::build::ref_zid;

use order::{CostSource, Figures, Policy};
use shared::{SharedFigures, Summary};
use sketch::Sketch;

/// The most implementation revisions whose call summaries are held in memory.
pub const MAX_TRACKED: usize = 20_000;

/// The most functions whose order is memoised.
pub const MAX_FUNCTIONS: usize = 10_000;

/// The most functions whose order `/metrics` shows.
pub const MAX_FUNCTIONS_IN_METRICS: usize = 200;

/// The most implementations of one function that are ranked.
pub const MAX_RANKED: usize = 64;

/// The settings (`[ranking]` in zeval.toml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankingConfig {
    /// Rank, fall through and learn; when off, list order as the original.
    pub enabled: bool,
    /// The order's settings.
    pub policy: Policy,
    /// One call in this many explores an implementation without enough real calls
    /// (0: never).
    pub explore_every: u64,
    /// How long a function's computed order is used before it is computed again (and, with
    /// shared figures, how old another node's figures may be).
    pub refresh: Duration,
    /// How often the real-call figures recorded here are written to the store (and sent to
    /// the shared figures).
    pub flush: Duration,
}

impl Default for RankingConfig {
    fn default() -> Self {
        RankingConfig {
            enabled: true,
            policy: Policy::default(),
            explore_every: 8,
            refresh: Duration::from_secs(1),
            flush: Duration::from_secs(5),
        }
    }
}

/// A real-call summary in memory: the totals as last read or written, and what this node
/// recorded since.
#[derive(Debug, Clone, Default)]
struct Live {
    totals: Summary,
    recorded: Summary,
    /// When the totals were read from the shared figures (`None`: not from there).
    read: Option<Instant>,
}

impl Live {
    fn dirty(&self) -> bool {
        !self.recorded.is_empty()
    }

    fn now(&self) -> Summary {
        let mut now = self.totals.clone();
        now.merge(&self.recorded);
        now
    }
}

/// A function's order, as last computed.
struct Memo {
    implementations: Vec<String>,
    order: Vec<usize>,
    figures: Vec<Figures>,
    computed: Instant,
    calls: u64,
}

#[derive(Default)]
struct State {
    revisions: HashMap<String, (u64, Instant)>,
    live: HashMap<(String, u64), Live>,
    orders: HashMap<String, Memo>,
    leader_changes: u64,
    explorations: u64,
    untracked: u64,
}

/// The ranking of one function, as the route shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The function.
    pub function: String,
    /// Its implementations in the order they are tried.
    pub order: Vec<String>,
    /// Why the first is first.
    pub reason: String,
    /// Every implementation's figures, in the order.
    pub implementations: Vec<Explained>,
    /// The settings in effect.
    pub policy: PolicyView,
}

/// One implementation in an [`Explanation`].
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// Its place in the order (1-based).
    pub position: usize,
    /// The cost used, in milliseconds.
    pub cost_ms: Option<f64>,
    /// Where the cost comes from.
    pub cost_source: CostSource,
    /// The figures in words.
    pub summary: String,
}

/// The settings, as the route shows them.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    /// Real calls needed before they count.
    pub min_live_calls: u64,
    /// The share a challenger must cost less than.
    pub promote_factor: f64,
    /// One call in this many explores.
    pub explore_every: u64,
    /// Whether ranking is on.
    pub enabled: bool,
}

/// Why figures could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RankingError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] zeval_store::StoreError),
    /// The function is not a stored Z8.
    #[error("{0} is not a function (Z8) in the store")]
    NotAFunction(String),
    /// The function's implementations changed while it was being ranked.
    #[error("{0} was saved with other implementations while it was being ranked; try again")]
    Changed(String),
}

/// A function's Z2 with `Z8K4` in the ranked order, and the revision it was read at: to be
/// written only if the function is still at that revision, so that an editor's save in
/// between is a conflict, not a lost edit.
#[derive(Debug, Clone)]
pub struct RankedFunction {
    /// The Z2 to write.
    pub z2: Value,
    /// The revision the Z2 was read at.
    pub base_revision: u64,
}

/// The ranking service; see the module documentation.
pub struct Ranking {
    store: Arc<Store>,
    shared: Option<SharedFigures>,
    config: RankingConfig,
    state: Mutex<State>,
}

impl Ranking {
    /// A ranking over `store`'s figures.
    pub fn new(store: Arc<Store>, config: RankingConfig) -> Self {
        Ranking {
            store,
            shared: None,
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// The same, with real-call figures shared through Redis.
    pub fn with_shared(mut self, shared: Option<SharedFigures>) -> Self {
        self.shared = shared;
        self
    }

    /// Flushes every [`RankingConfig::flush`] on a thread of its own until the ranking is
    /// dropped, so that figures reach the store (and the other nodes) when calls stop too.
    pub fn flush_periodically(self: &Arc<Self>) -> std::io::Result<()> {
        let ranking = Arc::downgrade(self);
        let every = self.config.flush;
        std::thread::Builder::new()
            .name("zeval-ranking-flush".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    match ranking.upgrade() {
                        Some(ranking) => ranking.flush(),
                        None => return,
                    }
                }
            })?;
        Ok(())
    }

    /// Failures of the shared figures' Redis so far (for `/metrics`).
    pub fn shared_errors(&self) -> Option<u64> {
        self.shared.as_ref().map(SharedFigures::errors)
    }

    /// The settings.
    pub fn config(&self) -> &RankingConfig {
        &self.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current revision of `zid` (0 when the store does not have it), cached for
    /// [`RankingConfig::refresh`]; `None` when the read failed (cut by a call's deadline, a
    /// busy store), which is not remembered: nothing is then filed or ranked under a
    /// revision that was never read.
    fn revision_of(&self, zid: &str) -> Option<u64> {
        let now = Instant::now();
        if let Some(&(revision, read)) = self.state().revisions.get(zid)
            && now.duration_since(read) < self.config.refresh
        {
            return Some(revision);
        }
        let revision = self.store_revision(zid)?;
        let mut state = self.state();
        if state.revisions.len() >= MAX_TRACKED {
            state.revisions.clear();
        }
        state.revisions.insert(zid.to_owned(), (revision, now));
        Some(revision)
    }

    /// The real-call figures of a revision, loading them on first use (and, when they are
    /// shared, reading them again once older than [`RankingConfig::refresh`]); `None` when
    /// they could not be read.
    fn live_figures(&self, zid: &str, revision: u64) -> Option<Summary> {
        let key = (zid.to_owned(), revision);
        if let Some(live) = self.state().live.get(&key) {
            let fresh = self.shared.is_none()
                || live
                    .read
                    .is_some_and(|at| at.elapsed() < self.config.refresh);
            if fresh {
                return Some(live.now());
            }
        }
        self.load_live(&key)?;
        Some(
            self.state()
                .live
                .get(&key)
                .map(Live::now)
                .unwrap_or_default(),
        )
    }

    /// The stored figures of a revision (none stored, or a sketch unreadable: empty ones);
    /// `None` when the read failed. Taken for empty figures, a failed read let the next
    /// flush write this node's few new runs over the revision's whole stored history.
    fn stored_figures(&self, key: &(String, u64)) -> Option<Summary> {
        let stored = match self.store.call_stats(&key.0, key.1) {
            Ok(stats) => stats,
            Err(e) => {
                tracing::warn!(zid = key.0, error = %e, "ranking: reading call figures failed");
                return None;
            }
        };
        let summary = stored
            .and_then(|s| match Sketch::decode(&s.sketch) {
                Ok(sketch) => Some(Summary {
                    calls: s.calls,
                    failures: s.failures,
                    sketch,
                }),
                Err(e) => {
                    tracing::warn!(zid = key.0, error = %e, "ranking: a stored sketch is unreadable; starting afresh");
                    None
                }
            })
            .unwrap_or_default();
        Some(summary)
    }

    /// Loads (or, when shared, reads again) a summary's totals, unless memory is full;
    /// `None` when the store could not be read (nothing is loaded then, and the next use
    /// reads again).
    fn load_live(&self, key: &(String, u64)) -> Option<()> {
        let known_totals = self.state().live.get(key).map(|l| l.totals.clone());
        let known = known_totals.is_some();
        let (totals, read) = match &self.shared {
            Some(shared) => {
                // What seeds Redis when it has no figures (it lost its data, or this is the
                // first node): this node's last totals, else the store's.
                let stored = match known_totals {
                    Some(totals) => totals,
                    None => self.stored_figures(key)?,
                };
                match shared.read_or_seed(&key.0, key.1, &stored) {
                    Ok(totals) => (Some(totals), Some(Instant::now())),
                    // Redis is skipped for a moment; this node's figures meanwhile.
                    Err(_) => ((!known).then_some(stored), None),
                }
            }
            None if known => return Some(()),
            None => (Some(self.stored_figures(key)?), None),
        };
        let mut state = self.state();
        if let Some(live) = state.live.get_mut(key) {
            if let Some(totals) = totals {
                live.totals = totals;
                live.read = read;
            }
            return Some(());
        }
        if state.live.len() >= MAX_TRACKED {
            state.live.retain(|_, l| l.dirty());
            if state.live.len() >= MAX_TRACKED {
                state.untracked += 1;
                return Some(());
            }
        }
        state.live.insert(
            key.clone(),
            Live {
                totals: totals.unwrap_or_default(),
                recorded: Summary::default(),
                read,
            },
        );
        Some(())
    }

    /// Records one real run (in memory: [`Ranking::flush_periodically`] writes it out, off
    /// the call's path).
    fn record(&self, zid: &str, run: &RunOutcome) {
        let Some(revision) = self.revision_of(zid) else {
            return;
        };
        let key = (zid.to_owned(), revision);
        if !self.state().live.contains_key(&key) && self.load_live(&key).is_none() {
            return;
        }
        let mut state = self.state();
        let Some(live) = state.live.get_mut(&key) else {
            return;
        };
        live.recorded.calls += 1;
        if run.failed {
            live.recorded.failures += 1;
        } else {
            live.recorded.sketch.add(run.duration);
        }
    }

    /// Writes every changed call summary to the store (and, when shared, sends this node's
    /// increments to Redis and keeps the totals it answers).
    pub fn flush(&self) {
        let dirty: Vec<((String, u64), Summary)> = {
            let mut state = self.state();
            state
                .live
                .iter_mut()
                .filter(|(_, l)| l.dirty())
                .map(|(k, l)| (k.clone(), std::mem::take(&mut l.recorded)))
                .collect()
        };
        for ((zid, revision), recorded) in dirty {
            let key = (zid, revision);
            let sent = self
                .shared
                .as_ref()
                .map(|shared| shared.add(&key.0, key.1, &recorded));
            let totals = {
                let mut state = self.state();
                let Some(live) = state.live.get_mut(&key) else {
                    continue;
                };
                match sent {
                    Some(Ok(totals)) => {
                        live.totals = totals;
                        live.read = Some(Instant::now());
                    }
                    // Sent again with the next flush.
                    Some(Err(_)) => {
                        live.recorded.merge(&recorded);
                        continue;
                    }
                    None => live.totals.merge(&recorded),
                }
                live.totals.clone()
            };
            let stats = CallStats {
                calls: totals.calls,
                failures: totals.failures,
                sketch: totals.sketch.encode(),
            };
            if let Err(e) = self.store.put_call_stats(&key.0, key.1, &stats) {
                tracing::warn!(zid = key.0, error = %e, "ranking: writing call figures failed");
            }
        }
    }

    /// The figures of `implementations` now, counting the results of `testers` (the
    /// function's): one per implementation, blank (revision 0, nothing run) when the store
    /// could not be read, for an explanation that says nothing is known rather than none.
    fn figures(&self, implementations: &[String], testers: &[String]) -> Vec<Figures> {
        self.figures_until(implementations, testers, None)
            .unwrap_or_else(|| {
                implementations
                    .iter()
                    .enumerate()
                    .map(|(listed, zid)| Figures::new(zid.clone(), 0, listed))
                    .collect()
            })
    }

    /// [`Ranking::figures`], or `None` once `deadline` has passed, or when a read failed:
    /// each implementation's figures are up to three store reads (its revision, its tester
    /// results, its call summary), so 64 of them could wait for the store many times a call's
    /// deadline.
    fn figures_until(
        &self,
        implementations: &[String],
        testers: &[String],
        deadline: Option<Instant>,
    ) -> Option<Vec<Figures>> {
        let testers_listed: std::collections::HashSet<&str> =
            testers.iter().map(String::as_str).collect();
        implementations
            .iter()
            .enumerate()
            .map(|(listed, zid)| {
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return None;
                }
                // A read that failed (cut by the deadline, a busy store) leaves these figures
                // unknown, as the deadline does: not zeros, which would rank.
                let revision = self.revision_of(zid)?;
                let mut f = Figures::new(zid.clone(), revision, listed);
                f.testers = testers.len();
                let results = match self.store.tester_results(zid, revision) {
                    Ok(results) => results,
                    Err(e) => {
                        tracing::warn!(zid, error = %e, "ranking: reading tester results failed");
                        return None;
                    }
                };
                let mut passing: Vec<u64> = Vec::new();
                for result in results
                    .iter()
                    .filter(|r| testers_listed.contains(r.tester.as_str()))
                {
                    f.testers_run += 1;
                    if result.passed {
                        passing.push(result.duration_us);
                    } else {
                        f.testers_failed += 1;
                    }
                }
                passing.sort_unstable();
                f.tester_median_us = passing.get(passing.len() / 2).map(|&us| us as f64);
                let live = self.live_figures(zid, revision)?;
                f.calls = live.calls;
                f.failures = live.failures;
                f.p50_us = live.sketch.quantile(0.5);
                f.p90_us = live.sketch.quantile(0.9);
                Some(f)
            })
            .collect()
    }

    /// The testers the stored function lists (none when it is not in the store); `None`
    /// when the read failed.
    fn function_testers(&self, function: &str) -> Option<Vec<String>> {
        match self.store.get(function) {
            Ok(Some(z2)) => Some(list_zids(z2.get("Z2K2").and_then(|f| f.get("Z8K3")))),
            Ok(None) => Some(Vec::new()),
            Err(e) => {
                tracing::warn!(function, error = %e, "ranking: reading a function's testers failed");
                None
            }
        }
    }

    /// The order of `implementations` (ZIDs) of `function` now, recomputed when stale;
    /// `explore` lets this call be one that explores.
    fn order_of(
        &self,
        function: &str,
        implementations: &[String],
        explore: bool,
        deadline: Option<Instant>,
    ) -> Vec<usize> {
        let mut order = self.current_order(function, implementations, None, deadline);
        let explore_every = self.config.explore_every;
        if explore && explore_every > 0 {
            let mut state = self.state();
            // Only a memo of this very list: past its deadline a call may have kept list
            // order instead of computing one.
            let explored = state.orders.get_mut(function).is_some_and(|memo| {
                if memo.implementations != implementations {
                    return false;
                }
                memo.calls += 1;
                memo.calls % explore_every == 0
                    && explore_first(&mut order, &memo.figures, &self.config.policy)
            });
            if explored {
                state.explorations += 1;
            }
        }
        order
    }

    /// The memoised order while it is fresh, else one computed from the figures now, with
    /// the function's `testers` when the caller has them (else they are read from the store).
    /// Past `deadline` it stops reading figures, and answers the stale order, or list order,
    /// without remembering it.
    fn current_order(
        &self,
        function: &str,
        implementations: &[String],
        testers: Option<&[String]>,
        deadline: Option<Instant>,
    ) -> Vec<usize> {
        let now = Instant::now();
        let previous = {
            let state = self.state();
            match state.orders.get(function) {
                Some(memo) if memo.implementations == implementations => {
                    if now.duration_since(memo.computed) < self.config.refresh {
                        return memo.order.clone();
                    }
                    memo.order.clone()
                }
                _ => Vec::new(),
            }
        };
        let unread = || {
            if previous.len() == implementations.len() {
                previous.clone()
            } else {
                (0..implementations.len()).collect()
            }
        };
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return unread();
        }
        let ranked = &implementations[..implementations.len().min(MAX_RANKED)];
        let testers: Cow<'_, [String]> = match testers {
            Some(testers) => Cow::Borrowed(testers),
            None => match self.function_testers(function) {
                Some(testers) => Cow::Owned(testers),
                None => return unread(),
            },
        };
        let Some(figures) = self.figures_until(ranked, &testers, deadline) else {
            return unread();
        };
        let mut order = order::rank(&figures, &previous, &self.config.policy);
        order.extend(ranked.len()..implementations.len());
        let mut state = self.state();
        if previous.first().is_some_and(|&p| Some(&p) != order.first()) {
            state.leader_changes += 1;
        }
        if state.orders.len() >= MAX_FUNCTIONS && !state.orders.contains_key(function) {
            state.orders.clear();
        }
        let calls = state.orders.get(function).map_or(0, |m| m.calls);
        state.orders.insert(
            function.to_owned(),
            Memo {
                implementations: implementations.to_vec(),
                order: order.clone(),
                figures,
                computed: now,
                calls,
            },
        );
        order
    }

    /// The ranking of a stored function, for the route and the CLI.
    pub fn explain(&self, function: &str) -> Result<Explanation, RankingError> {
        Ok(self.explain_function(function, &self.stored_function(function)?))
    }

    /// [`Self::explain`] with every wait for the store ending by `ends`, for the route, which
    /// is anyone's to ask: it reads the figures of up to [`MAX_RANKED`] implementations
    /// (three store reads each, every wait up to the store's own bound), and had no deadline.
    /// Past `ends` it answers that the store was busy rather than an order of figures it
    /// could not read.
    pub fn explain_by(&self, function: &str, ends: Instant) -> Result<Explanation, RankingError> {
        let explanation = zeval_store::call_deadline::within(ends, || self.explain(function))
            .map_err(|error| match error {
                RankingError::Store(zeval_store::StoreError::DeadlineExceeded { .. }) => {
                    out_of_time()
                }
                other => other,
            })?;
        if Instant::now() >= ends {
            return Err(out_of_time());
        }
        Ok(explanation)
    }

    /// [`Self::explain`] of `function` as `z8` (its stored Z8) defines it, for a caller that
    /// has just read it: the testers route, which would otherwise read the function twice
    /// more per request.
    pub fn explain_function(&self, function: &str, z8: &Value) -> Explanation {
        let implementations = list_zids(z8.get("Z8K4"));
        let testers = list_zids(z8.get("Z8K3"));
        let order = self.order_of_fresh(function, &implementations, &testers);
        // Ranking just read every figure to order them; reading them again cost the testers
        // route a tenth of its time (`zeval bench library`, 2026-12-03).
        let figures = self
            .figures_just_ranked(function, &implementations)
            .unwrap_or_else(|| {
                // Only the ranked ones have figures read: the route is open to anyone, and a
                // function may list thousands of implementations, each three store reads.
                let ranked = implementations.len().min(MAX_RANKED);
                let mut figures = self.figures(&implementations[..ranked], &testers);
                figures.extend(unranked(&implementations, ranked));
                figures
            });
        let policy = &self.config.policy;
        let reason = if self.config.enabled {
            order::reason(&figures, &order, policy)
        } else {
            "ranking is off ([ranking] enabled = false): list order".to_owned()
        };
        let implementations = order
            .iter()
            .enumerate()
            .map(|(position, &i)| {
                let f = figures[i].clone();
                let (cost, cost_source) = f.cost(policy);
                Explained {
                    summary: order::describe(&f, policy),
                    figures: f,
                    position: position + 1,
                    cost_ms: cost.map(|us| us / 1_000.0),
                    cost_source,
                }
            })
            .collect::<Vec<_>>();
        Explanation {
            function: function.to_owned(),
            order: implementations
                .iter()
                .map(|e| e.figures.implementation.clone())
                .collect(),
            reason,
            implementations,
            policy: PolicyView {
                min_live_calls: policy.min_live_calls,
                promote_factor: policy.promote_factor,
                explore_every: self.config.explore_every,
                enabled: self.config.enabled,
            },
        }
    }

    /// The figures of the memo [`Self::order_of_fresh`] has just computed, when it covers
    /// exactly `implementations` (all of them ranked, ranking on).
    fn figures_just_ranked(
        &self,
        function: &str,
        implementations: &[String],
    ) -> Option<Vec<Figures>> {
        if !self.config.enabled {
            return None;
        }
        let state = self.state();
        let memo = state.orders.get(function)?;
        // Past the first `MAX_RANKED`, the memo has no figures (they keep list order): those
        // are added as the explanation's fallback adds them. Asking for all of them again
        // read every ranked implementation's figures twice per request.
        let ranked = implementations.len().min(MAX_RANKED);
        let covers = memo.implementations == implementations
            && memo.figures.len() == ranked
            && memo.computed.elapsed() < self.config.refresh;
        covers.then(|| {
            let mut figures = memo.figures.clone();
            figures.extend(unranked(implementations, ranked));
            figures
        })
    }

    /// The order with figures read now (not the memo), as the next call would compute it.
    fn order_of_fresh(
        &self,
        function: &str,
        implementations: &[String],
        testers: &[String],
    ) -> Vec<usize> {
        if !self.config.enabled {
            return (0..implementations.len()).collect();
        }
        if let Some(memo) = self.state().orders.get_mut(function) {
            // Make the memo stale so the order is computed from today's figures.
            memo.computed = Instant::now() - self.config.refresh;
        }
        self.current_order(function, implementations, Some(testers), None)
    }

    /// The stored function's Z8.
    fn stored_function(&self, function: &str) -> Result<Value, RankingError> {
        let not_a_function = || RankingError::NotAFunction(function.to_owned());
        match self.store.get(function)?.ok_or_else(not_a_function)? {
            Value::Object(mut z2) => z2
                .remove("Z2K2")
                .filter(|f| zeval_zobject::build::type_zid(f) == Some("Z8"))
                .ok_or_else(not_a_function),
            _ => Err(not_a_function()),
        }
    }

    /// The function's Z2 with `Z8K4` in the ranked order (the canonical list form), and the
    /// revision it was read at; `None` when the stored list already has that order. The list
    /// it compares and the Z2 it rewrites are one read, after the revision the write is based
    /// on; the order (from [`Ranking::explain`], a read of its own) must rank the same
    /// implementations, else [`RankingError::Changed`]. The object was read three times and
    /// written unconditionally: an editor's save in between had the old list's order spliced
    /// into the new object, dropping an implementation just added.
    pub fn ranked_z8k4(
        &self,
        function: &str,
    ) -> Result<(Option<RankedFunction>, Explanation), RankingError> {
        let not_a_function = || RankingError::NotAFunction(function.to_owned());
        // The revision before the object: a save after it makes the write a conflict.
        let base_revision = self
            .store
            .current_revision(function)?
            .ok_or_else(not_a_function)?;
        let mut z2 = self.store.get(function)?.ok_or_else(not_a_function)?;
        let listed = list_zids(z2.get("Z2K2").and_then(|f| f.get("Z8K4")));
        let explanation = self.explain(function)?;
        if listed == explanation.order {
            return Ok((None, explanation));
        }
        let mut ranked = explanation.order.clone();
        let mut read = listed;
        ranked.sort();
        read.sort();
        if ranked != read {
            return Err(RankingError::Changed(function.to_owned()));
        }
        let item_type = z2
            .get("Z2K2")
            .and_then(|f| f.get("Z8K4"))
            .and_then(|l| l.as_array())
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_else(|| Value::String("Z14".into()));
        let mut list = vec![item_type];
        list.extend(explanation.order.iter().cloned().map(Value::String));
        if let Some(Value::Object(f)) = z2.get_mut("Z2K2") {
            f.insert("Z8K4".into(), Value::Array(list));
        }
        Ok((Some(RankedFunction { z2, base_revision }), explanation))
    }

    /// Records the tester results of a matrix, each against the implementation's and the
    /// tester's current revisions.
    pub fn record_matrix(&self, matrix: &crate::testers::Matrix) {
        let now = zeval_store_now_ms();
        let read = Instant::now();
        // The implementations' revisions as read for the results, which the explanation that
        // usually follows then reads from memory instead of from the store once more.
        let mut revisions: HashMap<&str, u64> = HashMap::new();
        // A cell that ran out of the request's time or budget, or that the server's load
        // stopped, says nothing about the implementation: recorded as a failure, anyone who
        // could fill the workers and then run the testers (anonymous callers, under
        // `calls = "open"`) replaced a good implementation's results with failures, and it
        // dropped a tier for everybody. Its earlier result stands instead. A cell stopped at
        // the implementation's own time limit is its failure: not recorded, an endless loop
        // kept the tier of an implementation that passes everything, and led the ranking.
        // So is a cell whose answers depended on the load (code that caught a load's failure
        // of a call it made, and answered something else: a client that filled its own
        // places for calls from code made others' fallbacks fail their testers).
        let ran_out = |cell: &&crate::testers::Cell| {
            !cell.own_time_limit
                && (cell.stopped_by_load
                    || cell
                        .error
                        .as_ref()
                        .and_then(zeval_zobject::error::error_code)
                        .is_some_and(|code| matches!(code, "Z558" | "Z590")))
        };
        // A revision saved during the run may or may not be what a cell ran (an editor could
        // save one after a good revision passed, and have it credited): such cells are not
        // recorded.
        let saved_during_the_run = |zid: &str, now: u64| {
            matrix
                .revisions_at_start
                .get(zid)
                .is_some_and(|&start| start != now)
        };
        // A cell whose tester does not call the function ran whatever the ranking chose
        // (or none of its implementations): crediting its outcome to the cell's implementation
        // let an editor's tester that calls a wrapper pass or fail implementations it never
        // ran.
        let mut tester_revisions: HashMap<&str, u64> = HashMap::new();
        let mut results = Vec::new();
        for cell in matrix
            .cells
            .iter()
            .filter(|c| !c.not_run && c.narrowed)
            .filter(|c| !ran_out(c))
        {
            let Some(implementation_revision) =
                self.revision_once(&mut revisions, &cell.implementation)
            else {
                continue;
            };
            // Once per tester and run: a run of one tester over 200 implementations read its
            // revision 200 times.
            let Some(tester_revision) = self.revision_once(&mut tester_revisions, &cell.tester)
            else {
                continue;
            };
            if saved_during_the_run(&cell.implementation, implementation_revision)
                || saved_during_the_run(&cell.tester, tester_revision)
            {
                continue;
            }
            results.push(TesterResult {
                implementation: cell.implementation.clone(),
                implementation_revision,
                tester: cell.tester.clone(),
                tester_revision,
                passed: cell.passed,
                duration_us: (cell.call_ms * 1_000.0) as u64,
                run_ms: now,
            });
        }
        if let Err(e) = self.store.record_tester_results(&results) {
            tracing::warn!(error = %e, "ranking: recording a test run's results failed");
        }
        // The next call computes the order from these results.
        let mut state = self.state();
        state.orders.remove(&matrix.function);
        for cell in &matrix.cells {
            state.revisions.remove(&cell.implementation);
        }
        if state.revisions.len() + revisions.len() > MAX_TRACKED {
            state.revisions.clear();
        }
        for (zid, revision) in revisions {
            state.revisions.insert(zid.to_owned(), (revision, read));
        }
    }

    /// [`Self::store_revision`] of `zid`, read once into `read`.
    fn revision_once<'a>(&self, read: &mut HashMap<&'a str, u64>, zid: &'a str) -> Option<u64> {
        if let Some(&revision) = read.get(zid) {
            return Some(revision);
        }
        let revision = self.store_revision(zid)?;
        read.insert(zid, revision);
        Some(revision)
    }

    /// The current revision of `zid` (0 when the store does not have it); `None` when the
    /// read failed, and a cell is then not recorded rather than recorded against revision 0.
    fn store_revision(&self, zid: &str) -> Option<u64> {
        match self.store.current_revision(zid) {
            Ok(revision) => Some(revision.unwrap_or(0)),
            Err(e) => {
                tracing::warn!(zid, error = %e, "ranking: reading a revision failed");
                None
            }
        }
    }

    /// `/metrics` lines: each ranked function's order and its leader's figures, bounded by
    /// the metrics' series limit: at most [`MAX_FUNCTIONS_IN_METRICS`] functions and their
    /// first [`MAX_RANKED`] implementations (the rest keep list order). A function's list
    /// can repeat one implementation some 11,000 times (its 100 KiB is the only bound), and
    /// every line was written, under the lock every ranked call takes: 200 such functions
    /// made a scrape of some 160 MB.
    pub fn exposition(&self) -> String {
        use std::fmt::Write;
        let state = self.state();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP zeval_implementation_rank Place of each implementation in its function's order (1 is tried first).\n# TYPE zeval_implementation_rank gauge"
        );
        let mut p50 = String::new();
        let mut functions: Vec<&String> = state.orders.keys().collect();
        functions.sort();
        for function in functions.into_iter().take(MAX_FUNCTIONS_IN_METRICS) {
            let memo = &state.orders[function];
            for (position, &i) in memo.order.iter().take(MAX_RANKED).enumerate() {
                let Some(zid) = memo.implementations.get(i) else {
                    continue;
                };
                let _ = writeln!(
                    out,
                    "zeval_implementation_rank{{function=\"{function}\",implementation=\"{zid}\"}} {}",
                    position + 1
                );
                if let Some(us) = memo.figures.get(i).and_then(|f| f.p50_us) {
                    let _ = writeln!(
                        p50,
                        "zeval_implementation_p50_seconds{{function=\"{function}\",implementation=\"{zid}\"}} {}",
                        us / 1e6
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP zeval_implementation_p50_seconds Median time of an implementation's successful real calls.\n# TYPE zeval_implementation_p50_seconds gauge"
        );
        out.push_str(&p50);
        for (name, help, value) in [
            (
                "zeval_ranking_leader_changes_total",
                "Times a function's first implementation changed.",
                state.leader_changes,
            ),
            (
                "zeval_ranking_explorations_total",
                "Calls sent to an implementation without enough real calls, to measure it.",
                state.explorations,
            ),
            (
                "zeval_ranking_untracked_total",
                "Runs not measured because the in-memory figures were full.",
                state.untracked,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        out
    }
}

/// Moves the first implementation of the leader's tier that lacks real-call figures to the
/// front; whether one was found.
impl Drop for Ranking {
    /// What was recorded since the last flush is not lost at a graceful stop.
    fn drop(&mut self) {
        self.flush();
    }
}

fn explore_first(order: &mut Vec<usize>, figures: &[Figures], policy: &Policy) -> bool {
    let Some(leader) = order.first().and_then(|&i| figures.get(i)) else {
        return false;
    };
    let tier = leader.tier(policy);
    let found = order.iter().position(|&i| {
        figures
            .get(i)
            .is_some_and(|f| f.tier(policy) == tier && !f.has_live_figures(policy))
    });
    match found {
        Some(0) | None => false,
        Some(k) => {
            let chosen = order.remove(k);
            order.insert(0, chosen);
            true
        }
    }
}

/// The ZIDs of a canonical typed list (its first item is the type), each once.
fn list_zids(list: Option<&Value>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .skip(1)
                .filter_map(|v| ref_zid(v).map(str::to_owned))
                .filter(|zid| seen.insert(zid.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn zeval_store_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ImplementationSelector for Ranking {
    fn order(&self, function_zid: &str, implementations: &[ImplementationInfo]) -> Vec<usize> {
        self.order_until(function_zid, implementations, None)
    }

    fn order_within(
        &self,
        function_zid: &str,
        implementations: &[ImplementationInfo],
        deadline: Instant,
    ) -> Vec<usize> {
        self.order_until(function_zid, implementations, Some(deadline))
    }

    /// Until 2026-12-07 a plan (`POST /v1/plan`, anonymous, runs nothing) counted as a call,
    /// and was given the turns meant for exploring: a client planning a function often
    /// enough took them all, and its calls then never tried an implementation the ranking
    /// knew little about.
    fn order_without_exploring(
        &self,
        function_zid: &str,
        implementations: &[ImplementationInfo],
        deadline: Instant,
    ) -> Vec<usize> {
        self.order_exploring(function_zid, implementations, Some(deadline), false)
    }

    fn observe(&self, _function_zid: &str, implementation: &ImplementationInfo, run: &RunOutcome) {
        if !self.config.enabled {
            return;
        }
        if let Some(zid) = &implementation.zid {
            self.record(zid, run);
        }
    }

    fn falls_through(&self) -> bool {
        self.config.enabled
    }
}

impl Ranking {
    /// [`ImplementationSelector::order`], reading figures until `deadline` at most.
    fn order_until(
        &self,
        function_zid: &str,
        implementations: &[ImplementationInfo],
        deadline: Option<Instant>,
    ) -> Vec<usize> {
        self.order_exploring(function_zid, implementations, deadline, true)
    }

    /// [`Self::order_until`]; `explore` lets this call be one that explores.
    fn order_exploring(
        &self,
        function_zid: &str,
        implementations: &[ImplementationInfo],
        deadline: Option<Instant>,
        explore: bool,
    ) -> Vec<usize> {
        let identity = || (0..implementations.len()).collect();
        if !self.config.enabled || implementations.len() < 2 || function_zid.is_empty() {
            return identity();
        }
        let Some(zids) = implementations
            .iter()
            .map(|i| i.zid.clone())
            .collect::<Option<Vec<String>>>()
        else {
            // An inline implementation has no figures: keep the list order.
            return identity();
        };
        self.order_of(function_zid, &zids, explore, deadline)
    }
}

/// The figures of the implementations past the first `ranked`: none read, in list order.
fn unranked(implementations: &[String], ranked: usize) -> impl Iterator<Item = Figures> + '_ {
    implementations[ranked..]
        .iter()
        .enumerate()
        .map(move |(i, zid)| Figures::new(zid.clone(), 0, ranked + i))
}

/// Why an explanation was not finished by its deadline.
fn out_of_time() -> RankingError {
    RankingError::Store(zeval_store::StoreError::Busy(
        "the ranking's figures could not be read within the route's time; try again".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(zid: &str) -> ImplementationInfo {
        ImplementationInfo {
            zid: Some(zid.into()),
            kind: "Evaluated",
        }
    }

    fn ranking(config: RankingConfig) -> (tempfile::TempDir, Ranking) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        (dir, Ranking::new(store, config))
    }

    fn run(ms: u64, failed: bool) -> RunOutcome {
        RunOutcome {
            duration: Duration::from_millis(ms),
            failed,
        }
    }

    #[test]
    fn live_calls_and_exploration_promote_the_faster_implementation() {
        let config = RankingConfig {
            refresh: Duration::ZERO,
            ..RankingConfig::default()
        };
        let (_dir, ranking) = ranking(config);
        let infos = [info("Z10001"), info("Z10002")];
        let mut explored = 0;
        for _ in 0..400 {
            let order = ranking.order("Z10000", &infos);
            let chosen = &infos[order[0]];
            let zid = chosen.zid.as_deref().unwrap();
            if zid == "Z10002" {
                explored += 1;
            }
            let ms = if zid == "Z10001" { 20 } else { 2 };
            ranking.observe("Z10000", chosen, &run(ms, false));
        }
        assert!(explored >= 20, "the second one ran {explored} times");
        assert_eq!(ranking.order("Z10000", &infos), vec![1, 0]);
        let explanation = ranking.state().orders["Z10000"].figures.clone();
        assert!(explanation[1].p50_us.unwrap() < explanation[0].p50_us.unwrap());
    }

    /// A plan of a call (which runs nothing) is not a call: it takes none of the turns meant
    /// for calls to explore. Counted as calls, plans made eight at a time between calls here
    /// took 64 of the 72 turns, and only 8 calls tried the second implementation.
    #[test]
    fn plans_take_no_calls_turn_to_explore() {
        let config = RankingConfig {
            refresh: Duration::ZERO,
            ..RankingConfig::default()
        };
        let (_dir, ranking) = ranking(config);
        let infos = [info("Z10001"), info("Z10002")];
        let later = || Instant::now() + Duration::from_secs(60);
        // The leader's live figures: the second one is the one to explore.
        for _ in 0..RankingConfig::default().policy.min_live_calls {
            ranking.observe("Z10000", &infos[0], &run(5, false));
        }
        let mut explored = 0;
        for _ in 0..64 {
            for _ in 0..8 {
                let planned = ranking.order_without_exploring("Z10000", &infos, later());
                assert_eq!(planned[0], 0, "a plan explored");
            }
            let order = ranking.order_within("Z10000", &infos, later());
            explored += usize::from(order[0] == 1);
        }
        assert_eq!(explored, 8, "one call in 8 explores, plans apart");
        assert_eq!(ranking.state().explorations, 8);
    }

    /// A call's figures are read no later than its deadline: each implementation's are up to
    /// three store reads, each of which may wait for a reader, and a function ranks 64. Past
    /// its deadline a call reads none, and keeps list order (or the order it had).
    #[test]
    fn a_call_reads_figures_no_later_than_its_deadline() {
        let (_dir, ranking) = ranking(RankingConfig::default());
        let infos = [info("Z10001"), info("Z10002")];
        let order = ranking.order_within("Z10000", &infos, Instant::now());
        assert_eq!(order, vec![0, 1]);
        assert!(
            ranking.state().revisions.is_empty(),
            "figures were read past the deadline"
        );
        assert!(
            ranking.state().orders.is_empty(),
            "an unread order was kept"
        );
        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(ranking.order_within("Z10000", &infos, later), vec![0, 1]);
        assert_eq!(ranking.state().revisions.len(), 2);
        assert_eq!(ranking.state().orders.len(), 1);
    }

    #[test]
    fn figures_survive_a_restart_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        let first = Ranking::new(store.clone(), RankingConfig::default());
        for _ in 0..30 {
            first.observe("Z10000", &info("Z10001"), &run(3, false));
        }
        first.observe("Z10000", &info("Z10001"), &run(3, true));
        first.flush();
        let second = Ranking::new(store, RankingConfig::default());
        let live = second.live_figures("Z10001", 0).unwrap();
        assert_eq!(
            (live.calls, live.failures, live.sketch.count()),
            (31, 1, 30)
        );
    }

    /// A run recorded while the stored figures could not be read is not recorded against
    /// empty ones: the next flush wrote its one run over the revision's whole history (31
    /// calls became 1), and a read cut by a call's deadline made that common.
    #[test]
    fn a_failed_read_of_the_figures_never_overwrites_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        let first = Ranking::new(store.clone(), RankingConfig::default());
        for _ in 0..31 {
            first.observe("Z10000", &info("Z10001"), &run(3, false));
        }
        first.flush();
        let database = dir.path().join(zeval_store::DATABASE_FILE);
        let raw = rusqlite::Connection::open(&database).unwrap();
        raw.execute_batch("ALTER TABLE call_stats RENAME TO call_stats_away")
            .unwrap();
        let second = Ranking::new(store.clone(), RankingConfig::default());
        second.observe("Z10000", &info("Z10001"), &run(3, false));
        raw.execute_batch("ALTER TABLE call_stats_away RENAME TO call_stats")
            .unwrap();
        second.flush();
        let third = Ranking::new(store, RankingConfig::default());
        assert_eq!(third.live_figures("Z10001", 0).unwrap().calls, 31);
    }

    /// An explanation asked while the figures cannot be read explains list order with
    /// blank figures. Once failed reads stopped counting as empty figures, it indexed past
    /// the figures it did not have and panicked (found in review, before it shipped).
    #[test]
    fn an_explanation_while_the_figures_cannot_be_read_is_list_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        let ranking = Ranking::new(store, RankingConfig::default());
        let raw = rusqlite::Connection::open(dir.path().join(zeval_store::DATABASE_FILE)).unwrap();
        raw.execute_batch("ALTER TABLE call_stats RENAME TO call_stats_away")
            .unwrap();
        let z8 =
            serde_json::json!({"Z1K1": "Z8", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10001", "Z10002"]});
        let explained = ranking.explain_function("Z10000", &z8);
        assert_eq!(explained.order, ["Z10001", "Z10002"]);
        assert_eq!(explained.implementations.len(), 2);
    }

    #[test]
    fn off_means_list_order_and_no_fall_through() {
        let config = RankingConfig {
            enabled: false,
            ..RankingConfig::default()
        };
        let (_dir, ranking) = ranking(config);
        assert_eq!(ranking.order("Z1", &[info("Z2"), info("Z3")]), vec![0, 1]);
        assert!(!ranking.falls_through());
    }

    #[test]
    fn figures_shared_through_redis_add_up_and_outlive_redis_losing_them() {
        let redis = super::test_redis_server::RedisServer::start();
        let config = RankingConfig {
            refresh: Duration::ZERO,
            ..RankingConfig::default()
        };
        let shared = || Some(SharedFigures::new(&redis.url(), Duration::from_secs(1)).unwrap());
        // Two nodes, each with its own store: only Redis joins them.
        let (_a_dir, a) = ranking(config);
        let (_b_dir, b) = ranking(config);
        let (a, b) = (a.with_shared(shared()), b.with_shared(shared()));
        let fast = info("Z10001");
        for _ in 0..5 {
            a.observe("Z10000", &fast, &run(2, false));
        }
        for _ in 0..3 {
            b.observe("Z10000", &fast, &run(4, false));
        }
        b.observe("Z10000", &fast, &run(4, true));
        a.flush();
        b.flush();
        for node in [&a, &b] {
            let seen = node.live_figures("Z10001", 0).unwrap();
            assert_eq!((seen.calls, seen.failures), (9, 1));
            assert_eq!(seen.sketch.count(), 8);
        }
        // Redis loses its data: the next read seeds it from a node's totals, once.
        redis.command(&["FLUSHALL"]).unwrap();
        assert_eq!(a.live_figures("Z10001", 0).unwrap().calls, 9);
        assert_eq!(b.live_figures("Z10001", 0).unwrap().calls, 9);
        a.observe("Z10000", &fast, &run(2, false));
        a.flush();
        assert_eq!(b.live_figures("Z10001", 0).unwrap().calls, 10);
        assert_eq!(a.shared_errors(), Some(0));
    }

    /// The shared figures are read back as their own fields only, each value cut short:
    /// `HGETALL` sent whatever the hash held, and anyone who can write to Redis could fill
    /// it (a 16 MiB count and 10,000 foreign fields here) for every flush to read.
    #[test]
    fn shared_figures_are_read_in_a_bounded_number_of_bytes_whatever_redis_holds() {
        let redis = super::test_redis_server::RedisServer::start();
        let config = RankingConfig {
            refresh: Duration::ZERO,
            ..RankingConfig::default()
        };
        let (_dir, a) = ranking(config);
        let a = a.with_shared(Some(
            SharedFigures::new(&redis.url(), Duration::from_secs(1)).unwrap(),
        ));
        let fast = info("Z10001");
        for _ in 0..3 {
            a.observe("Z10000", &fast, &run(2, false));
        }
        a.flush();
        let huge = "7".repeat(16 << 20);
        let mut filler = vec!["HSET", "zeval:ranking:Z10001:0", "b5", huge.as_str()];
        let foreign: Vec<String> = (0..10_000).map(|i| format!("foreign{i:0>90}")).collect();
        for field in &foreign {
            filler.extend([field.as_str(), "1"]);
        }
        redis.command(&filler).unwrap();
        let before = redis.output_bytes();
        a.observe("Z10000", &fast, &run(2, false));
        a.flush();
        let seen = a.live_figures("Z10001", 0).unwrap();
        let sent = redis.output_bytes() - before;
        assert!(sent < 64 << 10, "{sent} bytes read back");
        assert_eq!((seen.calls, seen.failures), (4, 0));
        assert_eq!(a.shared_errors(), Some(0));
    }

    /// Explaining a function reads the figures of the implementations it ranks, at most
    /// [`MAX_RANKED`], however many it lists: the route is open to anyone, and it used to
    /// read every one of them (three store reads each) on every request.
    #[test]
    fn an_explanation_reads_the_figures_of_the_ranked_implementations_only() {
        let (_dir, ranking) = ranking(RankingConfig::default());
        let listed: Vec<String> = (0..MAX_RANKED + 100)
            .map(|i| format!("Z{}", 20_000 + i))
            .collect();
        let mut z8k4 = vec![serde_json::json!("Z14")];
        z8k4.extend(listed.iter().map(|zid| serde_json::json!(zid)));
        let z8 = serde_json::json!({"Z1K1": "Z8", "Z8K3": ["Z20"], "Z8K4": z8k4});
        let explanation = ranking.explain_function("Z10000", &z8);
        assert_eq!(explanation.order.len(), listed.len());
        let read = ranking.state().revisions.len();
        assert!(read <= MAX_RANKED, "{read} implementations' revisions read");
        // The figures the ranking has just read serve the explanation: asked for all of
        // them, the memo (which has the ranked ones only) never did, and every ranked
        // implementation's figures were read twice per request.
        let just_ranked = ranking.figures_just_ranked("Z10000", &listed);
        assert_eq!(just_ranked.map(|figures| figures.len()), Some(listed.len()));
    }

    /// An explanation for the route that ends past its deadline is a busy answer (503), not
    /// an order of figures it could not read. (That the store's waits on the thread end by
    /// the deadline, which bounds how late that is, is `zeval_store::call_deadline`'s own,
    /// tested there.)
    #[test]
    fn an_explanation_past_its_deadline_is_busy() {
        let (_dir, ranking) = ranking(RankingConfig::default());
        let z8 = serde_json::json!({
            "Z1K1": "Z2",
            "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z10000"},
            "Z2K2": {"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z6", "Z8K3": ["Z20"],
                     "Z8K4": ["Z14", "Z10001"], "Z8K5": "Z10000"},
        });
        ranking.store.put("Z10000", &z8, "ed").unwrap();
        assert!(
            ranking
                .explain_by("Z10000", Instant::now() + Duration::from_secs(5))
                .is_ok()
        );
        let started = Instant::now();
        let late = ranking.explain_by("Z10000", started);
        assert!(
            matches!(&late, Err(RankingError::Store(zeval_store::StoreError::Busy(m))) if m.contains("within the route's time")),
            "{late:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// `/metrics` shows a function's first [`MAX_RANKED`] implementations, however many it
    /// lists.
    #[test]
    fn metrics_show_the_ranked_implementations_only() {
        let (_dir, ranking) = ranking(RankingConfig::default());
        let listed: Vec<ImplementationInfo> = (0..MAX_RANKED + 100)
            .map(|i| info(&format!("Z{}", 20_000 + i)))
            .collect();
        assert_eq!(ranking.order("Z10000", &listed).len(), listed.len());
        let lines = ranking
            .exposition()
            .lines()
            .filter(|line| line.starts_with("zeval_implementation_rank{function=\"Z10000\""))
            .count();
        assert_eq!(lines, MAX_RANKED);
    }

    /// A tester's cell that ran out of the request's time (Z558) or budget (Z590) is not
    /// recorded: a run made while someone held every worker would otherwise replace a good
    /// implementation's results with failures. Other failures are, and so is a cell stopped
    /// at the implementation's own time limit; a cell whose tester does not call the
    /// function is not (the implementation did not run for it).
    #[test]
    fn cells_that_ran_out_of_time_are_not_recorded() {
        let (_dir, ranking) = ranking(RankingConfig::default());
        let cell = |tester: &str, passed: bool, code: Option<&str>| crate::testers::Cell {
            implementation: "Z10001".into(),
            tester: tester.into(),
            passed,
            duration_ms: 1.0,
            call_ms: 1.0,
            error: code.map(|code| serde_json::json!({"Z1K1": "Z5", "Z5K1": code})),
            not_run: false,
            own_time_limit: false,
            narrowed: true,
            stopped_by_load: false,
        };
        // A cell at the implementation's own time limit is recorded, whatever else it says.
        let own_limit = crate::testers::Cell {
            own_time_limit: true,
            stopped_by_load: true,
            ..cell("Z10005", false, Some("Z558"))
        };
        // Its tester calls another function: the implementation did not run for it.
        let not_narrowed = crate::testers::Cell {
            narrowed: false,
            ..cell("Z10006", true, None)
        };
        // Its code caught a failure of the load (a client's calls from code refused) and
        // answered something else, which its validator refused.
        let loaded = crate::testers::Cell {
            stopped_by_load: true,
            ..cell("Z10007", false, Some("Z512"))
        };
        let matrix = crate::testers::Matrix {
            function: "Z10000".into(),
            implementations: vec!["Z10001".into()],
            testers: vec![
                "Z10002".into(),
                "Z10003".into(),
                "Z10004".into(),
                "Z10005".into(),
                "Z10006".into(),
                "Z10007".into(),
            ],
            cells: vec![
                cell("Z10002", true, None),
                cell("Z10003", false, Some("Z558")),
                cell("Z10004", false, Some("Z507")),
                own_limit,
                not_narrowed,
                loaded,
            ],
            passed: 2,
            not_run: 0,
            total: 6,
            ranking: None,
            revisions_at_start: HashMap::new(),
        };
        ranking.record_matrix(&matrix);
        let mut recorded: Vec<String> = ranking
            .store
            .tester_results("Z10001", 0)
            .unwrap()
            .into_iter()
            .map(|result| result.tester)
            .collect();
        recorded.sort();
        assert_eq!(recorded, ["Z10002", "Z10004", "Z10005"]);
    }

    /// The ranked list is the one of the revision it was read at, and comes with that
    /// revision, so writing it over a later save (an editor added Z10003 meanwhile) is a
    /// conflict that loses nothing. The admin route wrote it unconditionally, over whatever
    /// the function had become.
    #[test]
    fn a_ranked_list_is_written_only_over_the_revision_it_was_read_from() {
        let (_dir, ranking) = ranking(RankingConfig::default());
        let function = |implementations: &[&str]| {
            let mut list = vec![serde_json::json!("Z14")];
            list.extend(implementations.iter().map(|zid| serde_json::json!(zid)));
            serde_json::json!({"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z10000"},
                "Z2K2": {"Z1K1": "Z8", "Z8K1": ["Z17"], "Z8K2": "Z6", "Z8K3": ["Z20", "Z10005"],
                         "Z8K4": list, "Z8K5": "Z10000"},
                "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}})
        };
        ranking
            .store
            .put("Z10000", &function(&["Z10001", "Z10002"]), "ed")
            .unwrap();
        let failing = crate::testers::Cell {
            implementation: "Z10001".into(),
            tester: "Z10005".into(),
            passed: false,
            duration_ms: 1.0,
            call_ms: 1.0,
            error: Some(serde_json::json!({"Z1K1": "Z5", "Z5K1": "Z507"})),
            not_run: false,
            own_time_limit: false,
            narrowed: true,
            stopped_by_load: false,
        };
        ranking.record_matrix(&crate::testers::Matrix {
            function: "Z10000".into(),
            implementations: vec!["Z10001".into()],
            testers: vec!["Z10005".into()],
            cells: vec![failing],
            passed: 0,
            not_run: 0,
            total: 1,
            ranking: None,
            revisions_at_start: HashMap::new(),
        });
        let (Some(ranked), explanation) = ranking.ranked_z8k4("Z10000").unwrap() else {
            panic!("the stored order is already the ranked one");
        };
        assert_eq!(explanation.order, ["Z10002", "Z10001"]);
        assert_eq!(ranked.base_revision, 1);
        assert_eq!(
            ranked.z2["Z2K2"]["Z8K4"],
            serde_json::json!(["Z14", "Z10002", "Z10001"])
        );
        ranking
            .store
            .put("Z10000", &function(&["Z10001", "Z10002", "Z10003"]), "ed")
            .unwrap();
        let written =
            ranking
                .store
                .put_based_on("Z10000", &ranked.z2, "admin", Some(ranked.base_revision));
        assert!(
            matches!(written, Err(zeval_store::StoreError::Conflict { .. })),
            "{written:?}"
        );
        let kept = ranking.store.get("Z10000").unwrap().unwrap();
        assert_eq!(kept["Z2K2"]["Z8K4"][3], "Z10003");
    }

    /// Results of a run during which an implementation was saved again are not recorded:
    /// they would be credited to the new revision, which may not be what ran (an editor
    /// could save code after a good revision passed the run's first cells).
    #[test]
    fn a_run_during_which_an_implementation_changed_records_nothing_for_it() {
        let (_dir, ranking) = ranking(RankingConfig::default());
        let z14 = |code: &str| {
            serde_json::json!({"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z10001"},
                "Z2K2": {"Z1K1": "Z14", "Z14K1": "Z10000",
                         "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2": code}},
                "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}})
        };
        ranking.store.put("Z10001", &z14("good"), "ed").unwrap();
        ranking.store.put("Z10001", &z14("bad"), "ed").unwrap();
        let matrix = crate::testers::Matrix {
            function: "Z10000".into(),
            implementations: vec!["Z10001".into()],
            testers: vec!["Z10002".into()],
            cells: vec![crate::testers::Cell {
                implementation: "Z10001".into(),
                tester: "Z10002".into(),
                passed: true,
                duration_ms: 1.0,
                call_ms: 1.0,
                error: None,
                not_run: false,
                own_time_limit: false,
                narrowed: true,
                stopped_by_load: false,
            }],
            passed: 1,
            not_run: 0,
            total: 1,
            ranking: None,
            revisions_at_start: [("Z10001".to_owned(), 1), ("Z10002".to_owned(), 0)].into(),
        };
        ranking.record_matrix(&matrix);
        assert!(
            ranking
                .store
                .tester_results("Z10001", 2)
                .unwrap()
                .is_empty()
        );
        let unchanged = crate::testers::Matrix {
            revisions_at_start: [("Z10001".to_owned(), 2), ("Z10002".to_owned(), 0)].into(),
            ..matrix
        };
        ranking.record_matrix(&unchanged);
        assert_eq!(ranking.store.tester_results("Z10001", 2).unwrap().len(), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let (_dir, ranking) = ranking(RankingConfig::default());
        {
            let mut state = ranking.state();
            for i in 0..MAX_TRACKED {
                state.live.insert(
                    (format!("Z{i}"), 0),
                    Live {
                        recorded: Summary {
                            calls: 1,
                            ..Summary::default()
                        },
                        ..Live::default()
                    },
                );
            }
        }
        ranking.observe("Z1", &info("Z99999999"), &run(1, false));
        let state = ranking.state();
        assert_eq!(state.live.len(), MAX_TRACKED);
        assert_eq!(state.untracked, 1);
    }
}
