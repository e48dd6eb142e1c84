//! A blocking client of a remote evaluator, with the original orchestrator's response
//! handling (spec §2.7): a 2xx JSON body is the result Z22 verbatim (a `Z22K1`/`Z22K2` of
//! Z23 becomes Z24); anything else is a failure message.
//!
//! For an orchestrator that can send a call elsewhere, [`RemoteEvaluator::try_evaluate`]
//! says why there is no answer ([`FailureKind`]): no response at all (the evaluator is gone),
//! refused without running (503: busy or draining), or failed. [`RemoteEvaluator::health`]
//! asks the evaluate route's `GET` health.

use std::time::Duration;

use zeval_zobject::Value;
use zeval_zobject::build::void;

use crate::wire::{self, Encoding, Request};

/// The largest response body read (the service answers a Z22, usually a few kilobytes).
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// Idle connections kept alive to the evaluator (the evaluator API's default number of
/// work slots). ureq keeps 3 per host by default, which makes an orchestrator with more
/// calls in flight open and close a connection for most of them.
const MAX_IDLE_CONNECTIONS: usize = 32;

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

/// The header in which an orchestrator names the client a call is for
/// ([`crate::ExecutorRequest::client`]: a digest of the orchestrator's per-client key, never
/// a token), for what the evaluator shares among clients (one call in line per client for the
/// call-time compiler). An evaluator believes it only from a request with the secret.
pub const CLIENT_HEADER: &str = "x-zeval-client";

impl RemoteEvaluator {
    /// A client posting to `url` (e.g. `http://localhost:6927/wikifunctions.org/v1/evaluate/`)
    /// in `encoding`, giving up after `timeout` at most (each call may give up sooner, see
    /// [`RemoteEvaluator::evaluate_within`]).
    pub fn new(url: impl Into<String>, encoding: Encoding, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A redirect would send the request, secret and callback headers included, to
            // whatever host the answer names (ureq keeps custom headers on a redirect), and
            // bring that host's answer back as the evaluator's.
            .max_redirects(0)
            // ureq takes a proxy from `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` by default: an
            // egress proxy set for the wiki would then get every call's code, arguments and
            // the evaluator secret, in clear text over `http://`. Evaluators are reached
            // directly.
            .proxy(None)
            .timeout_global(Some(timeout))
            .max_idle_connections(MAX_IDLE_CONNECTIONS)
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS)
            .build();
        // No lookup (and no thread for one) when the URL names an address.
        let agent = zeval_resolver::agent(agent);
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
        self.try_evaluate(request, remaining, callback)
            .map_err(|failure| failure.message)
    }

    /// [`RemoteEvaluator::evaluate_within`] (with `callback`, as
    /// [`RemoteEvaluator::evaluate_calling_back`]), saying why there is no answer: see
    /// [`FailureKind`] for which failures leave the call unrun.
    pub fn try_evaluate(
        &self,
        request: &Request,
        remaining: Duration,
        callback: Option<(&str, &str)>,
    ) -> Result<Value, RemoteFailure> {
        self.try_evaluate_for(request, remaining, callback, None)
    }

    /// [`RemoteEvaluator::try_evaluate`] for a call of `client` (sent in [`CLIENT_HEADER`]
    /// when there is one and this client sends the evaluator secret).
    pub fn try_evaluate_for(
        &self,
        request: &Request,
        remaining: Duration,
        callback: Option<(&str, &str)>,
        client: Option<&str>,
    ) -> Result<Value, RemoteFailure> {
        let failed = |message: String| RemoteFailure {
            kind: FailureKind::Failed,
            message,
        };
        let timeout = self.timeout.min(remaining);
        if timeout.is_zero() {
            return Err(failed(
                "request to the evaluator not sent, reason: no time left".to_owned(),
            ));
        }
        let remaining_time = remaining.as_secs_f64();
        let body = wire::encode_with_remaining_time(request, self.encoding, Some(remaining_time))
            .ok_or_else(|| {
            failed(format!(
                "The request cannot be encoded as {:?}.",
                self.encoding
            ))
        })?;
        let mut post = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", self.encoding.content_type());
        if let Some(secret) = &self.secret {
            post = post.header(SECRET_HEADER, secret);
            if let Some(client) = client {
                post = post.header(CLIENT_HEADER, client);
            }
        }
        if let Some((url, token)) = callback {
            post = post
                .header(crate::reentry::CALLBACK_URL_HEADER, url)
                .header(crate::reentry::CALLBACK_TOKEN_HEADER, token);
        }
        let response = post.send(&body[..]).map_err(|error| RemoteFailure {
            kind: if no_response(&error) {
                FailureKind::NoResponse
            } else {
                FailureKind::Failed
            },
            message: format!("request to the evaluator failed, reason: {error}"),
        })?;
        let status = response.status().as_u16();
        let draining = response.headers().contains_key(DRAINING_HEADER);
        let mut response = response;
        // From here on the evaluator has answered: a body cut short is a failure, never a
        // reason to run the call again.
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|error| failed(format!("request to the evaluator failed, reason: {error}")))?;
        if !(200..300).contains(&status) {
            let quoted: String = text.chars().take(MAX_QUOTED_BODY_CHARS).collect();
            return Err(RemoteFailure {
                kind: if status == 503 {
                    FailureKind::Refused { draining }
                } else {
                    FailureKind::Failed
                },
                message: format!("Function evaluation failed with status {status}: {quoted}"),
            });
        }
        // An evaluator's answer holds its guest's answer (at most `MAX_ANSWER_TOKENS` values)
        // and some metadata: no more is parsed, or 16 MiB of `[0,0,…]` (16 KiB gzipped)
        // would make some 800 MiB of values here.
        let mut z22 = zeval_zobject::json::parse_within_tokens(&text, MAX_ANSWER_VALUES)
            .map_err(|error| failed(format!("The evaluator returned invalid JSON: {error}")))?;
        for key in ["Z22K1", "Z22K2"] {
            if z22.get(key).and_then(zeval_zobject::build::ref_zid) == Some("Z23") {
                z22[key] = void();
            }
        }
        Ok(z22)
    }

    /// The evaluator's health, from `GET` on its evaluate route (which needs no secret),
    /// waiting at most `timeout`: 200 is healthy; a 503 with [`DRAINING_HEADER`] (or a body
    /// saying `draining`) is draining; anything else, or no answer, is down.
    pub fn health(&self, timeout: Duration) -> Health {
        let answer = self
            .agent
            .get(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call();
        match answer {
            Err(error) => Health::Down(format!("health check of {} failed: {error}", self.url)),
            Ok(mut response) => {
                let status = response.status().as_u16();
                let draining_header = response.headers().contains_key(DRAINING_HEADER);
                let text = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_HEALTH_BYTES)
                    .lossy_utf8(true)
                    .read_to_string()
                    .unwrap_or_default();
                if status == 200 {
                    Health::Healthy
                } else if status == 503 && (draining_header || text.contains("draining")) {
                    Health::Draining
                } else {
                    let quoted: String = text.chars().take(MAX_QUOTED_BODY_CHARS).collect();
                    Health::Down(format!(
                        "health check of {} answered {status}: {quoted}",
                        self.url
                    ))
                }
            }
        }
    }
}

/// The most JSON values parsed from an evaluator's answer: a guest's answer
/// ([`crate::MAX_ANSWER_TOKENS`]) and room for the metadata around it.
pub const MAX_ANSWER_VALUES: usize = crate::MAX_ANSWER_TOKENS + 64 * 1024;

/// The header a draining evaluator sets on its 503s (health and refused evaluations).
pub const DRAINING_HEADER: &str = "x-zeval-draining";

/// The largest health answer read (a few hundred bytes in practice).
const MAX_HEALTH_BYTES: u64 = 64 * 1024;

/// What [`RemoteEvaluator::health`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Takes calls.
    Healthy,
    /// Finishes the calls it has and takes no new ones.
    Draining,
    /// Unreachable or answering something else (why).
    Down(String),
}

/// Why [`RemoteEvaluator::try_evaluate`] has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteFailure {
    /// Whether the evaluator ran the call.
    pub kind: FailureKind,
    /// The failure message the original orchestrator would record.
    pub message: String,
}

/// Whether a failed request left the call unrun, so that it may go to another evaluator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No response came: the connection was refused, reset or closed before the status line
    /// (the evaluator died or was never there). It may have started the code, but nothing
    /// of its answer arrived.
    NoResponse,
    /// The evaluator answered 503 without running the call: all its slots were busy, or it
    /// is draining (`draining`, from [`DRAINING_HEADER`]).
    Refused {
        /// The evaluator said it is shutting down.
        draining: bool,
    },
    /// Anything else: a timeout (the deadline is gone), an answer cut short, another error
    /// status, a body that is not JSON.
    Failed,
}

/// Whether `error` (from sending a request) means that no response arrived: the connection
/// failed or closed before the status line. Timeouts are not: the call's time is spent.
fn no_response(error: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match error {
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
                | ErrorKind::NotConnected
                | ErrorKind::AddrNotAvailable
        ),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        _ => false,
    }
}
