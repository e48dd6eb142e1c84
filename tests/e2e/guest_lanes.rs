//! Guest lanes (`zeval_server::guest_lanes`) in a real evaluator node with its guests in
//! process: the calls run on the configured number of lane threads, and a call that finds the
//! only lane held by a long one does not wait for it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, request};

/// The long call's deadline, in seconds (`remainingTime`).
const LONG_CALL_SECONDS: f64 = 3.0;
/// How long a trivial call may take while the long one holds the lane: far less than the long
/// call, which is what it would wait without the lanes' bounds.
const TRIVIAL_CALL_LIMIT: Duration = Duration::from_millis(1_000);

fn executor_body(code: &str, remaining_seconds: f64) -> Value {
    json!({
        "reentrant": false,
        "remainingTime": remaining_seconds,
        "codingLanguage": "javascript",
        "codeString": code,
        "functionName": "Z14071",
        "functionArguments": {
            "Z14071K1": {"Z1K1": "Z6", "Z6K1": "5"},
            "Z14071K2": {"Z1K1": "Z6", "Z6K1": "8"}
        }
    })
}

const ADD: &str =
    "function Z14071(Z14071K1, Z14071K2) { return String(Number(Z14071K1) + Number(Z14071K2)); }";
const SPIN: &str = "function Z14071(Z14071K1, Z14071K2) { while (true) {} }";

fn thread_names(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let comm = task.unwrap().path().join("comm");
        if let Ok(name) = std::fs::read_to_string(comm) {
            names.push(name.trim().to_owned());
        }
    }
    names
}

#[test]
fn a_call_beside_a_long_one_on_the_only_lane_is_not_held_up() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(
        data.path(),
        &["--role", "evaluator"],
        &[("ZEVAL_WORKERS", "false"), ("ZEVAL_GUEST_LANES", "1")],
    );
    let url = format!(
        "{}/wikifunctions.org/v1/evaluate/",
        server.evaluator.as_deref().unwrap()
    );
    let lanes: Vec<String> = thread_names(server.pid())
        .into_iter()
        .filter(|name| name.starts_with("zeval-lane-"))
        .collect();
    assert_eq!(lanes, ["zeval-lane-0"]);

    let add = executor_body(ADD, 10.0);
    for _ in 0..3 {
        let answer = request("POST", &url, None, Some(&add));
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.json()["Z22K1"]["Z6K1"], "13", "{}", answer.text);
    }

    let long = {
        let url = url.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let answer = request(
                "POST",
                &url,
                None,
                Some(&executor_body(SPIN, LONG_CALL_SECONDS)),
            );
            (answer, started.elapsed())
        })
    };
    // Let the long call take the lane.
    std::thread::sleep(Duration::from_millis(300));
    for attempt in 0..5 {
        let started = Instant::now();
        let answer = request("POST", &url, None, Some(&add));
        let took = started.elapsed();
        assert_eq!(answer.json()["Z22K1"]["Z6K1"], "13", "{}", answer.text);
        assert!(
            took < TRIVIAL_CALL_LIMIT,
            "trivial call {attempt} took {took:?} beside the long call"
        );
    }
    let (answer, took) = long.join().unwrap();
    assert!(
        took >= Duration::from_secs_f64(LONG_CALL_SECONDS * 0.5),
        "the long call ended after {took:?}, before the trivial calls were checked"
    );
    assert!(answer.text.contains("Z5"), "{}", answer.text);
    // The lane serves again once the long call is over.
    let answer = request("POST", &url, None, Some(&add));
    assert_eq!(answer.json()["Z22K1"]["Z6K1"], "13", "{}", answer.text);
    // Each trivial call beside the long one ran on a thread of its own: taken back from the
    // queue, or (the lane held for longer than the wait) never queued. The last call may have
    // come while the lane was still resetting the long call's instance, and skipped it too.
    let info = request(
        "GET",
        &format!("{}/_info", server.evaluator.as_deref().unwrap()),
        None,
        None,
    );
    let lanes = &info.json()["guest_lanes"];
    assert_eq!(lanes["lanes"], 1, "{}", info.text);
    assert_eq!(lanes["queued"], 0, "{}", info.text);
    let bypassed = lanes["skipped_held"].as_u64().unwrap() + lanes["taken_back"].as_u64().unwrap();
    assert!((5..=6).contains(&bypassed), "{}", info.text);
}
