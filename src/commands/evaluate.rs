//! `zeval evaluate` (being written).

use std::process::ExitCode;

/// (being written)
#[derive(clap::Args)]
pub(crate) struct EvaluateCommand {}

impl EvaluateCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("zeval evaluate is being written")
    }
}
