//! `zeval bench orchestrator` (being written).

use std::process::ExitCode;

/// (being written)
#[derive(clap::Args)]
pub(crate) struct OrchestratorBench {}

impl OrchestratorBench {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("zeval bench orchestrator is being written")
    }
}
