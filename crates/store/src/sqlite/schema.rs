//! The database schema, its migrations (`PRAGMA user_version`) and connection settings.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::StoreError;

use super::{BUSY_TIMEOUT, db_error};

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only; never edit a
/// migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: objects (current revision), their history, users, approvals.
    "CREATE TABLE objects (
        zid TEXT PRIMARY KEY,
        number INTEGER NOT NULL,
        type TEXT,
        label TEXT,
        search_text TEXT NOT NULL,
        revision INTEGER NOT NULL,
        json TEXT NOT NULL
    );
    CREATE INDEX objects_by_number ON objects(number);
    CREATE INDEX objects_by_type ON objects(type, number);
    CREATE TABLE revisions (
        zid TEXT NOT NULL,
        revision INTEGER NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        author TEXT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (zid, revision)
    ) WITHOUT ROWID;
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'editor')),
        token_sha256 TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE approvals (
        zid TEXT PRIMARY KEY,
        revision INTEGER NOT NULL,
        approved_by TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL
    );",
    // 2: compiled artifacts (content-addressed), and which artifact each revision of a
    // compiled implementation has.
    "CREATE TABLE artifacts (
        key TEXT PRIMARY KEY,
        language TEXT NOT NULL,
        compiler TEXT NOT NULL,
        wasm BLOB,
        error TEXT,
        created_ms INTEGER NOT NULL,
        CHECK ((wasm IS NULL) <> (error IS NULL))
    ) WITHOUT ROWID;
    CREATE TABLE compilations (
        zid TEXT NOT NULL,
        revision INTEGER NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (zid, revision)
    ) WITHOUT ROWID;",
    // 3: figures for ranking implementations: each tester's latest result per
    // implementation revision, and a summary of real calls per implementation revision.
    "CREATE TABLE tester_results (
        implementation TEXT NOT NULL,
        implementation_revision INTEGER NOT NULL,
        tester TEXT NOT NULL,
        tester_revision INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        duration_us INTEGER NOT NULL,
        run_ms INTEGER NOT NULL,
        PRIMARY KEY (implementation, implementation_revision, tester)
    ) WITHOUT ROWID;
    CREATE TABLE call_stats (
        implementation TEXT NOT NULL,
        implementation_revision INTEGER NOT NULL,
        calls INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        sketch BLOB NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (implementation, implementation_revision)
    ) WITHOUT ROWID;",
    // 4: what bounds the artifacts an editor's saves keep (`SqliteStore::record_compilation`):
    // each artifact's size, each compilation's author (its revision's), and indexes to find
    // an author's artifacts and whether any compilation still names one. Then, once, what
    // no call can reach: compilations of revisions neither current nor approved, and
    // artifacts no compilation names (those of every earlier save, and what calls compiled
    // with `keep_call_time_artifacts`, which calls compile again).
    "ALTER TABLE artifacts ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
    UPDATE artifacts SET bytes = COALESCE(length(wasm), length(CAST(error AS BLOB)), 0);
    ALTER TABLE compilations ADD COLUMN author TEXT NOT NULL DEFAULT '';
    UPDATE compilations SET author = COALESCE(
        (SELECT author FROM revisions r
         WHERE r.zid = compilations.zid AND r.revision = compilations.revision), '');
    CREATE INDEX compilations_by_key ON compilations(key);
    CREATE INDEX compilations_by_author ON compilations(author, key);
    DELETE FROM compilations WHERE revision NOT IN (
        SELECT revision FROM objects o WHERE o.zid = compilations.zid
        UNION SELECT revision FROM approvals a WHERE a.zid = compilations.zid);
    DELETE FROM artifacts WHERE key NOT IN (SELECT key FROM compilations);",
    // 5: each approval keeps its function's signature as it was when approved
    // (`Approval::signature`), and the revision it was kept for: an approval written without
    // one (by an older zeval sharing the database) keeps none. Approvals made before keep the
    // one their function had then, by its history ([`keep_signatures_at_upgrade`]).
    "ALTER TABLE approvals ADD COLUMN signature TEXT;
    ALTER TABLE approvals ADD COLUMN signature_revision INTEGER;",
];

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Durability and concurrency settings, applied to every connection.
///
/// - `journal_mode=WAL`: readers never block the writer, and a commit is one append to the
///   log, so a crash mid-write leaves the previous state intact.
/// - `synchronous=FULL`: the log is fsynced at every commit, so a transaction that returned
///   `Ok` survives a process crash *and* a power loss. (`NORMAL` would survive a process crash
///   but could lose the last commits on power loss; the store's writes are rare, so the extra
///   fsync is cheap.) The one exception is a tester result, a measurement written on every
///   test run: it is committed with `NORMAL` (`SqliteStore::record_tester_result`).
/// - `busy_timeout` ([`BUSY_TIMEOUT`], 5 s): another process (`zeval import` while `zeval
///   serve` runs) holding the write lock makes us wait that long before failing with a
///   database error.
pub(super) fn configure(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db_error)?;
    // An in-memory database answers "memory"; anything else would mean no WAL on a file.
    if mode != "wal" && mode != "memory" {
        return Err(StoreError::Database(format!(
            "could not enable WAL (journal_mode={mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_error)?;
    // A WAL that grew while long reads held checkpoints back is cut back to this after the
    // next checkpoint; without it the file kept its largest size for good.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
        .map_err(db_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
    Ok(())
}

/// What the write-ahead log is cut back to after a checkpoint (`journal_size_limit`).
pub(super) const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// A read-only connection to the (already configured and migrated) database at `path`. The
/// journal mode is a property of the file, so it reads in WAL mode and never waits for a
/// writer; the busy timeout covers the short moments a checkpoint or recovery holds a lock.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
    Ok(conn)
}

/// Brings the schema up to [`SCHEMA_VERSION`], each migration in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Database(format!(
            "the database has schema version {current}, newer than this zeval's {SCHEMA_VERSION}"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_error)?;
        tx.execute_batch(sql).map_err(db_error)?;
        if version + 1 == KEEPS_SIGNATURES {
            keep_signatures_at_upgrade(&tx)?;
        }
        tx.pragma_update(None, "user_version", version as i64 + 1)
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        tracing::info!(version = version + 1, "migrated the store schema");
    }
    Ok(())
}

/// The schema version whose approvals keep their function's signature.
const KEEPS_SIGNATURES: usize = 5;

/// Gives each approval of a current revision made before approvals kept a signature the one
/// its function had when it was approved, by the function's history: the revision current
/// then, or its first when the history starts later (an imported store, whose objects are
/// revision 1 of the import). None would stop every approved implementation for anonymous
/// callers at the upgrade; the function's signature now would take an edit made before the
/// upgrade, which approvals did not guard against, for approved.
fn keep_signatures_at_upgrade(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let approved: Vec<(String, i64, i64, String)> = tx
        .prepare(
            "SELECT a.zid, a.revision, a.timestamp_ms, o.json FROM approvals a
             JOIN objects o ON o.zid = a.zid
             WHERE a.revision = o.revision AND a.signature IS NULL",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(db_error)?;
    for (zid, revision, approved_ms, json) in approved {
        let Ok(z14) = super::parse_stored(&zid, &json) else {
            continue;
        };
        let signature = super::users::signature_to_keep(&z14, |object| {
            tx.query_row(
                "SELECT json FROM revisions WHERE zid = ?1
                 ORDER BY timestamp_ms > ?2,
                   CASE WHEN timestamp_ms > ?2 THEN revision ELSE -revision END
                 LIMIT 1",
                rusqlite::params![object, approved_ms],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_error)
        })?
        .or_none();
        tx.execute(
            "UPDATE approvals SET signature = ?1, signature_revision = ?2 WHERE zid = ?3",
            rusqlite::params![signature, revision, zid],
        )
        .map_err(db_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_ahead_log_is_cut_back_after_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("z.sqlite")).unwrap();
        configure(&conn).unwrap();
        let limit: i64 = conn
            .query_row("PRAGMA journal_size_limit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(limit, WAL_SIZE_LIMIT_BYTES);
    }
}
