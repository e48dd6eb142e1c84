//! `zeval worker` (hidden): a confined worker process. Started by `zeval serve` with a Unix
//! socket as its standard input; not for people to run.

use std::process::ExitCode;

/// Serve guest calls for the parent on standard input (a socket it passed).
#[derive(clap::Args)]
pub(crate) struct WorkerCommand {}

impl WorkerCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        zeval_worker::child::run()
    }
}
