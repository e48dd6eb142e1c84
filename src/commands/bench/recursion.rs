//! `zeval bench recursion`: a composition that recurses once per code point of a text
//! (issue 12), timed in process at several lengths to show how its cost grows.
//!
//! `Z10001(text, character)` asks whether every code point of `text` is `character`: it
//! calls `Z10002(Z868(text), first(Z868(character)))`, and `Z10002(list, c)` is
//! `If(empty(list), true, If(Z888(first(list), c), Z10002(rest(list), c), false))`. Each step
//! is an If, a first, a rest, a code point equality and a recursive call, all compositions
//! and built-ins of the catalogue, with the orchestrator's default limits. The text is all
//! `character`, so the recursion runs to the end. The baseline is the shortest length of
//! the same run: a linear cost keeps the time per code point flat.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::{z2, z17};
use zeval_orchestrator::{CallOptions, EvaluatorRegistry, Orchestrator, OrchestratorConfig};
use zeval_store::Layered;
use zeval_store::catalogue::CatalogueSource;
use zeval_store::{ObjectSource, StoreError};

/// Time the recursive composition at several lengths.
#[derive(clap::Args)]
pub(crate) struct RecursionBench {
    /// Text lengths in code points, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [100usize, 300, 600, 1_200, 3_000, 10_000])]
    lengths: Vec<usize>,
    /// Runs per length (the longest lengths run at least 3 times).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Static validation on (the original's default for requests).
    #[arg(long)]
    validate: bool,
}

/// The two functions, as the object source serves them.
struct Functions(HashMap<String, Value>);

impl ObjectSource for Functions {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        Ok(zids
            .iter()
            .filter_map(|zid| Some((zid.clone(), self.0.get(zid)?.clone())))
            .collect())
    }
}

fn reference(key: &str) -> Value {
    json!({"Z1K1": "Z18", "Z18K1": key})
}

fn call(function: &str, args: &[Value]) -> Value {
    let mut call = json!({"Z1K1": "Z7", "Z7K1": function});
    for (i, arg) in args.iter().enumerate() {
        call[format!("{function}K{}", i + 1)] = arg.clone();
    }
    call
}

fn function(zid: &str, arguments: Vec<Value>, returns: &str, body: Value) -> Value {
    z2(
        zid,
        json!({"Z1K1": "Z8", "Z8K1": std::iter::once(json!("Z17")).chain(arguments).collect::<Vec<_>>(),
               "Z8K2": returns, "Z8K3": ["Z20"],
               "Z8K4": ["Z14", {"Z1K1": "Z14", "Z14K1": zid, "Z14K2": body}],
               "Z8K5": zid}),
    )
}

fn functions() -> Functions {
    let code_points = json!({"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z86"});
    let list = reference("Z10002K1");
    let character = reference("Z10002K2");
    let step = call(
        "Z802",
        &[
            call("Z813", std::slice::from_ref(&list)),
            json!("Z41"),
            call(
                "Z802",
                &[
                    call(
                        "Z888",
                        &[call("Z811", std::slice::from_ref(&list)), character.clone()],
                    ),
                    call(
                        "Z10002",
                        &[call("Z812", std::slice::from_ref(&list)), character],
                    ),
                    json!("Z42"),
                ],
            ),
        ],
    );
    let every = function(
        "Z10002",
        vec![
            z17("Z10002", 1, code_points),
            z17("Z10002", 2, json!("Z86")),
        ],
        "Z40",
        step,
    );
    let entry = function(
        "Z10001",
        vec![z17("Z10001", 1, json!("Z6")), z17("Z10001", 2, json!("Z6"))],
        "Z40",
        call(
            "Z10002",
            &[
                call("Z868", &[reference("Z10001K1")]),
                call("Z811", &[call("Z868", &[reference("Z10001K2")])]),
            ],
        ),
    );
    Functions(HashMap::from([
        ("Z10001".to_owned(), entry),
        ("Z10002".to_owned(), every),
    ]))
}

/// What one call answered: `Ok(true/false)`, or the error code.
fn outcome(result: &Value) -> Result<bool, String> {
    if let Some(error) = zeval_zobject::build::envelope_error(result) {
        let code = error["Z5K1"].as_str().unwrap_or("?");
        let detail = error.to_string();
        return Err(format!("{code}: {}", &detail[..detail.len().min(300)]));
    }
    match zeval_zobject::build::ref_zid(&result["Z22K1"]["Z40K1"]) {
        Some("Z41") => Ok(true),
        Some("Z42") => Ok(false),
        _ => Err(format!("unexpected value {}", result["Z22K1"])),
    }
}

impl RecursionBench {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let source = Layered::new().with(CatalogueSource).with(functions());
        let orchestrator = Orchestrator::new(
            Arc::new(source),
            EvaluatorRegistry::new(),
            OrchestratorConfig::default(),
        );
        let options = CallOptions {
            do_validate: self.validate,
            ..CallOptions::default()
        };
        println!(
            "recursive composition, validation {}, default limits; per length: p50 / p90, per code point, against the shortest length",
            if self.validate { "on" } else { "off" }
        );
        let mut baseline_per_char = None;
        let mut failed = false;
        for &length in &self.lengths {
            let input = call("Z10001", &[json!("m".repeat(length)), json!("m")]);
            let runs = if length >= 3_000 {
                self.runs.clamp(3, 5)
            } else {
                self.runs.max(3)
            };
            // One call first, untimed: the first touches the catalogue and the allocator's
            // fresh pages.
            zeval_zobject::depth::drop_iteratively(orchestrator.orchestrate(&input, &options));
            let mut times = Vec::with_capacity(runs);
            let mut answer = Ok(true);
            for _ in 0..runs {
                let started = Instant::now();
                let result = orchestrator.orchestrate(&input, &options);
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                answer = outcome(&result);
                zeval_zobject::depth::drop_iteratively(result);
                if answer.is_err() {
                    break;
                }
            }
            times.sort_by(f64::total_cmp);
            let p50 = times[times.len() / 2];
            let p90 = times[((times.len() - 1) as f64 * 0.9).round() as usize];
            match answer {
                Ok(true) => {
                    let per_char = p50 * 1000.0 / length as f64;
                    let baseline = *baseline_per_char.get_or_insert(per_char);
                    println!(
                        "{length:>6} code points: {p50:>9.2} ms / {p90:>9.2} ms; {per_char:>6.2} µs per code point ({:.2}× the shortest)",
                        per_char / baseline
                    );
                }
                Ok(false) => {
                    failed = true;
                    println!("{length:>6} code points: answered false (wrong)");
                }
                Err(error) => {
                    failed = true;
                    println!("{length:>6} code points: failed after {p50:.1} ms: {error}");
                }
            }
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}
