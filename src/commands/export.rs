//! `zeval export`: every object of the embedded store as canonical Z2 files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use zeval_store::SqliteStore;

use super::import::progress_bar;

/// Write the current version of every object in the store to `DIR/<ZID>.json` (pretty JSON),
/// a directory that `zeval import` and `--objects DIR` read back, and the compiled
/// implementations' artifacts to `DIR/artifacts/` (`<key>.wasm` or `<key>.error`, with
/// `<key>.meta`: the language and the compiler), so that another node need not compile
/// them again.
#[derive(clap::Args)]
pub(crate) struct ExportCommand {
    /// Directory to write to (created if needed; existing files of the same ZID are replaced).
    dir: PathBuf,
    /// The data directory holding the store.
    #[arg(long, env = "ZEVAL_DATA_DIR", default_value = "./zeval-data")]
    data_dir: PathBuf,
    /// Leave out built-in objects that are unchanged from the catalogue.
    #[arg(long)]
    no_catalogue: bool,
}

impl ExportCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let store = SqliteStore::open_seeded(&self.data_dir)
            .with_context(|| format!("opening the store in {}", self.data_dir.display()))?;
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
        println!(
            "exported {written} objects and {artifacts} artifacts to {}",
            self.dir.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Where an export keeps the artifacts, beside the objects.
pub(crate) const ARTIFACTS_DIR: &str = "artifacts";

/// Writes every stored artifact into `dir`; how many.
fn export_artifacts(store: &SqliteStore, dir: &std::path::Path) -> anyhow::Result<usize> {
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
