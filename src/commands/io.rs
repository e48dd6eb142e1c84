//! Reading command input: a file path, or `-` / nothing for standard input.

use std::io::Read;
use std::path::Path;

use anyhow::Context;

/// Reads the whole input named on the command line (`None` or `-` is standard input).
pub(crate) fn read_input(path: Option<&Path>) -> anyhow::Result<String> {
    match path {
        Some(p) if p != Path::new("-") => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        }
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            Ok(text)
        }
    }
}

/// Parses JSON input with the ZObject parser (bounded depth, positions in errors).
pub(crate) fn read_json(path: Option<&Path>) -> anyhow::Result<zeval_zobject::Value> {
    let text = read_input(path)?;
    zeval_zobject::json::parse(&text).context("parsing the input")
}

/// Prints a value as pretty JSON on standard output.
pub(crate) fn print_json(value: &zeval_zobject::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
