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

/// Every case's answer, validation on and off, written as text straight from its normal
/// form ([`zeval_orchestrator::Answer::to_json`], what the HTTP route sends) is the JSON of
/// the tree the suite checks: the text path covers these answers and changes no byte.
#[test]
fn written_answers_are_the_serialised_trees() {
    let dir = default_shared_dir().join("orchestrator");
    let suite = orchestrator::Suite::load(&dir, None).expect("the suite loads");
    let mut written_directly = 0;
    for case in &suite.cases {
        for validate in [true, false] {
            let options = suite.options(case, validate);
            let answer = suite.orchestrator().answer(&case.input, &options);
            let text = answer.to_json();
            let tree = serde_json::to_vec(&answer.clone().into_value()).unwrap();
            assert!(
                text == tree,
                "{} (validation {validate}):\n{}\n{}",
                case.name,
                String::from_utf8_lossy(&text),
                String::from_utf8_lossy(&tree)
            );
            written_directly += usize::from(answer.writes_directly());
        }
    }
    // Most answers take the text path (the rest quote malformed input and are validated).
    assert!(
        written_directly * 10 >= suite.cases.len() * 2 * 8,
        "only {written_directly} answers were written directly"
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
