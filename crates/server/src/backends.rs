//! The real backends behind the HTTP seams: the store ([`StoreRepository`] over
//! [`Store`], SQLite or PostgreSQL), the object source the orchestrator reads (catalogue → store → wiki,
//! behind the store's [`SharedCache`], shared between requests), the orchestrator ([`OrchestratorEngine`]),
//! and the evaluators it hands code to, in process or remote (see [`crate::evaluators`]).

use std::sync::Arc;
use std::time::Duration;

use zeval_orchestrator::{CallOptions, Orchestrator, OrchestratorConfig};
use zeval_store::catalogue::CatalogueSource;
use zeval_store::{DEFAULT_CACHE_ENTRIES, Layered, SharedCache, Store, StoreError, WikiSource};
use zeval_zobject::Value;

use crate::access::{Caller, UserRole};
use crate::config::Config;
use crate::metrics::{Metrics, Sample};
use crate::result_cache::{CacheUse, CallCache};
use crate::{CallEngine, Repository, RepositoryError, RevisionInfo, RevisionPage, SearchHit};

/// Opens the store: the PostgreSQL database of `database_url` when set, else
/// `<data_dir>/zeval.sqlite` (created on the first run). Either is migrated and seeded with
/// the built-in catalogue (objects already there are left alone).
pub fn open_store(config: &Config) -> Result<Arc<Store>, StoreError> {
    let store = Store::open_url(config.database_url.as_deref(), &config.data_dir, true)?;
    Ok(Arc::new(store.with_search_time_limit(
        Duration::from_millis(config.limits.search_time_ms),
    )))
}

/// The object source shared by every request: catalogue → store → wiki, behind an LRU cache
/// that writes invalidate.
pub type ObjectCache = SharedCache<Layered>;

/// What the HTTP layer makes of a store error: the caller's mistakes (a bad object, a ZID
/// past [`zeval_store::MAX_ZID_NUMBER`], a missing object) are theirs to see; anything else
/// is a store failure, whose text only reaches the log.
fn repo_error(e: StoreError) -> RepositoryError {
    match e {
        StoreError::Invalid(message) => RepositoryError::Invalid(message),
        StoreError::ZidOutOfRange { .. } => RepositoryError::Invalid(e.to_string()),
        StoreError::NotFound(zid) => RepositoryError::NotFound(zid),
        busy @ StoreError::Busy(_) => RepositoryError::Busy(busy.to_string()),
        // A wait cut by the deadline in force on the thread (`zeval_store::call_deadline`).
        StoreError::DeadlineExceeded { .. } => {
            RepositoryError::Busy("the store did not answer in time".to_owned())
        }
        StoreError::Conflict { zid, base, current } => {
            RepositoryError::Conflict { zid, base, current }
        }
        StoreError::Changed(message) => RepositoryError::Changed(message),
        other => RepositoryError::Store(other.to_string()),
    }
}

/// The objects API over the store.
pub struct StoreRepository {
    store: Arc<Store>,
    cache: Arc<ObjectCache>,
    /// Compiles implementations in compiled languages when they are written.
    artifacts: Option<Arc<zeval_evaluator::Artifacts>>,
    /// What the store keeps of one author's artifacts.
    artifact_bytes_per_author: u64,
    /// Told of every write, so that cached answers that read the object miss.
    results: Option<Arc<CallCache>>,
}

impl StoreRepository {
    /// Writes go to `store` and invalidate `cache`.
    pub fn new(store: Arc<Store>, cache: Arc<ObjectCache>) -> Self {
        StoreRepository {
            store,
            cache,
            artifacts: None,
            artifact_bytes_per_author: crate::config::DEFAULT_STORED_ARTIFACT_BYTES_PER_AUTHOR,
            results: None,
        }
    }

    /// Bumps the written object's generation in `results` on every write.
    pub fn with_result_cache(mut self, results: Option<Arc<CallCache>>) -> Self {
        self.results = results;
        self
    }

    /// A write of `zid` is visible: answers that read it must miss from now on.
    fn written(&self, zid: &str) {
        if let Some(results) = &self.results {
            results.bump(zid);
        }
    }

    /// Compiles implementations in compiled languages with `artifacts` when they are written,
    /// and stores each author's within `bytes_per_author`
    /// (`[compiler] stored_artifact_bytes_per_author`).
    pub fn with_artifacts(
        mut self,
        artifacts: Option<Arc<zeval_evaluator::Artifacts>>,
        bytes_per_author: u64,
    ) -> Self {
        self.artifacts = artifacts;
        self.artifact_bytes_per_author = bytes_per_author;
        self
    }

    /// The compilation unit of `z2` when it is a compiled implementation.
    fn unit_of(&self, z2: &Value) -> Option<zeval_compiler::Unit> {
        crate::compilation::unit_of(z2, |zid| self.get(zid).ok().flatten())
    }

    /// Compiles revision `revision` of `zid`, saved by `author`, when it is a compiled
    /// implementation.
    fn compile(&self, zid: &str, revision: u64, z2: &Value, author: &str) {
        let Some(artifacts) = &self.artifacts else {
            return;
        };
        if let Some(unit) = self.unit_of(z2) {
            crate::compilation::compile_revision(
                artifacts,
                &self.store,
                zid,
                revision,
                &unit,
                author,
                self.artifact_bytes_per_author,
            );
        }
    }
}

impl Repository for StoreRepository {
    fn get(&self, zid: &str) -> Result<Option<Value>, RepositoryError> {
        if let Some(builtin) = zeval_catalogue::get(zid) {
            return Ok(Some(builtin.clone()));
        }
        self.store.get(zid).map_err(repo_error)
    }

    fn history(
        &self,
        zid: &str,
        after: u64,
        limit: usize,
    ) -> Result<RevisionPage, RepositoryError> {
        let page = self.store.history(zid, after, limit).map_err(repo_error)?;
        Ok(RevisionPage {
            revisions: page
                .revisions
                .into_iter()
                .map(|r| RevisionInfo {
                    revision: r.revision,
                    author: r.author,
                    timestamp: rfc3339(r.timestamp_ms),
                    object: r.object,
                })
                .collect(),
            next: page.next,
        })
    }

    fn put(&self, zid: &str, z2: &Value, author: &str) -> Result<u64, RepositoryError> {
        self.put_based_on(zid, z2, author, None)
    }

    fn put_based_on(
        &self,
        zid: &str,
        z2: &Value,
        author: &str,
        base: Option<u64>,
    ) -> Result<u64, RepositoryError> {
        let revision = self
            .store
            .put_based_on(zid, z2, author, base)
            .map_err(repo_error)?;
        self.cache.invalidate(zid);
        self.written(zid);
        self.compile(zid, revision, z2, author);
        Ok(revision)
    }

    fn current_revision(&self, zid: &str) -> Result<Option<u64>, RepositoryError> {
        if zeval_catalogue::get(zid).is_some() {
            return Ok(None);
        }
        self.store.current_revision(zid).map_err(repo_error)
    }

    fn next_zid(&self) -> Result<String, RepositoryError> {
        self.store.next_zid().map_err(repo_error)
    }

    fn create(&self, z2: &Value, author: &str) -> Result<String, RepositoryError> {
        let zid = self.store.create(z2, author).map_err(repo_error)?;
        self.cache.invalidate(&zid);
        self.written(&zid);
        if self.artifacts.is_some()
            && let Ok(Some(stored)) = self.store.get(&zid)
        {
            self.compile(&zid, 1, &stored, author);
        }
        Ok(zid)
    }

    fn search(
        &self,
        type_zid: Option<&str>,
        text: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, RepositoryError> {
        Ok(self
            .store
            .search(type_zid, text, limit)
            .map_err(repo_error)?
            .into_iter()
            .map(|s| SearchHit {
                zid: s.zid,
                type_zid: s.type_zid,
                label: s.label,
            })
            .collect())
    }

    fn compilation(&self, zid: &str) -> Result<Option<Value>, RepositoryError> {
        let (Some(artifacts), Some(z2)) =
            (&self.artifacts, self.store.get(zid).map_err(repo_error)?)
        else {
            return Ok(None);
        };
        let Some(unit) = self.unit_of(&z2) else {
            return Ok(None);
        };
        let revision = self
            .store
            .current_revision(zid)
            .map_err(repo_error)?
            .unwrap_or(0);
        let Some(key) = artifacts.toolchain().key(&unit) else {
            return Ok(None);
        };
        let mut report = crate::compilation::report(artifacts, zid, revision, &unit, &key);
        let recorded = self.store.compilation(zid, revision).map_err(repo_error)?;
        report["stored"] = serde_json::json!(recorded == Some(key.to_hex()));
        Ok(Some(report))
    }

    fn approval_preview(&self, zid: &str) -> Result<zeval_store::ApprovalPreview, RepositoryError> {
        self.store.approval_preview(zid).map_err(repo_error)
    }

    fn approve_revision(
        &self,
        zid: &str,
        by: &Caller,
        reviewed: zeval_store::Reviewed,
    ) -> Result<Option<u64>, RepositoryError> {
        let user = zeval_store::User {
            name: by.name.clone(),
            role: match by.role {
                UserRole::Admin => zeval_store::Role::Admin,
                UserRole::Editor => zeval_store::Role::Editor,
            },
        };
        let revision = self
            .store
            .approve_revision(zid, &user, reviewed)
            .map_err(repo_error)?;
        // What an anonymous call may run changed: answers that read the implementation, or
        // the function it implements (which lists it), must miss.
        self.written(zid);
        let implemented = self.store.get(zid).ok().flatten().and_then(|z2| {
            z2.get("Z2K2")?
                .get("Z14K1")
                .and_then(zeval_zobject::build::ref_zid)
                .map(str::to_owned)
        });
        if let Some(function) = implemented {
            self.written(&function);
        }
        Ok(Some(revision))
    }

    fn get_as_called(&self, zid: &str) -> Result<Option<Value>, RepositoryError> {
        use zeval_store::ObjectSource;
        let mut found = self.cache.fetch(&[zid.to_owned()]).map_err(repo_error)?;
        Ok(found.remove(zid))
    }

    fn forget_cached(&self, zid: &str) {
        self.cache.invalidate(zid);
    }

    fn approved_object(
        &self,
        zid: &str,
    ) -> Result<Option<zeval_store::ApprovedObject>, RepositoryError> {
        if let Some(builtin) = zeval_catalogue::get(zid) {
            return Ok(Some(zeval_store::ApprovedObject {
                object: builtin.clone(),
                signature: None,
            }));
        }
        self.store.approved_object(zid).map_err(repo_error)
    }

    fn authenticate(&self, token: &str) -> Result<Option<Caller>, RepositoryError> {
        Ok(self
            .store
            .authenticate(token)
            .map_err(repo_error)?
            .map(caller_of))
    }

    fn authenticate_at_once(&self, token: &str) -> Option<Result<Option<Caller>, RepositoryError>> {
        let found = self.store.authenticate_at_once(token)?;
        Some(found.map(|user| user.map(caller_of)).map_err(repo_error))
    }

    fn object_count(&self) -> Result<u64, RepositoryError> {
        self.store.count().map_err(repo_error)
    }
}

/// `2026-11-26T13:05:00.123Z` from milliseconds since the epoch (UTC, proleptic Gregorian).
pub(crate) fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Calls through the orchestrator crate.
pub struct OrchestratorEngine {
    orchestrator: Orchestrator,
    selector: Option<Arc<dyn zeval_orchestrator::ImplementationSelector>>,
    results: Option<Arc<CallCache>>,
}

impl OrchestratorEngine {
    /// Wraps an orchestrator (implementations in list order).
    pub fn new(orchestrator: Orchestrator) -> Self {
        OrchestratorEngine {
            orchestrator,
            selector: None,
            results: None,
        }
    }

    /// Answers calls through `results` when given (see [`crate::result_cache`]).
    pub fn with_result_cache(mut self, results: Option<Arc<CallCache>>) -> Self {
        self.results = results;
        self
    }

    /// Orders implementations with `selector` (the ranking).
    pub fn with_selector(
        mut self,
        selector: Arc<dyn zeval_orchestrator::ImplementationSelector>,
    ) -> Self {
        self.selector = Some(selector);
        self
    }
}

impl OrchestratorEngine {
    /// A request's options: its validation flag and access rules, with this engine's
    /// ranking.
    fn options(
        &self,
        do_validate: bool,
        policy: Option<Arc<dyn zeval_orchestrator::ImplementationPolicy>>,
    ) -> CallOptions {
        CallOptions {
            do_validate,
            policy,
            selector: self.selector.clone(),
            ..CallOptions::default()
        }
    }
}

impl OrchestratorEngine {
    /// [`OrchestratorEngine::options`] with the request's own deadline, when it has one (a call
    /// run in the reserve, [`crate::limits::ReservedTime`]), and its client.
    fn options_within(
        &self,
        do_validate: bool,
        policy: Option<Arc<dyn zeval_orchestrator::ImplementationPolicy>>,
        using: &CacheUse,
    ) -> CallOptions {
        CallOptions {
            timeout: using.timeout,
            client: using.client.clone(),
            ..self.options(do_validate, policy)
        }
    }
}

impl CallEngine for OrchestratorEngine {
    fn orchestrate_as(
        &self,
        zobject: Value,
        do_validate: bool,
        policy: Option<Arc<dyn zeval_orchestrator::ImplementationPolicy>>,
    ) -> Value {
        self.orchestrator
            .orchestrate(&zobject, &self.options(do_validate, policy))
    }

    fn result_of(
        &self,
        zobject: Value,
        do_validate: bool,
        client: Option<&Arc<str>>,
    ) -> crate::ResultOf {
        let (answer, trace) = self.orchestrator.answer_traced(
            &zobject,
            &CallOptions {
                value_only: true,
                client: client.cloned(),
                ..self.options(do_validate, None)
            },
        );
        crate::ResultOf {
            result: answer.into_result(),
            stopped_by_load: trace.stopped_by_load,
        }
    }

    fn answer_cached(
        &self,
        zobject: Value,
        do_validate: bool,
        policy: Option<Arc<dyn zeval_orchestrator::ImplementationPolicy>>,
        using: CacheUse,
    ) -> zeval_orchestrator::Answer {
        // The result cache keeps and annotates trees; without one the answer leaves as
        // text written straight from its normal form.
        if self.results.is_some() {
            return zeval_orchestrator::Answer::from_value(self.orchestrate_cached(
                zobject,
                do_validate,
                policy,
                using,
            ));
        }
        let options = self.options_within(do_validate, policy, &using);
        self.orchestrator.answer(&zobject, &options)
    }

    fn orchestrate_cached(
        &self,
        zobject: Value,
        do_validate: bool,
        policy: Option<Arc<dyn zeval_orchestrator::ImplementationPolicy>>,
        using: CacheUse,
    ) -> Value {
        let options = self.options_within(do_validate, policy, &using);
        let Some(results) = &self.results else {
            return self.orchestrator.orchestrate(&zobject, &options);
        };
        results.call(&zobject, do_validate, &using, || {
            let (answer, trace) = self.orchestrator.orchestrate_traced(&zobject, &options);
            (answer, Some(trace))
        })
    }
}

/// The orchestrator's object source for `config`: catalogue → store → wiki (when
/// configured), behind one shared cache of [`DEFAULT_CACHE_ENTRIES`] objects.
pub fn object_source(config: &Config, store: Arc<Store>) -> Arc<ObjectCache> {
    // Other nodes write a PostgreSQL store too, and nobody tells this cache.
    let shared_store = store.backend() == "postgres";
    let mut layers = Layered::new().with(CatalogueSource).with_shared(store);
    if let Some(url) = &config.wiki_url {
        layers = layers.with(WikiSource::new(url.clone()));
    }
    let cache = SharedCache::new(layers, DEFAULT_CACHE_ENTRIES);
    Arc::new(if shared_store {
        cache.with_max_age(SHARED_STORE_OBJECT_MAX_AGE)
    } else {
        cache
    })
}

/// How long an object read from a PostgreSQL store is used before it is read again: another
/// node's write is seen within it. Until 2026-12-05 it was used for as long as it stayed in
/// the cache, and a node that kept an old revision of an implementation ran it, also as
/// approved once an admin had approved a newer revision on another node. A popular object
/// costs each node one read per this long.
pub const SHARED_STORE_OBJECT_MAX_AGE: Duration = Duration::from_secs(5);

/// Everything the orchestrator side needs, built from `config`.
///
/// `shared` is the evaluator of this process's evaluator API, if it has one (see
/// [`crate::evaluators::registry`]).
pub fn orchestrator_state(
    config: &Config,
    metrics: &Arc<Metrics>,
    shared: Option<Arc<zeval_evaluator::Evaluator>>,
) -> Result<crate::AppState, crate::ServeError> {
    let setup = |e: &dyn std::fmt::Display| crate::ServeError::Setup(e.to_string());
    let store = open_store(config).map_err(|e| setup(&e))?;
    if let Some(evaluator) = &shared {
        let sampled = Arc::clone(evaluator);
        metrics.add_counter(
            "zeval_code_cache_hits_total",
            "Guest calls that found compiled code kept from an earlier call of the same code, instead of compiling it.",
            move || sampled.code_cache_hits(),
        );
    }
    // The evaluator's artifacts when it runs here, so that a write compiles into the same
    // memory cache the calls read; else artifacts of this store.
    let artifacts = match shared.as_ref().and_then(|e| e.artifacts().cloned()) {
        Some(artifacts) => Some(artifacts),
        None => crate::compilation::artifacts(
            config,
            Some(Arc::new(crate::compilation::StoreArtifacts(store.clone()))),
        ),
    };
    let cache = object_source(config, store.clone());
    let evaluators = crate::evaluators::registry(config, metrics, shared).map_err(|e| setup(&e))?;
    let orchestrator = Orchestrator::new(
        cache.clone(),
        evaluators,
        OrchestratorConfig {
            timeout: Duration::from_millis(config.limits.call_timeout_ms),
            budget: config.limits.budget(),
            reentry: config.limits.reentry(),
            instance_name: config.instance_name(),
            ..OrchestratorConfig::default()
        },
    );
    // Another node's write seen in Redis drops the object from this node's object cache.
    let objects = cache.clone();
    let results = CallCache::from_settings(
        &config.cache,
        Box::new(move |zid: &str| objects.invalidate(zid)),
    )
    .map_err(|e| setup(&e))?;
    if let Some(results) = &results {
        results.add_metrics(metrics);
    }
    let repository = Arc::new(
        StoreRepository::new(store.clone(), cache.clone())
            .with_artifacts(artifacts, config.compiler.stored_artifact_bytes_per_author)
            .with_result_cache(results.clone()),
    );
    let shared_limits = shared_limits(config, metrics)?;
    let ranking = Arc::new(
        crate::ranking::Ranking::new(store.clone(), config.ranking.config())
            .with_shared(shared_ranking_figures(config)?),
    );
    ranking
        .flush_periodically()
        .map_err(|e| crate::ServeError::Setup(format!("starting the ranking's flusher: {e}")))?;
    let exposed = ranking.clone();
    metrics.add_text_sampler(Box::new(move || exposed.exposition()));
    if ranking.shared_errors().is_some() {
        let sampled = ranking.clone();
        metrics.add_counter(
            "zeval_ranking_shared_errors_total",
            "Times the Redis of the shared ranking figures failed (the node then ranks with its own).",
            move || sampled.shared_errors().unwrap_or(0),
        );
    }
    let sampled_store = store.clone();
    let sampled_cache = cache.clone();
    metrics.add_sampler(Box::new(move || {
        let stats = sampled_cache.stats();
        let (hits, misses) = (stats.hits, stats.misses);
        let mut samples = vec![
            Sample {
                name: "zeval_cache_hits_total",
                kind: "counter",
                help: "Object lookups served by the shared cache.",
                value: hits as f64,
            },
            Sample {
                name: "zeval_cache_misses_total",
                kind: "counter",
                help: "Object lookups the shared cache passed on to the sources.",
                value: misses as f64,
            },
        ];
        if let Ok(n) = sampled_store.count() {
            samples.push(Sample {
                name: "zeval_store_objects",
                kind: "gauge",
                help: "Objects in the embedded store.",
                value: n as f64,
            });
        }
        samples
    }));
    Ok(crate::AppState {
        config: Arc::new(config.clone()),
        metrics: metrics.clone(),
        engine: Arc::new(
            OrchestratorEngine::new(orchestrator)
                .with_selector(ranking.clone())
                .with_result_cache(results),
        ),
        repository,
        ranking,
        shared_limits,
        token_checks: Arc::new(crate::token_checks::TokenChecks::new(
            crate::client_address::TrustedProxies::parse(&config.limits.trusted_proxies)
                .unwrap_or_default(),
            config.limits.client_ipv6_prefix,
        )),
    })
}

/// The real-call figures shared through `ranking.redis_url`, when it is set.
fn shared_ranking_figures(
    config: &Config,
) -> Result<Option<crate::ranking::shared::SharedFigures>, crate::ServeError> {
    let Some(url) = config
        .ranking
        .redis_url
        .as_deref()
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    crate::ranking::shared::SharedFigures::new(
        url,
        Duration::from_millis(config.ranking.redis_timeout_ms),
    )
    .map(Some)
    .map_err(|e| crate::ServeError::Setup(e.to_string()))
}

/// The per-client limits shared through `limits.redis_url`, when it is set.
fn shared_limits(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<Option<Arc<crate::shared_limits::SharedLimits>>, crate::ServeError> {
    let Some(url) = config.limits.redis_url.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let limits = &config.limits;
    let key_secret = limits.redis_key_secret.as_deref().filter(|s| !s.is_empty());
    if key_secret.is_none() {
        tracing::warn!(
            "limits.redis_key_secret is not set: clients reach the Redis of the shared limits \
             hashed without a secret, and anyone who can read that Redis can recover their IPv4 \
             addresses; set one (the same on every node)"
        );
    }
    let shared = crate::shared_limits::SharedLimits::with_key_secret(
        url,
        Duration::from_millis(limits.redis_timeout_ms),
        crate::shared_limits::longest_request(limits),
        limits.per_client_concurrent_requests,
        limits.per_client_requests_per_minute,
        key_secret,
    )
    .map_err(|e| crate::ServeError::Setup(e.to_string()))?;
    let shared = Arc::new(shared);
    let sampled = shared.clone();
    metrics.add_counter(
        "zeval_shared_limits_errors_total",
        "Times the Redis of the shared per-client limits failed (the node then counts alone).",
        move || sampled.errors(),
    );
    Ok(Some(shared))
}

fn caller_of(user: zeval_store::User) -> Caller {
    Caller {
        name: user.name,
        role: match user.role {
            zeval_store::Role::Admin => UserRole::Admin,
            zeval_store::Role::Editor => UserRole::Editor,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }
}
