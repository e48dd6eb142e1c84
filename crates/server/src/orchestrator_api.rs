//! The orchestrator API (the original's routes, spec §2.1) and the routes that live beside it
//! on the same port: objects, testers, MediaWiki `api.php`, `/metrics`, health and `/_info`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::json;
use zeval_orchestrator::ImplementationPolicy;
use zeval_zobject::Value;
use zeval_zobject::build::string_value;

use crate::access::{Caller, TokenChecked, caller_async, count_rejection};
use crate::config::CallPolicy;
use crate::evaluator_api::answer_first;
use crate::limits::{Admission, ClientKey, ReservedTime, admit, read_body, run_to_completion};
use crate::problem::ApiError;
use crate::{AppState, narrow};

/// The name `/_info` reports.
const SERVICE_NAME: &str = "zeval";
/// Where `/_info/home` points.
const HOME: &str = "/_info";

/// The orchestrator port's router. Work routes (calls, tests, writes) go through
/// [`admit`]: body read first, then per-client and total work slots. Reads of the store
/// (objects, history, search, compilation reports, rankings, `api.php`) have slots of their
/// own, as many and as many per client, so that they never wait behind work nor work behind
/// them; health, metrics and the playground's files are never refused for load.
pub fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    // As many slots, as many per client, counted by the same rules, for work and for reads.
    let admission = || {
        let metrics = state.metrics.clone();
        Admission::new(
            limits.max_concurrent_requests,
            limits.orchestrator_body_bytes,
            std::time::Duration::from_millis(limits.body_timeout_ms),
            limits.retry_after_seconds,
            std::sync::Arc::new(move |reason| {
                metrics.inc("zeval_requests_rejected_total", &[("reason", reason)])
            }),
        )
        .per_client(limits.per_client_concurrent_requests)
        .trusted_proxies(
            crate::client_address::TrustedProxies::parse(&limits.trusted_proxies)
                .unwrap_or_default(),
        )
        .client_ipv6_prefix(limits.client_ipv6_prefix)
    };
    let slots = admission()
        .per_client_rate(limits.per_client_requests_per_minute)
        .shared(state.shared_limits.clone());
    // Anonymous reads of the store run in the blocking pool and may each load a page of
    // objects (up to 100 revisions of 100 KiB): without slots of their own, one client's
    // connections could fill the pool and the memory with them, and calls would wait.
    let read_slots = admission();
    let reads = Router::new()
        .merge(crate::objects_api::read_routes())
        .merge(crate::ranking::http::read_routes())
        .layer(middleware::from_fn_with_state(read_slots, admit))
        .layer(middleware::from_fn(run_to_completion));
    // Calls, and only calls, may run in the reserve: their deadline is what the reserve cuts.
    let reserved = state.metrics.clone();
    let call_slots = slots.clone().reserve(
        limits.reserve_requests,
        std::time::Duration::from_millis(limits.reserve_call_timeout_ms),
        Arc::new(move || reserved.inc("zeval_requests_reserved_total", &[])),
    );
    let calls = Router::new()
        .route("/{domain}/v1/evaluate/", post(evaluate))
        .route("/{domain}/v1/evaluate", post(evaluate))
        .layer(middleware::from_fn_with_state(call_slots, admit))
        .layer(middleware::from_fn(run_to_completion));
    let playground = crate::playground::Playground::new(&state);
    let work = Router::new()
        .merge(playground.work_routes())
        .merge(crate::objects_api::write_routes())
        .merge(crate::ranking::http::write_routes())
        .route("/v1/test", post(crate::testers::http::run))
        .layer(middleware::from_fn_with_state(slots, admit))
        .layer(middleware::from_fn(run_to_completion));
    Router::new()
        .merge(calls)
        .merge(work)
        .route("/{domain}/v1/evaluate/", get(healthy))
        .route("/{domain}/v1/evaluate", get(healthy))
        .merge(reads)
        .merge(crate::reentry_api::routes())
        .merge(playground.read_routes())
        .route("/healthz", get(healthy))
        .route("/_info", get(info))
        .route("/_info/name", get(info_name))
        .route("/_info/version", get(info_version))
        .route("/_info/home", get(|| async { Redirect::permanent(HOME) }))
        .route(
            "/robots.txt",
            get(|| async { "User-agent: *\nDisallow: /\n" }),
        )
        .route("/metrics", get(render_metrics))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::access::reject_wrong_tokens,
        ))
        .with_state(state)
}

async fn healthy() -> &'static str {
    "ok\n"
}

async fn info() -> axum::Json<Value> {
    axum::Json(json!({
        "name": SERVICE_NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "description": "A Wikifunctions-compatible function orchestrator and evaluator",
        "home": HOME,
    }))
}

async fn info_name() -> axum::Json<Value> {
    axum::Json(json!({ "name": SERVICE_NAME }))
}

async fn info_version() -> axum::Json<Value> {
    axum::Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    // Off the async threads (the samplers read the store), one render at a time.
    let text = match state.metrics.render_shared(Instant::now()).await {
        Ok(text) => text,
        Err(e) => {
            return ApiError::Internal(format!("rendering metrics failed: {e}")).into_response();
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Who sends a call (401 for a wrong token) and its body as JSON, read within the
/// orchestrator's body limit; shared by the evaluate and plan routes.
pub(crate) async fn read_call(
    state: &AppState,
    headers: &HeaderMap,
    checked: Option<&TokenChecked>,
    body: Body,
) -> Result<(Option<Caller>, Value), ApiError> {
    let who = caller_async(state.repository.clone(), headers, checked).await?;
    let bytes = read_body(headers, body, state.config.limits.orchestrator_body_bytes)
        .await
        .inspect_err(|e| {
            if matches!(e, ApiError::PayloadTooLarge { .. }) {
                count_rejection(state, "too_large");
            }
        })?;
    let request = zeval_zobject::json::parse_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok((who, request))
}

/// The access rules of a call by `who` (`None`: anonymous) under `access.calls`: 401 when
/// calls need a user, else the policy the orchestrator applies to every implementation it
/// chooses, so that no route (nested calls, inline functions, validators, returned calls)
/// escapes it.
pub(crate) fn call_policy(
    state: &AppState,
    who: Option<&Caller>,
) -> Result<Option<Arc<dyn ImplementationPolicy>>, ApiError> {
    if who.is_some() {
        return Ok(None);
    }
    match state.config.access.calls {
        CallPolicy::Open => Ok(None),
        CallPolicy::Users => {
            count_rejection(state, "unauthenticated");
            Err(ApiError::Unauthorized(
                "calls need `Authorization: Bearer <token>` (calls = \"users\")".into(),
            ))
        }
        CallPolicy::Approved => Ok(Some(Arc::new(narrow::ApprovedOnly::new(
            state.repository.clone(),
        )))),
    }
}

/// `POST /{domain}/v1/evaluate/`: body `{zobject, doValidate, bypassCache}` (or the header
/// `Cache-Control: no-cache` to bypass the result cache), answer always 200 with the
/// canonical Z22, except for requests refused before orchestration (syntax, size, access).
async fn evaluate(
    State(state): State<AppState>,
    headers: HeaderMap,
    checked: Option<Extension<TokenChecked>>,
    reserved: Option<Extension<ReservedTime>>,
    client: Option<Extension<ClientKey>>,
    body: Body,
) -> Result<Response, ApiError> {
    let (who, request) = read_call(&state, &headers, checked.as_deref(), body).await?;
    // As the original: a body without `zobject` (even one that is not an object) is
    // orchestrated as nothing, which answers a Z22 with the error.
    let mut request = match request {
        Value::Object(m) => m,
        _ => Default::default(),
    };
    let do_validate = request
        .get("doValidate")
        .is_some_and(|v| v == &Value::Bool(true));
    // The result cache's lookup is skipped on request (the answer is still stored).
    let bypass = request
        .get("bypassCache")
        .is_some_and(|v| v == &Value::Bool(true))
        || headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|directive| directive.trim().eq_ignore_ascii_case("no-cache"));
    let zobject = request.remove("zobject").unwrap_or(Value::Null);
    let policy = call_policy(&state, who.as_ref())?;
    // Cached answers are kept apart by the rules they were computed under.
    let using = crate::result_cache::CacheUse {
        scope: if policy.is_some() { "approved" } else { "open" },
        bypass,
        timeout: reserved.map(|Extension(ReservedTime(time))| time),
        client: client.map(|Extension(ClientKey(client))| client),
    };
    let answer = run_call(&state, zobject, do_validate, policy, using).await?;
    // A call the access rules refused at its top level answers 403 with the Z559, as
    // before the rules moved into the orchestrator; a refusal deeper down is the Z22's error.
    if let Some(error) = answer.refusal {
        count_rejection(&state, "not_approved");
        return Err(ApiError::Forbidden(error));
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        answer.json,
    )
        .into_response())
}

/// A call's answer as the route sends it.
pub(crate) struct CallAnswer {
    /// The Z22's JSON.
    pub(crate) json: Vec<u8>,
    /// The Z559 error when the access rules refused the call at its top level.
    pub(crate) refusal: Option<Value>,
}

/// Orchestrates on a blocking thread (the runtime gives those a large stack), counting the
/// call in `/metrics`.
pub(crate) async fn run_call(
    state: &AppState,
    zobject: Value,
    do_validate: bool,
    policy: Option<Arc<dyn ImplementationPolicy>>,
    using: crate::result_cache::CacheUse,
) -> Result<CallAnswer, ApiError> {
    let function = narrow::called_function(&zobject)
        .map(str::to_owned)
        .or_else(|| {
            zobject
                .get("Z7K1")
                .and_then(|f| f.get("Z8K5"))
                .and_then(zeval_zobject::build::ref_zid)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "(inline)".into());
    let engine = state.engine.clone();
    let repository = state.repository.clone();
    let metrics = state.metrics.clone();
    let started = Instant::now();
    let (answer, function, implementation_type, outcome) = answer_first(move || {
        let _in_flight = metrics.in_flight();
        let answer = engine.answer_cached(zobject, do_validate, policy, using);
        // Only functions that exist get their own series (see `crate::metrics`).
        let function = metrics.function_label(repository.as_ref(), &function);
        let implementation_type = crate::metrics::implementation_type_label(
            answer.metadata("implementationType").and_then(string_value),
        );
        let error = answer.error();
        let outcome = match error {
            Some(error) if !zeval_zobject::build::is_void(error) => "error",
            _ => "success",
        };
        // The refusal is sent in canonical form, whatever form the answer holds it in.
        let refusal = error
            .filter(|error| {
                error.get("Z5K1").and_then(zeval_zobject::build::ref_zid) == Some("Z559")
            })
            .map(|error| zeval_zobject::canonicalize(error).unwrap_or_else(|_| error.clone()));
        // Written here: a large answer is no work for the runtime's threads.
        let json = answer.into_json();
        (
            CallAnswer { json, refusal },
            function,
            implementation_type,
            outcome,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the call failed: {e}")))?;
    let took = started.elapsed();
    state.metrics.inc(
        "zeval_calls_total",
        &[
            ("function", &function),
            ("implementation_type", implementation_type),
            ("outcome", outcome),
        ],
    );
    state.metrics.observe(
        "zeval_call_duration_seconds",
        &[("implementation_type", implementation_type)],
        took,
    );
    Ok(answer)
}
