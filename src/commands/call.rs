//! `zeval call`: orchestrate one function call and print its canonical Z22.
//!
//! Objects come from the built-in catalogue, then `--objects DIR` (one canonical Z2 file per
//! ZID), then `--store PATH` (the embedded SQLite store), then `--wiki URL` (a MediaWiki API),
//! in that order. Code implementations run in this process's sandbox (or wherever the default
//! configuration routes their language).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use zeval_orchestrator::{CallOptions, Orchestrator, OrchestratorConfig};
use zeval_store::catalogue::CatalogueSource;
use zeval_store::{DirSource, Layered, Store, WikiSource};

use super::io::{print_json, read_json};

/// Evaluate a function call (a Z7 in any form) and print the canonical Z22 result.
#[derive(clap::Args)]
pub(crate) struct CallCommand {
    /// The call as JSON (a file; `-` or nothing reads standard input).
    file: Option<PathBuf>,
    /// Skip static validation of the call (the request's doValidate = false).
    #[arg(long)]
    no_validate: bool,
    /// A directory of canonical Z2 files named <ZID>.json.
    #[arg(long, value_name = "DIR")]
    objects: Option<PathBuf>,
    /// A store to read objects from: an embedded SQLite file (zeval.sqlite), or a PostgreSQL
    /// database's `postgres://` URL.
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// A MediaWiki API (api.php) to fetch the remaining objects from.
    #[arg(long, value_name = "URL")]
    wiki: Option<String>,
    /// The deadline in milliseconds (default 20000).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// The deepest nesting of function calls (default 3000).
    #[arg(long, value_name = "N")]
    max_depth: Option<usize>,
}

impl CallCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let input = read_json(self.file.as_deref())?;
        let mut source = Layered::new().with(CatalogueSource);
        if let Some(dir) = &self.objects {
            let dir_source =
                DirSource::new(dir).with_context(|| format!("opening {}", dir.display()))?;
            source = source.with(dir_source);
        }
        if let Some(path) = &self.store {
            let text = path.to_string_lossy();
            let store = if zeval_store::is_postgres_url(&text) {
                Store::connect(&text).with_context(|| {
                    format!("opening the store at {}", zeval_store::redacted_url(&text))
                })?
            } else {
                Store::open(path).with_context(|| format!("opening {}", path.display()))?
            };
            source = source.with(store);
        }
        if let Some(url) = &self.wiki {
            source = source.with(WikiSource::new(url.as_str()));
        }
        // Compiled implementations are compiled on first use and kept in a private cache
        // directory beside the guests (`$ZEVAL_ARTIFACT_DIR` overrides): this command runs
        // alone, for its user, so what it compiles is kept for its next run.
        let mut server_config = zeval_server::Config::default();
        server_config.compiler.keep_call_time_artifacts = true;
        server_config.compiler.artifact_dir = Some(
            std::env::var_os("ZEVAL_ARTIFACT_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| zeval_sandbox::default_guest_dir().with_file_name("artifacts")),
        );
        let metrics = Arc::new(zeval_server::Metrics::default());
        let evaluators = zeval_server::evaluators::registry(&server_config, &metrics, None)
            .context("setting up the evaluators")?;
        let mut config = OrchestratorConfig::default();
        if let Some(ms) = self.timeout_ms {
            config.timeout = Duration::from_millis(ms);
        }
        if let Some(depth) = self.max_depth {
            config.max_depth = depth;
        }
        let orchestrator = Orchestrator::new(Arc::new(source), evaluators, config);
        let options = CallOptions {
            do_validate: !self.no_validate,
            ..CallOptions::default()
        };
        let result = orchestrator.orchestrate(&input, &options);
        print_json(&result)?;
        let failed = zeval_zobject::build::get_metadata(&result["Z22K2"], "errors")
            .is_some_and(|e| !zeval_zobject::build::is_void(e));
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}
