//! [`Store`]: the object store on either backend, chosen by a URL. Everything above the
//! store crate (the server, the commands) holds a `Store` and never names a backend.
//!
//! Calls to PostgreSQL made on an async runtime's thread are moved off it
//! ([`outside_runtime`]), so the server may call the store anywhere, like SQLite.
//!
//! An enum rather than a trait object: the backends have the same inherent methods (one
//! test suite checks they answer alike), generic ones included (`seed`), and callers keep
//! calling methods as before.

use std::collections::HashMap;
use std::path::Path;

use zeval_zobject::Value;

use crate::postgres::PostgresStore;
use crate::postgres::pool::outside_runtime;
use crate::{
    Approval, ApprovalPreview, ApprovedObject, ArtifactSummary, CallStats, Compilation,
    HistoryPage, ObjectSource, ObjectSummary, Reviewed, Role, SqliteStore, StoreError,
    StoredArtifact, TesterResult, User, UserRecord,
};

/// The object store: SQLite (embedded, one node) or PostgreSQL (shared by several nodes).
#[derive(Debug)]
pub enum Store {
    /// A SQLite file (or memory).
    Sqlite(Box<SqliteStore>),
    /// A PostgreSQL database.
    Postgres(Box<PostgresStore>),
}

/// Whether `url` names a PostgreSQL database (`postgres://…` or `postgresql://…`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` with its password (if any) replaced by `***`, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    // The user information ends at the last `@`: a password may hold `/`, `?` or `#`
    // unescaped, and cutting the authority at the first of those left it whole. A query
    // value with an `@` makes more of the URL redacted than needed, never less.
    let url = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => match rest[..at].split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
                None => url.to_string(),
            },
            None => url.to_string(),
        },
        None => url.to_string(),
    };
    redact_password_values(&url)
}

/// `password=…` (a URL's query parameter, or a libpq `key=value` connection string, quoted
/// or not) with its value replaced by `***`.
fn redact_password_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("password=") {
        let value_start = found + "password=".len();
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        let value = &rest[value_start..];
        let value_len = match value.strip_prefix('\'') {
            Some(quoted) => {
                let mut escaped = false;
                let mut end = quoted.len();
                for (i, c) in quoted.char_indices() {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '\'') => {
                            end = i + 1;
                            break;
                        }
                        _ => {}
                    }
                }
                1 + end
            }
            None => value
                .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
                .unwrap_or(value.len()),
        };
        rest = &value[value_len..];
    }
    out.push_str(rest);
    out
}

macro_rules! delegate {
    ($(
        $(#[$doc:meta])*
        fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty;
    )*) => {$(
        $(#[$doc])*
        pub fn $name(&self $(, $arg: $ty)*) -> $ret {
            match self {
                Store::Sqlite(store) => store.$name($($arg),*),
                Store::Postgres(store) => outside_runtime(|| store.$name($($arg),*)),
            }
        }
    )*};
}

impl Store {
    /// Opens the store `database_url` names: a PostgreSQL URL connects to that database;
    /// `None` (or a `sqlite://PATH` URL) opens the SQLite file (`<data_dir>/zeval.sqlite`, or
    /// PATH). Either way the schema is migrated, and the built-in catalogue is seeded when
    /// `seed` is set.
    pub fn open_url(
        database_url: Option<&str>,
        data_dir: &Path,
        seed: bool,
    ) -> Result<Self, StoreError> {
        let store = match database_url.filter(|u| !u.is_empty()) {
            Some(url) if is_postgres_url(url) => {
                Store::Postgres(Box::new(outside_runtime(|| PostgresStore::connect(url))?))
            }
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(path) => Store::Sqlite(Box::new(SqliteStore::open(path)?)),
                None => {
                    return Err(StoreError::Database(
                        "a database URL starts with postgres://, postgresql:// or sqlite://".into(),
                    ));
                }
            },
            None => Store::Sqlite(Box::new(SqliteStore::open_in(data_dir)?)),
        };
        if seed {
            let added = store.seed_catalogue()?;
            if added > 0 {
                tracing::info!(added, "seeded the store with the built-in catalogue");
            }
        }
        Ok(store)
    }

    /// [`SqliteStore::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteStore::open(path).map(|store| Store::Sqlite(Box::new(store)))
    }

    /// [`SqliteStore::open_in`].
    pub fn open_in(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteStore::open_in(data_dir).map(|store| Store::Sqlite(Box::new(store)))
    }

    /// [`SqliteStore::open_seeded`].
    pub fn open_seeded(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteStore::open_seeded(data_dir).map(|store| Store::Sqlite(Box::new(store)))
    }

    /// [`SqliteStore::open_in_memory`].
    pub fn open_in_memory() -> Result<Self, StoreError> {
        SqliteStore::open_in_memory().map(|store| Store::Sqlite(Box::new(store)))
    }

    /// [`PostgresStore::connect`].
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        outside_runtime(|| PostgresStore::connect(url))
            .map(|store| Store::Postgres(Box::new(store)))
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// The SQLite file, or `None` (in memory, or PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Store::Sqlite(store) => store.path(),
            Store::Postgres(_) => None,
        }
    }

    /// Stores each object the store does not hold yet (see [`SqliteStore::seed`]).
    pub fn seed<'a>(
        &self,
        objects: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Result<usize, StoreError> {
        match self {
            Store::Sqlite(store) => store.seed(objects),
            Store::Postgres(store) => {
                let objects: Vec<_> = objects.into_iter().collect();
                outside_runtime(|| store.seed(objects))
            }
        }
    }

    /// [`Self::authenticate`] when the answer needs no waiting: SQLite with a reader
    /// connection free now ([`SqliteStore::authenticate_if_free`]). `None` otherwise, always
    /// for PostgreSQL, whose answer is a network round trip: the caller then looks the token
    /// up where it may block.
    pub fn authenticate_at_once(&self, token: &str) -> Option<Result<Option<User>, StoreError>> {
        match self {
            Store::Sqlite(store) => store.authenticate_if_free(token),
            Store::Postgres(_) => None,
        }
    }

    delegate! {
        /// Adds the built-in catalogue's objects the store lacks.
        fn seed_catalogue(&self) -> Result<usize, StoreError>;
        /// The current version of `zid`.
        fn get(&self, zid: &str) -> Result<Option<Value>, StoreError>;
        /// The current revision number of `zid`.
        fn current_revision(&self, zid: &str) -> Result<Option<u64>, StoreError>;
        /// The revisions of `zid` after `after`, oldest first, at most `limit` (see
        /// [`SqliteStore::history`]).
        fn history(&self, zid: &str, after: u64, limit: usize) -> Result<HistoryPage, StoreError>;
        /// Stores a new revision of `zid` (see [`SqliteStore::put`]).
        fn put(&self, zid: &str, z2: &Value, author: &str) -> Result<u64, StoreError>;
        /// Stores a new revision of `zid` only if it is at `base` (see
        /// [`SqliteStore::put_based_on`]).
        fn put_based_on(&self, zid: &str, z2: &Value, author: &str, base: Option<u64>) -> Result<u64, StoreError>;
        /// Stores several objects in one transaction.
        fn put_all(&self, objects: &[(String, Value)], author: &str) -> Result<Vec<u64>, StoreError>;
        /// Stores a new object under the next free ZID.
        fn create(&self, z2: &Value, author: &str) -> Result<String, StoreError>;
        /// The ZID [`Self::create`] would hand out now.
        fn next_zid(&self) -> Result<String, StoreError>;
        /// Objects by type and/or label text.
        fn search(&self, type_zid: Option<&str>, text: Option<&str>, limit: usize) -> Result<Vec<ObjectSummary>, StoreError>;
        /// How many objects the store holds.
        fn count(&self) -> Result<u64, StoreError>;
        /// How many objects have each value type.
        fn count_by_type(&self) -> Result<HashMap<String, u64>, StoreError>;
        /// Every stored ZID in numeric order.
        fn zids(&self) -> Result<Vec<String>, StoreError>;
        /// Adds a user and returns their token.
        fn add_user(&self, name: &str, role: Role) -> Result<String, StoreError>;
        /// Every user with their token hash (for export).
        fn user_records(&self) -> Result<Vec<UserRecord>, StoreError>;
        /// Adds an exported user unless the name or token hash is taken.
        fn restore_user(&self, record: &UserRecord) -> Result<bool, StoreError>;
        /// Every approval (for export).
        fn approvals(&self) -> Result<Vec<(String, Approval)>, StoreError>;
        /// Records an approval as given (for import).
        fn restore_approval(&self, zid: &str, approval: &Approval, before_signatures: bool) -> Result<(), StoreError>;
        /// The user a bearer token belongs to.
        fn authenticate(&self, token: &str) -> Result<Option<User>, StoreError>;
        /// Every user, by name.
        fn users(&self) -> Result<Vec<User>, StoreError>;
        /// Approves the current revision of an implementation.
        fn approve(&self, zid: &str, by: &User) -> Result<u64, StoreError>;
        /// What approving an implementation now would keep.
        fn approval_preview(&self, zid: &str) -> Result<ApprovalPreview, StoreError>;
        /// Approves the current revision of an implementation if it is what the admin `reviewed`.
        fn approve_revision(&self, zid: &str, by: &User, reviewed: Reviewed) -> Result<u64, StoreError>;
        /// Whether the current revision of `zid` is approved.
        fn is_approved(&self, zid: &str) -> Result<bool, StoreError>;
        /// The current revision of `zid` when it is approved.
        fn approved_object(&self, zid: &str) -> Result<Option<ApprovedObject>, StoreError>;
        /// The latest approval of `zid`.
        fn approval(&self, zid: &str) -> Result<Option<Approval>, StoreError>;
        /// The artifact stored under `key`.
        fn artifact(&self, key: &str) -> Result<Option<StoredArtifact>, StoreError>;
        /// The artifact stored under `key`, without its module.
        fn artifact_summary(&self, key: &str) -> Result<Option<ArtifactSummary>, StoreError>;
        /// Stores an artifact under `key` unless one is there.
        fn put_artifact(&self, key: &str, artifact: &StoredArtifact) -> Result<(), StoreError>;
        /// Records which artifact a revision compiles to, and drops what no call can reach.
        fn record_compilation(&self, compilation: &Compilation<'_>) -> Result<(), StoreError>;
        /// The artifact key of a revision.
        fn compilation(&self, zid: &str, revision: u64) -> Result<Option<String>, StoreError>;
        /// Every artifact key, in key order.
        fn artifact_keys(&self) -> Result<Vec<String>, StoreError>;
        /// Records a tester's result.
        fn record_tester_result(&self, result: &TesterResult) -> Result<(), StoreError>;
        /// Records tester results in one transaction.
        fn record_tester_results(&self, results: &[TesterResult]) -> Result<(), StoreError>;
        /// The latest tester results of an implementation revision.
        fn tester_results(&self, implementation: &str, revision: u64) -> Result<Vec<TesterResult>, StoreError>;
        /// Stores a call summary.
        fn put_call_stats(&self, implementation: &str, revision: u64, stats: &CallStats) -> Result<(), StoreError>;
        /// A call summary.
        fn call_stats(&self, implementation: &str, revision: u64) -> Result<Option<CallStats>, StoreError>;
    }
}

impl Store {
    /// Lets one search run at most `limit` instead of [`crate::SEARCH_TIME_LIMIT`].
    #[must_use]
    pub fn with_search_time_limit(self, limit: std::time::Duration) -> Self {
        match self {
            Store::Sqlite(store) => Store::Sqlite(Box::new(store.with_search_time_limit(limit))),
            Store::Postgres(store) => {
                Store::Postgres(Box::new(store.with_search_time_limit(limit)))
            }
        }
    }
}

impl From<SqliteStore> for Store {
    fn from(store: SqliteStore) -> Self {
        Store::Sqlite(Box::new(store))
    }
}

impl ObjectSource for Store {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        match self {
            Store::Sqlite(store) => store.fetch(zids),
            Store::Postgres(store) => outside_runtime(|| store.fetch(zids)),
        }
    }

    fn fetch_before(
        &self,
        zids: &[String],
        deadline: Option<std::time::Instant>,
    ) -> Result<HashMap<String, Value>, StoreError> {
        match self {
            Store::Sqlite(store) => store.fetch_before(zids, deadline),
            Store::Postgres(store) => outside_runtime(|| store.fetch_before(zids, deadline)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redacted_url("postgres://zeval:s3cr@t@db:5432/zeval?x=1"),
            "postgres://zeval:***@db:5432/zeval?x=1"
        );
        assert_eq!(
            redacted_url("postgres://zeval@db/z"),
            "postgres://zeval@db/z"
        );
        assert_eq!(
            redacted_url("postgresql:///z?host=/run/postgresql"),
            "postgresql:///z?host=/run/postgresql"
        );
        assert_eq!(redacted_url("not a url"), "not a url");
        // A password with the characters that end an authority, or in the query, or in a
        // libpq connection string: each used to be returned whole.
        for (url, secret) in [
            ("postgres://zeval:a/b?c#d@db:5432/zeval", "a/b?c#d"),
            (
                "postgres://zeval@db/zeval?password=hunter2&sslmode=disable",
                "hunter2",
            ),
            (
                "host=db user=zeval password=hunter2 dbname=zeval",
                "hunter2",
            ),
            ("host=db password='hun ter\\'2' dbname=zeval", "hun ter"),
        ] {
            let redacted = redacted_url(url);
            assert!(!redacted.contains(secret), "{url} → {redacted}");
            assert!(redacted.contains("zeval"), "{url} → {redacted}");
        }
        assert!(is_postgres_url("postgresql://x") && !is_postgres_url("sqlite://x"));
    }
}
