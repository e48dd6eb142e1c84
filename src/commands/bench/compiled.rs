//! `zeval bench compiled`: three functions (fib(27), a string reversal, a list sum), each
//! implemented in C, Rust, JavaScript and Python, called through the evaluator's whole path
//! (a JSON request body with the function and its implementation → decode → plan → artifact
//! → sandbox → Z22) with code the guests' snapshots have never seen; against, measured in the
//! same run, the same C and Rust compiled natively (clang `-O2`, rustc `-O`) and called in a
//! loop. Also the compile time and artifact size of each compiled implementation (compiled
//! in this run, into a fresh artifact directory).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use zeval_evaluator::{DirArtifactStore, Evaluator, EvaluatorConfig};

/// Measure compiled languages against the interpreters and native code.
#[derive(clap::Args)]
pub(crate) struct CompiledBench {
    /// Calls per case (fewer for a case whose calls take long: each case stops after about
    /// three seconds).
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Only the workloads whose name contains this text, and only these languages
    /// (comma-separated: c,rust,javascript,python), e.g. for profiling one case.
    #[arg(long)]
    only: Option<String>,
    #[arg(long, value_delimiter = ',')]
    languages: Option<Vec<String>>,
    /// Run every call in one confined worker process (`zeval worker`), as `zeval serve`
    /// does, instead of in this process.
    #[arg(long)]
    workers: bool,
    /// With `--workers`: bind the worker to the caller's CPU for each call, instead of
    /// leaving where it runs to the kernel (the A/B of `[workers] colocate`, off by default).
    #[arg(long)]
    colocate: bool,
}

/// Rounds in which a compiled implementation's calls through zeval and its native baseline
/// alternate.
const ROUNDS: usize = 5;

/// The function's ZID: not the one the snapshots' warm-up uses.
const FUNCTION: &str = "Z10042";

struct Workload {
    name: &'static str,
    argument_type: &'static str,
    javascript: &'static str,
    python: &'static str,
    c: &'static str,
    rust: &'static str,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "fib(27)",
        argument_type: "Z6",
        javascript: "function Z10042( Z10042K1 ) { function fib( n ) { return n < 2 ? n : fib( n - 1 ) + fib( n - 2 ); } return String( fib( Number( Z10042K1 ) ) ); }",
        python: "def Z10042(Z10042K1):\n    def fib(n):\n        return n if n < 2 else fib(n - 1) + fib(n - 2)\n    return str(fib(int(Z10042K1)))",
        c: "#include <stdio.h>\n#include <stdlib.h>\nstatic long fib(long n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\nchar *Z10042(const char *Z10042K1) {\n    static char out[32];\n    snprintf(out, sizeof out, \"%ld\", fib(atol(Z10042K1)));\n    return out;\n}\n",
        rust: "fn fib(n: u64) -> u64 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }\nfn Z10042(Z10042K1: &str) -> String { fib(Z10042K1.parse().unwrap()).to_string() }\n",
    },
    Workload {
        name: "reverse 1000 chars",
        argument_type: "Z6",
        javascript: "function Z10042( Z10042K1 ) { return Array.from( Z10042K1 ).reverse().join( '' ); }",
        python: "def Z10042(Z10042K1):\n    return Z10042K1[::-1]",
        c: "#include <stdlib.h>\n#include <string.h>\nchar *Z10042(const char *Z10042K1) {\n    size_t length = strlen(Z10042K1);\n    char *reversed = malloc(length + 1);\n    size_t out = length;\n    for (size_t i = 0; i < length;) {\n        size_t width = 1;\n        while (i + width < length && (Z10042K1[i + width] & 0xC0) == 0x80) width++;\n        out -= width;\n        memcpy(reversed + out, Z10042K1 + i, width);\n        i += width;\n    }\n    reversed[length] = 0;\n    return reversed;\n}\n",
        rust: "fn Z10042(Z10042K1: &str) -> String { Z10042K1.chars().rev().collect() }\n",
    },
    Workload {
        name: "sum of 1000 numbers",
        argument_type: "list",
        javascript: "function Z10042( Z10042K1 ) { let sum = 0; for ( const x of Z10042K1 ) { sum += Number( x ); } return String( sum ); }",
        python: "def Z10042(Z10042K1):\n    return str(sum(int(x) for x in Z10042K1))",
        c: "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n/* The list arrives as its normal-form JSON text: every item is {\"Z1K1\":\"Z6\",\"Z6K1\":\"<n>\"}. */\nchar *Z10042(const char *Z10042K1) {\n    static const char key[] = \"\\\"Z6K1\\\":\\\"\";\n    long long sum = 0;\n    for (const char *p = strstr(Z10042K1, key); p; p = strstr(p, key)) {\n        p += sizeof key - 1;\n        sum += strtoll(p, NULL, 10);\n    }\n    static char out[32];\n    snprintf(out, sizeof out, \"%lld\", sum);\n    return out;\n}\n",
        rust: "// The list arrives as its normal-form JSON text: every item is {\"Z1K1\":\"Z6\",\"Z6K1\":\"<n>\"}.\nfn Z10042(Z10042K1: &str) -> String {\n    let sum: i64 = Z10042K1\n        .split(\"\\\"Z6K1\\\":\\\"\")\n        .skip(1)\n        .map(|item| item[..item.find('\"').unwrap_or(item.len())].parse::<i64>().unwrap_or(0))\n        .sum();\n    sum.to_string()\n}\n",
    },
];

/// `(label, ZID of the language)`.
const LANGUAGES: [(&str, &str); 4] = [
    ("C", "Z630"),
    ("Rust", "Z640"),
    ("JavaScript", "Z600"),
    ("Python", "Z610"),
];

impl Workload {
    fn code(&self, language: &str) -> &'static str {
        match language {
            "C" => self.c,
            "Rust" => self.rust,
            "JavaScript" => self.javascript,
            _ => self.python,
        }
    }

    /// The argument in normal form, and its expected result.
    fn argument(&self) -> (Value, &'static str) {
        match self.name {
            "fib(27)" => (json!({"Z1K1": "Z6", "Z6K1": "27"}), "196418"),
            "reverse 1000 chars" => (
                json!({"Z1K1": "Z6", "Z6K1": "abcdéfghij".repeat(100)}),
                "REVERSED",
            ),
            _ => {
                let item_type = json!({"Z1K1": "Z9", "Z9K1": "Z6"});
                let list_type = json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"},
                    "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z881"}, "Z881K1": item_type});
                // Built cell by cell (`json!` would re-serialise the tail at every level).
                let mut list = json!({"Z1K1": list_type.clone()});
                for n in (1..=1000).rev() {
                    let mut cell = serde_json::Map::new();
                    cell.insert("Z1K1".into(), list_type.clone());
                    cell.insert("K1".into(), json!({"Z1K1": "Z6", "Z6K1": n.to_string()}));
                    cell.insert("K2".into(), list);
                    list = Value::Object(cell);
                }
                (list, "500500")
            }
        }
    }

    /// The argument's declared type in normal form.
    fn declared_type(&self) -> Value {
        match self.argument_type {
            "list" => json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"},
                "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z881"}, "Z881K1": {"Z1K1": "Z9", "Z9K1": "Z6"}}),
            _ => json!({"Z1K1": "Z9", "Z9K1": "Z6"}),
        }
    }

    /// The request `zeval serve`'s orchestrator gives its in-process evaluator.
    fn executor_request(&self, language_zid: &str, language: &str) -> zeval_evaluator::Request {
        let (argument, _) = self.argument();
        let key = format!("{FUNCTION}K1");
        zeval_evaluator::Request::Executor(zeval_evaluator::ExecutorRequest {
            coding_language: Some(language_code(language_zid).to_owned()),
            code_string: Some(self.code(language).to_owned()),
            function_name: Some(FUNCTION.to_owned()),
            function_arguments: [(key.clone(), argument)].into_iter().collect(),
            signature: Some(zeval_compiler::Signature {
                parameters: vec![(key, zeval_compiler::Kind::for_type(&self.declared_type()))],
                result: zeval_compiler::Kind::String,
            }),
            ..zeval_evaluator::ExecutorRequest::default()
        })
    }

    /// The evaluator's JSON request body: a whole function call (Z7) in normal form.
    fn request_body(&self, language_zid: &str, language: &str) -> Vec<u8> {
        let (argument, _) = self.argument();
        let declaration_type = json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"},
            "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z881"}, "Z881K1": {"Z1K1": "Z9", "Z9K1": "Z17"}});
        let implementation_type = json!({"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"},
            "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z881"}, "Z881K1": {"Z1K1": "Z9", "Z9K1": "Z14"}});
        let z7 = json!({
            "Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"},
            "Z7K1": {
                "Z1K1": {"Z1K1": "Z9", "Z9K1": "Z8"},
                "Z8K1": {"Z1K1": declaration_type.clone(),
                    "K1": {"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z17"}, "Z17K1": self.declared_type(),
                           "Z17K2": {"Z1K1": "Z6", "Z6K1": format!("{FUNCTION}K1")},
                           "Z17K3": {"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z12"},
                                     "Z12K1": {"Z1K1": {"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"},
                                        "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z881"},
                                        "Z881K1": {"Z1K1": "Z9", "Z9K1": "Z11"}}}}},
                    "K2": {"Z1K1": declaration_type}},
                "Z8K2": {"Z1K1": "Z9", "Z9K1": "Z6"},
                "Z8K3": {"Z1K1": {"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"},
                    "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z881"}, "Z881K1": {"Z1K1": "Z9", "Z9K1": "Z20"}}},
                "Z8K4": {"Z1K1": implementation_type.clone(),
                    "K1": {"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z14"},
                           "Z14K1": {"Z1K1": "Z9", "Z9K1": FUNCTION},
                           "Z14K3": {"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z16"},
                                     "Z16K1": {"Z1K1": {"Z1K1": "Z9", "Z9K1": "Z61"},
                                               "Z61K1": {"Z1K1": "Z6", "Z6K1": language_code(language_zid)}},
                                     "Z16K2": {"Z1K1": "Z6", "Z6K1": self.code(language)}}},
                    "K2": {"Z1K1": implementation_type}},
                "Z8K5": {"Z1K1": "Z9", "Z9K1": FUNCTION},
            },
            format!("{FUNCTION}K1"): argument,
        });
        serde_json::to_vec(&json!({"zobject": z7})).unwrap()
    }
}

fn language_code(zid: &str) -> &'static str {
    match zid {
        "Z630" => "c17",
        "Z640" => "rust",
        "Z600" => "javascript",
        _ => "python-3",
    }
}

/// Median and 90th percentile of `samples`.
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

fn micros(duration: Duration) -> String {
    let us = duration.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

impl CompiledBench {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let scratch = tempfile::tempdir().context("a scratch directory")?;
        let toolchain =
            zeval_compiler::Toolchain::discover(&zeval_compiler::CompilerConfig::default())
                .context("finding the compilers")?;
        let store = DirArtifactStore::open(scratch.path().join("artifacts"))?;
        let artifacts = Arc::new(zeval_evaluator::Artifacts::new(
            toolchain,
            Some(Arc::new(store)),
        ));
        let mut config = EvaluatorConfig::default();
        if let Some(bytes) = std::env::var("ZEVAL_BENCH_KEEP_RESIDENT")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config
                .sandbox
                .pool
                .keep_resident
                .insert(zeval_sandbox::MODULE_ENGINE_NAME.to_owned(), bytes);
        }
        if self.workers {
            let program = std::env::current_exe().context("finding this program")?;
            config.isolation =
                zeval_evaluator::Isolation::workers(zeval_evaluator::WorkerSettings {
                    min_workers: 1,
                    max_workers: 1,
                    colocate: self.colocate,
                    ..zeval_evaluator::WorkerSettings::new(program, vec!["worker".into()])
                });
        }
        let evaluator = Evaluator::new(config)
            .context("loading the guests")?
            .with_artifacts(artifacts.clone());
        println!(
            "zeval bench compiled: up to {} calls per case, p50 (p90) per call through the evaluator ({}); native: the same C/Rust compiled for the host, called in a loop in one process",
            self.iterations,
            if self.workers {
                "in one confined worker process"
            } else {
                "in process"
            }
        );
        let selected = |workload: &&Workload| {
            self.only
                .as_deref()
                .is_none_or(|only| workload.name.contains(only))
        };
        let wanted = |language: &str| {
            self.languages
                .as_ref()
                .is_none_or(|languages| languages.iter().any(|l| l.eq_ignore_ascii_case(language)))
        };
        for workload in WORKLOADS.iter().filter(selected) {
            println!("\n{}", workload.name);
            let expected = expected_result(workload);
            let mut p50 = std::collections::BTreeMap::new();
            let mut native_p50 = std::collections::BTreeMap::new();
            for (language, zid) in LANGUAGES.into_iter().filter(|(l, _)| wanted(l)) {
                let body = workload.request_body(zid, language);
                // The first call compiles (C, Rust): timed apart.
                let first = Instant::now();
                check(
                    workload,
                    &expected,
                    &evaluator.evaluate_body(&body, Some("application/json")),
                )
                .with_context(|| format!("{language}: first call"))?;
                let first = first.elapsed();
                let samples = self.time(|| {
                    check(
                        workload,
                        &expected,
                        &evaluator.evaluate_body(&body, Some("application/json")),
                    )
                })?;
                let (body_median, body_p90) = percentiles(&mut samples.clone());
                // As `zeval serve`'s orchestrator hands a call to its evaluator: an executor
                // request (no JSON body, no schema validation of the whole Z7).
                let executor = workload.executor_request(zid, language);
                let mut in_sandbox = Vec::new();
                let mut call = || {
                    let z22 = evaluator.evaluate(executor.clone());
                    in_sandbox.extend(metadata_micros(&z22, "executionDuration"));
                    check(workload, &expected, &z22)
                };
                let samples = match native_source(workload, language) {
                    // Alternated with the same code compiled natively, round by round, so
                    // that both see the machine in the same state (its speed drifts by a
                    // third over seconds here).
                    Some(source) => {
                        let program = build_native(scratch.path(), language, source, workload)?;
                        let per_round = self.iterations.div_ceil(ROUNDS).max(5);
                        let mut through_zeval = Vec::new();
                        let mut natively = Vec::new();
                        for _ in 0..ROUNDS {
                            for _ in 0..per_round {
                                let started = Instant::now();
                                call()?;
                                through_zeval.push(started.elapsed());
                            }
                            natively.extend(program.run(per_round)?);
                        }
                        native_p50.insert(language, percentiles(&mut natively));
                        through_zeval
                    }
                    None => self.time(&mut call)?,
                };
                let (median, p90) = percentiles(&mut samples.clone());
                p50.insert(language, median);
                let in_sandbox = if in_sandbox.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; in the sandbox {}",
                        micros(percentiles(&mut in_sandbox).0)
                    )
                };
                let extra = if zid == "Z630" || zid == "Z640" {
                    format!("  (first call, compiling: {})", micros(first))
                } else {
                    String::new()
                };
                println!(
                    "  {language:<11} zeval {:>9} ({:>9}{in_sandbox}); as a JSON Z7 body {:>9} ({:>9}); {} calls{extra}",
                    micros(median),
                    micros(p90),
                    micros(body_median),
                    micros(body_p90),
                    samples.len()
                );
            }
            for (language, (median, p90)) in native_p50 {
                let Some(&through_zeval) = p50.get(language) else {
                    continue;
                };
                let against_javascript =
                    p50.get("JavaScript").map_or(String::new(), |javascript| {
                        format!(
                            "; JavaScript/{language} through zeval {:.1}×",
                            javascript.as_secs_f64() / through_zeval.as_secs_f64()
                        )
                    });
                println!(
                    "  {language:<11} native {:>8} ({:>9}); zeval/native {:.2}× (alternated in {ROUNDS} rounds){against_javascript}",
                    micros(median),
                    micros(p90),
                    through_zeval.as_secs_f64() / median.as_secs_f64().max(1e-9),
                );
            }
        }
        println!("\ncompiled implementations (compile time, artifact size)");
        for workload in WORKLOADS.iter().filter(selected) {
            for (language, zid) in [("C", "Z630"), ("Rust", "Z640")] {
                let unit = zeval_compiler::Unit {
                    language: zeval_compiler::Language::from_code(zid).unwrap(),
                    function_name: FUNCTION.to_owned(),
                    signature: zeval_compiler::Signature {
                        parameters: vec![(
                            format!("{FUNCTION}K1"),
                            zeval_compiler::Kind::for_type(&workload.declared_type()),
                        )],
                        result: zeval_compiler::Kind::String,
                    },
                    source: workload.code(language).to_owned(),
                };
                let compiled = artifacts
                    .toolchain()
                    .compile(&unit)
                    .map_err(|e| anyhow::anyhow!("{language} {}: {e}", workload.name))?;
                println!(
                    "  {:<20} {language:<5} compile {:>7}, artifact {:>7} bytes",
                    workload.name,
                    micros(compiled.duration),
                    compiled.wasm.len()
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Times `call` up to `iterations` times, stopping after about three seconds.
    fn time(&self, mut call: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<Duration>> {
        let started = Instant::now();
        let mut samples = Vec::with_capacity(self.iterations);
        while samples.len() < self.iterations.max(5)
            && (samples.len() < 5 || started.elapsed() < Duration::from_secs(3))
        {
            let call_started = Instant::now();
            call()?;
            samples.push(call_started.elapsed());
        }
        Ok(samples)
    }
}

/// A duration the evaluator reports in the answer's metadata ("123 μs"): for
/// `executionDuration`, the wall time inside the sandbox (instantiation and the run).
fn metadata_micros(z22: &Value, key: &str) -> Option<Duration> {
    let text = zeval_zobject::build::get_metadata(&z22["Z22K2"], key)
        .and_then(zeval_zobject::build::string_value)?;
    let micros: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_micros(micros))
}

fn check(workload: &Workload, expected: &str, z22: &Value) -> anyhow::Result<()> {
    if let Some(error) = zeval_zobject::build::envelope_error(z22) {
        bail!("{}: {error}", workload.name);
    }
    let result = z22["Z22K1"]["Z6K1"].as_str().unwrap_or_default();
    if result != expected {
        bail!("{}: unexpected result {}", workload.name, &z22["Z22K1"]);
    }
    Ok(())
}

/// The result `workload` must give (computed once, outside the timed calls).
fn expected_result(workload: &Workload) -> String {
    let (argument, expected) = workload.argument();
    if expected == "REVERSED" {
        argument["Z6K1"].as_str().unwrap().chars().rev().collect()
    } else {
        expected.to_owned()
    }
}

/// The C or Rust source of `workload` when `language` is compiled.
fn native_source(workload: &Workload, language: &str) -> Option<&'static str> {
    match language {
        "C" => Some(workload.c),
        "Rust" => Some(workload.rust),
        _ => None,
    }
}

/// `source` compiled for this machine into a program that calls it in a loop, with the same
/// input (a string, or the list's normal-form JSON text) the wasm artifact receives.
struct NativeProgram {
    program: std::path::PathBuf,
    input: std::path::PathBuf,
}

impl NativeProgram {
    /// The per-call times of `iterations` calls in one process.
    fn run(&self, iterations: usize) -> anyhow::Result<Vec<Duration>> {
        let output = Command::new(&self.program)
            .arg(&self.input)
            .arg(iterations.to_string())
            .output()?;
        let times: Vec<u64> = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("the output of {}", self.program.display()))?;
        Ok(times.into_iter().map(Duration::from_nanos).collect())
    }
}

fn build_native(
    dir: &Path,
    language: &str,
    source: &str,
    workload: &Workload,
) -> anyhow::Result<NativeProgram> {
    let (argument, _) = workload.argument();
    let input = match argument.get("Z6K1").and_then(Value::as_str) {
        Some(text) => text.to_owned(),
        None => serde_json::to_string(&argument)?,
    };
    let work = dir.join(format!(
        "native-{language}-{}",
        workload.name.replace(' ', "-")
    ));
    std::fs::create_dir_all(&work)?;
    std::fs::write(work.join("input"), &input)?;
    let program = work.join("program");
    let status = match language {
        "C" => {
            std::fs::write(work.join("user.c"), source)?;
            std::fs::write(
                work.join("harness.c"),
                format!(
                    "#define _POSIX_C_SOURCE 199309L\n#include <stdio.h>\n#include <stdlib.h>\n#include <time.h>\nchar *{FUNCTION}(const char *);\n_Noreturn void zeval_error(const char *m) {{ fprintf(stderr, \"%s\\n\", m); exit(1); }}\nint main(int argc, char **argv) {{\n  FILE *f = fopen(argv[1], \"rb\"); static char input[1 << 20]; size_t n = fread(input, 1, sizeof input - 1, f); input[n] = 0;\n  int iterations = atoi(argv[2]); volatile char sink = 0; printf(\"[\");\n  for (int i = 0; i < iterations; i++) {{\n    struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);\n    char *r = {FUNCTION}(input); sink ^= r[0];\n    clock_gettime(CLOCK_MONOTONIC, &b);\n    printf(\"%s%lld\", i ? \",\" : \"\", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));\n  }}\n  printf(\"]\\n\"); return 0;\n}}\n"
                ),
            )?;
            Command::new(clang())
                .args(["-std=c17", "-O2", "-o"])
                .arg(&program)
                .arg(work.join("user.c"))
                .arg(work.join("harness.c"))
                .status()?
        }
        _ => {
            std::fs::write(
                work.join("main.rs"),
                format!(
                    "{source}\nfn main() {{\n  let args: Vec<String> = std::env::args().collect();\n  let input = std::fs::read_to_string(&args[1]).unwrap();\n  let iterations: usize = args[2].parse().unwrap();\n  let mut times = Vec::new();\n  for _ in 0..iterations {{\n    let started = std::time::Instant::now();\n    let result = {FUNCTION}(std::hint::black_box(&input));\n    std::hint::black_box(&result);\n    times.push(started.elapsed().as_nanos().to_string());\n  }}\n  println!(\"[{{}}]\", times.join(\",\"));\n}}\n"
                ),
            )?;
            Command::new("rustc")
                .args(["--edition", "2021", "-O", "-A", "non_snake_case", "-o"])
                .arg(&program)
                .arg(work.join("main.rs"))
                .status()?
        }
    };
    if !status.success() {
        bail!("compiling the native {language} baseline failed");
    }
    Ok(NativeProgram {
        program,
        input: work.join("input"),
    })
}

fn clang() -> &'static str {
    if Command::new("clang-19").arg("--version").output().is_ok() {
        "clang-19"
    } else {
        "clang"
    }
}
