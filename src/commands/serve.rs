//! `zeval serve` (being written).

use std::process::ExitCode;

/// (being written)
#[derive(clap::Args)]
pub(crate) struct ServeCommand {}

impl ServeCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("zeval serve is being written")
    }
}
