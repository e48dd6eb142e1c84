//! Running the services: a multi-threaded tokio runtime whose threads (async workers and the
//! blocking pool where calls are orchestrated) get `limits.worker_stack_bytes` of stack, one
//! listener per role, and graceful shutdown on SIGINT/SIGTERM: the orchestrator listener
//! stops accepting at once and its requests in progress finish; the evaluator API first
//! drains ([`crate::drain`]: new calls get 503, health says draining, calls in flight
//! finish), then stops the same way. The whole shutdown is bounded: the process leaves
//! `failover.drain_timeout_ms` after the signal at the latest (plus up to
//! [`SHUTDOWN_GRACE`] for blocking work left behind), even with requests still running.
//!
//! Connections are served by [`serve_listener`] (HTTP/1.1 through hyper) under three limits,
//! so that clients which hold connections without using them cannot lock others out:
//! - `limits.max_connections` (default 1024) open connections per listener; at it, a
//!   connection of the client holding the most, with no request at work (an idle one
//!   first), is closed to make room for a new one ([`OpenConnections::give_way`]); while
//!   none can be, new ones wait in the kernel's accept queue until one closes;
//! - `limits.max_connections_per_client` (default 256) of them per client (its address, an
//!   IPv6 one by its network; trusted proxies have none); past it the client's new
//!   connections are closed as soon as they are accepted ([`ConnectionsPerClient`]). One
//!   address used to be able to hold all 1024, with a request on each every minute;
//! - `limits.header_timeout_ms` (default 5 s) to send a request's headers, counted from the
//!   connection's start for its first request and from the first byte for later ones; past
//!   it the connection is closed without an answer;
//! - `limits.idle_timeout_ms` (default 60 s) between the end of one request (its response is
//!   ready) and the first byte of the next; past it the connection is closed;
//! - `limits.max_unsent_response_bytes` (default 256 MiB) and its `_per_client` share (32 MiB)
//!   of large responses ready and not yet taken by the kernel ([`crate::unsent`]): a client
//!   that asks for large answers and reads none cannot hold more until the idle timeout.
//!
//! While a request is in a handler neither timeout runs: the body has its own deadline
//! (`limits.body_timeout_ms`, [`crate::limits`]) and calls theirs.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::config::{Config, ConfigError, Limits, Role};
use crate::evaluator_api::EVALUATOR_SECRET_HEADER;
use crate::limits::{Admission, admit_runs, explain_too_large, run_to_completion};
use crate::problem::ApiError;
use crate::{AppState, Metrics};

/// Why the services could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A server failed while running.
    #[error("the {service} server failed: {source}")]
    Server {
        /// Which one.
        service: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// Building the backends (store, evaluator, orchestrator) failed.
    #[error("{0}")]
    Setup(String),
    /// The configuration is refused (see [`Config::check`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The routers one process serves.
pub struct Services {
    /// The orchestrator side (objects, calls, testers, metrics), unless the role is evaluator.
    pub orchestrator: Option<AppState>,
    /// The evaluator API router, unless the role is orchestrator.
    pub evaluator: Option<Router>,
}

/// How long the runtime waits, once the servers have stopped (or the drain timeout is
/// over), for blocking work still running before the process leaves anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Builds the runtime, then the services with `build` (inside the runtime, so backends may
/// spawn tasks), binds, prints one line per listener on stdout (`orchestrator API on
/// http://ADDR`, `evaluator API on http://ADDR`; tests start with port 0 and read them), and
/// serves until SIGINT or SIGTERM. Refuses a configuration that [`Config::check`] refuses.
pub fn serve(
    config: Config,
    build: impl FnOnce(&Config, &std::sync::Arc<Metrics>) -> Result<Services, ServeError>,
) -> Result<(), ServeError> {
    config.check()?;
    raise_open_files_limit(&config);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = config.async_threads(available_cpus()) {
        runtime.worker_threads(threads);
    }
    let runtime = runtime
        .enable_all()
        .thread_stack_size(config.limits.worker_stack_bytes)
        .thread_name("zeval-worker")
        .build()
        .map_err(ServeError::Runtime)?;
    let result = runtime.block_on(run(config, build));
    // Blocking work still running past the drain timeout (a call that outlived it) must not
    // keep the process: dropping the runtime would wait for it without bound.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
}

/// The CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Open files the process needs besides its listeners' connections: the store, workers'
/// sockets and pipes, outgoing connections, module and artifact files.
pub(crate) const OPEN_FILES_BESIDES_CONNECTIONS: u64 = 1024;

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) to what the listeners' connection
/// limits need (`limits.max_connections` each, and [`OPEN_FILES_BESIDES_CONNECTIONS`]), as
/// far as the hard limit allows; warns when that is not enough. The soft limit is commonly
/// 1,024, the same as one listener's connections: at the cap the server would run out of
/// file descriptors, and every new file, socket and worker pipe would fail, before the
/// connection limits ever applied.
fn raise_open_files_limit(config: &Config) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let listeners: u64 = match config.role {
        Role::All => 2,
        Role::Orchestrator | Role::Evaluator => 1,
    };
    let needed = (config.limits.max_connections as u64)
        .saturating_mul(listeners)
        .saturating_add(OPEN_FILES_BESIDES_CONNECTIONS);
    let mut limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return;
    }
    let raised = limit.maximum.map_or(needed, |hard| hard.min(needed));
    if raised > soft {
        limit.current = Some(raised);
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => tracing::info!(from = soft, to = raised, "raised the open-files limit"),
            Err(error) => tracing::warn!(%error, "could not raise the open-files limit"),
        }
    }
    if raised < needed {
        tracing::warn!(
            limit = raised,
            needed,
            "the open-files limit is below what the connection limits need: lower \
             limits.max_connections or raise the hard limit (ulimit -Hn)"
        );
    }
}

async fn run(
    config: Config,
    build: impl FnOnce(&Config, &std::sync::Arc<Metrics>) -> Result<Services, ServeError>,
) -> Result<(), ServeError> {
    let metrics = std::sync::Arc::new(Metrics::default());
    let services = tokio::task::block_in_place(|| build(&config, &metrics))?;
    // The orchestrator listener stops at the signal; the evaluator's once it has drained.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (evaluator_stop_tx, evaluator_stop_rx) = watch::channel(false);
    let drain = crate::drain::Drain::new(config.limits.retry_after_seconds);
    let drain_timeout = Duration::from_millis(config.failover.drain_timeout_ms);
    let (signalled_tx, mut signalled) = watch::channel(false);
    {
        let drain = drain.clone();
        let stop_signal = stop_signal();
        tokio::spawn(async move {
            stop_signal.await;
            tracing::info!("shutting down: finishing requests in progress");
            let _ = signalled_tx.send(true);
            let _ = stop_tx.send(true);
            drain.start();
            if tokio::time::timeout(drain_timeout, drain.finished())
                .await
                .is_err()
            {
                tracing::warn!(
                    in_flight = drain.in_flight(),
                    "the evaluator's drain timed out with calls in flight"
                );
            }
            let _ = evaluator_stop_tx.send(true);
        });
    }
    let mut servers = Vec::new();
    if config.role != Role::Evaluator
        && let Some(state) = services.orchestrator
    {
        let listener = bind(config.listen).await?;
        announce("orchestrator API", &listener);
        // Where remote evaluators post the nested calls of the code they run.
        if let Some(url) = config.callback_url.as_deref().filter(|u| !u.is_empty()) {
            crate::reentry_api::callbacks().set_base_url(url.trim_end_matches('/').to_owned());
        } else if let Ok(mut addr) = listener.local_addr() {
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            crate::reentry_api::callbacks().set_base_url(format!("http://{addr}"));
        }
        let app =
            crate::orchestrator_router(state).layer(tower_http::trace::TraceLayer::new_for_http());
        servers.push(tokio::spawn(run_one(
            listener,
            app,
            config.limits.clone(),
            stop_rx.clone(),
        )));
    }
    if config.role != Role::Orchestrator
        && let Some(router) = services.evaluator
    {
        let listener = bind(config.evaluator_listen).await?;
        announce("evaluator API", &listener);
        let app = evaluator_app_draining(router, &config, &metrics, drain);
        // Its callers are orchestrators (the secret, or loopback), and a 503 tells them the
        // call did not run, which they send again: unsent answers are not bounded here.
        let limits = Limits {
            max_unsent_response_bytes: 0,
            max_unsent_response_bytes_per_client: 0,
            ..config.limits.clone()
        };
        servers.push(tokio::spawn(run_one(
            listener,
            app,
            limits,
            evaluator_stop_rx,
        )));
    }
    if servers.is_empty() {
        return Err(ServeError::Setup("nothing to serve for this role".into()));
    }
    let all_stopped = async {
        for server in servers {
            server
                .await
                .map_err(|e| ServeError::Setup(format!("a server task failed: {e}")))?;
        }
        Ok(())
    };
    // Bounded: at most the drain timeout after the signal (see the module documentation).
    let out_of_time = async {
        let _ = signalled.wait_for(|signalled| *signalled).await;
        tokio::time::sleep(drain_timeout).await;
    };
    tokio::select! {
        stopped = all_stopped => stopped,
        () = out_of_time => {
            tracing::warn!("leaving with requests still in progress: the drain timeout is over");
            Ok(())
        }
    }
}

/// The evaluator router with this process's limits around it, outermost first: the
/// orchestrator's secret when `evaluator_secret` is set (401 without it, before the body is
/// read), then admission ([`crate::limits`]: body size within `limits.body_timeout_ms`, then
/// one of `limits.evaluator_max_concurrent_requests` slots, its own and not the
/// orchestrator's, for code runs; health checks take none), tracing.
pub fn evaluator_app(router: Router, config: &Config, metrics: &std::sync::Arc<Metrics>) -> Router {
    let drain = crate::drain::Drain::new(config.limits.retry_after_seconds);
    evaluator_app_draining(router, config, metrics, drain)
}

/// [`evaluator_app`] that drains when `drain` says so ([`crate::drain`]): outermost but for
/// tracing, so a draining node refuses calls before reading their bodies.
pub fn evaluator_app_draining(
    router: Router,
    config: &Config,
    metrics: &std::sync::Arc<Metrics>,
    drain: Arc<crate::drain::Drain>,
) -> Router {
    let limits = &config.limits;
    let limit = limits.evaluator_body_bytes;
    let counted = metrics.clone();
    let slots = Admission::new(
        limits.evaluator_max_concurrent_requests,
        limit,
        Duration::from_millis(limits.body_timeout_ms),
        limits.retry_after_seconds,
        Arc::new(move |reason| counted.inc("zeval_requests_rejected_total", &[("reason", reason)])),
    );
    let app = router
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(limit, explain_too_large))
        .layer(middleware::from_fn_with_state(slots, admit_runs));
    let app = match config.evaluator_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) => app.layer(middleware::from_fn_with_state(
            OrchestratorSecret {
                secret: Arc::from(secret.as_bytes()),
                metrics: metrics.clone(),
            },
            require_orchestrator_secret,
        )),
        None => app.layer(middleware::from_fn(only_loopback_hosts)),
    };
    app.layer(middleware::from_fn_with_state(drain, crate::drain::layer))
        .layer(middleware::from_fn(run_to_completion))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// What the evaluator API expects in [`EVALUATOR_SECRET_HEADER`].
#[derive(Clone)]
struct OrchestratorSecret {
    secret: Arc<[u8]>,
    metrics: Arc<Metrics>,
}

/// Middleware: every request but `GET`/`HEAD` of health must carry the configured secret
/// (`/_info`, which names the worker processes, needs it too).
async fn require_orchestrator_secret(
    State(expected): State<OrchestratorSecret>,
    mut request: Request,
    next: Next,
) -> Response {
    let health = matches!(*request.method(), Method::GET | Method::HEAD)
        && !request.uri().path().starts_with("/_info");
    if !health {
        let given = request.headers().get(EVALUATOR_SECRET_HEADER);
        if !given.is_some_and(|given| same_secret(given.as_bytes(), &expected.secret)) {
            expected
                .metrics
                .inc("zeval_requests_rejected_total", &[("reason", "bad_secret")]);
            return ApiError::Unauthorized(format!(
                "the evaluator API answers only its orchestrator: send the configured secret in \
                 `{EVALUATOR_SECRET_HEADER}`"
            ))
            .into_response();
        }
        request
            .extensions_mut()
            .insert(crate::evaluator_api::FromOrchestrator);
    }
    next.run(request).await
}

/// Middleware of an evaluator API without a secret (which serves loopback only): a request
/// must name a loopback host (`localhost`, `127.x.x.x`, `[::1]`), or none. A web page the
/// developer visits can make the browser send requests to a loopback port, and through DNS
/// rebinding read their answers, naming its own host; such a page could run code here and,
/// through the nested calls' callback URL, have this process post to any address and hand
/// the answer back.
async fn only_loopback_hosts(request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .map(|host| host.to_str().unwrap_or("-"));
    if let Some(host) = host
        && !is_loopback_host(host)
    {
        return ApiError::BadRequest(format!(
            "this evaluator API has no secret and answers only requests addressed to a \
             loopback host (localhost, 127.0.0.1, [::1]), not {host:?}: set \
             `evaluator_secret` to serve others"
        ))
        .into_response();
    }
    next.run(request).await
}

/// Whether a `Host` header names a loopback host, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Compares secrets in time that depends on their length only, not on where they differ.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    let difference = given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| std::hint::black_box(acc | (a ^ b)));
    difference == 0
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn announce(what: &str, listener: &TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{what} on http://{addr}");
        let _ = out.flush();
        tracing::info!(%addr, "{what} listening");
    }
}

async fn run_one(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    serve_listener(listener, app, &limits, async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    })
    .await;
}

/// Serves `app` on `listener` under the connection limits of `limits` (see the module
/// documentation) until `shutdown` completes; then stops accepting, lets every request in
/// progress finish, closes idle connections, and returns once all connections are closed.
/// Handlers can read the peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve_listener(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
) {
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let connections = Arc::new(Semaphore::new(max_connections));
    let timeouts = Timeouts {
        header: Duration::from_millis(limits.header_timeout_ms),
        idle: Duration::from_millis(limits.idle_timeout_ms),
    };
    let per_client = ConnectionsPerClient::new(limits);
    let open = Arc::new(OpenConnections::default());
    let unsent = Arc::new(crate::unsent::UnsentResponses::new(limits));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    'accepting: loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::error!(%error, "cannot accept connections");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(client) = per_client.open(peer.ip()) else {
            tracing::debug!(%peer, "closed a connection past the client's limit");
            drop(stream);
            continue;
        };
        // At the cap, the client holding the most connections gives one way
        // (`OpenConnections::give_way`); while none can, this one waits, and connections
        // after it wait in the kernel's accept queue.
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => loop {
                open.give_way();
                tokio::select! {
                    permit = connections.clone().acquire_owned() => match permit {
                        Ok(permit) => break permit,
                        Err(_) => break 'accepting,
                    },
                    () = tokio::time::sleep(GIVE_WAY_AGAIN) => {}
                    () = &mut shutdown => break 'accepting,
                }
            },
        };
        let client_key = per_client.key(peer.ip());
        let unsent = crate::unsent::ConnectionUnsent::new(unsent.clone());
        // A trusted proxy's connection carries many clients' requests: each is counted
        // under the client its `X-Forwarded-For` names.
        let forwarded = client_key
            .is_none()
            .then(|| (per_client.proxies.clone(), per_client.ipv6_prefix));
        tokio::spawn(serve_connection(
            stream,
            peer,
            app.clone(),
            timeouts,
            stop_rx.clone(),
            Place {
                _permit: permit,
                _client_slot: client,
                open: open.clone(),
                client: client_key,
                forwarded,
            },
            unsent,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it closes.
    let permits = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _all_closed = connections.acquire_many(permits).await;
}

/// The connections each client holds open on a listener, for
/// `limits.max_connections_per_client` (counted as work is, [`crate::limits::ClientSlots`]).
struct ConnectionsPerClient {
    /// `None`: no limit.
    slots: Option<crate::limits::ClientSlots>,
    proxies: crate::client_address::TrustedProxies,
    ipv6_prefix: u8,
}

impl ConnectionsPerClient {
    fn new(limits: &Limits) -> Self {
        ConnectionsPerClient {
            slots: (limits.max_connections_per_client > 0)
                .then(|| crate::limits::ClientSlots::new(limits.max_connections_per_client)),
            // Checked by `Config::check` before anything is served.
            proxies: crate::client_address::TrustedProxies::parse(&limits.trusted_proxies)
                .unwrap_or_default(),
            ipv6_prefix: limits.client_ipv6_prefix,
        }
    }

    /// The key `peer` is counted under as a client; `None` for a trusted proxy.
    fn key(&self, peer: std::net::IpAddr) -> Option<String> {
        (!self.proxies.trusts(peer))
            .then(|| crate::client_address::client_key(peer, self.ipv6_prefix))
    }

    /// Counts a connection from `peer` until it closes (`Some(None)`: not counted, a trusted
    /// proxy's or with no limit); `None` when that client holds the most already.
    fn open(&self, peer: std::net::IpAddr) -> Option<Option<crate::limits::ClientSlot>> {
        match &self.slots {
            Some(slots) if !self.proxies.trusts(peer) => slots
                .try_take(crate::client_address::client_key(peer, self.ipv6_prefix))
                .map(Some),
            _ => Some(None),
        }
    }
}

/// The most bytes of a request's head (request line and headers) a connection buffers:
/// 64 KiB (hyper's read buffer, which is also where a body's bytes pass through in chunks of
/// at most this). hyper's default, about 400 KiB, let 1,024 connections trickling header
/// lines within the header timeout hold some 400 MiB. Past it the answer is 431.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long a connection waiting at the cap waits before asking again for one to give way
/// (the one asked may have started a request meanwhile).
const GIVE_WAY_AGAIN: Duration = Duration::from_millis(100);

/// The connections a listener has open, by client, for [`Self::give_way`].
///
/// The per-client cap alone let a few clients hold every connection: four addresses of 256
/// connections each, one request on each a minute within the idle timeout, took the
/// listener's 1,024, and every other client waited in the kernel's accept queue for as
/// long as they liked (one host of an IPv6 /62 counts as four clients).
#[derive(Default)]
struct OpenConnections {
    state: std::sync::Mutex<OpenState>,
}

#[derive(Default)]
struct OpenState {
    next: u64,
    open: std::collections::HashMap<u64, OpenConnection>,
}

struct OpenConnection {
    /// The client it is counted under (`None`: a trusted proxy's).
    client: Option<String>,
    clock: Arc<ConnectionClock>,
    unsent: Arc<crate::unsent::ConnectionUnsent>,
}

impl OpenConnection {
    /// How readily it gives way: 2 idle (no request in a handler, nothing large left to
    /// write), 1 neither idle nor working (a body still arriving, a `GET /playground/hold`,
    /// an answer its client is slow to read), `None` working (a request holds a work slot:
    /// closing it would only throw its answer away, and the work goes on) or already closing.
    fn readiness(&self) -> Option<u8> {
        if self.clock.closing() || self.clock.working() {
            return None;
        }
        Some(if self.clock.idle() && self.unsent.pending() == 0 {
            2
        } else {
            1
        })
    }
}

impl OpenConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, OpenState> {
        // Two plain fields, consistent after a panic too.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a connection until the guard is dropped.
    fn register(
        self: &Arc<Self>,
        client: Option<String>,
        clock: Arc<ConnectionClock>,
        unsent: Arc<crate::unsent::ConnectionUnsent>,
    ) -> RegisteredConnection {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.open.insert(
            id,
            OpenConnection {
                client,
                clock,
                unsent,
            },
        );
        RegisteredConnection {
            connections: self.clone(),
            id,
        }
    }

    /// Closes a connection of the client holding the most (two or more; trusted proxies
    /// are not asked) that is not working ([`OpenConnection::readiness`]), an idle one
    /// first: a newcomer at the cap takes its place. So a client's share of a full listener
    /// is what the others leave it, and whoever holds the most gives way first. A request
    /// that holds no work slot does not protect its connection: a body trickling in for its
    /// timeout, or `GET /playground/hold`, would hold one as well as an idle connection.
    /// Whether room is being made (a connection asked now, or before and still closing).
    /// O(connections), only at the cap.
    fn give_way(&self) -> bool {
        let state = self.lock();
        if state.open.values().any(|c| c.clock.closing_soon()) {
            return true;
        }
        let mut held: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for connection in state.open.values() {
            if let Some(client) = connection.client.as_deref() {
                *held.entry(client).or_default() += 1;
            }
        }
        let mut candidates: Vec<_> = state
            .open
            .values()
            .filter_map(|connection| {
                let count = held.get(connection.client.as_deref()?).copied()?;
                let readiness = connection.readiness()?;
                (count >= 2).then_some(((count, readiness), connection))
            })
            .collect();
        candidates.sort_by_key(|(rank, _)| std::cmp::Reverse(*rank));
        // A request may have started its work since `readiness` looked: then the next.
        candidates
            .into_iter()
            .any(|(_, connection)| connection.clock.close_unless_working())
    }
}

/// A connection counted in [`OpenConnections`] until dropped.
struct RegisteredConnection {
    connections: Arc<OpenConnections>,
    id: u64,
}

impl Drop for RegisteredConnection {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// When a connection is closed if nothing happens: set on connect (the header timeout), cleared
/// while a request is in a handler, set to the idle timeout when the last one finishes, and
/// to the header timeout again at the first byte of the next request.
struct ConnectionClock {
    deadline: watch::Sender<Option<Instant>>,
    requests_in_progress: AtomicUsize,
    between_requests: AtomicBool,
    /// Bit 0: asked to close ([`Self::close_unless_working`]); the rest: requests of this
    /// connection at work ([`ConnectionWork`]), in steps of [`AT_WORK`]. One word, so that a
    /// connection is never asked to close as a request starts its work on it.
    work: AtomicUsize,
    /// When it was asked to close.
    closing_since: std::sync::OnceLock<std::time::Instant>,
    timeouts: Timeouts,
}

impl ConnectionClock {
    fn new(timeouts: Timeouts) -> Self {
        ConnectionClock {
            deadline: watch::Sender::new(Some(Instant::now() + timeouts.header)),
            requests_in_progress: AtomicUsize::new(0),
            between_requests: AtomicBool::new(false),
            work: AtomicUsize::new(0),
            closing_since: std::sync::OnceLock::new(),
            timeouts,
        }
    }

    fn bytes_arrived(&self) {
        if self.between_requests.swap(false, Ordering::SeqCst)
            && self.requests_in_progress.load(Ordering::SeqCst) == 0
        {
            self.deadline
                .send_replace(Some(Instant::now() + self.timeouts.header));
        }
    }

    /// Whether no request is in a handler.
    fn idle(&self) -> bool {
        self.requests_in_progress.load(Ordering::SeqCst) == 0
    }

    /// Whether a request of this connection is at work.
    fn working(&self) -> bool {
        self.work.load(Ordering::SeqCst) >= AT_WORK
    }

    /// Asks the connection to close now, a request in a handler or not, unless one is at
    /// work; whether it was asked.
    fn close_unless_working(&self) -> bool {
        if self
            .work
            .compare_exchange(0, CLOSING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        let _ = self.closing_since.set(std::time::Instant::now());
        self.deadline.send_replace(Some(Instant::now()));
        true
    }

    /// Whether it was asked to close.
    fn closing(&self) -> bool {
        self.work.load(Ordering::SeqCst) & CLOSING != 0
    }

    /// Whether it was asked to close less than [`CLOSING_SOON`] ago: a connection asked
    /// longer ago is stuck in its handler (which sees the request only when it is done),
    /// and must not stop others from giving way.
    fn closing_soon(&self) -> bool {
        // Set only once it is closing, which is never undone.
        self.closing_since
            .get()
            .is_some_and(|since| since.elapsed() < CLOSING_SOON)
    }

    fn request_started(self: &Arc<Self>) -> RequestInProgress {
        self.requests_in_progress.fetch_add(1, Ordering::SeqCst);
        self.between_requests.store(false, Ordering::SeqCst);
        self.deadline.send_replace(None);
        RequestInProgress(self.clone())
    }
}

/// [`ConnectionClock::work`]'s bit for "asked to close".
const CLOSING: usize = 1;
/// [`ConnectionClock::work`]'s step for one request at work.
const AT_WORK: usize = 2;
/// How long a connection asked to close counts as room being made ([`OpenConnections::give_way`]).
const CLOSING_SOON: Duration = Duration::from_secs(1);

/// A request extension: the connection the request came on, which the routes that work
/// ([`crate::limits::admit`], the nested calls' callback) mark as at work while they are (a
/// connection at work never gives way at the cap, [`OpenConnections::give_way`]).
#[derive(Clone)]
pub(crate) struct ConnectionWork(Arc<ConnectionClock>);

impl ConnectionWork {
    /// Marks the connection a request came on (its `extensions`) as at work until the guard
    /// is dropped: `Ok(None)` for a request that came on none (a test's router), `Err` when
    /// it is closing (the work would be thrown away: the request is refused instead).
    pub(crate) fn start_for(
        extensions: &axum::http::Extensions,
    ) -> Result<Option<Working>, ConnectionClosing> {
        match extensions.get::<ConnectionWork>() {
            None => Ok(None),
            Some(connection) => connection.start().map(Some).ok_or(ConnectionClosing),
        }
    }

    /// Marks the connection as at work until the guard is dropped; `None` when it is
    /// closing.
    fn start(&self) -> Option<Working> {
        self.0
            .work
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |work| {
                (work & CLOSING == 0).then_some(work + AT_WORK)
            })
            .ok()?;
        Some(Working(self.0.clone()))
    }
}

/// The connection was asked to close at the cap ([`ConnectionWork::start_for`]).
#[derive(Debug)]
pub(crate) struct ConnectionClosing;

/// A connection at work, until dropped.
pub(crate) struct Working(Arc<ConnectionClock>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.work.fetch_sub(AT_WORK, Ordering::SeqCst);
    }
}

/// Restarts the idle clock when the last request of a connection finishes (or is dropped).
struct RequestInProgress(Arc<ConnectionClock>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        let clock = &self.0;
        if clock.requests_in_progress.fetch_sub(1, Ordering::SeqCst) == 1 {
            clock
                .deadline
                .send_replace(Some(Instant::now() + clock.timeouts.idle));
            clock.between_requests.store(true, Ordering::SeqCst);
        }
    }
}

/// A TCP stream that tells its clock when bytes arrive, and its count of unsent responses
/// ([`crate::unsent`]) when bytes leave.
struct WatchedStream {
    stream: TcpStream,
    clock: Arc<ConnectionClock>,
    unsent: Arc<crate::unsent::ConnectionUnsent>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.bytes_arrived();
        }
        read
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(bytes)) = &written {
            this.unsent.written(*bytes);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(bytes)) = &written {
            this.unsent.written(*bytes);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A connection's place on its listener, held until it closes: one of the listener's
/// connections, one of its client's, and its entry among the open ones.
struct Place {
    _permit: OwnedSemaphorePermit,
    _client_slot: Option<crate::limits::ClientSlot>,
    open: Arc<OpenConnections>,
    /// The client it is counted under (`None`: a trusted proxy's).
    client: Option<String>,
    /// For a trusted proxy's connection: how to tell the client of each request.
    forwarded: Option<(crate::client_address::TrustedProxies, u8)>,
}

/// Serves one connection until it ends, its clock runs out, it is asked to give way at the
/// cap ([`OpenConnections::give_way`]), or shutdown (then requests in progress finish first).
/// Holds its `place` throughout.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
    place: Place,
    unsent: crate::unsent::ConnectionUnsent,
) {
    let clock = Arc::new(ConnectionClock::new(timeouts));
    let unsent = Arc::new(unsent);
    let _registered = place
        .open
        .register(place.client.clone(), clock.clone(), unsent.clone());
    let io = TokioIo::new(WatchedStream {
        stream,
        clock: clock.clone(),
        unsent: unsent.clone(),
    });
    let app = TowerToHyperService::new(app);
    let request_clock = clock.clone();
    let connection_client = place.client.clone();
    let forwarded = place.forwarded.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let client = match &forwarded {
            None => connection_client.clone(),
            Some((proxies, ipv6_prefix)) => {
                let ip = proxies.client_of(peer.ip(), request.headers());
                (!proxies.trusts(ip)).then(|| crate::client_address::client_key(ip, *ipv6_prefix))
            }
        };
        request.extensions_mut().insert(ConnectInfo(peer));
        request
            .extensions_mut()
            .insert(ConnectionWork(request_clock.clone()));
        let in_progress = request_clock.request_started();
        let response = hyper::service::Service::call(&app, request);
        let unsent = unsent.clone();
        async move {
            let response = response.await;
            drop(in_progress);
            response.map(|response| unsent.admit(response, client))
        }
    });
    let mut connection = pin!(
        hyper::server::conn::http1::Builder::new()
            // The clock above does this job, with a separate idle timeout.
            .header_read_timeout(None)
            .max_buf_size(MAX_HEADER_BYTES)
            .serve_connection(io, service)
    );
    let mut deadline = clock.deadline.subscribe();
    let mut stopping = false;
    loop {
        let next_deadline = *deadline.borrow_and_update();
        // A request in a handler keeps the connection open whatever the clock says, unless
        // it is asked to close now; the request's end sets the clock again.
        let next_deadline = if clock.closing() {
            Some(Instant::now())
        } else {
            next_deadline.filter(|_| clock.idle())
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stopped| *stopped), if !stopping => {
                connection.as_mut().graceful_shutdown();
                stopping = true;
            }
            _ = deadline.changed() => {}
            () = sleep_until(next_deadline) => {
                if clock.closing() {
                    tracing::debug!(%peer, "closing a connection to make room at the cap");
                    return;
                }
                if clock.idle() && clock.deadline.borrow().is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "closing a connection that sent no request in time");
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// SIGINT or SIGTERM, watched from the moment this is called (not from the first poll): the
/// handlers are in place before the listeners are announced, so a signal right after start
/// is a clean shutdown, not the default action's kill.
fn stop_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(watched) => Some(watched),
            Err(e) => {
                tracing::warn!("cannot watch {name}: {e}");
                None
            }
        };
        let mut interrupt = watch(SignalKind::interrupt(), "SIGINT");
        let mut terminate = watch(SignalKind::terminate(), "SIGTERM");
        async move {
            tokio::select! {
                () = received(interrupt.as_mut()) => {},
                () = received(terminate.as_mut()) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits for `watched` to be delivered; forever when it could not be watched.
#[cfg(unix)]
async fn received(watched: Option<&mut tokio::signal::unix::Signal>) {
    match watched {
        Some(watched) => {
            watched.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
