//! A blocking client of a remote evaluator, with the original orchestrator's response
//! handling (spec §2.7): a 2xx JSON body is the result Z22 verbatim (a `Z22K1`/`Z22K2` of
//! Z23 becomes Z24); anything else is a failure message.

use std::time::Duration;

use zeval_zobject::Value;
use zeval_zobject::build::void;

use crate::wire::{self, Encoding, Request};

/// The largest response body read (the service answers a Z22, usually a few kilobytes).
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// The most characters of a failed response's body that a failure message quotes.
const MAX_QUOTED_BODY_CHARS: usize = 200;

/// An evaluator service reached over HTTP.
#[derive(Clone)]
pub struct RemoteEvaluator {
    url: String,
    encoding: Encoding,
    timeout: Duration,
    agent: ureq::Agent,
    secret: Option<String>,
}

/// The header that carries the shared secret an evaluator service may require of its
/// orchestrators (`zeval serve`'s `evaluator_secret`).
pub const SECRET_HEADER: &str = "x-zeval-evaluator-secret";

impl RemoteEvaluator {
    /// A client posting to `url` (e.g. `http://localhost:6927/wikifunctions.org/v1/evaluate/`)
    /// in `encoding`, giving up after `timeout` at most (each call may give up sooner, see
    /// [`RemoteEvaluator::evaluate_within`]).
    pub fn new(url: impl Into<String>, encoding: Encoding, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self {
            url: url.into(),
            encoding,
            timeout,
            agent,
            secret: None,
        }
    }

    /// The same client, sending `secret` in [`SECRET_HEADER`] with every request.
    pub fn with_secret(mut self, secret: Option<String>) -> Self {
        self.secret = secret.filter(|s| !s.is_empty());
        self
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts `request` and returns the result Z22, or the failure message the original
    /// orchestrator would record for this evaluator. Waits up to the configured timeout.
    pub fn evaluate(&self, request: &Request) -> Result<Value, String> {
        self.evaluate_within(request, self.timeout)
    }

    /// [`RemoteEvaluator::evaluate`] for a caller with `remaining` time left on its
    /// deadline: the call gives up after the smaller of the configured timeout and
    /// `remaining`, and the remaining time is sent as `remainingTime` (seconds) so that
    /// the evaluator caps the guest's wall time too.
    pub fn evaluate_within(&self, request: &Request, remaining: Duration) -> Result<Value, String> {
        self.post(request, remaining, None)
    }

    /// [`RemoteEvaluator::evaluate_within`] for a reentrant request: the evaluator posts the
    /// code's nested calls to `callback_url` with `token` (see
    /// [`crate::reentry::CallbackClient`]).
    pub fn evaluate_calling_back(
        &self,
        request: &Request,
        remaining: Duration,
        callback_url: &str,
        token: &str,
    ) -> Result<Value, String> {
        self.post(request, remaining, Some((callback_url, token)))
    }

    fn post(
        &self,
        request: &Request,
        remaining: Duration,
        callback: Option<(&str, &str)>,
    ) -> Result<Value, String> {
        let timeout = self.timeout.min(remaining);
        if timeout.is_zero() {
            return Err(format!(
                "request to {} not sent, reason: no time left",
                self.url
            ));
        }
        let remaining_time = remaining.as_secs_f64();
        let body =
            wire::encode_with_remaining_time(request, self.encoding, Some(remaining_time))
                .ok_or_else(|| format!("The request cannot be encoded as {:?}.", self.encoding))?;
        let mut post = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", self.encoding.content_type());
        if let Some(secret) = &self.secret {
            post = post.header(SECRET_HEADER, secret);
        }
        if let Some((url, token)) = callback {
            post = post
                .header(crate::reentry::CALLBACK_URL_HEADER, url)
                .header(crate::reentry::CALLBACK_TOKEN_HEADER, token);
        }
        let response = post
            .send(&body[..])
            .map_err(|error| format!("request to {} failed, reason: {error}", self.url))?;
        let status = response.status().as_u16();
        let mut response = response;
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|error| format!("request to {} failed, reason: {error}", self.url))?;
        if !(200..300).contains(&status) {
            let quoted: String = text.chars().take(MAX_QUOTED_BODY_CHARS).collect();
            return Err(format!(
                "Function evaluation failed with status {status}: {quoted}"
            ));
        }
        let mut z22 = zeval_zobject::json::parse(&text)
            .map_err(|error| format!("The evaluator returned invalid JSON: {error}"))?;
        for key in ["Z22K1", "Z22K2"] {
            if z22.get(key).and_then(zeval_zobject::build::ref_zid) == Some("Z23") {
                z22[key] = void();
            }
        }
        Ok(z22)
    }
}
