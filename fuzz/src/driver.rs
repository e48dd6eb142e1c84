//! The coverage-less driver: mutate seeds with a seeded PRNG, run each input on a worker
//! thread under `catch_unwind`, time it, and save any input that panics or hangs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::mutate::mutate;
use crate::rng::Rng;
use crate::targets::Target;

/// The stack of the thread that runs the inputs: the server's `limits.worker_stack_bytes`
/// default (64 MiB), on which calls are orchestrated in production.
pub const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The default per-input time bound; past it the input is a hang finding and the run stops
/// (the stuck thread cannot be stopped from outside).
pub const DEFAULT_INPUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Names of the threads whose panics are findings (the panic hook records them quietly).
const WORKER_THREAD_NAME: &str = "zeval-fuzz-worker";

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The target.
    pub target: Target,
    /// How many inputs to run (the seeds themselves first, then mutations).
    pub iterations: u64,
    /// The PRNG seed.
    pub seed: u64,
    /// Where the seed files are (see [`crate::corpus::default_seed_dir`]).
    pub seed_dir: PathBuf,
    /// Where crashing inputs are saved.
    pub findings_dir: PathBuf,
    /// The per-input time bound.
    pub input_timeout: Duration,
}

/// One input that failed.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What went wrong: the panic message and location, the oracle's complaint, or a hang.
    pub description: String,
    /// Where the input was saved.
    pub saved_to: Option<PathBuf>,
    /// How long the input is.
    pub input_len: usize,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Inputs run.
    pub executions: u64,
    /// Seeds loaded.
    pub seeds: usize,
    /// Distinct failures, keyed by description (the first input of each is kept).
    pub findings: BTreeMap<String, Finding>,
    /// How many inputs failed in total.
    pub failing_inputs: u64,
    /// The slowest input.
    pub slowest: Duration,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Whether the run stopped early on a hang.
    pub stopped_on_hang: bool,
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records panics of worker threads (message and location) instead of printing them;
/// every other thread's panics go to the previous hook as before.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(WORKER_THREAD_NAME) {
                return previous(info);
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic)".into());
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("panic at {location}: {message}")));
        }));
    });
}

/// The verdict on one input: `Err` describes a finding.
pub type Verdict = Result<(), String>;

/// Runs `config` and reports; crashing inputs go to `config.findings_dir`.
pub fn run(config: &RunConfig) -> std::io::Result<Report> {
    let target = config.target;
    run_with(config, move |input| target.run(input))
}

/// [`run`] with `execute` in place of the target (the seeds are still `config.target`'s);
/// the driver's own tests plant failures with it.
pub fn run_with(
    config: &RunConfig,
    execute: impl Fn(&[u8]) -> Verdict + Send + 'static,
) -> std::io::Result<Report> {
    install_panic_hook();
    let started = Instant::now();
    let corpus = crate::corpus::seeds(config.target, &config.seed_dir);
    let mut report = Report {
        seeds: corpus.len(),
        ..Report::default()
    };
    let (input_tx, input_rx) = mpsc::channel::<Vec<u8>>();
    let (verdict_tx, verdict_rx) = mpsc::channel::<Verdict>();
    let worker = std::thread::Builder::new()
        .name(WORKER_THREAD_NAME.into())
        .stack_size(WORKER_STACK_BYTES)
        .spawn(move || {
            for input in input_rx {
                let verdict = match catch_unwind(AssertUnwindSafe(|| execute(&input))) {
                    Ok(verdict) => verdict,
                    Err(_) => Err(LAST_PANIC
                        .with(|p| p.borrow_mut().take())
                        .unwrap_or_else(|| "panic".into())),
                };
                if verdict_tx.send(verdict).is_err() {
                    return;
                }
            }
        })?;
    let mut rng = Rng::new(config.seed);
    for i in 0..config.iterations {
        let input = match corpus.get(i as usize) {
            Some(seed) => seed.clone(),
            None if corpus.is_empty() => Vec::new(),
            None => {
                let base = &corpus[rng.below(corpus.len())];
                mutate(base, &corpus, &mut rng)
            }
        };
        let one_started = Instant::now();
        if input_tx.send(input.clone()).is_err() {
            break;
        }
        let verdict = match verdict_rx.recv_timeout(config.input_timeout) {
            Ok(verdict) => verdict,
            Err(_) => {
                report.stopped_on_hang = true;
                Err(format!("hang: no answer within {:?}", config.input_timeout))
            }
        };
        report.executions += 1;
        report.slowest = report.slowest.max(one_started.elapsed());
        if let Err(description) = verdict {
            report.failing_inputs += 1;
            if !report.findings.contains_key(&description) {
                let saved_to = save(&config.findings_dir, config.target, &description, &input)?;
                report.findings.insert(
                    description.clone(),
                    Finding {
                        description,
                        saved_to: Some(saved_to),
                        input_len: input.len(),
                    },
                );
            }
        }
        if report.stopped_on_hang {
            break;
        }
    }
    drop(input_tx);
    // A hung worker is left behind (it cannot be stopped); a healthy one finishes here.
    if !report.stopped_on_hang {
        let _ = worker.join();
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Saves a failing input as `<target>-<hash of the description>.bin`.
fn save(dir: &Path, target: Target, description: &str, input: &[u8]) -> std::io::Result<PathBuf> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    std::fs::create_dir_all(dir)?;
    let mut hasher = DefaultHasher::new();
    description.hash(&mut hasher);
    let path = dir.join(format!("{}-{:016x}.bin", target.name(), hasher.finish()));
    std::fs::write(&path, input)?;
    Ok(path)
}
