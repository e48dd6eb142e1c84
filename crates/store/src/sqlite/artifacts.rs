//! Compiled artifacts: the portable `.wasm` of a compiled implementation (or the compiler's
//! refusal), stored under its content key, and which artifact each revision of an
//! implementation compiled to.
//!
//! An artifact is kept while a compilation that a call can reach names it: that of an
//! implementation's current revision, or of its approved one. Recording a compilation drops
//! the others of that implementation, and any artifact no compilation names any more; it
//! also holds each author to [`Compilation::author_budget`] bytes of artifacts. Before
//! 2026-12-06 every save kept its artifact forever: an editor saving distinct code again and
//! again (32 MiB of artifact for a few hundred bytes of source) could fill the disk.
//!
//! The key is computed by the compiler (a SHA-256 of language, compiler identity, flags,
//! signature and source), so identical code compiles and is stored once. The store keeps
//! the bytes as given: it does not run or trust them (they run in the sandbox like any user
//! code). The machine-specific precompiled form is never stored here; it is a local cache of
//! the sandbox.

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, db_error, immediate, now_ms};
use crate::StoreError;

/// The largest artifact the store accepts, in bytes: the compiler's own output cap (32 MiB)
/// with room to spare.
pub const MAX_ARTIFACT_BYTES: usize = 64 * 1024 * 1024;

/// The most characters of a stored compile error.
pub const MAX_ARTIFACT_ERROR_CHARS: usize = 16 * 1024;

/// A stored artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    /// The language code (`c`, `rust`).
    pub language: String,
    /// The compiler's identity and version.
    pub compiler: String,
    /// The module, or why there is none.
    pub outcome: ArtifactOutcome,
}

/// A stored artifact without its module ([`SqliteStore::artifact_summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactSummary {
    /// The language code (`c`, `rust`).
    pub language: String,
    /// The compiler's identity and version.
    pub compiler: String,
    /// The module's size in bytes, or why there is none.
    pub outcome: Result<u64, String>,
}

/// What a revision of an implementation compiled to ([`SqliteStore::record_compilation`]).
#[derive(Debug, Clone, Copy)]
pub struct Compilation<'a> {
    /// The implementation.
    pub zid: &'a str,
    /// Its revision that was compiled. Its author is charged for the artifact, unless a
    /// compilation of theirs names it already.
    pub revision: u64,
    /// The artifact's content key.
    pub key: &'a str,
    /// The artifact, stored with the compilation unless stored already (the compiler keeps
    /// what it made in memory; without it here, a save that found the artifact a call had
    /// compiled never stored it). `None`: only the compilation is recorded.
    pub artifact: Option<&'a StoredArtifact>,
    /// The most bytes of artifacts the compilations of one author's revisions may keep
    /// ([`StoreError::OverBudget`] past it).
    pub author_budget: u64,
}

/// What compiling gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactOutcome {
    /// A WASI command module.
    Compiled(Vec<u8>),
    /// The compiler's (or the source check's) message.
    Failed(String),
}

impl SqliteStore {
    /// The artifact stored under `key`.
    pub fn artifact(&self, key: &str) -> Result<Option<StoredArtifact>, StoreError> {
        let conn = self.reader()?;
        conn.prepare_cached("SELECT language, compiler, wasm, error FROM artifacts WHERE key = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row([key], |row| {
                        let wasm: Option<Vec<u8>> = row.get(2)?;
                        let error: Option<String> = row.get(3)?;
                        Ok(StoredArtifact {
                            language: row.get(0)?,
                            compiler: row.get(1)?,
                            outcome: match wasm {
                                Some(wasm) => ArtifactOutcome::Compiled(wasm),
                                None => ArtifactOutcome::Failed(error.unwrap_or_default()),
                            },
                        })
                    })
                    .optional()
            })
            .map_err(db_error)
    }

    /// [`Self::artifact`] without the module, whose size the database reads from the row:
    /// for a report of it, which any caller may ask for, and which read and copied up to
    /// [`MAX_ARTIFACT_BYTES`] to give one number.
    pub fn artifact_summary(&self, key: &str) -> Result<Option<ArtifactSummary>, StoreError> {
        let conn = self.reader()?;
        conn.prepare_cached(
            "SELECT language, compiler, length(wasm), error FROM artifacts WHERE key = ?1",
        )
        .and_then(|mut statement| {
            statement
                .query_row([key], |row| {
                    let bytes: Option<i64> = row.get(2)?;
                    let error: Option<String> = row.get(3)?;
                    Ok(ArtifactSummary {
                        language: row.get(0)?,
                        compiler: row.get(1)?,
                        outcome: match bytes {
                            Some(bytes) => Ok(bytes as u64),
                            None => Err(error.unwrap_or_default()),
                        },
                    })
                })
                .optional()
        })
        .map_err(db_error)
    }

    /// Stores `artifact` under `key` unless an artifact is there already (a key names its
    /// content, so the first one stays).
    pub fn put_artifact(&self, key: &str, artifact: &StoredArtifact) -> Result<(), StoreError> {
        let columns = ArtifactColumns::of(artifact)?;
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        insert_artifact(&tx, key, artifact, &columns)?;
        tx.commit().map_err(db_error)
    }

    /// Records that `compilation.revision` of `compilation.zid` compiles to
    /// `compilation.key` (storing the artifact given with it), then drops what no call can
    /// reach any more: the implementation's compilations of revisions that are neither its
    /// current nor its approved one, and each artifact that no compilation names after that.
    /// All in one transaction, so an artifact is never dropped while a compilation names it.
    ///
    /// The revision's author is charged for the artifact unless a compilation of theirs
    /// names it already. [`StoreError::OverBudget`], with nothing recorded or dropped, when
    /// the artifacts their compilations would then name (those about to be dropped aside)
    /// hold more than `compilation.author_budget` bytes.
    pub fn record_compilation(&self, compilation: &Compilation<'_>) -> Result<(), StoreError> {
        let columns = compilation.artifact.map(ArtifactColumns::of).transpose()?;
        let Compilation { zid, key, .. } = *compilation;
        let revision = compilation.revision as i64;
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        let author: String = tx
            .query_row(
                "SELECT COALESCE(
                     (SELECT author FROM revisions WHERE zid = ?1 AND revision = ?2), '')",
                params![zid, revision],
                |row| row.get(0),
            )
            .map_err(db_error)?;
        let charged = !tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM compilations WHERE key = ?1 AND author = ?2)",
                params![key, author],
                |row| row.get::<_, bool>(0),
            )
            .map_err(db_error)?;
        if let (Some(artifact), Some(columns)) = (compilation.artifact, &columns) {
            insert_artifact(&tx, key, artifact, columns)?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO compilations (zid, revision, key, author)
             VALUES (?1, ?2, ?3, ?4)",
            params![zid, revision, key, author],
        )
        .map_err(db_error)?;
        if charged {
            let held: i64 = tx
                .query_row(
                    "SELECT COALESCE(SUM(bytes), 0) FROM artifacts WHERE key IN (
                         SELECT key FROM compilations WHERE author = ?1
                         AND NOT (zid = ?2 AND revision NOT IN (
                             SELECT revision FROM objects WHERE zid = ?2
                             UNION SELECT revision FROM approvals WHERE zid = ?2)))",
                    params![author, zid],
                    |row| row.get(0),
                )
                .map_err(db_error)?;
            let held = held.max(0) as u64;
            if held > compilation.author_budget {
                // Dropped unfinished: rolled back, so the earlier revision keeps its artifact.
                return Err(StoreError::OverBudget {
                    author,
                    bytes: held,
                    budget: compilation.author_budget,
                });
            }
        }
        let unreachable: Vec<String> = tx
            .prepare_cached(
                "DELETE FROM compilations WHERE zid = ?1 AND revision NOT IN (
                     SELECT revision FROM objects WHERE zid = ?1
                     UNION SELECT revision FROM approvals WHERE zid = ?1)
                 RETURNING key",
            )
            .and_then(|mut statement| {
                statement
                    .query_map([zid], |row| row.get(0))?
                    .collect::<Result<_, _>>()
            })
            .map_err(db_error)?;
        for dropped in &unreachable {
            drop_unnamed_artifact(&tx, dropped)?;
        }
        tx.commit().map_err(db_error)
    }

    /// The artifact key of revision `revision` of `zid`, when it was compiled.
    pub fn compilation(&self, zid: &str, revision: u64) -> Result<Option<String>, StoreError> {
        let conn = self.reader()?;
        conn.prepare_cached("SELECT key FROM compilations WHERE zid = ?1 AND revision = ?2")
            .and_then(|mut statement| {
                statement
                    .query_row(params![zid, revision as i64], |row| row.get(0))
                    .optional()
            })
            .map_err(db_error)
    }

    /// Every stored artifact key, in key order (for export).
    pub fn artifact_keys(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.reader()?;
        conn.prepare_cached("SELECT key FROM artifacts ORDER BY key")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .map_err(db_error)
    }
}

/// An artifact's columns: the module or the (cut) message, and its size.
pub(crate) struct ArtifactColumns<'a> {
    pub(crate) wasm: Option<&'a [u8]>,
    pub(crate) error: Option<String>,
    pub(crate) bytes: i64,
}

impl<'a> ArtifactColumns<'a> {
    /// The columns of `artifact`, or [`StoreError::Invalid`] past [`MAX_ARTIFACT_BYTES`].
    pub(crate) fn of(artifact: &'a StoredArtifact) -> Result<Self, StoreError> {
        Ok(match &artifact.outcome {
            ArtifactOutcome::Compiled(wasm) if wasm.len() > MAX_ARTIFACT_BYTES => {
                return Err(StoreError::Invalid(format!(
                    "an artifact of {} bytes is over the limit of {MAX_ARTIFACT_BYTES}",
                    wasm.len()
                )));
            }
            ArtifactOutcome::Compiled(wasm) => ArtifactColumns {
                wasm: Some(wasm),
                error: None,
                bytes: wasm.len() as i64,
            },
            ArtifactOutcome::Failed(message) => {
                let cut: String = message.chars().take(MAX_ARTIFACT_ERROR_CHARS).collect();
                ArtifactColumns {
                    wasm: None,
                    bytes: cut.len() as i64,
                    error: Some(cut),
                }
            }
        })
    }
}

fn insert_artifact(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    artifact: &StoredArtifact,
    columns: &ArtifactColumns<'_>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO artifacts (key, language, compiler, wasm, error, bytes, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            key,
            artifact.language,
            artifact.compiler,
            columns.wasm,
            columns.error,
            columns.bytes,
            now_ms()
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Drops the artifact under `key` unless a compilation names it.
fn drop_unnamed_artifact(tx: &rusqlite::Transaction<'_>, key: &str) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM artifacts WHERE key = ?1
           AND NOT EXISTS (SELECT 1 FROM compilations WHERE key = ?1)",
        [key],
    )
    .map_err(db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(bytes: &[u8]) -> StoredArtifact {
        StoredArtifact {
            language: "c".into(),
            compiler: "clang 19".into(),
            outcome: ArtifactOutcome::Compiled(bytes.to_vec()),
        }
    }

    #[test]
    fn artifacts_are_stored_once_per_key() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.artifact("k").unwrap(), None);
        store.put_artifact("k", &compiled(b"one")).unwrap();
        store.put_artifact("k", &compiled(b"two")).unwrap();
        assert_eq!(store.artifact("k").unwrap(), Some(compiled(b"one")));
        let failed = StoredArtifact {
            outcome: ArtifactOutcome::Failed("x".repeat(MAX_ARTIFACT_ERROR_CHARS + 5)),
            ..compiled(b"")
        };
        store.put_artifact("f", &failed).unwrap();
        let ArtifactOutcome::Failed(message) = store.artifact("f").unwrap().unwrap().outcome else {
            panic!("not failed");
        };
        assert_eq!(message.len(), MAX_ARTIFACT_ERROR_CHARS);
        assert_eq!(store.artifact_keys().unwrap(), ["f", "k"]);
    }

    #[test]
    fn compilations_name_a_key_per_revision() {
        let store = SqliteStore::open_in_memory().unwrap();
        let z2 = serde_json::json!({"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": "Z10001"}, "Z2K2": "x"});
        store.put("Z10001", &z2, "ed").unwrap();
        let record = |key| Compilation {
            zid: "Z10001",
            revision: 1,
            key,
            artifact: None,
            author_budget: u64::MAX,
        };
        store.record_compilation(&record("a")).unwrap();
        store.record_compilation(&record("c")).unwrap();
        assert_eq!(
            store.compilation("Z10001", 1).unwrap().as_deref(),
            Some("c")
        );
        assert_eq!(store.compilation("Z10001", 3).unwrap(), None);
    }

    #[test]
    fn oversized_artifacts_are_refused() {
        let store = SqliteStore::open_in_memory().unwrap();
        let huge = compiled(&vec![0; MAX_ARTIFACT_BYTES + 1]);
        assert!(matches!(
            store.put_artifact("h", &huge),
            Err(StoreError::Invalid(_))
        ));
    }
}
