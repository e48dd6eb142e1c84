//! `zeval bench evaluator` (being written).

use std::process::ExitCode;

/// (being written)
#[derive(clap::Args)]
pub(crate) struct EvaluatorBench {}

impl EvaluatorBench {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("zeval bench evaluator is being written")
    }
}
