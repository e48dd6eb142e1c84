//! The orchestrator suite: fails on any failing case that `docs/deviations.md` does not list.

use zeval_conformance::{default_shared_dir, deviations, orchestrator};

#[test]
fn orchestrator_suite_passes_except_listed_deviations() {
    let dir = default_shared_dir().join("orchestrator");
    let report = orchestrator::run(&dir, None).expect("the suite loads");
    println!("{}", report.summary());
    deviations::check_listed(&report).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.cases.len() >= 126,
        "only {} cases ran",
        report.cases.len()
    );
}

/// Prints the result of the cases named in `ORCHESTRATOR_CASES` (comma-separated indices).
#[test]
#[ignore = "a debugging aid: ORCHESTRATOR_CASES=12,20 cargo test -- --ignored --nocapture"]
fn print_orchestrator_cases() {
    let dir = default_shared_dir().join("orchestrator");
    let suite = orchestrator::Suite::load(&dir, None).expect("the suite loads");
    let wanted = std::env::var("ORCHESTRATOR_CASES").unwrap_or_default();
    for case in suite
        .cases
        .iter()
        .filter(|c| wanted.split(',').any(|w| w == c.index.to_string()))
    {
        println!(
            "{} {}\n{}",
            case.index,
            case.name,
            serde_json::to_string(&suite.result(case)).unwrap()
        );
    }
}

/// The suite once more with every code call sent over HTTP in Avro 0.0.4 through the
/// server's remote evaluator adapter, to the suite's evaluator mock served on a loopback
/// port: the wire must not change any result.
#[test]
fn orchestrator_suite_passes_through_a_remote_avro_evaluator() {
    let dir = default_shared_dir().join("orchestrator");
    let (report, requests) =
        orchestrator::run_through_remote_evaluator(&dir, None).expect("the suite loads");
    println!("{} ({requests} evaluator requests)", report.summary());
    deviations::check_listed(&report).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.cases.len() >= 126,
        "only {} cases ran",
        report.cases.len()
    );
    // The suite's cases call the evaluator 13 times in the original (observed).
    assert!(
        requests >= 13,
        "only {requests} requests reached the evaluator"
    );
}
