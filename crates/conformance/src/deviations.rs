//! The conformance cases that `docs/deviations.md` admits failing.
//!
//! A listed case is a bullet line that starts with the suite and case id in backticks:
//! ``- `orchestrator:<case id>` — reason``. Anything else in the file is prose.

use std::collections::BTreeSet;
use std::path::Path;

/// Reads the case ids listed for `suite` (e.g. `"schemata"`) in a deviations file.
pub fn listed(deviations_md: &Path, suite: &str) -> std::io::Result<BTreeSet<String>> {
    Ok(parse(&std::fs::read_to_string(deviations_md)?, suite))
}

/// The case ids listed for `suite` in the text of a deviations file.
pub fn parse(text: &str, suite: &str) -> BTreeSet<String> {
    let prefix = format!("- `{suite}:");
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once('`').map(|(id, _)| id.to_string()))
        .collect()
}

/// The failures of `report` that the deviations file does not list for its suite, one line
/// each (id, name, what differed): what the CI tests fail on.
pub fn unlisted_failures(
    report: &crate::Report,
    deviations_md: &Path,
) -> std::io::Result<Vec<String>> {
    let listed = listed(deviations_md, &report.suite)?;
    Ok(report
        .failures()
        .filter(|c| !listed.contains(&c.id))
        .map(|c| {
            format!(
                "{} ({}): {}",
                c.id,
                c.name,
                c.detail.as_deref().unwrap_or("")
            )
        })
        .collect())
}

/// `Err` naming every failure of `report` that this workspace's deviations file does not
/// list (or why the file could not be read): the check every conformance test makes.
pub fn check_listed(report: &crate::Report) -> Result<(), String> {
    let unexpected = unlisted_failures(report, &default_path())
        .map_err(|e| format!("docs/deviations.md: {e}"))?;
    if unexpected.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "failing cases not in docs/deviations.md:\n{}",
            unexpected.join("\n")
        ))
    }
}

/// The default deviations file of this workspace.
pub fn default_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deviations.md")
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_listed_cases() {
        let text = "# x\n- `schemata:a/b.yaml#failure/1` — reason\n- `orchestrator:7` x\nprose `schemata:no`\n";
        let ids = super::parse(text, "schemata");
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["a/b.yaml#failure/1"]);
    }
}
