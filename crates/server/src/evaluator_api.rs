//! The evaluator API, compatible with the original function-evaluator service (spec §3.1):
//! - `POST /{domain}/v1/evaluate/`: any body the original accepts (JSON `{reentrant,
//!   zobject}`, the JSON executor form, Avro 0.0.1–0.0.4); always HTTP 200 with a normal-form
//!   Z22 as JSON. Errors of the call are Z5s inside the Z22. With the headers
//!   `x-zeval-callback-url` and `x-zeval-callback-token` (a zeval orchestrator's callback
//!   route, see `zeval_evaluator::reentry::CallbackClient`), the code's `W.Call`s are posted
//!   there; without them, `W.Call` fails as in the original's non-reentrant executor. The URL
//!   is whatever the caller names: callers are trusted orchestrators (the API requires
//!   `evaluator_secret`, or listens on loopback only).
//! - `GET /{domain}/v1/evaluate/`: health, with the loaded languages.
//! - `GET /_info`: the service, and where guests run: with worker processes, their pids and
//!   what confinement the kernel granted them (a feature the kernel lacks shows as
//!   `unavailable` with the reason); in process on guest lanes, what the lanes have done
//!   (`guest_lanes`: lanes busy, calls queued, and those that ran on a thread of their own
//!   instead).
//!
//! Limits: the body size is axum's `DefaultBodyLimit`, 2 MiB unless the app around this
//! router sets another ([`crate::evaluator_app`] sets `limits.evaluator_body_bytes`); the
//! guest work runs on tokio's blocking threads (`spawn_blocking`, see `run_blocking`),
//! never on the async runtime, under the evaluator's per-call limits.
//!
//! Access: when `evaluator_secret` is configured, every request but health must carry it in
//! [`EVALUATOR_SECRET_HEADER`] (401 otherwise; checked by [`crate::evaluator_app`]); without
//! one, `zeval serve` listens for this API only on loopback ([`crate::Config::check`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use zeval_evaluator::reentry::{CALLBACK_TOKEN_HEADER, CALLBACK_URL_HEADER, CallbackClient};
use zeval_evaluator::{Evaluator, Family};

use crate::guest_lanes::GuestLanes;

/// The header in which an orchestrator sends `evaluator_secret` to the evaluator API.
pub const EVALUATOR_SECRET_HEADER: &str = zeval_evaluator::client::SECRET_HEADER;

/// The evaluator API over `evaluator`, its calls run on tokio's blocking threads.
pub fn router(evaluator: Arc<Evaluator>) -> Router {
    router_with(evaluator, None)
}

/// The evaluator API over `evaluator`, its calls run on `lanes` (see [`GuestLanes`]; meant
/// for guests in this process: a call through a worker process waits for it, and a lane
/// would wait with it).
pub fn router_on_lanes(evaluator: Arc<Evaluator>, lanes: Arc<GuestLanes>) -> Router {
    router_with(evaluator, Some(lanes))
}

fn router_with(evaluator: Arc<Evaluator>, lanes: Option<Arc<GuestLanes>>) -> Router {
    Router::new()
        .route("/{domain}/v1/evaluate/", get(health).post(evaluate))
        .route("/{domain}/v1/evaluate", get(health).post(evaluate))
        .route("/_info", get(info))
        .with_state(Api { evaluator, lanes })
}

/// The state of the evaluator API's routes.
#[derive(Clone)]
struct Api {
    evaluator: Arc<Evaluator>,
    lanes: Option<Arc<GuestLanes>>,
}

/// A request that carried the configured `evaluator_secret` (set by the secret's check), so
/// its [`CLIENT_HEADER`] is its orchestrator's word.
#[derive(Clone, Copy)]
pub struct FromOrchestrator;

/// The header in which an orchestrator names the client a call is for, as an opaque digest
/// ([`zeval_evaluator::client::CLIENT_HEADER`]). Read only from a request that carried the
/// evaluator secret: without one (loopback), anyone local could name another client and take
/// its place in line for the call-time compiler.
pub const CLIENT_HEADER: &str = zeval_evaluator::client::CLIENT_HEADER;

/// The longest [`CLIENT_HEADER`] read: an orchestrator sends 64 hexadecimal digits.
const MAX_CLIENT_HEADER_BYTES: usize = 128;

async fn evaluate(
    State(Api { evaluator, lanes }): State<Api>,
    from_orchestrator: Option<axum::Extension<FromOrchestrator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    // An orchestrator that takes the code's nested calls back names where (see
    // `crate::reentry_api`); only `http(s)` URLs are followed.
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let client: Option<Arc<str>> = from_orchestrator
        .and_then(|_| header_text(CLIENT_HEADER))
        .filter(|client| !client.is_empty() && client.len() <= MAX_CLIENT_HEADER_BYTES)
        .map(Arc::from);
    let mut callback = header_text(CALLBACK_URL_HEADER)
        .zip(header_text(CALLBACK_TOKEN_HEADER))
        .and_then(|(url, token)| CallbackClient::new(&url, &token));
    let work = move || {
        let nested = callback
            .as_mut()
            .map(|callback| callback as &mut dyn zeval_evaluator::NestedCalls);
        evaluator
            .answer_body_for(&body, content_type.as_deref(), nested, client)
            .to_json()
    };
    match run_blocking(lanes.as_deref(), work).await {
        Some(json) => json_response(StatusCode::OK, json),
        None => {
            let body = serde_json::json!({"error": "the evaluation failed unexpectedly"});
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                body.to_string().into_bytes(),
            )
        }
    }
}

/// Runs a call's blocking work on tokio's blocking threads and hands its answer back before
/// the instance of a guest run in this process is reset ([`answer_first`]); `None` if it
/// panicked (logged).
///
/// Running it on the thread that read the request instead (`block_in_place`) was measured
/// (docs/benchmarks.md, 2026-12-03): with one client it made no difference beyond the noise,
/// and with eight it lost 13 % of the calls per second on average (in four pairs of five),
/// the churn of handing the worker's other tasks to another thread on every call costing
/// more than the hop it saves. Taking the hop out altogether (the call run on the async worker
/// that read the request, or each connection served start to end by one thread) did not
/// raise the rate either, and it would let one long call hold its thread's other connections
/// (docs/benchmarks.md, "Without the hop", 2026-12-07).
///
/// On `lanes`, when the router has them, the hop costs less under load: a lane that finds the
/// next call queued takes it without sleeping ([`GuestLanes`]).
async fn run_blocking<T: Send + 'static>(
    lanes: Option<&GuestLanes>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let answer = match lanes {
        Some(lanes) => lanes.run(work).await,
        None => answer_first(work).await,
    };
    answer
        .inspect_err(|error| tracing::error!(%error, "an evaluation task failed"))
        .ok()
}

/// Runs `work` on tokio's blocking threads and returns its value as soon as it is ready: the
/// reset of the last guest instance it ran in this process (wasmtime copying the call's dirty
/// pages back) is done on that thread after the value is sent, while the caller writes the
/// response (`zeval_sandbox::answer_first`; at most one reset waits per thread, and the
/// instance's pool slot stays taken until it is done). Guests in worker processes already
/// answer first. The error is the task's panic.
pub(crate) async fn answer_first<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (sender, answer) = tokio::sync::oneshot::channel();
    let task = tokio::task::spawn_blocking(move || send_then_reset(work, sender));
    match answer.await {
        Ok(value) => Ok(value),
        Err(_) => Err(match task.await {
            Err(error) => error.to_string(),
            Ok(()) => "the task ended without an answer".to_owned(),
        }),
    }
}

/// Runs `work`, sends its value, and only then resets the guest instance it ran
/// (`zeval_evaluator::answer_first`): the blocking side of [`answer_first`] and of a guest
/// lane's call.
pub(crate) fn send_then_reset<T>(
    work: impl FnOnce() -> T,
    sender: tokio::sync::oneshot::Sender<T>,
) {
    let (value, reset_left) = zeval_evaluator::answer_first(work);
    // Nobody waits for it when the client has gone; the reset is done all the same.
    let _ = sender.send(value);
    drop(reset_left);
}

async fn health(State(Api { evaluator, .. }): State<Api>) -> Response {
    let mut languages = serde_json::Map::new();
    for family in [Family::JavaScript, Family::Python] {
        if let Some(version) = evaluator.language_version(family) {
            languages.insert(family.to_string(), version.into());
        }
    }
    let body = serde_json::json!({
        "status": "ok",
        "variant": evaluator.variant().name(),
        "languages": languages,
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

async fn info(State(Api { evaluator, lanes }): State<Api>) -> Response {
    let (isolation, workers) = match evaluator.worker_status() {
        Some(status) => (
            "worker processes",
            serde_json::to_value(status).unwrap_or_default(),
        ),
        None => ("in process (wasm sandbox only)", serde_json::Value::Null),
    };
    let body = serde_json::json!({
        "name": "zeval evaluator",
        "version": env!("CARGO_PKG_VERSION"),
        "isolation": isolation,
        "workers": workers,
        "guest_lanes": lanes.map(|lanes| lanes.status()),
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}
