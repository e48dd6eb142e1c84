//! The objects API: write, read, history, search, create with allocation, the MediaWiki
//! route, and a bad PUT that leaves the store unchanged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use tower::ServiceExt;
use zeval_server::{Caller, Metrics, Repository, RepositoryError, RevisionPage, SearchHit};
use zeval_store::{MAX_ZID_NUMBER, Role};

use crate::common::{Server, call_body, put_composition, send, server, token, z2};

#[tokio::test(flavor = "multi_thread")]
async fn written_objects_are_served_and_callable() {
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    put_composition(&server, &editor).await;
    let answer = send(&server, "GET", "/v1/objects/Z10000", None, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["Z2K2"]["Z8K5"], "Z10000");
    let call = send(
        &server,
        "POST",
        "/wikifunctions.org/v1/evaluate/",
        None,
        Some(call_body("hello")),
    )
    .await;
    assert_eq!(call.json()["Z22K1"], "hello", "{}", call.text);
    let history = send(&server, "GET", "/v1/objects/Z10000/history", None, None)
        .await
        .json();
    assert_eq!(history["revisions"].as_array().unwrap().len(), 1);
    assert_eq!(history["revisions"][0]["author"], "ed");
    let found = send(
        &server,
        "GET",
        "/v1/objects?type=Z8&search=Z10000",
        None,
        None,
    )
    .await
    .json();
    assert_eq!(found["objects"][0]["zid"], "Z10000", "{found}");
    let fetched = send(
        &server,
        "GET",
        "/w/api.php?action=wikilambda_fetch&format=json&zids=Z10000|Z802",
        None,
        None,
    )
    .await
    .json();
    let text = fetched["Z10000"]["wikilambda_fetch"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(text).unwrap()["Z2K1"]["Z6K1"],
        "Z10000"
    );
    assert!(fetched["Z802"]["wikilambda_fetch"].is_string());
    let missing = send(
        &server,
        "GET",
        "/w/api.php?action=wikilambda_fetch&format=json&zids=Z99999",
        None,
        None,
    )
    .await
    .json();
    assert_eq!(missing["error"]["code"], "wikilambda-zerror", "{missing}");
    assert_eq!(
        send(&server, "GET", "/v1/objects/Z99999", None, None)
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_put_leaves_the_store_unchanged() {
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    put_composition(&server, &editor).await;
    let before = send(&server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .text;
    // Z8K1 must be a list of Z17s; here it is a number.
    let mut bad = serde_json::from_str::<serde_json::Value>(&before).unwrap();
    bad["Z2K2"]["Z8K1"] = json!(7);
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z10000",
        Some(&editor),
        Some(bad.to_string()),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    // Canonical when it can be (here it quotes a number, so it stays normal).
    let z5 = answer.json();
    assert_eq!(zeval_zobject::build::type_zid(&z5), Some("Z5"), "{z5}");
    assert_eq!(zeval_zobject::error::error_code(&z5), Some("Z502"), "{z5}");
    // Z2K1 naming another ZID is refused too.
    let other = z2("Z10005", json!("text"));
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z10000",
        Some(&editor),
        Some(other.to_string()),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    let after = send(&server, "GET", "/v1/objects/Z10000", None, None)
        .await
        .text;
    assert_eq!(before, after);
    let history = send(&server, "GET", "/v1/objects/Z10000/history", None, None)
        .await
        .json();
    assert_eq!(history["revisions"].as_array().unwrap().len(), 1);
    // Built-ins cannot be overwritten.
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z802",
        Some(&editor),
        Some(z2("Z802", json!("x")).to_string()),
    )
    .await;
    assert_eq!(answer.status, 409, "{}", answer.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn post_allocates_from_z10000_and_replaces_the_placeholder() {
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    let object = z2("Z0", json!("a string"));
    let first = send(
        &server,
        "POST",
        "/v1/objects",
        Some(&editor),
        Some(object.to_string()),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.json()["zid"], "Z10000");
    let second = send(
        &server,
        "POST",
        "/v1/objects",
        Some(&editor),
        Some(object.to_string()),
    )
    .await;
    assert_eq!(second.json()["zid"], "Z10001");
    let stored = send(&server, "GET", "/v1/objects/Z10001", None, None)
        .await
        .json();
    assert_eq!(stored["Z2K1"]["Z6K1"], "Z10001");
    let bad = z2("Z0", json!({"Z1K1": "Z6", "Z6K1": 5}));
    let answer = send(
        &server,
        "POST",
        "/v1/objects",
        Some(&editor),
        Some(bad.to_string()),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(
        send(&server, "GET", "/v1/objects/Z10002", None, None)
            .await
            .status,
        404
    );
}

/// Rewriting the placeholder lengthens an object: a body within the limit that is a list
/// of `Z0`s was stored nearly twice as large (each `Z0` a five-digit ZID), past the limit
/// on which fetches, caches and `api.php` pages count. What is stored is held to it.
#[tokio::test(flavor = "multi_thread")]
async fn a_created_object_is_stored_within_the_body_limit() {
    let limit = 10_000;
    let server = server(|config| config.limits.orchestrator_body_bytes = limit);
    let editor = token(&server, "ed", Role::Editor);
    let of_placeholders = |count: usize| {
        let mut list = vec![json!("Z1")];
        list.extend(std::iter::repeat_n(json!("Z0"), count));
        z2("Z0", json!(list)).to_string()
    };
    let body = of_placeholders(1_800);
    assert!(body.len() < limit, "{} bytes", body.len());
    let answer = send(&server, "POST", "/v1/objects", Some(&editor), Some(body)).await;
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert!(
        answer.text.contains("placeholders replaced") && answer.text.contains("limit of 10000"),
        "{}",
        answer.text
    );
    assert_eq!(
        send(&server, "GET", "/v1/objects/Z10000", None, None)
            .await
            .status,
        404
    );
    let answer = send(
        &server,
        "POST",
        "/v1/objects",
        Some(&editor),
        Some(of_placeholders(1_000)),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let stored = send(&server, "GET", "/v1/objects/Z10000", None, None).await;
    assert_eq!(stored.status, 200);
    assert!(
        stored.text.len() < limit && stored.text.contains("\"Z10000\",\"Z10000\""),
        "{} bytes",
        stored.text.len()
    );
}

/// The attack: a PUT at the largest `i64` made the next allocation overflow, and every
/// later POST landed on one ZID, each overwriting the previous creator's object.
#[tokio::test(flavor = "multi_thread")]
async fn zids_past_the_maximum_are_refused_and_creates_never_overwrite() {
    let server = server(|_| {});
    let (ann, bob) = (
        token(&server, "ann", Role::Editor),
        token(&server, "bob", Role::Editor),
    );
    for zid in [
        "Z9223372036854775807".to_string(),
        format!("Z{}", MAX_ZID_NUMBER + 1),
    ] {
        let answer = send(
            &server,
            "PUT",
            &format!("/v1/objects/{zid}"),
            Some(&ann),
            Some(z2(&zid, json!("x")).to_string()),
        )
        .await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert!(
            answer.json()["detail"].as_str().unwrap().contains(&format!(
                "past the largest ZID this server accepts (Z{MAX_ZID_NUMBER})"
            )),
            "{}",
            answer.text
        );
    }
    let mut created = Vec::new();
    for (who, text) in [(&ann, "ann's"), (&bob, "bob's")] {
        let answer = send(
            &server,
            "POST",
            "/v1/objects",
            Some(who),
            Some(z2("Z0", json!(text)).to_string()),
        )
        .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        created.push(answer.json()["zid"].as_str().unwrap().to_string());
    }
    assert_eq!(created, ["Z10000", "Z10001"]);
    for (zid, text) in created.iter().zip(["ann's", "bob's"]) {
        let history = send(
            &server,
            "GET",
            &format!("/v1/objects/{zid}/history"),
            None,
            None,
        )
        .await
        .json();
        let revisions = history["revisions"].as_array().unwrap();
        assert_eq!(revisions.len(), 1, "{history}");
        assert_eq!(revisions[0]["object"]["Z2K2"], text);
    }
}

/// A write that waits for the database (another process holds its write lock, as `zeval
/// import` may) holds up neither reads nor token checks nor health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_while_a_write_waits_for_the_database() {
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    let object = z2("Z10000", json!("before"));
    let put = |object: serde_json::Value| {
        Request::builder()
            .method("PUT")
            .uri("/v1/objects/Z10000")
            .header("Authorization", format!("Bearer {editor}"))
            .header("Content-Type", "application/json")
            .body(Body::from(object.to_string()))
            .unwrap()
    };
    let first = server.router.clone().oneshot(put(object)).await.unwrap();
    assert_eq!(first.status(), 200);
    let other_process =
        rusqlite::Connection::open(server.data_dir.path().join(zeval_store::DATABASE_FILE))
            .unwrap();
    other_process.execute_batch("BEGIN IMMEDIATE").unwrap();
    let router = server.router.clone();
    let waiting = tokio::spawn(router.oneshot(put(z2("Z10000", json!("after")))));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the write waits for the lock");
    let started = Instant::now();
    for (path, token) in [
        ("/v1/objects/Z10000", None),
        ("/v1/objects/Z10000", Some(editor.as_str())),
        ("/v1/objects?search=Z10000", None),
        ("/healthz", None),
    ] {
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            send(&server, "GET", path, token, None),
        )
        .await
        .unwrap_or_else(|_| panic!("GET {path} waited for the blocked write"));
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        !waiting.is_finished(),
        "the reads ran while the write waited"
    );
    other_process.execute_batch("COMMIT").unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().status(), 200);
    let now = send(&server, "GET", "/v1/objects/Z10000", None, None).await;
    assert_eq!(now.json()["Z2K2"], "after");
}

/// A repository whose every operation but the token check fails with text that must stay
/// in the log.
struct BrokenStore;

const SECRET: &str = "disk I/O error at /var/lib/zeval/zeval.sqlite";

impl Repository for BrokenStore {
    fn get(&self, _: &str) -> Result<Option<serde_json::Value>, RepositoryError> {
        Err(RepositoryError::Store(SECRET.into()))
    }
    fn history(&self, _: &str, _: u64, _: usize) -> Result<RevisionPage, RepositoryError> {
        Err(RepositoryError::Store(SECRET.into()))
    }
    fn put(&self, _: &str, _: &serde_json::Value, _: &str) -> Result<u64, RepositoryError> {
        Err(RepositoryError::Store(SECRET.into()))
    }
    fn next_zid(&self) -> Result<String, RepositoryError> {
        Err(RepositoryError::Store(SECRET.into()))
    }
    fn create(&self, _: &serde_json::Value, _: &str) -> Result<String, RepositoryError> {
        Err(RepositoryError::Store(SECRET.into()))
    }
    fn search(
        &self,
        _: Option<&str>,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<SearchHit>, RepositoryError> {
        Err(RepositoryError::Store(SECRET.into()))
    }
    fn approve_revision(
        &self,
        _: &str,
        _: &Caller,
        _: zeval_store::Reviewed,
    ) -> Result<Option<u64>, RepositoryError> {
        Err(RepositoryError::Store(SECRET.into()))
    }
    fn approved_object(
        &self,
        _: &str,
    ) -> Result<Option<zeval_store::ApprovedObject>, RepositoryError> {
        Err(RepositoryError::Store(SECRET.into()))
    }
    fn authenticate(&self, _: &str) -> Result<Option<Caller>, RepositoryError> {
        Ok(Some(Caller {
            name: "ed".into(),
            role: zeval_server::UserRole::Editor,
        }))
    }
    fn object_count(&self) -> Result<u64, RepositoryError> {
        Err(RepositoryError::Store(SECRET.into()))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_failures_answer_a_generic_500_without_the_database_text() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = zeval_server::Config {
        data_dir: data_dir.path().to_path_buf(),
        ..zeval_server::Config::default()
    };
    let metrics = Arc::new(Metrics::default());
    let mut state = zeval_server::backends::orchestrator_state(&config, &metrics, None).unwrap();
    state.repository = Arc::new(BrokenStore);
    let server = Server {
        router: zeval_server::orchestrator_router(state),
        data_dir,
    };
    for path in [
        "/v1/objects/Z10000",
        "/v1/objects?search=x",
        "/v1/objects/Z10000/history",
    ] {
        let answer = send(&server, "GET", path, None, None).await;
        assert_eq!(answer.status, 500, "{path}: {}", answer.text);
        assert!(!answer.text.contains("disk I/O"), "{path}: {}", answer.text);
        assert!(!answer.text.contains("/var/lib"), "{path}: {}", answer.text);
    }
    // Validating an object of a user-defined type reads the type from the store; its failure
    // is quoted in the Z5 of a 400, so the Z5 must not carry the database's text either.
    let object = z2("Z10000", json!({"Z1K1": "Z10050", "Z10050K1": "x"}));
    let answer = send(
        &server,
        "PUT",
        "/v1/objects/Z10000",
        Some("a-token"),
        Some(object.to_string()),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(!answer.text.contains("disk I/O"), "{}", answer.text);
    assert!(!answer.text.contains("/var/lib"), "{}", answer.text);
    assert!(
        answer
            .text
            .contains("the store failed; see the server log (error "),
        "{}",
        answer.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mediawiki_route_takes_at_most_fifty_zids() {
    let server = server(|_| {});
    let zids = vec!["Z801"; 51].join("|");
    let answer = send(
        &server,
        "GET",
        &format!("/w/api.php?action=wikilambda_fetch&format=json&zids={zids}"),
        None,
        None,
    )
    .await
    .json();
    assert_eq!(answer["error"]["code"], "toomanyvalues", "{answer}");
    let fifty = vec!["Z801"; 50].join("|");
    let answer = send(
        &server,
        "GET",
        &format!("/w/api.php?action=wikilambda_fetch&format=json&zids={fifty}"),
        None,
        None,
    )
    .await
    .json();
    assert!(answer["Z801"]["wikilambda_fetch"].is_string(), "{answer}");
}

/// A PUT with `If-Match: "<revision>"`: saved when the object is still at that revision,
/// else 409 with the current revision and nothing written; a malformed one is a 400.
#[tokio::test(flavor = "multi_thread")]
async fn a_put_based_on_a_stale_revision_is_409_and_writes_nothing() {
    let server = server(|_| {});
    let editor = token(&server, "ed", Role::Editor);
    let put_if = |if_match: &str, text: &str| {
        Request::builder()
            .method("PUT")
            .uri("/v1/objects/Z10000")
            .header("Authorization", format!("Bearer {editor}"))
            .header("Content-Type", "application/json")
            .header("If-Match", if_match)
            .body(Body::from(z2("Z10000", json!(text)).to_string()))
            .unwrap()
    };
    let answer = |response: axum::response::Response| async move {
        let status = response.status();
        let etag = response.headers().get("ETag").cloned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(json!(null));
        (status.as_u16(), etag, body)
    };
    let send_put =
        |if_match: &str, text: &str| server.router.clone().oneshot(put_if(if_match, text));
    // "0": only if new.
    let (status, etag, body) = answer(send_put("\"0\"", "alice 1").await.unwrap()).await;
    assert_eq!(
        (status, body["revision"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    assert_eq!(etag.unwrap(), "\"1\"");
    let (status, _, body) = answer(send_put("\"1\"", "alice 2").await.unwrap()).await;
    assert_eq!(
        (status, body["revision"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    // Bob also edited revision 1: a conflict naming the current revision.
    let (status, _, body) = answer(send_put("\"1\"", "bob").await.unwrap()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        (body["revision"].as_u64(), body["base"].as_u64()),
        (Some(2), Some(1)),
        "{body}"
    );
    let (status, _, _) = answer(send_put("W/\"2\"", "alice 3").await.unwrap()).await;
    assert_eq!(status, 200);
    for bad in ["\"x\"", "*", "\"-1\"", "\"+3\""] {
        let (status, _, body) = answer(send_put(bad, "bad").await.unwrap()).await;
        assert_eq!(status, 400, "If-Match {bad}: {body}");
    }
    let current = send(&server, "GET", "/v1/objects/Z10000", None, None).await;
    assert_eq!(current.json()["Z2K2"], "alice 3");
    // GET tags the object with its revision, the value to send back in If-Match.
    assert_eq!(current.headers["ETag"], "\"3\"");
    let builtin = send(&server, "GET", "/v1/objects/Z802", None, None).await;
    assert!(builtin.headers.get("ETag").is_none());
    let history = send(&server, "GET", "/v1/objects/Z10000/history", None, None)
        .await
        .json();
    assert_eq!(history["revisions"].as_array().unwrap().len(), 3);
    // Without If-Match, a PUT writes on top as before.
    let plain = send(
        &server,
        "PUT",
        "/v1/objects/Z10000",
        Some(&editor),
        Some(z2("Z10000", json!("plain")).to_string()),
    )
    .await;
    assert_eq!(
        (plain.status.as_u16(), plain.json()["revision"].as_u64()),
        (200, Some(4))
    );
}

/// A repository whose history reads wait until they are let go; every other read answers an
/// object, and any token is an editor's.
struct SlowHistory {
    let_go: Arc<tokio::sync::Semaphore>,
    started: Arc<tokio::sync::Notify>,
}

impl Repository for SlowHistory {
    fn get(&self, zid: &str) -> Result<Option<serde_json::Value>, RepositoryError> {
        Ok(Some(z2(zid, json!("x"))))
    }
    fn history(&self, _: &str, _: u64, _: usize) -> Result<RevisionPage, RepositoryError> {
        self.started.notify_one();
        let wait = self.let_go.clone();
        let _let_go = tokio::runtime::Handle::current().block_on(wait.acquire_owned());
        Err(RepositoryError::NotFound("Z10000".into()))
    }
    fn put(&self, _: &str, _: &serde_json::Value, _: &str) -> Result<u64, RepositoryError> {
        Err(RepositoryError::Store("read only".into()))
    }
    fn next_zid(&self) -> Result<String, RepositoryError> {
        Err(RepositoryError::Store("read only".into()))
    }
    fn create(&self, _: &serde_json::Value, _: &str) -> Result<String, RepositoryError> {
        Err(RepositoryError::Store("read only".into()))
    }
    fn search(
        &self,
        _: Option<&str>,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<SearchHit>, RepositoryError> {
        Ok(Vec::new())
    }
    fn approve_revision(
        &self,
        _: &str,
        _: &Caller,
        _: zeval_store::Reviewed,
    ) -> Result<Option<u64>, RepositoryError> {
        Err(RepositoryError::Store("read only".into()))
    }
    fn approved_object(
        &self,
        _: &str,
    ) -> Result<Option<zeval_store::ApprovedObject>, RepositoryError> {
        Ok(None)
    }
    fn authenticate(&self, token: &str) -> Result<Option<Caller>, RepositoryError> {
        Ok(Some(Caller {
            name: token.into(),
            role: zeval_server::UserRole::Editor,
        }))
    }
    fn object_count(&self) -> Result<u64, RepositoryError> {
        Ok(0)
    }
}

/// Reads of the store take slots of their own, per client: a client whose reads hold its
/// share is refused more (429) while another client's read is served. Reads used to take no
/// slot at all, so one client's connections could fill the blocking pool, and the memory,
/// with pages of objects.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_holds_at_most_its_share_of_the_read_slots() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = zeval_server::Config {
        data_dir: data_dir.path().to_path_buf(),
        limits: zeval_server::config::Limits {
            per_client_concurrent_requests: 1,
            ..Default::default()
        },
        ..zeval_server::Config::default()
    };
    let metrics = Arc::new(Metrics::default());
    let mut state = zeval_server::backends::orchestrator_state(&config, &metrics, None).unwrap();
    let let_go = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    state.repository = Arc::new(SlowHistory {
        let_go: let_go.clone(),
        started: started.clone(),
    });
    let server = Arc::new(Server {
        router: zeval_server::orchestrator_router(state),
        data_dir,
    });
    let held = {
        let server = server.clone();
        tokio::spawn(async move {
            send(
                &server,
                "GET",
                "/v1/objects/Z10000/history",
                Some("ada"),
                None,
            )
            .await
        })
    };
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .expect("the first history read never started");
    let second = send(&server, "GET", "/v1/objects/Z10000", Some("ada"), None).await;
    assert_eq!(second.status, 429, "{}", second.text);
    let other = send(&server, "GET", "/v1/objects/Z10000", Some("bob"), None).await;
    assert_eq!(other.status, 200, "{}", other.text);
    let_go.add_permits(1);
    assert_eq!(held.await.unwrap().status, 404);
    let after = send(&server, "GET", "/v1/objects/Z10000", Some("ada"), None).await;
    assert_eq!(after.status, 200, "{}", after.text);
}
