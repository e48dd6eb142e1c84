//! `zeval bench orchestrator`: times every runnable case of the orchestrator conformance suite
//! in process (with its mock wiki and evaluator, a fresh orchestrator per run as the original
//! suite does), with static validation on and off, and compares the medians with the
//! original's figures from issue 4.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use zeval_conformance::orchestrator::Suite;

/// Time the orchestrator conformance cases.
#[derive(clap::Args)]
pub(crate) struct OrchestratorBench {
    /// Write `title,median_ms,p90_ms,validate` rows here.
    #[arg(long, value_name = "FILE.csv")]
    out: Option<PathBuf>,
    /// Runs per case and setting (at least 20).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// The suite directory (default ../shared/wikifunctions/orchestrator).
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Only time the cases whose name contains this text.
    #[arg(long)]
    only: Option<String>,
}

/// The original orchestrator's times on the same machine (issue 4), in ms:
/// `(case name, with validation, without validation)`.
const ORIGINAL: [(&str, Option<f64>, Option<f64>); 4] = [
    ("Scott numeral Ackermann(1, 1)", Some(403.0), Some(194.0)),
    ("curry", Some(37.0), None),
    ("bind binary function", Some(16.0), None),
    (
        "function call for the true Z902 (if), the good if",
        Some(148.0),
        Some(15.0),
    ),
];

/// The original's median over all cases, validation on.
const ORIGINAL_MEDIAN_MS: f64 = 64.0;

struct Row {
    title: String,
    median: f64,
    p90: f64,
    validate: bool,
}

impl OrchestratorBench {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let runs = self.runs.max(20);
        let dir = self
            .suite
            .clone()
            .unwrap_or_else(|| zeval_conformance::default_shared_dir().join("orchestrator"));
        let suite = Suite::load(&dir, None).context("loading the orchestrator suite")?;
        let mut rows = Vec::new();
        let selected = suite.cases.iter().filter(|c| {
            self.only
                .as_ref()
                .is_none_or(|o| c.name.contains(o.as_str()))
        });
        for case in selected {
            for validate in [true, false] {
                let options = suite.options(case, validate);
                let mut times = Vec::with_capacity(runs);
                for _ in 0..runs {
                    let orchestrator = suite.orchestrator();
                    let started = Instant::now();
                    let result = orchestrator.orchestrate(&case.input, &options);
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                    drop(result);
                }
                times.sort_by(f64::total_cmp);
                rows.push(Row {
                    title: case.name.clone(),
                    median: percentile(&times, 0.5),
                    p90: percentile(&times, 0.9),
                    validate,
                });
            }
        }
        if let Some(path) = &self.out {
            write_csv(path, &rows).with_context(|| format!("writing {}", path.display()))?;
        }
        print_summary(&rows, suite.cases.len(), runs);
        Ok(ExitCode::SUCCESS)
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn write_csv(path: &PathBuf, rows: &[Row]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(file, "title,median_ms,p90_ms,validate")?;
    for row in rows {
        let title = format!("\"{}\"", row.title.replace('"', "\"\""));
        writeln!(
            file,
            "{title},{:.4},{:.4},{}",
            row.median, row.p90, row.validate
        )?;
    }
    file.flush()
}

fn print_summary(rows: &[Row], cases: usize, runs: usize) {
    println!("{cases} cases, {runs} runs each, validation on and off");
    let mut medians: Vec<f64> = rows
        .iter()
        .filter(|r| r.validate)
        .map(|r| r.median)
        .collect();
    medians.sort_by(f64::total_cmp);
    let overall = percentile(&medians, 0.5);
    println!(
        "median over all cases (validation on): {overall:.3} ms; original {ORIGINAL_MEDIAN_MS} ms; {:.0}x faster",
        ORIGINAL_MEDIAN_MS / overall
    );
    for (name, on, off) in ORIGINAL {
        for (validate, original) in [(true, on), (false, off)] {
            let Some(original) = original else { continue };
            let setting = if validate { "on" } else { "off" };
            match rows
                .iter()
                .find(|r| r.title == name && r.validate == validate)
            {
                Some(r) => println!(
                    "{name} (validation {setting}): {:.3} ms; original {original} ms; {:.0}x faster",
                    r.median,
                    original / r.median
                ),
                None => println!("{name} (validation {setting}): not among the shared cases"),
            }
        }
    }
}
