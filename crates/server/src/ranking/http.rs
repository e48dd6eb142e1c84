//! `GET /v1/objects/{zid}/ranking` (the order and why) and `POST /v1/objects/{zid}/ranking`
//! (an admin writes the order into the stored `Z8K4`, as WikiLambda's ranking job does;
//! nothing else ever rewrites it).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::RankingError;
use crate::access::{count_rejection, permission_error, writer};
use crate::problem::ApiError;
use crate::{AppState, UserRole};

/// The longest `GET /v1/objects/{zid}/ranking` waits for the store, in all (then 503), and
/// a test run's explanation of the ranking after its cells.
pub(crate) const EXPLAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) fn read_routes() -> Router<AppState> {
    Router::new().route("/v1/objects/{zid}/ranking", get(show))
}

pub(crate) fn write_routes() -> Router<AppState> {
    Router::new().route("/v1/objects/{zid}/ranking", post(write))
}

impl From<RankingError> for ApiError {
    fn from(e: RankingError) -> Self {
        match e {
            RankingError::NotAFunction(_) => ApiError::NotFound(e.to_string()),
            RankingError::Store(busy @ zeval_store::StoreError::Busy(_)) => {
                ApiError::StoreBusy(busy.to_string())
            }
            RankingError::Store(e) => crate::objects_api::store_failed(&e),
            RankingError::Changed(_) => ApiError::Conflict(e.to_string()),
        }
    }
}

fn checked(zid: &str) -> Result<(), ApiError> {
    if zeval_zobject::ident::is_zid(zid) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("{zid:?} is not a ZID")))
    }
}

async fn show(
    State(state): State<AppState>,
    Path(zid): Path<String>,
) -> Result<Response, ApiError> {
    checked(&zid)?;
    let ranking = state.ranking.clone();
    let ends = std::time::Instant::now() + EXPLAIN_TIME;
    let explanation = tokio::task::spawn_blocking(move || ranking.explain_by(&zid, ends))
        .await
        .map_err(|e| ApiError::Internal(format!("the ranking stopped: {e}")))??;
    Ok(axum::Json(explanation).into_response())
}

async fn write(
    State(state): State<AppState>,
    Path(zid): Path<String>,
    headers: HeaderMap,
    token: Option<axum::Extension<crate::access::TokenChecked>>,
) -> Result<Response, ApiError> {
    let who = writer(&state, &headers, token.as_deref(), false).await?;
    if who.role != UserRole::Admin {
        count_rejection(&state, "forbidden");
        return Err(ApiError::Forbidden(permission_error(&format!(
            "User {} is an editor; only an admin may write a function's ranking into its Z8K4.",
            who.name
        ))));
    }
    checked(&zid)?;
    let ranking = state.ranking.clone();
    let repository = state.repository.clone();
    let (revision, explanation) = tokio::task::spawn_blocking(move || {
        let (z2, explanation) = ranking.ranked_z8k4(&zid)?;
        let revision = match z2 {
            Some(ranked) => Some(repository.put_based_on(
                &zid,
                &ranked.z2,
                &who.name,
                Some(ranked.base_revision),
            )?),
            None => None,
        };
        Ok::<_, ApiError>((revision, explanation))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the ranking stopped: {e}")))??;
    Ok(axum::Json(json!({
        "zid": explanation.function,
        // `null` when the stored order was already this one (nothing written).
        "revision": revision,
        "order": explanation.order,
        "reason": explanation.reason,
    }))
    .into_response())
}
