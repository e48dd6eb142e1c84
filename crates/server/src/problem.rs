//! The HTTP error contract, in one table: every refusal is an [`ApiError`], and each variant
//! has one status. Plain errors answer `application/problem+json` (RFC 9457, the shape the
//! original's service-template also answers); errors about ZObjects answer the Z5 itself.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use zeval_zobject::Value;

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
    /// Every work slot is taken; try again after `retry_after` seconds.
    #[error("the server is at its limit of {limit} concurrent requests; retry later")]
    Busy {
        /// The configured limit.
        limit: usize,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// Something failed inside the server.
    #[error("{0}")]
    Internal(String),
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
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
                if status.is_server_error() && !matches!(self, ApiError::Busy { .. }) {
                    tracing::error!(error = %self, "request failed");
                }
                // RFC 9457: with "about:blank" the title is the status's reason phrase.
                let body = json!({
                    "type": "about:blank",
                    "title": status.canonical_reason().unwrap_or("Error"),
                    "status": status.as_u16(),
                    "detail": self.to_string(),
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
            ApiError::Busy { retry_after, .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
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
