//! Admission: body limits (413 with the limit in the message), work slots per service (503
//! with `Retry-After`) and per client (429 with `Retry-After`).

use std::sync::Arc;

use zeval_store::Role;

use crate::common::{
    Gate, GatedEngine, call_body, put_composition, send, send_to, server, server_with_engine, token,
};

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_get_413_with_a_message() {
    let server = server(|c| c.limits.orchestrator_body_bytes = 1000);
    let big = format!("{{\"zobject\": \"{}\"}}", "x".repeat(2000));
    let answer = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        None,
        Some(big),
    )
    .await;
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("1000 bytes"),
        "{}",
        answer.text
    );
    let metrics = send(&server, "GET", "/metrics", None, None).await.text;
    assert!(
        metrics.contains("zeval_requests_rejected_total{reason=\"too_large\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn work_beyond_the_concurrency_limit_gets_503_with_retry_after() {
    let gate = Gate::new();
    let held = gate.clone();
    let server = server_with_engine(
        |c| {
            c.limits.max_concurrent_requests = 1;
            c.limits.retry_after_seconds = 7;
        },
        move |inner| Arc::new(GatedEngine { inner, gate: held }),
    );
    let editor = token(&server, "ed", Role::Editor);
    put_composition(&server, &editor).await;
    // A call held at the gate keeps the only slot.
    let router = server.router.clone();
    let slow = tokio::spawn(async move {
        send_to(
            router,
            "POST",
            "/wikifunctions.org/v1/evaluate/",
            None,
            Some(call_body("wait")),
        )
        .await
    });
    gate.until_waiting(1).await;
    let answer = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        None,
        Some(call_body("hi")),
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.headers["retry-after"], "7");
    // Reads are never refused for load.
    assert_eq!(
        send(&server, "GET", "/healthz", None, None).await.status,
        200
    );
    gate.open();
    let finished = slow.await.unwrap();
    assert_eq!(finished.status, 200, "{}", finished.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_client_cannot_take_every_slot() {
    let gate = Gate::new();
    let held = gate.clone();
    let server = server_with_engine(
        |c| {
            c.limits.per_client_concurrent_requests = 2;
            c.limits.retry_after_seconds = 3;
        },
        move |inner| Arc::new(GatedEngine { inner, gate: held }),
    );
    let greedy = token(&server, "greedy", Role::Editor);
    let other = token(&server, "other", Role::Editor);
    put_composition(&server, &greedy).await;
    let mut held_calls = Vec::new();
    for _ in 0..2 {
        let router = server.router.clone();
        let greedy = greedy.clone();
        held_calls.push(tokio::spawn(async move {
            send_to(
                router,
                "POST",
                "/wikifunctions.org/v1/evaluate/",
                Some(&greedy),
                Some(call_body("wait")),
            )
            .await
        }));
    }
    gate.until_waiting(2).await;
    let refused = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        Some(&greedy),
        Some(call_body("hi")),
    )
    .await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.headers["retry-after"], "3");
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("2 requests in progress"),
        "{}",
        refused.text
    );
    // Another user, and an anonymous caller, still get through.
    for token in [Some(other.as_str()), None] {
        let answer = send(
            &server,
            "POST",
            "/wikifunctions.org/v1/evaluate/",
            token,
            Some(call_body("hi")),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.json()["Z22K1"], "hi", "{}", answer.text);
    }
    let metrics = send(&server, "GET", "/metrics", None, None).await.text;
    assert!(
        metrics.contains("zeval_requests_rejected_total{reason=\"client_busy\"} 1"),
        "{metrics}"
    );
    gate.open();
    for call in held_calls {
        assert_eq!(call.await.unwrap().status, 200);
    }
    // The slots are given back.
    let again = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        Some(&greedy),
        Some(call_body("hi")),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text);
}
