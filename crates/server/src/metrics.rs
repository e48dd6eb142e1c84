//! Prometheus metrics, in the text exposition format (version 0.0.4), written by hand: a few
//! labelled counters, gauges and histograms need no registry crate.
//!
//! What is counted:
//! - `zeval_calls_total{function,implementation_type,outcome}`: orchestrator calls;
//! - `zeval_call_duration_seconds{implementation_type}`: their latency (histogram);
//! - `zeval_code_runs_total{language,outcome}` and `zeval_code_run_duration_seconds{language}`:
//!   code handed to an evaluator (in process or remote);
//! - `zeval_sandbox_limit_hits_total{kind}`: calls cut by a sandbox limit (timeout, fuel,
//!   memory, stack, output);
//! - `zeval_calls_in_flight`: calls being orchestrated now;
//! - `zeval_requests_rejected_total{reason}`: 503 (busy), 413 (too large), 401/403 (access);
//! - `zeval_requests_reserved_total`: calls admitted into the reserve because every work slot
//!   was held (`crate::limits`, step 4);
//! - gauges sampled at scrape time through [`Metrics::add_sampler`]: objects in the store,
//!   cache hits and misses, and `zeval_code_cache_hits_total`, the guest calls that found
//!   compiled code kept from an earlier call (this process's evaluator only);
//! - per remote evaluator, labelled by its configured URL: `zeval_evaluator_outstanding`,
//!   `_healthy`, `_draining`, `_requests_total`, `_failures_total`, `_retries_total`
//!   ([`crate::evaluator_pool`]).
//!
//! Label values never take raw request data, so a client cannot grow `/metrics` without
//! bound: `function` is the ZID of a function in the catalogue or the store, else `other`
//! ([`Metrics::function_label`]); `language` is a known language code, else `other`
//! ([`language_label`]); `implementation_type` is one of the orchestrator's kinds, else
//! `other`. As a second line, each metric holds at most [`MAX_SERIES_PER_METRIC`] label sets;
//! past it a new one is counted under every label set to `other`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the latency buckets: 100 µs to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

/// Label sets one metric may hold (default 1000); past it new ones fold into `other`.
pub const MAX_SERIES_PER_METRIC: usize = 1000;

/// The longest the `/metrics` label of a call's function may take to look up in the store,
/// a wait for a connection included ([`Metrics::function_label`]).
pub const LABEL_READ_TIME: std::time::Duration = std::time::Duration::from_millis(100);

/// The label value standing for everything not worth its own series.
pub const OTHER: &str = "other";

/// `labels` as stored: as given while `series` has room for it, else with every value
/// `other`.
fn bounded<V>(series: &BTreeMap<Labels, V>, labels: &[(&'static str, &str)]) -> Labels {
    let labels: Labels = labels.iter().map(|&(k, v)| (k, v.to_string())).collect();
    if series.len() < MAX_SERIES_PER_METRIC || series.contains_key(&labels) {
        labels
    } else {
        labels.into_iter().map(|(k, _)| (k, OTHER.into())).collect()
    }
}

/// The `language` label of a programming-language code: the code when zeval knows it
/// (the orchestrator's default languages and the catalogue's Z600–Z640), else `other`.
pub fn language_label(code: &str) -> &str {
    let known = zeval_orchestrator::EvaluatorRegistry::DEFAULT_LANGUAGES.contains(&code)
        || (600..=640).any(|number| {
            zeval_catalogue::programming_language_code(&format!("Z{number}")) == Some(code)
        });
    if known { code } else { OTHER }
}

/// The `implementation_type` label: one of the orchestrator's kinds, `none` when the answer
/// has none, else `other`.
pub fn implementation_type_label(kind: Option<&str>) -> &'static str {
    match kind {
        None => "none",
        Some("BuiltIn") => "BuiltIn",
        Some("Composition") => "Composition",
        Some("Evaluated") => "Evaluated",
        Some("Code") => "Code",
        Some(_) => OTHER,
    }
}

/// Whether `text` has the shape of a ZID (`Z` and a number without leading zero).
fn is_zid(text: &str) -> bool {
    text.strip_prefix('Z').is_some_and(|digits| {
        !digits.is_empty()
            && digits.len() <= 19
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; LATENCY_BUCKETS.len()];
        }
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&b| seconds <= b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// A value read when `/metrics` is scraped.
pub type Sampler = Box<dyn Fn() -> Vec<Sample> + Send + Sync>;

/// Series with labels written by their owner when `/metrics` is scraped, in the text
/// exposition format (HELP and TYPE lines included); the owner bounds their number.
pub type TextSampler = Box<dyn Fn() -> String + Send + Sync>;

/// One sampled value.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Metric name, e.g. `zeval_store_objects`.
    pub name: &'static str,
    /// `gauge` or `counter`.
    pub kind: &'static str,
    /// The HELP line.
    pub help: &'static str,
    /// The value.
    pub value: f64,
}

/// The process's metrics.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<&'static str, BTreeMap<Labels, u64>>>,
    histograms: Mutex<BTreeMap<&'static str, BTreeMap<Labels, Histogram>>>,
    in_flight: AtomicI64,
    samplers: Mutex<Vec<Sampler>>,
    text_samplers: Mutex<Vec<TextSampler>>,
    /// ZIDs found to exist, so each is looked up once (at most [`MAX_SERIES_PER_METRIC`]).
    known_functions: Mutex<HashSet<String>>,
    /// The last text [`Metrics::render_shared`] rendered, and when that render started.
    /// Held (asynchronously) while a render runs, so renders run one at a time.
    last_render: tokio::sync::Mutex<Option<(Instant, axum::body::Bytes)>>,
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn help(name: &str) -> &'static str {
    match name {
        "zeval_calls_total" => {
            "Function calls orchestrated, by function, implementation type and outcome."
        }
        "zeval_call_duration_seconds" => "Latency of orchestrated function calls.",
        "zeval_code_runs_total" => {
            "Code implementations run by an evaluator, by language and outcome."
        }
        "zeval_code_run_duration_seconds" => "Latency of code runs, by language.",
        "zeval_sandbox_limit_hits_total" => "Code runs cut by a sandbox limit, by kind.",
        "zeval_requests_rejected_total" => "HTTP requests refused before any work, by reason.",
        "zeval_requests_reserved_total" => {
            "Calls admitted into the reserve because every work slot was held."
        }
        "zeval_tester_runs_total" => "Tester runs, by outcome.",
        _ => "",
    }
}

impl Metrics {
    /// Adds 1 to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let series = counters.entry(name).or_default();
        let labels = bounded(series, labels);
        *series.entry(labels).or_default() += 1;
    }

    /// Records one latency.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], took: Duration) {
        let mut histograms = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
        let series = histograms.entry(name).or_default();
        let labels = bounded(series, labels);
        series
            .entry(labels)
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// The `function` label of a call of `function` (a ZID, or a fixed word such as
    /// `(inline)`): the ZID when the catalogue or the store has it as a function, else
    /// `other`. Looks the ZID up in `repository` the first time, so call it from a blocking
    /// context. The look-up
    /// takes at most [`LABEL_READ_TIME`] (it runs after the call's answer, whatever time the
    /// call had left; it used to wait for a connection up to the store's own bound, 5 s on
    /// SQLite and 10 s on PostgreSQL): past it, the call counts as `other`.
    pub fn function_label(&self, repository: &dyn crate::Repository, function: &str) -> String {
        if function == "(inline)" {
            return function.into();
        }
        if !is_zid(function) {
            return OTHER.into();
        }
        let known = |set: &HashSet<String>| set.contains(function);
        if known(
            &self
                .known_functions
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        ) {
            return function.into();
        }
        let stored =
            zeval_store::call_deadline::within(std::time::Instant::now() + LABEL_READ_TIME, || {
                repository.get(function)
            });
        // A function only: the catalogue alone holds more objects than the metric has
        // series (its 885 languages among them), and a call of any of them counted under its
        // ZID, so 1,000 calls of languages, cheap errors, left every real function counted
        // as `other` until a restart.
        let is_function = |z2: &zeval_zobject::Value| {
            z2.get("Z2K2").and_then(zeval_zobject::build::type_zid) == Some("Z8")
        };
        if !matches!(&stored, Ok(Some(z2)) if is_function(z2)) {
            return OTHER.into();
        }
        let mut set = self
            .known_functions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if set.len() < MAX_SERIES_PER_METRIC {
            set.insert(function.to_owned());
        }
        function.into()
    }

    /// Counts a call in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Adds values read at every scrape.
    pub fn add_sampler(&self, sampler: Sampler) {
        self.samplers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sampler);
    }

    /// Adds one counter, `name`, whose value `read` gives at every scrape.
    pub fn add_counter(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.add_sampler(Box::new(move || {
            vec![Sample {
                name,
                kind: "counter",
                help,
                value: read() as f64,
            }]
        }));
    }

    /// Adds labelled series written at every scrape.
    pub fn add_text_sampler(&self, sampler: TextSampler) {
        self.text_samplers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sampler);
    }

    /// The current value of a counter (for tests and the CLI).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters
            .get(name)
            .into_iter()
            .flat_map(|series| series.iter())
            .filter(|(l, _)| {
                labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// [`Metrics::render`] for a scrape that arrived at `arrived`, shared with the scrapes
    /// that wait with it: renders run one at a time, each on a blocking thread, and a scrape
    /// takes the text of a render that started after it arrived, its own or another's. Each
    /// render reads the store (an object count), takes the ranking's lock and every
    /// counter's, and `/metrics` is open to anyone: until 2026-12-06 every scrape rendered,
    /// all at once, so a client with its 256 connections on the route could fill the
    /// blocking threads that calls run on and hold a store reader each. Now any number of
    /// scrapes at once cost about two renders.
    pub async fn render_shared(
        self: &Arc<Self>,
        arrived: Instant,
    ) -> Result<axum::body::Bytes, String> {
        // A task of its own, which holds the lock until its render is done: a scrape whose
        // client hung up is dropped, and with it a lock it held, while its render went on,
        // so clients that connect and close could have renders run side by side again.
        let metrics = self.clone();
        tokio::spawn(async move {
            let mut last = metrics.last_render.lock().await;
            if let Some((started, text)) = &*last
                && *started >= arrived
            {
                return Ok(text.clone());
            }
            let started = Instant::now();
            let rendering = metrics.clone();
            let text = axum::body::Bytes::from(
                tokio::task::spawn_blocking(move || rendering.render())
                    .await
                    .map_err(|e| e.to_string())?,
            );
            *last = Some((started, text.clone()));
            Ok(text)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        {
            let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            for (name, series) in counters.iter() {
                let _ = writeln!(out, "# HELP {name} {}", help(name));
                let _ = writeln!(out, "# TYPE {name} counter");
                for (labels, value) in series {
                    let _ = writeln!(out, "{name}{} {value}", label_text(labels, None));
                }
            }
        }
        {
            let histograms = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
            for (name, series) in histograms.iter() {
                let _ = writeln!(out, "# HELP {name} {}", help(name));
                let _ = writeln!(out, "# TYPE {name} histogram");
                for (labels, h) in series {
                    let mut cumulative = 0;
                    for (bound, n) in LATENCY_BUCKETS.iter().zip(&h.counts) {
                        cumulative += n;
                        let le = format!("{bound}");
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {cumulative}",
                            label_text(labels, Some(&le))
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        label_text(labels, Some("+Inf")),
                        h.count
                    );
                    let _ = writeln!(out, "{name}_sum{} {}", label_text(labels, None), h.sum);
                    let _ = writeln!(out, "{name}_count{} {}", label_text(labels, None), h.count);
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP zeval_calls_in_flight Function calls being orchestrated now."
        );
        let _ = writeln!(out, "# TYPE zeval_calls_in_flight gauge");
        let _ = writeln!(
            out,
            "zeval_calls_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let samplers = self.samplers.lock().unwrap_or_else(|e| e.into_inner());
        for sample in samplers.iter().flat_map(|s| s()) {
            let _ = writeln!(out, "# HELP {} {}", sample.name, sample.help);
            let _ = writeln!(out, "# TYPE {} {}", sample.name, sample.kind);
            let _ = writeln!(out, "{} {}", sample.name, sample.value);
        }
        drop(samplers);
        let text_samplers = self.text_samplers.lock().unwrap_or_else(|e| e.into_inner());
        for sampler in text_samplers.iter() {
            out.push_str(&sampler());
        }
        out
    }
}

fn label_text(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scrapes at once share renders, each of which samples the store and takes the
    /// ranking's lock: 32 scrapes rendered 32 times, all at once, on 32 blocking threads.
    /// Scrapes whose clients hang up do not make renders overlap either. A scrape still sees
    /// what was counted before it arrived.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scrapes_at_once_share_renders() {
        use std::sync::atomic::AtomicUsize;
        let metrics = Arc::new(Metrics::default());
        let renders = Arc::new(AtomicUsize::new(0));
        let counted = renders.clone();
        metrics.add_sampler(Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            Vec::new()
        }));
        let scrape = |metrics: &Arc<Metrics>| {
            let metrics = metrics.clone();
            tokio::spawn(async move { metrics.render_shared(Instant::now()).await })
        };
        let scrapes: Vec<_> = (0..32).map(|_| scrape(&metrics)).collect();
        for scrape in scrapes {
            scrape.await.unwrap().unwrap();
        }
        let rendered = renders.load(Ordering::SeqCst);
        assert!(rendered <= 3, "{rendered} renders for 32 scrapes at once");
        // Scrapes dropped while they wait or render (clients that hang up): each batch
        // shares one render at most (2 here). A dropped scrape let the next one start a
        // render while its own went on: about one a batch.
        let before = renders.load(Ordering::SeqCst);
        for _ in 0..16 {
            let dropped: Vec<_> = (0..4).map(|_| scrape(&metrics)).collect();
            tokio::time::sleep(Duration::from_millis(10)).await;
            for scrape in dropped {
                scrape.abort();
            }
        }
        scrape(&metrics).await.unwrap().unwrap();
        let rendered = renders.load(Ordering::SeqCst) - before;
        assert!(
            rendered <= 10,
            "{rendered} renders for 16 batches of dropped scrapes and one"
        );
        metrics.inc("zeval_tester_runs_total", &[("outcome", "pass")]);
        let text = metrics.render_shared(Instant::now()).await.unwrap();
        let text = String::from_utf8_lossy(&text);
        assert!(
            text.contains("zeval_tester_runs_total{outcome=\"pass\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn renders_counters_histograms_and_samples() {
        let m = Metrics::default();
        m.inc(
            "zeval_calls_total",
            &[("function", "Z10000"), ("outcome", "success")],
        );
        m.inc(
            "zeval_calls_total",
            &[("function", "Z10000"), ("outcome", "success")],
        );
        m.inc(
            "zeval_calls_total",
            &[("function", "a\"b"), ("outcome", "error")],
        );
        m.observe(
            "zeval_call_duration_seconds",
            &[("implementation_type", "BuiltIn")],
            Duration::from_millis(3),
        );
        m.add_sampler(Box::new(|| {
            vec![Sample {
                name: "zeval_store_objects",
                kind: "gauge",
                help: "Objects.",
                value: 7.0,
            }]
        }));
        let _guard = m.in_flight();
        let text = m.render();
        assert!(
            text.contains("zeval_calls_total{function=\"Z10000\",outcome=\"success\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("zeval_calls_total{function=\"a\\\"b\",outcome=\"error\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("zeval_call_duration_seconds_bucket{implementation_type=\"BuiltIn\",le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("zeval_call_duration_seconds_bucket{implementation_type=\"BuiltIn\",le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("zeval_call_duration_seconds_bucket{implementation_type=\"BuiltIn\",le=\"+Inf\"} 1\n"), "{text}");
        assert!(
            text.contains("zeval_call_duration_seconds_count{implementation_type=\"BuiltIn\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("zeval_calls_in_flight 1\n"), "{text}");
        assert!(text.contains("zeval_store_objects 7\n"), "{text}");
        assert_eq!(m.counter("zeval_calls_total", &[("function", "Z10000")]), 2);
    }

    #[test]
    fn series_past_the_cap_fold_into_other() {
        let m = Metrics::default();
        for i in 0..MAX_SERIES_PER_METRIC + 50 {
            let function = format!("Z{}", 10_000 + i);
            m.inc(
                "zeval_calls_total",
                &[("function", &function), ("outcome", "success")],
            );
            m.observe(
                "zeval_call_duration_seconds",
                &[("function", &function)],
                Duration::from_millis(1),
            );
        }
        let text = m.render();
        let calls = text
            .lines()
            .filter(|l| l.starts_with("zeval_calls_total{"))
            .count();
        assert_eq!(calls, MAX_SERIES_PER_METRIC + 1, "one extra series: other");
        assert_eq!(
            m.counter(
                "zeval_calls_total",
                &[("function", OTHER), ("outcome", OTHER)]
            ),
            50
        );
        let histograms = text
            .lines()
            .filter(|l| l.starts_with("zeval_call_duration_seconds_count{"))
            .count();
        assert_eq!(histograms, MAX_SERIES_PER_METRIC + 1);
        // A label set that already has its series keeps it.
        m.inc(
            "zeval_calls_total",
            &[("function", "Z10000"), ("outcome", "success")],
        );
        assert_eq!(m.counter("zeval_calls_total", &[("function", "Z10000")]), 2);
    }

    #[test]
    fn labels_take_only_known_values() {
        assert_eq!(language_label("python-3-9"), "python-3-9");
        assert_eq!(language_label("javascript"), "javascript");
        assert_eq!(language_label("python-4-evil"), OTHER);
        assert_eq!(implementation_type_label(Some("BuiltIn")), "BuiltIn");
        assert_eq!(implementation_type_label(Some("x\ny")), OTHER);
        assert_eq!(implementation_type_label(None), "none");
        assert!(is_zid("Z10000") && is_zid("Z1"));
        assert!(!is_zid("Z0") && !is_zid("Z01") && !is_zid("Z") && !is_zid("Z1K1"));
    }
}
