//! The fastest implementation wins: ranking from tester runs and from real calls, the
//! ranking route and its admin write, `/metrics`, and falling through a failing
//! implementation, against a real `zeval serve`.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::put_object as put;
use crate::common::{Server, add_user, metadata, request, z2};

/// Reverses its input after a busy loop of some tens of milliseconds.
const SLOW_JS: &str = "function Z10000( Z10000K1 ) { let x = 0; for ( let i = 0; i < 1000000; i++ ) { x += i % 7; } return Array.from( Z10000K1 ).reverse().join( '' ); }";
const FAST_PYTHON: &str = "def Z10000(Z10000K1):\n    return Z10000K1[::-1]";
const THROWING_JS: &str = "function Z10000( Z10000K1 ) { throw new Error( 'broken on purpose' ); }";
const THROWING_PYTHON: &str = "def Z10000(Z10000K1):\n    raise ValueError('also broken')";
const LOOPING_JS: &str = "function Z10000( Z10000K1 ) { while ( true ) {} }";

fn function(testers: &[&str], implementations: &[&str]) -> Value {
    let mut tester_list = vec![json!("Z20")];
    tester_list.extend(testers.iter().map(|zid| json!(zid)));
    let mut list = vec![json!("Z14")];
    list.extend(implementations.iter().map(|zid| json!(zid)));
    z2(
        "Z10000",
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": tester_list, "Z8K4": list, "Z8K5": "Z10000",
        }),
    )
}

fn implementation(zid: &str, language: &str, code: &str) -> Value {
    z2(
        zid,
        json!({"Z1K1": "Z14", "Z14K1": "Z10000",
               "Z14K3": {"Z1K1": "Z16", "Z16K1": language, "Z16K2": code}}),
    )
}

fn tester(zid: &str, input: &str, expected: &str) -> Value {
    z2(
        zid,
        json!({"Z1K1": "Z20", "Z20K1": "Z10000",
               "Z20K2": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": input},
               "Z20K3": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": expected}}),
    )
}

/// Stores Z10000 with `implementations` (zid, language, code) and, when `with_testers`,
/// two testers.
fn store(orch: &str, token: &str, implementations: &[(&str, &str, &str)], with_testers: bool) {
    let testers: &[&str] = if with_testers {
        &["Z10005", "Z10006"]
    } else {
        &[]
    };
    let zids: Vec<&str> = implementations.iter().map(|(zid, ..)| *zid).collect();
    put(orch, token, "Z10000", &function(testers, &zids));
    for (zid, language, code) in implementations {
        put(orch, token, zid, &implementation(zid, language, code));
    }
    if with_testers {
        put(orch, token, "Z10005", &tester("Z10005", "abc", "cba"));
        put(orch, token, "Z10006", &tester("Z10006", "héllo", "olléh"));
    }
}

/// Calls Z10000 on `text`; the answer's value and the implementation that gave it.
fn call(orch: &str, text: &str) -> (Value, Option<String>) {
    let answer = request(
        "POST",
        &format!("{orch}/wikifunctions.org/v1/evaluate/"),
        None,
        Some(&json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": text}})),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let z22 = answer.json();
    let implementation = metadata(&z22, "implementationId")
        .and_then(|v| v.as_str().or_else(|| v["Z6K1"].as_str()))
        .map(str::to_owned);
    (z22, implementation)
}

fn ranking(orch: &str) -> Value {
    let answer = request(
        "GET",
        &format!("{orch}/v1/objects/Z10000/ranking"),
        None,
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

fn start(data: &Path, env: &[(&str, &str)]) -> (Server, String, String) {
    let editor = add_user(data, "editor", "editor");
    let admin = add_user(data, "admin", "admin");
    let server = Server::start(data, &[], env);
    (server, editor, admin)
}

#[test]
fn the_faster_second_implementation_answers_once_the_testers_have_run() {
    let data = tempfile::tempdir().unwrap();
    let (server, editor, admin) = start(data.path(), &[]);
    let orch = server.orch();
    store(
        orch,
        &editor,
        &[("Z10001", "Z600", SLOW_JS), ("Z10002", "Z610", FAST_PYTHON)],
        true,
    );
    let (z22, by) = call(orch, "abc");
    assert_eq!(z22["Z22K1"], "cba", "{z22}");
    assert_eq!(
        by.as_deref(),
        Some("Z10001"),
        "list order before any figures"
    );
    let before = ranking(orch);
    assert_eq!(before["order"], json!(["Z10001", "Z10002"]), "{before}");

    let matrix = request(
        "POST",
        &format!("{orch}/v1/test"),
        None,
        Some(&json!({"function": "Z10000"})),
    );
    assert_eq!(matrix.status, 200, "{}", matrix.text);
    let matrix = matrix.json();
    assert_eq!(matrix["passed"], 4, "{matrix}");
    assert_eq!(
        matrix["ranking"]["order"],
        json!(["Z10002", "Z10001"]),
        "{matrix}"
    );
    // The explanation counts the function's testers and the results just recorded, at the
    // revisions the results were recorded for.
    for explained in matrix["ranking"]["implementations"].as_array().unwrap() {
        assert_eq!(explained["testers"], 2, "{matrix}");
        assert_eq!(explained["testers_run"], 2, "{matrix}");
        assert_eq!(explained["revision"], 1, "{matrix}");
    }

    let (z22, by) = call(orch, "xyz");
    assert_eq!(z22["Z22K1"], "zyx", "{z22}");
    assert_eq!(
        by.as_deref(),
        Some("Z10002"),
        "the faster one after the testers"
    );

    let after = ranking(orch);
    let reason = after["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("Z10002 is first: passes 2 of 2 testers"),
        "{after}"
    );
    assert!(reason.contains("less than 0.8×"), "{after}");
    let first = &after["implementations"][0];
    assert_eq!(first["cost_source"], "testers", "{after}");
    assert_eq!(first["testers_failed"], 0, "{after}");
    let (fast, slow) = (
        first["cost_ms"].as_f64().unwrap(),
        after["implementations"][1]["cost_ms"].as_f64().unwrap(),
    );
    assert!(fast < 0.8 * slow, "{fast} ms against {slow} ms");

    let metrics = request("GET", &format!("{orch}/metrics"), None, None).text;
    assert!(
        metrics
            .contains("zeval_implementation_rank{function=\"Z10000\",implementation=\"Z10002\"} 1"),
        "{metrics}"
    );

    // The stored Z8K4 is untouched until an admin writes the ranking.
    let stored = request("GET", &format!("{orch}/v1/objects/Z10000"), None, None).json();
    assert_eq!(stored["Z2K2"]["Z8K4"], json!(["Z14", "Z10001", "Z10002"]));
    let refused = request(
        "POST",
        &format!("{orch}/v1/objects/Z10000/ranking"),
        Some(&editor),
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.text);
    let written = request(
        "POST",
        &format!("{orch}/v1/objects/Z10000/ranking"),
        Some(&admin),
        None,
    );
    assert_eq!(written.status, 200, "{}", written.text);
    assert_eq!(written.json()["order"], json!(["Z10002", "Z10001"]));
    let stored = request("GET", &format!("{orch}/v1/objects/Z10000"), None, None).json();
    assert_eq!(stored["Z2K2"]["Z8K4"], json!(["Z14", "Z10002", "Z10001"]));
    let again = request(
        "POST",
        &format!("{orch}/v1/objects/Z10000/ranking"),
        Some(&admin),
        None,
    );
    assert_eq!(again.json()["revision"], Value::Null, "{}", again.text);
}

/// A server without the result cache (so that each call runs), whose Z10000 lists Z10001
/// and Z10002 with the code of `first` and `second` (JavaScript or Python, as they read), and
/// no testers; the server and the editor's token.
fn uncached_with(data: &Path, [first, second]: [&str; 2]) -> (Server, String) {
    let (server, editor, _) = start(data, &[("ZEVAL_CACHE", "false")]);
    let language = |code: &str| {
        if code.starts_with("def ") {
            "Z610"
        } else {
            "Z600"
        }
    };
    store(
        server.orch(),
        &editor,
        &[
            ("Z10001", language(first), first),
            ("Z10002", language(second), second),
        ],
        false,
    );
    (server, editor)
}

/// A function's ranking learns only from runs of its implementations under that function.
/// Another function stored to list them (its own ZID and signature) runs them under
/// arguments they were not written for, and they fail: until 2026-12-06 each such failure
/// counted against the implementation for its own function too, so anyone could rank
/// another function's implementations down by calling a function of their own.
#[test]
fn runs_under_another_function_do_not_rank_its_implementations() {
    let data = tempfile::tempdir().unwrap();
    let (server, editor) = uncached_with(data.path(), [FAST_PYTHON, SLOW_JS]);
    let orch = server.orch();
    let mut other = function(&[], &["Z10001", "Z10002"]);
    other["Z2K1"]["Z6K1"] = json!("Z20000");
    other["Z2K2"]["Z8K5"] = json!("Z20000");
    other["Z2K2"]["Z8K1"][1]["Z17K2"] = json!("Z20000K1");
    put(orch, &editor, "Z20000", &other);
    for _ in 0..10 {
        let answer = request(
            "POST",
            &format!("{orch}/wikifunctions.org/v1/evaluate/"),
            None,
            Some(&json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z20000", "Z20000K1": "ab"}})),
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert!(
            metadata(&answer.json(), "errors").is_some(),
            "the implementations ran as Z20000: {}",
            answer.text
        );
    }
    // Past the ranking's refresh.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(live_calls(orch), 0, "{}", ranking(orch));
    // Their own function's calls count.
    let (z22, _) = call(orch, "ab");
    assert_eq!(z22["Z22K1"], "ba", "{z22}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(live_calls(orch), 1, "{}", ranking(orch));
    assert!(server.stop());
}

#[test]
fn live_calls_alone_promote_the_faster_implementation() {
    let data = tempfile::tempdir().unwrap();
    // The same call 400 times: without the result cache, so that each one runs.
    let (server, _) = uncached_with(data.path(), [SLOW_JS, FAST_PYTHON]);
    let orch = server.orch();
    // One call in 8 explores the second until it has 20 successful calls; then, within a
    // refresh (1 s), the order follows the live p50s.
    let mut by_second = 0;
    for i in 0..400 {
        let (z22, by) = call(orch, "ab");
        assert_eq!(z22["Z22K1"], "ba", "{z22}");
        if by.as_deref() == Some("Z10002") {
            by_second += 1;
        }
        if i > 170 && ranking(orch)["order"][0] == "Z10002" {
            break;
        }
    }
    let figures = ranking(orch);
    assert_eq!(figures["order"], json!(["Z10002", "Z10001"]), "{figures}");
    assert_eq!(
        figures["implementations"][0]["cost_source"], "live",
        "{figures}"
    );
    assert!(by_second >= 20, "{by_second}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for _ in 0..5 {
        let (_, by) = call(orch, "ab");
        assert_eq!(by.as_deref(), Some("Z10002"));
    }
}

/// A server whose Z10000 lists the JavaScript `first` (Z10001), then the Python that
/// answers (Z10002), with testers when `with_testers`; its first call of Z10000 is checked
/// to fall through to Z10002. The data directory, the server and the editor's token.
fn falling_through_from(first: &str, with_testers: bool) -> (tempfile::TempDir, Server, String) {
    let data = tempfile::tempdir().unwrap();
    let (server, editor, _) = start(data.path(), &[]);
    store(
        server.orch(),
        &editor,
        &[("Z10001", "Z600", first), ("Z10002", "Z610", FAST_PYTHON)],
        with_testers,
    );
    let (z22, by) = call(server.orch(), "abc");
    assert_eq!(z22["Z22K1"], "cba", "{z22}");
    assert_eq!(by.as_deref(), Some("Z10002"));
    (data, server, editor)
}

#[test]
fn a_first_implementation_that_throws_falls_through_to_the_second() {
    let (_data, server, editor) = falling_through_from(THROWING_JS, false);
    let orch = server.orch();
    // When every implementation fails, the answer is the first one's error.
    put(
        orch,
        &editor,
        "Z10002",
        &implementation("Z10002", "Z610", THROWING_PYTHON),
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (z22, by) = call(orch, "abc");
    assert_eq!(by.as_deref(), Some("Z10001"), "{z22}");
    assert!(z22.to_string().contains("broken on purpose"), "{z22}");
}

/// An implementation that runs into its own time limit (the sandbox's 10 s, within the
/// request's 20 s) has failed, as one that throws has: the call falls through to the next
/// one, and a tester run records the failure, so the ranking puts it last. It used to count
/// as the request's own limit: the call answered Z558, the ranking heard a success, tester
/// runs recorded nothing, and an endless loop first in `Z8K4` made every caller wait 10 s.
#[test]
fn a_first_implementation_that_loops_falls_through_and_its_testers_fail() {
    let (_data, server, _) = falling_through_from(LOOPING_JS, true);
    let orch = server.orch();
    let matrix = request(
        "POST",
        &format!("{orch}/v1/test"),
        None,
        Some(&json!({"function": "Z10000", "testers": ["Z10005"]})),
    );
    assert_eq!(matrix.status, 200, "{}", matrix.text);
    let matrix = matrix.json();
    assert_eq!(matrix["passed"], 1, "{matrix}");
    assert_eq!(
        matrix["ranking"]["order"],
        json!(["Z10002", "Z10001"]),
        "{matrix}"
    );
    let explained = ranking(orch);
    let looping = explained["implementations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["implementation"] == "Z10001")
        .unwrap_or_else(|| panic!("{explained}"));
    assert_eq!(looping["testers_failed"], 1, "{explained}");
}

#[test]
fn with_ranking_off_the_first_implementation_answers_as_in_the_original() {
    let data = tempfile::tempdir().unwrap();
    let (server, editor, _) = start(data.path(), &[("ZEVAL_RANKING", "false")]);
    let orch = server.orch();
    store(
        orch,
        &editor,
        &[
            ("Z10001", "Z600", THROWING_JS),
            ("Z10002", "Z610", FAST_PYTHON),
        ],
        false,
    );
    let (z22, by) = call(orch, "abc");
    assert_eq!(by.as_deref(), Some("Z10001"));
    assert!(z22.to_string().contains("broken on purpose"), "{z22}");
    assert_eq!(ranking(orch)["policy"]["enabled"], false);
}

/// Real calls of every implementation, as `orch`'s ranking route counts them.
fn live_calls(orch: &str) -> u64 {
    ranking(orch)["implementations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["calls"].as_u64().unwrap())
        .sum()
}

#[test]
fn two_orchestrators_rank_with_the_calls_of_both_through_redis() {
    let database = crate::postgres::postgres_server::fresh_database();
    let redis = crate::result_cache::RedisServer::start();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let config = dirs[0].path().join("zeval.toml");
    // Figures flushed and read again every 100 ms, so the test need not wait seconds.
    std::fs::write(&config, "[ranking]\nflush_ms = 100\nrefresh_ms = 100\n").unwrap();
    let config = config.display().to_string();
    let redis_url = redis.url();
    let env = [
        ("ZEVAL_CACHE", "false"),
        ("ZEVAL_RANKING_REDIS_URL", redis_url.as_str()),
    ];
    let args = [
        "--role",
        "orchestrator",
        "--config",
        &config,
        "--database-url",
        &database,
    ];
    let editor = crate::common::add_user_with(
        dirs[0].path(),
        "editor",
        "editor",
        &["--database-url", &database],
    );
    let first = Server::start(dirs[0].path(), &args, &env);
    let second = Server::start(dirs[1].path(), &args, &env);
    let (one, two) = (first.orch(), second.orch());
    store(
        one,
        &editor,
        &[("Z10001", "Z600", SLOW_JS), ("Z10002", "Z610", FAST_PYTHON)],
        false,
    );

    // Calls through the first only, until it ranks the fast one first from live figures.
    let mut made = 0u64;
    for i in 0..400 {
        let (z22, _) = call(one, "ab");
        assert_eq!(z22["Z22K1"], "ba", "{z22}");
        made += 1;
        if i > 170 && ranking(one)["order"][0] == "Z10002" {
            break;
        }
    }
    assert_eq!(ranking(one)["order"][0], "Z10002");

    // The second orchestrator made no call, yet ranks the same way from the first's figures
    // (after one flush and one refresh), and its first call runs the fast one.
    crate::many_evaluators::wait_until(
        "the second orchestrator sees the first one's calls",
        std::time::Duration::from_secs(10),
        || live_calls(two) == made,
    );
    let seen = ranking(two);
    assert_eq!(seen["order"], json!(["Z10002", "Z10001"]), "{seen}");
    assert_eq!(seen["implementations"][0]["cost_source"], "live", "{seen}");
    let (_, by) = call(two, "ab");
    assert_eq!(by.as_deref(), Some("Z10002"));
    made += 1;

    // Calls through both add up on both: neither node's flush overwrites the other's.
    for _ in 0..10 {
        call(one, "ab");
        call(two, "ab");
        made += 2;
    }
    for orch in [one, two] {
        crate::many_evaluators::wait_until(
            "both orchestrators count every call",
            std::time::Duration::from_secs(10),
            || live_calls(orch) == made,
        );
    }
    let metrics = request("GET", &format!("{one}/metrics"), None, None).text;
    assert!(
        metrics.contains("zeval_ranking_shared_errors_total 0"),
        "{metrics}"
    );
}
