//! The objects API (`/v1/objects…`) and the MediaWiki-compatible `GET /w/api.php?action=
//! wikilambda_fetch`, so that the original orchestrator could use zeval as its wiki.
//!
//! Writes are validated before anything is stored: the body must be a canonical Z2 (schema
//! Z2), its `Z2K1` must name the ZID being written, and its value `Z2K2` must be valid for its
//! type (a built-in type's schema, or a user-defined Z4 from the store). A bad object gets
//! 400 with the Z5 as JSON. ZIDs past [`zeval_store::MAX_ZID_NUMBER`] are refused (400).
//!
//! Two editors saving the same object: a `PUT` may carry `If-Match: "<revision>"`, the
//! revision it was based on; when another save came first it gets 409 with the current
//! revision and nothing is written (see `base_revision`). Without the header a `PUT` writes
//! on top of whatever is current, as before.
//!
//! Reads are anonymous and take read slots (not work slots: `crate::orchestrator_api`), and
//! each is bounded: `/history` answers a page
//! of revisions ([`DEFAULT_HISTORY_REVISIONS`], at most
//! [`zeval_store::MAX_HISTORY_REVISIONS`]) with a `next` cursor, and a `search` text is at
//! most [`MAX_SEARCH_CHARS`] (400 beyond).
//!
//! Every store access runs on tokio's blocking pool (`blocking`, and
//! [`crate::access::caller_async`] for tokens). When the store fails, its text (database
//! messages, file paths) goes to the log under an id (`store_failed`); the client gets a
//! generic 500, or, where validation quotes the failure in a Z5, only the id.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::json;
use zeval_zobject::build::{ref_zid, type_zid, z6};
use zeval_zobject::error::z5;
use zeval_zobject::ident::is_zid;
use zeval_zobject::{Form, Value};

use crate::access::{TokenChecked, count_rejection, writer};
use crate::limits::read_body;
use crate::problem::ApiError;
use crate::{AppState, Repository, RepositoryError, narrow};

/// Most search hits returned at once.
const MAX_SEARCH_RESULTS: usize = 500;

/// The longest `search` text accepted, in characters (longer: 400). Every search compares
/// it with every label (`LIKE '%text%'`, costing about label length × text length per
/// object), so the text is bounded like the results; no label worth finding is longer.
pub const MAX_SEARCH_CHARS: usize = 200;

/// Revisions in a `/history` page when the request gives no `limit`; a larger limit is
/// clamped to [`zeval_store::MAX_HISTORY_REVISIONS`], since each carries its whole object.
pub const DEFAULT_HISTORY_REVISIONS: usize = 50;

/// Most ZIDs one `wikilambda_fetch` may ask for: MediaWiki's limit for a multi-value
/// parameter (for clients without `apihighlimits`); more is its `toomanyvalues` error.
const MAX_FETCH_ZIDS: usize = 50;

pub(crate) fn read_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/objects", get(search))
        .route("/v1/objects/{zid}", get(fetch))
        .route("/v1/objects/{zid}/history", get(history))
        .route("/v1/objects/{zid}/compilation", get(compilation))
        .route("/v1/objects/{zid}/approval", get(approval_preview))
        .route("/w/api.php", get(mediawiki_api))
}

pub(crate) fn write_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/objects", post(create))
        .route("/v1/objects/{zid}", axum::routing::put(put))
        .route("/v1/objects/{zid}/approve", post(approve))
}

impl From<RepositoryError> for ApiError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::NotFound(zid) => ApiError::NotFound(format!("{zid} does not exist")),
            RepositoryError::BuiltIn(zid) => {
                ApiError::Conflict(format!("{zid} is built in and cannot be changed"))
            }
            RepositoryError::Invalid(message) => ApiError::BadRequest(message),
            RepositoryError::Store(message) => store_failed(&message),
            RepositoryError::Busy(message) => ApiError::StoreBusy(message),
            conflict @ RepositoryError::Conflict { .. } => ApiError::Conflict(conflict.to_string()),
            RepositoryError::Changed(message) => ApiError::Conflict(message),
        }
    }
}

/// The revision a `PUT` is based on, from `If-Match: "<revision>"` (an entity tag; a bare
/// number and a weak tag `W/"<revision>"` are taken too; `"0"` means the object must not
/// exist yet). No header: `None`, a write on top of whatever is current. Anything else is a
/// 400, never a silent unconditional write.
fn base_revision(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let number = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag);
    match number.parse::<u64>() {
        Ok(revision) if number.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(revision)),
        _ => Err(ApiError::BadRequest(format!(
            "If-Match must be the revision the write is based on, as \"<number>\" (got {:?})",
            text.chars().take(40).collect::<String>()
        ))),
    }
}

/// The answer to a store failure: a generic 500 that quotes an id, while the detail (database
/// text, file paths) goes to the log under that id, never to the client.
pub(crate) fn store_failed(detail: &dyn std::fmt::Display) -> ApiError {
    ApiError::InternalLogged(logged_store_failure(detail))
}

/// Logs `detail` under a new id and returns the generic message that quotes it.
fn logged_store_failure(detail: &dyn std::fmt::Display) -> String {
    static FAILURES: AtomicU64 = AtomicU64::new(0);
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = format!("{seconds:x}-{}", FAILURES.fetch_add(1, Ordering::Relaxed));
    tracing::error!(error_id = %id, detail = %detail, "the store failed");
    format!("the store failed; see the server log (error {id})")
}

/// A ZID the objects API may address: well-formed and at most
/// [`zeval_store::MAX_ZID_NUMBER`].
fn checked_zid(zid: &str) -> Result<(), ApiError> {
    if !is_zid(zid) {
        return Err(ApiError::BadRequest(format!("{zid:?} is not a ZID")));
    }
    match zeval_zobject::ident::zid_number(zid) {
        Some(number) if number <= zeval_store::MAX_ZID_NUMBER => Ok(()),
        _ => Err(ApiError::BadRequest(format!(
            "{zid} is past the largest ZID this server accepts (Z{})",
            zeval_store::MAX_ZID_NUMBER
        ))),
    }
}

/// Runs blocking store work on tokio's blocking pool, off the async worker threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| store_failed(&format_args!("a store task stopped: {e}")))?
}

async fn fetch(
    State(state): State<AppState>,
    Path(zid): Path<String>,
) -> Result<Response, ApiError> {
    checked_zid(&zid)?;
    let repository = state.repository.clone();
    let (revision, object) = blocking(move || {
        // The revision before the object: a write between the two makes the tag older than
        // the content, so a PUT based on it gets 409 rather than overwriting unseen work.
        let revision = repository.current_revision(&zid)?;
        let object = repository
            .get(&zid)?
            .ok_or(RepositoryError::NotFound(zid))?;
        Ok((revision, object))
    })
    .await?;
    let mut response = axum::Json(object).into_response();
    if let Some(revision) = revision
        && let Ok(tag) = axum::http::HeaderValue::from_str(&format!("\"{revision}\""))
    {
        // The tag to send back in `If-Match` when saving an edit of this object.
        response.headers_mut().insert(axum::http::header::ETAG, tag);
    }
    Ok(response)
}

#[derive(serde::Deserialize)]
struct HistoryQuery {
    /// Revisions after this one (0 or none: from the first).
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/objects/{zid}/history?after=R&limit=N`: one page of revisions, oldest first, at
/// most `limit` ([`DEFAULT_HISTORY_REVISIONS`], at most
/// [`zeval_store::MAX_HISTORY_REVISIONS`]), each with its object, and `next` (the revision
/// to pass as `after`) when later revisions exist.
async fn history(
    State(state): State<AppState>,
    Path(zid): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    checked_zid(&zid)?;
    let repository = state.repository.clone();
    let after = query.after.unwrap_or(0);
    let limit = query
        .limit
        .unwrap_or(DEFAULT_HISTORY_REVISIONS)
        .clamp(1, zeval_store::MAX_HISTORY_REVISIONS);
    let page = blocking(move || {
        let page = repository.history(&zid, after, limit)?;
        if page.revisions.is_empty() && repository.get(&zid)?.is_none() {
            return Err(RepositoryError::NotFound(zid).into());
        }
        Ok(page)
    })
    .await?;
    Ok(axum::Json(page).into_response())
}

#[derive(serde::Deserialize)]
struct SearchQuery {
    #[serde(rename = "type")]
    type_zid: Option<String>,
    search: Option<String>,
    limit: Option<usize>,
}

async fn search(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    if let Some(text) = &query.search {
        let chars = text.chars().count();
        if chars > MAX_SEARCH_CHARS {
            return Err(ApiError::BadRequest(format!(
                "the search text is {chars} characters long; at most {MAX_SEARCH_CHARS} are accepted"
            )));
        }
    }
    let repository = state.repository.clone();
    let limit = query.limit.unwrap_or(100).min(MAX_SEARCH_RESULTS);
    let hits = blocking(move || {
        Ok(repository.search(query.type_zid.as_deref(), query.search.as_deref(), limit)?)
    })
    .await?;
    Ok(axum::Json(json!({ "objects": hits })).into_response())
}

async fn read_object(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(headers, body, state.config.limits.orchestrator_body_bytes)
        .await
        .inspect_err(|e| {
            if matches!(e, ApiError::PayloadTooLarge { .. }) {
                count_rejection(state, "too_large");
            }
        })?;
    zeval_zobject::json::parse_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
}

/// The longest an anonymous report (a compilation report: three store reads; an approval
/// preview: up to 65) waits for the store, in all: past it, a busy store is a 503.
const REPORT_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// [`blocking`] for an anonymous report: every wait for the store ends by [`REPORT_TIME`].
async fn report<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let ends = std::time::Instant::now() + REPORT_TIME;
    blocking(move || zeval_store::call_deadline::within(ends, read)).await
}

/// How the current revision of a compiled implementation compiled (404 for anything else).
async fn compilation(
    State(state): State<AppState>,
    Path(zid): Path<String>,
) -> Result<Response, ApiError> {
    checked_zid(&zid)?;
    let repository = state.repository.clone();
    let compiled = report(move || Ok(repository.compilation(&zid)?.ok_or(zid))).await?;
    match compiled {
        Ok(found) => Ok(axum::Json(found).into_response()),
        Err(zid) => Err(ApiError::NotFound(format!(
            "{zid} is not an implementation in a compiled language"
        ))),
    }
}

async fn put(
    State(state): State<AppState>,
    Path(zid): Path<String>,
    headers: HeaderMap,
    checked: Option<Extension<TokenChecked>>,
    body: Body,
) -> Result<Response, ApiError> {
    let who = writer(&state, &headers, checked.as_deref(), false).await?;
    checked_zid(&zid)?;
    let base = base_revision(&headers)?;
    let z2 = read_object(&state, &headers, body).await?;
    let repository = state.repository.clone();
    let written = blocking(move || {
        if zeval_catalogue::get(&zid).is_some() {
            return Err(RepositoryError::BuiltIn(zid).into());
        }
        check_object(repository.as_ref(), &zid, &z2).map_err(ApiError::InvalidObject)?;
        match repository.put_based_on(&zid, &z2, &who.name, base) {
            Ok(revision) => Ok(Ok((zid, revision))),
            Err(RepositoryError::Conflict { zid, base, current }) => Ok(Err((zid, base, current))),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match written {
        Ok((zid, revision)) => Ok((
            StatusCode::OK,
            [(axum::http::header::ETAG, format!("\"{revision}\""))],
            axum::Json(json!({ "zid": zid, "revision": revision })),
        )
            .into_response()),
        // Another editor saved first: 409 with the current revision, so the client can
        // fetch it, merge and save again based on it.
        Err((zid, base, current)) => Ok((
            StatusCode::CONFLICT,
            axum::Json(json!({
                "error": format!(
                    "{zid} is at revision {} now, not {base}: fetch it, merge, and save again",
                    current.unwrap_or(0)
                ),
                "zid": zid,
                "revision": current.unwrap_or(0),
                "base": base,
            })),
        )
            .into_response()),
    }
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    checked: Option<Extension<TokenChecked>>,
    body: Body,
) -> Result<Response, ApiError> {
    let who = writer(&state, &headers, checked.as_deref(), false).await?;
    let z2 = read_object(&state, &headers, body).await?;
    let repository = state.repository.clone();
    let body_limit = state.config.limits.orchestrator_body_bytes;
    let zid = blocking(move || {
        // Validate with the ZID the object would get; the store rewrites the placeholder
        // the same way when it allocates (a concurrent create may take that ZID first, which
        // changes only the number).
        let candidate_zid = repository.next_zid()?;
        let mut candidate = zeval_store::with_placeholder_replaced(&z2, &candidate_zid);
        if let Value::Object(m) = &mut candidate {
            m.insert("Z2K1".into(), json!({"Z1K1": "Z6", "Z6K1": candidate_zid}));
        }
        // Rewriting the placeholder lengthens the object (each `Z0` becomes a ZID of five
        // digits or more, each key `Z0K1` too): a body of `Z0`s within the limit was stored
        // nearly twice as large (more for ten-digit ZIDs). What is stored stays within the
        // body limit, on which fetches, caches and `api.php` pages count.
        let bytes = serde_json::to_vec(&candidate).map_or(usize::MAX, |stored| stored.len());
        if bytes > body_limit {
            return Err(ApiError::StoredTooLarge {
                bytes,
                limit: body_limit,
            });
        }
        check_object(repository.as_ref(), &candidate_zid, &candidate)
            .map_err(ApiError::InvalidObject)?;
        Ok(repository.create(&z2, &who.name)?)
    })
    .await
    .inspect_err(|e| {
        if matches!(e, ApiError::StoredTooLarge { .. }) {
            count_rejection(&state, "too_large");
        }
    })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "zid": zid, "revision": 1 })),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
struct ApproveQuery {
    /// The function the implementation implements, as the admin reviewed it.
    function: Option<String>,
    /// That function's revision the admin reviewed.
    function_revision: Option<String>,
    /// The tag of the signature the approval would keep, as the admin reviewed it (from
    /// `GET /v1/objects/{zid}/approval`).
    signature: Option<String>,
}

/// `GET /v1/objects/{zid}/approval`: what approving the implementation now would keep (its
/// function's signature, with what the stored objects its types name are), and what to name
/// when approving it, so that an edit of any of them between the review and the approval
/// fails the approval (409) instead of being approved unseen.
async fn approval_preview(
    State(state): State<AppState>,
    Path(zid): Path<String>,
) -> Result<Response, ApiError> {
    checked_zid(&zid)?;
    let repository = state.repository.clone();
    let preview = report(move || Ok(repository.approval_preview(&zid)?)).await?;
    let (function, function_revision) = preview.function.unzip();
    Ok(axum::Json(json!({
        "revision": preview.revision,
        "function": function,
        "function_revision": function_revision,
        "signature": preview.signature,
        "signature_tag": preview.signature_tag,
    }))
    .into_response())
}

async fn approve(
    State(state): State<AppState>,
    Path(zid): Path<String>,
    Query(query): Query<ApproveQuery>,
    headers: HeaderMap,
    checked: Option<Extension<TokenChecked>>,
) -> Result<Response, ApiError> {
    let who = writer(&state, &headers, checked.as_deref(), true).await?;
    checked_zid(&zid)?;
    // The revision the admin reviewed (its `ETag`): approved only if it is still current,
    // else 409 with the current one. Without it, whatever is current when the approval
    // lands is approved, which may be a revision an editor saved a moment before. The same
    // for the function it implements (`?function=Z…&function_revision=N`), whose signature
    // the approval keeps: the approved code runs under it.
    let reviewed = base_revision(&headers)?;
    let function = match (query.function, query.function_revision.as_deref()) {
        (None, None) => None,
        (Some(function), Some(text)) => match text.parse::<u64>() {
            Ok(revision) if text.bytes().all(|b| b.is_ascii_digit()) => {
                checked_zid(&function)?;
                Some((function, revision))
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "function_revision must be the revision of the function the admin \
                     reviewed, a number (got {:?})",
                    text.chars().take(40).collect::<String>()
                )));
            }
        },
        _ => {
            return Err(ApiError::BadRequest(
                "function and function_revision name the function the admin reviewed and its \
                 revision: give both, or neither"
                    .to_owned(),
            ));
        }
    };
    let signature = match query.signature {
        Some(tag) if tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(tag.to_ascii_lowercase())
        }
        Some(tag) => {
            return Err(ApiError::BadRequest(format!(
                "signature must be the signature_tag GET /v1/objects/{zid}/approval gave when \
                 the admin reviewed it, 64 hexadecimal digits (got {:?})",
                tag.chars().take(70).collect::<String>()
            )));
        }
        None => None,
    };
    let repository = state.repository.clone();
    let approver = who.clone();
    let (zid, revision) = blocking(move || {
        // The revision checked below is the one approved: read before the object, so that a
        // revision saved in between fails the approval (409) instead of being approved
        // unchecked.
        let checked = match reviewed {
            Some(revision) => Some(revision),
            None => repository.current_revision(&zid)?,
        };
        let z2 = repository
            .get(&zid)?
            .ok_or_else(|| RepositoryError::NotFound(zid.clone()))?;
        let Some(z14) = z2.get("Z2K2").filter(|z14| type_zid(z14) == Some("Z14")) else {
            return Err(ApiError::BadRequest(format!(
                "{zid} is not an implementation (Z14)"
            )));
        };
        let refused = |why: &str| {
            ApiError::BadRequest(format!(
                "{zid} cannot be approved: it {why}; an approval covers the implementation's \
                 own revision only"
            ))
        };
        crate::narrow::code_written_in(z14).map_err(|why| refused(&why))?;
        for reference in crate::narrow::referred_to(z14).map_err(|why| refused(&why))? {
            let referred = repository.get(&reference)?;
            if let Some(why) = crate::narrow::definition_refused(&reference, referred.as_ref()) {
                return Err(refused(&why));
            }
        }
        let reviewed = zeval_store::Reviewed {
            revision: checked,
            function,
            signature,
        };
        let revision = repository.approve_revision(&zid, &approver, reviewed)?;
        Ok((zid, revision))
    })
    .await?;
    let mut answer = json!({ "zid": zid, "approved": true, "by": who.name });
    if let Some(revision) = revision {
        answer["revision"] = json!(revision);
    }
    Ok(axum::Json(answer).into_response())
}

fn zeval_store_z2_id(z2: &Value) -> Option<String> {
    match z2.get("Z2K1")? {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("Z6K1")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// The checks a written object must pass, giving the Z5 of the first failure.
pub fn check_object(repository: &dyn Repository, zid: &str, z2: &Value) -> Result<(), Value> {
    zeval_zobject::validate(z2, "Z2", Form::Canonical)?;
    let named = zeval_store_z2_id(z2).unwrap_or_default();
    if named != zid {
        return Err(z5(
            "Z500",
            [z6(format!(
                "Z2K1 names {named:?}, but the object is written as {zid}"
            ))],
        ));
    }
    let Some(value) = z2.get("Z2K2") else {
        return Ok(());
    };
    let Some(type_ref) = value.get("Z1K1").and_then(ref_zid) else {
        // A generic type (a Z7) is not checked, as in the original.
        return Ok(());
    };
    if zeval_zobject::validate::has_schema(type_ref, Form::Canonical) {
        return zeval_zobject::validate(value, type_ref, Form::Canonical);
    }
    let type_z4 = if type_ref == zid {
        value.clone()
    } else {
        match narrow::stored_value(repository, type_ref) {
            Ok(Some(z4)) => z4,
            Ok(None) => return Err(z5("Z504", [z6(type_ref)])),
            // The client learns that the type could not be read, not why.
            Err(e) => return Err(z5("Z500", [z6(logged_store_failure(&e))])),
        }
    };
    let normal_z4 = zeval_zobject::normalize(&type_z4)?;
    zeval_zobject::validate::validate_with_type(value, &normal_z4, Form::Canonical)
}

#[derive(serde::Deserialize)]
struct ApiQuery {
    action: Option<String>,
    format: Option<String>,
    zids: Option<String>,
}

/// `GET /w/api.php?action=wikilambda_fetch&format=json&zids=A|B`: answers
/// `{"A": {"wikilambda_fetch": "<JSON text of the Z2>"}, …}` as WikiLambda does. A ZID that
/// does not exist makes the whole answer a MediaWiki error (HTTP 200) naming it, with the Z504.
async fn mediawiki_api(
    State(state): State<AppState>,
    Query(query): Query<ApiQuery>,
) -> Result<Response, ApiError> {
    let error = |code: &str, info: String| {
        axum::Json(json!({ "error": { "code": code, "info": info } })).into_response()
    };
    if query.action.as_deref() != Some("wikilambda_fetch") {
        return Ok(error(
            "badvalue",
            format!(
                "Unrecognized value for parameter \"action\": {}.",
                query.action.unwrap_or_default()
            ),
        ));
    }
    if query.format.as_deref().is_some_and(|f| f != "json") {
        return Ok(error("badvalue", "Only format=json is supported.".into()));
    }
    let zids: Vec<String> = query
        .zids
        .unwrap_or_default()
        .split('|')
        .filter(|z| !z.is_empty())
        .map(str::to_owned)
        .collect();
    if zids.is_empty() {
        return Ok(error(
            "nozids",
            "The \"zids\" parameter must be set.".into(),
        ));
    }
    if zids.len() > MAX_FETCH_ZIDS {
        return Ok(error(
            "toomanyvalues",
            format!(
                "Too many values supplied for parameter \"zids\". The limit is {MAX_FETCH_ZIDS}."
            ),
        ));
    }
    let repository = state.repository.clone();
    let found = blocking(move || {
        let mut found = Vec::new();
        for zid in zids {
            match repository.get(&zid)? {
                Some(z2) => found.push((zid, Some(z2))),
                None => found.push((zid, None)),
            }
        }
        Ok(found)
    })
    .await?;
    let mut answer = serde_json::Map::new();
    for (zid, z2) in found {
        let Some(z2) = z2 else {
            let z504 =
                zeval_zobject::canonicalize(&z5("Z504", [z6(zid.clone())])).unwrap_or(Value::Null);
            return Ok(axum::Json(json!({ "error": {
                "code": "wikilambda-zerror",
                "info": format!("ZID not found: {zid}"),
                "zerror": z504,
            }}))
            .into_response());
        };
        answer.insert(zid, json!({ "wikilambda_fetch": z2.to_string() }));
    }
    Ok(axum::Json(Value::Object(answer)).into_response())
}
