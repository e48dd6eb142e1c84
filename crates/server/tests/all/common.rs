//! A router over a fresh store, and request helpers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use zeval_orchestrator::ImplementationPolicy;
use zeval_server::config::{Config, Limits};
use zeval_server::{CallEngine, Metrics};

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
    send_to(server.router.clone(), method, uri, token, body).await
}

/// [`send`] to a router (owned, so that the request can run in a spawned task).
pub(crate) async fn send_to(
    router: Router,
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
    let response = router.oneshot(request).await.unwrap();
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
        put(server, token, zid, &object).await;
    }
}

/// Writes `object` (a canonical Z2) as `zid`, as `token`; the write must succeed.
pub(crate) async fn put(server: &Server, token: &str, zid: &str, object: &serde_json::Value) {
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

/// The body of a call of Z10000 with `text`.
pub(crate) fn call_body(text: &str) -> String {
    serde_json::json!({"zobject": {"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": text}}).to_string()
}

/// A router over a fresh store whose call engine is `wrap` of the real one.
pub(crate) fn server_with_engine(
    adjust: impl FnOnce(&mut Config),
    wrap: impl FnOnce(Arc<dyn CallEngine>) -> Arc<dyn CallEngine>,
) -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: data_dir.path().to_path_buf(),
        ..Config::default()
    };
    adjust(&mut config);
    let metrics = Arc::new(Metrics::default());
    let mut state = zeval_server::backends::orchestrator_state(&config, &metrics, None).unwrap();
    state.engine = wrap(state.engine);
    Server {
        router: zeval_server::orchestrator_router(state),
        data_dir,
    }
}

/// Holds every call of Z10000 with the argument "wait" until opened; other calls run at once.
pub(crate) struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    /// Calls waiting now.
    pub(crate) waiting: AtomicUsize,
}

impl Gate {
    pub(crate) fn new() -> Arc<Gate> {
        Arc::new(Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
            waiting: AtomicUsize::new(0),
        })
    }

    pub(crate) fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Waits (polling, up to 10 s) until `n` calls are held.
    pub(crate) async fn until_waiting(&self, n: usize) {
        for _ in 0..1000 {
            if self.waiting.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} calls never reached the gate");
    }
}

pub(crate) struct GatedEngine {
    pub(crate) inner: Arc<dyn CallEngine>,
    pub(crate) gate: Arc<Gate>,
}

impl CallEngine for GatedEngine {
    fn orchestrate_as(
        &self,
        zobject: Value,
        do_validate: bool,
        policy: Option<Arc<dyn ImplementationPolicy>>,
    ) -> Value {
        if zobject.get("Z10000K1").and_then(Value::as_str) == Some("wait") {
            self.gate.waiting.fetch_add(1, Ordering::SeqCst);
            let mut open = self.gate.open.lock().unwrap();
            while !*open {
                open = self.gate.opened.wait(open).unwrap();
            }
            drop(open);
            self.gate.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        self.inner.orchestrate_as(zobject, do_validate, policy)
    }
}

/// Takes `delay` for every call.
pub(crate) struct SlowEngine {
    pub(crate) inner: Arc<dyn CallEngine>,
    pub(crate) delay: Duration,
}

impl CallEngine for SlowEngine {
    fn orchestrate_as(
        &self,
        zobject: Value,
        do_validate: bool,
        policy: Option<Arc<dyn ImplementationPolicy>>,
    ) -> Value {
        std::thread::sleep(self.delay);
        self.inner.orchestrate_as(zobject, do_validate, policy)
    }
}

/// Serves `router` on a fresh loopback port as `zeval serve` does, with `limits`, until the
/// test's runtime ends.
pub(crate) async fn listen(router: Router, limits: &Limits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = limits.clone();
    tokio::spawn(async move {
        zeval_server::serve_listener(listener, router, &limits, std::future::pending()).await;
    });
    addr
}

/// Sends raw bytes on a new connection and returns it.
pub(crate) async fn connect(addr: SocketAddr, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Reads one HTTP/1.1 response (headers and a `Content-Length` body) from `stream`: status
/// and body text. `None` when the connection closes first.
pub(crate) async fn read_response(stream: &mut tokio::net::TcpStream) -> Option<(u16, String)> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while received.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                received.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&received[end + 4..end + 4 + length]).into_owned();
            return Some((status, body));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(&chunk[..n]);
    }
}

/// A POST request with `body` and `Content-Length`, as raw bytes.
pub(crate) fn post_request(path: &str, token: Option<&str>, body: &str) -> Vec<u8> {
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The real store, counting its token checks and its reads of current revisions.
pub(crate) struct Counting {
    store: Arc<dyn zeval_server::Repository>,
    pub(crate) token_checks: AtomicUsize,
    /// When not 0, token checks take this many milliseconds and none is answered at once: a
    /// store as busy as a database server far away (the PostgreSQL store never answers at
    /// once).
    pub(crate) token_check_ms: std::sync::atomic::AtomicU64,
    pub(crate) revision_reads: AtomicUsize,
    pub(crate) object_reads: AtomicUsize,
}

impl zeval_server::Repository for Counting {
    fn get(&self, zid: &str) -> Result<Option<serde_json::Value>, zeval_server::RepositoryError> {
        self.object_reads.fetch_add(1, Ordering::SeqCst);
        self.store.get(zid)
    }
    fn history(
        &self,
        zid: &str,
        after: u64,
        limit: usize,
    ) -> Result<zeval_server::RevisionPage, zeval_server::RepositoryError> {
        self.store.history(zid, after, limit)
    }
    fn put(
        &self,
        zid: &str,
        z2: &serde_json::Value,
        author: &str,
    ) -> Result<u64, zeval_server::RepositoryError> {
        self.store.put(zid, z2, author)
    }
    fn put_based_on(
        &self,
        zid: &str,
        z2: &serde_json::Value,
        author: &str,
        base: Option<u64>,
    ) -> Result<u64, zeval_server::RepositoryError> {
        self.store.put_based_on(zid, z2, author, base)
    }
    fn current_revision(&self, zid: &str) -> Result<Option<u64>, zeval_server::RepositoryError> {
        self.revision_reads.fetch_add(1, Ordering::SeqCst);
        self.store.current_revision(zid)
    }
    fn next_zid(&self) -> Result<String, zeval_server::RepositoryError> {
        self.store.next_zid()
    }
    fn create(
        &self,
        z2: &serde_json::Value,
        author: &str,
    ) -> Result<String, zeval_server::RepositoryError> {
        self.store.create(z2, author)
    }
    fn search(
        &self,
        type_zid: Option<&str>,
        text: Option<&str>,
        limit: usize,
    ) -> Result<Vec<zeval_server::SearchHit>, zeval_server::RepositoryError> {
        self.store.search(type_zid, text, limit)
    }
    fn compilation(
        &self,
        zid: &str,
    ) -> Result<Option<serde_json::Value>, zeval_server::RepositoryError> {
        self.store.compilation(zid)
    }
    fn approve_revision(
        &self,
        zid: &str,
        by: &zeval_server::Caller,
        reviewed: zeval_store::Reviewed,
    ) -> Result<Option<u64>, zeval_server::RepositoryError> {
        self.store.approve_revision(zid, by, reviewed)
    }
    fn approved_object(
        &self,
        zid: &str,
    ) -> Result<Option<zeval_store::ApprovedObject>, zeval_server::RepositoryError> {
        self.store.approved_object(zid)
    }
    fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<zeval_server::Caller>, zeval_server::RepositoryError> {
        self.token_checks.fetch_add(1, Ordering::SeqCst);
        let delay = self.token_check_ms.load(Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(delay));
        self.store.authenticate(token)
    }
    fn authenticate_at_once(
        &self,
        token: &str,
    ) -> Option<Result<Option<zeval_server::Caller>, zeval_server::RepositoryError>> {
        if self.token_check_ms.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let found = self.store.authenticate_at_once(token)?;
        self.token_checks.fetch_add(1, Ordering::SeqCst);
        Some(found)
    }
    fn object_count(&self) -> Result<u64, zeval_server::RepositoryError> {
        self.store.object_count()
    }
}

/// A server of `config` over the real store, which `Counting` counts.
pub(crate) fn counting_server(
    config: zeval_server::Config,
    data_dir: tempfile::TempDir,
) -> (Server, Arc<Counting>) {
    let metrics = Arc::new(zeval_server::Metrics::default());
    let mut state = zeval_server::backends::orchestrator_state(&config, &metrics, None).unwrap();
    let counting = Arc::new(Counting {
        store: state.repository.clone(),
        token_checks: AtomicUsize::new(0),
        token_check_ms: std::sync::atomic::AtomicU64::new(0),
        revision_reads: AtomicUsize::new(0),
        object_reads: AtomicUsize::new(0),
    });
    state.repository = counting.clone();
    let server = Server {
        router: zeval_server::orchestrator_router(state),
        data_dir,
    };
    (server, counting)
}
