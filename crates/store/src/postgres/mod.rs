//! [`PostgresStore`]: the object store on PostgreSQL, for several zeval nodes sharing one
//! database. Same tables, same rules and same answers as [`crate::SqliteStore`] (the store
//! tests run against both).
//!
//! Concurrency across nodes: every write transaction first takes one transaction-scoped
//! advisory lock ([`WRITE_LOCK`]), so writes are serialised exactly as SQLite's single
//! writer serialises them. That makes ZID allocation a locked counter (the highest number
//! plus one, read and inserted under the lock: no two nodes get the same ZID) and makes
//! a write based on a revision ([`PostgresStore::put_based_on`]) a check-and-write no other
//! write can slip between. Reads take no lock (READ COMMITTED: each sees every committed
//! write). Writes are short and rare next to reads, so one lock costs little.
//!
//! Bounds: [`pool::POOL_SIZE`] connections, [`pool::POOL_WAIT`] to get one,
//! [`pool::CONNECT_TIMEOUT`] to open one, [`pool::STATEMENT_TIMEOUT`] per statement; for a
//! call, its deadline too ([`crate::call_deadline`]: the wait for a connection ends by it,
//! and a statement still running then is cancelled, see `cancel`). A server that does not
//! answer at all is given up on by the client: [`CUT_AFTER_DEADLINE`] past a call's deadline,
//! [`CUT_AFTER_STATEMENT_TIMEOUT`] past the statement timeout otherwise (`client`).
//! Connections are plain TCP or a unix socket, without TLS: run PostgreSQL on the same host
//! or a trusted network.

use std::collections::HashMap;

use client::Statements;
use zeval_zobject::Value;

use crate::sqlite::artifacts::{
    ArtifactColumns, ArtifactOutcome, ArtifactSummary, Compilation, StoredArtifact,
};
use crate::sqlite::ranking::{CallStats, MAX_SKETCH_BYTES, MAX_TESTER_RESULTS, TesterResult};
use crate::sqlite::users::{
    Approval, ApprovalPreview, ApprovedObject, Reviewed, Role, User, UserRecord,
    check_function_reviewed, check_signature_reviewed, implementation_row, implemented_function,
    kept_signature, new_token, signature_tag, signature_to_keep, token_hash,
};
use crate::sqlite::{
    CATALOGUE_AUTHOR, FIRST_USER_ZID, HistoryPage, MAX_HISTORY_PAGE_BYTES, MAX_SEARCH_RESULTS,
    MAX_SUMMARY_LABEL_CHARS, MAX_ZID_NUMBER, ObjectSummary, Prepared, Revision, Write, check_new,
    escape_like, history_limit, now_ms, parse_stored, prepare, summary_label, with_zid,
};
use crate::{ObjectSource, StoreError};

mod cancel;
mod client;
pub(crate) mod pool;
mod schema;

pub use client::{CUT_AFTER_DEADLINE, CUT_AFTER_STATEMENT_TIMEOUT};
pub use pool::{
    CONNECT_TIMEOUT, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES, POOL_SIZE, POOL_WAIT,
    PostgresLimits, STATEMENT_TIMEOUT, TCP_USER_TIMEOUT,
};

/// The advisory lock every write transaction holds (an arbitrary constant: "zevalwr").
const WRITE_LOCK: i64 = 0x007a_6576_616c_7772;

/// The object store on a PostgreSQL database.
pub struct PostgresStore {
    pool: pool::Pool,
    /// The longest one [`Self::search`] runs ([`crate::SEARCH_TIME_LIMIT`] by default).
    search_time_limit: std::time::Duration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host/db`, or
    /// `postgresql:///db?host=/run/postgresql` for a unix socket) and migrates its schema.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresLimits::default())
    }

    /// [`Self::connect`] with other bounds than the default ones.
    pub fn connect_with(url: &str, limits: PostgresLimits) -> Result<Self, StoreError> {
        let pool = pool::Pool::new(url, limits)?;
        schema::migrate(&mut *pool.get()?)?;
        Ok(Self {
            pool,
            search_time_limit: crate::SEARCH_TIME_LIMIT,
        })
    }

    /// Lets one [`Self::search`] run at most `limit` instead of [`crate::SEARCH_TIME_LIMIT`].
    #[must_use]
    pub fn with_search_time_limit(self, limit: std::time::Duration) -> Self {
        Self {
            search_time_limit: limit,
            ..self
        }
    }

    /// Runs `f` in a write transaction holding [`WRITE_LOCK`], and commits what it returns.
    /// Not bound by the deadline of a call on this thread ([`crate::call_deadline`]): what a
    /// call writes (an artifact it compiled, the figures and tester results it records) is
    /// written whole or not at all, within the pool's own bounds, as on SQLite.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut client::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = crate::call_deadline::without(|| self.pool.get())?;
        let mut tx = conn.transaction().map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .map_err(pg_error)?;
        let out = f(&mut tx)?;
        tx.commit().map_err(pg_error)?;
        Ok(out)
    }

    /// Adds every object of the built-in catalogue the store does not hold yet.
    pub fn seed_catalogue(&self) -> Result<usize, StoreError> {
        self.seed(zeval_catalogue::zids().filter_map(|zid| Some((zid, zeval_catalogue::get(zid)?))))
    }

    /// The current version of `zid`.
    pub fn get(&self, zid: &str) -> Result<Option<Value>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt("SELECT json FROM objects WHERE zid = $1", &[&zid])
            .map_err(pg_error)?;
        row.map(|r| parse_stored(zid, r.get(0))).transpose()
    }

    /// The current revision number of `zid`.
    pub fn current_revision(&self, zid: &str) -> Result<Option<u64>, StoreError> {
        current_revision(&mut *self.pool.get()?, zid)
    }

    /// The revisions of `zid` after `after`, oldest first, at most `limit` (see
    /// [`crate::SqliteStore::history`]).
    pub fn history(&self, zid: &str, after: u64, limit: usize) -> Result<HistoryPage, StoreError> {
        let limit = history_limit(limit);
        // One row more than the page says whether another page follows; its object is
        // never parsed.
        // Each row's object only while the page's objects before it leave room for it (the
        // first always): the rows come whole, so the bound is kept in the query. Lengths are
        // read from the rows' headers, not the objects.
        let rows = self
            .pool
            .get_scan()?
            .query(
                "SELECT revision, timestamp_ms, author,
                        CASE WHEN row_number() OVER page = 1
                               OR sum(octet_length(json)) OVER page <= $4
                             THEN json END
                 FROM revisions
                 WHERE zid = $1 AND revision > $2
                 WINDOW page AS (ORDER BY revision ROWS UNBOUNDED PRECEDING)
                 ORDER BY revision LIMIT $3",
                &[
                    &zid,
                    &(after.min(i64::MAX as u64) as i64),
                    &(limit as i64 + 1),
                    &(MAX_HISTORY_PAGE_BYTES as i64),
                ],
            )
            .map_err(pg_error)?;
        let mut page = HistoryPage::default();
        for r in &rows {
            let json: Option<&str> = r.get(3);
            let (Some(json), true) = (json, page.revisions.len() < limit) else {
                page.next = page.revisions.last().map(|r| r.revision);
                break;
            };
            page.revisions.push(Revision {
                revision: r.get::<_, i64>(0) as u64,
                timestamp_ms: r.get(1),
                author: r.get(2),
                object: parse_stored(zid, json)?,
            });
        }
        Ok(page)
    }

    /// Stores `z2` as the new current version of `zid`.
    pub fn put(&self, zid: &str, z2: &Value, author: &str) -> Result<u64, StoreError> {
        self.put_based_on(zid, z2, author, None)
    }

    /// [`Self::put`] only if the object is at revision `base` (0: new); else
    /// [`StoreError::Conflict`].
    pub fn put_based_on(
        &self,
        zid: &str,
        z2: &Value,
        author: &str,
        base: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mode = base.map_or(Write::NewOrRevision, Write::BasedOn);
        self.write(|tx| write(tx, zid, z2, author, now_ms(), mode))
    }

    /// Stores several objects in one transaction: all or none.
    pub fn put_all(
        &self,
        objects: &[(String, Value)],
        author: &str,
    ) -> Result<Vec<u64>, StoreError> {
        let timestamp = now_ms();
        self.write(|tx| {
            objects
                .iter()
                .map(|(zid, z2)| write(tx, zid, z2, author, timestamp, Write::NewOrRevision))
                .collect()
        })
    }

    /// Stores a new object under the next free ZID and returns it.
    pub fn create(&self, z2: &Value, author: &str) -> Result<String, StoreError> {
        check_new(z2)?;
        self.write(|tx| {
            let zid = next_zid(tx)?;
            let object = with_zid(z2, &zid);
            write(tx, &zid, &object, author, now_ms(), Write::NewOnly)?;
            Ok(zid)
        })
    }

    /// The ZID [`Self::create`] would hand out now.
    pub fn next_zid(&self) -> Result<String, StoreError> {
        next_zid(&mut *self.pool.get()?)
    }

    /// Objects by type and/or label text, in ZID order.
    pub fn search(
        &self,
        type_zid: Option<&str>,
        text: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectSummary>, StoreError> {
        let limit = limit.min(MAX_SEARCH_RESULTS) as i64;
        let pattern = text.map(|t| format!("%{}%", escape_like(&t.to_lowercase())));
        let mut conn = self.pool.get_scan()?;
        // A text that matches little reads every label (no index serves `LIKE '%…%'`), on an
        // anonymous route: at most the search's own limit, not the pool's statement timeout
        // (30 s), as on SQLite.
        let mut tx = conn
            .transaction_within(self.search_time_limit)
            .map_err(pg_error)?;
        let ms = self.search_time_limit.as_millis().max(1);
        tx.batch_execute(&format!("SET LOCAL statement_timeout = {ms}"))
            .map_err(pg_error)?;
        let rows = tx
            .query(
                "SELECT zid, type, left(label, $5), revision FROM objects
                 WHERE ($1::TEXT IS NULL OR type = $1)
                   AND ($2::TEXT IS NULL OR search_text LIKE $2 ESCAPE '\\' OR zid = $3)
                 ORDER BY number LIMIT $4",
                &[
                    &type_zid,
                    &pattern,
                    &text,
                    &limit,
                    &(MAX_SUMMARY_LABEL_CHARS as i32 + 1),
                ],
            )
            .map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
                    StoreError::Busy(format!(
                        "the search ran longer than its limit of {ms} ms; a longer text or a \
                         type narrows it"
                    ))
                } else {
                    pg_error(e)
                }
            })?;
        // Read only: dropped, it is rolled back (a commit given up on would say a write's outcome
        // is unknown).
        drop(tx);
        Ok(rows
            .iter()
            .map(|r| ObjectSummary {
                zid: r.get(0),
                type_zid: r.get(1),
                label: summary_label(r.get(2)),
                revision: r.get::<_, i64>(3) as u64,
            })
            .collect())
    }

    /// How many objects the store holds.
    pub fn count(&self) -> Result<u64, StoreError> {
        let row = self
            .pool
            .get_scan()?
            .query_one("SELECT COUNT(*) FROM objects", &[])
            .map_err(pg_error)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// How many objects have each value type.
    pub fn count_by_type(&self) -> Result<HashMap<String, u64>, StoreError> {
        let rows = self
            .pool
            .get_scan()?
            .query(
                "SELECT COALESCE(type, ''), COUNT(*) FROM objects GROUP BY 1",
                &[],
            )
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    /// Every stored ZID in numeric order.
    pub fn zids(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .pool
            .get()?
            .query("SELECT zid FROM objects ORDER BY number", &[])
            .map_err(pg_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Stores each object the store does not hold yet, as revision 1 by [`CATALOGUE_AUTHOR`].
    pub fn seed<'a>(
        &self,
        objects: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Result<usize, StoreError> {
        let timestamp = now_ms();
        self.write(|tx| {
            let mut added = 0;
            for (zid, z2) in objects {
                if current_revision(tx, zid)?.is_none() {
                    write(tx, zid, z2, CATALOGUE_AUTHOR, timestamp, Write::NewOnly)?;
                    added += 1;
                }
            }
            Ok(added)
        })
    }

    /// Adds a user and returns their new token.
    pub fn add_user(&self, name: &str, role: Role) -> Result<String, StoreError> {
        let token = new_token(name)?;
        self.write(|tx| {
            let exists = tx
                .query_opt("SELECT 1 FROM users WHERE name = $1", &[&name])
                .map_err(pg_error)?
                .is_some();
            if exists {
                return Err(StoreError::UserExists(name.to_string()));
            }
            tx.execute(
                "INSERT INTO users (name, role, token_sha256, created_ms) VALUES ($1, $2, $3, $4)",
                &[&name, &role.as_str(), &token_hash(&token), &now_ms()],
            )
            .map_err(pg_error)?;
            Ok(())
        })?;
        Ok(token)
    }

    /// Every user with their token hash, by name.
    pub fn user_records(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = self
            .pool
            .get()?
            .query(
                "SELECT name, role, token_sha256, created_ms FROM users ORDER BY name COLLATE \"C\"",
                &[],
            )
            .map_err(pg_error)?;
        rows.iter()
            .map(|r| {
                Ok(UserRecord {
                    name: r.get(0),
                    role: r.get::<_, &str>(1).parse()?,
                    token_sha256: r.get(2),
                    created_ms: r.get(3),
                })
            })
            .collect()
    }

    /// Adds a user as exported, unless the name or the token hash is taken.
    pub fn restore_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        record.check()?;
        self.write(|tx| {
            let added = tx
                .execute(
                    "INSERT INTO users (name, role, token_sha256, created_ms)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[
                        &record.name,
                        &record.role.as_str(),
                        &record.token_sha256,
                        &record.created_ms,
                    ],
                )
                .map_err(pg_error)?;
            Ok(added == 1)
        })
    }

    /// Every approval, by ZID.
    pub fn approvals(&self) -> Result<Vec<(String, Approval)>, StoreError> {
        let rows = self
            .pool
            .get()?
            .query(
                "SELECT zid, revision, approved_by, timestamp_ms,
                   CASE WHEN signature_revision = revision THEN signature END
                 FROM approvals ORDER BY zid COLLATE \"C\"",
                &[],
            )
            .map_err(pg_error)?;
        rows.iter()
            .map(|r| {
                let zid: String = r.get(0);
                let signature = kept_signature(&zid, r.get(4))?;
                Ok((
                    zid,
                    Approval {
                        revision: r.get::<_, i64>(1) as u64,
                        approved_by: r.get(2),
                        timestamp_ms: r.get(3),
                        signature,
                    },
                ))
            })
            .collect()
    }

    /// Records `approval` of `zid` as given (see `SqliteStore::restore_approval`).
    pub fn restore_approval(
        &self,
        zid: &str,
        approval: &Approval,
        before_signatures: bool,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let signature = match before_signatures {
                false => approval.signature.as_ref().map(Value::to_string),
                true => {
                    let mut object = |zid: &str| object_json(tx, zid);
                    match object(zid)? {
                        Some(json) => {
                            signature_to_keep(&parse_stored(zid, &json)?, object)?.or_none()
                        }
                        None => None,
                    }
                }
            };
            tx.execute(
                "INSERT INTO approvals
                   (zid, revision, approved_by, timestamp_ms, signature, signature_revision)
                 VALUES ($1, $2, $3, $4, $5, $2)
                 ON CONFLICT (zid) DO UPDATE SET revision = EXCLUDED.revision,
                   approved_by = EXCLUDED.approved_by, timestamp_ms = EXCLUDED.timestamp_ms,
                   signature = EXCLUDED.signature,
                   signature_revision = EXCLUDED.signature_revision",
                &[
                    &zid,
                    &(approval.revision as i64),
                    &text(&approval.approved_by),
                    &approval.timestamp_ms,
                    &signature,
                ],
            )
            .map_err(pg_error)?;
            Ok(())
        })
    }

    /// The user a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Result<Option<User>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT name, role FROM users WHERE token_sha256 = $1",
                &[&token_hash(token)],
            )
            .map_err(pg_error)?;
        row.map(|r| {
            Ok(User {
                name: r.get(0),
                role: r.get::<_, &str>(1).parse()?,
            })
        })
        .transpose()
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = self
            .pool
            .get()?
            .query("SELECT name, role FROM users ORDER BY name", &[])
            .map_err(pg_error)?;
        rows.iter()
            .map(|r| {
                Ok(User {
                    name: r.get(0),
                    role: r.get::<_, &str>(1).parse()?,
                })
            })
            .collect()
    }

    /// Approves the current revision of the implementation `zid` (admins only).
    pub fn approve(&self, zid: &str, by: &User) -> Result<u64, StoreError> {
        self.approve_revision(zid, by, Reviewed::default())
    }

    /// What approving `zid` now would keep (see `SqliteStore::approval_preview`), read in
    /// one transaction.
    pub fn approval_preview(&self, zid: &str) -> Result<ApprovalPreview, StoreError> {
        // A scan's connection (up to 65 objects read, on an anonymous route), and one snapshot:
        // at READ COMMITTED each statement would see the latest commit, and an edit saved
        // meanwhile could pair a function's revision with another revision's tag.
        let mut conn = self.pool.get_scan()?;
        // Read only: dropped, it is rolled back.
        let mut tx = conn.transaction().map_err(pg_error)?;
        tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .map_err(pg_error)?;
        let (revision, json) = stored_implementation(&mut tx, zid)?;
        let z14 = parse_stored(zid, &json)?;
        let function = match implemented_function(&z14) {
            Some(function) => current_revision(&mut tx, &function)?.map(|at| (function, at)),
            None => None,
        };
        let kept = signature_to_keep(&z14, |object| object_json(&mut tx, object))?.or_refused()?;
        drop(tx);
        Ok(ApprovalPreview {
            revision: revision as u64,
            function,
            signature_tag: signature_tag(kept.as_deref()),
            signature: kept_signature(zid, kept)?,
        })
    }

    /// The approval of the current revision, only if the current revisions are those the
    /// admin `reviewed` (see `SqliteStore::approve_revision`).
    pub fn approve_revision(
        &self,
        zid: &str,
        by: &User,
        reviewed: Reviewed,
    ) -> Result<u64, StoreError> {
        by.require_admin()?;
        self.write(|tx| {
            let (revision, json) = stored_implementation(tx, zid)?;
            if let Some(expected) = reviewed.revision
                && expected != revision as u64
            {
                return Err(StoreError::Conflict {
                    zid: zid.to_string(),
                    base: expected,
                    current: Some(revision as u64),
                });
            }
            let z14 = parse_stored(zid, &json)?;
            check_function_reviewed(&z14, reviewed.function.as_ref(), |function| {
                current_revision(tx, function)
            })?;
            let signature =
                signature_to_keep(&z14, |object| object_json(tx, object))?.or_refused()?;
            check_signature_reviewed(zid, signature.as_deref(), reviewed.signature.as_deref())?;
            tx.execute(
                "INSERT INTO approvals
                   (zid, revision, approved_by, timestamp_ms, signature, signature_revision)
                 VALUES ($1, $2, $3, $4, $5, $2)
                 ON CONFLICT (zid) DO UPDATE SET revision = EXCLUDED.revision,
                   approved_by = EXCLUDED.approved_by, timestamp_ms = EXCLUDED.timestamp_ms,
                   signature = EXCLUDED.signature,
                   signature_revision = EXCLUDED.signature_revision",
                &[&zid, &revision, &by.name, &now_ms(), &signature],
            )
            .map_err(pg_error)?;
            Ok(revision as u64)
        })
    }

    /// Whether the current revision of `zid` is approved.
    pub fn is_approved(&self, zid: &str) -> Result<bool, StoreError> {
        // One statement, so the revision and the approval are of the same moment.
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT 1 FROM objects o JOIN approvals a ON a.zid = o.zid
                 WHERE o.zid = $1 AND a.revision = o.revision",
                &[&zid],
            )
            .map_err(pg_error)?;
        Ok(row.is_some())
    }

    /// The current revision of `zid` (its Z2) when that revision is approved (see
    /// [`crate::SqliteStore::approved_object`]).
    pub fn approved_object(&self, zid: &str) -> Result<Option<ApprovedObject>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT o.json, CASE WHEN a.signature_revision = a.revision THEN a.signature END
                 FROM objects o JOIN approvals a ON a.zid = o.zid
                 WHERE o.zid = $1 AND a.revision = o.revision",
                &[&zid],
            )
            .map_err(pg_error)?;
        row.map(|r| {
            Ok(ApprovedObject {
                object: parse_stored(zid, r.get(0))?,
                signature: kept_signature(zid, r.get(1))?,
            })
        })
        .transpose()
    }

    /// The latest approval of `zid`.
    pub fn approval(&self, zid: &str) -> Result<Option<Approval>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT revision, approved_by, timestamp_ms,
                   CASE WHEN signature_revision = revision THEN signature END
                 FROM approvals WHERE zid = $1",
                &[&zid],
            )
            .map_err(pg_error)?;
        row.map(|r| {
            Ok(Approval {
                revision: r.get::<_, i64>(0) as u64,
                approved_by: r.get(1),
                timestamp_ms: r.get(2),
                signature: kept_signature(zid, r.get(3))?,
            })
        })
        .transpose()
    }

    /// The artifact stored under `key`.
    pub fn artifact(&self, key: &str) -> Result<Option<StoredArtifact>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT language, compiler, wasm, error FROM artifacts WHERE key = $1",
                &[&key],
            )
            .map_err(pg_error)?;
        Ok(row.map(|r| StoredArtifact {
            language: r.get(0),
            compiler: r.get(1),
            outcome: match r.get::<_, Option<Vec<u8>>>(2) {
                Some(wasm) => ArtifactOutcome::Compiled(wasm),
                None => ArtifactOutcome::Failed(r.get::<_, Option<String>>(3).unwrap_or_default()),
            },
        }))
    }

    /// [`Self::artifact`] without the module (see `SqliteStore::artifact_summary`).
    pub fn artifact_summary(&self, key: &str) -> Result<Option<ArtifactSummary>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT language, compiler, octet_length(wasm)::BIGINT, error FROM artifacts
                 WHERE key = $1",
                &[&key],
            )
            .map_err(pg_error)?;
        Ok(row.map(|r| ArtifactSummary {
            language: r.get(0),
            compiler: r.get(1),
            outcome: match r.get::<_, Option<i64>>(2) {
                Some(bytes) => Ok(bytes as u64),
                None => Err(r.get::<_, Option<String>>(3).unwrap_or_default()),
            },
        }))
    }

    /// Stores `artifact` under `key` unless one is there already.
    pub fn put_artifact(&self, key: &str, artifact: &StoredArtifact) -> Result<(), StoreError> {
        let columns = ArtifactColumns::of(artifact)?;
        self.write(|tx| insert_artifact(tx, key, artifact, &columns))
    }

    /// Records a compilation and drops what no call can reach, within the author's budget
    /// (see `SqliteStore::record_compilation`). The write lock every write takes serialises
    /// it with saves and approvals, so the revisions it keeps are current.
    pub fn record_compilation(&self, compilation: &Compilation<'_>) -> Result<(), StoreError> {
        let columns = compilation.artifact.map(ArtifactColumns::of).transpose()?;
        let Compilation { zid, key, .. } = *compilation;
        let revision = compilation.revision as i64;
        self.write(|tx| {
            let author: String = tx
                .query_one(
                    "SELECT COALESCE(
                         (SELECT author FROM revisions WHERE zid = $1 AND revision = $2), '')",
                    &[&zid, &revision],
                )
                .map_err(pg_error)?
                .get(0);
            let charged = !tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM compilations WHERE key = $1 AND author = $2)",
                    &[&key, &author],
                )
                .map_err(pg_error)?
                .get::<_, bool>(0);
            if let (Some(artifact), Some(columns)) = (compilation.artifact, &columns) {
                insert_artifact(tx, key, artifact, columns)?;
            }
            tx.execute(
                "INSERT INTO compilations (zid, revision, key, author) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (zid, revision) DO UPDATE
                 SET key = EXCLUDED.key, author = EXCLUDED.author",
                &[&zid, &revision, &key, &author],
            )
            .map_err(pg_error)?;
            if charged {
                let held: i64 = tx
                    .query_one(
                        "SELECT COALESCE(SUM(bytes), 0)::BIGINT FROM artifacts WHERE key IN (
                             SELECT key FROM compilations WHERE author = $1
                             AND NOT (zid = $2 AND revision NOT IN (
                                 SELECT revision FROM objects WHERE zid = $2
                                 UNION SELECT revision FROM approvals WHERE zid = $2)))",
                        &[&author, &zid],
                    )
                    .map_err(pg_error)?
                    .get(0);
                let held = held.max(0) as u64;
                if held > compilation.author_budget {
                    // Not committed: rolled back, so the earlier revision keeps its artifact.
                    return Err(StoreError::OverBudget {
                        author,
                        bytes: held,
                        budget: compilation.author_budget,
                    });
                }
            }
            let unreachable = tx
                .query(
                    "DELETE FROM compilations WHERE zid = $1 AND revision NOT IN (
                         SELECT revision FROM objects WHERE zid = $1
                         UNION SELECT revision FROM approvals WHERE zid = $1)
                     RETURNING key",
                    &[&zid],
                )
                .map_err(pg_error)?;
            for row in &unreachable {
                drop_unnamed_artifact(tx, row.get(0))?;
            }
            Ok(())
        })
    }

    /// The artifact key of revision `revision` of `zid`.
    pub fn compilation(&self, zid: &str, revision: u64) -> Result<Option<String>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT key FROM compilations WHERE zid = $1 AND revision = $2",
                &[&zid, &(revision as i64)],
            )
            .map_err(pg_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Every stored artifact key, in key order.
    pub fn artifact_keys(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .pool
            .get()?
            .query("SELECT key FROM artifacts ORDER BY key COLLATE \"C\"", &[])
            .map_err(pg_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Records `result`, replacing the tester's earlier result on that revision.
    pub fn record_tester_result(&self, result: &TesterResult) -> Result<(), StoreError> {
        self.record_tester_results(std::slice::from_ref(result))
    }

    /// Records `results` in one transaction (see `SqliteStore::record_tester_results`).
    pub fn record_tester_results(&self, results: &[TesterResult]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            // A measurement, recorded on every test run: committed without waiting for its
            // WAL flush, as the SQLite store commits it without its fsync (see
            // `SqliteStore::record_tester_result`). Only this transaction.
            tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
                .map_err(pg_error)?;
            let insert = "INSERT INTO tester_results
                   (implementation, implementation_revision, tester, tester_revision, passed,
                    duration_us, run_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (implementation, implementation_revision, tester) DO UPDATE SET
                   tester_revision = EXCLUDED.tester_revision, passed = EXCLUDED.passed,
                   duration_us = EXCLUDED.duration_us, run_ms = EXCLUDED.run_ms";
            for result in results {
                tx.execute(
                    insert,
                    &[
                        &text(&result.implementation),
                        &(result.implementation_revision as i64),
                        &text(&result.tester),
                        &(result.tester_revision as i64),
                        &result.passed,
                        &(result.duration_us.min(i64::MAX as u64) as i64),
                        &result.run_ms,
                    ],
                )
                .map_err(pg_error)?;
            }
            Ok(())
        })
    }

    /// The latest result of each tester on `revision` of `implementation`.
    pub fn tester_results(
        &self,
        implementation: &str,
        revision: u64,
    ) -> Result<Vec<TesterResult>, StoreError> {
        let rows = self
            .pool
            .get()?
            .query(
                "SELECT tester, tester_revision, passed, duration_us, run_ms FROM tester_results
                 WHERE implementation = $1 AND implementation_revision = $2
                 ORDER BY tester COLLATE \"C\" LIMIT $3",
                &[
                    &implementation,
                    &(revision as i64),
                    &(MAX_TESTER_RESULTS as i64),
                ],
            )
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| TesterResult {
                implementation: implementation.to_owned(),
                implementation_revision: revision,
                tester: r.get(0),
                tester_revision: r.get::<_, i64>(1).max(0) as u64,
                passed: r.get(2),
                duration_us: r.get::<_, i64>(3).max(0) as u64,
                run_ms: r.get(4),
            })
            .collect())
    }

    /// Stores the call summary of `revision` of `implementation`.
    pub fn put_call_stats(
        &self,
        implementation: &str,
        revision: u64,
        stats: &CallStats,
    ) -> Result<(), StoreError> {
        if stats.sketch.len() > MAX_SKETCH_BYTES {
            return Err(StoreError::Invalid(format!(
                "a latency sketch of {} bytes is over the limit of {MAX_SKETCH_BYTES}",
                stats.sketch.len()
            )));
        }
        self.write(|tx| {
            tx.execute(
                "INSERT INTO call_stats
                   (implementation, implementation_revision, calls, failures, sketch, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (implementation, implementation_revision) DO UPDATE SET
                   calls = EXCLUDED.calls, failures = EXCLUDED.failures,
                   sketch = EXCLUDED.sketch, updated_ms = EXCLUDED.updated_ms",
                &[
                    &text(implementation),
                    &(revision as i64),
                    &(stats.calls.min(i64::MAX as u64) as i64),
                    &(stats.failures.min(i64::MAX as u64) as i64),
                    &stats.sketch,
                    &now_ms(),
                ],
            )
            .map_err(pg_error)?;
            Ok(())
        })
    }

    /// The call summary of `revision` of `implementation`.
    pub fn call_stats(
        &self,
        implementation: &str,
        revision: u64,
    ) -> Result<Option<CallStats>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT calls, failures, sketch FROM call_stats
                 WHERE implementation = $1 AND implementation_revision = $2",
                &[&implementation, &(revision as i64)],
            )
            .map_err(pg_error)?;
        Ok(row.map(|r| CallStats {
            calls: r.get::<_, i64>(0).max(0) as u64,
            failures: r.get::<_, i64>(1).max(0) as u64,
            sketch: r.get(2),
        }))
    }
}

impl ObjectSource for PostgresStore {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        self.fetch_before(zids, None)
    }

    /// Waits for a connection no later than `deadline` (as the SQLite store waits for a
    /// reader): with every connection held, a call's fetch waited the whole pool wait
    /// (10 s), past the call's own deadline. One connection serves all the ZIDs.
    fn fetch_before(
        &self,
        zids: &[String],
        deadline: Option<std::time::Instant>,
    ) -> Result<HashMap<String, Value>, StoreError> {
        let mut found = HashMap::new();
        if zids.is_empty() {
            return Ok(found);
        }
        let mut conn = self
            .pool
            .get_until(deadline)
            .map_err(|e| e.naming_zids(zids))?;
        for zid in zids {
            if found.contains_key(zid) {
                continue;
            }
            let row = conn
                .query_opt("SELECT json FROM objects WHERE zid = $1", &[zid])
                .map_err(|e| pg_error(e).naming_zids(zids))?;
            if let Some(row) = row {
                found.insert(zid.clone(), parse_stored(zid, row.get(0))?);
            }
        }
        Ok(found)
    }
}

/// Stores `artifact` under `key` unless an artifact is there already.
fn insert_artifact(
    tx: &mut client::Transaction<'_>,
    key: &str,
    artifact: &StoredArtifact,
    columns: &ArtifactColumns<'_>,
) -> Result<(), StoreError> {
    let error = columns.error.as_deref().map(text);
    tx.execute(
        "INSERT INTO artifacts (key, language, compiler, wasm, error, bytes, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING",
        &[
            &key,
            &text(&artifact.language),
            &text(&artifact.compiler),
            &columns.wasm,
            &error,
            &columns.bytes,
            &now_ms(),
        ],
    )
    .map_err(pg_error)?;
    Ok(())
}

/// Drops the artifact under `key` unless a compilation names it.
fn drop_unnamed_artifact(tx: &mut client::Transaction<'_>, key: &str) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM artifacts WHERE key = $1
           AND NOT EXISTS (SELECT 1 FROM compilations WHERE key = $1)",
        &[&key],
    )
    .map_err(pg_error)?;
    Ok(())
}

/// Text PostgreSQL can store: it has no NUL character in `TEXT`, so one (possible in a label
/// or a compiler message) becomes U+FFFD. The object's JSON never has one (JSON escapes it).
fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        s.replace('\0', "\u{fffd}").into()
    } else {
        s.into()
    }
}

/// One revision inside a write transaction (see the SQLite store's `write`).
fn write(
    tx: &mut client::Transaction<'_>,
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
    let revision = mode.next_revision(zid, previous)? as i64;
    tx.execute(
        "INSERT INTO revisions (zid, revision, timestamp_ms, author, json)
         VALUES ($1, $2, $3, $4, $5)",
        &[&zid, &revision, &timestamp_ms, &text(author), &json],
    )
    .map_err(pg_error)?;
    let (value_type, label, search_text) = (
        value_type.as_deref().map(text),
        label.as_deref().map(text),
        text(&search_text),
    );
    let changed = match previous {
        None => tx.execute(
            "INSERT INTO objects (zid, number, type, label, search_text, revision, json)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &zid,
                &(number as i64),
                &value_type,
                &label,
                &search_text,
                &revision,
                &json,
            ],
        ),
        Some(_) => tx.execute(
            "UPDATE objects SET type = $2, label = $3, search_text = $4, revision = $5,
             json = $6 WHERE zid = $1",
            &[&zid, &value_type, &label, &search_text, &revision, &json],
        ),
    }
    .map_err(pg_error)?;
    if changed != 1 {
        return Err(StoreError::Database(format!(
            "writing {zid} changed {changed} rows instead of one"
        )));
    }
    Ok(revision as u64)
}

/// The stored JSON of `zid` as `conn` reads it.
fn object_json(conn: &mut impl Statements, zid: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_opt("SELECT json FROM objects WHERE zid = $1", &[&zid])
        .map_err(pg_error)?
        .map(|r| r.get(0)))
}

/// The revision and JSON of implementation `zid` as `conn` reads it ([`implementation_row`]).
fn stored_implementation(
    conn: &mut impl Statements,
    zid: &str,
) -> Result<(i64, String), StoreError> {
    let row = conn
        .query_opt(
            "SELECT revision, type, json FROM objects WHERE zid = $1",
            &[&zid],
        )
        .map_err(pg_error)?;
    implementation_row(zid, row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

fn current_revision(conn: &mut impl Statements, zid: &str) -> Result<Option<u64>, StoreError> {
    Ok(conn
        .query_opt("SELECT revision FROM objects WHERE zid = $1", &[&zid])
        .map_err(pg_error)?
        .map(|r| r.get::<_, i64>(0) as u64))
}

/// The same allocation as the SQLite store's; under [`WRITE_LOCK`] in [`PostgresStore::create`].
fn next_zid(conn: &mut impl Statements) -> Result<String, StoreError> {
    let (first, max) = (FIRST_USER_ZID as i64, MAX_ZID_NUMBER as i64);
    let highest: Option<i64> = conn
        .query_one(
            "SELECT MAX(number) FROM objects WHERE number BETWEEN $1 AND $2",
            &[&first, &max],
        )
        .map_err(pg_error)?
        .get(0);
    let number = match highest {
        None => first,
        Some(n) if n < max => n + 1,
        Some(_) => conn
            .query_one(
                "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM objects WHERE number = $1::BIGINT)
                   THEN $1::BIGINT
                 ELSE (SELECT MIN(a.number) + 1 FROM objects a
                       WHERE a.number BETWEEN $1::BIGINT AND $2::BIGINT - 1
                         AND NOT EXISTS (SELECT 1 FROM objects b WHERE b.number = a.number + 1))
                 END",
                &[&first, &max],
            )
            .map_err(pg_error)?
            .get::<_, Option<i64>>(0)
            .ok_or_else(|| {
                StoreError::Allocation(format!(
                    "every ZID from Z{FIRST_USER_ZID} to Z{MAX_ZID_NUMBER} is taken"
                ))
            })?,
    };
    Ok(format!("Z{number}"))
}

/// A database error as a [`StoreError`]: the server's message when there is one (the client's
/// own `Display` says only "db error").
pub(crate) fn pg_error(e: client::Error) -> StoreError {
    let e = match e {
        client::Error::Postgres(e) => e,
        client::Error::Runtime(e) => {
            return StoreError::Database(format!("no runtime for a database connection: {e}"));
        }
        // A call's statement given up on at its deadline is the deadline's doing, as a wait
        // for a connection is; any other, the database's: busy, as when none came free.
        client::Error::NoAnswer {
            call_deadline: true,
            waited,
        } => {
            tracing::warn!(
                ?waited,
                "PostgreSQL did not answer a statement by its call's deadline; its connection is closed"
            );
            return StoreError::DeadlineExceeded {
                zids: String::new(),
            };
        }
        // Told apart from a busy database: a retry could make the write twice.
        client::Error::CommitUnanswered { waited } => {
            tracing::error!(
                ?waited,
                "PostgreSQL did not answer a commit; its connection is closed"
            );
            return StoreError::Database(format!(
                "the database did not answer a commit within {waited:?}: whether the write was \
                 made is unknown"
            ));
        }
        client::Error::NoAnswer { waited, .. } => {
            tracing::warn!(
                ?waited,
                "PostgreSQL did not answer a statement; its connection is closed"
            );
            return StoreError::Busy(format!("the database did not answer within {waited:?}"));
        }
    };
    // A statement that ran past `statement_timeout` (a lock held elsewhere, an overloaded
    // server) says nothing about the request: busy, as when no connection came free.
    let message = match e.as_db_error() {
        Some(db) => db.to_string(),
        None => e.to_string(),
    };
    if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
        // Busy's text reaches the client (a 503): the database's own words stay in the log.
        tracing::warn!(error = %message, "a PostgreSQL statement ran past its time limit");
        StoreError::Busy("a database statement ran past its time limit".to_owned())
    } else {
        StoreError::Database(message)
    }
}
