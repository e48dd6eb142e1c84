//! Compiled artifacts: the portable `.wasm` of a compiled implementation (or the compiler's
//! refusal), stored under its content key, and which artifact each revision of an
//! implementation compiled to.
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

    /// Stores `artifact` under `key` unless an artifact is there already (a key names its
    /// content, so the first one stays).
    pub fn put_artifact(&self, key: &str, artifact: &StoredArtifact) -> Result<(), StoreError> {
        let (wasm, error) = match &artifact.outcome {
            ArtifactOutcome::Compiled(wasm) if wasm.len() > MAX_ARTIFACT_BYTES => {
                return Err(StoreError::Invalid(format!(
                    "an artifact of {} bytes is over the limit of {MAX_ARTIFACT_BYTES}",
                    wasm.len()
                )));
            }
            ArtifactOutcome::Compiled(wasm) => (Some(wasm.as_slice()), None),
            ArtifactOutcome::Failed(message) => {
                let cut: String = message.chars().take(MAX_ARTIFACT_ERROR_CHARS).collect();
                (None, Some(cut))
            }
        };
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        tx.execute(
            "INSERT OR IGNORE INTO artifacts (key, language, compiler, wasm, error, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                key,
                artifact.language,
                artifact.compiler,
                wasm,
                error,
                now_ms()
            ],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)
    }

    /// Records that revision `revision` of the implementation `zid` compiles to `key`.
    pub fn record_compilation(
        &self,
        zid: &str,
        revision: u64,
        key: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        tx.execute(
            "INSERT OR REPLACE INTO compilations (zid, revision, key) VALUES (?1, ?2, ?3)",
            params![zid, revision as i64, key],
        )
        .map_err(db_error)?;
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
        store.record_compilation("Z10001", 1, "a").unwrap();
        store.record_compilation("Z10001", 2, "b").unwrap();
        store.record_compilation("Z10001", 2, "c").unwrap();
        assert_eq!(
            store.compilation("Z10001", 1).unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(
            store.compilation("Z10001", 2).unwrap().as_deref(),
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
