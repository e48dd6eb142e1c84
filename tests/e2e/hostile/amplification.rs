//! Item 4: small requests that ask for a lot. `POST /v1/test` accepted duplicate
//! implementations and testers (a 90 KB body asked for 36 million cells), and `/metrics`
//! labelled calls with the raw `Z7K1`, so every random function name added series forever.

use std::time::Instant;

use serde_json::json;

use super::{Client, DEADLINE, MARGIN, Target, one_at_a_time, prefix, put};
use crate::common::z2;

/// Calls with made-up function names.
const RANDOM_NAMES: usize = 300;
/// How many lines `/metrics` may grow by for all of them together.
const METRICS_GROWTH_LINES: usize = 20;

#[test]
fn test_runs_and_metrics_cannot_be_amplified() {
    let _serial = one_at_a_time();
    let mut target = Target::start(&[]);
    let orch = target.orch().to_owned();
    // A tester for Z10000, so that the matrix has a row.
    let tester = z2(
        "Z10002",
        json!({"Z1K1": "Z20", "Z20K1": "Z10000",
               "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "ab"},
               "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": "AB"}}),
    );
    put(&orch, &target.editor, "Z10002", &tester);
    let mut function: serde_json::Value = serde_json::from_str(
        &crate::common::request("GET", &format!("{orch}/v1/objects/Z10000"), None, None).text,
    )
    .unwrap();
    function["Z2K2"]["Z8K3"] = json!(["Z20", "Z10002"]);
    put(&orch, &target.editor, "Z10000", &function);
    target.remember("Z10000");
    target.remember("Z10002");

    let client = Client::new(&orch, Some(&target.editor), DEADLINE + MARGIN);
    let honest = client
        .post("/v1/test", &json!({"function": "Z10000"}))
        .unwrap();
    assert_eq!(honest.status, 200, "{}", honest.text);
    assert_eq!(honest.json()["passed"], 1, "{}", honest.text);

    let test_run = |what: &str, body: serde_json::Value| {
        let started = Instant::now();
        let answer = client
            .post("/v1/test", &body)
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let took = started.elapsed();
        assert!(
            matches!(answer.status, 400 | 413),
            "{what}: status {} after {took:?}: {}",
            answer.status,
            prefix(&answer.text)
        );
        assert!(took <= MARGIN, "{what}: refused only after {took:?}");
        eprintln!("item 4, {what}: {} in {took:?}", answer.status);
    };
    test_run(
        "duplicate implementations",
        json!({"function": "Z10000", "implementations": ["Z10001", "Z10001"]}),
    );
    test_run(
        "duplicate testers",
        json!({"function": "Z10000", "testers": ["Z10002", "Z10002"]}),
    );
    // About 90 KB asking for 3,000 × 3,000 = 9 million cells.
    let many = 3_000;
    test_run(
        "nine million cells",
        json!({"function": "Z10000",
               "implementations": vec!["Z10001"; many],
               "testers": vec!["Z10002"; many]}),
    );

    // Random function names do not each add series to /metrics.
    let anonymous = Client::new(&orch, None, DEADLINE + MARGIN);
    let lines = |client: &Client| client.get("/metrics").unwrap().text.lines().count();
    // One call first, so the series every call adds exist before counting.
    let _ = anonymous.evaluate(&json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "warm"}));
    let _ = anonymous.evaluate(&json!({"Z1K1": "Z7", "Z7K1": "Z99999999", "Z99999999K1": "w"}));
    let before = lines(&anonymous);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let started = Instant::now();
    for i in 0..RANDOM_NAMES {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // Half look like ZIDs that do not exist, half are not ZIDs at all.
        let name = if i % 2 == 0 {
            format!("Z{}", 20_000_000 + seed % 1_000_000_000)
        } else {
            format!("no-such-function-{seed:x}")
        };
        let answer = anonymous
            .evaluate(&json!({"Z1K1": "Z7", "Z7K1": name}))
            .unwrap_or_else(|e| panic!("call of {name}: {e}"));
        assert!(
            answer.status == 200 || (400..500).contains(&answer.status),
            "call of {name}: {}",
            answer.status
        );
    }
    let after = lines(&anonymous);
    eprintln!(
        "item 4, {RANDOM_NAMES} random function names in {:?}: /metrics {before} → {after} lines",
        started.elapsed()
    );
    assert!(
        after <= before + METRICS_GROWTH_LINES,
        "/metrics grew from {before} to {after} lines for {RANDOM_NAMES} made-up function names"
    );
    target.assert_survived();
}

/// Plans (`POST /v1/plan`) of a function only the wiki could know ask the wiki once: the ZID
/// is then remembered as missing, as for calls. Each plan used to make its own wiki source,
/// so every request sent the made-up ZID to the wiki again.
#[test]
fn plans_of_a_made_up_function_ask_the_wiki_once() {
    let _serial = one_at_a_time();
    let wiki = super::MockWiki::start(Vec::new(), std::time::Duration::ZERO);
    let target = Target::start(&[("ZEVAL_WIKI_URL", &wiki.url)]);
    let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10603", "Z10603K1": "x"}});
    for _ in 0..3 {
        let answer = crate::common::request(
            "POST",
            &format!("{}/v1/plan", target.orch()),
            None,
            Some(&body),
        );
        assert_eq!(answer.status, 200, "{}", prefix(&answer.text));
    }
    assert_eq!(wiki.requests_for("Z10603"), 1, "the wiki was asked again");
    target.assert_survived();
}
