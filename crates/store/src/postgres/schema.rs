//! The PostgreSQL schema and its versioned migrations.
//!
//! The version lives in the table `schema_version` (one row). Migrations run at start, all
//! in one transaction that first takes an advisory lock ([`MIGRATION_LOCK`]), so two nodes
//! starting at once do not race: the second waits, then finds the schema current.

use super::client::{Client, Statements, Transaction};

use super::pg_error;
use crate::StoreError;

/// The advisory lock migrations hold (an arbitrary constant: "zevalmg").
const MIGRATION_LOCK: i64 = 0x007a_6576_616c_6d67;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only; never edit a
/// migration that has shipped. The tables are the SQLite store's, with PostgreSQL's types.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite store's migrations 1 to 3 create.
    "CREATE TABLE objects (
        zid TEXT PRIMARY KEY,
        number BIGINT NOT NULL,
        type TEXT,
        label TEXT,
        search_text TEXT NOT NULL,
        revision BIGINT NOT NULL,
        json TEXT NOT NULL
    );
    CREATE INDEX objects_by_number ON objects(number);
    CREATE INDEX objects_by_type ON objects(type, number);
    CREATE TABLE revisions (
        zid TEXT NOT NULL,
        revision BIGINT NOT NULL,
        timestamp_ms BIGINT NOT NULL,
        author TEXT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (zid, revision)
    );
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'editor')),
        token_sha256 TEXT NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE approvals (
        zid TEXT PRIMARY KEY,
        revision BIGINT NOT NULL,
        approved_by TEXT NOT NULL,
        timestamp_ms BIGINT NOT NULL
    );
    CREATE TABLE artifacts (
        key TEXT PRIMARY KEY,
        language TEXT NOT NULL,
        compiler TEXT NOT NULL,
        wasm BYTEA,
        error TEXT,
        created_ms BIGINT NOT NULL,
        CHECK ((wasm IS NULL) <> (error IS NULL))
    );
    CREATE TABLE compilations (
        zid TEXT NOT NULL,
        revision BIGINT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (zid, revision)
    );
    CREATE TABLE tester_results (
        implementation TEXT NOT NULL,
        implementation_revision BIGINT NOT NULL,
        tester TEXT NOT NULL,
        tester_revision BIGINT NOT NULL,
        passed BOOLEAN NOT NULL,
        duration_us BIGINT NOT NULL,
        run_ms BIGINT NOT NULL,
        PRIMARY KEY (implementation, implementation_revision, tester)
    );
    CREATE TABLE call_stats (
        implementation TEXT NOT NULL,
        implementation_revision BIGINT NOT NULL,
        calls BIGINT NOT NULL,
        failures BIGINT NOT NULL,
        sketch BYTEA NOT NULL,
        updated_ms BIGINT NOT NULL,
        PRIMARY KEY (implementation, implementation_revision)
    );",
    // 2: the SQLite store's migration 4 (artifacts' sizes, compilations' authors).
    "ALTER TABLE artifacts ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
    UPDATE artifacts SET bytes = COALESCE(octet_length(wasm), octet_length(error), 0);
    ALTER TABLE compilations ADD COLUMN author TEXT NOT NULL DEFAULT '';
    UPDATE compilations c SET author = r.author
        FROM revisions r WHERE r.zid = c.zid AND r.revision = c.revision;
    CREATE INDEX compilations_by_key ON compilations(key);
    CREATE INDEX compilations_by_author ON compilations(author, key);
    DELETE FROM compilations c WHERE c.revision NOT IN (
        SELECT revision FROM objects o WHERE o.zid = c.zid
        UNION SELECT revision FROM approvals a WHERE a.zid = c.zid);
    DELETE FROM artifacts WHERE key NOT IN (SELECT key FROM compilations);",
    // 3: the SQLite store's migration 5 (each approval keeps its function's signature and
    // the revision it was kept for; those made before, the one their function had then).
    "ALTER TABLE approvals ADD COLUMN signature TEXT;
    ALTER TABLE approvals ADD COLUMN signature_revision BIGINT;",
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version whose approvals keep their function's signature.
const KEEPS_SIGNATURES: usize = 3;

/// The SQLite store's `keep_signatures_at_upgrade`: each approval of a current revision
/// made before gets the signature its function had when approved, by its history.
fn keep_signatures_at_upgrade(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    let approved = tx
        .query(
            "SELECT a.zid, a.revision, a.timestamp_ms, o.json FROM approvals a
             JOIN objects o ON o.zid = a.zid
             WHERE a.revision = o.revision AND a.signature IS NULL",
            &[],
        )
        .map_err(pg_error)?;
    for row in approved {
        let zid: String = row.get(0);
        let (revision, approved_ms): (i64, i64) = (row.get(1), row.get(2));
        let Ok(z14) = crate::sqlite::parse_stored(&zid, row.get(3)) else {
            continue;
        };
        let signature = crate::sqlite::users::signature_to_keep(&z14, |object| {
            Ok(tx
                .query_opt(
                    "SELECT json FROM revisions WHERE zid = $1
                     ORDER BY timestamp_ms > $2,
                       CASE WHEN timestamp_ms > $2 THEN revision ELSE -revision END
                     LIMIT 1",
                    &[&object, &approved_ms],
                )
                .map_err(pg_error)?
                .map(|r| r.get(0)))
        })?
        .or_none();
        tx.execute(
            "UPDATE approvals SET signature = $1, signature_revision = $2 WHERE zid = $3",
            &[&signature, &revision, &zid],
        )
        .map_err(pg_error)?;
    }
    Ok(())
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction under [`MIGRATION_LOCK`].
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .map_err(pg_error)?;
    let current: i64 = match tx
        .query_opt("SELECT version FROM schema_version", &[])
        .map_err(pg_error)?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])
                .map_err(pg_error)?;
            0
        }
    };
    if current > SCHEMA_VERSION {
        return Err(StoreError::Database(format!(
            "the database has schema version {current}, newer than this zeval's {SCHEMA_VERSION}"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).map_err(pg_error)?;
        if version + 1 == KEEPS_SIGNATURES {
            keep_signatures_at_upgrade(&mut tx)?;
        }
        tx.execute(
            "UPDATE schema_version SET version = $1",
            &[&(version as i64 + 1)],
        )
        .map_err(pg_error)?;
        tracing::info!(
            version = version + 1,
            "migrated the PostgreSQL store schema"
        );
    }
    tx.commit().map_err(pg_error)
}
