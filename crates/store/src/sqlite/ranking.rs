//! Figures for ranking implementations: the latest result of each tester on each revision
//! of an implementation, and a running summary of real calls per implementation revision.
//!
//! The store keeps what it is given: the call summary's latency sketch is opaque bytes here
//! (the server encodes and decodes it, and checks it on the way back in, since a database
//! file is input like any other). Figures belong to one revision, so editing an
//! implementation starts its figures afresh.

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, db_error, immediate, now_ms};
use crate::StoreError;

/// The largest latency sketch the store accepts, in bytes.
pub const MAX_SKETCH_BYTES: usize = 16 * 1024;

/// The most tester results returned for one implementation revision (a function's testers
/// are a list in one object, so real ones are far fewer).
pub const MAX_TESTER_RESULTS: usize = 1_000;

/// The query of [`SqliteStore::tester_results`], with its limit written into the text. A
/// bound `LIMIT ?` is a parameter the query plan depends on (SQLite's
/// `sqlite3ExprIsInteger`), so binding it again expired the cached statement and every run
/// re-prepared it: 4 % of a server running testers (`zeval bench library`, 2026-12-03).
static TESTER_RESULTS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT tester, tester_revision, passed, duration_us, run_ms FROM tester_results
         WHERE implementation = ?1 AND implementation_revision = ?2
         ORDER BY tester LIMIT {MAX_TESTER_RESULTS}"
    )
});

/// One tester's latest result on one revision of an implementation.
#[derive(Debug, Clone, PartialEq)]
pub struct TesterResult {
    /// The implementation's ZID.
    pub implementation: String,
    /// Its revision when the tester ran (0 for one outside the store: catalogue or wiki).
    pub implementation_revision: u64,
    /// The tester's ZID.
    pub tester: String,
    /// The tester's revision when it ran (0 outside the store).
    pub tester_revision: u64,
    /// Whether it passed.
    pub passed: bool,
    /// How long the tester's call took, in microseconds (the validator not included).
    pub duration_us: u64,
    /// When it ran (milliseconds since the epoch).
    pub run_ms: i64,
}

/// The running summary of real calls of one implementation revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStats {
    /// Calls that ran it.
    pub calls: u64,
    /// Of those, calls it answered with an error.
    pub failures: u64,
    /// The latency sketch of its successful calls (encoded by the caller).
    pub sketch: Vec<u8>,
}

impl SqliteStore {
    /// Records `result`, replacing the tester's earlier result on that revision.
    pub fn record_tester_result(&self, result: &TesterResult) -> Result<(), StoreError> {
        self.record_tester_results(std::slice::from_ref(result))
    }

    /// Records `results` in one transaction: a test run's cells (up to its limit of cells,
    /// anyone's to run under `calls = "open"`) took the one writer once each, and editors'
    /// saves queued behind them.
    pub fn record_tester_results(&self, results: &[TesterResult]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer();
        // A tester result is a measurement, recorded on every run of `POST /v1/test`, and
        // measured again by the next run: it is committed without its own fsync
        // (`synchronous=NORMAL` for this transaction; the next object write's fsync, or a
        // checkpoint, makes it durable). A power loss can lose the latest results, never the
        // database. With the fsync, recording was about half of what a one-cell test run cost
        // over HTTP (docs/benchmarks.md, "A library of 16 functions").
        // Statements kept prepared: a check records a result every time it runs.
        set_synchronous(&conn, "PRAGMA synchronous = NORMAL")?;
        let written = immediate(&mut conn).and_then(|tx| {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO tester_results
                   (implementation, implementation_revision, tester, tester_revision, passed,
                    duration_us, run_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut insert| {
                for result in results {
                    insert.execute(params![
                        result.implementation,
                        result.implementation_revision as i64,
                        result.tester,
                        result.tester_revision as i64,
                        result.passed,
                        result.duration_us.min(i64::MAX as u64) as i64,
                        result.run_ms
                    ])?;
                }
                Ok(())
            })
            .map_err(db_error)?;
            tx.commit().map_err(db_error)
        });
        // Every other write keeps its fsync (see `schema::configure`).
        set_synchronous(&conn, "PRAGMA synchronous = FULL")?;
        written
    }

    /// The latest result of each tester on `revision` of `implementation`, at most
    /// [`MAX_TESTER_RESULTS`].
    pub fn tester_results(
        &self,
        implementation: &str,
        revision: u64,
    ) -> Result<Vec<TesterResult>, StoreError> {
        let conn = self.reader()?;
        conn.prepare_cached(&TESTER_RESULTS_SQL)
            .and_then(|mut statement| {
                statement
                    .query_map(params![implementation, revision as i64], |row| {
                        Ok(TesterResult {
                            implementation: implementation.to_owned(),
                            implementation_revision: revision,
                            tester: row.get(0)?,
                            tester_revision: row.get::<_, i64>(1)?.max(0) as u64,
                            passed: row.get(2)?,
                            duration_us: row.get::<_, i64>(3)?.max(0) as u64,
                            run_ms: row.get(4)?,
                        })
                    })?
                    .collect()
            })
            .map_err(db_error)
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
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        tx.execute(
            "INSERT OR REPLACE INTO call_stats
               (implementation, implementation_revision, calls, failures, sketch, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                implementation,
                revision as i64,
                stats.calls.min(i64::MAX as u64) as i64,
                stats.failures.min(i64::MAX as u64) as i64,
                stats.sketch,
                now_ms()
            ],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)
    }

    /// The call summary of `revision` of `implementation`, if any was stored.
    pub fn call_stats(
        &self,
        implementation: &str,
        revision: u64,
    ) -> Result<Option<CallStats>, StoreError> {
        let conn = self.reader()?;
        conn.prepare_cached(
            "SELECT calls, failures, sketch FROM call_stats
             WHERE implementation = ?1 AND implementation_revision = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![implementation, revision as i64], |row| {
                    Ok(CallStats {
                        calls: row.get::<_, i64>(0)?.max(0) as u64,
                        failures: row.get::<_, i64>(1)?.max(0) as u64,
                        sketch: row.get(2)?,
                    })
                })
                .optional()
        })
        .map_err(db_error)
    }
}

/// Runs `pragma` (a `PRAGMA synchronous = …`), kept prepared on the connection.
fn set_synchronous(conn: &rusqlite::Connection, pragma: &str) -> Result<(), StoreError> {
    conn.prepare_cached(pragma)
        .and_then(|mut statement| statement.execute([]))
        .map(drop)
        .map_err(db_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).unwrap();
        (dir, store)
    }

    fn result(tester: &str, revision: u64, passed: bool, duration_us: u64) -> TesterResult {
        TesterResult {
            implementation: "Z10001".into(),
            implementation_revision: revision,
            tester: tester.into(),
            tester_revision: 1,
            passed,
            duration_us,
            run_ms: 5,
        }
    }

    #[test]
    fn reading_tester_results_does_not_re_prepare_the_query() {
        let (_dir, store) = store();
        store
            .record_tester_result(&result("Z10010", 1, true, 400))
            .unwrap();
        // Readers are taken in turn: every one runs the query several times, with
        // different bindings, and then every one is looked at.
        let connections = store.readers.len().max(1);
        for revision in (0..4 * connections as u64).map(|i| i % 3 + 1) {
            store.tester_results("Z10001", revision).unwrap();
        }
        for _ in 0..connections {
            let conn = store.reader().unwrap();
            let statement = conn.prepare_cached(&TESTER_RESULTS_SQL).unwrap();
            assert_eq!(
                statement.get_status(rusqlite::StatementStatus::RePrepare),
                0
            );
        }
    }

    #[test]
    fn a_tester_result_replaces_the_earlier_one_of_the_same_revision() {
        let (_dir, store) = store();
        store
            .record_tester_result(&result("Z10010", 1, false, 900))
            .unwrap();
        store
            .record_tester_result(&result("Z10010", 1, true, 400))
            .unwrap();
        store
            .record_tester_result(&result("Z10011", 1, true, 300))
            .unwrap();
        store
            .record_tester_result(&result("Z10010", 2, false, 100))
            .unwrap();
        let first = store.tester_results("Z10001", 1).unwrap();
        assert_eq!(
            first,
            vec![
                result("Z10010", 1, true, 400),
                result("Z10011", 1, true, 300)
            ]
        );
        assert_eq!(store.tester_results("Z10001", 2).unwrap().len(), 1);
        assert!(store.tester_results("Z10001", 3).unwrap().is_empty());
    }

    #[test]
    fn only_the_tester_result_skips_its_fsync() {
        let (_dir, store) = store();
        let synchronous = |store: &SqliteStore| -> i64 {
            store
                .writer()
                .pragma_query_value(None, "synchronous", |row| row.get(0))
                .unwrap()
        };
        const FULL: i64 = 2;
        assert_eq!(synchronous(&store), FULL);
        store
            .record_tester_result(&result("Z10010", 1, true, 400))
            .unwrap();
        // Object writes after it are fsynced again.
        assert_eq!(synchronous(&store), FULL);
        assert_eq!(store.tester_results("Z10001", 1).unwrap().len(), 1);
    }

    #[test]
    fn call_stats_round_trip_and_are_bounded() {
        let (_dir, store) = store();
        assert_eq!(store.call_stats("Z10001", 1).unwrap(), None);
        let stats = CallStats {
            calls: 7,
            failures: 2,
            sketch: vec![1, 2, 3],
        };
        store.put_call_stats("Z10001", 1, &stats).unwrap();
        assert_eq!(store.call_stats("Z10001", 1).unwrap(), Some(stats));
        let huge = CallStats {
            calls: 1,
            failures: 0,
            sketch: vec![0; MAX_SKETCH_BYTES + 1],
        };
        assert!(matches!(
            store.put_call_stats("Z10001", 1, &huge),
            Err(StoreError::Invalid(_))
        ));
    }
}
