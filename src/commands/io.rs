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

/// Values nested deeper than this are printed compactly: pretty-printing indents each level,
/// so a deep normal-form list would print quadratically many spaces.
const PRETTY_MAX_DEPTH: usize = 64;

/// Prints a value as JSON on standard output: pretty unless it nests deeply. A reader that
/// goes away (`zeval … | head`) ends the output quietly instead of failing.
pub(crate) fn print_json(value: &zeval_zobject::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let text = if depth_exceeds(value, PRETTY_MAX_DEPTH) {
        serde_json::to_string(value)?
    } else {
        serde_json::to_string_pretty(value)?
    };
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing standard output"),
    }
}

/// Whether `value` nests more than `max` arrays/objects deep, walked without recursion.
fn depth_exceeds(value: &zeval_zobject::Value, max: usize) -> bool {
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        if depth > max {
            return true;
        }
        match v {
            zeval_zobject::Value::Array(items) => {
                stack.extend(items.iter().map(|i| (i, depth + 1)))
            }
            zeval_zobject::Value::Object(m) => stack.extend(m.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::depth_exceeds;

    #[test]
    fn depth_is_measured_without_recursion() {
        let shallow = serde_json::json!({"Z1K1": "Z6", "Z6K1": ["a", {"b": "c"}]});
        assert!(!depth_exceeds(&shallow, 3));
        assert!(depth_exceeds(&shallow, 2));
    }
}
