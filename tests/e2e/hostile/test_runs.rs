//! Test runs (`POST /v1/test`) run in place on the server's async threads
//! (`zeval_server`'s `blocking::run`, tokio's `block_in_place`), which is only safe while the
//! runtime hands those threads' other work elsewhere. Test runs that each hold a thread for a
//! whole call deadline must not hold up anyone else's requests.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{Client, MARGIN, Target, one_at_a_time, prefix, put};
use crate::common::z2;

/// The call deadline of this server: each test run below lasts about this long.
const DEADLINE: Duration = Duration::from_millis(3_000);
/// Concurrent test runs: three times the async threads of a 2-core machine.
const RUNS: usize = 6;
/// How long a health check or a built-in call of another client may take meanwhile: far
/// below the deadline, which is what they would wait if the runs held the async threads.
const OTHERS_LIMIT: Duration = Duration::from_millis(1_000);

#[test]
fn test_runs_that_hold_their_threads_do_not_hold_up_other_requests() {
    let _serial = one_at_a_time();
    let deadline = DEADLINE.as_millis().to_string();
    let target = Target::start(&[("ZEVAL_CALL_TIMEOUT_MS", &deadline)]);
    let orch = target.orch().to_owned();
    let function = z2(
        "Z10010",
        json!({"Z1K1": "Z8",
               "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10010K1",
                        "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
               "Z8K2": "Z6", "Z8K3": ["Z20", "Z10012"], "Z8K4": ["Z14", "Z10011"],
               "Z8K5": "Z10010"}),
    );
    let endless = z2(
        "Z10011",
        json!({"Z1K1": "Z14", "Z14K1": "Z10010",
               "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
                         "Z16K2": "function Z10010( Z10010K1 ) { while ( true ) {} }"}}),
    );
    let tester = z2(
        "Z10012",
        json!({"Z1K1": "Z20", "Z20K1": "Z10010",
               "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z10010", "Z10010K1": "x"},
               "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": "x"}}),
    );
    for (zid, object) in [
        ("Z10011", endless),
        ("Z10012", tester),
        ("Z10010", function),
    ] {
        put(&orch, &target.editor, zid, &object);
    }

    let runs: Vec<_> = (0..RUNS)
        .map(|_| {
            let client = Client::new(&orch, Some(&target.editor), DEADLINE * 2 + MARGIN);
            std::thread::spawn(move || {
                let started = Instant::now();
                let answer = client.post("/v1/test", &json!({"function": "Z10010"}));
                (answer, started.elapsed())
            })
        })
        .collect();
    // Every run has started its cell by now.
    std::thread::sleep(Duration::from_millis(500));

    let others = Client::new(&orch, Some(&target.neighbour), DEADLINE + MARGIN);
    let started = Instant::now();
    let health = others
        .get("/healthz")
        .expect("the health check got no answer");
    let health_took = started.elapsed();
    assert_eq!(health.status, 200, "{}", prefix(&health.text));
    let started = Instant::now();
    let call = others
        .evaluate(&json!({"Z1K1": "Z7", "Z7K1": "Z802",
                          "Z802K1": {"Z1K1": "Z40", "Z40K1": "Z41"},
                          "Z802K2": "yes", "Z802K3": "no"}))
        .expect("the built-in call got no answer");
    let call_took = started.elapsed();
    assert_eq!(call.json()["Z22K1"], "yes", "{}", prefix(&call.text));
    eprintln!(
        "during {RUNS} test runs of endless code: /healthz {health_took:?}, a built-in call {call_took:?}"
    );
    assert!(
        health_took <= OTHERS_LIMIT && call_took <= OTHERS_LIMIT,
        "other requests waited for the test runs: /healthz {health_took:?}, a call {call_took:?}"
    );

    for run in runs {
        let (answer, took) = run.join().unwrap();
        let answer = answer.unwrap_or_else(|e| panic!("a test run got no answer: {e}"));
        assert_eq!(answer.status, 200, "{}", prefix(&answer.text));
        let matrix = answer.json();
        assert_eq!(
            (matrix["total"].as_u64(), matrix["passed"].as_u64()),
            (Some(1), Some(0)),
            "{}",
            prefix(&answer.text)
        );
        assert!(
            took >= DEADLINE,
            "a run of endless code ended after {took:?}"
        );
    }
    target.assert_survived();
}
