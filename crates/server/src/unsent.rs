//! Large responses that connections hold and have not yet written to their sockets, bounded
//! in bytes per listener (`limits.max_unsent_response_bytes`, default 256 MiB) and per client
//! (`limits.max_unsent_response_bytes_per_client`, default 32 MiB).
//!
//! A handler's answer is in memory in full before hyper writes it. A client that asks for
//! large answers (a call's answer may be megabytes, and the result cache makes it cheap to ask
//! again) and never reads them holds each in memory until the idle timeout closes its
//! connection (60 s): with the per-address connection cap (256) that was gigabytes from one
//! address. Now a response of at least [`COUNTED_FROM`] bytes is counted from the moment the
//! handler returns it until the kernel has taken its bytes (as the connection's writes report
//! them) or the connection closes; one that would pass either bound becomes a 503 with
//! `Retry-After`. A client with nothing waiting always gets its response (within the
//! listener's bound), so no answer is too large to be sent at all. Behind a trusted proxy
//! (`limits.trusted_proxies`) the client is the one its `X-Forwarded-For` names, response by
//! response, as for the work slots ([`crate::client_address`]). Smaller responses are not
//! counted (hyper buffers at most [`crate::serve::MAX_HEADER_BYTES`] of them per connection, and
//! queues the rest as the response's own bytes), and the common
//! path takes no lock. Zero for either bound: no bound.
//!
//! Not counted: the evaluator API's listener (its callers are orchestrators, which take a 503
//! for "not run" and send the call again) and responses marked [`NotCounted`]: the nested
//! calls' callback route's (a remote evaluator reads its answer at once; a 503 would fail the
//! nested call), and the playground's files and guests (shared bytes: a response waiting to
//! be read holds no memory of its own).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::Limits;

/// Responses smaller than this are not counted.
pub(crate) const COUNTED_FROM: usize = 64 * 1024;

/// A response extension: this response is not counted, whatever its size (a route whose
/// client reads at once, and for which a 503 would be wrong).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotCounted;

/// Marks `response` [`NotCounted`] (for `axum::middleware::map_response`).
pub(crate) async fn not_counted(mut response: Response) -> Response {
    response.extensions_mut().insert(NotCounted);
    response
}

/// The bytes a listener's connections hold unsent; see the module documentation.
pub(crate) struct UnsentResponses {
    max: usize,
    max_per_client: usize,
    retry_after_seconds: u64,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    total: usize,
    /// Clients holding any, by their key; a client is removed when it holds none.
    per_client: HashMap<String, usize>,
}

impl UnsentResponses {
    pub(crate) fn new(limits: &Limits) -> Self {
        UnsentResponses {
            max: limits.max_unsent_response_bytes,
            max_per_client: limits.max_unsent_response_bytes_per_client,
            retry_after_seconds: limits.retry_after_seconds,
            held: Mutex::new(Held::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `bytes` for `client` (`None`: a trusted proxy, bounded by the listener's limit
    /// only) if that keeps within the bounds, or if the client (the listener) holds nothing.
    fn try_hold(&self, client: Option<&str>, bytes: usize) -> bool {
        let mut held = self.lock();
        if self.max > 0 && held.total > 0 && held.total.saturating_add(bytes) > self.max {
            return false;
        }
        if let Some(client) = client {
            let mine = held.per_client.get(client).copied().unwrap_or(0);
            if self.max_per_client > 0
                && mine > 0
                && mine.saturating_add(bytes) > self.max_per_client
            {
                return false;
            }
            *held.per_client.entry(client.to_owned()).or_default() += bytes;
        }
        held.total += bytes;
        true
    }

    fn release(&self, client: Option<&str>, bytes: usize) {
        let mut held = self.lock();
        held.total = held.total.saturating_sub(bytes);
        if let Some(client) = client
            && let Some(mine) = held.per_client.get_mut(client)
        {
            *mine = mine.saturating_sub(bytes);
            if *mine == 0 {
                held.per_client.remove(client);
            }
        }
    }

    /// Bytes held now, by every connection of the listener.
    #[cfg(test)]
    fn total(&self) -> usize {
        self.lock().total
    }
}

/// A connection's large responses counted and not yet written to its socket, each under the
/// client it was counted for: HTTP/1.1 writes a connection's responses in order, so the
/// bytes written release the oldest first. A trusted proxy's connection carries many clients'
/// requests, each counted under its own (until 2026-12-06 all of them under none, bounded by
/// the listener's limit only, so a few clients behind a proxy that does not buffer could fill
/// it and have every other client's large answers refused).
pub(crate) struct ConnectionUnsent {
    shared: Arc<UnsentResponses>,
    /// Large responses not yet written, oldest first.
    queue: Mutex<VecDeque<Unwritten>>,
    /// The bytes in `queue`, read without its lock.
    pending: AtomicUsize,
}

/// One large response not yet written.
struct Unwritten {
    /// The client it is counted under; `None` inside: a trusted proxy's own. `None`: not
    /// counted ([`NotCounted`]), queued only so that its bytes, as they are written, release
    /// no other response's count (a client reading a 20 MB guest released the count of a
    /// call's answer it never read).
    counted: Option<Option<String>>,
    bytes: usize,
}

impl ConnectionUnsent {
    pub(crate) fn new(shared: Arc<UnsentResponses>) -> Self {
        ConnectionUnsent {
            shared,
            queue: Mutex::new(VecDeque::new()),
            pending: AtomicUsize::new(0),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Unwritten>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `response` to a request of `client` (`None`: a trusted proxy's own, bounded by the
    /// listener's limit only), counted if it is large, or a 503 in its place past the bounds.
    pub(crate) fn admit(&self, response: Response, client: Option<String>) -> Response {
        let size = hyper::body::Body::size_hint(response.body()).exact();
        let Some(bytes) = size.and_then(|size| usize::try_from(size).ok()) else {
            return response;
        };
        if bytes < COUNTED_FROM || (self.shared.max == 0 && self.shared.max_per_client == 0) {
            return response;
        }
        if response.extensions().get::<NotCounted>().is_some() {
            self.queue().push_back(Unwritten {
                counted: None,
                bytes,
            });
            self.pending.fetch_add(bytes, Ordering::SeqCst);
            return response;
        }
        if self.shared.try_hold(client.as_deref(), bytes) {
            self.queue().push_back(Unwritten {
                counted: Some(client),
                bytes,
            });
            self.pending.fetch_add(bytes, Ordering::SeqCst);
            return response;
        }
        tracing::debug!(
            client = client.as_deref().unwrap_or("a trusted proxy"),
            bytes,
            "refused a large response: too many are waiting to be read"
        );
        let mut refused = (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many large responses are waiting to be read by their clients: read those \
             first, or retry later.\n",
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&self.shared.retry_after_seconds.to_string()) {
            refused.headers_mut().insert(header::RETRY_AFTER, value);
        }
        refused
    }

    /// Bytes of large responses this connection has not yet written to its socket.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// The connection wrote `bytes` to its socket.
    pub(crate) fn written(&self, bytes: usize) {
        if self.pending.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut queue = self.queue();
        let mut left = bytes;
        while left > 0
            && let Some(front) = queue.front_mut()
        {
            let released = front.bytes.min(left);
            front.bytes -= released;
            left -= released;
            if let Some(client) = &front.counted {
                self.shared.release(client.as_deref(), released);
            }
            self.pending.fetch_sub(released, Ordering::SeqCst);
            if front.bytes == 0 {
                queue.pop_front();
            }
        }
    }
}

impl Drop for ConnectionUnsent {
    fn drop(&mut self) {
        for unwritten in self.queue().drain(..) {
            if let Some(client) = unwritten.counted {
                self.shared.release(client.as_deref(), unwritten.bytes);
            }
        }
        self.pending.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(max: usize, max_per_client: usize) -> Arc<UnsentResponses> {
        let limits = Limits {
            max_unsent_response_bytes: max,
            max_unsent_response_bytes_per_client: max_per_client,
            ..Limits::default()
        };
        Arc::new(UnsentResponses::new(&limits))
    }

    fn large(bytes: usize) -> Response {
        vec![b'x'; bytes].into_response()
    }

    #[test]
    fn a_client_holds_one_large_response_and_more_within_its_share() {
        let shared = shared(10 * COUNTED_FROM, 3 * COUNTED_FROM);
        let first = ConnectionUnsent::new(shared.clone());
        let second = ConnectionUnsent::new(shared.clone());
        // More than its share, but it holds nothing: let through.
        assert_eq!(
            first
                .admit(large(4 * COUNTED_FROM), Some("a".into()))
                .status(),
            200
        );
        assert_eq!(
            second.admit(large(COUNTED_FROM), Some("a".into())).status(),
            503
        );
        // Small responses are not counted.
        assert_eq!(
            second
                .admit(large(COUNTED_FROM - 1), Some("a".into()))
                .status(),
            200
        );
        // Another client has its own share.
        let other = ConnectionUnsent::new(shared.clone());
        assert_eq!(
            other
                .admit(large(2 * COUNTED_FROM), Some("b".into()))
                .status(),
            200
        );
        // Written, it is released.
        first.written(4 * COUNTED_FROM);
        assert_eq!(
            second.admit(large(COUNTED_FROM), Some("a".into())).status(),
            200
        );
        // What a closed connection had not written is released too.
        drop(second);
        drop(other);
        assert_eq!(shared.total(), 0);
    }

    #[test]
    fn a_response_marked_not_counted_is_not() {
        let shared = shared(COUNTED_FROM, COUNTED_FROM);
        let connection = ConnectionUnsent::new(shared.clone());
        for _ in 0..3 {
            let mut response = large(2 * COUNTED_FROM);
            response.extensions_mut().insert(NotCounted);
            assert_eq!(connection.admit(response, Some("d".into())).status(), 200);
        }
        assert_eq!(shared.total(), 0);
        // Written, its bytes release no counted response's.
        assert_eq!(
            connection
                .admit(large(2 * COUNTED_FROM), Some("d".into()))
                .status(),
            200
        );
        connection.written(3 * 2 * COUNTED_FROM);
        assert_eq!(shared.total(), 2 * COUNTED_FROM);
        connection.written(2 * COUNTED_FROM);
        assert_eq!(shared.total(), 0);
    }

    #[test]
    fn zero_is_no_bound() {
        let shared = shared(0, 0);
        let connection = ConnectionUnsent::new(shared.clone());
        for _ in 0..4 {
            assert_eq!(
                connection
                    .admit(large(4 * COUNTED_FROM), Some("d".into()))
                    .status(),
                200
            );
        }
        assert_eq!(shared.total(), 0, "nothing is counted");
    }

    #[test]
    fn the_listener_bound_holds_for_proxies_and_everyone() {
        let shared = shared(3 * COUNTED_FROM, 3 * COUNTED_FROM);
        let proxy = ConnectionUnsent::new(shared.clone());
        assert_eq!(proxy.admit(large(2 * COUNTED_FROM), None).status(), 200);
        assert_eq!(proxy.admit(large(2 * COUNTED_FROM), None).status(), 503);
        let client = ConnectionUnsent::new(shared.clone());
        assert_eq!(
            client
                .admit(large(2 * COUNTED_FROM), Some("c".into()))
                .status(),
            503
        );
        let refused = client.admit(large(2 * COUNTED_FROM), Some("c".into()));
        assert!(refused.headers().contains_key(header::RETRY_AFTER));
        proxy.written(usize::MAX);
        assert_eq!(
            client
                .admit(large(2 * COUNTED_FROM), Some("c".into()))
                .status(),
            200
        );
    }

    #[test]
    fn each_client_behind_one_proxy_connection_has_its_own_share() {
        let shared = shared(10 * COUNTED_FROM, 3 * COUNTED_FROM);
        let proxy = ConnectionUnsent::new(shared.clone());
        let alice = || Some("alice".to_owned());
        let bob = || Some("bob".to_owned());
        assert_eq!(proxy.admit(large(2 * COUNTED_FROM), alice()).status(), 200);
        assert_eq!(proxy.admit(large(2 * COUNTED_FROM), alice()).status(), 503);
        assert_eq!(proxy.admit(large(2 * COUNTED_FROM), bob()).status(), 200);
        // Written in order: alice's first, then bob's.
        proxy.written(2 * COUNTED_FROM);
        assert_eq!(proxy.pending(), 2 * COUNTED_FROM);
        assert_eq!(proxy.admit(large(2 * COUNTED_FROM), alice()).status(), 200);
        assert_eq!(proxy.admit(large(2 * COUNTED_FROM), bob()).status(), 503);
        proxy.written(3 * COUNTED_FROM);
        assert_eq!(proxy.admit(large(2 * COUNTED_FROM), bob()).status(), 200);
        drop(proxy);
        assert_eq!(shared.total(), 0);
    }
}
