//! A blocking client of a remote evaluator, with the original orchestrator's response
//! handling (spec §2.7): a 2xx JSON body is the result Z22 verbatim (a `Z22K1`/`Z22K2` of
//! Z23 becomes Z24); anything else is a failure message.

use std::time::Duration;

use zeval_zobject::Value;
use zeval_zobject::build::void;

use crate::wire::{self, Encoding, Request};

/// The largest response body read (the service answers a Z22, usually a few kilobytes).
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// An evaluator service reached over HTTP.
#[derive(Clone)]
pub struct RemoteEvaluator {
    url: String,
    encoding: Encoding,
    agent: ureq::Agent,
}

impl RemoteEvaluator {
    /// A client posting to `url` (e.g. `http://localhost:6927/wikifunctions.org/v1/evaluate/`)
    /// in `encoding`, giving up after `timeout`.
    pub fn new(url: impl Into<String>, encoding: Encoding, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self {
            url: url.into(),
            encoding,
            agent,
        }
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts `request` and returns the result Z22, or the failure message the original
    /// orchestrator would record for this evaluator.
    pub fn evaluate(&self, request: &Request) -> Result<Value, String> {
        let body = wire::encode(request, self.encoding)
            .ok_or_else(|| format!("The request cannot be encoded as {:?}.", self.encoding))?;
        let response = self
            .agent
            .post(&self.url)
            .header("Content-Type", self.encoding.content_type())
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
            return Err(format!(
                "Function evaluation failed with status {status}: {text}"
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
