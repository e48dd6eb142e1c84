//! The result cache against real `zeval serve` processes: the second identical call comes
//! from the cache (and says so), a write two functions down makes the next call miss (in
//! process, and between two nodes sharing one `redis-server`), the bypass flag, functions
//! marked uncacheable, brief error entries, the size bound, the access scopes, and a Redis
//! that is down.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::put_object as put;
use crate::common::{Answer, Server, add_user, metadata, metric, request, z2};

#[path = "../../crates/cache/tests/all/redis_server.rs"]
mod redis_server;

pub(crate) use redis_server::RedisServer;

fn function(zid: &str, implementation: Value) -> Value {
    z2(
        zid,
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": format!("{zid}K1"),
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", implementation], "Z8K5": zid,
        }),
    )
}

fn javascript(body: &str) -> Value {
    z2(
        "Z10003",
        json!({"Z1K1": "Z14", "Z14K1": "Z10000",
               "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600",
                         "Z16K2": format!("function Z10000( Z10000K1 ) {{ {body} }}")}}),
    )
}

/// `caller(x) = callee(x)` as an inline composition.
fn composition(caller: &str, callee: &str) -> Value {
    json!({"Z1K1": "Z14", "Z14K1": caller, "Z14K2": {
        "Z1K1": "Z7", "Z7K1": callee,
        format!("{callee}K1"): {"Z1K1": "Z18", "Z18K1": format!("{caller}K1")}}})
}

/// Z10002(x) = Z10001(x) = Z10000(x), whose JavaScript implementation Z10003 runs `body`.
fn put_chain(orch: &str, token: &str, body: &str) {
    put(orch, token, "Z10000", &function("Z10000", json!("Z10003")));
    put(orch, token, "Z10003", &javascript(body));
    put(
        orch,
        token,
        "Z10001",
        &function("Z10001", composition("Z10001", "Z10000")),
    );
    put(
        orch,
        token,
        "Z10002",
        &function("Z10002", composition("Z10002", "Z10001")),
    );
}

/// POSTs an evaluate request with extra headers.
fn evaluate(orch: &str, body: &Value, token: Option<&str>, headers: &[(&str, &str)]) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut r = agent
        .post(format!("{orch}/wikifunctions.org/v1/evaluate/"))
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        r = r.header("Authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let mut response = r.send(body.to_string().as_bytes()).unwrap();
    Answer {
        status: response.status().as_u16(),
        text: response.body_mut().read_to_string().unwrap(),
    }
}

fn call_of(function: &str, text: &str) -> Value {
    json!({"zobject": {"Z1K1": "Z7", "Z7K1": function, format!("{function}K1"): text}})
}

/// The answer's value and whether it came from the cache.
fn value_and_cached(answer: &Answer) -> (Value, bool) {
    assert_eq!(answer.status, 200, "{}", answer.text);
    let z22 = answer.json();
    // A timeout's answer is in normal form (as the original's): look for the key there too.
    let cached = metadata(&z22, "functionCallCachedOn").is_some()
        || answer.text.contains("\"functionCallCachedOn\"");
    if let Some(key) = metadata(&z22, "cacheKey") {
        assert_eq!(key.as_str().map(str::len), Some(64), "{z22}");
    }
    assert_eq!(cached, answer.text.contains("\"cacheKey\""), "{z22}");
    (z22["Z22K1"].clone(), cached)
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("zeval.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn the_second_call_comes_from_the_cache_until_a_function_two_levels_down_changes() {
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch();
    put_chain(orch, &token, "return Z10000K1.toUpperCase();");

    let call = call_of("Z10002", "abc");
    let first = value_and_cached(&evaluate(orch, &call, None, &[]));
    assert_eq!(first, (json!("ABC"), false));
    let second = evaluate(orch, &call, None, &[]);
    assert_eq!(value_and_cached(&second), (json!("ABC"), true));
    let on = metadata(&second.json(), "functionCallCachedOn")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    assert!(on.starts_with("20") && on.ends_with('Z'), "{on}");
    // The same call in normal form, keys in another order: the same entry.
    let normal = json!({"zobject": {
        "Z10002K1": {"Z1K1": "Z6", "Z6K1": "abc"},
        "Z7K1": {"Z1K1": "Z9", "Z9K1": "Z10002"},
        "Z1K1": {"Z1K1": "Z9", "Z9K1": "Z7"}}});
    assert_eq!(
        value_and_cached(&evaluate(orch, &normal, None, &[])),
        (json!("ABC"), true)
    );
    // Bypassing, by body flag or header: computed again.
    let mut bypass = call.clone();
    bypass["bypassCache"] = json!(true);
    assert_eq!(
        value_and_cached(&evaluate(orch, &bypass, None, &[])),
        (json!("ABC"), false)
    );
    assert_eq!(
        value_and_cached(&evaluate(
            orch,
            &call,
            None,
            &[("Cache-Control", "no-cache")]
        )),
        (json!("ABC"), false)
    );
    assert!(metric(orch, "zeval_result_cache_hits_total") >= 2.0);

    // The implementation of the function two levels down changes: the next call misses.
    put(
        orch,
        &token,
        "Z10003",
        &javascript("return Z10000K1.toUpperCase() + '!';"),
    );
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("ABC!"), false)
    );
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("ABC!"), true)
    );
    assert!(metric(orch, "zeval_result_cache_invalidations_total") >= 5.0);
}

#[test]
fn a_write_on_one_node_makes_the_other_node_miss_through_redis() {
    let redis = RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let env = [("ZEVAL_CACHE_REDIS_URL", redis.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Two nodes over one store and one Redis.
    let a = Server::start(data.path(), &[], &env);
    let b = Server::start(data.path(), &[], &env);
    put_chain(a.orch(), &token, "return Z10000K1.toUpperCase();");
    let call = call_of("Z10002", "abc");
    assert_eq!(
        value_and_cached(&evaluate(a.orch(), &call, None, &[])),
        (json!("ABC"), false)
    );
    // B answers from what A stored.
    assert_eq!(
        value_and_cached(&evaluate(b.orch(), &call, None, &[])),
        (json!("ABC"), true)
    );
    // A changes the deepest implementation; B misses and computes the new answer (its own
    // object cache dropped the object when it saw the new generation).
    put(
        a.orch(),
        &token,
        "Z10003",
        &javascript("return Z10000K1.toLowerCase();"),
    );
    assert_eq!(
        value_and_cached(&evaluate(b.orch(), &call, None, &[])),
        (json!("abc"), false)
    );
    // A then answers B's answer from the cache.
    assert_eq!(
        value_and_cached(&evaluate(a.orch(), &call, None, &[])),
        (json!("abc"), true)
    );
    // `zeval import` writes the store directly; given the Redis, it invalidates too.
    let file = data.path().join("Z10003.json");
    let changed = javascript("return Z10000K1.toUpperCase() + '?';");
    std::fs::write(&file, changed.to_string()).unwrap();
    let imported = Command::new(crate::common::zeval_binary())
        .arg("import")
        .arg(&file)
        .arg("--data-dir")
        .arg(data.path())
        .env("ZEVAL_CACHE_REDIS_URL", redis.url())
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert_eq!(
        value_and_cached(&evaluate(b.orch(), &call, None, &[])),
        (json!("ABC?"), false)
    );
    assert_eq!(metric(b.orch(), "zeval_result_cache_errors_total"), 0.0);
}

/// Whatever anyone who can write to Redis puts there, what a node reads back for a call is
/// bounded: 16 MiB generations, counters and dependency lists, and a ranking hash with a
/// 16 MiB count and 10,000 foreign fields, cost the calls below a few hundred KiB in all
/// (each lookup used to read every such value whole). Calls are still answered.
#[test]
fn forged_redis_values_cost_calls_a_bounded_number_of_bytes() {
    let redis = RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let config = write_config(data.path(), "[ranking]\nflush_ms = 100\nrefresh_ms = 100\n");
    let url = redis.url();
    let env = [
        ("ZEVAL_CACHE_REDIS_URL", url.as_str()),
        ("ZEVAL_RANKING_REDIS_URL", url.as_str()),
    ];
    let server = Server::start(data.path(), &["--config", &config], &env);
    let orch = server.orch();
    put_chain(orch, &token, "return Z10000K1.toUpperCase();");
    // A second implementation, so that the ranking measures Z10000's calls.
    let mut second = javascript("return Z10000K1.toUpperCase();");
    second["Z2K1"]["Z6K1"] = json!("Z10004");
    put(orch, &token, "Z10004", &second);
    let mut two = function("Z10000", json!("Z10003"));
    two["Z2K2"]["Z8K4"] = json!(["Z14", "Z10003", "Z10004"]);
    put(orch, &token, "Z10000", &two);
    let call = call_of("Z10002", "abc");
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("ABC"), false)
    );
    // A hit names its key.
    let hit = evaluate(orch, &call, None, &[]);
    assert_eq!(value_and_cached(&hit), (json!("ABC"), true));
    let z22 = hit.json();
    let cache_key = metadata(&z22, "cacheKey")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let keys = |pattern: &str| match redis.command(&["KEYS", pattern]).unwrap() {
        redis::Value::Array(keys) => keys
            .into_iter()
            .map(|key| redis::from_redis_value::<String>(key).unwrap())
            .collect::<Vec<_>>(),
        other => panic!("KEYS answered {other:?}"),
    };
    crate::many_evaluators::wait_until(
        "the ranking's figures reach Redis",
        Duration::from_secs(10),
        || !keys("zeval:ranking:*").is_empty(),
    );

    let huge = "1".repeat(16 << 20);
    let huge_list = "Z1\n".repeat((16 << 20) / 3);
    let deps = format!("zeval:deps:{cache_key}");
    for (forged, value) in [
        ("zeval:gen:Z10000", huge.as_str()),
        ("zeval:gen:Z10003", huge.as_str()),
        ("zeval:seq", huge.as_str()),
        ("zeval:epoch", huge.as_str()),
        (deps.as_str(), huge_list.as_str()),
    ] {
        redis.command(&["SET", forged, value]).unwrap();
    }
    let foreign: Vec<String> = (0..10_000).map(|i| format!("foreign{i:0>90}")).collect();
    for hash in keys("zeval:ranking:*") {
        let mut filler = vec!["HSET", hash.as_str(), "b5", huge.as_str()];
        for field in &foreign {
            filler.extend([field.as_str(), "1"]);
        }
        redis.command(&filler).unwrap();
    }

    let before = redis.output_bytes();
    for text in ["abc", "def", "abc"] {
        let answer = evaluate(orch, &call_of("Z10002", text), None, &[]);
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(
            answer.json()["Z22K1"],
            json!(text.to_uppercase()),
            "{}",
            answer.text
        );
    }
    // Several flushes and refreshes of the ranking's figures.
    std::thread::sleep(Duration::from_millis(500));
    let sent = redis.output_bytes() - before;
    eprintln!("forged Redis values: {sent} bytes sent for three calls and their figures");
    assert!(
        sent < 1 << 20,
        "Redis sent the node {sent} bytes for three calls and their figures"
    );
}

/// A cached answer that someone wrote into the shared Redis, within the largest answer kept
/// but of 300,000 values, is computed again rather than parsed (some 40 MiB) on every lookup
/// and served: the bound `MAX_CACHED_ANSWER_VALUES` (262,144) of the server's result cache,
/// here behind a real `redis-server`. Before 2026-12-06 the forged list was the answer.
#[test]
fn a_forged_cached_answer_of_too_many_values_is_computed_again() {
    let redis = RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let url = redis.url();
    let server = Server::start(data.path(), &[], &[("ZEVAL_CACHE_REDIS_URL", url.as_str())]);
    let orch = server.orch();
    put_chain(orch, &token, "return Z10000K1.toUpperCase();");
    let call = call_of("Z10002", "abc");
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("ABC"), false)
    );
    let redis::Value::Array(entries) = redis.command(&["KEYS", "zeval:result:*"]).unwrap() else {
        panic!("KEYS answered no list");
    };
    assert_eq!(entries.len(), 1, "one answer kept: {entries:?}");
    let entry: String = redis::from_redis_value(entries.into_iter().next().unwrap()).unwrap();
    let redis::Value::BulkString(kept) = redis.command(&["GET", &entry]).unwrap() else {
        panic!("GET {entry} answered no bytes");
    };
    // "<computed_at_ms>\n<answer>", as the node stores it; only the answer is forged.
    let computed_at = String::from_utf8(kept)
        .unwrap()
        .split_once('\n')
        .unwrap()
        .0
        .to_owned();
    // A forged answer within the bounds is served (Redis is trusted that far): the entry's
    // key and form are right.
    let small =
        format!("{computed_at}\n{{\"Z1K1\": \"Z22\", \"Z22K1\": \"FORGED\", \"Z22K2\": \"Z24\"}}");
    redis
        .command(&["SET", &entry, &small, "PX", "60000"])
        .unwrap();
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("FORGED"), true)
    );
    let values = vec!["0"; 300_000].join(",");
    let forged =
        format!("{computed_at}\n{{\"Z1K1\": \"Z22\", \"Z22K1\": [{values}], \"Z22K2\": \"Z24\"}}");
    assert!(forged.len() < 1 << 20, "within the largest answer kept");
    redis
        .command(&["SET", &entry, &forged, "PX", "60000"])
        .unwrap();
    let again = evaluate(orch, &call, None, &[]);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        value_and_cached(&again),
        (json!("ABC"), false),
        "the forged entry was served, or the call was not computed again"
    );
}

#[test]
fn a_redis_that_is_down_leaves_calls_answered() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("unix://{}", dir.path().join("nobody-here.sock").display());
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let server = Server::start(data.path(), &[], &[("ZEVAL_CACHE_REDIS_URL", &url)]);
    let orch = server.orch();
    put_chain(orch, &token, "return Z10000K1.toUpperCase();");
    let call = call_of("Z10002", "abc");
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(
            value_and_cached(&evaluate(orch, &call, None, &[])),
            (json!("ABC"), false)
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    assert!(metric(orch, "zeval_result_cache_errors_total") >= 1.0);
}

#[test]
fn uncacheable_functions_errors_and_large_answers() {
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let config = write_config(
        data.path(),
        "[cache]\nuncacheable = [\"Z10001\"]\nfailure_ttl_seconds = 1\nmax_value_bytes = 4000\n",
    );
    let server = Server::start(data.path(), &["--config", &config], &[]);
    let orch = server.orch();
    put_chain(
        orch,
        &token,
        "if ( Z10000K1 === 'fail' ) { throw new Error( 'no' ); } return Z10000K1.repeat( Z10000K1 === 'big' ? 2000 : 1 );",
    );
    // Z10002 reads Z10001, which is marked uncacheable: never from the cache.
    let through_marked = call_of("Z10002", "abc");
    for _ in 0..2 {
        assert_eq!(
            value_and_cached(&evaluate(orch, &through_marked, None, &[])),
            (json!("abc"), false)
        );
    }
    // Z10000 itself is cacheable.
    let direct = call_of("Z10000", "abc");
    evaluate(orch, &direct, None, &[]);
    assert!(value_and_cached(&evaluate(orch, &direct, None, &[])).1);
    // An error is kept for failure_ttl_seconds (1 s), then computed again.
    let failing = call_of("Z10000", "fail");
    let first = evaluate(orch, &failing, None, &[]);
    assert!(first.text.contains("no"), "{}", first.text);
    assert!(!value_and_cached(&first).1);
    assert!(value_and_cached(&evaluate(orch, &failing, None, &[])).1);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!value_and_cached(&evaluate(orch, &failing, None, &[])).1);
    // An answer over max_value_bytes (6000 characters) is never kept.
    let big = call_of("Z10000", "big");
    for _ in 0..2 {
        let (value, cached) = value_and_cached(&evaluate(orch, &big, None, &[]));
        assert_eq!(value.as_str().map(str::len), Some(6000));
        assert!(!cached);
    }
    assert!(metric(orch, "zeval_result_cache_skipped_total") >= 2.0);
}

/// A timeout is not kept: how far a call got in its time depends on what else the server ran
/// (a long call runs at the lowest priority, and waits for an executor when all are busy).
/// It was kept for `failure_ttl_seconds` and given to every caller, so that a client that
/// loaded the server while calling a function made everyone's calls of it fail for a minute
/// (and again each minute).
#[test]
fn a_timeout_is_not_kept() {
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let config = write_config(
        data.path(),
        "[limits]\ncall_timeout_ms = 500\n[cache]\nfailure_ttl_seconds = 60\n",
    );
    let server = Server::start(data.path(), &["--config", &config], &[]);
    let orch = server.orch();
    put_chain(orch, &token, "while ( true ) {}");
    let call = call_of("Z10000", "x");
    for _ in 0..2 {
        let answer = evaluate(orch, &call, None, &[]);
        assert!(answer.text.contains("Z558"), "{}", answer.text);
        assert!(!value_and_cached(&answer).1, "a timeout was kept");
    }
}

#[test]
fn an_answer_computed_for_a_user_never_reaches_an_anonymous_caller_it_would_refuse() {
    let data = tempfile::tempdir().unwrap();
    let editor = add_user(data.path(), "ed", "editor");
    let admin = add_user(data.path(), "root", "admin");
    let server = Server::start(data.path(), &[], &[("ZEVAL_CALLS", "approved")]);
    let orch = server.orch();
    put_chain(orch, &editor, "return Z10000K1.toUpperCase();");
    let call = call_of("Z10000", "abc");
    // A user may run the unapproved implementation; the answer is cached for users.
    evaluate(orch, &call, Some(&editor), &[]);
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, Some(&editor), &[])),
        (json!("ABC"), true)
    );
    // Anonymous: refused, whatever the cache holds.
    for _ in 0..2 {
        let refused = evaluate(orch, &call, None, &[]);
        assert_eq!(refused.status, 403, "{}", refused.text);
    }
    // Approving the implementation makes the anonymous call run (not the refusal cached).
    let approve = request(
        "POST",
        &format!("{orch}/v1/objects/Z10003/approve"),
        Some(&admin),
        None,
    );
    assert_eq!(approve.status, 200, "{}", approve.text);
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("ABC"), false)
    );
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("ABC"), true)
    );
}

#[test]
fn a_function_called_from_code_through_w_call_is_a_dependency_too() {
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "ed", "editor");
    let server = Server::start(data.path(), &[], &[]);
    let orch = server.orch();
    put_chain(orch, &token, "return Z10000K1.toUpperCase();");
    // Z10004(x) = W.Call("Z10000", x) + "." in JavaScript (Z10005).
    put(orch, &token, "Z10004", &function("Z10004", json!("Z10005")));
    let code = z2(
        "Z10005",
        json!({"Z1K1": "Z14", "Z14K1": "Z10004",
               "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2":
                   "function Z10004( Z10004K1 ) { return W.Call( 'Z10000', { Z10000K1: Z10004K1 } ) + '.'; }"}}),
    );
    put(orch, &token, "Z10005", &code);
    let call = call_of("Z10004", "abc");
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("ABC."), false)
    );
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("ABC."), true)
    );
    // The implementation the code reached only through W.Call changes: a miss.
    put(
        orch,
        &token,
        "Z10003",
        &javascript("return Z10000K1.toLowerCase();"),
    );
    assert_eq!(
        value_and_cached(&evaluate(orch, &call, None, &[])),
        (json!("abc."), false)
    );
}
