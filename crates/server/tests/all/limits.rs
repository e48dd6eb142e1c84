//! Body limits (413 with the limit in the message) and the concurrency limit (503 with
//! `Retry-After`).

use std::time::Duration;

use crate::common::{send, server};

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
    let server = server(|c| {
        c.limits.max_concurrent_requests = 1;
        c.limits.retry_after_seconds = 7;
    });
    // Hold the only slot with a request whose body has not finished arriving.
    let (sender, body) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
    let stream = tokio_stream_from(body);
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/wikifunctions.org/v1/evaluate/")
        .body(axum::body::Body::from_stream(stream))
        .unwrap();
    let router = server.router.clone();
    let slow = tokio::spawn(async move { tower::ServiceExt::oneshot(router, request).await });
    // Until the slow request holds the slot, quick requests still pass; then they get 503.
    let mut answer = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let quick = send(
            &server,
            "POST",
            "/wikifunctions.org/v1/evaluate/",
            None,
            Some("{}".into()),
        )
        .await;
        if quick.status != 200 {
            answer = Some(quick);
            break;
        }
    }
    let answer = answer.expect("the slot was never taken");
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.headers["retry-after"], "7");
    // Reads are never refused for load.
    assert_eq!(
        send(&server, "GET", "/healthz", None, None).await.status,
        200
    );
    sender
        .try_send(Ok(axum::body::Bytes::from_static(b"{\"zobject\": null}")))
        .unwrap();
    drop(sender);
    let finished = slow.await.unwrap().unwrap();
    assert_eq!(finished.status(), 200);
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
