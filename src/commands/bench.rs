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
