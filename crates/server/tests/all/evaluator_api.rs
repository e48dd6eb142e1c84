//! The limits around the evaluator API ([`zeval_server::evaluator_app`]): the orchestrator's
//! secret and slots of its own. The router inside is a stand-in, so no guest is needed.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::sync::Notify;
use zeval_server::config::Config;
use zeval_server::evaluator_api::EVALUATOR_SECRET_HEADER;
use zeval_server::{Metrics, evaluator_app};

use crate::common::send_to;

const EVALUATE: &str = "/wikifunctions.org/v1/evaluate/";

fn stand_in() -> Router {
    Router::new().route(
        EVALUATE,
        get(|| async { "healthy" }).post(|| async { "evaluated" }),
    )
}

async fn post_with_secret(app: &Router, secret: Option<&str>) -> (u16, String) {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder()
        .method("POST")
        .uri(EVALUATE)
        .header("Content-Type", "application/json");
    if let Some(secret) = secret {
        request = request.header(EVALUATOR_SECRET_HEADER, secret);
    }
    let response = app
        .clone()
        .oneshot(request.body(axum::body::Body::from("{}")).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_secret_only_the_orchestrator_may_evaluate() {
    let config = Config {
        evaluator_secret: Some("s3cret".into()),
        ..Config::default()
    };
    let metrics = Arc::new(Metrics::default());
    let app = evaluator_app(stand_in(), &config, &metrics);
    let (status, body) = post_with_secret(&app, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains(EVALUATOR_SECRET_HEADER), "{body}");
    assert_eq!(post_with_secret(&app, Some("s3cre")).await.0, 401);
    assert_eq!(post_with_secret(&app, Some("s3cret!")).await.0, 401);
    assert_eq!(post_with_secret(&app, Some("S3CRET")).await.0, 401);
    assert_eq!(
        post_with_secret(&app, Some("s3cret")).await,
        (200, "evaluated".into())
    );
    // Health needs no secret.
    assert_eq!(
        send_to(app.clone(), "GET", EVALUATE, None, None)
            .await
            .status,
        200
    );
    assert_eq!(
        metrics.counter("zeval_requests_rejected_total", &[("reason", "bad_secret")]),
        4
    );
    // Without a secret (on loopback) the stand-in answers everybody.
    let open = evaluator_app(stand_in(), &Config::default(), &metrics);
    assert_eq!(post_with_secret(&open, None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_evaluator_api_has_slots_of_its_own() {
    let mut config = Config::default();
    config.limits.evaluator_max_concurrent_requests = 1;
    config.limits.max_concurrent_requests = 64;
    let release = Arc::new(Notify::new());
    let entered = Arc::new(Notify::new());
    let (wait, enter) = (release.clone(), entered.clone());
    let holding = Router::new().route(
        EVALUATE,
        axum::routing::post(move || {
            let (wait, enter) = (wait.clone(), enter.clone());
            async move {
                enter.notify_one();
                wait.notified().await;
                "evaluated"
            }
        }),
    );
    let app = evaluator_app(holding, &config, &Arc::new(Metrics::default()));
    let first = tokio::spawn({
        let app = app.clone();
        async move { post_with_secret(&app, None).await }
    });
    entered.notified().await;
    let (status, body) = post_with_secret(&app, None).await;
    assert_eq!(status, 503, "{body}");
    release.notify_one();
    assert_eq!(first.await.unwrap().0, 200);
}

/// Without a secret, the evaluator API (loopback only) answers requests addressed to a
/// loopback host, and refuses one addressed to any other: a web page, through DNS rebinding,
/// could otherwise run code on a developer's evaluator and read the answer, and through the
/// nested calls' callback URL have it post to any address.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_secret_only_requests_to_a_loopback_host_are_answered() {
    use tower::ServiceExt;
    let metrics = Arc::new(Metrics::default());
    let open = evaluator_app(stand_in(), &Config::default(), &metrics);
    let post = |host: &'static str| {
        let app = open.clone();
        async move {
            let request = axum::http::Request::builder()
                .method("POST")
                .uri(EVALUATE)
                .header("Host", host)
                .header("Content-Type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap();
            app.oneshot(request).await.unwrap().status().as_u16()
        }
    };
    for host in [
        "127.0.0.1:6927",
        "localhost:6927",
        "[::1]:6927",
        "127.0.0.2",
    ] {
        assert_eq!(post(host).await, 200, "{host}");
    }
    for host in [
        "attacker.example:6927",
        "10.0.0.1:6927",
        "localhost.attacker.example",
    ] {
        assert_eq!(post(host).await, 400, "{host}");
    }
}
