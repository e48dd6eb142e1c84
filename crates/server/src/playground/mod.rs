//! The web playground on the orchestrator port: a browser UI over the objects, calls and
//! testers APIs, which can also run JavaScript and Python implementations in the user's
//! own browser.
//!
//! - The pages (`/`, `/function/{zid}`, `/object/{zid}`, `/edit/{zid}`, `/new/{kind}`,
//!   `/search`) all answer the same embedded `index.html`; its modules route on the path
//!   client-side, so deep links work when pasted (`/function/Z10000?Z10000K1=abc&run=1`).
//! - The static files (`crates/server/assets/playground/`: plain ES modules and CSS, no
//!   build step, nothing from a CDN) are embedded in the binary at build time and served
//!   at `/playground/{file}` with an `ETag` of their content (revalidated, so a new binary's
//!   files are picked up at once).
//! - The guest modules are served by `guests` at content-hashed URLs, and calls are
//!   planned for the browser by `plan` (`POST /v1/plan`, a work route).
//!
//! Every page answers with a Content-Security-Policy that allows only this origin's scripts
//! (plus wasm compilation), so text from the store (labels, code) can never run as script;
//! the modules also only ever insert it as text.

mod guests;
mod plan;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use guests::{Guests, MAX_GUEST_BYTES};

use crate::AppState;
use crate::problem::ApiError;

/// The embedded static files: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../assets/playground/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/playground/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/api.js"),
    ),
    (
        "zobject.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/zobject.js"),
    ),
    (
        "editor.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/editor.js"),
    ),
    (
        "browser-run.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/browser-run.js"),
    ),
    (
        "worker.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/worker.js"),
    ),
    (
        "wasi.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/wasi.js"),
    ),
];

/// What the pages may load and run: this origin only; `wasm-unsafe-eval` lets the guest
/// modules compile.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     worker-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The page paths (all answer `index.html`).
const PAGES: &[&str] = &[
    "/",
    "/search",
    "/function/{zid}",
    "/object/{zid}",
    "/edit/{zid}",
    "/new/{kind}",
];

/// The playground of one server.
#[derive(Clone)]
pub struct Playground {
    state: AppState,
    guests: Arc<Guests>,
    /// One wiki source for every plan, so that the ZIDs the wiki does not have are
    /// remembered as missing (60 s) across requests, as the call route's are: a source per
    /// request sent every made-up ZID to the wiki again. And what it has is kept
    /// ([`plan::PlanWiki`]): every plan fetched it again, so a client planning a call of a
    /// wiki function in a loop had this server ask the wiki as often.
    wiki: Option<Arc<plan::PlanWiki>>,
}

impl Playground {
    /// The playground over `state`, with guests from the configured guest directory.
    pub fn new(state: &AppState) -> Self {
        Playground {
            state: state.clone(),
            guests: Arc::new(Guests::new(state.config.guest_dir())),
            wiki: state
                .config
                .wiki_url
                .as_ref()
                .map(|url| Arc::new(plan::plan_wiki(url))),
        }
    }

    /// The pages and files (reads, never refused for load).
    pub fn read_routes(&self) -> Router<AppState> {
        let mut router = Router::new();
        for page in PAGES {
            router = router.route(page, get(index));
        }
        let hold_route = Router::new()
            .route("/playground/hold", get(hold))
            .with_state(self.state.config.limits.call_timeout_ms);
        router
            .route("/playground/{file}", get(asset))
            .route("/playground/guests/{file}", get(guest))
            .with_state(self.guests.clone())
            .merge(hold_route)
    }

    /// `POST /v1/plan` (work: the caller puts it behind admission, as calls).
    pub fn work_routes(&self) -> Router<AppState> {
        Router::new()
            .route("/v1/plan", post(plan::handle))
            .with_state((self.state.clone(), self.guests.clone(), self.wiki.clone()))
    }
}

fn find(name: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, content_type, bytes)| (*content_type, *bytes))
}

/// The ETag of an embedded file (its content hash; the files never change while running).
fn etag(bytes: &[u8]) -> String {
    format!("\"{:016x}\"", guests::fnv1a(bytes))
}

fn serve_embedded(name: &str, headers: &HeaderMap) -> Response {
    let Some((content_type, bytes)) = find(name) else {
        return ApiError::NotFound(format!("no file {name} in the playground")).into_response();
    };
    let tag = etag(bytes);
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|given| given.as_bytes() == tag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
    };
    let h = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, tag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Embedded: a response holds no memory of its own while it waits to be read.
    response.extensions_mut().insert(crate::unsent::NotCounted);
    response
}

#[derive(serde::Deserialize)]
struct HoldQuery {
    ms: u64,
}

/// `GET /playground/hold?ms=N`: answers 204 after `N` ms, at most `limits.call_timeout_ms`
/// (no call a browser runs has a longer deadline). While a page
/// runs a call in its browser it keeps a chain of these open (10 ms, doubling up to 250 ms)
/// until the call ends or they add up to its deadline: the deadline is then also measured
/// by this server's clock, which matters where the page's own clocks are virtual (`chromium
/// --headless --virtual-time-budget` jumps to the next timer while a Worker computes, and
/// stops while a request is open). Held requests are idle connections, bounded like any
/// other by `limits.max_connections`.
async fn hold(
    State(longest_ms): State<u64>,
    axum::extract::Query(query): axum::extract::Query<HoldQuery>,
) -> Response {
    tokio::time::sleep(std::time::Duration::from_millis(query.ms.min(longest_ms))).await;
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
    )
        .into_response()
}

async fn index(headers: HeaderMap) -> Response {
    serve_embedded("index.html", &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve_embedded(&file, &headers)
}

async fn guest(State(guests): State<Arc<Guests>>, Path(file): Path<String>) -> Response {
    // The first request reads the files (tens of MB): off the async threads.
    let found = tokio::task::spawn_blocking(move || {
        guests
            .by_file(&file)
            .map(|guest| guest.bytes.clone())
            .ok_or(file)
    })
    .await;
    match found {
        Ok(Ok(bytes)) => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, "application/wasm"),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                bytes,
            )
                .into_response();
            // The guest's bytes are shared by every response: one waiting to be read holds
            // no memory of its own. Counted, a client that asked for the Python guest (20
            // MB) and read nothing took its share of every client's large answers, and 16
            // such addresses made everyone's large answers 503.
            response.extensions_mut().insert(crate::unsent::NotCounted);
            response
        }
        Ok(Err(file)) => ApiError::NotFound(format!(
            "no guest module {file} (its URL changes with its content: ask /v1/plan)"
        ))
        .into_response(),
        Err(e) => ApiError::Internal(format!("reading the guests failed: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_pages_import_is_embedded() {
        let names: Vec<&str> = ASSETS.iter().map(|(n, _, _)| *n).collect();
        for (name, _, bytes) in ASSETS {
            let text = std::str::from_utf8(bytes).unwrap();
            for part in text.split("from './").skip(1) {
                let imported = part.split('\'').next().unwrap();
                assert!(names.contains(&imported), "{name} imports {imported}");
            }
            for part in text.split("/playground/").skip(1) {
                let file = part.split(['"', '\'', '`', '?']).next().unwrap();
                // Guests and the hold route are routes, not files.
                if !file.starts_with("guests/") && file != "hold" && !file.is_empty() {
                    assert!(names.contains(&file), "{name} loads {file}");
                }
            }
        }
    }

    #[test]
    fn etags_follow_the_content() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert!(etag(b"a").starts_with('"'));
    }
}
