//! [`SqliteStore`]: the embedded store. ZObjects by ZID with their revision history, ZID
//! allocation, search, users with hashed tokens, and implementation approvals.
//!
//! One connection behind a mutex: store operations are short (a lookup, or one small
//! transaction), so serializing them costs little and keeps every write trivially atomic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use zeval_zobject::Value;
use zeval_zobject::ident::{is_zid, zid_number};

use crate::{ObjectSource, StoreError, z2_id};

mod schema;
mod summary;
pub(crate) mod users;

/// The database file inside a data directory.
pub const DATABASE_FILE: &str = "zeval.sqlite";

/// The first ZID [`SqliteStore::create`] hands out; lower ZIDs are the built-ins' range.
pub const FIRST_USER_ZID: u64 = 10_000;

/// The most results [`SqliteStore::search`] returns, whatever limit is asked for.
pub const MAX_SEARCH_RESULTS: usize = 1_000;

/// The deepest nesting of arrays and objects the store accepts. Serializing and rewriting
/// an object recurse once per level; this keeps both far inside a 2 MB thread stack.
/// Canonical Z2s are shallow (lists are flat arrays), so real objects stay far below it.
pub const MAX_OBJECT_DEPTH: usize = 1_000;

/// Who stored the built-in catalogue's objects (revision 1 of each).
pub const CATALOGUE_AUTHOR: &str = "zeval-catalogue";

/// One stored revision of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// 1 for the first version, then +1 per write.
    pub revision: u64,
    /// When it was written, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The user (or tool, e.g. [`CATALOGUE_AUTHOR`]) that wrote it.
    pub author: String,
    /// The canonical Z2 as written.
    pub object: Value,
}

/// A search hit: what a listing shows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// The object's ZID.
    pub zid: String,
    /// The type of its value (`Z2K2.Z1K1`, or the function of a generic type).
    pub type_zid: Option<String>,
    /// Its English label, else its first label.
    pub label: Option<String>,
    /// Its current revision.
    pub revision: u64,
}

/// The embedded SQLite store. See [`schema`](self) for durability: a write that returned
/// `Ok` is on disk (WAL, `synchronous=FULL`), and a crash mid-write loses nothing that was
/// acknowledged and leaves no partial write.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates its schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Io {
                path: parent.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let conn = Connection::open(path).map_err(db_error)?;
        Self::with_connection(conn, Some(path.to_path_buf()))
    }

    /// Opens `<data_dir>/zeval.sqlite` (creating the directory and the file if needed).
    pub fn open_in(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open(data_dir.as_ref().join(DATABASE_FILE))
    }

    /// Opens `<data_dir>/zeval.sqlite` like [`Self::open_in`] and seeds it with the built-in
    /// catalogue ([`Self::seed_catalogue`]): a new store starts with every built-in object.
    pub fn open_seeded(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let store = Self::open_in(data_dir)?;
        let added = store.seed_catalogue()?;
        if added > 0 {
            tracing::info!(added, "seeded the store with the built-in catalogue");
        }
        Ok(store)
    }

    /// Adds every object of the built-in catalogue the store does not hold yet (see
    /// [`Self::seed`]) and returns how many were added.
    pub fn seed_catalogue(&self) -> Result<usize, StoreError> {
        self.seed(zeval_catalogue::zids().filter_map(|zid| Some((zid, zeval_catalogue::get(zid)?))))
    }

    /// A private in-memory database (for tests and throwaway runs).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory().map_err(db_error)?, None)
    }

    fn with_connection(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open: dropping a
        // `Transaction` rolls it back. So the connection is still consistent.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current version of `zid`.
    pub fn get(&self, zid: &str) -> Result<Option<Value>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .prepare_cached("SELECT json FROM objects WHERE zid = ?1")
            .and_then(|mut s| s.query_row([zid], |row| row.get(0)).optional())
            .map_err(db_error)?;
        json.map(|j| parse_stored(zid, &j)).transpose()
    }

    /// The current revision number of `zid`.
    pub fn current_revision(&self, zid: &str) -> Result<Option<u64>, StoreError> {
        current_revision(&self.conn(), zid)
    }

    /// Every revision of `zid`, oldest first (empty if it does not exist).
    pub fn history(&self, zid: &str) -> Result<Vec<Revision>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT revision, timestamp_ms, author, json FROM revisions
                 WHERE zid = ?1 ORDER BY revision",
            )
            .map_err(db_error)?;
        let rows = statement
            .query_map([zid], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(db_error)?;
        rows.map(|row| {
            let (revision, timestamp_ms, author, json) = row.map_err(db_error)?;
            Ok(Revision {
                revision: revision as u64,
                timestamp_ms,
                author,
                object: parse_stored(zid, &json)?,
            })
        })
        .collect()
    }

    /// Stores `z2` as the new current version of `zid` and returns its revision number.
    ///
    /// The object is stored as given (validating it is the caller's job), except that it must
    /// be a Z2 whose `Z2K1` names `zid` ([`StoreError::Invalid`] otherwise).
    pub fn put(&self, zid: &str, z2: &Value, author: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let revision = write(&tx, zid, z2, author, now_ms())?;
        tx.commit().map_err(db_error)?;
        Ok(revision)
    }

    /// Stores several objects in ONE transaction: either all of them are written or, if any
    /// is refused, none is. Returns each one's new revision, in order.
    pub fn put_all(
        &self,
        objects: &[(String, Value)],
        author: &str,
    ) -> Result<Vec<u64>, StoreError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let timestamp = now_ms();
        let revisions = objects
            .iter()
            .map(|(zid, z2)| write(&tx, zid, z2, author, timestamp))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(db_error)?;
        Ok(revisions)
    }

    /// Stores a new object under the next free ZID (see [`Self::next_zid`]) and returns it.
    ///
    /// The object names itself with the placeholder `Z0` (the Wikifunctions convention):
    /// `Z2K1` is `Z0` or absent, and every string `Z0` and every key `Z0K<n>` (as a string,
    /// e.g. in `Z3K2`/`Z17K2`, or as an object key) is rewritten to the new ZID. Allocation and
    /// insert are one transaction, so two concurrent creates never get the same ZID.
    pub fn create(&self, z2: &Value, author: &str) -> Result<String, StoreError> {
        check_depth(z2)?;
        match z2_id(z2) {
            None if z2.get("Z2K1").is_none() => {}
            Some(summary::PLACEHOLDER) => {}
            _ => {
                return Err(StoreError::Invalid(
                    "a new object's Z2K1 must be the placeholder Z0 (or absent)".into(),
                ));
            }
        }
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let zid = next_zid(&tx)?;
        let mut object = z2.clone();
        summary::replace_placeholder(&mut object, &zid);
        if let Value::Object(map) = &mut object {
            map.insert(
                "Z2K1".into(),
                serde_json::json!({"Z1K1": "Z6", "Z6K1": zid}),
            );
            // Keep the conventional key order Z1K1, Z2K1, Z2K2, … when Z2K1 was absent.
            map.sort_keys();
        }
        write(&tx, &zid, &object, author, now_ms())?;
        tx.commit().map_err(db_error)?;
        Ok(zid)
    }

    /// The ZID [`Self::create`] would hand out now: one more than the highest stored ZID from
    /// Z10000 up (gaps left by objects `put` at arbitrary ZIDs are not refilled).
    pub fn next_zid(&self) -> Result<String, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_error)?;
        next_zid(&tx)
    }

    /// Objects whose value has type `type_zid` and/or whose labels or aliases contain `text`
    /// (case-insensitive; an exact ZID also matches), in ZID order, at most
    /// `min(limit, MAX_SEARCH_RESULTS)`.
    pub fn search(
        &self,
        type_zid: Option<&str>,
        text: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectSummary>, StoreError> {
        let limit = limit.min(MAX_SEARCH_RESULTS) as i64;
        let pattern = text.map(|t| format!("%{}%", escape_like(&t.to_lowercase())));
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT zid, type, label, revision FROM objects
                 WHERE (?1 IS NULL OR type = ?1)
                   AND (?2 IS NULL OR search_text LIKE ?2 ESCAPE '\\' OR zid = ?3)
                 ORDER BY number LIMIT ?4",
            )
            .map_err(db_error)?;
        let rows = statement
            .query_map(params![type_zid, pattern, text, limit], |row| {
                Ok(ObjectSummary {
                    zid: row.get(0)?,
                    type_zid: row.get(1)?,
                    label: row.get(2)?,
                    revision: row.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(db_error)?;
        rows.collect::<Result<_, _>>().map_err(db_error)
    }

    /// How many objects the store holds.
    pub fn count(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM objects", [], |r| r.get(0))
            .map_err(db_error)?;
        Ok(n as u64)
    }

    /// How many objects have each value type (objects without one are counted under `""`).
    pub fn count_by_type(&self) -> Result<HashMap<String, u64>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached("SELECT COALESCE(type, ''), COUNT(*) FROM objects GROUP BY 1")
            .map_err(db_error)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
            })
            .map_err(db_error)?;
        rows.collect::<Result<_, _>>().map_err(db_error)
    }

    /// Every stored ZID in numeric order.
    pub fn zids(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached("SELECT zid FROM objects ORDER BY number")
            .map_err(db_error)?;
        let rows = statement
            .query_map([], |row| row.get(0))
            .map_err(db_error)?;
        rows.collect::<Result<_, _>>().map_err(db_error)
    }

    /// Stores each object whose ZID the store does not hold yet, as revision 1 by
    /// [`CATALOGUE_AUTHOR`], all in one transaction. Objects already there (even if edited
    /// since) are left alone, so seeding is idempotent and picks up objects a newer catalogue
    /// adds. Returns how many were added.
    pub fn seed<'a>(
        &self,
        objects: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let timestamp = now_ms();
        let mut added = 0;
        for (zid, z2) in objects {
            if current_revision(&tx, zid)?.is_none() {
                write(&tx, zid, z2, CATALOGUE_AUTHOR, timestamp)?;
                added += 1;
            }
        }
        tx.commit().map_err(db_error)?;
        Ok(added)
    }
}

impl ObjectSource for SqliteStore {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        let mut found = HashMap::new();
        for zid in zids {
            if !found.contains_key(zid)
                && let Some(object) = self.get(zid)?
            {
                found.insert(zid.clone(), object);
            }
        }
        Ok(found)
    }
}

/// Writes one revision inside `tx`: checks the object, appends to the history and replaces
/// the current version.
fn write(
    tx: &Transaction<'_>,
    zid: &str,
    z2: &Value,
    author: &str,
    timestamp_ms: i64,
) -> Result<u64, StoreError> {
    let number = zid_number(zid)
        .filter(|_| is_zid(zid))
        .ok_or_else(|| StoreError::Invalid(format!("{zid:?} is not a ZID")))?;
    if z2.get("Z1K1").and_then(Value::as_str) != Some("Z2") {
        return Err(StoreError::Invalid(format!(
            "the object for {zid} is not a Z2 (Z1K1 must be \"Z2\")"
        )));
    }
    match z2_id(z2) {
        Some(id) if id == zid => {}
        other => {
            return Err(StoreError::Invalid(format!(
                "the Z2K1 of the object ({}) does not match its ZID {zid}",
                other.unwrap_or("missing")
            )));
        }
    }
    check_depth(z2)?;
    let json = serde_json::to_string(z2).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let revision = current_revision(tx, zid)?.unwrap_or(0) + 1;
    tx.prepare_cached("INSERT INTO revisions (zid, revision, timestamp_ms, author, json) VALUES (?1, ?2, ?3, ?4, ?5)")
        .and_then(|mut s| s.execute(params![zid, revision as i64, timestamp_ms, author, json]))
        .map_err(db_error)?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO objects (zid, number, type, label, search_text, revision, json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            zid,
            number as i64,
            summary::value_type(z2),
            summary::display_label(z2),
            summary::search_text(z2),
            revision as i64,
            json
        ])
    })
    .map_err(db_error)?;
    Ok(revision)
}

fn current_revision(conn: &Connection, zid: &str) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached("SELECT revision FROM objects WHERE zid = ?1")
        .and_then(|mut s| s.query_row([zid], |row| row.get::<_, i64>(0)).optional())
        .map(|r| r.map(|n| n as u64))
        .map_err(db_error)
}

fn next_zid(conn: &Connection) -> Result<String, StoreError> {
    let highest: Option<i64> = conn
        .query_row(
            "SELECT MAX(number) FROM objects WHERE number >= ?1",
            [FIRST_USER_ZID as i64],
            |r| r.get(0),
        )
        .map_err(db_error)?;
    Ok(format!(
        "Z{}",
        highest.map_or(FIRST_USER_ZID, |n| n as u64 + 1)
    ))
}

/// A write transaction that takes the write lock at once, so its reads (the next ZID, the
/// current revision) cannot be invalidated by another process before it commits.
fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)
}

fn check_depth(z2: &Value) -> Result<(), StoreError> {
    if zeval_zobject::depth::exceeds(z2, MAX_OBJECT_DEPTH) {
        return Err(StoreError::Invalid(format!(
            "the object nests deeper than {MAX_OBJECT_DEPTH} levels"
        )));
    }
    Ok(())
}

fn parse_stored(zid: &str, json: &str) -> Result<Value, StoreError> {
    zeval_zobject::json::parse(json)
        .map_err(|e| StoreError::Database(format!("stored JSON of {zid} is corrupt: {e}")))
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn db_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}
