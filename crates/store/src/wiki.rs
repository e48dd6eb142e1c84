//! [`WikiSource`]: objects from a MediaWiki API with WikiLambda
//! (`?action=wikilambda_fetch&format=json&zids=A|B`).

use std::collections::HashMap;
use std::time::Duration;

use zeval_zobject::Value;
use zeval_zobject::ident::is_zid;

use crate::{ObjectSource, StoreError};

/// How long one request may take, connecting included, unless configured otherwise.
pub const DEFAULT_WIKI_TIMEOUT: Duration = Duration::from_secs(10);

/// The most ZIDs asked for in one request. MediaWiki caps multi-value parameters at 50 for
/// ordinary clients (`apihighlimits` raises it to 500 for bots), so more ZIDs are split into
/// several requests, made one after the other.
pub const MAX_ZIDS_PER_REQUEST: usize = 50;

/// The largest response body read; a bigger one is a fetch error. 50 objects of a few
/// hundred kB each fit.
pub const MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// Fetches canonical Z2s from a wiki over HTTP (blocking).
///
/// A ZID the wiki does not return is absent from the answer (the orchestrator turns that
/// into Z504, as the original does), including when the wiki answers with an error object
/// instead of objects. Transport failures, non-200 answers, and bodies that are not JSON are
/// [`StoreError::Fetch`]. Only well-formed ZIDs are sent; others are simply absent.
#[derive(Debug, Clone)]
pub struct WikiSource {
    api_url: String,
    agent: ureq::Agent,
}

impl WikiSource {
    /// A source for the `api.php` at `api_url` (e.g. `https://www.wikifunctions.org/w/api.php`)
    /// with [`DEFAULT_WIKI_TIMEOUT`].
    pub fn new(api_url: impl Into<String>) -> Self {
        Self::with_timeout(api_url, DEFAULT_WIKI_TIMEOUT)
    }

    /// A source whose every request gives up after `timeout`.
    pub fn with_timeout(api_url: impl Into<String>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("zeval/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            api_url: api_url.into(),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// The API URL requests go to.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    fn fetch_batch(
        &self,
        zids: &[&str],
        found: &mut HashMap<String, Value>,
    ) -> Result<(), StoreError> {
        let joined = zids.join("|");
        let fail = |message: String| StoreError::Fetch {
            zids: joined.clone(),
            message,
        };
        tracing::debug!(url = %self.api_url, zids = %joined, "fetching from the wiki");
        let mut response = self
            .agent
            .get(&self.api_url)
            .query("action", "wikilambda_fetch")
            .query("format", "json")
            .query("zids", &joined)
            .call()
            .map_err(|e| fail(format!("request to {} failed: {e}", self.api_url)))?;
        let status = response.status();
        if status != 200 {
            return Err(fail(format!("{} answered HTTP {status}", self.api_url)));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| {
                fail(format!(
                    "reading the answer of {} failed: {e}",
                    self.api_url
                ))
            })?;
        let answer = zeval_zobject::json::parse(&body)
            .map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
        let Value::Object(entries) = answer else {
            return Err(fail("the answer is not a JSON object".into()));
        };
        if let Some(error) = entries.get("error") {
            tracing::debug!(%error, "the wiki answered with an error; its ZIDs count as missing");
        }
        for zid in zids {
            let Some(text) = entries
                .get(*zid)
                .and_then(|e| e.get("wikilambda_fetch"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let object = zeval_zobject::json::parse(text)
                .map_err(|e| fail(format!("the object of {zid} is not JSON: {e}")))?;
            found.insert(zid.to_string(), object);
        }
        Ok(())
    }
}

impl ObjectSource for WikiSource {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        let mut wanted: Vec<&str> = Vec::with_capacity(zids.len());
        for zid in zids {
            if is_zid(zid) && !wanted.contains(&zid.as_str()) {
                wanted.push(zid);
            }
        }
        let mut found = HashMap::new();
        for batch in wanted.chunks(MAX_ZIDS_PER_REQUEST) {
            self.fetch_batch(batch, &mut found)?;
        }
        Ok(found)
    }
}
