//! `zeval export`: every object of the store (SQLite or PostgreSQL) as canonical Z2 files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use zeval_store::Store;

use super::import::progress_bar;

/// Write the current version of every object in the store to `DIR/<ZID>.json` (pretty JSON),
/// a directory that `zeval import` and `--objects DIR` read back, and the compiled
/// implementations' artifacts to `DIR/artifacts/` (`<key>.wasm` or `<key>.error`, with
/// `<key>.meta`: the language and the compiler), so that another node need not compile
/// them again, and the users (with their token hashes, never tokens) and the approvals of
/// current revisions to `DIR/store/` (`users.json`, `approvals.json`). Revision history and
/// ranking figures are not exported.
#[derive(clap::Args)]
pub(crate) struct ExportCommand {
    /// Directory to write to (created if needed; existing files of the same ZID are replaced).
    dir: PathBuf,
    /// The data directory holding the store.
    #[arg(long, env = "ZEVAL_DATA_DIR", default_value = "./zeval-data")]
    data_dir: PathBuf,
    /// The store's database instead of `<data-dir>/zeval.sqlite`: `postgres://…` or
    /// `sqlite://PATH`.
    #[arg(long, env = "ZEVAL_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// Leave out built-in objects that are unchanged from the catalogue.
    #[arg(long)]
    no_catalogue: bool,
}

impl ExportCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let store = super::user::open_store(&self.data_dir, self.database_url.as_deref())?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let zids = store.zids()?;
        let progress = progress_bar(zids.len() as u64, "exporting");
        let mut written = 0;
        for zid in &zids {
            progress.inc(1);
            let Some(object) = store.get(zid)? else {
                continue;
            };
            if self.no_catalogue && zeval_catalogue::get(zid) == Some(&object) {
                continue;
            }
            let path = self.dir.join(format!("{zid}.json"));
            let text = serde_json::to_string_pretty(&object)? + "\n";
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            written += 1;
        }
        progress.finish_and_clear();
        let artifacts = export_artifacts(&store, &self.dir.join(ARTIFACTS_DIR))?;
        let (users, approvals) = export_users(&store, &self.dir.join(STORE_DIR))?;
        println!(
            "exported {written} objects and {artifacts} artifacts to {} (with {users} users and {approvals} approvals)",
            self.dir.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Where an export keeps the artifacts, beside the objects.
pub(crate) const ARTIFACTS_DIR: &str = "artifacts";

/// Where an export keeps the users and approvals (a subdirectory, so that importing the
/// directory's `*.json` objects does not read them as objects).
pub(crate) const STORE_DIR: &str = "store";

/// Writes `users.json` and `approvals.json` (the approvals of current revisions: the others
/// no longer approve anything) into `dir`; how many of each.
fn export_users(store: &Store, dir: &std::path::Path) -> anyhow::Result<(usize, usize)> {
    let users: Vec<serde_json::Value> = store
        .user_records()?
        .into_iter()
        .map(|u| {
            serde_json::json!({
                "name": u.name,
                "role": u.role.as_str(),
                "token_sha256": u.token_sha256,
                "created_ms": u.created_ms,
            })
        })
        .collect();
    let mut approvals = Vec::new();
    for (zid, approval) in store.approvals()? {
        if store.current_revision(&zid)? == Some(approval.revision) {
            approvals.push(serde_json::json!({
                "zid": zid,
                "approved_by": approval.approved_by,
                "timestamp_ms": approval.timestamp_ms,
                "signature": approval.signature,
            }));
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join("users.json"),
        serde_json::to_string_pretty(&users)? + "\n",
    )?;
    std::fs::write(
        dir.join("approvals.json"),
        serde_json::to_string_pretty(&approvals)? + "\n",
    )?;
    Ok((users.len(), approvals.len()))
}

/// Writes every stored artifact into `dir`; how many.
fn export_artifacts(store: &Store, dir: &std::path::Path) -> anyhow::Result<usize> {
    let keys = store.artifact_keys()?;
    if keys.is_empty() {
        return Ok(0);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    for key in keys {
        let Some(artifact) = store.artifact(&key)? else {
            continue;
        };
        let (extension, bytes) = match &artifact.outcome {
            zeval_store::ArtifactOutcome::Compiled(wasm) => ("wasm", wasm.clone()),
            zeval_store::ArtifactOutcome::Failed(message) => {
                ("error", message.clone().into_bytes())
            }
        };
        std::fs::write(dir.join(format!("{key}.{extension}")), bytes)?;
        std::fs::write(
            dir.join(format!("{key}.meta")),
            format!("{}\n{}\n", artifact.language, artifact.compiler),
        )?;
        written += 1;
    }
    Ok(written)
}
