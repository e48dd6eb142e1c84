//! Item 13: reads whose cost a writer (or anybody) can grow. `GET /v1/objects/{zid}/history`
//! used to answer every revision with its whole object (each up to the 100 KiB body limit,
//! and every `PUT` adds one), so a few anonymous requests for an object with thousands of
//! revisions allocated gigabytes; now it answers a page of at most
//! `DEFAULT_HISTORY_REVISIONS` (50) by default and `MAX_HISTORY_REVISIONS` (100) at most,
//! with a `next` cursor. And `GET /v1/objects?search=` compared a text of any length with
//! every label; now a text over `MAX_SEARCH_CHARS` (200) is refused, and a search runs at
//! most `limits.search_time_ms` (1 s): a text that matches little reads every label.

use serde_json::{Value, json};

use super::{Target, one_at_a_time, prefix, put};
use crate::common::{request, z2};

/// Stores, as the target's editor, an object labelled `label` at each ZID number of `zids`.
fn put_labelled(target: &Target, zids: std::ops::Range<u64>, label: &str) {
    for number in zids {
        let zid = format!("Z{number}");
        let object = json!({
            "Z1K1": "Z2",
            "Z2K1": {"Z1K1": "Z6", "Z6K1": zid},
            "Z2K2": "padding",
            "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11",
                {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": label}]}
        });
        put(target.orch(), &target.editor, &zid, &object);
    }
}

/// The revision numbers of a `/history` answer.
fn revisions(history: &Value) -> Vec<u64> {
    history["revisions"]
        .as_array()
        .map(|page| page.iter().filter_map(|r| r["revision"].as_u64()).collect())
        .unwrap_or_default()
}

#[test]
fn a_long_history_comes_in_pages_and_a_long_search_is_refused() {
    let _serial = one_at_a_time();
    let mut target = Target::start(&[]);
    let orch = target.orch().to_owned();
    let zid = "Z10005";
    let padding = "x".repeat(4_000);
    for n in 1..=60 {
        put(
            &orch,
            &target.editor,
            zid,
            &z2(zid, json!(format!("revision {n} {padding}"))),
        );
    }
    target.remember(zid);
    let history = |query: &str| {
        let answer = request(
            "GET",
            &format!("{orch}/v1/objects/{zid}/history{query}"),
            None,
            None,
        );
        assert_eq!(
            answer.status,
            200,
            "history{query}: {}",
            prefix(&answer.text)
        );
        answer.json()
    };

    // Anonymous, no parameters: the first 50, oldest first, and where the next page starts.
    let first = history("");
    assert_eq!(revisions(&first), (1..=50).collect::<Vec<_>>());
    assert_eq!(
        first["next"],
        50,
        "no next cursor: {}",
        prefix(&first.to_string())
    );
    assert_eq!(
        first["revisions"][0]["object"]["Z2K2"]["Z6K1"]
            .as_str()
            .or(first["revisions"][0]["object"]["Z2K2"].as_str())
            .map(|s| s.starts_with("revision 1 ")),
        Some(true),
        "each revision still carries its object"
    );
    let rest = history("?after=50");
    assert_eq!(revisions(&rest), (51..=60).collect::<Vec<_>>());
    assert!(rest.get("next").is_none(), "a next past the last page");

    // A page of any size, and a huge limit clamped to the most a page holds (100).
    let middle = history("?after=3&limit=7");
    assert_eq!(revisions(&middle), (4..=10).collect::<Vec<_>>());
    assert_eq!(middle["next"], 10);
    assert_eq!(revisions(&history("?limit=1000000")).len(), 60);
    assert_eq!(revisions(&history("?limit=0")), [1]);

    // A search text of 10,000 characters is refused at once; 200 are still searched.
    let long = request(
        "GET",
        &format!("{orch}/v1/objects?search={}", "a".repeat(10_000)),
        None,
        None,
    );
    assert_eq!(long.status, 400, "long search: {}", prefix(&long.text));
    assert!(
        long.text.contains("200"),
        "the message names the limit: {}",
        long.text
    );
    let longest = request(
        "GET",
        &format!("{orch}/v1/objects?search={}", "a".repeat(200)),
        None,
        None,
    );
    assert_eq!(
        longest.status,
        200,
        "200 characters: {}",
        prefix(&longest.text)
    );
    let found = request(
        "GET",
        &format!("{orch}/v1/objects?search=Z10005"),
        None,
        None,
    );
    assert_eq!(found.status, 200, "{}", found.text);
    assert!(
        found.text.contains(zid),
        "search still finds {zid}: {}",
        found.text
    );
    target.assert_survived();
}

/// A search that scans past `limits.search_time_ms` is stopped and answered 503, and the
/// server reads on: searches used to run as long as the scan took,
/// holding one of the store's four read connections each, while calls and token checks
/// waited. (One millisecond here, with 3.6 MB of labels to read.)
#[test]
fn a_search_that_runs_past_its_time_limit_is_stopped() {
    let _serial = one_at_a_time();
    let target = Target::start(&[("ZEVAL_SEARCH_TIME_MS", "1")]);
    let orch = target.orch().to_owned();
    let label = "a long label that nobody searches for ".repeat(2_400);
    put_labelled(&target, 10_100..10_140, &label);
    let search = request(
        "GET",
        &format!("{orch}/v1/objects?search=zzz-not-there"),
        None,
        None,
    );
    assert_eq!(search.status, 503, "{}", prefix(&search.text));
    assert!(
        search
            .text
            .contains("search ran longer than its limit of 1 ms"),
        "{}",
        prefix(&search.text)
    );
    let object = request("GET", &format!("{orch}/v1/objects/Z10100"), None, None);
    assert_eq!(object.status, 200, "{}", prefix(&object.text));
}

/// A search hit carries the start of its object's label, not the whole of it: labels are
/// held only to the body limit (100 KiB), and the route is anonymous, so 500 hits of long
/// labels made an answer of 50 MB, read and built for each request (here 40 of 90,000
/// characters answered 3.6 MB). Now a label is cut after `MAX_SUMMARY_LABEL_CHARS` (200).
#[test]
fn search_hits_carry_the_start_of_long_labels() {
    let _serial = one_at_a_time();
    let target = Target::start(&[]);
    let orch = target.orch().to_owned();
    let label = format!("needle {}", "a long label ".repeat(7_000));
    put_labelled(&target, 10_200..10_240, &label);
    let search = request(
        "GET",
        &format!("{orch}/v1/objects?search=needle&limit=500"),
        None,
        None,
    );
    assert_eq!(search.status, 200, "{}", prefix(&search.text));
    let hits = search.json()["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(hits.len(), 40, "{}", prefix(&search.text));
    assert!(
        search.text.len() < 20_000,
        "40 hits answered {} bytes",
        search.text.len()
    );
    let shown: String = label.chars().take(200).collect();
    for hit in &hits {
        assert_eq!(hit["label"], format!("{shown}…"), "{hit}");
    }
    // The object keeps its whole label.
    let object = request("GET", &format!("{orch}/v1/objects/Z10200"), None, None);
    assert_eq!(object.status, 200, "{}", prefix(&object.text));
    assert!(object.text.contains(&label));
    target.assert_survived();
}
