//! Runs every fuzz target for a fixed number of inputs (the seeds, then mutations) and fails
//! on any finding: a panic, a hang, or a broken oracle. Budget: all targets together well
//! under 30 s in a debug build on two cores.

use std::time::Duration;

use zeval_fuzz::{RunConfig, Target, corpus};

/// Inputs per target: enough to run every seed and a few thousand mutations of them.
const SMOKE_ITERATIONS: u64 = 2_000;

/// The per-input bound in CI: generous for a loaded machine, far below a real hang.
const SMOKE_INPUT_TIMEOUT: Duration = Duration::from_secs(20);

fn smoke(target: Target) {
    let findings = tempfile::tempdir().unwrap();
    let config = RunConfig {
        target,
        iterations: SMOKE_ITERATIONS,
        seed: 0x7e57,
        seed_dir: corpus::default_seed_dir(),
        findings_dir: findings.path().to_path_buf(),
        input_timeout: SMOKE_INPUT_TIMEOUT,
    };
    let report = zeval_fuzz::run(&config).unwrap();
    assert_eq!(
        report.executions, SMOKE_ITERATIONS,
        "{target:?} stopped early"
    );
    let described: Vec<String> = report
        .findings
        .values()
        .map(|f| format!("{} ({} bytes)", f.description, f.input_len))
        .collect();
    assert!(
        described.is_empty(),
        "{target:?} findings:\n{}",
        described.join("\n")
    );
}

#[test]
fn zobject_parsing_and_transformations() {
    smoke(Target::Zobject);
}

#[test]
fn evaluator_wire_decoder() {
    smoke(Target::Wire);
}

#[test]
fn guest_output_parser() {
    smoke(Target::GuestOutput);
}

#[test]
fn orchestrator_http_body() {
    smoke(Target::HttpBody);
}

#[test]
fn worker_responses() {
    smoke(Target::WorkerResponse);
}

#[test]
fn compiled_answers() {
    smoke(Target::CompiledAnswer);
}

#[test]
fn orchestrator_on_random_built_in_calls() {
    smoke(Target::Orchestrator);
}

/// The driver must see what it is there to see: a panicking input is a finding, saved to a
/// file, with the panic's location; an oracle failure is a finding too.
#[test]
fn the_driver_reports_and_saves_panics() {
    let findings = tempfile::tempdir().unwrap();
    let report = zeval_fuzz::driver::run_with(
        &RunConfig {
            target: Target::Zobject,
            iterations: 50,
            seed: 1,
            seed_dir: findings.path().join("no seeds here"),
            findings_dir: findings.path().to_path_buf(),
            input_timeout: SMOKE_INPUT_TIMEOUT,
        },
        |input| {
            if input.contains(&b'{') {
                panic!("planted panic");
            }
            Err("planted oracle failure".into())
        },
    )
    .unwrap();
    assert_eq!(report.executions, 50);
    let panic = report
        .findings
        .values()
        .find(|f| f.description.contains("planted panic"))
        .expect("the panic was not reported");
    assert!(
        panic.description.contains("smoke.rs"),
        "{}",
        panic.description
    );
    let saved = std::fs::read(panic.saved_to.as_ref().unwrap()).unwrap();
    assert!(saved.contains(&b'{'));
    assert!(report.findings.contains_key("planted oracle failure"));
}

/// A hang is a finding and stops the run.
#[test]
fn the_driver_reports_hangs() {
    let findings = tempfile::tempdir().unwrap();
    let report = zeval_fuzz::driver::run_with(
        &RunConfig {
            target: Target::Zobject,
            iterations: 10,
            seed: 1,
            seed_dir: findings.path().join("no seeds here"),
            findings_dir: findings.path().to_path_buf(),
            input_timeout: Duration::from_millis(200),
        },
        |_| {
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        },
    )
    .unwrap();
    assert!(report.stopped_on_hang);
    assert_eq!(report.executions, 1);
    assert_eq!(report.findings.len(), 1);
}
