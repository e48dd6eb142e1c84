//! `zeval-fuzz TARGET --iterations N [--seed S]`: runs one fuzz target and reports.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use zeval_fuzz::{RunConfig, Target, corpus, driver};

/// Runs a fuzz target on mutated seed inputs and reports executions and findings.
#[derive(Parser)]
struct Args {
    /// The target to run.
    #[arg(value_enum)]
    target: Target,
    /// How many inputs to run.
    #[arg(long, default_value_t = 10_000)]
    iterations: u64,
    /// The PRNG seed (the same seed replays the same inputs).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the seed files are (default: ../shared/wikifunctions beside the repository).
    #[arg(long)]
    seed_dir: Option<PathBuf>,
    /// Where crashing inputs are saved.
    #[arg(long, default_value = "fuzz-findings")]
    findings_dir: PathBuf,
    /// The per-input time bound in milliseconds.
    #[arg(long, default_value_t = driver::DEFAULT_INPUT_TIMEOUT.as_millis() as u64)]
    timeout_ms: u64,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let config = RunConfig {
        target: args.target,
        iterations: args.iterations,
        seed: args.seed,
        seed_dir: args.seed_dir.unwrap_or_else(corpus::default_seed_dir),
        findings_dir: args.findings_dir,
        input_timeout: Duration::from_millis(args.timeout_ms),
    };
    let report = zeval_fuzz::run(&config)?;
    println!(
        "{}: {} executions ({} seeds) in {:.1?}, slowest input {:.1?}, {} failing inputs, {} distinct findings",
        args.target.name(),
        report.executions,
        report.seeds,
        report.elapsed,
        report.slowest,
        report.failing_inputs,
        report.findings.len()
    );
    for finding in report.findings.values() {
        println!(
            "  {} ({} bytes, saved to {})",
            finding.description,
            finding.input_len,
            finding
                .saved_to
                .as_ref()
                .map_or("-".into(), |p| p.display().to_string())
        );
    }
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
