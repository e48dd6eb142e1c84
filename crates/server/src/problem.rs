//! The HTTP error contract, in one table: every refusal is an [`ApiError`], and each variant
//! has one status. Plain errors answer `application/problem+json` (RFC 9457, the shape the
//! original's service-template also answers); errors about ZObjects answer the Z5 itself.
//!
//! Internal errors (500) answer a fixed message naming a log entry and log the detail there
//! with `tracing::error!`: their detail (database text, host paths, panics) is for the
//! operator, not the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use zeval_zobject::Value;

/// What a client is told about an internal error, followed by the id of its log entry.
const GENERIC_INTERNAL_ERROR: &str = "the server failed to handle this request; see the server log";

/// A new id for a logged error: the process start in seconds (hex) and a counter, so ids are
/// unique across restarts in practice without randomness.
pub fn next_error_id() -> String {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static STARTED: LazyLock<u64> = LazyLock::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    static ERRORS: AtomicU64 = AtomicU64::new(0);
    format!("{:x}-{}", *STARTED, ERRORS.fetch_add(1, Ordering::Relaxed))
}

/// A request the server refuses or could not serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Malformed request (e.g. JSON syntax).
    #[error("{0}")]
    BadRequest(String),
    /// A ZObject failed validation; the body is the (canonical) Z5.
    #[error("invalid object")]
    InvalidObject(Value),
    /// No valid credentials for something that needs them, or a wrong token.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials (or none) that do not allow this; the body is a Z5 saying why.
    #[error("forbidden")]
    Forbidden(Value),
    /// No such object or route.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the state of the object (e.g. writing a built-in).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the configured limit.
    #[error("request body larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// An object to create is within the body limit, but not once its placeholders are
    /// replaced by its ZID, as it would be stored.
    #[error(
        "the object would be stored as {bytes} bytes, its placeholders replaced by its ZID: more than the limit of {limit}"
    )]
    StoredTooLarge {
        /// Its size as stored.
        bytes: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Every work slot is taken; try again after `retry_after` seconds.
    #[error("the server is at its limit of {limit} concurrent requests; retry later")]
    Busy {
        /// The configured limit.
        limit: usize,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// The client already holds its limit of work slots; try again after `retry_after`
    /// seconds.
    #[error(
        "you already have {limit} requests in progress, the limit per client; retry when one has finished"
    )]
    TooManyRequests {
        /// The configured limit per client.
        limit: usize,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// The client started as many requests this minute as it may.
    #[error(
        "you started {per_minute} requests this minute, the limit per client; retry in {retry_after} s"
    )]
    RateLimited {
        /// The configured requests per minute.
        per_minute: u64,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// The client already has its limit of token checks waiting for the store
    /// ([`crate::token_checks`]); try again after `retry_after` seconds.
    #[error(
        "you already have {limit} token checks waiting for the store, the limit per client; retry when one has finished"
    )]
    TooManyTokenChecks {
        /// The limit per client.
        limit: usize,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// The store could not answer in time (no read connection came free, or a search ran
    /// past its limit): 503 with `Retry-After: 1`.
    #[error("{0}")]
    StoreBusy(String),
    /// The body did not arrive within the time allowed.
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyTimeout {
        /// The limit in milliseconds.
        timeout_ms: u64,
    },
    /// Something failed inside the server. The text is logged, never sent: the client gets
    /// a fixed message with the id of the log entry.
    #[error("{0}")]
    Internal(String),
    /// Something failed inside the server and was already logged; the text is what the
    /// client may see (a summary naming the log entry, no detail).
    #[error("{0}")]
    InternalLogged(String),
}

impl ApiError {
    /// The status of each kind of error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidObject(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } | ApiError::StoredTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Busy { .. } | ApiError::StoreBusy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests { .. }
            | ApiError::RateLimited { .. }
            | ApiError::TooManyTokenChecks { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(_) | ApiError::InternalLogged(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = match &self {
            ApiError::InvalidObject(z5) | ApiError::Forbidden(z5) => {
                let body = zeval_zobject::canonicalize(z5).unwrap_or_else(|_| z5.clone());
                (status, axum::Json(body)).into_response()
            }
            _ => {
                let detail = match &self {
                    ApiError::Internal(detail) => {
                        let id = next_error_id();
                        tracing::error!(error_id = %id, error = %detail, "request failed");
                        format!("{GENERIC_INTERNAL_ERROR} (error {id})")
                    }
                    _ => self.to_string(),
                };
                // RFC 9457: with "about:blank" the title is the status's reason phrase.
                let body = json!({
                    "type": "about:blank",
                    "title": status.canonical_reason().unwrap_or("Error"),
                    "status": status.as_u16(),
                    "detail": detail,
                });
                let mut r = (status, axum::Json(body)).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/problem+json"),
                );
                r
            }
        };
        match &self {
            ApiError::Busy { retry_after, .. }
            | ApiError::TooManyRequests { retry_after, .. }
            | ApiError::TooManyTokenChecks { retry_after, .. }
            | ApiError::RateLimited { retry_after, .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::StoreBusy(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            ApiError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_detail() {
        let error = ApiError::Internal(
            "/home/zeval/data/zeval.sqlite: database disk image is malformed".into(),
        );
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("sqlite"), "{text}");
        assert!(!text.contains("/home"), "{text}");
        assert!(text.contains(GENERIC_INTERNAL_ERROR), "{text}");
    }

    #[test]
    fn a_busy_store_is_503_with_retry_after() {
        let response =
            ApiError::StoreBusy("the search ran longer than its limit".into()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn too_many_requests_is_429_with_retry_after() {
        let response = ApiError::TooManyRequests {
            limit: 8,
            retry_after: 3,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
