//! Compiled implementations on the write path: when a Z14 whose code is in a compiled
//! language (C, Rust) is saved, it is compiled at once, in the confined compiler, and the
//! artifact (or the compiler's refusal) is stored content-addressed beside the revision. The
//! write itself succeeds either way, as on Wikifunctions, where broken code can be saved;
//! `GET /v1/objects/{zid}/compilation` and every call of it report the error.
//!
//! Calls find the artifact through the same [`Artifacts`] (memory, then the store), so they
//! do not compile: only a unit never saved here (e.g. after the function's signature
//! changed) is compiled at call time, within the call's deadline.

use std::sync::Arc;

use serde_json::json;
use zeval_compiler::{Language, Signature, Unit};
use zeval_evaluator::{ArtifactDescription, ArtifactRecord, ArtifactStore, Artifacts};
use zeval_store::{ArtifactOutcome, Store, StoredArtifact};
use zeval_zobject::Value;
use zeval_zobject::build::ref_zid;

/// The object store (SQLite or PostgreSQL) as the artifacts' persistent store.
pub struct StoreArtifacts(pub Arc<Store>);

impl ArtifactStore for StoreArtifacts {
    fn get(&self, key: &zeval_compiler::ArtifactKey) -> Option<ArtifactRecord> {
        match self.0.artifact(&key.to_hex()) {
            Ok(Some(stored)) => Some(match stored.outcome {
                ArtifactOutcome::Compiled(wasm) => ArtifactRecord::Compiled {
                    wasm: wasm.into(),
                    compiler: stored.compiler,
                },
                ArtifactOutcome::Failed(message) => ArtifactRecord::Failed { message },
            }),
            Ok(None) => None,
            // The load (a call's deadline, a busy store), not a fault.
            Err(
                error @ (zeval_store::StoreError::Busy(_)
                | zeval_store::StoreError::DeadlineExceeded { .. }),
            ) => {
                tracing::warn!(%error, "reading an artifact failed");
                None
            }
            Err(error) => {
                tracing::error!(%error, "reading an artifact failed");
                None
            }
        }
    }

    fn get_until(
        &self,
        key: &zeval_compiler::ArtifactKey,
        deadline: std::time::Instant,
    ) -> Option<ArtifactRecord> {
        zeval_store::call_deadline::within(deadline, || self.get(key))
    }

    fn describe(&self, key: &zeval_compiler::ArtifactKey) -> Option<ArtifactDescription> {
        match self.0.artifact_summary(&key.to_hex()) {
            Ok(summary) => summary.map(|summary| match summary.outcome {
                Ok(bytes) => ArtifactDescription::Compiled {
                    compiler: summary.compiler,
                    bytes,
                },
                Err(message) => ArtifactDescription::Failed { message },
            }),
            Err(error) => {
                tracing::warn!(%error, "reading an artifact's summary failed");
                None
            }
        }
    }

    fn put(&self, key: &zeval_compiler::ArtifactKey, language: &str, record: &ArtifactRecord) {
        if let Err(error) = self
            .0
            .put_artifact(&key.to_hex(), &stored(language, record))
        {
            tracing::error!(%error, "storing an artifact failed");
        }
    }
}

/// `record` as the store keeps it.
fn stored(language: &str, record: &ArtifactRecord) -> StoredArtifact {
    let (compiler, outcome) = match record {
        ArtifactRecord::Compiled { wasm, compiler } => {
            (compiler.clone(), ArtifactOutcome::Compiled(wasm.to_vec()))
        }
        ArtifactRecord::Failed { message } => {
            (String::new(), ArtifactOutcome::Failed(message.clone()))
        }
    };
    StoredArtifact {
        language: language.to_owned(),
        compiler,
        outcome,
    }
}

/// The compilation unit of a canonical Z2 holding a compiled Z14, with `function` the
/// function's Z8 (any form `Signature::from_function` reads). `None` for anything else.
pub fn unit_of(z2: &Value, function: impl FnOnce(&str) -> Option<Value>) -> Option<Unit> {
    let implementation = z2.get("Z2K2")?;
    if ref_zid(implementation.get("Z1K1")?) != Some("Z14") {
        return None;
    }
    let code = implementation.get("Z14K3")?;
    let language = language_of(code.get("Z16K1")?)?;
    let source = string_of(code.get("Z16K2")?)?;
    let function_zid = match implementation.get("Z14K1")? {
        Value::String(zid) => zid.clone(),
        other => string_of(other.get("Z9K1")?)?,
    };
    let z8 = function(&function_zid)?;
    let z8 = z8.get("Z2K2").cloned().unwrap_or(z8);
    let signature = Signature::from_function(&zeval_zobject::normalize(&z8).ok()?).ok()?;
    Some(Unit {
        language,
        function_name: function_zid,
        signature,
        source,
    })
}

/// A compiled language named by a `Z16K1`: a reference (`Z630`), a Z61 literal (`Z61K1`
/// `c`), in canonical or normal form.
fn language_of(value: &Value) -> Option<Language> {
    if let Some(zid) = ref_zid(value) {
        return Language::from_code(zid);
    }
    if let Value::String(code) = value {
        return Language::from_code(code);
    }
    Language::from_code(&string_of(value.get("Z61K1")?)?)
}

/// A canonical (`"abc"`) or normal (`{"Z1K1":"Z6","Z6K1":"abc"}`) string.
fn string_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        other => other.get("Z6K1")?.as_str().map(str::to_owned),
    }
}

/// Compiles `unit` (or finds it compiled) for a save by `author` (one of theirs at a time:
/// `Artifacts::artifact_saved_by`) and records it, with its artifact, for revision
/// `revision` of `zid`; the report [`report`] shows. The store then drops the artifacts no
/// call can reach any more, and keeps this one only within its author's budget
/// (`[compiler] stored_artifact_bytes_per_author`): past it, the report says the artifact is
/// not stored, and calls find it in memory, or compile it again after a restart.
pub fn compile_revision(
    artifacts: &Artifacts,
    store: &Store,
    zid: &str,
    revision: u64,
    unit: &Unit,
    author: &str,
    author_budget: u64,
) -> Option<Value> {
    let key = artifacts.toolchain().key(unit)?;
    let result = artifacts.artifact_saved_by(unit, author);
    // What the compilation left in memory: a call's compilation found there is stored now,
    // and a compilation that failed only for now (not remembered) records no artifact.
    let artifact = artifacts
        .lookup(&key)
        .map(|record| stored(unit.language.code(), &record));
    let hex = key.to_hex();
    let recorded = match &artifact {
        Some(artifact) => store.record_compilation(&zeval_store::Compilation {
            zid,
            revision,
            key: &hex,
            artifact: Some(artifact),
            author_budget,
        }),
        // Nothing to keep: the compilation failed for now (a busy machine), and the next
        // call or save compiles again.
        None => Ok(()),
    };
    if let Err(error) = &result {
        tracing::info!(zid, revision, %error, "an implementation does not compile");
    }
    let mut report = report(artifacts, zid, revision, unit, &key);
    match recorded {
        Ok(()) => {}
        Err(error @ zeval_store::StoreError::OverBudget { .. }) => {
            tracing::warn!(zid, revision, %error, "a compiled artifact is not stored");
            report["stored"] = json!(false);
            report["note"] = json!(format!(
                "not stored: {error}; calls compile it again after a restart"
            ));
        }
        Err(error) => {
            tracing::error!(%error, zid, "recording a compilation failed");
            report["stored"] = json!(false);
        }
    }
    Some(report)
}

/// What `GET /v1/objects/{zid}/compilation` shows: the artifact's key, and its size and
/// compiler, or the Z5 every call of the implementation fails with.
pub fn report(
    artifacts: &Artifacts,
    zid: &str,
    revision: u64,
    unit: &Unit,
    key: &zeval_compiler::ArtifactKey,
) -> Value {
    let mut report = json!({
        "zid": zid,
        "revision": revision,
        "language": unit.language.code(),
        "key": key.to_hex(),
    });
    // As a call would find it: a source today's check refuses runs no artifact, whatever
    // the store kept from a compilation under an older check.
    let described = match artifacts.toolchain().check(unit) {
        Err(refusal) => Some(ArtifactDescription::Failed {
            message: format!("Compilation failed: {refusal}"),
        }),
        Ok(()) => artifacts.describe(key),
    };
    match described {
        Some(ArtifactDescription::Compiled { compiler, bytes }) => {
            report["status"] = json!("compiled");
            report["compiler"] = json!(compiler);
            report["bytes"] = json!(bytes);
        }
        Some(ArtifactDescription::Failed { message }) => {
            report["status"] = json!("failed");
            report["error"] = json!({"Z1K1": "Z5", "Z5K2": message});
        }
        None => report["status"] = json!("not compiled"),
    }
    report
}

/// The artifacts of this server: the compilers found on this machine, persisted in `store`.
/// `None` (compiled languages then have no executor, with one warning in the log) when no
/// compiler is usable.
pub fn artifacts(
    config: &crate::Config,
    store: Option<Arc<dyn ArtifactStore>>,
) -> Option<Arc<Artifacts>> {
    let compiler = zeval_compiler::CompilerConfig {
        rust_sysroot: config.compiler.rust_sysroot.clone(),
        clang: config.compiler.clang.clone(),
        ..zeval_compiler::CompilerConfig::default()
    };
    match zeval_compiler::Toolchain::discover(&compiler) {
        Ok(toolchain) => {
            // Saves are stored by `compile_revision` in the object store, with their revision,
            // within the author's budget; but where artifacts live in a directory of their
            // own (`artifact_dir`), calls look there, so saves are written there too.
            let artifacts = Artifacts::new(toolchain, store);
            let artifacts = if config.compiler.artifact_dir.is_some() {
                artifacts
            } else {
                artifacts.leaving_saves_to_the_caller()
            };
            Some(Arc::new(if config.compiler.keep_call_time_artifacts {
                artifacts.keeping_call_time_compilations()
            } else {
                artifacts
            }))
        }
        Err(error) => {
            tracing::warn!(%error, "no compiler for C or Rust: compiled languages are off");
            None
        }
    }
}

/// Where a server's artifacts persist: the object store when this process has one (the
/// orchestrator roles), else a private directory under the data directory (an evaluator-only
/// node, which compiles what it is sent on first use, and keeps it there only with
/// `[compiler] keep_call_time_artifacts`: otherwise in memory).
pub fn artifact_store(config: &crate::Config) -> Option<Arc<dyn ArtifactStore>> {
    let directory = match (&config.compiler.artifact_dir, config.role) {
        (Some(dir), _) => Some(dir.clone()),
        (None, crate::config::Role::Evaluator) => Some(config.data_dir.join("artifacts")),
        (None, _) => None,
    };
    let opened: Result<Arc<dyn ArtifactStore>, String> = match directory {
        Some(directory) => zeval_evaluator::DirArtifactStore::open(directory)
            .map(|store| Arc::new(store) as Arc<dyn ArtifactStore>)
            .map_err(|e| e.to_string()),
        None => Store::open_url(config.database_url.as_deref(), &config.data_dir, false)
            .map(|store| Arc::new(StoreArtifacts(Arc::new(store))) as Arc<dyn ArtifactStore>)
            .map_err(|e| e.to_string()),
    };
    match opened {
        Ok(store) => Some(store),
        Err(error) => {
            tracing::warn!(%error, "artifacts are kept in memory only");
            None
        }
    }
}
