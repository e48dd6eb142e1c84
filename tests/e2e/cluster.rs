//! The local cluster (issue 14, point 5): a PostgreSQL server and a `redis-server` started by
//! the test, two `--role orchestrator` processes on that one database and Redis (shared
//! result cache, per-client limits and ranking figures), and three `--role evaluator`
//! processes listed in both orchestrators. Under a steady load of calls through both
//! orchestrators, in phases of a few seconds: one evaluator is killed with SIGKILL and
//! restarted, another is sent SIGTERM (it drains and exits) and restarted, and orchestrator 2
//! is sent SIGTERM and started again on its port. No call may be lost: every call answers its
//! value, or a typed Z5 (or an HTTP 429/503 refusal) within its deadline; a connection error
//! is allowed only for orchestrator 2 while it is down. An object written through one
//! orchestrator is read through the other at once, and a cached result is invalidated on both
//! when a dependency changes. The figures table (calls, failures, p50/p99 per phase) is
//! printed for docs/operations.md.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, metadata, put_js_function, request, z2};
use crate::many_evaluators::{
    Evaluators, endpoint_metric, put_slow_function, start_evaluators, wait_until,
};
use crate::postgres::postgres_server;
use crate::result_cache::RedisServer;

/// The orchestrators' call timeout: a call answers within it (value or typed error).
const CALL_TIMEOUT: Duration = Duration::from_millis(5000);
/// What a client allows a call past [`CALL_TIMEOUT`] before it counts as lost (the answer's
/// own way back, a fail-over's retry, an orchestrator's graceful stop).
const GRACE: Duration = Duration::from_millis(2000);
/// Client threads; each alternates between the two orchestrators. Fewer than the default
/// per-client concurrency (8, counted in Redis across both nodes), so no call is refused
/// for it.
const CLIENTS: usize = 4;

const PHASES: [&str; 5] = [
    "before",
    "evaluator 1 SIGKILL + restart",
    "evaluator 2 SIGTERM + restart",
    "orchestrator 2 restart",
    "after",
];

/// How one call ended.
#[derive(Debug)]
enum Ending {
    /// The right value.
    Answered,
    /// A typed error (a Z22 whose `errors` is a Z5, or HTTP 429/503) within the deadline.
    Refused(String),
    /// No connection to the orchestrator (allowed only for orchestrator 2 while it is down).
    Unreachable(String),
    /// Anything else: a wrong value, an untyped error, or no answer within the deadline.
    Lost(String),
}

struct Outcome {
    phase: usize,
    /// Whether the call went to orchestrator 2 while it was being restarted.
    orchestrator_2_down: bool,
    took: Duration,
    ending: Ending,
}

/// Calls the slow function (Z10010, upper case) on `text` through `orch`, with a client
/// deadline of [`CALL_TIMEOUT`] + [`GRACE`].
fn load_call(orch: &str, text: &str) -> (Duration, Ending) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(CALL_TIMEOUT + GRACE))
        .build()
        .into();
    let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10010", "Z10010K1": text}});
    let started = Instant::now();
    let sent = agent
        .post(format!("{orch}/wikifunctions.org/v1/evaluate/"))
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes());
    let mut response = match sent {
        Ok(response) => response,
        Err(ureq::Error::Timeout(t)) => {
            return (started.elapsed(), Ending::Lost(format!("timeout {t:?}")));
        }
        Err(e) => return (started.elapsed(), Ending::Unreachable(e.to_string())),
    };
    let status = response.status().as_u16();
    let text_read = response.body_mut().read_to_string();
    let took = started.elapsed();
    let answer = match text_read {
        Ok(answer) => answer,
        Err(e) => return (took, Ending::Lost(format!("reading the answer: {e}"))),
    };
    let ending = match (status, serde_json::from_str::<Value>(&answer)) {
        (200, Ok(z22)) if z22["Z22K1"] == text.to_uppercase() => Ending::Answered,
        (200, Ok(z22))
            if took <= CALL_TIMEOUT + GRACE
                && metadata(&z22, "errors").is_some_and(|e| e["Z1K1"] == "Z5") =>
        {
            Ending::Refused(metadata(&z22, "errors").unwrap().to_string())
        }
        (429 | 503, _) if took <= CALL_TIMEOUT + GRACE => {
            Ending::Refused(format!("HTTP {status}: {answer}"))
        }
        _ => Ending::Lost(format!("HTTP {status}: {answer}")),
    };
    (took, ending)
}

/// The `q` quantile of `sorted`, in milliseconds (nearest rank).
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

/// Sends SIGKILL to `pid`.
fn kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// `call(arg)` of Z10000 through `orch`: its value and whether it came from the cache.
fn cached_call(orch: &str, text: &str) -> (Value, bool) {
    let answer = crate::common::call(orch, None, text);
    assert_eq!(answer.status, 200, "{}", answer.text);
    let z22 = answer.json();
    let cached = answer.text.contains("\"functionCallCachedOn\"");
    (z22["Z22K1"].clone(), cached)
}

/// Calls `call(text)` through `orch` until the answer comes from the cache, at most three
/// times, each answering `expected`. A node does not store the first answer it computes
/// after it learns of another node's write (it may have read the object from its own cache
/// before; see crates/cache/src/redis_backend.rs), so one call may be computed twice.
fn until_cached(orch: &str, text: &str, expected: &str) {
    for _ in 0..3 {
        let (value, cached) = cached_call(orch, text);
        assert_eq!(value, json!(expected));
        if cached {
            return;
        }
    }
    panic!("call({text}) through {orch} never came from the cache");
}

/// Puts Z10001 (the implementation of Z10000) with `body` as its JavaScript.
fn put_upper_case_implementation(orch: &str, token: &str, body: &str) {
    let implementation = z2(
        "Z10001",
        json!({
            "Z1K1": "Z14", "Z14K1": "Z10000",
            "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
                      "Z16K2": format!("function Z10000( Z10000K1 ) {{ {body} }}")},
        }),
    );
    crate::common::put_object(orch, token, "Z10001", &implementation);
}

/// Writes Z2 `zid` through `writer` and reads it through `reader` at once.
fn written_here_read_there(writer: &str, reader: &str, token: &str, zid: &str, value: &str) {
    let object = z2(zid, json!(value));
    crate::common::put_object(writer, token, zid, &object);
    let read = request("GET", &format!("{reader}/v1/objects/{zid}"), None, None);
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json(), object);
}

#[test]
fn a_local_cluster_loses_no_call_when_nodes_die_drain_and_restart() {
    let test_started = Instant::now();
    let database = postgres_server::fresh_database();
    let redis = RedisServer::start();
    let secret = "cluster-test-secret";
    let evaluator_env = [
        ("ZEVAL_EVALUATOR_SECRET", secret),
        ("ZEVAL_DRAIN_TIMEOUT_MS", "5000"),
    ];

    let started = start_evaluators(3, &evaluator_env);

    // Two orchestrators on one database and one Redis.
    let orchestrator_dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let config = started
        .write_failover_config(orchestrator_dirs[0].path())
        .display()
        .to_string();
    let Evaluators {
        dirs: evaluator_dirs,
        servers: mut evaluators,
        addresses,
        urls,
    } = started;
    let redis_url = redis.url();
    let call_timeout_ms = CALL_TIMEOUT.as_millis().to_string();
    let orchestrator_args = [
        "--role",
        "orchestrator",
        "--config",
        &config,
        "--database-url",
        &database,
    ];
    let orchestrator_env = [
        ("ZEVAL_EVALUATOR_SECRET", secret),
        ("ZEVAL_CACHE_REDIS_URL", redis_url.as_str()),
        ("ZEVAL_LIMITS_REDIS_URL", redis_url.as_str()),
        ("ZEVAL_RANKING_REDIS_URL", redis_url.as_str()),
        ("ZEVAL_CALL_TIMEOUT_MS", call_timeout_ms.as_str()),
        // A rate counted in Redis across both nodes, above what the load reaches.
        ("ZEVAL_PER_CLIENT_REQUESTS_PER_MINUTE", "100000"),
    ];
    let token = crate::common::add_user_with(
        orchestrator_dirs[0].path(),
        "alice",
        "editor",
        &["--database-url", &database],
    );
    let orchestrator_1 = Server::start(
        orchestrator_dirs[0].path(),
        &orchestrator_args,
        &orchestrator_env,
    );
    let mut orchestrator_2 = Some(Server::start(
        orchestrator_dirs[1].path(),
        &orchestrator_args,
        &orchestrator_env,
    ));
    let orch_1 = orchestrator_1.orch().to_owned();
    let orch_2 = orchestrator_2.as_ref().unwrap().orch().to_owned();
    let secret_refused = request("POST", &urls[0], None, Some(&json!({"zobject": "x"})));
    assert_eq!(secret_refused.status, 401, "{}", secret_refused.text);

    // Written through one orchestrator, read through the other at once.
    written_here_read_there(&orch_1, &orch_2, &token, "Z10100", "from orchestrator 1");
    written_here_read_there(&orch_2, &orch_1, &token, "Z10101", "from orchestrator 2");

    // A cached result, shared by both and invalidated on both when a dependency changes.
    put_js_function(&orch_1, &token);
    assert_eq!(cached_call(&orch_2, "probe"), (json!("PROBE"), false));
    until_cached(&orch_2, "probe", "PROBE");
    assert_eq!(cached_call(&orch_1, "probe"), (json!("PROBE"), true));
    put_upper_case_implementation(&orch_1, &token, "return Z10000K1.toUpperCase() + '!';");
    // Never the stale answer, on either node; the first call after the write computes.
    assert_eq!(cached_call(&orch_2, "probe"), (json!("PROBE!"), false));
    assert_eq!(cached_call(&orch_1, "probe").0, json!("PROBE!"));
    until_cached(&orch_1, "probe", "PROBE!");
    until_cached(&orch_2, "probe", "PROBE!");

    // The steady load: distinct arguments (so the cache never answers), alternating between
    // the orchestrators.
    put_slow_function(&orch_1, &token);
    let phase = Arc::new(AtomicUsize::new(0));
    let orchestrator_2_down = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (phase, down, stop, outcomes) = (
                phase.clone(),
                orchestrator_2_down.clone(),
                stop.clone(),
                outcomes.clone(),
            );
            let targets = [orch_1.clone(), orch_2.clone()];
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let to_2 = (n + client) % 2 == 1;
                    let down_before = to_2 && down.load(Ordering::SeqCst);
                    let in_phase = phase.load(Ordering::SeqCst);
                    let (took, ending) = load_call(
                        &targets[usize::from(to_2)],
                        &format!("client {client} call {n}"),
                    );
                    let down_after = to_2 && down.load(Ordering::SeqCst);
                    let unreachable = matches!(ending, Ending::Unreachable(_));
                    outcomes.lock().unwrap().push(Outcome {
                        phase: in_phase,
                        orchestrator_2_down: down_before || down_after,
                        took,
                        ending,
                    });
                    if unreachable {
                        // Not a busy loop against a closed port.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let healthy_on_both = |url: &str| {
        [&orch_1, &orch_2]
            .iter()
            .all(|orch| endpoint_metric(orch, "zeval_evaluator_healthy", url) > 0.5)
    };
    let mut phase_took = vec![Duration::ZERO; PHASES.len()];
    let mut phase_started = Instant::now();
    let mut next_phase = |phase_took: &mut Vec<Duration>| {
        let current = phase.load(Ordering::SeqCst);
        phase_took[current] = phase_started.elapsed();
        phase_started = Instant::now();
        phase.store(current + 1, Ordering::SeqCst);
    };

    // Phase 0: before.
    std::thread::sleep(Duration::from_secs(3));

    // Phase 1: SIGKILL evaluator 1, then restart it where it was.
    next_phase(&mut phase_took);
    let killed = evaluators[0].take().unwrap();
    kill(killed.pid());
    drop(killed);
    wait_until(
        "both orchestrators mark the killed evaluator down",
        Duration::from_secs(5),
        || !healthy_on_both(&urls[0]),
    );
    std::thread::sleep(Duration::from_secs(1));
    evaluators[0] = Some(Server::start_on(
        &addresses[0],
        evaluator_dirs[0].path(),
        &["--role", "evaluator"],
        &evaluator_env,
    ));
    wait_until(
        "the restarted evaluator is healthy on both orchestrators",
        Duration::from_secs(10),
        || healthy_on_both(&urls[0]),
    );
    std::thread::sleep(Duration::from_secs(1));

    // Phase 2: SIGTERM evaluator 2 (it drains and exits cleanly), then restart it.
    next_phase(&mut phase_took);
    let drained = evaluators[1].take().unwrap();
    assert!(drained.stop(), "the drained evaluator did not exit cleanly");
    std::thread::sleep(Duration::from_secs(1));
    evaluators[1] = Some(Server::start_on(
        &addresses[1],
        evaluator_dirs[1].path(),
        &["--role", "evaluator"],
        &evaluator_env,
    ));
    wait_until(
        "the restarted evaluator is healthy on both orchestrators",
        Duration::from_secs(10),
        || healthy_on_both(&urls[1]),
    );
    std::thread::sleep(Duration::from_secs(1));

    // Phase 3: SIGTERM orchestrator 2 (it finishes its calls and exits cleanly) and start it
    // again on its port; it reads what orchestrator 1 wrote meanwhile.
    next_phase(&mut phase_took);
    orchestrator_2_down.store(true, Ordering::SeqCst);
    assert!(
        orchestrator_2.take().unwrap().stop(),
        "orchestrator 2 did not exit cleanly"
    );
    let down_since = Instant::now();
    written_here_read_there(&orch_1, &orch_1, &token, "Z10102", "while 2 is down");
    let orch_2_address = orch_2.trim_start_matches("http://").to_owned();
    orchestrator_2 = Some(Server::start_listening(
        &orch_2_address,
        "127.0.0.1:0",
        orchestrator_dirs[1].path(),
        &orchestrator_args,
        &orchestrator_env,
    ));
    let orchestrator_2_downtime = down_since.elapsed();
    orchestrator_2_down.store(false, Ordering::SeqCst);
    let read = request("GET", &format!("{orch_2}/v1/objects/Z10102"), None, None);
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json()["Z2K2"], "while 2 is down");
    std::thread::sleep(Duration::from_secs(2));

    // Phase 4: after.
    next_phase(&mut phase_took);
    std::thread::sleep(Duration::from_secs(3));
    phase_took[PHASES.len() - 1] = phase_started.elapsed();
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }

    // The restarted orchestrator 2 still shares the cache: a result computed through it is
    // answered from the cache through orchestrator 1.
    assert_eq!(cached_call(&orch_2, "late"), (json!("LATE!"), false));
    until_cached(&orch_2, "late", "LATE!");
    assert_eq!(cached_call(&orch_1, "late"), (json!("LATE!"), true));

    let outcomes = outcomes.lock().unwrap();
    let retries: f64 = urls
        .iter()
        .map(|url| endpoint_metric(&orch_1, "zeval_evaluator_retries_total", url))
        .sum();
    eprintln!(
        "cluster: 2 orchestrators (PostgreSQL + Redis), 3 evaluators, {CLIENTS} clients, \
         call timeout {} ms; orchestrator 2 down {} ms; orchestrator 1 sent {retries} runs \
         on to another evaluator; whole test {:.1} s",
        CALL_TIMEOUT.as_millis(),
        orchestrator_2_downtime.as_millis(),
        test_started.elapsed().as_secs_f64()
    );
    eprintln!(
        "| phase | length s | calls | answered | failed (typed) | unreachable (orch. 2 down) | lost | p50 ms | p99 ms |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|");
    for (i, name) in PHASES.iter().enumerate() {
        let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.phase == i).collect();
        let count = |f: fn(&Ending) -> bool| mine.iter().filter(|o| f(&o.ending)).count();
        let mut answered: Vec<Duration> = mine
            .iter()
            .filter(|o| !matches!(o.ending, Ending::Unreachable(_)))
            .map(|o| o.took)
            .collect();
        answered.sort();
        eprintln!(
            "| {name} | {:.1} | {} | {} | {} | {} | {} | {:.0} | {:.0} |",
            phase_took[i].as_secs_f64(),
            mine.len(),
            count(|e| matches!(e, Ending::Answered)),
            count(|e| matches!(e, Ending::Refused(_))),
            count(|e| matches!(e, Ending::Unreachable(_))),
            count(|e| matches!(e, Ending::Lost(_))),
            quantile_ms(&answered, 0.5),
            quantile_ms(&answered, 0.99),
        );
    }

    // What the failures said (the first few of each kind), for the record.
    for (kind, said) in [
        (
            "typed failure",
            outcomes
                .iter()
                .filter_map(|o| match &o.ending {
                    Ending::Refused(why) => Some(why),
                    _ => None,
                })
                .take(5)
                .collect::<Vec<_>>(),
        ),
        (
            "unreachable",
            outcomes
                .iter()
                .filter_map(|o| match &o.ending {
                    Ending::Unreachable(why) => Some(why),
                    _ => None,
                })
                .take(3)
                .collect(),
        ),
        (
            "lost",
            outcomes
                .iter()
                .filter_map(|o| match &o.ending {
                    Ending::Lost(why) => Some(why),
                    _ => None,
                })
                .take(5)
                .collect(),
        ),
    ] {
        for why in said {
            eprintln!(
                "cluster: {kind}: {}",
                why.chars().take(300).collect::<String>()
            );
        }
    }

    for (i, name) in PHASES.iter().enumerate() {
        let made = outcomes.iter().filter(|o| o.phase == i).count();
        assert!(made >= 10, "too few calls in phase {name}: {made}");
    }
    let lost: Vec<(&str, &Ending)> = outcomes
        .iter()
        .filter(|o| match o.ending {
            Ending::Answered | Ending::Refused(_) => false,
            Ending::Unreachable(_) => !o.orchestrator_2_down,
            Ending::Lost(_) => true,
        })
        .map(|o| (PHASES[o.phase], &o.ending))
        .collect();
    assert!(lost.is_empty(), "calls lost: {lost:?}");
    // By the down flag, not the phase: a call's phase is read before it is sent, so a call
    // that began just before phase 3 may meet orchestrator 2 already stopping (seen once in
    // CI, 2026-12-05: one refused connection counted in phase 2).
    assert!(
        outcomes
            .iter()
            .all(|o| !matches!(o.ending, Ending::Unreachable(_)) || o.orchestrator_2_down),
        "orchestrator 2 was unreachable outside its restart"
    );
    drop(orchestrator_2);
    drop(orchestrator_1);
}
