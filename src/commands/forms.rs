//! `zeval normalize`, `zeval canonicalize`, `zeval validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::io::{print_json, read_json};

/// Print the normal form of a ZObject (exit 1 with the Z5 if it is not well-formed).
#[derive(clap::Args)]
pub(crate) struct NormalizeCommand {
    /// A JSON file, or `-` for standard input.
    file: Option<PathBuf>,
}

/// Print the canonical form of a ZObject (exit 1 with the Z5 if it is not well-formed).
#[derive(clap::Args)]
pub(crate) struct CanonicalizeCommand {
    /// A JSON file, or `-` for standard input.
    file: Option<PathBuf>,
}

/// Validate a ZObject against a type's schema.
#[derive(clap::Args)]
pub(crate) struct ValidateCommand {
    /// A JSON file, or `-` for standard input.
    file: Option<PathBuf>,
    /// The type to validate against (default Z1).
    #[arg(long = "type", default_value = "Z1")]
    type_zid: String,
    /// Which form the input must be in.
    #[arg(long, default_value = "canonical")]
    form: String,
}

fn report(result: Result<zeval_zobject::Value, zeval_zobject::Value>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(v) => print_json(&v).map(|()| ExitCode::SUCCESS),
        Err(z5) => print_json(&z5).map(|()| ExitCode::FAILURE),
    }
}

impl NormalizeCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        report(zeval_zobject::normalize(&read_json(self.file.as_deref())?))
    }
}

impl CanonicalizeCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        report(zeval_zobject::canonicalize(&read_json(self.file.as_deref())?))
    }
}

impl ValidateCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let _ = (&self.type_zid, &self.form, read_json(self.file.as_deref())?);
        anyhow::bail!("validation is being written (crates/zobject/src/validate)")
    }
}
