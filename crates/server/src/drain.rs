//! The drain of an evaluator node on SIGTERM: it stops taking calls, finishes those in
//! flight, then exits.
//!
//! [`layer`] sits around the evaluator API. While the node serves, it counts evaluate
//! requests in flight. Once [`Drain::start`] is called (by `serve` on SIGINT/SIGTERM):
//! - new evaluate requests (`POST`) get 503 with `Retry-After` and
//!   [`DRAINING_HEADER`], without running, so an orchestrator sends them to another
//!   evaluator ([`crate::evaluator_pool`]);
//! - the health route (`GET` on the evaluate route) answers 503 `{"status": "draining"}`
//!   with the same header, so orchestrators checking health stop sending calls;
//! - `GET /_info` still answers 200 (a liveness probe must not kill a node that drains).
//!
//! `serve` waits for [`Drain::finished`] (no evaluate request in flight), bounded by
//! `failover.drain_timeout_ms`, before it closes the listener.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;
pub use zeval_evaluator::client::DRAINING_HEADER;

/// Whether the evaluator API is draining, and the evaluate requests in flight.
pub struct Drain {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    retry_after_seconds: u64,
}

impl Drain {
    /// Not draining; refused requests will say `Retry-After: retry_after_seconds`.
    pub fn new(retry_after_seconds: u64) -> Arc<Drain> {
        Arc::new(Drain {
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            retry_after_seconds,
        })
    }

    /// From now on, refuse new evaluate requests and say so in health.
    pub fn start(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether [`Drain::start`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Evaluate requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until no evaluate request is in flight.
    pub async fn finished(&self) {
        loop {
            let idle = self.idle.notified();
            let mut idle = std::pin::pin!(idle);
            // Registered before the count is read, so a wake-up in between is not lost.
            idle.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// An evaluate request in flight until dropped.
struct InFlight(Arc<Drain>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Middleware: counts evaluate requests; while draining, refuses them and reports draining
/// in health (see the module documentation).
pub async fn layer(State(drain): State<Arc<Drain>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let evaluate_route = path.ends_with("/v1/evaluate") || path.ends_with("/v1/evaluate/");
    match *request.method() {
        Method::POST => {
            // Counted before the flag is read: a drain that starts in between waits for it.
            drain.in_flight.fetch_add(1, Ordering::SeqCst);
            let in_flight = InFlight(drain.clone());
            if drain.is_draining() {
                drop(in_flight);
                return draining(
                    &drain,
                    serde_json::json!({
                        "error": "this evaluator is shutting down and takes no new calls; \
                                  send the call to another one"
                    }),
                );
            }
            let response = next.run(request).await;
            drop(in_flight);
            response
        }
        Method::GET | Method::HEAD if evaluate_route && drain.is_draining() => {
            draining(&drain, serde_json::json!({"status": "draining"}))
        }
        _ => next.run(request).await,
    }
}

fn draining(drain: &Drain, body: serde_json::Value) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from(drain.retry_after_seconds),
    );
    headers.insert(DRAINING_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app(drain: &Arc<Drain>, gate: Arc<tokio::sync::Semaphore>) -> Router {
        Router::new()
            .route(
                "/w/v1/evaluate/",
                get(|| async { "ok" }).post(move || {
                    let gate = gate.clone();
                    async move {
                        let _ = gate.acquire().await;
                        "done"
                    }
                }),
            )
            .route("/_info", get(|| async { "info" }))
            .layer(axum::middleware::from_fn_with_state(drain.clone(), layer))
    }

    fn request(method: &str, path: &str) -> Request {
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn a_drain_refuses_new_calls_and_waits_for_those_in_flight() {
        let drain = Drain::new(2);
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let app = app(&drain, gate.clone());
        let health = app
            .clone()
            .oneshot(request("GET", "/w/v1/evaluate/"))
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        // A call in flight, held by the gate.
        let in_flight = tokio::spawn(app.clone().oneshot(request("POST", "/w/v1/evaluate/")));
        while drain.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drain.start();
        let refused = app
            .clone()
            .oneshot(request("POST", "/w/v1/evaluate/"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "2");
        assert!(refused.headers().contains_key(DRAINING_HEADER));
        let health = app
            .clone()
            .oneshot(request("GET", "/w/v1/evaluate/"))
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
        let info = app.clone().oneshot(request("GET", "/_info")).await.unwrap();
        assert_eq!(info.status(), StatusCode::OK, "liveness stays up");
        // The drain waits for the call in flight, which finishes normally.
        let finished = tokio::time::timeout(Duration::from_millis(50), drain.finished()).await;
        assert!(finished.is_err(), "the drain ended with a call in flight");
        gate.add_permits(1);
        let answer = in_flight.await.unwrap().unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        tokio::time::timeout(Duration::from_secs(5), drain.finished())
            .await
            .expect("the drain ends once no call is in flight");
    }
}
