//! [`SqliteStore`]: the embedded store. ZObjects by ZID with their revision history, ZID
//! allocation, search, users with hashed tokens, and implementation approvals.
//!
//! Writes go through one connection behind a mutex: they are short (one small transaction),
//! so serializing them costs little and keeps every write trivially atomic. Reads of a store
//! on disk use a few read-only connections of their own ([`READ_CONNECTIONS`]): in WAL mode
//! a reader never waits for a writer, so a write held up by another process (say `zeval
//! import`, for up to [`BUSY_TIMEOUT`]) does not hold up lookups and token checks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use zeval_zobject::Value;
use zeval_zobject::ident::{is_zid, zid_number};

use crate::{ObjectSource, StoreError, z2_id};

pub(crate) mod artifacts;
pub(crate) mod ranking;
mod schema;
pub(crate) mod summary;
pub(crate) mod users;

/// The database file inside a data directory.
pub const DATABASE_FILE: &str = "zeval.sqlite";

/// The first ZID [`SqliteStore::create`] hands out; lower ZIDs are the built-ins' range.
pub const FIRST_USER_ZID: u64 = 10_000;

/// The largest ZID number the store accepts: Z999999999. Every write path (put, create,
/// import, seed) refuses a larger one with [`StoreError::ZidOutOfRange`], so ZID numbers fit
/// an `i64` column with room to spare and allocation can never run past them. (Wikifunctions
/// itself is below Z40000.)
pub const MAX_ZID_NUMBER: u64 = 999_999_999;

/// How many read-only connections a store on disk keeps for lookups, search and token
/// checks (an in-memory store reads through its one connection). Scans (searches, history
/// pages, counts) take at most all but one of them.
pub const READ_CONNECTIONS: usize = 4;

/// What a read is, for which read connections it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadKind {
    /// A lookup by key (an object, a token, an approval): any reader.
    Point,
    /// A read as long as the table or the page it walks (a search, up to
    /// [`SEARCH_TIME_LIMIT`]; a history page of up to 100 revisions; a count): every reader
    /// but one. The routes that ask for them are open to anyone, and slots let one client
    /// hold eight such reads: they held all four readers, and every token check and object
    /// read waited, then failed as busy.
    Scan,
}

/// How long a connection waits for a lock another process holds (e.g. `zeval import`
/// writing while `zeval serve` runs) before failing with a database error.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a read waits for a free read connection before failing with
/// [`StoreError::Busy`]: every reader can be held by a long read (a search, at most
/// [`SEARCH_TIME_LIMIT`]), and reads are asked for by every request, anonymous ones too.
pub const READ_WAIT: Duration = Duration::from_secs(5);

/// The longest one [`SqliteStore::search`] runs before it is interrupted (then
/// [`StoreError::Busy`]). A search that matches little reads every row's labels (a
/// substring match uses no index), and the route is open to anyone: without a bound, a few
/// searches held every read connection for as long as the table took to scan, and calls
/// and token checks waited behind them.
pub const SEARCH_TIME_LIMIT: Duration = Duration::from_secs(1);

/// The most results [`SqliteStore::search`] returns, whatever limit is asked for.
pub const MAX_SEARCH_RESULTS: usize = 1_000;

/// The most characters of its label a search hit carries ([`ObjectSummary::label`]); a
/// longer label is cut there and ends in `…`. Labels are held only to the body limit, and
/// the search route is anonymous: 500 hits of 100 KiB labels (which any editor can store)
/// made a 50 MB answer, read from the database and built in memory for every request.
pub const MAX_SUMMARY_LABEL_CHARS: usize = 200;

/// `label` as a search hit carries it: at most [`MAX_SUMMARY_LABEL_CHARS`] characters and
/// an ellipsis. The query reads one character more than that, to know whether it was cut.
pub(crate) fn summary_label(label: Option<String>) -> Option<String> {
    let mut label = label?;
    if let Some((cut, _)) = label.char_indices().nth(MAX_SUMMARY_LABEL_CHARS) {
        label.truncate(cut);
        label.push('…');
    }
    Some(label)
}

/// The most revisions one [`SqliteStore::history`] page holds, whatever limit is asked for.
/// Each revision carries its whole object, so a page holds at most this many objects
/// (each at most the server's body limit), however many revisions the object has.
pub const MAX_HISTORY_REVISIONS: usize = 100;

/// The most bytes of stored objects one history page holds (at least one revision, whatever
/// its size): the page then ends, and its `next` names where the following one starts. A
/// page of [`MAX_HISTORY_REVISIONS`] objects of the body limit (100 KiB) was 10 MB, parsed and
/// written out for each anonymous request, up to 64 at once.
pub const MAX_HISTORY_PAGE_BYTES: usize = 1 << 20;

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

/// One page of an object's history ([`SqliteStore::history`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryPage {
    /// The revisions of the page, oldest first.
    pub revisions: Vec<Revision>,
    /// When later revisions exist: the revision to pass as `after` for the next page (the
    /// last one of this page). `None` on the last page.
    pub next: Option<u64>,
}

/// A search hit: what a listing shows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// The object's ZID.
    pub zid: String,
    /// The type of its value (`Z2K2.Z1K1`, or the function of a generic type).
    pub type_zid: Option<String>,
    /// Its English label, else its first label, cut after [`MAX_SUMMARY_LABEL_CHARS`]
    /// characters.
    pub label: Option<String>,
    /// Its current revision.
    pub revision: u64,
}

/// The embedded SQLite store. See the `sqlite` module for durability: a write that returned
/// `Ok` is on disk (WAL, `synchronous=FULL`), and a crash mid-write loses nothing that was
/// acknowledged and leaves no partial write.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// Read-only connections to the same file; empty in memory.
    readers: Vec<Mutex<Connection>>,
    /// Where the search for a free reader starts next, spreading the load.
    next_reader: AtomicUsize,
    /// Signalled when a reader is given back, for reads waiting for any of them.
    reader_freed: Condvar,
    /// Held to check for a free reader before waiting, and to signal: no wake-up is lost.
    reader_gate: Mutex<()>,
    /// [`READ_WAIT`], or less in tests.
    read_wait: Duration,
    /// [`SEARCH_TIME_LIMIT`], or less in tests.
    search_time_limit: Duration,
    path: Option<PathBuf>,
}

/// A connection for reads; a reader is given back (and a waiting read woken) when dropped.
#[derive(Debug)]
pub(crate) struct ReadConnection<'a> {
    guard: Option<MutexGuard<'a, Connection>>,
    /// The store whose waiting reads are told, for a reader (not the in-memory writer).
    pool: Option<&'a SqliteStore>,
}

impl std::ops::Deref for ReadConnection<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.guard.as_deref().expect("a connection until dropped")
    }
}

impl std::ops::DerefMut for ReadConnection<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.guard
            .as_deref_mut()
            .expect("a connection until dropped")
    }
}

impl Drop for ReadConnection<'_> {
    fn drop(&mut self) {
        // A search's time limit (a progress handler) never outlives its read, even one that
        // ended in a panic: left on a reader, it would interrupt every later read there.
        if let Some(connection) = &self.guard {
            connection.progress_handler(0, None::<fn() -> bool>);
        }
        drop(self.guard.take());
        if let Some(store) = self.pool {
            let _gate = store
                .reader_gate
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Every waiter looks: a scan woken for the reader it may not take would leave a
            // lookup waiting beside a free one.
            store.reader_freed.notify_all();
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates its schema. A file
    /// there that someone else could have written is refused (not a regular file, not this
    /// user's, or writable by others).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Io {
                path: parent.display().to_string(),
                message: e.to_string(),
            })?;
        }
        check_database_files(path)?;
        let conn = Connection::open(path).map_err(db_error)?;
        let mut store = Self::with_connection(conn, Some(path.to_path_buf()))?;
        // Opened after the writer set WAL mode and migrated, so readers see the schema.
        store.readers = (0..READ_CONNECTIONS)
            .map(|_| schema::open_reader(path).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(store)
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
            writer: Mutex::new(conn),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
            reader_freed: Condvar::new(),
            reader_gate: Mutex::new(()),
            read_wait: READ_WAIT,
            search_time_limit: SEARCH_TIME_LIMIT,
            path,
        })
    }

    /// Lets one [`Self::search`] run at most `limit` instead of [`SEARCH_TIME_LIMIT`].
    #[must_use]
    pub fn with_search_time_limit(mut self, limit: Duration) -> Self {
        self.search_time_limit = limit;
        self
    }

    /// Waits at most `read_wait` for a read connection and lets a search run at most
    /// `search_time_limit` (instead of [`READ_WAIT`] and [`SEARCH_TIME_LIMIT`]): for tests.
    #[doc(hidden)]
    #[must_use]
    pub fn with_read_bounds(self, read_wait: Duration, search_time_limit: Duration) -> Self {
        Self {
            read_wait,
            ..self.with_search_time_limit(search_time_limit)
        }
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection writes go through.
    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open: dropping a
        // `Transaction` rolls it back. So the connection is still consistent.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection for reads: the first reader to be free, waited for at most
    /// [`READ_WAIT`] ([`StoreError::Busy`] then), and no later than the deadline of the call
    /// this thread works for ([`crate::call_deadline`]); in memory, the writer's connection. (It
    /// used to wait for one reader chosen in turn, however long that one's read took while
    /// others were free.)
    fn reader(&self) -> Result<ReadConnection<'_>, StoreError> {
        self.reader_until(None)
    }

    /// [`Self::reader`] for a [`ReadKind::Scan`]: one of every reader but the last.
    pub(crate) fn scan_reader(&self) -> Result<ReadConnection<'_>, StoreError> {
        self.reader_of(ReadKind::Scan, None)
    }

    /// [`Self::reader`], waiting no later than `call_deadline` either (a call's fetch:
    /// [`StoreError::DeadlineExceeded`], with no ZIDs named, then, so the call ends by its
    /// deadline instead of [`READ_WAIT`] after it).
    fn reader_until(
        &self,
        call_deadline: Option<Instant>,
    ) -> Result<ReadConnection<'_>, StoreError> {
        self.reader_of(ReadKind::Point, call_deadline)
    }

    fn reader_of(
        &self,
        kind: ReadKind,
        call_deadline: Option<Instant>,
    ) -> Result<ReadConnection<'_>, StoreError> {
        if self.readers.is_empty() {
            return Ok(ReadConnection {
                guard: Some(self.writer()),
                pool: None,
            });
        }
        let call_deadline = crate::call_deadline::earliest(call_deadline);
        let own = Instant::now() + self.read_wait;
        let deadline = call_deadline.map_or(own, |call| call.min(own));
        let mut gate = None;
        loop {
            if let Some(free) = self.free_reader(kind) {
                return Ok(free);
            }
            // Checked again under the gate, which a reader given back takes to signal.
            let Some(held) = gate.take() else {
                gate = Some(
                    self.reader_gate
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                );
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if call_deadline.is_some_and(|call| call <= own) {
                    return Err(StoreError::DeadlineExceeded {
                        zids: String::new(),
                    });
                }
                return Err(StoreError::Busy(format!(
                    "every read connection of the store stayed busy for {} ms",
                    self.read_wait.as_millis()
                )));
            }
            let (held, _) = self
                .reader_freed
                .wait_timeout(held, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            gate = Some(held);
        }
    }

    /// A connection for reads that is free right now (in memory, the writer's connection if
    /// it is), else `None`: never waits for another thread.
    fn free_reader(&self, kind: ReadKind) -> Option<ReadConnection<'_>> {
        if self.readers.is_empty() {
            let guard = match self.writer.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => return None,
            };
            return Some(ReadConnection {
                guard: Some(guard),
                pool: None,
            });
        }
        let usable = match kind {
            ReadKind::Point => self.readers.len(),
            ReadKind::Scan => (self.readers.len() - 1).max(1),
        };
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % usable;
        for offset in 0..usable {
            let guard = match self.readers[(start + offset) % usable].try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => continue,
            };
            return Some(ReadConnection {
                guard: Some(guard),
                pool: Some(self),
            });
        }
        None
    }

    /// The current version of `zid`.
    pub fn get(&self, zid: &str) -> Result<Option<Value>, StoreError> {
        let conn = self.reader()?;
        let json: Option<String> = conn
            .prepare_cached("SELECT json FROM objects WHERE zid = ?1")
            .and_then(|mut s| s.query_row([zid], |row| row.get(0)).optional())
            .map_err(db_error)?;
        json.map(|j| parse_stored(zid, &j)).transpose()
    }

    /// The current revision number of `zid`.
    pub fn current_revision(&self, zid: &str) -> Result<Option<u64>, StoreError> {
        current_revision(&*self.reader()?, zid)
    }

    /// The revisions of `zid` after revision `after` (0: from the first), oldest first, at
    /// most `limit` of them, clamped to 1..=[`MAX_HISTORY_REVISIONS`]; `next` says where
    /// the next page starts when there is one. Empty if it does not exist.
    pub fn history(&self, zid: &str, after: u64, limit: usize) -> Result<HistoryPage, StoreError> {
        let limit = history_limit(limit);
        let conn = self.scan_reader()?;
        let mut statement = conn
            .prepare_cached(
                "SELECT revision, timestamp_ms, author, json FROM revisions
                 WHERE zid = ?1 AND revision > ?2 ORDER BY revision LIMIT ?3",
            )
            .map_err(db_error)?;
        // One row more than the page says whether another page follows; its object is
        // never parsed.
        let rows = statement
            .query_map(
                params![zid, after.min(i64::MAX as u64) as i64, limit as i64 + 1],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get::<_, String>(3)?,
                    ))
                },
            )
            .map_err(db_error)?;
        let mut page = HistoryPage::default();
        let mut bytes = 0;
        for row in rows {
            let (revision, timestamp_ms, author, json) = row.map_err(db_error)?;
            bytes += json.len();
            let full = bytes > MAX_HISTORY_PAGE_BYTES && !page.revisions.is_empty();
            if page.revisions.len() == limit || full {
                page.next = page.revisions.last().map(|r| r.revision);
                break;
            }
            page.revisions.push(Revision {
                revision: revision as u64,
                timestamp_ms,
                author,
                object: parse_stored(zid, &json)?,
            });
        }
        Ok(page)
    }

    /// Stores `z2` as the new current version of `zid` and returns its revision number.
    ///
    /// The object is stored as given (validating it is the caller's job), except that it must
    /// be a Z2 whose `Z2K1` names `zid` ([`StoreError::Invalid`] otherwise).
    pub fn put(&self, zid: &str, z2: &Value, author: &str) -> Result<u64, StoreError> {
        self.put_based_on(zid, z2, author, None)
    }

    /// [`Self::put`], but only if the object is still at revision `base` (0: it must not
    /// exist yet); otherwise [`StoreError::Conflict`] with the current revision, and nothing
    /// is written. `None` writes whatever the current revision is. The check and the write are
    /// one write transaction, so two editors saving the same base cannot both succeed.
    pub fn put_based_on(
        &self,
        zid: &str,
        z2: &Value,
        author: &str,
        base: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        let mode = match base {
            None => Write::NewOrRevision,
            Some(base) => Write::BasedOn(base),
        };
        let revision = write(&tx, zid, z2, author, now_ms(), mode)?;
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
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        let timestamp = now_ms();
        let revisions = objects
            .iter()
            .map(|(zid, z2)| write(&tx, zid, z2, author, timestamp, Write::NewOrRevision))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(db_error)?;
        Ok(revisions)
    }

    /// Stores a new object under the next free ZID (see [`Self::next_zid`]) and returns it.
    ///
    /// The object names itself with the placeholder `Z0` (the Wikifunctions convention):
    /// `Z2K1` is `Z0` or absent, and every string `Z0` and every key `Z0K<n>` (as a string,
    /// e.g. in `Z3K2`/`Z17K2`, or as an object key) is rewritten to the new ZID. Allocation and
    /// insert are one write transaction (which excludes other writers, other processes
    /// included), so two concurrent creates never get the same ZID; and the insert is a
    /// plain insert, so even a ZID that turned out to be taken is an error
    /// ([`StoreError::Allocation`]), never an overwrite.
    pub fn create(&self, z2: &Value, author: &str) -> Result<String, StoreError> {
        check_new(z2)?;
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        let zid = next_zid(&tx)?;
        let object = with_zid(z2, &zid);
        write(&tx, &zid, &object, author, now_ms(), Write::NewOnly)?;
        tx.commit().map_err(db_error)?;
        Ok(zid)
    }

    /// The ZID [`Self::create`] would hand out now: one more than the highest stored ZID from
    /// Z10000 up (gaps left by objects `put` at arbitrary ZIDs are not refilled), or, once
    /// [`MAX_ZID_NUMBER`] itself is taken, the lowest free one from Z10000 up.
    /// [`StoreError::Allocation`] when none is left.
    pub fn next_zid(&self) -> Result<String, StoreError> {
        next_zid(&*self.reader()?)
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
        let conn = self.scan_reader()?;
        let deadline = Instant::now() + self.search_time_limit;
        // Every 100 virtual machine steps (a row or a few): past the deadline, SQLite
        // stops the statement with SQLITE_INTERRUPT. Removed when the reader is given back.
        conn.progress_handler(100, Some(move || Instant::now() >= deadline));
        let found = (|| {
            let mut statement = conn.prepare_cached(
                "SELECT zid, type, substr(label, 1, ?5), revision FROM objects
                 WHERE (?1 IS NULL OR type = ?1)
                   AND (?2 IS NULL OR search_text LIKE ?2 ESCAPE '\\' OR zid = ?3)
                 ORDER BY number LIMIT ?4",
            )?;
            let label_chars = MAX_SUMMARY_LABEL_CHARS as i64 + 1;
            let query = params![type_zid, pattern, text, limit, label_chars];
            let rows = statement.query_map(query, |row| {
                Ok(ObjectSummary {
                    zid: row.get(0)?,
                    type_zid: row.get(1)?,
                    label: summary_label(row.get(2)?),
                    revision: row.get::<_, i64>(3)? as u64,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })();
        match found {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                Err(StoreError::Busy(format!(
                    "the search ran longer than its limit of {} ms; a longer text or a type \
                     narrows it",
                    self.search_time_limit.as_millis()
                )))
            }
            found => found.map_err(db_error),
        }
    }

    /// How many objects the store holds.
    pub fn count(&self) -> Result<u64, StoreError> {
        let conn = self.scan_reader()?;
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM objects", [], |r| r.get(0))
            .map_err(db_error)?;
        Ok(n as u64)
    }

    /// How many objects have each value type (objects without one are counted under `""`).
    pub fn count_by_type(&self) -> Result<HashMap<String, u64>, StoreError> {
        let conn = self.scan_reader()?;
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
        let conn = self.reader()?;
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
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        let timestamp = now_ms();
        let mut added = 0;
        for (zid, z2) in objects {
            if current_revision(&tx, zid)?.is_none() {
                write(&tx, zid, z2, CATALOGUE_AUTHOR, timestamp, Write::NewOnly)?;
                added += 1;
            }
        }
        tx.commit().map_err(db_error)?;
        Ok(added)
    }
}

impl ObjectSource for SqliteStore {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        self.fetch_before(zids, None)
    }

    /// Waits for a read connection no later than `deadline`: with every reader held (by
    /// anonymous searches and history pages, say) a call's fetch waited the whole
    /// [`READ_WAIT`], however little of its time was left.
    fn fetch_before(
        &self,
        zids: &[String],
        deadline: Option<Instant>,
    ) -> Result<HashMap<String, Value>, StoreError> {
        let mut found = HashMap::new();
        if zids.is_empty() {
            return Ok(found);
        }
        let conn = self
            .reader_until(deadline)
            .map_err(|e| e.naming_zids(zids))?;
        let mut statement = conn
            .prepare_cached("SELECT json FROM objects WHERE zid = ?1")
            .map_err(db_error)?;
        for zid in zids {
            if found.contains_key(zid) {
                continue;
            }
            let json: Option<String> = statement
                .query_row([zid], |row| row.get(0))
                .optional()
                .map_err(db_error)?;
            if let Some(json) = json {
                found.insert(zid.clone(), parse_stored(zid, &json)?);
            }
        }
        Ok(found)
    }
}

/// Whether a write may add a revision to an object that exists.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Only a new object: an existing one is [`StoreError::Allocation`].
    NewOnly,
    /// A new object, or the next revision of an existing one.
    NewOrRevision,
    /// Only if the current revision is this one (0: the object does not exist yet); else
    /// [`StoreError::Conflict`].
    BasedOn(u64),
}

impl Write {
    /// Checks the current revision `previous` of `zid` against the mode and returns the
    /// revision the write creates.
    pub(crate) fn next_revision(self, zid: &str, previous: Option<u64>) -> Result<u64, StoreError> {
        match self {
            Write::NewOnly if previous.is_some() => Err(StoreError::Allocation(format!(
                "{zid} is already stored and is not overwritten"
            ))),
            Write::BasedOn(base) if previous.unwrap_or(0) != base => Err(StoreError::Conflict {
                zid: zid.to_string(),
                base,
                current: previous,
            }),
            _ => Ok(previous.unwrap_or(0) + 1),
        }
    }
}

/// What a write stores besides the revision: the checked object's number, JSON and index.
pub(crate) struct Prepared {
    pub(crate) number: u64,
    pub(crate) json: String,
    pub(crate) value_type: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) search_text: String,
}

/// Checks that `z2` may be stored as `zid` (a Z2 naming `zid`, a ZID in range, not too deep)
/// and computes what is stored about it. Both backends write through this.
pub(crate) fn prepare(zid: &str, z2: &Value) -> Result<Prepared, StoreError> {
    let number = stored_number(zid)?;
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
    Ok(Prepared {
        number,
        json,
        value_type: summary::value_type(z2),
        label: summary::display_label(z2),
        search_text: summary::search_text(z2),
    })
}

/// A new object for [`SqliteStore::create`] (and the PostgreSQL store's): checks the
/// placeholder and rewrites it to `zid`.
pub(crate) fn check_new(z2: &Value) -> Result<(), StoreError> {
    check_depth(z2)?;
    match z2_id(z2) {
        None if z2.get("Z2K1").is_none() => Ok(()),
        Some(summary::PLACEHOLDER) => Ok(()),
        _ => Err(StoreError::Invalid(
            "a new object's Z2K1 must be the placeholder Z0 (or absent)".into(),
        )),
    }
}

/// `z2` with its placeholder rewritten to `zid` and `Z2K1` set to it.
pub(crate) fn with_zid(z2: &Value, zid: &str) -> Value {
    let mut object = z2.clone();
    summary::replace_placeholder(&mut object, zid);
    if let Value::Object(map) = &mut object {
        map.insert(
            "Z2K1".into(),
            serde_json::json!({"Z1K1": "Z6", "Z6K1": zid}),
        );
        // Keep the conventional key order Z1K1, Z2K1, Z2K2, … when Z2K1 was absent.
        map.sort_keys();
    }
    object
}

/// The number of `zid`, if it is a ZID the store accepts (at most [`MAX_ZID_NUMBER`]).
fn stored_number(zid: &str) -> Result<u64, StoreError> {
    let number = zid_number(zid)
        .filter(|_| is_zid(zid))
        .ok_or_else(|| StoreError::Invalid(format!("{zid:?} is not a ZID")))?;
    if number > MAX_ZID_NUMBER {
        return Err(StoreError::ZidOutOfRange {
            zid: zid.to_string(),
            max: MAX_ZID_NUMBER,
        });
    }
    Ok(number)
}

/// Writes one revision inside `tx`: checks the object, appends to the history and inserts or
/// updates the current version. Nothing is ever replaced wholesale: a new object is a plain
/// insert (which fails rather than overwrite), an existing one gets its next revision.
fn write(
    tx: &Transaction<'_>,
    zid: &str,
    z2: &Value,
    author: &str,
    timestamp_ms: i64,
    mode: Write,
) -> Result<u64, StoreError> {
    let Prepared {
        number,
        json,
        value_type,
        label,
        search_text,
    } = prepare(zid, z2)?;
    let previous = current_revision(tx, zid)?;
    let revision = mode.next_revision(zid, previous)?;
    tx.prepare_cached("INSERT INTO revisions (zid, revision, timestamp_ms, author, json) VALUES (?1, ?2, ?3, ?4, ?5)")
        .and_then(|mut s| s.execute(params![zid, revision as i64, timestamp_ms, author, json]))
        .map_err(db_error)?;
    let changed = match previous {
        None => tx
            .prepare_cached(
                "INSERT INTO objects (zid, number, type, label, search_text, revision, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    zid,
                    number as i64,
                    value_type,
                    label,
                    search_text,
                    revision as i64,
                    json
                ])
            }),
        Some(_) => tx
            .prepare_cached(
                "UPDATE objects SET type = ?2, label = ?3, search_text = ?4, revision = ?5,
                 json = ?6 WHERE zid = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    zid,
                    value_type,
                    label,
                    search_text,
                    revision as i64,
                    json
                ])
            }),
    }
    .map_err(db_error)?;
    if changed != 1 {
        return Err(StoreError::Database(format!(
            "writing {zid} changed {changed} rows instead of one"
        )));
    }
    Ok(revision)
}

fn current_revision(conn: &Connection, zid: &str) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached("SELECT revision FROM objects WHERE zid = ?1")
        .and_then(|mut s| s.query_row([zid], |row| row.get::<_, i64>(0)).optional())
        .map(|r| r.map(|n| n as u64))
        .map_err(db_error)
}

/// See [`SqliteStore::next_zid`]. Rows past [`MAX_ZID_NUMBER`] (written by versions that did
/// not bound ZIDs) are ignored, so they cannot push allocation out of range.
fn next_zid(conn: &Connection) -> Result<String, StoreError> {
    let (first, max) = (FIRST_USER_ZID as i64, MAX_ZID_NUMBER as i64);
    let highest: Option<i64> = conn
        .prepare_cached("SELECT MAX(number) FROM objects WHERE number BETWEEN ?1 AND ?2")
        .and_then(|mut s| s.query_row([first, max], |r| r.get(0)))
        .map_err(db_error)?;
    let number = match highest {
        None => first,
        Some(n) if n < max => n + 1,
        // The top is taken (someone wrote Z999999999): the lowest gap instead.
        Some(_) => conn
            .prepare_cached(
                "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM objects WHERE number = ?1) THEN ?1
                 ELSE (SELECT MIN(a.number) + 1 FROM objects a
                       WHERE a.number BETWEEN ?1 AND ?2 - 1
                         AND NOT EXISTS (SELECT 1 FROM objects b WHERE b.number = a.number + 1))
                 END",
            )
            .and_then(|mut s| s.query_row([first, max], |r| r.get::<_, Option<i64>>(0)))
            .map_err(db_error)?
            .ok_or_else(|| {
                StoreError::Allocation(format!(
                    "every ZID from Z{FIRST_USER_ZID} to Z{MAX_ZID_NUMBER} is taken"
                ))
            })?,
    };
    Ok(format!("Z{number}"))
}

/// Refuses a database file, or its write-ahead log or shared-memory file, that someone else
/// could have written: not a regular file (a link to elsewhere), not owned by this process's
/// effective uid, or writable by others or by a group that is not this process's. Until 2026-12-06 any file at the path was
/// opened: another local user who could create it first (a data dir in a shared place)
/// chose the objects, users and tokens of the store. A data dir that others may write to is
/// only warned about: a pod's volume is one (Kubernetes makes it world-writable), and the
/// processes that share it are the pod's own.
fn check_database_files(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    let refuse = |file: &Path, why: String| StoreError::Io {
        path: file.display().to_string(),
        message: format!("{why}; zeval does not open a database someone else could have written"),
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        let metadata = match std::fs::symlink_metadata(&file) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(refuse(&file, error.to_string())),
        };
        if !metadata.file_type().is_file() {
            return Err(refuse(&file, "it is not a regular file".to_owned()));
        }
        if metadata.uid() != euid {
            return Err(refuse(
                &file,
                format!(
                    "it is owned by uid {}, not by this process's uid {euid}",
                    metadata.uid()
                ),
            ));
        }
        // Group-writable is ours still when the group is: Kubernetes gives a volume's files
        // to the pod's `fsGroup`, writable by it, at every start.
        let mode = metadata.permissions().mode();
        let writable_by_others = mode & 0o002 != 0 || (mode & 0o020 != 0 && metadata.gid() != egid);
        if writable_by_others {
            return Err(refuse(
                &file,
                format!(
                    "it is writable by others, or by a group not this process's (mode {:o})",
                    mode & 0o7777
                ),
            ));
        }
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(metadata) = std::fs::metadata(dir)
        && metadata.permissions().mode() & 0o022 != 0
    {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", metadata.permissions().mode() & 0o7777),
            "the data directory is writable by others, who could replace the database"
        );
    }
    Ok(())
}

/// A write transaction that takes the write lock at once, so its reads (the next ZID, the
/// current revision) cannot be invalidated by another process before it commits.
fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)
}

pub(crate) fn check_depth(z2: &Value) -> Result<(), StoreError> {
    if zeval_zobject::depth::exceeds(z2, MAX_OBJECT_DEPTH) {
        return Err(StoreError::Invalid(format!(
            "the object nests deeper than {MAX_OBJECT_DEPTH} levels"
        )));
    }
    Ok(())
}

pub(crate) fn parse_stored(zid: &str, json: &str) -> Result<Value, StoreError> {
    zeval_zobject::json::parse(json)
        .map_err(|e| StoreError::Database(format!("stored JSON of {zid} is corrupt: {e}")))
}

/// A history page's size: `limit` clamped to 1..=[`MAX_HISTORY_REVISIONS`].
pub(crate) fn history_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_HISTORY_REVISIONS)
}

pub(crate) fn escape_like(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    fn labelled(zid: &str, label: &str) -> Value {
        json!({
            "Z1K1": "Z2",
            "Z2K1": {"Z1K1": "Z6", "Z6K1": zid},
            "Z2K2": "x",
            "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": label}]}
        })
    }

    /// A read waits for whichever reader comes free first: it used to wait for one reader
    /// chosen in turn, held by a long read (a search) while another was given back.
    #[test]
    fn a_read_takes_whichever_reader_comes_free_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).unwrap();
        for given_back in 0..READ_CONNECTIONS {
            let mut held: Vec<_> = (0..READ_CONNECTIONS)
                .map(|_| store.reader().unwrap())
                .collect();
            std::thread::scope(|scope| {
                let read = scope.spawn(|| {
                    let started = Instant::now();
                    store.current_revision("Z1").unwrap();
                    started.elapsed()
                });
                std::thread::sleep(Duration::from_millis(50));
                drop(held.remove(given_back));
                std::thread::sleep(Duration::from_millis(1_500));
                held.clear();
                let waited = read.join().unwrap();
                assert!(
                    waited < Duration::from_millis(1_000),
                    "round {given_back}: the read waited {waited:?} with a reader free"
                );
            });
        }
    }

    /// Scans (searches, history pages, counts) take every reader but one: however many a
    /// client sends, a lookup (an object, a token check) still finds one. One client's eight
    /// searches held all four, and every token check waited, then failed as busy.
    #[test]
    fn scans_leave_a_reader_for_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path())
            .unwrap()
            .with_read_bounds(Duration::from_millis(200), SEARCH_TIME_LIMIT);
        let scans: Vec<_> = (0..READ_CONNECTIONS - 1)
            .map(|_| store.scan_reader().unwrap())
            .collect();
        let started = Instant::now();
        let another = store.search(None, Some("x"), 10);
        assert!(matches!(another, Err(StoreError::Busy(_))), "{another:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        for _ in 0..20 {
            let started = Instant::now();
            assert!(store.get("Z1").is_ok());
            assert!(store.authenticate("not a token").is_ok());
            assert!(started.elapsed() < Duration::from_millis(100));
        }
        drop(scans);
        assert!(store.search(None, Some("x"), 10).is_ok());
        assert!(store.history("Z1", 0, 10).is_ok());
    }

    /// A read that finds every reader held for the whole wait fails with `Busy` then,
    /// instead of waiting as long as they are held.
    #[test]
    fn a_read_fails_when_no_reader_comes_free_within_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path())
            .unwrap()
            .with_read_bounds(Duration::from_millis(200), SEARCH_TIME_LIMIT);
        let held: Vec<_> = (0..READ_CONNECTIONS)
            .map(|_| store.reader().unwrap())
            .collect();
        let started = Instant::now();
        let outcome = store.get("Z1");
        let waited = started.elapsed();
        assert!(matches!(outcome, Err(StoreError::Busy(_))), "{outcome:?}");
        assert!(
            (Duration::from_millis(200)..Duration::from_secs(2)).contains(&waited),
            "{waited:?}"
        );
        drop(held);
        assert!(store.get("Z1").is_ok());
    }

    /// A call's fetch waits for a reader no later than the call's deadline
    /// (`DeadlineExceeded`), not the whole read wait; without a deadline, or before it, it
    /// reads as `get` does.
    #[test]
    fn a_fetch_waits_for_a_reader_no_later_than_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).unwrap();
        let zids = ["Z1".to_owned()];
        let held: Vec<_> = (0..READ_CONNECTIONS)
            .map(|_| store.reader().unwrap())
            .collect();
        let started = Instant::now();
        let outcome = store.fetch_before(&zids, Some(started + Duration::from_millis(100)));
        let waited = started.elapsed();
        assert!(
            matches!(outcome, Err(StoreError::DeadlineExceeded { ref zids }) if zids == "Z1"),
            "{outcome:?}"
        );
        assert!(waited < Duration::from_secs(2), "waited {waited:?}");
        drop(held);
        let far = Some(Instant::now() + Duration::from_secs(60));
        assert_eq!(store.fetch_before(&zids, far).unwrap().len(), 0);
    }

    /// Every read a call makes, not only its fetches (an approval, a revision, an artifact),
    /// waits for a reader no later than the call's deadline: each waited the whole
    /// [`READ_WAIT`] (5 s) before 2026-12-06.
    #[test]
    fn every_read_of_a_call_waits_for_a_reader_no_later_than_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).unwrap();
        let held: Vec<_> = (0..READ_CONNECTIONS)
            .map(|_| store.reader().unwrap())
            .collect();
        type Read<'a> = &'a dyn Fn() -> Result<(), StoreError>;
        let reads: [(&str, Read<'_>); 5] = [
            ("get", &|| store.get("Z10000").map(drop)),
            ("is_approved", &|| store.is_approved("Z10000").map(drop)),
            ("approved_object", &|| {
                store.approved_object("Z10000").map(drop)
            }),
            ("current_revision", &|| {
                store.current_revision("Z10000").map(drop)
            }),
            ("artifact", &|| store.artifact("00").map(drop)),
        ];
        for (what, read) in reads {
            let started = Instant::now();
            let outcome = crate::call_deadline::within(started + Duration::from_millis(100), read);
            let waited = started.elapsed();
            assert!(
                matches!(outcome, Err(StoreError::DeadlineExceeded { .. })),
                "{what}: {outcome:?}"
            );
            assert!(waited < Duration::from_secs(2), "{what} waited {waited:?}");
        }
        drop(held);
        assert!(crate::call_deadline::within(Instant::now(), || store.get("Z10000")).is_ok());
    }

    /// A search that scans past its time limit is interrupted (`Busy`), and the reader it
    /// held answers the next read; within the limit it answers.
    #[test]
    fn a_search_stops_at_its_time_limit() {
        let dir = tempfile::tempdir().unwrap();
        let long_label = "a label that matches nothing asked for ".repeat(100);
        let objects: Vec<(String, Value)> = (0..3_000)
            .map(|n| {
                let zid = format!("Z{}", 20_000 + n);
                let value = labelled(&zid, &long_label);
                (zid, value)
            })
            .collect();
        let store = SqliteStore::open_in(dir.path())
            .unwrap()
            .with_read_bounds(READ_WAIT, Duration::from_micros(200));
        store
            .seed(objects.iter().map(|(zid, value)| (zid.as_str(), value)))
            .unwrap();
        let outcome = store.search(None, Some("zzz not there"), 10);
        assert!(matches!(outcome, Err(StoreError::Busy(_))), "{outcome:?}");
        assert!(store.get("Z20000").unwrap().is_some());
        let store = store.with_read_bounds(READ_WAIT, SEARCH_TIME_LIMIT);
        assert_eq!(store.search(None, Some("zzz not there"), 10).unwrap(), []);
        assert_eq!(store.search(None, Some("Z20001"), 10).unwrap().len(), 1);
    }
}
