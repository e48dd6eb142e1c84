//! `zeval conformance <suite>`: run a Wikifunctions conformance suite and print per-file
//! counts, the failures by name, and `conformance <suite>: P/T cases pass` as the last line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Run a Wikifunctions conformance suite.
#[derive(clap::Args)]
pub(crate) struct ConformanceCommand {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(clap::Subcommand)]
enum Suite {
    /// The function-schemata fixtures (normalization, canonicalization, validation).
    Schemata(SuiteArgs),
    /// The orchestrator suite (in process, with the suite's mock wiki and evaluator).
    Orchestrator(SuiteArgs),
    /// The evaluator suite (the HTTP router in process, the real wasm guests).
    Evaluator(SuiteArgs),
}

#[derive(clap::Args)]
struct SuiteArgs {
    /// The suite directory (default: ../shared/wikifunctions/<suite>).
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Replaces the suite's cases.json (file references still resolve against the suite dir).
    #[arg(long)]
    cases: Option<PathBuf>,
    /// Also write a machine-readable report (every case, pass/fail, what differed) here.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl ConformanceCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let (args, report) = match self.suite {
            Suite::Schemata(args) => {
                let shared = zeval_conformance::default_shared_dir();
                let dir = args
                    .suite
                    .clone()
                    .unwrap_or_else(|| shared.join("schemata"));
                let report = zeval_conformance::schemata::run(&dir, &shared.join("definitions"))?;
                (args, report)
            }
            Suite::Orchestrator(args) => {
                let dir = args.suite.clone().unwrap_or_else(|| {
                    zeval_conformance::default_shared_dir().join("orchestrator")
                });
                let report = zeval_conformance::orchestrator::run(&dir, args.cases.as_deref())?;
                (args, report)
            }
            Suite::Evaluator(args) => {
                let dir = args
                    .suite
                    .clone()
                    .unwrap_or_else(|| zeval_conformance::default_shared_dir().join("evaluator"));
                let report = zeval_conformance::evaluator::run(&dir, args.cases.as_deref())?;
                (args, report)
            }
        };
        #[allow(unreachable_code)]
        finish(&args, &report)
    }
}

fn finish(args: &SuiteArgs, report: &zeval_conformance::Report) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{}", report.summary());
    Ok(if report.failures().next().is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
