//! Per-client limits counted across two orchestrators sharing one `redis-server`: a
//! client's slots taken on one node refuse it on the other, and its requests per minute are
//! counted across both; a Redis that is down leaves each node counting alone.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Answer, Server, add_user, request, z2};
use crate::result_cache::RedisServer;

const SLOW_JS: &str = "function Z10000( Z10000K1 ) { const end = Date.now() + 1500; while ( Date.now() < end ) {} return Z10000K1.toUpperCase(); }";

fn put_slow_function(orch: &str, token: &str) {
    let function = z2(
        "Z10000",
        json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6", "Z8K3": ["Z20"], "Z8K4": ["Z14", "Z10001"], "Z8K5": "Z10000",
        }),
    );
    let implementation = z2(
        "Z10001",
        json!({"Z1K1": "Z14", "Z14K1": "Z10000",
               "Z14K3": {"Z1K1": "Z16", "Z16K1": "Z600", "Z16K2": SLOW_JS}}),
    );
    for (zid, object) in [("Z10000", function), ("Z10001", implementation)] {
        crate::common::put_object(orch, token, zid, &object);
    }
}

/// A call of a built-in (fast), as `token`.
fn quick(orch: &str, token: &str) -> Answer {
    let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K1": "a", "Z866K2": "a"}});
    request(
        "POST",
        &format!("{orch}/wikifunctions.org/v1/evaluate/"),
        Some(token),
        Some(&body),
    )
}

fn slow(orch: &str, token: &str, text: &str) -> Answer {
    let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": text}});
    request(
        "POST",
        &format!("{orch}/wikifunctions.org/v1/evaluate/"),
        Some(token),
        Some(&body),
    )
}

/// Waits until at least 20 s remain in the current minute, so a test's requests fall in one
/// rate window.
fn early_in_a_minute() {
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second >= 40 {
        std::thread::sleep(Duration::from_secs(61 - second));
    }
}

fn problem(answer: &Answer) -> Value {
    answer.json()
}

#[test]
fn slots_and_rates_are_counted_across_nodes() {
    let redis = RedisServer::start();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Two stores: the limits are shared, the objects need not be.
    let token_a = add_user(a_dir.path(), "editor", "editor");
    // Writes are work too: another user writes, so they do not count against `token_a`.
    let writer = add_user(a_dir.path(), "writer", "editor");
    let url = redis.url();
    let env = [
        ("ZEVAL_LIMITS_REDIS_URL", url.as_str()),
        ("ZEVAL_LIMITS_REDIS_KEY_SECRET", "the same on both nodes"),
        ("ZEVAL_PER_CLIENT_CONCURRENT_REQUESTS", "2"),
        ("ZEVAL_PER_CLIENT_REQUESTS_PER_MINUTE", "7"),
        ("ZEVAL_CACHE", "false"),
    ];
    let a = Server::start(a_dir.path(), &[], &env);
    // The same user (same token) on node B: copy A's store.
    drop(b_dir);
    let b_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        a_dir.path().join("zeval.sqlite"),
        b_dir.path().join("zeval.sqlite"),
    )
    .unwrap();
    let b = Server::start(b_dir.path(), &[], &env);
    put_slow_function(a.orch(), &writer);
    early_in_a_minute();

    // 1, 2: two slow calls hold both of the client's slots on A.
    let (orch_a, orch_b) = (a.orch().to_owned(), b.orch().to_owned());
    let held: Vec<_> = (0..2)
        .map(|i| {
            let (orch, token) = (orch_a.clone(), token_a.clone());
            std::thread::spawn(move || slow(&orch, &token, &format!("held {i}")))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // 3: so node B refuses the same client.
    let refused = quick(&orch_b, &token_a);
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert!(
        problem(&refused).to_string().contains("in progress"),
        "{}",
        refused.text
    );
    for thread in held {
        let answer = thread.join().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    // 4–7: free again on both nodes.
    for orch in [&orch_b, &orch_a, &orch_b, &orch_a] {
        let answer = quick(orch, &token_a);
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    // 8: the client's seventh request of the minute was its last, whichever node it asks.
    let limited = quick(&orch_b, &token_a);
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert!(
        problem(&limited).to_string().contains("this minute"),
        "{}",
        limited.text
    );
    let metrics = request("GET", &format!("{orch_b}/metrics"), None, None).text;
    assert!(
        metrics.contains("zeval_requests_rejected_total{reason=\"rate_limited\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zeval_shared_limits_errors_total 0"),
        "{metrics}"
    );
    // The client's key in Redis is keyed with the secret: not the plain SHA-256 of its name,
    // which anyone reading Redis can recompute (for an IPv4 address, by trying them all).
    let ::redis::Value::Array(keys) = redis.command(&["KEYS", "zeval:rate:*"]).unwrap() else {
        panic!("no rate keys");
    };
    let plain = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(format!("token {token_a}").as_bytes()))
    };
    assert!(!keys.is_empty());
    for key in &keys {
        let ::redis::Value::BulkString(key) = key else {
            panic!("{keys:?}");
        };
        let key = String::from_utf8_lossy(key);
        assert!(
            !key.contains(&plain),
            "{key} is the unkeyed hash of the client"
        );
    }
}

#[test]
fn a_redis_that_is_down_leaves_each_node_counting_alone() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = tempfile::tempdir().unwrap();
    let token = add_user(data.path(), "editor", "editor");
    let url = format!("redis://127.0.0.1:{port}");
    let server = Server::start(
        data.path(),
        &[],
        &[
            ("ZEVAL_LIMITS_REDIS_URL", url.as_str()),
            ("ZEVAL_PER_CLIENT_REQUESTS_PER_MINUTE", "3"),
        ],
    );
    early_in_a_minute();
    for _ in 0..3 {
        let answer = quick(server.orch(), &token);
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let limited = quick(server.orch(), &token);
    assert_eq!(
        limited.status, 429,
        "the node's own count: {}",
        limited.text
    );
    let metrics = request("GET", &format!("{}/metrics", server.orch()), None, None).text;
    let errors: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("zeval_shared_limits_errors_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(errors >= 1.0, "{metrics}");
}

/// A quick anonymous call sent as a proxy would, with `X-Forwarded-For: forwarded_for`; its
/// HTTP status.
fn quick_forwarded_for(orch: &str, forwarded_for: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let body = json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z866", "Z866K1": "a", "Z866K2": "a"}});
    agent
        .post(format!("{orch}/wikifunctions.org/v1/evaluate/"))
        .header("Content-Type", "application/json")
        .header("X-Forwarded-For", forwarded_for)
        .send(body.to_string().as_bytes())
        .unwrap()
        .status()
        .as_u16()
}

/// Sends [`quick_forwarded_for`] for each forwarded-for value in turn, asserting its status.
fn answered_in_turn(orch: &str, expected: &[(&str, u16)]) {
    for (turn, (forwarded_for, status)) in expected.iter().enumerate() {
        assert_eq!(
            quick_forwarded_for(orch, forwarded_for),
            *status,
            "request {turn}, forwarded for {forwarded_for}"
        );
    }
}

/// A server that lets each client start two requests a minute, with the test (127.0.0.1 or
/// ::1) as its trusted proxy when `trusted`; early in a minute, so that the test's requests
/// fall in one. The directory holds its data.
fn two_a_minute(trusted: bool, more_env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let data = tempfile::tempdir().unwrap();
    let mut env = vec![("ZEVAL_PER_CLIENT_REQUESTS_PER_MINUTE", "2")];
    if trusted {
        env.push(("ZEVAL_TRUSTED_PROXIES", "127.0.0.0/8, ::1"));
    }
    env.extend_from_slice(more_env);
    let server = Server::start(data.path(), &[], &env);
    early_in_a_minute();
    (data, server)
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_is_counted_alone() {
    // The test is the proxy (127.0.0.1). Trusted, it makes two clients of two forwarded
    // addresses; not trusted, its header is ignored and every request is the proxy's.
    for trusted in [true, false] {
        let (_data, server) = two_a_minute(trusted, &[]);
        let other_client = if trusted { 200 } else { 429 };
        answered_in_turn(
            server.orch(),
            &[
                ("203.0.113.1", 200),
                ("203.0.113.1", 200),
                ("203.0.113.1", 429),
                // What a client writes on the left is not believed.
                ("198.51.100.7, 203.0.113.1", 429),
                ("203.0.113.2", other_client),
            ],
        );
    }
}

#[test]
fn an_ipv6_client_is_counted_by_its_64_network() {
    // A host is usually given a whole /64: counted by address, one machine could be as many
    // clients as it liked, each with its own slots and its own rate.
    let (_data, server) = two_a_minute(true, &[]);
    answered_in_turn(
        server.orch(),
        &[
            ("2001:db8:1:2::1", 200),
            ("2001:db8:1:2::2", 200),
            ("2001:db8:1:2:ffff::9", 429),
            ("2001:db8:1:3::1", 200),
            // An IPv4-mapped address is that IPv4 client.
            ("203.0.113.5", 200),
            ("::ffff:203.0.113.5", 200),
            ("203.0.113.5", 429),
        ],
    );
}

#[test]
fn the_operator_may_count_ipv6_clients_by_a_wider_network() {
    let (_data, server) = two_a_minute(true, &[("ZEVAL_CLIENT_IPV6_PREFIX", "48")]);
    answered_in_turn(
        server.orch(),
        &[
            ("2001:db8:1:2::1", 200),
            ("2001:db8:1:3::1", 200),
            ("2001:db8:1:ffff::1", 429),
            ("2001:db8:2::1", 200),
        ],
    );
}
