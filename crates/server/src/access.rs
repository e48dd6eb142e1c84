//! Who may do what.
//!
//! - Writes (`PUT`/`POST /v1/objects`) need `Authorization: Bearer <token>` of an editor or
//!   admin; approving (`POST /v1/objects/{zid}/approve`) needs an admin.
//! - Calls follow `access.calls`: `open` (anybody), `users` (a valid token), `approved`
//!   (anybody, but an anonymous call only runs approved implementations, see [`crate::narrow`]).
//! - Running testers (`POST /v1/test`) runs every implementation, approved or not, so it
//!   needs a token unless `calls = "open"`.
//! - A token that is sent but wrong is 401 under every setting, even for routes that need
//!   none: a client that believes it is logged in must learn that it is not.
//!
//! Checking a token reads the store, which may block: async code uses [`caller_async`], which
//! asks the store directly when it can answer without waiting
//! ([`Repository::authenticate_at_once`]: SQLite with a free reader connection) and otherwise
//! does it on tokio's blocking pool, [`MAX_TOKEN_CHECKS_AT_ONCE`] at a time and within
//! [`TOKEN_CHECK_TIME`]. [`reject_wrong_tokens`] checks every token once and
//! leaves the caller it found in the request's extensions ([`TokenChecked`]), so a route that
//! needs the caller does not look the same token up a second time; it remembers valid tokens
//! for a while, and bounds each client's checks waiting for the store
//! ([`crate::token_checks`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use zeval_zobject::build::z6;
use zeval_zobject::error::z5;

use crate::objects_api::store_failed;
use crate::problem::ApiError;
use crate::{AppState, Repository};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// May write objects.
    Editor,
    /// May also approve implementations.
    Admin,
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user's name.
    pub name: String,
    /// The user's role.
    pub role: UserRole,
}

/// The caller of a request: `None` when anonymous; 401 when a token is sent but not valid.
///
/// This blocks on the store: call it from a blocking thread, or use [`caller_async`].
pub fn caller(
    repository: &dyn Repository,
    headers: &HeaderMap,
) -> Result<Option<Caller>, ApiError> {
    let Some(token) = bearer_token(headers)? else {
        return Ok(None);
    };
    checked_caller(repository.authenticate(token))
}

/// The bearer token a request sends, if it sends an `Authorization` header; 401 when that
/// header is not a bearer token.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Some)
        .ok_or_else(|| ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into()))
}

/// A token's lookup as the request's caller: 401 when the token belongs to nobody.
fn checked_caller(
    found: Result<Option<Caller>, crate::RepositoryError>,
) -> Result<Option<Caller>, ApiError> {
    match found {
        Ok(Some(user)) => Ok(Some(user)),
        Ok(None) => Err(ApiError::Unauthorized(
            "the bearer token is not valid".into(),
        )),
        Err(crate::RepositoryError::Busy(message)) => Err(ApiError::StoreBusy(message)),
        Err(e) => Err(store_failed(&format_args!("checking a token failed: {e}"))),
    }
}

/// The caller [`reject_wrong_tokens`] found for a request's valid token, as a request
/// extension. Only the server inserts extensions (nothing on the wire becomes one), and a
/// handler cannot change the request's headers, so it is the caller of this request's token.
#[derive(Debug, Clone)]
pub struct TokenChecked(pub Caller);

/// [`caller`] for async code: the store is asked directly only when it can answer without
/// waiting ([`Repository::authenticate_at_once`]), else the lookup runs on tokio's blocking
/// pool, so a slow store never holds up the async worker threads. Anonymous requests touch no store, nor
/// does one whose token [`reject_wrong_tokens`] has already checked (`checked`); without
/// that (a route mounted outside the middleware), the token is looked up here.
pub async fn caller_async(
    repository: Arc<dyn Repository>,
    headers: &HeaderMap,
    checked: Option<&TokenChecked>,
) -> Result<Option<Caller>, ApiError> {
    check_token(repository, headers, checked, None, Instant::now()).await
}

/// [`caller_async`], holding `place` (the client's place among the checks waiting,
/// [`crate::token_checks`]) while the check waits and runs.
async fn check_token(
    repository: Arc<dyn Repository>,
    headers: &HeaderMap,
    checked: Option<&TokenChecked>,
    place: Option<crate::token_checks::Waiting>,
    started: Instant,
) -> Result<Option<Caller>, ApiError> {
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    if let Some(TokenChecked(who)) = checked {
        return Ok(Some(who.clone()));
    }
    // A store that can answer without waiting (SQLite with a free reader) is asked here:
    // the hand-off to a blocking thread and back cost more than the lookup. (A check given a
    // place was asked so already.)
    if place.is_none()
        && let Some(token) = bearer_token(headers)?
        && let Some(found) = repository.authenticate_at_once(token)
    {
        return checked_caller(found);
    }
    let turn = Arc::clone(&TOKEN_CHECKS_AT_ONCE).acquire_owned();
    let ends = tokio::time::Instant::from_std(started + TOKEN_CHECK_TIME);
    let Ok(Ok(turn)) = tokio::time::timeout_at(ends, turn).await else {
        return Err(ApiError::StoreBusy(
            "too many token checks are waiting for the store; try again".into(),
        ));
    };
    let ends = started + TOKEN_CHECK_TIME;
    let mut only_authorization = HeaderMap::new();
    only_authorization.insert(header::AUTHORIZATION, authorization.clone());
    // The turn goes with the check, not with this future: a client that hangs up while its
    // check waits on the store does not free a turn for another one.
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let _place = place;
        zeval_store::call_deadline::within(ends, || {
            caller(repository.as_ref(), &only_authorization)
        })
    })
    .await
    .unwrap_or_else(|e| Err(store_failed(&format_args!("the token check stopped: {e}"))))
}

/// Token checks that wait for the store at once, in this process: the rest wait for a turn
/// (in order, on the async side, holding no thread). A request with a token is checked
/// before it takes any work slot, whatever the route (`/healthz` too), and every request on
/// PostgreSQL, or on SQLite while no reader is free, checks on the store's connections: 1,024
/// connections sending made-up tokens held all 8 of PostgreSQL's (each check up to the 10 s
/// pool wait and the 30 s statement timeout), and every call's reads waited behind them.
/// Two leave the other connections to calls. A check is a one-row indexed read (about a
/// millisecond), so two at once still check some thousands of tokens a second.
pub const MAX_TOKEN_CHECKS_AT_ONCE: usize = 2;

static TOKEN_CHECKS_AT_ONCE: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(MAX_TOKEN_CHECKS_AT_ONCE)));

/// `token`'s caller from the store, in turn: this request's own check, as one of the
/// client's few waiting (429 past them), or the answer of the check of the same token
/// running already; all within [`TOKEN_CHECK_TIME`] of now.
async fn checked_in_turn(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
    token: &str,
) -> Result<Option<Caller>, ApiError> {
    use crate::token_checks::{CheckOf, Ended};
    let started = Instant::now();
    loop {
        match state.token_checks.check_of(token) {
            CheckOf::Own(checking) => {
                let Some(place) = state.token_checks.wait_as(peer, headers) else {
                    return Err(ApiError::TooManyTokenChecks {
                        limit: crate::token_checks::MAX_TOKEN_CHECKS_WAITING_PER_CLIENT,
                        retry_after: state.config.limits.retry_after_seconds,
                    });
                };
                let found = check_token(
                    state.repository.clone(),
                    headers,
                    None,
                    Some(place),
                    started,
                )
                .await;
                if let Ok(found) = &found {
                    if let Some(who) = found {
                        state.token_checks.remember(token, who);
                    }
                    checking.answer(found.clone());
                }
                return found;
            }
            CheckOf::Another(mut running) => {
                let ends = tokio::time::Instant::from_std(started + TOKEN_CHECK_TIME);
                let ended = tokio::time::timeout_at(
                    ends,
                    running.wait_for(|ended| *ended != Ended::Running),
                )
                .await;
                match ended.map(|ended| ended.map(|ended| ended.clone())) {
                    Ok(Ok(Ended::Answered(found))) => return checked_caller(Ok(found)),
                    // The check ended without an answer (its store busy, its client gone):
                    // one of those waiting checks now.
                    Ok(_) => continue,
                    Err(_) => {
                        return Err(ApiError::StoreBusy(
                            "the token's check did not end in time; try again".into(),
                        ));
                    }
                }
            }
        }
    }
}

/// The longest a token check takes on the store's side, its wait for a turn and for a
/// connection included (a statement still running then is cancelled on PostgreSQL): 503 and
/// `Retry-After` past it.
pub const TOKEN_CHECK_TIME: Duration = Duration::from_secs(1);

/// The caller of a write: an editor or admin (`need_admin` for admins only).
pub async fn writer(
    state: &AppState,
    headers: &HeaderMap,
    checked: Option<&TokenChecked>,
    need_admin: bool,
) -> Result<Caller, ApiError> {
    let who = caller_async(state.repository.clone(), headers, checked).await?;
    let Some(who) = who else {
        count_rejection(state, "unauthenticated");
        return Err(ApiError::Unauthorized(
            "this needs `Authorization: Bearer <token>` of a user (see `zeval user add`)".into(),
        ));
    };
    if need_admin && who.role != UserRole::Admin {
        count_rejection(state, "forbidden");
        return Err(ApiError::Forbidden(permission_error(&format!(
            "User {} is an editor; only an admin may approve implementations.",
            who.name
        ))));
    }
    Ok(who)
}

/// Counts a refused request in `/metrics`.
pub fn count_rejection(state: &AppState, reason: &str) {
    state
        .metrics
        .inc("zeval_requests_rejected_total", &[("reason", reason)]);
}

/// Z559 "No permission to run functions" with a message saying why. (Z559 is WikiLambda's
/// own error type for this; it is not in the pinned definitions, the catalogue adds it.)
pub fn permission_error(message: &str) -> zeval_zobject::Value {
    z5("Z559", [z6(message)])
}

/// Middleware: a request that sends a token must send a valid one, whatever the route (the
/// routes that need a user check the role themselves). The caller found is left in the
/// request's extensions as [`TokenChecked`] for those routes.
pub async fn reject_wrong_tokens(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.headers().contains_key(header::AUTHORIZATION) {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|connection| connection.0.ip());
        match checked_token(&state, request.headers(), peer).await {
            Ok(Some(who)) => {
                request.extensions_mut().insert(TokenChecked(who));
            }
            Ok(None) => {}
            Err(refusal) => {
                let reason = match refusal {
                    ApiError::StoreBusy(_) => "token_check_busy",
                    ApiError::TooManyTokenChecks { .. } => "client_token_checks",
                    _ => "bad_token",
                };
                count_rejection(&state, reason);
                return refusal.into_response();
            }
        }
    }
    next.run(request).await
}

/// The caller of a request's token, from the tokens the store found valid lately, else from
/// the store at once when it can answer so, else from the store in turn, as one of the
/// client's few checks waiting at once (429 past them): see [`crate::token_checks`].
async fn checked_token(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Result<Option<Caller>, ApiError> {
    let Some(token) = bearer_token(headers)? else {
        return Ok(None);
    };
    if let Some(who) = state.token_checks.known(token) {
        return Ok(Some(who));
    }
    let found = match state.repository.authenticate_at_once(token) {
        Some(found) => checked_caller(found)?,
        None => checked_in_turn(state, headers, peer, token).await?,
    };
    if let Some(who) = &found {
        state.token_checks.remember(token, who);
    }
    Ok(found)
}
