//! `zeval bench <target>`: in-process benchmarks that report medians and p90s against
//! baselines measured in the same run.

mod compiled;
mod evaluator;
mod library;
mod orchestrator;
mod ranking;
mod recursion;
mod result_cache;

use std::process::ExitCode;

use serde_json::{Value, json};

/// A persistent object (`Z2`) `zid` holding `value`, with an empty label.
fn z2(zid: &str, value: Value) -> Value {
    json!({"Z1K1": "Z2", "Z2K1": {"Z1K1": "Z6", "Z6K1": zid}, "Z2K2": value,
           "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}})
}

/// Argument `n` (a `Z17` keyed `{zid}K{n}`) of type `ty` of function `zid`.
fn z17(zid: &str, n: usize, ty: Value) -> Value {
    json!({"Z1K1": "Z17", "Z17K1": ty, "Z17K2": format!("{zid}K{n}"),
           "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}})
}

/// Run a benchmark and print its figures.
#[derive(clap::Args)]
pub(crate) struct BenchCommand {
    #[command(subcommand)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum Target {
    /// Per-call cost of the evaluator against its baselines.
    Evaluator(evaluator::EvaluatorBench),
    /// Compiled languages: the same functions in C, Rust, JavaScript and Python through the
    /// evaluator, against the C and Rust compiled natively.
    Compiled(compiled::CompiledBench),
    /// Per-case cost of the orchestrator conformance cases.
    Orchestrator(orchestrator::OrchestratorBench),
    /// A call answered from the result cache against the same call computed, over HTTP.
    ResultCache(result_cache::ResultCacheBench),
    /// What ranking implementations buys (list order against ranked) and what the selector
    /// costs per call.
    Ranking(ranking::RankingBench),
    /// A library of 16 functions: every tester on every implementation over HTTP, per check.
    Library(library::LibraryBench),
    /// A composition that recurses once per code point of a text, at several lengths.
    Recursion(recursion::RecursionBench),
}

impl BenchCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        match self.target {
            Target::Evaluator(b) => b.execute(),
            Target::Compiled(b) => b.execute(),
            Target::Orchestrator(b) => b.execute(),
            Target::ResultCache(b) => b.execute(),
            Target::Ranking(b) => b.execute(),
            Target::Recursion(b) => b.execute(),
            Target::Library(b) => b.execute(),
        }
    }
}
