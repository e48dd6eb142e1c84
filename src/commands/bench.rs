//! `zeval bench` (being written).

use std::process::ExitCode;

/// (being written)
#[derive(clap::Args)]
pub(crate) struct BenchCommand {}

impl BenchCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("zeval bench is being written")
    }
}
