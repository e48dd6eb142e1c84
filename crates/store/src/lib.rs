//! Where ZObjects come from.
//!
//! [`ObjectSource`] is the one interface the orchestrator fetches through. Sources are
//! layered catalogue → local (directory or SQLite) → wiki ([`Layered`]), with a cache per
//! request (the orchestrator's) and one shared between requests ([`SharedCache`]).
//!
//! - [`DirSource`]: a directory of canonical Z2 files, one per ZID.
//! - [`SqliteStore`]: the embedded store with revision history, users and approvals.
//! - [`PostgresStore`]: the same store on PostgreSQL, shared by several nodes.
//! - [`Store`]: either of the two, chosen by a database URL; what the server holds.
//! - [`WikiSource`]: a MediaWiki API serving `action=wikilambda_fetch`.

use std::collections::HashMap;
use std::time::Instant;

use zeval_zobject::Value;

mod backend;
pub mod call_deadline;
pub mod catalogue;
mod dir;
mod layered;
mod postgres;
mod sqlite;
mod wiki;

pub use backend::{Store, is_postgres_url, redacted_url};
pub use dir::{DirSource, read_object_file};
pub use layered::{
    CacheStats, DEFAULT_CACHE_BYTES, DEFAULT_CACHE_ENTRIES, Layered, SharedCache, estimated_bytes,
};
pub use postgres::{
    CONNECT_TIMEOUT, CUT_AFTER_DEADLINE, CUT_AFTER_STATEMENT_TIMEOUT, KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES, POOL_SIZE, POOL_WAIT, PostgresLimits, PostgresStore,
    STATEMENT_TIMEOUT, TCP_USER_TIMEOUT,
};
pub use sqlite::artifacts::{
    ArtifactOutcome, ArtifactSummary, Compilation, MAX_ARTIFACT_BYTES, MAX_ARTIFACT_ERROR_CHARS,
    StoredArtifact,
};
pub use sqlite::ranking::{CallStats, MAX_SKETCH_BYTES, MAX_TESTER_RESULTS, TesterResult};
pub use sqlite::summary::with_placeholder_replaced;
pub use sqlite::users::{
    Approval, ApprovalPreview, ApprovedObject, MAX_KEPT_SIGNATURE_BYTES, MAX_USER_NAME_CHARS,
    Reviewed, Role, User, UserRecord, signature_tag,
};
pub use sqlite::{
    BUSY_TIMEOUT, CATALOGUE_AUTHOR, DATABASE_FILE, FIRST_USER_ZID, HistoryPage,
    MAX_HISTORY_PAGE_BYTES, MAX_HISTORY_REVISIONS, MAX_OBJECT_DEPTH, MAX_SEARCH_RESULTS,
    MAX_SUMMARY_LABEL_CHARS, MAX_ZID_NUMBER, ObjectSummary, READ_CONNECTIONS, READ_WAIT, Revision,
    SEARCH_TIME_LIMIT, SqliteStore,
};
pub use wiki::{
    DEFAULT_MISSING_TTL, DEFAULT_WIKI_TIMEOUT, MAX_ANSWER_VALUES, MAX_MISSING_ENTRIES,
    MAX_RESPONSE_BYTES, MAX_ZIDS_PER_REQUEST, WikiSource,
};

/// Why a store operation failed. (A ZID that simply does not exist is not an error: a fetch
/// leaves it out of the answer.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The wiki (or another remote source) could not be reached or answered nonsense.
    #[error("fetching {zids} failed: {message}")]
    Fetch {
        /// The ZIDs asked for, joined by `|`.
        zids: String,
        /// What went wrong.
        message: String,
    },
    /// The local database failed.
    #[error("database error: {0}")]
    Database(String),
    /// An object is not valid for the operation.
    #[error("invalid object: {0}")]
    Invalid(String),
    /// The object is not in the store (e.g. approving a ZID nobody wrote).
    #[error("{0} is not in the store")]
    NotFound(String),
    /// A user name or role is not acceptable.
    #[error("invalid user: {0}")]
    InvalidUser(String),
    /// `add_user` with a name that is taken.
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    /// The user may not do this (e.g. an editor approving an implementation).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A ZID past [`MAX_ZID_NUMBER`]: no write path (put, create, import, seed) stores one.
    #[error("{zid} is past the largest ZID the store accepts (Z{max})")]
    ZidOutOfRange {
        /// The refused ZID.
        zid: String,
        /// [`MAX_ZID_NUMBER`].
        max: u64,
    },
    /// A new object could not get a ZID: every number from [`FIRST_USER_ZID`] to
    /// [`MAX_ZID_NUMBER`] is taken, or the chosen one is already stored (never overwritten).
    #[error("no ZID could be allocated: {0}")]
    Allocation(String),
    /// The caller's deadline passed before (or while) the source was asked; no request was
    /// started after it.
    #[error("the deadline passed before {zids} could be fetched")]
    DeadlineExceeded {
        /// The ZIDs still wanted, joined by `|`.
        zids: String,
    },
    /// A write based on revision `base` of `zid` found another current revision (another
    /// editor saved first): nothing was written.
    #[error("{zid} is at revision {} now, not {base}", current.unwrap_or(0))]
    Conflict {
        /// The object.
        zid: String,
        /// The revision the write was based on (0: none, a new object).
        base: u64,
        /// Its current revision (`None`: it does not exist).
        current: Option<u64>,
    },
    /// What an operation was based on changed since (the signature an approval would keep,
    /// say): nothing was written.
    #[error("{0}")]
    Changed(String),
    /// The store could not answer in time: no read connection came free within
    /// [`READ_WAIT`] (PostgreSQL: no connection within `POOL_WAIT`), a search ran past
    /// [`SEARCH_TIME_LIMIT`], or a PostgreSQL statement past its `statement_timeout`.
    #[error("the store is busy: {0}")]
    Busy(String),
    /// Recording a compilation would leave the artifacts that one author's compilations
    /// name holding more than their budget (`Compilation::author_budget`): nothing was
    /// recorded.
    #[error(
        "the compiled artifacts of {author:?}'s implementations would hold {bytes} bytes, over their budget of {budget}"
    )]
    OverBudget {
        /// The author of the compiled revision.
        author: String,
        /// What their artifacts would hold.
        bytes: u64,
        /// The budget.
        budget: u64,
    },
    /// A file or directory could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl StoreError {
    /// A [`StoreError::DeadlineExceeded`] naming `zids` (a connection's wait knows none);
    /// any other error as it is.
    pub(crate) fn naming_zids(self, zids: &[String]) -> StoreError {
        match self {
            StoreError::DeadlineExceeded { .. } => StoreError::DeadlineExceeded {
                zids: zids.join("|"),
            },
            other => other,
        }
    }
}

/// A source of persistent objects (canonical Z2s), looked up by ZID.
pub trait ObjectSource: Send + Sync {
    /// Fetches the canonical Z2 of each ZID. ZIDs that do not exist are left out of the map;
    /// an `Err` means the source itself failed.
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError>;

    /// [`Self::fetch`], giving up at `deadline` (`None`: no deadline beyond the source's own
    /// timeouts). A remote source bounds each request by the time left and answers
    /// [`StoreError::DeadlineExceeded`] without a request once none is; wrappers pass the
    /// deadline on. Local sources answer at once, so the default simply calls `fetch`.
    fn fetch_before(
        &self,
        zids: &[String],
        deadline: Option<Instant>,
    ) -> Result<HashMap<String, Value>, StoreError> {
        let _ = deadline;
        self.fetch(zids)
    }
}

/// The ZID a Z2 names in `Z2K1`: canonical `{"Z1K1":"Z6","Z6K1":"Z123"}` or a bare `"Z123"`.
pub fn z2_id(z2: &Value) -> Option<&str> {
    match z2.get("Z2K1")? {
        Value::String(s) => Some(s),
        Value::Object(m) => m.get("Z6K1")?.as_str(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn z2_id_reads_both_forms() {
        assert_eq!(
            z2_id(&json!({"Z2K1": {"Z1K1": "Z6", "Z6K1": "Z12"}})),
            Some("Z12")
        );
        assert_eq!(z2_id(&json!({"Z2K1": "Z12"})), Some("Z12"));
        assert_eq!(z2_id(&json!({"Z2K1": 12})), None);
        assert_eq!(z2_id(&json!({})), None);
    }
}
