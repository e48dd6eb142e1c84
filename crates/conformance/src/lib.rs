//! Runners for the Wikifunctions conformance suites in `../shared/wikifunctions`.
//!
//! Each suite module turns the suite's data manifests into cases, runs them against the real
//! zeval components, and returns a [`Report`]. The pass rules are the ones the suites'
//! READMEs state. [`deviations`] reads the cases that `docs/deviations.md` admits failing, so
//! the CI test can fail on any other failure.

pub mod deviations;
pub mod evaluator;
pub mod manifest;
pub mod mock_evaluator_service;
pub mod orchestrator;
pub mod report;
pub mod schemata;

pub use report::{CaseResult, Report};

use std::path::PathBuf;

/// Errors that stop a suite from running at all (as opposed to failing cases).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConformanceError {
    /// A suite file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A suite file is not what the README describes.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// The default location of the shared Wikifunctions data, relative to the workspace root.
pub fn default_shared_dir() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    workspace.join("../shared/wikifunctions")
}
