//! Runs the real schemata suite and fails on any failing case that `docs/deviations.md`
//! does not list.

use zeval_conformance::{default_shared_dir, deviations, schemata};

#[test]
fn schemata_suite_passes_except_listed_deviations() {
    let shared = default_shared_dir();
    let report = schemata::run(&shared.join("schemata"), &shared.join("definitions"))
        .expect("the schemata suite runs");
    let listed =
        deviations::listed(&deviations::default_path(), "schemata").expect("deviations.md");
    let unlisted: Vec<String> = report
        .failures()
        .filter(|c| !listed.contains(&c.id))
        .map(|c| format!("{}: {}", c.id, c.detail.as_deref().unwrap_or("")))
        .collect();
    assert!(
        unlisted.is_empty(),
        "failing cases not in docs/deviations.md:\n{}",
        unlisted.join("\n")
    );
    let stale: Vec<&String> = listed
        .iter()
        .filter(|id| report.cases.iter().any(|c| &&c.id == id && c.passed))
        .collect();
    assert!(
        stale.is_empty(),
        "cases listed in docs/deviations.md that now pass: {stale:?}"
    );
    for group in ["normalization.yaml", "canonicalization.yaml"] {
        let failing: Vec<_> = report
            .cases
            .iter()
            .filter(|c| c.group == group && !c.passed)
            .collect();
        assert!(failing.is_empty(), "{group} must pass in full: {failing:?}");
    }
    assert!(
        report.cases.len() > 1500,
        "only {} cases ran",
        report.cases.len()
    );
}
