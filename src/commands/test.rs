//! `zeval test ZID`: runs a function's testers against each of its implementations, on the
//! local store, and prints the pass/fail matrix.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use zeval_server::Metrics;
use zeval_server::config::Config;
use zeval_server::testers::{Matrix, TestRequest};

/// The author of a `Z8K4` rewritten by `--write-ranking`.
const RANKING_AUTHOR: &str = "zeval-ranking";

/// Cells above which a progress bar is drawn (when stderr is a terminal).
const PROGRESS_FROM_CELLS: usize = 4;

/// Run the testers (Z20) of a function against its implementations (Z14) and print the
/// matrix. Exits 0 when every cell passes, 1 otherwise.
#[derive(clap::Args)]
pub(crate) struct TestCommand {
    /// The function's ZID, e.g. Z10000.
    function: String,
    /// Only this implementation (repeatable).
    #[arg(long = "implementation", value_name = "ZID")]
    implementations: Vec<String>,
    /// Only this tester (repeatable).
    #[arg(long = "tester", value_name = "ZID")]
    testers: Vec<String>,
    /// Directory of the embedded store (default ./zeval-data, or $ZEVAL_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The store's database instead of `<data-dir>/zeval.sqlite`: `postgres://…` or
    /// `sqlite://PATH` (default $ZEVAL_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Print the matrix as JSON (the `POST /v1/test` answer) instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the ranked order into the function's `Z8K4` (a new revision by
    /// `zeval-ranking`), as an admin's `POST /v1/objects/{zid}/ranking` does. Without it the
    /// stored order is never changed.
    #[arg(long)]
    write_ranking: bool,
}

impl TestCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let mut config = Config::default();
        config.apply_env(|name| std::env::var(name).ok())?;
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let Some(url) = self.database_url {
            config.database_url = Some(url);
        }
        let metrics = Arc::new(Metrics::default());
        let state = zeval_server::backends::orchestrator_state(&config, &metrics, None)
            .context("opening the store")?;
        let request = TestRequest {
            function: self.function,
            implementations: (!self.implementations.is_empty()).then_some(self.implementations),
            testers: (!self.testers.is_empty()).then_some(self.testers),
        };
        let show_progress = std::io::stderr().is_terminal();
        let progress = |done: usize, total: usize| {
            if show_progress && total >= PROGRESS_FROM_CELLS {
                let width = 30;
                let filled = done * width / total.max(1);
                eprint!(
                    "\r[{}{}] {done}/{total}",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
                if done == total {
                    eprintln!();
                }
                let _ = std::io::stderr().flush();
            }
        };
        // No limit on cells or time; the call timeout tells an implementation's own time
        // limit from the call's deadline (`Cell::own_time_limit`).
        let bounds = zeval_server::testers::TestBounds {
            call_timeout: Some(std::time::Duration::from_millis(
                config.limits.call_timeout_ms,
            )),
            ..Default::default()
        };
        let mut matrix = zeval_server::testers::run_within(
            state.repository.as_ref(),
            state.engine.as_ref(),
            &request,
            &bounds,
            &progress,
        )?;
        state.ranking.record_matrix(&matrix);
        matrix.ranking = state.ranking.explain(&matrix.function).ok();
        state.ranking.flush();
        if self.write_ranking {
            let (z2, explanation) = state
                .ranking
                .ranked_z8k4(&matrix.function)
                .context("ranking the implementations")?;
            match z2 {
                Some(ranked) => {
                    let revision = state
                        .repository
                        .put_based_on(
                            &matrix.function,
                            &ranked.z2,
                            RANKING_AUTHOR,
                            Some(ranked.base_revision),
                        )
                        .context("writing the ranking")?;
                    eprintln!(
                        "{}: Z8K4 is now {} (revision {revision})",
                        matrix.function,
                        explanation.order.join(", ")
                    );
                }
                None => eprintln!("{}: Z8K4 already has the ranked order", matrix.function),
            }
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&matrix)?);
        } else {
            print!("{}", table(&matrix));
        }
        Ok(if matrix.passed == matrix.total {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}

/// The matrix as text: one row per tester, one column per implementation.
fn table(matrix: &Matrix) -> String {
    let mut out = String::new();
    let cell_text = |tester: &str, implementation: &str| {
        matrix
            .cells
            .iter()
            .find(|c| c.tester == tester && c.implementation == implementation)
            .map(|c| {
                format!(
                    "{} {:.1} ms",
                    if c.passed { "pass" } else { "FAIL" },
                    c.duration_ms
                )
            })
            .unwrap_or_default()
    };
    let first_width = matrix
        .testers
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("tester".len());
    let width = 16;
    out.push_str(&format!("{:first_width$}", "tester"));
    for implementation in &matrix.implementations {
        out.push_str(&format!("  {implementation:width$}"));
    }
    out.push('\n');
    for tester in &matrix.testers {
        out.push_str(&format!("{tester:first_width$}"));
        for implementation in &matrix.implementations {
            out.push_str(&format!("  {:width$}", cell_text(tester, implementation)));
        }
        out.push('\n');
    }
    let failures: Vec<_> = matrix.cells.iter().filter(|c| !c.passed).collect();
    if !failures.is_empty() {
        out.push_str("\nfailures:\n");
        for cell in failures {
            let error = cell
                .error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
            out.push_str(&format!(
                "  {} on {}: {error}\n",
                cell.tester, cell.implementation
            ));
        }
    }
    out.push_str(&format!(
        "\n{}: {}/{} pass\n",
        matrix.function, matrix.passed, matrix.total
    ));
    if let Some(ranking) = &matrix.ranking {
        out.push_str(&format!("\nranking: {}\n", ranking.reason));
        for item in &ranking.implementations {
            out.push_str(&format!(
                "  {}. {}: {}\n",
                item.position, item.figures.implementation, item.summary
            ));
        }
    }
    out
}
