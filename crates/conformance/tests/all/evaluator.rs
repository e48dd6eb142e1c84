//! The evaluator suite: fails on any failing case that `docs/deviations.md` does not list.
//! Needs the guests (`guests/build.sh`, `$ZEVAL_GUEST_DIR`).

use zeval_conformance::{default_shared_dir, deviations, evaluator};

#[test]
fn evaluator_suite_passes_except_listed_deviations() {
    let dir = default_shared_dir().join("evaluator");
    let report = evaluator::run(&dir, None).expect("the suite and the guests load");
    println!("{}", report.summary());
    deviations::check_listed(&report).unwrap_or_else(|e| panic!("{e}"));
    // 62 posts on omnibus, 13 on javascript-all, 20 on python3-all, and 31 executor cases.
    assert!(
        report.cases.len() >= 120,
        "only {} cases ran",
        report.cases.len()
    );
    let pass_rate = report.passed() as f64 / report.cases.len() as f64;
    assert!(
        pass_rate >= 0.95,
        "only {} of {} pass",
        report.passed(),
        report.cases.len()
    );
}
