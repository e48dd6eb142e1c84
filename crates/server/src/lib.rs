//! The HTTP services of zeval, as axum routers: the orchestrator API (with the objects,
//! testers and MediaWiki-compatible APIs, `/metrics`, health and `/_info`), and the evaluator
//! API; plus [`serve`], which runs them with graceful shutdown. The orchestrator port also
//! serves the web [`playground`] (pages, guest modules for browsers, `POST /v1/plan`).
//!
//! Handlers hold no business logic: they check access, decode, call the library crates
//! through [`CallEngine`] and [`Repository`] (implemented over the orchestrator, evaluator and
//! store crates by the binary's backends), and encode. Every refusal is an [`ApiError`] (one table of
//! statuses in [`problem`]).
//!
//! Limits enforced here (all in [`Config`]): connections, header and idle timeouts
//! ([`serve_listener`]); body sizes (413) and body time (408), work slots per client (429)
//! and per service (503 with `Retry-After`) ([`limits`]); cells and time of a test run
//! ([`testers`]); series per metric ([`metrics`]); and the call time budget (passed to the
//! orchestrator).

pub mod access;
pub mod backends;
mod blocking;
pub mod client_address;
pub mod compilation;
pub mod config;
pub mod drain;
pub mod evaluator_api;
pub mod evaluator_pool;
pub mod evaluators;
pub mod guest_lanes;
pub mod limits;
pub mod metrics;
pub mod narrow;
pub mod objects_api;
mod orchestrator_api;
pub mod playground;
pub mod problem;
pub mod ranking;
pub mod redis_pool;
pub mod reentry_api;
pub mod result_cache;
mod serve;
pub mod shared_limits;
pub mod testers;
pub mod token_checks;
mod unsent;

use std::sync::Arc;

pub use access::{Caller, UserRole};
pub use config::Config;
pub use metrics::Metrics;
pub use problem::ApiError;
pub use serve::{
    SHUTDOWN_GRACE, ServeError, Services, available_cpus, evaluator_app, evaluator_app_draining,
    serve, serve_listener,
};
use zeval_zobject::Value;

/// Runs function calls: the seam between the HTTP layer and the orchestrator.
pub trait CallEngine: Send + Sync {
    /// Orchestrates `zobject` (a Z7 in any form) and returns the canonical Z22 (the normal
    /// one when canonicalization fails, as the original does), asking `policy` (when given)
    /// before every implementation runs.
    fn orchestrate_as(
        &self,
        zobject: Value,
        do_validate: bool,
        policy: Option<Arc<dyn zeval_orchestrator::ImplementationPolicy>>,
    ) -> Value;

    /// [`CallEngine::orchestrate_as`] through the result cache when this engine has one
    /// (see [`result_cache`]); `using` says the caller's access scope and whether to bypass
    /// the lookup.
    fn orchestrate_cached(
        &self,
        zobject: Value,
        do_validate: bool,
        policy: Option<Arc<dyn zeval_orchestrator::ImplementationPolicy>>,
        using: result_cache::CacheUse,
    ) -> Value {
        let _ = using;
        self.orchestrate_as(zobject, do_validate, policy)
    }

    /// [`CallEngine::orchestrate_cached`]'s answer before it is joined into one tree, for
    /// the route that only writes it out ([`zeval_orchestrator::Answer::to_json`] skips the
    /// canonical tree).
    fn answer_cached(
        &self,
        zobject: Value,
        do_validate: bool,
        policy: Option<Arc<dyn zeval_orchestrator::ImplementationPolicy>>,
        using: result_cache::CacheUse,
    ) -> zeval_orchestrator::Answer {
        zeval_orchestrator::Answer::from_value(self.orchestrate_cached(
            zobject,
            do_validate,
            policy,
            using,
        ))
    }

    /// [`CallEngine::orchestrate_as`] with no access policy (every implementation may run).
    fn orchestrate(&self, zobject: Value, do_validate: bool) -> Value {
        self.orchestrate_as(zobject, do_validate, None)
    }

    /// The value (normal form) that [`CallEngine::orchestrate`] answers, or its error, for
    /// callers that use nothing else of the Z22 (a tester's call and its validator). An engine
    /// can skip building the answer's metadata and canonical form
    /// ([`zeval_orchestrator::Answer::into_result`]). `client` is who asked for it
    /// ([`zeval_orchestrator::CallOptions::client`]).
    fn result_of(&self, zobject: Value, do_validate: bool, client: Option<&Arc<str>>) -> ResultOf {
        let _ = client;
        ResultOf {
            result: zeval_orchestrator::Answer::from_value(self.orchestrate(zobject, do_validate))
                .into_result(),
            stopped_by_load: false,
        }
    }
}

/// What [`CallEngine::result_of`] answers.
#[derive(Debug, Clone)]
pub struct ResultOf {
    /// The value (normal form), or the error.
    pub result: Result<Value, Value>,
    /// The load, or the caller's other requests, stopped something the answer depends on
    /// ([`zeval_orchestrator::Trace::stopped_by_load`]): a test run does not record it.
    pub stopped_by_load: bool,
}

/// One revision of a stored object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RevisionInfo {
    /// 1 for the first revision.
    pub revision: u64,
    /// Who wrote it.
    pub author: String,
    /// When, as RFC 3339.
    pub timestamp: String,
    /// The canonical Z2 as written.
    pub object: Value,
}

/// One page of a stored object's history ([`Repository::history`]).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RevisionPage {
    /// The page's revisions, oldest first.
    pub revisions: Vec<RevisionInfo>,
    /// When later revisions exist: the revision to pass as `after` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// One search hit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchHit {
    /// Its ZID.
    pub zid: String,
    /// The ZID of its type (`Z2K2.Z1K1` when a reference).
    #[serde(rename = "type")]
    pub type_zid: Option<String>,
    /// Its English label, if any.
    pub label: Option<String>,
}

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// The object does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The object is part of the built-in catalogue and cannot be written.
    #[error("{0} is built in and cannot be changed")]
    BuiltIn(String),
    /// The store refused the object or operation.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("{0}")]
    Store(String),
    /// The store could not answer in time; a retry may succeed.
    #[error("{0}")]
    Busy(String),
    /// What an approval was based on (the signature it would keep) changed since; nothing
    /// was written.
    #[error("{0}")]
    Changed(String),
    /// A write based on revision `base` found the object at another revision (another
    /// editor saved first); nothing was written.
    #[error("{zid} is at revision {} now, not {base}", current.unwrap_or(0))]
    Conflict {
        /// The object.
        zid: String,
        /// The revision the write was based on (0: a new object).
        base: u64,
        /// The current revision (`None`: the object does not exist).
        current: Option<u64>,
    },
}

/// The objects, users and approvals: the seam between the HTTP layer and the store.
pub trait Repository: Send + Sync {
    /// The canonical Z2 of `zid`: the built-in catalogue's, else the store's latest revision.
    fn get(&self, zid: &str) -> Result<Option<Value>, RepositoryError>;
    /// The revisions of a stored object after revision `after` (0: from the first), oldest
    /// first, at most `limit` (clamped to 1..=[`zeval_store::MAX_HISTORY_REVISIONS`]), and
    /// where the next page starts when there is one (empty for a built-in).
    fn history(&self, zid: &str, after: u64, limit: usize)
    -> Result<RevisionPage, RepositoryError>;
    /// Stores a new revision of `zid` (a validated canonical Z2) and returns its number.
    fn put(&self, zid: &str, z2: &Value, author: &str) -> Result<u64, RepositoryError>;
    /// [`Repository::put`] only if the object is at revision `base` (0: it must be new),
    /// else [`RepositoryError::Conflict`]; `None` is a plain `put`. A repository that cannot
    /// check a base refuses one rather than risk a lost update.
    fn put_based_on(
        &self,
        zid: &str,
        z2: &Value,
        author: &str,
        base: Option<u64>,
    ) -> Result<u64, RepositoryError> {
        match base {
            None => self.put(zid, z2, author),
            Some(_) => Err(RepositoryError::Invalid(
                "this store cannot check the revision a write is based on".into(),
            )),
        }
    }
    /// The current revision of a stored object (`None`: not stored, or not known here).
    fn current_revision(&self, _zid: &str) -> Result<Option<u64>, RepositoryError> {
        Ok(None)
    }
    /// The ZID [`Repository::create`] would allocate now.
    fn next_zid(&self) -> Result<String, RepositoryError>;
    /// Stores `z2` under the next free ZID from Z10000 up, with every `Z0` placeholder
    /// replaced by that ZID, and returns the ZID.
    fn create(&self, z2: &Value, author: &str) -> Result<String, RepositoryError>;
    /// Stored objects whose type is `type_zid` (when given) and whose ZID or labels contain
    /// `text` (case-insensitive, when given), at most `limit`.
    fn search(
        &self,
        type_zid: Option<&str>,
        text: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, RepositoryError>;
    /// How the current revision of `zid` compiled, when it is an implementation in a
    /// compiled language (see [`compilation::report`]).
    fn compilation(&self, _zid: &str) -> Result<Option<Value>, RepositoryError> {
        Ok(None)
    }
    /// Marks the current revision of an implementation approved, only if the revisions the
    /// admin `reviewed` (of the implementation, of its function) are current
    /// ([`RepositoryError::Conflict`] otherwise, and nothing is approved): the revision
    /// approved, when the repository knows it.
    fn approve_revision(
        &self,
        zid: &str,
        by: &Caller,
        reviewed: zeval_store::Reviewed,
    ) -> Result<Option<u64>, RepositoryError>;
    /// What approving implementation `zid` now would keep, and the revisions and tag an
    /// admin names when approving it ([`zeval_store::Reviewed`]).
    fn approval_preview(&self, zid: &str) -> Result<zeval_store::ApprovalPreview, RepositoryError> {
        Err(RepositoryError::Invalid(format!(
            "this server keeps no approvals to preview for {zid}"
        )))
    }
    /// The current revision of an implementation (its Z2) when that revision is approved,
    /// read in one go, so that it is the revision the approval is of; `None` when it is not
    /// approved or does not exist, with the signature its function had when approved
    /// ([`zeval_store::Approval::signature`]). Built-ins always are (with none: their
    /// functions are the catalogue's).
    fn approved_object(
        &self,
        zid: &str,
    ) -> Result<Option<zeval_store::ApprovedObject>, RepositoryError>;
    /// `zid` as calls read it: through the object cache (which may hold, for seconds, an older
    /// revision than the store's), and from the wiki when the store lacks it.
    fn get_as_called(&self, zid: &str) -> Result<Option<Value>, RepositoryError> {
        self.get(zid)
    }
    /// Drops whatever copy of `zid` the object cache calls read holds, so that the next call
    /// reads it from the store (the access rule found it older than the approved revision).
    fn forget_cached(&self, zid: &str) {
        let _ = zid;
    }
    /// The user a bearer token belongs to.
    fn authenticate(&self, token: &str) -> Result<Option<Caller>, RepositoryError>;
    /// [`Repository::authenticate`] if it can answer without waiting for anything (no network,
    /// no lock another thread holds), so that async code may call it directly; `None` when it
    /// cannot, and then the caller uses [`Repository::authenticate`] on a blocking thread.
    fn authenticate_at_once(&self, token: &str) -> Option<Result<Option<Caller>, RepositoryError>> {
        let _ = token;
        None
    }
    /// How many objects the store holds (for `/metrics`).
    fn object_count(&self) -> Result<u64, RepositoryError>;
}

/// What every orchestrator-side handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The configuration in effect.
    pub config: Arc<Config>,
    /// The process's metrics.
    pub metrics: Arc<Metrics>,
    /// Function calls.
    pub engine: Arc<dyn CallEngine>,
    /// Objects, users, approvals.
    pub repository: Arc<dyn Repository>,
    /// The order of implementations, and the figures behind it.
    pub ranking: Arc<ranking::Ranking>,
    /// The per-client limits shared through Redis (`limits.redis_url`), if configured.
    pub shared_limits: Option<Arc<shared_limits::SharedLimits>>,
    /// Tokens found valid lately, and each client's token checks waiting for the store.
    pub token_checks: Arc<token_checks::TokenChecks>,
}

pub use orchestrator_api::router as orchestrator_router;
