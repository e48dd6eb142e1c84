//! Admission control: request bodies have a size limit, and work has a concurrency limit.
//!
//! - Bodies are read with [`read_body`], which stops at the configured limit and answers 413
//!   with the limit in the message (a `Content-Length` over the limit is refused before
//!   reading anything).
//! - Work (calls, tests, writes) holds a permit of a semaphore sized
//!   `limits.max_concurrent_requests`. When none is free the answer is at once 503 with
//!   `Retry-After`: a queue without bound would only turn overload into timeouts for everyone.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::problem::ApiError;

/// The work slots of one service.
#[derive(Clone)]
pub struct WorkSlots {
    semaphore: Arc<Semaphore>,
    limit: usize,
    retry_after: u64,
    on_reject: Arc<dyn Fn() + Send + Sync>,
}

impl WorkSlots {
    /// `limit` slots; `on_reject` runs for each 503 (to count it).
    pub fn new(limit: usize, retry_after: u64, on_reject: Arc<dyn Fn() + Send + Sync>) -> Self {
        WorkSlots {
            semaphore: Arc::new(Semaphore::new(limit.max(1))),
            limit,
            retry_after,
            on_reject,
        }
    }
}

/// Middleware: holds a slot while the inner service runs, or answers 503.
pub async fn limit_concurrency(
    State(slots): State<WorkSlots>,
    request: Request,
    next: Next,
) -> Response {
    match slots.semaphore.clone().try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            (slots.on_reject)();
            ApiError::Busy {
                limit: slots.limit,
                retry_after: slots.retry_after,
            }
            .into_response()
        }
    }
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // `to_bytes` reports both a broken stream and the limit as one error type; the limit
        // is the one whose source is `LengthLimitError`.
        let text = format!("{e:?}");
        if text.contains("LengthLimit") {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BadRequest(format!("could not read the request body: {e}"))
        }
    })
}

/// Middleware turning a bare 413 from an inner router (e.g. axum's `DefaultBodyLimit`) into
/// the problem JSON with the limit.
pub async fn explain_too_large(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v != "application/problem+json")
    {
        return ApiError::PayloadTooLarge { limit }.into_response();
    }
    response
}
