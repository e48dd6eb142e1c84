//! `zeval bench orchestrator`: times every runnable case of the orchestrator conformance suite
//! in process (with its mock wiki and evaluator, a fresh orchestrator per run as the original
//! suite does), with static validation on and off, and compares the medians with the
//! original's figures from issue 4.
//!
//! A run is what the HTTP route does with the request's object: orchestrate it and write the
//! answer's JSON ([`zeval_orchestrator::Answer::to_json`]). `--as-tree` times the route's
//! earlier work instead (the answer built as a canonical tree, then serialised), for an A/B in
//! one run.

use std::collections::HashMap;
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
    /// Build each answer as a canonical tree and serialise it (the route before the answer
    /// was written as text).
    #[arg(long)]
    as_tree: bool,
}

/// The original orchestrator's per-case medians on this kind of machine, quoted from the
/// suite's `baseline-timings.csv` (not re-measured: the original cannot run here).
const BASELINE_FILE: &str = "baseline-timings.csv";

/// The ratio every case should reach against its baseline (issue 12).
const GOAL_RATIO: f64 = 100.0;

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
        let baseline = read_baseline(&dir.join(BASELINE_FILE))
            .with_context(|| format!("reading {}", dir.join(BASELINE_FILE).display()))?;
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
                    let bytes = if self.as_tree {
                        let tree = orchestrator.orchestrate(&case.input, &options);
                        serde_json::to_vec(&tree).unwrap_or_default()
                    } else {
                        orchestrator.answer(&case.input, &options).into_json()
                    };
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                    drop(bytes);
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
        print_summary(&rows, &baseline, runs);
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

/// `title → median_ms` from the original's timings (a CSV with quoted titles).
fn read_baseline(path: &std::path::Path) -> anyhow::Result<HashMap<String, f64>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = HashMap::new();
    for line in text.lines().skip(1) {
        let (title, rest) = split_csv_title(line);
        let median = rest
            .split(',')
            .next()
            .and_then(|m| m.parse::<f64>().ok())
            .with_context(|| format!("no median in {line:?}"))?;
        out.insert(title, median);
    }
    Ok(out)
}

/// Splits a CSV line into its first field (unquoted) and the rest after the comma.
fn split_csv_title(line: &str) -> (String, &str) {
    let Some(quoted) = line.strip_prefix('"') else {
        return match line.split_once(',') {
            Some((title, rest)) => (title.to_owned(), rest),
            None => (line.to_owned(), ""),
        };
    };
    let mut title = String::new();
    let mut chars = quoted.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            if chars.peek().map(|(_, c)| *c) == Some('"') {
                title.push('"');
                chars.next();
                continue;
            }
            return (title, quoted[i + 1..].trim_start_matches(','));
        }
        title.push(c);
    }
    (title, "")
}

fn print_summary(rows: &[Row], baseline: &HashMap<String, f64>, runs: usize) {
    let cases = rows.iter().filter(|r| r.validate).count();
    println!("{cases} cases, {runs} runs each, validation on and off");
    println!("baseline: the original's per-case medians, quoted from {BASELINE_FILE}");
    for validate in [true, false] {
        let setting = if validate { "on" } else { "off" };
        let mut ratios: Vec<(f64, &Row, f64)> = rows
            .iter()
            .filter(|r| r.validate == validate)
            .filter_map(|r| {
                let original = *baseline.get(&r.title)?;
                Some((original / r.median, r, original))
            })
            .collect();
        ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut medians: Vec<f64> = ratios.iter().map(|(_, r, _)| r.median).collect();
        medians.sort_by(f64::total_cmp);
        let just_ratios: Vec<f64> = ratios.iter().map(|(x, _, _)| *x).collect();
        let under = ratios.iter().filter(|(x, _, _)| *x < GOAL_RATIO).count();
        println!(
            "validation {setting}: {} cases with a baseline; median {:.4} ms; ratio min {:.0}x, median {:.0}x; {under} under {GOAL_RATIO:.0}x",
            ratios.len(),
            percentile(&medians, 0.5),
            just_ratios.first().copied().unwrap_or(0.0),
            percentile(&just_ratios, 0.5),
        );
        for (ratio, row, original) in ratios.iter().take(8) {
            println!(
                "  {ratio:>6.0}x  {:.4} ms (original {original} ms)  {}",
                row.median, row.title
            );
        }
    }
    let missing: Vec<&str> = rows
        .iter()
        .filter(|r| r.validate && !baseline.contains_key(&r.title))
        .map(|r| r.title.as_str())
        .collect();
    if !missing.is_empty() {
        println!("no baseline for: {}", missing.join("; "));
    }
}
