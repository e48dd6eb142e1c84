//! `zeval conformance` (being written).

use std::process::ExitCode;

/// (being written)
#[derive(clap::Args)]
pub(crate) struct ConformanceCommand {}

impl ConformanceCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("zeval conformance is being written")
    }
}
