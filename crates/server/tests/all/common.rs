//! A router over a fresh store, and request helpers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use zeval_server::Metrics;
use zeval_server::config::Config;

pub(crate) struct Server {
    pub(crate) router: Router,
    pub(crate) data_dir: tempfile::TempDir,
}

pub(crate) fn server(adjust: impl FnOnce(&mut Config)) -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: data_dir.path().to_path_buf(),
        ..Config::default()
    };
    adjust(&mut config);
    let metrics = Arc::new(Metrics::default());
    let state = zeval_server::backends::orchestrator_state(&config, &metrics, None).unwrap();
    Server {
        router: zeval_server::orchestrator_router(state),
        data_dir,
    }
}

/// A user's token, added straight to the store the server uses.
pub(crate) fn token(server: &Server, name: &str, role: zeval_store::Role) -> String {
    let store = zeval_store::SqliteStore::open_in(server.data_dir.path()).unwrap();
    store.add_user(name, role).unwrap()
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) text: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

pub(crate) async fn send(
    server: &Server,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("Content-Type", "application/json");
    }
    let request = request
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let response = server.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A canonical Z2 with an English label.
pub(crate) fn z2(zid: &str, value: Value) -> Value {
    serde_json::json!({
        "Z1K1": "Z2",
        "Z2K1": {"Z1K1": "Z6", "Z6K1": zid},
        "Z2K2": value,
        "Z2K3": {"Z1K1": "Z12", "Z12K1": ["Z11", {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": format!("object {zid}")}]},
    })
}

/// Stores (by PUT, as `token`) a function Z10000 "yes if true" over a string, with one
/// composition implementation Z10001 (If(true, argument, "no")): no guest needed.
pub(crate) async fn put_composition(server: &Server, token: &str) {
    let function = z2(
        "Z10000",
        serde_json::json!({
            "Z1K1": "Z8",
            "Z8K1": ["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z10000K1",
                     "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
            "Z8K2": "Z6",
            "Z8K3": ["Z20"],
            "Z8K4": ["Z14", "Z10001"],
            "Z8K5": "Z10000",
        }),
    );
    let implementation = z2(
        "Z10001",
        serde_json::json!({
            "Z1K1": "Z14",
            "Z14K1": "Z10000",
            "Z14K2": {"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": "Z41",
                      "Z802K2": {"Z1K1": "Z18", "Z18K1": "Z10000K1"}, "Z802K3": "no"},
        }),
    );
    for (zid, object) in [("Z10000", function), ("Z10001", implementation)] {
        let answer = send(
            server,
            "PUT",
            &format!("/v1/objects/{zid}"),
            Some(token),
            Some(object.to_string()),
        )
        .await;
        assert_eq!(answer.status, 200, "PUT {zid}: {}", answer.text);
    }
}

/// The body of a call of Z10000 with `text`.
pub(crate) fn call_body(text: &str) -> String {
    serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": text}}).to_string()
}
