//! `zeval call` (being written).

use std::process::ExitCode;

/// (being written)
#[derive(clap::Args)]
pub(crate) struct CallCommand {}

impl CallCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("zeval call is being written")
    }
}
