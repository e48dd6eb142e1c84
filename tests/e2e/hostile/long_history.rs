//! Item 13: reads whose cost a writer (or anybody) can grow. `GET /v1/objects/{zid}/history`
//! used to answer every revision with its whole object (each up to the 100 KiB body limit,
//! and every `PUT` adds one), so a few anonymous requests for an object with thousands of
//! revisions allocated gigabytes; now it answers a page of at most
//! `DEFAULT_HISTORY_REVISIONS` (50) by default and `MAX_HISTORY_REVISIONS` (100) at most,
//! with a `next` cursor. And `GET /v1/objects?search=` compared a text of any length with
//! every label; now a text over `MAX_SEARCH_CHARS` (200) is refused.

use serde_json::{Value, json};

use super::{Target, one_at_a_time, prefix, put};
use crate::common::{request, z2};

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
