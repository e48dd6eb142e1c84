//! `zeval bench evaluator`: per-call cost of the evaluator in process (snapshotted guests),
//! side by side in the same run with its baselines:
//! - (a) the same guests without their snapshot (`*.raw.wasm`);
//! - (b) one new OS process per call (`zeval evaluate -`), the Wikifunctions model;
//! - (c) native `node` / `python3`: the function's own time inside one long-lived process
//!   (heavy cases), and one interpreter process per call (trivial cases, the model of the
//!   original executors).
//!
//! `--http` instead measures throughput: trivial JavaScript calls over HTTP on loopback from
//! `--clients` concurrent clients for `--seconds`. `--after-heavy` measures what one heavy call
//! leaves behind for the trivial calls after it.

use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zeval_evaluator::client::RemoteEvaluator;
use zeval_evaluator::{
    Encoding, Evaluator, EvaluatorConfig, ExecutorRequest, Family, Request, ResetLeft,
};
use zeval_zobject::Value;
use zeval_zobject::build::{envelope_error, z6};

/// Measure the evaluator's per-call cost against its baselines.
#[derive(clap::Args)]
pub(crate) struct EvaluatorBench {
    /// Calls per case in process (the baselines that start a process per call use a fifth).
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Measure HTTP throughput instead (trivial JavaScript calls on 127.0.0.1).
    #[arg(long)]
    http: bool,
    /// Concurrent HTTP clients (with --http).
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// How long to drive the HTTP clients, in seconds (with --http).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The trivial call's language (with --http): `javascript` or `python`.
    #[arg(long, default_value = "javascript")]
    language: String,
    /// Measure the cost of the worker-process hop instead: every case in process and through
    /// a confined worker (`zeval worker`), alternating, in the same run.
    #[arg(long)]
    hop: bool,
    /// With `--http`: run the guests in confined worker processes (one per client), as
    /// `zeval serve` does by default, instead of in the server's process. With
    /// `--after-heavy`: in one worker.
    #[arg(long)]
    workers: bool,
    /// With `--http --workers`: at most this many worker processes (default: one per
    /// client); a call waits for a free one. With `--hop`: this many workers (default 1),
    /// which the one caller's calls take in turn as the pool hands them out.
    #[arg(long)]
    max_workers: Option<usize>,
    /// With `--hop` or `--workers`: bind the worker to the caller's CPU for each
    /// call, instead of leaving where it runs to the kernel (the A/B of `[workers]
    /// colocate`, off by default).
    #[arg(long)]
    colocate: bool,
    /// With `--hop` or `--workers`: how long the caller of a lone call checks for the
    /// worker's answer before it sleeps, in µs (the A/B of `[workers] lone_call_spin_us`,
    /// default 200; 0: sleep at once).
    #[arg(long)]
    lone_call_spin_us: Option<u64>,
    /// With `--hop` or `--workers`: calls a worker serves before it is replaced (the A/B of
    /// `[workers] recycle_after_calls`, default 10,000; 0: never).
    #[arg(long)]
    recycle_after_calls: Option<u64>,
    /// Only the cases whose name contains this text (e.g. `JS add`).
    #[arg(long)]
    only: Option<String>,
    /// Write each in-process answer as the route did before 2026-12-03: the metadata map
    /// built as a `Value` tree, then serialised (the A/B of `Answer::to_json`).
    #[arg(long)]
    answer_as_tree: bool,
    /// With `--hop`: have the in-process sandbox write `/tmp/perf-<pid>.map`, so that `perf
    /// report` names the guests' own functions (profiling only; the workers never write it).
    #[arg(long)]
    perf_map: bool,
    /// With `--hop` or `--http`: compile the code string on every call, in process and in the
    /// workers, as before the code cache (the A/B of
    /// `EvaluatorConfig::code_cache`).
    #[arg(long)]
    no_code_cache: bool,
    /// With `--hop`: end every call's code string with a comment of its own, so that no
    /// call's code was seen before (each is a miss of the code cache).
    #[arg(long)]
    fresh_code: bool,
    /// Measure instead each trivial case (in process, or with `--workers` through one worker)
    /// before and after heavy calls of its language (a deep recursion, then 100,000 objects)
    /// in the same evaluator: what the pages a heavy call wrote cost the calls that reuse its
    /// pool slot.
    #[arg(long)]
    after_heavy: bool,
    /// Time each in-process call up to the reset of its instance instead of up to its
    /// answer. By default a call is timed as the evaluator route serves it: its instance is
    /// reset after the answer is written (`zeval_evaluator::answer_first`), as a worker resets
    /// after it answers; this flag adds the reset's time (its CPU shows in `--http` either
    /// way).
    #[arg(long)]
    reset_in_call: bool,
}

struct Case {
    name: &'static str,
    family: Family,
    code: &'static str,
    args: &'static [&'static str],
    expected: &'static str,
    /// A native program printing one line of JSON `[nanoseconds per call, …]` for the
    /// function's own time, or `None` to time one interpreter process per call instead.
    native_loop: Option<&'static str>,
    /// The native program run once per call (trivial cases).
    native_once: Option<&'static str>,
}

/// The benchmark's function: a ZID and bodies that neither guest's snapshot has seen (the
/// Python snapshot warms up on `Z1000`, an add written another way; the evaluator warms each
/// guest with `Z1000001`), so the figures are what a function seen for the first time costs.
const FUNCTION: &str = "Z14071";

/// The code of "JS long add": a trivial call whose code string has the length of a real
/// implementation's (about 0.9 KB), since what a call costs grows with its code's length. A
/// macro, so that the native baseline's program can hold it too.
macro_rules! long_add_code {
    () => {
        "function Z14071(Z14071K1, Z14071K2) {\n  // Adds two decimal numbers given as strings, digit by digit, so that numbers of any\n  // length work (JavaScript's own numbers lose precision past 2^53).\n  const a = String(Z14071K1).trim();\n  const b = String(Z14071K2).trim();\n  if (!/^[0-9]+$/.test(a) || !/^[0-9]+$/.test(b)) {\n    throw new Error('Both arguments must be non-negative whole numbers, not ' + a + ' and ' + b);\n  }\n  const digits = [];\n  let carry = 0;\n  for (let i = a.length - 1, j = b.length - 1; i >= 0 || j >= 0 || carry; i--, j--) {\n    const x = i >= 0 ? a.charCodeAt(i) - 48 : 0;\n    const y = j >= 0 ? b.charCodeAt(j) - 48 : 0;\n    const sum = x + y + carry;\n    digits.push(sum % 10);\n    carry = sum >= 10 ? 1 : 0;\n  }\n  while (digits.length > 1 && digits[digits.length - 1] === 0) {\n    digits.pop();\n  }\n  return digits.reverse().join('');\n}\n"
    };
}

const CASES: &[Case] = &[
    Case {
        name: "JS add",
        family: Family::JavaScript,
        code: "function Z14071(Z14071K1, Z14071K2) { const sum = Number(Z14071K2) + Number(Z14071K1); return String(sum); }",
        args: &["5", "8"],
        expected: "13",
        native_loop: None,
        native_once: Some("node -e console.log(String(Number('5')+Number('8')))"),
    },
    Case {
        name: "Python add",
        family: Family::Python,
        code: "def Z14071(Z14071K1, Z14071K2):\n    total = int(Z14071K2) + int(Z14071K1)\n    return str(total)",
        args: &["5", "8"],
        expected: "13",
        native_loop: None,
        native_once: Some("python3 -c print(str(int('5')+int('8')))"),
    },
    Case {
        name: "JS fib(25)",
        family: Family::JavaScript,
        code: "function Z14071(Z14071K1) { function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); } return String(fib(Number(Z14071K1))); }",
        args: &["25"],
        expected: "75025",
        native_loop: Some(
            "node -e function fib(n){return n<2?n:fib(n-1)+fib(n-2)} const t=[];for(let i=0;i<ITER;i++){const s=process.hrtime.bigint();if(fib(25)!==75025)throw 1;t.push(Number(process.hrtime.bigint()-s))}console.log(JSON.stringify(t))",
        ),
        native_once: None,
    },
    Case {
        name: "Python fib(20)",
        family: Family::Python,
        code: "def Z14071(Z14071K1):\n    def fib(n):\n        return n if n < 2 else fib(n - 1) + fib(n - 2)\n    return str(fib(int(Z14071K1)))",
        args: &["20"],
        expected: "6765",
        native_loop: Some(
            "python3 -c import time,json\ndef fib(n):\n    return n if n<2 else fib(n-1)+fib(n-2)\nt=[]\nfor _ in range(ITER):\n    s=time.perf_counter_ns(); assert fib(20)==6765; t.append(time.perf_counter_ns()-s)\nprint(json.dumps(t))",
        ),
        native_once: None,
    },
    Case {
        name: "JS long add",
        family: Family::JavaScript,
        code: long_add_code!(),
        args: &["5", "8"],
        expected: "13",
        native_loop: Some(concat!(
            "node -e ",
            long_add_code!(),
            "const t=[];for(let i=0;i<ITER;i++){const s=process.hrtime.bigint();if(Z14071('5','8')!=='13')throw 1;t.push(Number(process.hrtime.bigint()-s))}console.log(JSON.stringify(t))"
        )),
        native_once: None,
    },
];

/// A heavy call for `--after-heavy`: no arguments, a string result.
struct Heavy {
    family: Family,
    code: &'static str,
}

/// The columns of `--after-heavy`, and each one's heavy call per language.
const HEAVY: &[(&str, &[Heavy])] = &[
    (
        "after a deep recursion",
        &[
            Heavy {
                family: Family::JavaScript,
                code: "function Z14071() { function depth(n) { return n === 0 ? 0 : 1 + depth(n - 1); } return String(depth(10000)); }",
            },
            Heavy {
                family: Family::Python,
                code: "import sys\nsys.setrecursionlimit(10000)\ndef Z14071():\n    def depth(n):\n        return 0 if n == 0 else 1 + depth(n - 1)\n    return str(depth(3000))",
            },
        ],
    ),
    (
        "after 100,000 objects",
        &[
            Heavy {
                family: Family::JavaScript,
                code: "function Z14071() { const made = []; for (let i = 0; i < 100000; i++) made.push({ i }); return String(made.length); }",
            },
            Heavy {
                family: Family::Python,
                code: "def Z14071():\n    made = [{'i': i} for i in range(100000)]\n    return str(len(made))",
            },
        ],
    ),
];

impl EvaluatorBench {
    fn call_options(&self) -> CallOptions {
        CallOptions {
            as_tree: self.answer_as_tree,
            reset_in_call: self.reset_in_call,
        }
    }

    /// An evaluator with `count` confined workers (`zeval worker`), as the flags say.
    fn workers_config(&self, count: usize) -> anyhow::Result<EvaluatorConfig> {
        let program = std::env::current_exe().context("finding this program")?;
        Ok(EvaluatorConfig {
            isolation: zeval_evaluator::Isolation::workers(zeval_evaluator::WorkerSettings {
                min_workers: count,
                max_workers: count,
                colocate: self.colocate,
                lone_call_spin: self.lone_call_spin(),
                recycle_after_calls: match self.recycle_after_calls {
                    None => Some(zeval_evaluator::DEFAULT_RECYCLE_AFTER_CALLS),
                    Some(0) => None,
                    Some(calls) => Some(calls),
                },
                ..zeval_evaluator::WorkerSettings::new(program, vec!["worker".into()])
            }),
            ..EvaluatorConfig::default()
        })
    }

    /// `--lone-call-spin-us`, or the workers' default.
    fn lone_call_spin(&self) -> Duration {
        self.lone_call_spin_us.map_or(
            zeval_evaluator::DEFAULT_LONE_CALL_SPIN,
            Duration::from_micros,
        )
    }

    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        if self.http {
            return self.http_throughput();
        }
        if self.hop {
            return self.worker_hop();
        }
        if self.after_heavy {
            return self.after_heavy();
        }
        let snapshot = Evaluator::new(EvaluatorConfig::default()).context("loading the guests")?;
        let raw = Evaluator::new(EvaluatorConfig {
            unsnapshotted: true,
            ..EvaluatorConfig::default()
        })
        .context("loading the unsnapshotted guests")?;
        let few = (self.iterations / 5).max(5);
        println!(
            "zeval bench evaluator: {} calls per case in process, {few} per process-per-call baseline",
            self.iterations
        );
        println!(
            "{:<15} {:>20} {:>26} {:>26} {:>26}",
            "case",
            "in process p50/p90",
            "(a) no snapshot p50 (×)",
            "(b) zeval process (×)",
            "(c) native p50 (×)"
        );
        let mut rows = Vec::new();
        for case in self.cases() {
            let prepared = Prepared::new(case)?;
            let ours = measure(self.iterations, || {
                call(&snapshot, &prepared, self.call_options())
            })?;
            let unsnapshotted = measure(few, || call(&raw, &prepared, self.call_options()))?;
            let process = measure(few, || call_in_new_process(case))?;
            let native = native(case, few)?;
            let ratio = |other: &Stats| other.p50.as_secs_f64() / ours.p50.as_secs_f64();
            println!(
                "{:<15} {:>20} {:>26} {:>26} {:>26}",
                case.name,
                format!("{} / {}", show(ours.p50), show(ours.p90)),
                format!(
                    "{} ({:.0}×)",
                    show(unsnapshotted.p50),
                    ratio(&unsnapshotted)
                ),
                format!("{} ({:.0}×)", show(process.p50), ratio(&process)),
                format!(
                    "{} ({:.2}×) {}",
                    show(native.1.p50),
                    ratio(&native.1),
                    native.0
                ),
            );
            rows.push((case.name, ours, unsnapshotted, process, native));
        }
        println!();
        println!(
            "| case | in process p50 / p90 | (a) no snapshot p50 | (b) process per call p50 | (c) native p50 |"
        );
        println!("|---|---|---|---|---|");
        for (name, ours, a, b, (kind, c)) in &rows {
            let ratio = |other: &Stats| other.p50.as_secs_f64() / ours.p50.as_secs_f64();
            println!(
                "| {name} | {} / {} | {} ({:.0}×) | {} ({:.0}×) | {} ({:.2}×, {kind}) |",
                show(ours.p50),
                show(ours.p90),
                show(a.p50),
                ratio(a),
                show(b.p50),
                ratio(b),
                show(c.p50),
                ratio(c)
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    /// `--after-heavy`: each trivial case's p50 in process (with `--workers`, through one
    /// worker), then again after each heavy call of its language, all in one evaluator (so
    /// one pool of instances).
    fn after_heavy(&self) -> anyhow::Result<ExitCode> {
        let config = if self.workers {
            self.workers_config(1)?
        } else {
            EvaluatorConfig::default()
        };
        let evaluator = Evaluator::new(config).context("loading the guests")?;
        wait_for_idle_workers(&evaluator)?;
        println!(
            "zeval bench evaluator --after-heavy: {} calls per measurement, {}, one caller",
            self.iterations,
            if self.workers {
                "through one worker"
            } else {
                "in process"
            }
        );
        let columns: Vec<&str> = HEAVY.iter().map(|(column, _)| *column).collect();
        println!("| case | before, p50 / p90 | {} |", columns.join(" | "));
        println!("|---|---|{}", "---|".repeat(columns.len()));
        // The trivial cases: those whose native baseline is one process per call.
        for case in self.cases().filter(|case| case.native_once.is_some()) {
            let prepared = Prepared::new(case)?;
            let mut cells = Vec::new();
            let mut measured = || -> anyhow::Result<()> {
                let stats = measure(self.iterations, || {
                    call(&evaluator, &prepared, self.call_options())
                })?;
                cells.push(format!("{} / {}", show(stats.p50), show(stats.p90)));
                Ok(())
            };
            measured()?;
            for (_, calls) in HEAVY {
                let heavy = calls
                    .iter()
                    .find(|heavy| heavy.family == case.family)
                    .context("a heavy call for every language")?;
                let request = Request::Executor(ExecutorRequest {
                    coding_language: Some(case.family.to_string()),
                    code_string: Some(heavy.code.to_owned()),
                    function_name: Some(FUNCTION.to_owned()),
                    ..ExecutorRequest::default()
                });
                if let Err(error) = outcome(&evaluator.evaluate(request)) {
                    bail!("the heavy {} call failed: {error}", case.family);
                }
                measured()?;
            }
            println!("| {} | {} |", case.name, cells.join(" | "));
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The cases `--only` selects.
    fn cases(&self) -> impl Iterator<Item = &'static Case> + '_ {
        CASES.iter().filter(|case| {
            self.only
                .as_deref()
                .is_none_or(|only| case.name.contains(only))
        })
    }

    /// The process hop: each case's p50 in process and through one worker, measured in
    /// alternating batches so that both see the same machine load.
    fn worker_hop(&self) -> anyhow::Result<ExitCode> {
        let mut in_process_config = EvaluatorConfig::default();
        in_process_config.sandbox.perf_map = self.perf_map;
        in_process_config.code_cache = !self.no_code_cache;
        let in_process = Evaluator::new(in_process_config).context("loading the guests")?;
        let worker_count = self.max_workers.unwrap_or(1);
        let workers = Evaluator::new(EvaluatorConfig {
            code_cache: !self.no_code_cache,
            ..self.workers_config(worker_count)?
        })
        .context("starting a worker")?;
        wait_for_idle_workers(&workers)?;
        println!(
            "zeval bench evaluator --hop: {} calls per case and side, in batches of 10, one caller, {} worker(s)",
            self.iterations, worker_count
        );
        println!("| case | in process p50 / p90 | worker p50 / p90 | added p50 | ratio |");
        println!("|---|---|---|---|---|");
        for case in self.cases() {
            let mut ours = Vec::with_capacity(self.iterations);
            let mut hop = Vec::with_capacity(self.iterations);
            let prepared = Prepared::new(case)?;
            call(&in_process, &prepared, self.call_options())?;
            call(&workers, &prepared, self.call_options())?;
            let mut fresh = 0u64;
            while ours.len() < self.iterations {
                for (evaluator, samples) in [(&in_process, &mut ours), (&workers, &mut hop)] {
                    for _ in 0..10 {
                        let fresh_prepared = if self.fresh_code {
                            fresh += 1;
                            Some(Prepared::with_comment(case, fresh)?)
                        } else {
                            None
                        };
                        let prepared = fresh_prepared.as_ref().unwrap_or(&prepared);
                        let started = Instant::now();
                        let left = call(evaluator, prepared, self.call_options())?;
                        samples.push(started.elapsed());
                        drop(left);
                    }
                }
            }
            let (ours, hop) = (Stats::from(&mut ours), Stats::from(&mut hop));
            let added = hop.p50.as_secs_f64() - ours.p50.as_secs_f64();
            println!(
                "| {} | {} / {} | {} / {} | {:.1} µs | {:.2}× |",
                case.name,
                show(ours.p50),
                show(ours.p90),
                show(hop.p50),
                show(hop.p90),
                added * 1e6,
                hop.p50.as_secs_f64() / ours.p50.as_secs_f64()
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    fn http_throughput(&self) -> anyhow::Result<ExitCode> {
        let config = if self.workers {
            self.workers_config(self.max_workers.unwrap_or(self.clients))?
        } else {
            EvaluatorConfig::default()
        };
        let config = EvaluatorConfig {
            code_cache: !self.no_code_cache,
            ..config
        };
        let evaluator = Arc::new(Evaluator::new(config).context("loading the guests")?);
        wait_for_idle_workers(&evaluator)?;
        // As `zeval serve --role evaluator` runs it: with guests in process, on guest lanes
        // (`ZEVAL_GUEST_LANES`), and the async side on the CPUs the lanes leave.
        let mut serve_config = zeval_server::Config::default();
        serve_config.apply_env(|name| std::env::var(name).ok())?;
        serve_config.role = zeval_server::config::Role::Evaluator;
        serve_config.workers.enabled = self.workers;
        let cpus = zeval_server::available_cpus();
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = serve_config.async_threads(cpus) {
            runtime.worker_threads(threads);
        }
        let runtime = runtime.enable_all().build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let router = crate::commands::serve::evaluator_router(&serve_config, evaluator)?;
        runtime.spawn(async move { axum::serve(listener, router).await });
        let url = format!("http://{address}{EVALUATE_PATH}");
        let case = match self.language.as_str() {
            "javascript" => &CASES[0],
            "python" => &CASES[1],
            other => anyhow::bail!("--language is javascript or python, not {other}"),
        };
        let request = request(case);
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        // A load generator as light as wrk: one keep-alive connection per client, the same
        // request bytes every time, and a check that the answer is a 200 whose body holds the
        // result, without parsing it (the server's work is what is measured).
        let body = zeval_evaluator::wire::encode(&request, Encoding::Json)
            .context("encoding the request")?;
        let message = [
            format!(
                "POST {EVALUATE_PATH} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes(),
            body,
        ]
        .concat();
        // A sanity check of the answer through the real client, once, outside the timing.
        let checked = RemoteEvaluator::new(url.clone(), Encoding::Json, Duration::from_secs(30))
            .evaluate(&request)
            .map_err(anyhow::Error::msg)?;
        if outcome(&checked).as_deref() != Ok("13") {
            bail!("unexpected answer: {checked}");
        }
        let clients: Vec<_> = (0..self.clients)
            .map(|_| {
                let (stop, done, failed, message) =
                    (stop.clone(), done.clone(), failed.clone(), message.clone());
                std::thread::spawn(move || -> Vec<Duration> {
                    let Ok(mut connection) = KeepAlive::connect(address) else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return Vec::new();
                    };
                    let mut latencies = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        match connection.exchange(&message) {
                            Ok(body) if contains(body, EXPECTED) => {
                                latencies.push(sent.elapsed());
                                done.fetch_add(1, Ordering::Relaxed)
                            }
                            _ => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    latencies
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(self.seconds));
        stop.store(true, Ordering::Relaxed);
        let mut latencies: Vec<Duration> = Vec::new();
        for client in clients {
            latencies.extend(client.join().unwrap_or_default());
        }
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies
                .get(((latencies.len().saturating_sub(1)) as f64 * q).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let elapsed = started.elapsed().as_secs_f64();
        let done = done.load(Ordering::Relaxed);
        println!(
            "zeval bench evaluator --http{}: {} clients, {:.1} s: {done} trivial {} calls ({:.0} calls/s), {} failed; latency p50 {:.2} ms, p99 {:.2} ms",
            match (self.workers, self.colocate) {
                (false, _) => "",
                (true, false) => " --workers",
                (true, true) => " --workers --colocate",
            },
            self.clients,
            elapsed,
            case.name,
            done as f64 / elapsed,
            failed.load(Ordering::Relaxed),
            at(0.5),
            at(0.99),
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The evaluator route the HTTP bench calls.
const EVALUATE_PATH: &str = "/wikifunctions.org/v1/evaluate/";

/// What the trivial calls' answer holds: the result 13, as the normal-form string the
/// server writes.
const EXPECTED: &[u8] = br#""Z22K1":{"Z1K1":"Z6","Z6K1":"13"}"#;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// One keep-alive HTTP/1.1 connection that sends a request and reads one response with a
/// `Content-Length` (what the server sends; anything else counts as a failure).
struct KeepAlive {
    stream: std::net::TcpStream,
    buffer: Vec<u8>,
}

impl KeepAlive {
    fn connect(address: std::net::SocketAddr) -> std::io::Result<Self> {
        let stream = std::net::TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends `message` and returns the body of a 200 response.
    fn exchange(&mut self, message: &[u8]) -> std::io::Result<&[u8]> {
        use std::io::{Error, Read};
        self.stream.write_all(message)?;
        self.buffer.clear();
        let mut chunk = [0u8; 16 * 1024];
        let (head_end, length) = loop {
            let read = self.stream.read(&mut chunk)?;
            if read == 0 {
                return Err(Error::other("the server closed the connection"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
                if !head.starts_with("http/1.1 200") {
                    return Err(Error::other(head));
                }
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .ok_or_else(|| Error::other("no content-length"))?;
                break (end + 4, length);
            }
        };
        while self.buffer.len() < head_end + length {
            let read = self.stream.read(&mut chunk)?;
            if read == 0 {
                return Err(Error::other("the server closed the connection"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
        Ok(&self.buffer[head_end..head_end + length])
    }
}

fn request(case: &Case) -> Request {
    let function_arguments = case
        .args
        .iter()
        .enumerate()
        .map(|(i, value)| (format!("{FUNCTION}K{}", i + 1), z6(*value)))
        .collect();
    Request::Executor(ExecutorRequest {
        coding_language: Some(match case.family {
            Family::JavaScript => "javascript".to_owned(),
            Family::Python => "python-3".to_owned(),
            compiled => compiled.to_string(),
        }),
        code_string: Some(case.code.to_owned()),
        function_name: Some(FUNCTION.to_owned()),
        function_arguments,
        ..ExecutorRequest::default()
    })
}

fn outcome(z22: &Value) -> Result<String, String> {
    if let Some(error) = envelope_error(z22) {
        return Err(error.to_string());
    }
    z22["Z22K1"]["Z6K1"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| z22.to_string())
}

fn check(case: &Case, z22: &Value) -> anyhow::Result<()> {
    match outcome(z22) {
        Ok(value) if value == case.expected => Ok(()),
        other => bail!("{}: unexpected result {other:?}", case.name),
    }
}

/// A case's request body and the start its answer must have, made once per case so that
/// the timed calls hold only the server's side of a request.
struct Prepared<'c> {
    case: &'c Case,
    body: Vec<u8>,
    expected: Vec<u8>,
}

impl<'c> Prepared<'c> {
    fn new(case: &'c Case) -> anyhow::Result<Self> {
        Self::from_request(case, request(case))
    }

    /// The case with its code string ending in a comment that names `number`.
    fn with_comment(case: &'c Case, number: u64) -> anyhow::Result<Self> {
        let mut request = request(case);
        if let Request::Executor(executor) = &mut request {
            let comment = match case.family {
                Family::Python => format!("\n# call {number}"),
                _ => format!("\n// call {number}"),
            };
            if let Some(code) = &mut executor.code_string {
                code.push_str(&comment);
            }
        }
        Self::from_request(case, request)
    }

    fn from_request(case: &'c Case, request: Request) -> anyhow::Result<Self> {
        let body = zeval_evaluator::wire::encode(&request, Encoding::Json).context("encoding")?;
        let expected = format!(
            r#"{{"Z1K1":{{"Z1K1":"Z9","Z9K1":"Z22"}},"Z22K1":{{"Z1K1":"Z6","Z6K1":{}}},"#,
            serde_json::to_string(case.expected)?
        )
        .into_bytes();
        Ok(Self {
            case,
            body,
            expected,
        })
    }
}

/// How [`call`] writes and times an in-process answer.
#[derive(Clone, Copy)]
struct CallOptions {
    /// [`EvaluatorBench::answer_as_tree`].
    as_tree: bool,
    /// [`EvaluatorBench::reset_in_call`].
    reset_in_call: bool,
}

/// One call through the whole path a request to the evaluator route takes: the JSON body is
/// decoded, planned, run, and the answer written as the route sends it. Only the check, a
/// comparison of the answer's first bytes with the expected result, is the bench's own. The
/// instance of a guest run in this process is left to reset when the returned value is
/// dropped, after the caller's timing, as the route resets after it answers; with
/// `reset_in_call` it is reset here.
fn call(
    evaluator: &Evaluator,
    prepared: &Prepared<'_>,
    options: CallOptions,
) -> anyhow::Result<Option<ResetLeft>> {
    let (json, reset_left) = zeval_evaluator::answer_first(|| {
        let answer = evaluator.answer_body(&prepared.body, Some("application/json"), None);
        if options.as_tree {
            serde_json::to_vec(&answer.into_value())
        } else {
            Ok(answer.to_json())
        }
    });
    let json = json?;
    let reset_left = (!options.reset_in_call).then_some(reset_left);
    if json.starts_with(&prepared.expected) {
        return Ok(reset_left);
    }
    let z22 = zeval_zobject::json::parse_slice(&json)?;
    check(prepared.case, &z22)?;
    bail!(
        "{}: the answer does not start with {}: {}",
        prepared.case.name,
        String::from_utf8_lossy(&prepared.expected),
        String::from_utf8_lossy(&json[..json.len().min(200)])
    )
}

fn call_in_new_process(case: &Case) -> anyhow::Result<()> {
    let body = zeval_evaluator::wire::encode(&request(case), Encoding::Json).context("encoding")?;
    // Only the guest the call needs, as a per-language deployment would load.
    let variant = match case.family {
        Family::JavaScript => "javascript-all",
        Family::Python => "python3-all",
        Family::C | Family::Rust => "omnibus",
    };
    let mut child = Command::new(std::env::current_exe()?)
        .args(["evaluate", "--variant", variant, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting zeval evaluate")?;
    child.stdin.take().context("stdin")?.write_all(&body)?;
    let output = child.wait_with_output()?;
    let z22 = zeval_zobject::json::parse_slice(&output.stdout)?;
    check(case, &z22)
}

/// The native baseline: `("in-process loop" | "process per call", stats)`.
fn native(case: &Case, iterations: usize) -> anyhow::Result<(&'static str, Stats)> {
    if let Some(program) = case.native_loop {
        let program = program.replace("ITER", &iterations.to_string());
        let (interpreter, rest) = program.split_once(' ').context("program")?;
        let (flag, source) = rest.split_once(' ').context("program")?;
        let output = Command::new(interpreter)
            .args([flag, source])
            .output()
            .context(interpreter.to_owned())?;
        let text = String::from_utf8_lossy(&output.stdout);
        let nanos: Vec<u64> =
            serde_json::from_str(text.trim()).with_context(|| format!("{interpreter}: {text}"))?;
        let mut samples: Vec<Duration> = nanos.into_iter().map(Duration::from_nanos).collect();
        return Ok(("function only, in one process", Stats::from(&mut samples)));
    }
    let program = case.native_once.context("no native baseline")?;
    let (interpreter, rest) = program.split_once(' ').context("program")?;
    let (flag, source) = rest.split_once(' ').context("program")?;
    let stats = measure(iterations, || {
        let output = Command::new(interpreter).args([flag, source]).output()?;
        if String::from_utf8_lossy(&output.stdout).trim() != case.expected {
            bail!(
                "{interpreter} printed {:?}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        Ok(())
    })?;
    Ok(("one process per call", stats))
}

struct Stats {
    p50: Duration,
    p90: Duration,
}

impl Stats {
    fn from(samples: &mut [Duration]) -> Self {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats {
            p50: at(0.5),
            p90: at(0.9),
        }
    }
}

/// Times `iterations` calls after a few warm-up calls.
/// `f`'s times after three untimed calls; what `f` returns (a reset left for later) is
/// dropped after its time is taken.
fn measure<T>(
    iterations: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<Stats> {
    for _ in 0..3 {
        f()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        let left = f()?;
        samples.push(started.elapsed());
        drop(left);
    }
    Ok(Stats::from(&mut samples))
}

fn show(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{:.1} ms", micros / 1000.0)
    }
}

/// Waits until every worker the pool keeps ready has started and is idle: the pool starts all
/// but the first in the background, and a start (loading and warming up the guests) takes
/// the CPU that the measured calls would get.
fn wait_for_idle_workers(evaluator: &Evaluator) -> anyhow::Result<()> {
    let Some(pool) = evaluator.worker_pool() else {
        return Ok(());
    };
    let wanted = pool.config().min_workers;
    let given_up_at = Instant::now() + Duration::from_secs(600);
    while pool.status().idle_pids.len() < wanted {
        anyhow::ensure!(
            Instant::now() < given_up_at,
            "{wanted} workers were not ready within 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
