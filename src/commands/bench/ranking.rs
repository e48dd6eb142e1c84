//! `zeval bench ranking`: what ranking buys and what it costs, in one run.
//!
//! A function with a slow JavaScript implementation listed first and a fast Python one
//! second (the case) is called through the whole in-process path (orchestrator,
//! evaluator, workers as configured) with ranking off (list order, as the original) and then
//! with ranking on after its testers ran; the ratio of the p50s is what ranking buys. The
//! selector's own cost per call (`order` + `observe` on a two-implementation function) is
//! timed against an empty loop of the same shape.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use zeval_orchestrator::{ImplementationInfo, ImplementationSelector, RunOutcome};
use zeval_server::config::Config;
use zeval_server::testers::TestRequest;

use super::z2;

/// Time ranking: list order against ranked order, and the selector's overhead.
#[derive(clap::Args)]
pub(crate) struct RankingBench {
    /// Calls per setting (at least 20).
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Iterations of the selector micro-benchmark.
    #[arg(long, default_value_t = 200_000)]
    iterations: usize,
}

const SLOW_JS: &str = "function Z10000( Z10000K1 ) { let x = 0; for ( let i = 0; i < 1000000; i++ ) { x += i % 7; } return Array.from( Z10000K1 ).reverse().join( '' ); }";
const FAST_PYTHON: &str = "def Z10000(Z10000K1):\n    return Z10000K1[::-1]";

fn objects() -> Vec<(&'static str, Value)> {
    let implementation = |zid: &str, language: &str, code: &str| {
        z2(
            zid,
            json!({"Z1K1": "Z14", "Z14K1": "Z10000",
                   "Z14K3": {"Z1K1": "Z16", "Z16K1": language, "Z16K2": code}}),
        )
    };
    let tester = |zid: &str, input: &str, expected: &str| {
        z2(
            zid,
            json!({"Z1K1": "Z20", "Z20K1": "Z10000",
                   "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": input},
                   "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": expected}}),
        )
    };
    vec![
        (
            "Z10000",
            z2(
                "Z10000",
                json!({"Z1K1": "Z8",
                       "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                                "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
                       "Z8K2": "Z6", "Z8K3": ["Z20", "Z10005", "Z10006"],
                       "Z8K4": ["Z14", "Z10001", "Z10002"], "Z8K5": "Z10000"}),
            ),
        ),
        ("Z10001", implementation("Z10001", "Z600", SLOW_JS)),
        ("Z10002", implementation("Z10002", "Z610", FAST_PYTHON)),
        ("Z10005", tester("Z10005", "abc", "cba")),
        ("Z10006", tester("Z10006", "héllo", "olléh")),
    ]
}

fn p50(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn time_calls(state: &zeval_server::AppState, calls: usize) -> anyhow::Result<Duration> {
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls {
        let text = format!("call {i}");
        let call = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": text});
        let started = Instant::now();
        let z22 = state.engine.orchestrate(call, false);
        samples.push(started.elapsed());
        let expected: String = text.chars().rev().collect();
        anyhow::ensure!(z22["Z22K1"] == expected.as_str(), "wrong answer: {z22}");
    }
    Ok(p50(&mut samples))
}

impl RankingBench {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let calls = self.calls.max(20);
        let data = tempfile::tempdir().context("a temporary data directory")?;
        let mut config = Config::default();
        config.apply_env(|name| std::env::var(name).ok())?;
        config.data_dir = data.path().to_owned();
        let metrics = Arc::new(zeval_server::Metrics::default());

        let mut off = config.clone();
        off.ranking.enabled = false;
        let listed = zeval_server::backends::orchestrator_state(&off, &metrics, None)
            .context("opening the store")?;
        for (zid, object) in objects() {
            listed.repository.put(zid, &object, "bench")?;
        }
        time_calls(&listed, 5)?;
        let list_order = time_calls(&listed, calls)?;

        let ranked = zeval_server::backends::orchestrator_state(&config, &metrics, None)
            .context("opening the store")?;
        let request = TestRequest {
            function: "Z10000".into(),
            implementations: None,
            testers: None,
        };
        let matrix = zeval_server::testers::run(
            ranked.repository.as_ref(),
            ranked.engine.as_ref(),
            &request,
            &|_, _| {},
        )?;
        anyhow::ensure!(matrix.passed == matrix.total, "testers failed: {matrix:?}");
        ranked.ranking.record_matrix(&matrix);
        let explanation = ranked.ranking.explain("Z10000")?;
        time_calls(&ranked, 5)?;
        let ranked_order = time_calls(&ranked, calls)?;

        let (selector, baseline) = self.selector_overhead(&ranked.ranking);
        println!("ranking: {}", explanation.reason);
        println!(
            "Z10000 p50 over {calls} calls: list order (slow JavaScript first) {:.3} ms, ranked (fast Python first) {:.3} ms: {:.1}× faster",
            ms(list_order),
            ms(ranked_order),
            list_order.as_secs_f64() / ranked_order.as_secs_f64()
        );
        println!(
            "selector per call (order + observe, two implementations): {:.0} ns; empty loop {:.1} ns",
            selector, baseline
        );
        Ok(ExitCode::SUCCESS)
    }

    /// Nanoseconds per `order` + `observe`, and per iteration of an empty loop.
    fn selector_overhead(&self, ranking: &zeval_server::ranking::Ranking) -> (f64, f64) {
        let infos = [
            ImplementationInfo {
                zid: Some("Z10001".into()),
                kind: "Evaluated",
            },
            ImplementationInfo {
                zid: Some("Z10002".into()),
                kind: "Evaluated",
            },
        ];
        let run = RunOutcome {
            duration: Duration::from_micros(300),
            failed: false,
        };
        let n = self.iterations.max(1);
        let started = Instant::now();
        for _ in 0..n {
            let order = ranking.order("Z10000", std::hint::black_box(&infos));
            ranking.observe("Z10000", &infos[order[0]], &run);
        }
        let selector = started.elapsed().as_nanos() as f64 / n as f64;
        let started = Instant::now();
        for i in 0..n {
            std::hint::black_box((&infos, i));
        }
        let baseline = started.elapsed().as_nanos() as f64 / n as f64;
        (selector, baseline)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
