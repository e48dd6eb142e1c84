//! Errors that stop an evaluator from being built. (Errors of a call are Z5s in its Z22.)

use std::path::PathBuf;

/// Why [`crate::Evaluator::new`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvaluatorError {
    /// A guest file is missing: the guests have not been built.
    #[error("guest {} is missing; build the guests with guests/build.sh (ZEVAL_GUEST_DIR={})", path.display(), dir.display())]
    GuestMissing {
        /// The missing file.
        path: PathBuf,
        /// The guest directory searched.
        dir: PathBuf,
    },
    /// The sandbox could not be set up or refused a guest.
    #[error("sandbox: {0}")]
    Sandbox(#[from] zeval_sandbox::SandboxError),
    /// The guest answered its version probe with something unexpected.
    #[error("guest {guest} did not report its version: {message}")]
    Probe {
        /// The guest name.
        guest: String,
        /// What went wrong.
        message: String,
    },
    /// The worker pool could not start its first worker.
    #[error("the evaluator's worker processes could not start: {0}")]
    Workers(#[from] zeval_worker::WorkerError),
}
