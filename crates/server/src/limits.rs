//! Admission control for work (calls, tests, writes), in the order [`admit`] applies it:
//!
//! 1. The whole body is read first, at most the route's size limit (413 with the limit; a
//!    `Content-Length` over it is refused before reading anything) and within
//!    `limits.body_timeout_ms` (default 10 s; 408 past it). Nothing is held meanwhile, so a
//!    client that sends slowly costs a connection, never a work slot.
//! 2. The client may hold at most `limits.per_client_concurrent_requests` (default 8) work
//!    slots at once: past it 429 with `Retry-After`, so one caller cannot take every slot. A
//!    client is its bearer token when it sends one (the token was checked by
//!    [`crate::access::reject_wrong_tokens`] before), else its IP address (an IPv6 address
//!    by its network, a /64 unless `limits.client_ipv6_prefix` says otherwise,
//!    [`crate::client_address::client_key`]). The evaluator API
//!    has no per-client limit: its one legitimate client is the orchestrator.
//!    At most `limits.per_client_requests_per_minute` requests (default 0: no limit) may
//!    start per client and minute: past it 429 with `Retry-After` until the next minute.
//!    With `limits.redis_url`, both per-client limits are counted across every node sharing
//!    that Redis ([`crate::shared_limits`]); while it fails, each node counts alone.
//! 3. A work slot of the service (`limits.max_concurrent_requests`, default 64, on the
//!    orchestrator API; `limits.evaluator_max_concurrent_requests`, default 32, on the
//!    evaluator API). When none is free the answer is at once 503 with `Retry-After`: a queue
//!    without bound would only turn overload into timeouts for everyone. The evaluator API's
//!    health checks take no slot ([`admit_runs`]).
//! 4. The reserve ([`Admission::reserve`]; the orchestrator API's calls, `limits.reserve_requests`,
//!    default 8): when every work slot is taken, a request from a client with no other
//!    request in flight on this node may take one of these instead, and runs with at most
//!    `limits.reserve_call_timeout_ms` (default 1 s; [`ReservedTime`]). Eight clients of
//!    eight requests each, all within the per-client limit, used to hold all 64 slots, and
//!    every other client got 503 for as long as they kept it up. A client holding slots
//!    cannot take the reserve, and a request there holds it for a second at most, so the
//!    reserve keeps turning over for clients that hold nothing.
//!
//! Each refusal is counted through the `on_reject` hook with its reason (`too_large`,
//! `slow_body`, `client_busy`, `rate_limited`, `busy`).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::client_address::TrustedProxies;
use crate::problem::ApiError;
use crate::shared_limits::{Decision, Lease, SharedLimits};

/// Counts a refusal by reason.
pub type OnReject = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Set on a request admitted into the reserve ([`Admission::reserve`]): the longest its work
/// may run.
#[derive(Debug, Clone, Copy)]
pub struct ReservedTime(pub Duration);

/// Set on every request whose client [`admit`] named (by the rules of the per-client slots):
/// the key the orchestrator counts a client's calls from code by
/// (`zeval_orchestrator::CallOptions::client`).
#[derive(Debug, Clone)]
pub struct ClientKey(pub Arc<str>);

/// Work slots for clients with nothing in flight, taken when the service's are all held.
#[derive(Clone)]
struct Reserve {
    slots: Arc<Semaphore>,
    limit: usize,
    time: Duration,
    /// Runs for each request admitted into the reserve (to count it).
    on_admit: Arc<dyn Fn() + Send + Sync>,
}

/// The admission rules of one group of routes: body size and time, per-client and total
/// work slots.
#[derive(Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    limit: usize,
    body_limit: usize,
    body_timeout: Duration,
    per_client: Option<ClientSlots>,
    /// Every client's requests in flight on this node (with no limit), for the reserve: only
    /// a client with no other request in flight may take a reserve slot. Shared by the
    /// clones of one `Admission`, so that every route group counts. An entry lives while its
    /// client has a request in flight, so the map is bounded by the requests in flight, each
    /// on a connection of its own (`limits.max_connections`).
    in_flight: ClientSlots,
    reserve: Option<Reserve>,
    rate: Option<ClientRates>,
    shared: Option<Arc<SharedLimits>>,
    proxies: Arc<TrustedProxies>,
    ipv6_prefix: u8,
    retry_after: u64,
    on_reject: OnReject,
}

impl Admission {
    /// `limit` work slots for requests whose bodies are at most `body_limit` bytes and
    /// arrive within `body_timeout`; `on_reject` runs for each refusal with its reason.
    pub fn new(
        limit: usize,
        body_limit: usize,
        body_timeout: Duration,
        retry_after: u64,
        on_reject: OnReject,
    ) -> Self {
        Admission {
            slots: Arc::new(Semaphore::new(limit.max(1))),
            limit,
            body_limit,
            body_timeout,
            per_client: None,
            in_flight: ClientSlots::new(usize::MAX),
            reserve: None,
            rate: None,
            shared: None,
            proxies: Arc::new(TrustedProxies::default()),
            ipv6_prefix: crate::client_address::DEFAULT_CLIENT_IPV6_PREFIX,
            retry_after,
            on_reject,
        }
    }

    /// Also limits each client to `limit` slots at once.
    pub fn per_client(mut self, limit: usize) -> Self {
        self.per_client = Some(ClientSlots::new(limit.max(1)));
        self
    }

    /// Adds `limit` reserve slots (none when 0) whose requests run at most `time` (module
    /// documentation, step 4); `on_admit` runs for each request admitted there. For the
    /// routes of this `Admission` only: a clone made before keeps none, and shares everything
    /// else.
    pub fn reserve(
        mut self,
        limit: usize,
        time: Duration,
        on_admit: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        self.reserve = (limit > 0).then(|| Reserve {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            time,
            on_admit,
        });
        self
    }

    /// Also limits each client to `per_minute` requests started per minute (0: none).
    pub fn per_client_rate(mut self, per_minute: u64) -> Self {
        self.rate = (per_minute > 0).then(|| ClientRates {
            per_minute,
            windows: Arc::new(Mutex::new(RateWindows::default())),
        });
        self
    }

    /// Counts anonymous requests from `proxies` against the client they forwarded for
    /// ([`crate::client_address`]).
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = Arc::new(proxies);
        self
    }

    /// Counts an anonymous IPv6 client by its network of `prefix` bits
    /// ([`crate::client_address::client_key`]; default 64).
    pub fn client_ipv6_prefix(mut self, prefix: u8) -> Self {
        self.ipv6_prefix = prefix;
        self
    }

    /// Counts the per-client limits across nodes through `shared` (this node's own counters
    /// stand in while it fails).
    pub fn shared(mut self, shared: Option<Arc<SharedLimits>>) -> Self {
        self.shared = shared;
        self
    }
}

/// The most clients whose rate this node tracks in one minute; past it, new clients of
/// that minute are not rate-limited by this node (each still holds at most its slots).
pub const MAX_RATE_CLIENTS: usize = 100_000;

/// Requests each client started in the current minute, on this node.
#[derive(Clone)]
struct ClientRates {
    per_minute: u64,
    windows: Arc<Mutex<RateWindows>>,
}

/// Each client's (minute, requests started in it), and the minute the map was last swept of
/// other minutes' clients.
#[derive(Default)]
struct RateWindows {
    clients: HashMap<String, (u64, u64)>,
    swept: u64,
}

impl ClientRates {
    /// `Err(seconds to wait)` when `client` used up this minute.
    fn count(&self, client: &str) -> Result<(), u64> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let minute = now / 60;
        let mut guard = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let RateWindows {
            clients: windows,
            swept,
        } = &mut *guard;
        // At most once a minute: when a minute's new clients alone fill the map, sweeping on
        // every request walked all 100,000 entries each time, under the lock.
        if windows.len() >= MAX_RATE_CLIENTS && *swept != minute {
            windows.retain(|_, (m, _)| *m == minute);
            *swept = minute;
        }
        if !windows.contains_key(client) && windows.len() >= MAX_RATE_CLIENTS {
            return Ok(());
        }
        let entry = windows.entry(client.to_owned()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        if entry.1 > self.per_minute {
            return Err(60 - now % 60);
        }
        Ok(())
    }
}

/// A slot taken in the shared Redis: given back by [`SharedSlot::release`] once the answer
/// is ready, or when dropped (a request whose client went away).
struct SharedSlot {
    shared: Arc<SharedLimits>,
    lease: Lease,
    released: bool,
}

impl SharedSlot {
    /// Gives the slot back and waits until Redis has it, so that a client that sends its
    /// next request as soon as it has this answer finds the slot free. (A release left to
    /// `Drop` runs later on the blocking pool, and such a client was refused as still
    /// having the request in progress.)
    async fn release(mut self) {
        self.released = true;
        let (shared, lease) = (self.shared.clone(), self.lease.clone());
        if let Err(error) = tokio::task::spawn_blocking(move || shared.release(&lease)).await {
            tracing::warn!(%error, "giving a shared slot back stopped");
        }
    }
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let shared = self.shared.clone();
        let lease = self.lease.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || shared.release(&lease));
            }
            Err(_) => shared.release(&lease),
        }
    }
}

impl Admission {
    /// Applies the per-client limits: `Ok` with what to hold while the request runs, or the
    /// refusal.
    async fn admit_client(
        &self,
        client: String,
    ) -> Result<(Option<ClientSlot>, Option<SharedSlot>), ApiError> {
        if let Some(shared) = &self.shared {
            let asked = shared.clone();
            let who = client.clone();
            match tokio::task::spawn_blocking(move || asked.take(&who)).await {
                Ok(Ok(Decision::Admitted(lease))) => {
                    let slot = SharedSlot {
                        shared: shared.clone(),
                        lease,
                        released: false,
                    };
                    return Ok((None, Some(slot)));
                }
                Ok(Ok(Decision::Busy)) => {
                    (self.on_reject)("client_busy");
                    return Err(ApiError::TooManyRequests {
                        limit: self.per_client.as_ref().map_or(0, |c| c.limit),
                        retry_after: self.retry_after,
                    });
                }
                Ok(Ok(Decision::RateLimited { retry_after })) => {
                    (self.on_reject)("rate_limited");
                    return Err(ApiError::RateLimited {
                        per_minute: self.rate.as_ref().map_or(0, |r| r.per_minute),
                        retry_after,
                    });
                }
                // Redis failed: this node's own counters decide.
                Ok(Err(_)) | Err(_) => {}
            }
        }
        if let Some(rate) = &self.rate
            && let Err(retry_after) = rate.count(&client)
        {
            (self.on_reject)("rate_limited");
            return Err(ApiError::RateLimited {
                per_minute: rate.per_minute,
                retry_after,
            });
        }
        match &self.per_client {
            Some(clients) => match clients.try_take(client) {
                Some(slot) => Ok((Some(slot), None)),
                None => {
                    (self.on_reject)("client_busy");
                    Err(ApiError::TooManyRequests {
                        limit: clients.limit,
                        retry_after: self.retry_after,
                    })
                }
            },
            None => Ok((None, None)),
        }
    }
}

/// The slots each client holds now (entries exist only while held, so the map is bounded by
/// what is held): work in flight here, connections in [`crate::serve`].
#[derive(Clone)]
pub(crate) struct ClientSlots {
    limit: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One slot of one client, given back when dropped.
pub(crate) struct ClientSlot {
    held: Arc<Mutex<HashMap<String, usize>>>,
    client: String,
}

impl ClientSlots {
    /// At most `limit` slots per client.
    pub(crate) fn new(limit: usize) -> Self {
        ClientSlots {
            limit,
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub(crate) fn try_take(&self, client: String) -> Option<ClientSlot> {
        self.try_take_counting(client).map(|(slot, _)| slot)
    }

    /// [`ClientSlots::try_take`], with how many slots the client holds with this one.
    fn try_take_counting(&self, client: String) -> Option<(ClientSlot, usize)> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(client.clone()).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        let count = *count;
        Some((
            ClientSlot {
                held: self.held.clone(),
                client,
            },
            count,
        ))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

/// Who a request counts against: its bearer token, else its peer's IP address, or the address
/// a trusted proxy forwarded for, an IPv6 one by its network of `ipv6_prefix` bits
/// ([`crate::client_address::client_key`]) (`unknown` when served without a connection, as
/// in tests that call the router directly).
fn client_of(request: &Request, proxies: &TrustedProxies, ipv6_prefix: u8) -> String {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = token {
        return format!("token {token}");
    }
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => {
            let client = proxies.client_of(peer.ip(), request.headers());
            format!(
                "ip {}",
                crate::client_address::client_key(client, ipv6_prefix)
            )
        }
        None => "ip unknown".into(),
    }
}

/// Middleware: reads the body, then takes the client's and the service's slots and holds
/// them while the inner service runs (see the module documentation for the order).
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match read_body_within(
        &parts.headers,
        body,
        admission.body_limit,
        admission.body_timeout,
    )
    .await
    {
        Ok(bytes) => bytes,
        Err(refusal) => {
            match refusal {
                ApiError::PayloadTooLarge { .. } => (admission.on_reject)("too_large"),
                ApiError::BodyTimeout { .. } => (admission.on_reject)("slow_body"),
                _ => {}
            }
            return refusal.into_response();
        }
    };
    // The connection is at work from here until the answer is ready: it does not give way
    // at the connection cap. One already asked to close would throw the answer away (a
    // write done and its answer lost, for a client that may send it again): refused.
    let Ok(working) = crate::serve::ConnectionWork::start_for(&parts.extensions) else {
        return ApiError::Busy {
            limit: admission.limit,
            retry_after: admission.retry_after,
        }
        .into_response();
    };
    let mut request = Request::from_parts(parts, Body::from(bytes));
    let client =
        (admission.per_client.is_some() || admission.rate.is_some() || admission.reserve.is_some())
            .then(|| client_of(&request, &admission.proxies, admission.ipv6_prefix));
    if let Some(client) = &client {
        request
            .extensions_mut()
            .insert(ClientKey(Arc::from(client.as_str())));
    }
    let (client_slot, shared_slot) = match &client {
        Some(client) if admission.per_client.is_some() || admission.rate.is_some() => {
            match admission.admit_client(client.clone()).await {
                Ok(held) => held,
                Err(refusal) => return refusal.into_response(),
            }
        }
        _ => (None, None),
    };
    // Counted after the per-client limits: a refused request is not in flight. The map has
    // no limit, so a client is always counted.
    let in_flight = client
        .clone()
        .and_then(|client| admission.in_flight.try_take_counting(client));
    let permit = match admission.slots.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            let alone = in_flight.as_ref().is_some_and(|(_, count)| *count == 1);
            let reserved = admission
                .reserve
                .as_ref()
                .filter(|_| alone)
                .and_then(|reserve| {
                    Some((reserve.slots.clone().try_acquire_owned().ok()?, reserve))
                });
            let Some((permit, reserve)) = reserved else {
                (admission.on_reject)("busy");
                return ApiError::Busy {
                    limit: admission.limit,
                    retry_after: admission.retry_after,
                }
                .into_response();
            };
            tracing::debug!(
                reserve = reserve.limit,
                "every work slot is held: a request of a client with nothing else in flight \
                 runs in the reserve"
            );
            (reserve.on_admit)();
            request.extensions_mut().insert(ReservedTime(reserve.time));
            permit
        }
    };
    let response = next.run(request).await;
    drop(permit);
    drop(in_flight);
    drop(client_slot);
    if let Some(slot) = shared_slot {
        slot.release().await;
    }
    // Last: the release above may wait (a shared slot, on Redis), and a connection no longer
    // at work may be closed at the connection cap, the answer with it.
    drop(working);
    response
}

/// Middleware, outside [`admit`]: the rest of the request goes on when the client hangs up.
/// Without it, a client that closed its connection while its call ran dropped the request's
/// future and with it the slots [`admit`] held, while the call itself went on in tokio's
/// blocking threads: one client could thus have any number of calls running, past its
/// per-client limit and the service's. Now the slots are held until the work ends, which its
/// deadline bounds.
///
/// The request runs on the connection's task as before; only the rest of one whose client
/// hung up becomes a task of its own (`FinishOnDrop`). Spawning every request instead cost
/// `zeval bench library` 33 µs per check (0.285 against 0.252 ms outside the cell), the
/// handler then often running on the other core.
pub async fn run_to_completion(request: Request, next: Next) -> Response {
    FinishOnDrop(Some(Box::pin(next.run(request)))).await
}

/// A request's future that, dropped before it is done, is finished on a task of its own.
struct FinishOnDrop(Option<Pin<Box<dyn Future<Output = Response> + Send>>>);

impl Future for FinishOnDrop {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let Some(rest) = self.0.as_mut() else {
            return Poll::Pending;
        };
        let response = std::task::ready!(rest.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(response)
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        // Not a future that panicked: polled again, it would only panic again.
        if std::thread::panicking() {
            return;
        }
        if let Some(rest) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                drop(rest.await);
            });
        }
    }
}

/// Middleware for the evaluator API: [`admit`] for code runs, while health checks (`GET`,
/// `HEAD`: no body, no code) are answered outside the slots, so that an evaluator whose
/// slots are all taken is seen as busy by its runs' 503s, not as down by the orchestrators'
/// health checks. Bounded by the connection limits of [`crate::serve_listener`] and, before
/// this, by the evaluator secret.
pub async fn admit_runs(
    State(admission): State<Admission>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) {
        return next.run(request).await;
    }
    admit(State(admission), request, next).await
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // `to_bytes` reports both a broken stream and the limit as one error type; the limit
        // is the one whose source is `LengthLimitError`.
        let text = format!("{e:?}");
        if text.contains("LengthLimit") {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BadRequest(format!("could not read the request body: {e}"))
        }
    })
}

/// [`read_body`] that gives up with 408 when the whole body has not arrived within
/// `timeout` (one deadline for the whole body, so trickling bytes does not extend it).
pub async fn read_body_within(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    tokio::time::timeout(timeout, read_body(headers, body, limit))
        .await
        .unwrap_or(Err(ApiError::BodyTimeout {
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }))
}

/// Middleware turning a bare 413 from an inner router (e.g. axum's `DefaultBodyLimit`) into
/// the problem JSON with the limit.
pub async fn explain_too_large(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v != "application/problem+json")
    {
        return ApiError::PayloadTooLarge { limit }.into_response();
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn request(method: &str) -> Request {
        Request::builder()
            .method(method)
            .uri("/w/v1/evaluate/")
            .body(Body::empty())
            .unwrap()
    }

    /// A trusted proxy that adds its own `X-Forwarded-For` line after the client's: the
    /// client's many lines of its own do not hide the proxy's, whose word decides.
    #[test]
    fn a_client_cannot_push_its_proxys_forwarded_line_out_of_sight() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let mut request = request("POST");
        for i in 0..crate::client_address::MAX_FORWARDED_HOPS + 8 {
            request.headers_mut().append(
                "x-forwarded-for",
                format!("198.51.100.{i}").parse().unwrap(),
            );
        }
        request
            .headers_mut()
            .append("x-forwarded-for", "203.0.113.7".parse().unwrap());
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 5], 443))));
        assert_eq!(client_of(&request, &proxies, 64), "ip 203.0.113.7");
    }

    /// Once a minute's clients fill the rate map, further requests cost no walk over it: the
    /// map was swept on every request then, 100,000 entries each time under the lock.
    #[test]
    fn a_full_rate_map_is_swept_at_most_once_a_minute() {
        let rates = ClientRates {
            per_minute: 1_000,
            windows: Default::default(),
        };
        for n in 0..MAX_RATE_CLIENTS {
            rates.count(&format!("ip 10.{n}")).unwrap();
        }
        let started = std::time::Instant::now();
        for n in 0..5_000 {
            // New clients past the bound are not tracked; known ones still are.
            assert!(rates.count(&format!("ip 192.{n}")).is_ok());
            assert!(rates.count("ip 10.7").is_ok() || n > 900);
        }
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    }

    #[tokio::test]
    async fn a_saturated_evaluator_refuses_runs_but_answers_its_health_check() {
        let gate = Arc::new(Semaphore::new(0));
        let held = gate.clone();
        let admission = Admission::new(1, 1024, Duration::from_secs(1), 1, Arc::new(|_| {}));
        let app = Router::new()
            .route(
                "/w/v1/evaluate/",
                get(|| async { "ok" }).post(move || {
                    let gate = held.clone();
                    async move {
                        let _ = gate.acquire().await;
                        "done"
                    }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                admission.clone(),
                admit_runs,
            ));
        let in_flight = tokio::spawn(app.clone().oneshot(request("POST")));
        while admission.slots.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let refused = app.clone().oneshot(request("POST")).await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        let health = app.clone().oneshot(request("GET")).await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        gate.add_permits(1);
        assert_eq!(in_flight.await.unwrap().unwrap().status(), StatusCode::OK);
    }
}
