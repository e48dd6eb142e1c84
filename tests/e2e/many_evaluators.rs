//! One orchestrator and three `--role evaluator` processes listed in one `[evaluators]`
//! entry: calls spread over all three; under a steady load of calls, one evaluator killed
//! with SIGKILL is marked down and its calls go to the others (none lost), and once
//! restarted it gets calls again; another one sent SIGTERM drains (its calls in flight
//! finish, new ones go elsewhere) and exits cleanly, and no call fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, add_user, request, z2};

/// A JavaScript function that works a little (tens of milliseconds), so that calls are in
/// flight when an evaluator is killed or drained, and answers its argument upper-cased.
pub(crate) fn put_slow_function(orch: &str, token: &str) {
    let function = z2(
        "Z10010",
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10010K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10011"], "Z8K5": "Z10010",
        }),
    );
    let code = "function Z10010( Z10010K1 ) { let x = 0; \
                for (let i = 0; i < 200000; i++) { x += i % 7; } \
                return x > 0 ? Z10010K1.toUpperCase() : ''; }";
    let implementation = z2(
        "Z10011",
        json!({
            "Z1K1": "Z14", "Z14K1": "Z10010",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2": code},
        }),
    );
    for (zid, object) in [("Z10010", function), ("Z10011", implementation)] {
        crate::common::put_object(orch, token, zid, &object);
    }
}

/// Calls the slow function on `text`; `Ok` when the answer is `text` upper-cased, else the
/// answer.
fn slow_call(orch: &str, text: &str) -> Result<(), String> {
    let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10010", "Z10010K1": text}});
    let answer = request(
        "POST",
        &format!("{orch}/wikifunctions.org/v1/evaluate/"),
        None,
        Some(&body),
    );
    let z22: Value = serde_json::from_str(&answer.text).map_err(|_| answer.text.clone())?;
    if answer.status == 200 && z22["Z22K1"] == text.to_uppercase() {
        Ok(())
    } else {
        Err(answer.text)
    }
}

/// The value of `name{endpoint="url"}` in the orchestrator's `/metrics`.
pub(crate) fn endpoint_metric(orch: &str, name: &str, url: &str) -> f64 {
    let text = request("GET", &format!("{orch}/metrics"), None, None).text;
    let prefix = format!("{name}{{endpoint=\"{url}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{text}"))
}

/// Waits (at most `limit`) until `condition` holds.
pub(crate) fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Outcome {
    took: Duration,
    result: Result<(), String>,
}

/// `--role evaluator` processes of a test, each with its own (unused) data directory.
pub(crate) struct Evaluators {
    pub(crate) dirs: Vec<tempfile::TempDir>,
    /// `None` once a test has stopped one.
    pub(crate) servers: Vec<Option<Server>>,
    /// Where each listens (`host:port`), to restart it there.
    pub(crate) addresses: Vec<String>,
    /// Each one's evaluate route, as orchestrators list it.
    pub(crate) urls: Vec<String>,
}

impl Evaluators {
    /// Writes `dir/zeval.toml` listing every evaluator for every language, with quick health
    /// checks, and returns its path.
    pub(crate) fn write_failover_config(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let config = dir.join("zeval.toml");
        std::fs::write(
            &config,
            format!(
                "[evaluators]\n\"*\" = {{ urls = {:?} }}\n\
                 [failover]\nhealth_interval_ms = 200\nhealth_timeout_ms = 500\n",
                self.urls
            ),
        )
        .unwrap();
        config
    }
}

/// Starts `count` evaluators with `env`.
pub(crate) fn start_evaluators(count: usize, env: &[(&str, &str)]) -> Evaluators {
    let dirs: Vec<_> = (0..count).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers: Vec<Option<Server>> = dirs
        .iter()
        .map(|dir| Some(Server::start(dir.path(), &["--role", "evaluator"], env)))
        .collect();
    let addresses: Vec<String> = servers
        .iter()
        .map(|e| {
            let url = e.as_ref().unwrap().evaluator.clone().unwrap();
            url.trim_start_matches("http://").to_owned()
        })
        .collect();
    let urls = addresses
        .iter()
        .map(|addr| format!("http://{addr}/wikifunctions.org/v1/evaluate/"))
        .collect();
    Evaluators {
        dirs,
        servers,
        addresses,
        urls,
    }
}

#[test]
fn calls_spread_fail_over_and_drain() {
    let started = start_evaluators(3, &[]);
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "alice", "editor");
    let config = started.write_failover_config(data.path());
    let Evaluators {
        dirs: evaluator_dirs,
        servers: mut evaluators,
        addresses,
        urls,
    } = started;
    // Every call must reach an evaluator.
    let orchestrator =
        Server::start_orchestrator(data.path(), &config, &[("ZEVAL_CACHE", "false")]);
    let orch = orchestrator.orch().to_owned();
    put_slow_function(&orch, &token);

    // Sequential calls spread over all three (equal loads go round-robin).
    for i in 0..12 {
        slow_call(&orch, &format!("spread {i}")).unwrap();
    }
    for url in &urls {
        let sent = endpoint_metric(&orch, "zeval_evaluator_requests_total", url);
        assert!(sent >= 2.0, "{url} got {sent} of 12 calls");
    }

    // A steady load: four clients calling one after another.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (stop, outcomes, orch) = (stop.clone(), outcomes.clone(), orch.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let result = slow_call(&orch, &format!("client {client} call {n}"));
                    let took = started.elapsed();
                    outcomes.lock().unwrap().push(Outcome { took, result });
                    n += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));

    // SIGKILL the first: it is marked down, its calls go elsewhere.
    let killed = evaluators[0].take().unwrap();
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(killed.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    wait_until(
        "the killed evaluator is marked down",
        Duration::from_secs(5),
        || endpoint_metric(&orch, "zeval_evaluator_healthy", &urls[0]) < 0.5,
    );
    drop(killed);
    std::thread::sleep(Duration::from_secs(1));

    // Restarted where it was, it is found healthy and gets calls again.
    let before = endpoint_metric(&orch, "zeval_evaluator_requests_total", &urls[0]);
    evaluators[0] = Some(Server::start_on(
        &addresses[0],
        evaluator_dirs[0].path(),
        &["--role", "evaluator"],
        &[],
    ));
    wait_until(
        "the restarted evaluator gets calls again",
        Duration::from_secs(10),
        || {
            endpoint_metric(&orch, "zeval_evaluator_healthy", &urls[0]) > 0.5
                && endpoint_metric(&orch, "zeval_evaluator_requests_total", &urls[0]) > before
        },
    );

    // SIGTERM the second, when it has a call in flight if one shows within 2 s: it drains
    // and exits cleanly.
    let looking = Instant::now();
    while looking.elapsed() < Duration::from_secs(2)
        && endpoint_metric(&orch, "zeval_evaluator_outstanding", &urls[1]) < 0.5
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let drained = evaluators[1].take().unwrap();
    assert!(drained.stop(), "the drained evaluator did not exit cleanly");
    std::thread::sleep(Duration::from_secs(1));
    assert!(endpoint_metric(&orch, "zeval_evaluator_healthy", &urls[1]) < 0.5);

    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let outcomes = outcomes.lock().unwrap();
    let call_timeout = Duration::from_millis(20_000);
    let lost: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| match &o.result {
            Ok(()) => false,
            // A failure is allowed only as a typed error once the call's deadline passed.
            Err(text) => !(o.took >= call_timeout && text.contains("Z5")),
        })
        .collect();
    let retries: f64 = urls
        .iter()
        .map(|url| endpoint_metric(&orch, "zeval_evaluator_retries_total", url))
        .sum();
    eprintln!(
        "many evaluators: {} calls under load, {} lost, {retries} runs sent on to another \
         evaluator",
        outcomes.len(),
        lost.len()
    );
    assert!(outcomes.len() >= 20, "too few calls: {}", outcomes.len());
    assert!(
        lost.is_empty(),
        "calls lost: {:?}",
        lost.iter().map(|o| &o.result).collect::<Vec<_>>()
    );
}

/// The drain is bounded: an evaluator sent SIGTERM while a call runs past
/// `failover.drain_timeout_ms` leaves anyway (within that timeout and the runtime's grace),
/// and the orchestrator answers the call with a typed error.
#[test]
fn a_drain_that_does_not_end_is_cut_at_its_timeout() {
    let evaluator_data = tempfile::tempdir().unwrap();
    let evaluator = Server::start(
        evaluator_data.path(),
        &["--role", "evaluator"],
        &[("ZEVAL_DRAIN_TIMEOUT_MS", "500")],
    );
    let url = format!(
        "{}/wikifunctions.org/v1/evaluate/",
        evaluator.evaluator.as_deref().unwrap()
    );
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "alice", "editor");
    let orchestrator = Server::start(
        data.path(),
        &["--role", "orchestrator"],
        &[
            ("ZEVAL_EVALUATOR_URL", &url),
            ("ZEVAL_CACHE", "false"),
            ("ZEVAL_CALL_TIMEOUT_MS", "8000"),
        ],
    );
    let orch = orchestrator.orch().to_owned();
    let function = z2(
        "Z10020",
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10020K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10021"], "Z8K5": "Z10020",
        }),
    );
    let implementation = z2(
        "Z10021",
        json!({
            "Z1K1": "Z14", "Z14K1": "Z10020",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
                      "Z16K2": "function Z10020( Z10020K1 ) { while (true) {} }"},
        }),
    );
    for (zid, object) in [("Z10020", function), ("Z10021", implementation)] {
        crate::common::put_object(&orch, &token, zid, &object);
    }
    let caller = {
        let orch = orch.clone();
        std::thread::spawn(move || {
            let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10020", "Z10020K1": "x"}});
            let started = Instant::now();
            let answer = request(
                "POST",
                &format!("{orch}/wikifunctions.org/v1/evaluate/"),
                None,
                Some(&body),
            );
            (started.elapsed(), answer)
        })
    };
    wait_until("the call is in flight", Duration::from_secs(10), || {
        endpoint_metric(&orch, "zeval_evaluator_outstanding", &url) > 0.5
    });
    let stopping = Instant::now();
    assert!(evaluator.stop(), "the evaluator did not exit cleanly");
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the drain took {took:?}, past its 500 ms timeout and the grace"
    );
    let (elapsed, answer) = caller.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.text.contains("Z5"), "{}", answer.text);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}
