//! `zeval normalize`, `zeval canonicalize`, `zeval validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use zeval_zobject::build::z6;
use zeval_zobject::{Form, Value};

use super::io::{print_json, read_input};

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
    /// Which form the input must be in: normal or canonical.
    #[arg(long, default_value = "canonical")]
    form: Form,
}

/// Prints the result or the Z5; exit status 0 for a result, 1 for a Z5.
fn report(result: Result<Value, Value>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(v) => print_json(&v).map(|()| ExitCode::SUCCESS),
        Err(z5) => print_json(&z5).map(|()| ExitCode::FAILURE),
    }
}

impl NormalizeCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        report(input(self.file.as_deref())?.and_then(|v| zeval_zobject::normalize(&v)))
    }
}

impl CanonicalizeCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        report(input(self.file.as_deref())?.and_then(|v| zeval_zobject::canonicalize(&v)))
    }
}

impl ValidateCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let value = match input(self.file.as_deref())? {
            Ok(value) => value,
            Err(z5) => return report(Err(z5)),
        };
        let result = zeval_zobject::validate(&value, &self.type_zid, self.form).map(|()| value);
        report(result)
    }
}

/// The parsed input, or the Z5 for input that is not JSON (a Z501 "JSON syntax error" whose
/// message says where, including nesting deeper than the parser's limit).
fn input(path: Option<&std::path::Path>) -> anyhow::Result<Result<Value, Value>> {
    let text = read_input(path)?;
    Ok(zeval_zobject::json::parse(&text).map_err(|e| {
        let preview: String = text.chars().take(200).collect();
        zeval_zobject::error::z5("Z501", [z6(e.to_string()), z6(preview)])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn million_deep_input_gives_a_z5_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let deep = 1_000_000;
        let inputs = [
            ("arrays.json", "[".repeat(deep) + &"]".repeat(deep)),
            (
                "objects.json",
                "{\"Z1K1\":".repeat(deep) + "\"Z6\"" + &"}".repeat(deep),
            ),
        ];
        for (name, text) in inputs {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let z5 = input(Some(&path))
                .unwrap()
                .and_then(|v| zeval_zobject::normalize(&v))
                .unwrap_err();
            assert_eq!(
                zeval_zobject::error::error_code(&z5),
                Some("Z501"),
                "{name}"
            );
            assert!(
                z5.to_string().contains("nested deeper than"),
                "{name}: {z5}"
            );
        }
    }

    #[test]
    fn invalid_json_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{\n  \"Z1K1\": \"Z6\",\n  oops\n}").unwrap();
        let z5 = input(Some(&path)).unwrap().unwrap_err();
        assert!(z5.to_string().contains("line 3"), "{z5}");
    }
}
