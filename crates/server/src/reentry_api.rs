//! Calls from code that a remote evaluator runs, back to this orchestrator (`W.Call`): the
//! authenticated callback route `POST /v1/reentry/{id}`.
//!
//! When the orchestrator sends code to a remote evaluator ([`crate::evaluators::Remote`]), it
//! registers the call here (`Callbacks::register`) and names a callback URL (this route, with
//! a fresh random id) and a fresh random secret in the request's headers
//! ([`zeval_evaluator::reentry::CALLBACK_URL_HEADER`], `…_TOKEN_HEADER`). The evaluator posts
//! each nested call to that URL with the secret (`zeval_evaluator::reentry::CallbackClient`).
//! This route hands it to the thread that waits for the evaluator's answer, which runs it
//! inside the same request (deadline, budget, depth and access rules, as in process), and
//! answers `{"result": …}` or `{"error": <Z5>}`.
//!
//! Bounds: a body of at most [`MAX_BODY_BYTES`] (a guest's input limit and the envelope), read
//! only after the id and the secret were checked, and only until the call's deadline; one
//! nested call of a registered call at a time (the next one's body is read once the one
//! before has been run); at most [`MAX_WAITING`] calls registered at once (past it, code
//! runs without callbacks, as a non-reentrant executor); each nested call waits at most until the registered call's
//! deadline (504 after). An unknown id is 404, a wrong secret 401 (compared in constant time),
//! a call that already ended 410. The route takes no work slot: the request it serves already
//! holds one, and it does no work itself.
//!
//! The callback URL is `callback_url` when configured, else this process's orchestrator
//! listener as bound (`http://ADDR`, with loopback for an unspecified address), set by
//! `serve` ([`Callbacks::set_base_url`]); a process that serves no orchestrator API
//! registers nothing.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeval_evaluator::reentry::{
    CALLBACK_REMAINING_MS_HEADER, CALLBACK_TOKEN_HEADER, NestedCall, decode_request,
};
use zeval_zobject::Value;

/// The largest body of a nested call: a guest's input limit (8 MiB) and room for the
/// envelope.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024 + 64 * 1024;

/// Most calls registered for callbacks at once. Each is a request in progress (which the
/// work slots already bound), so this is never reached in practice; it bounds the table.
pub const MAX_WAITING: usize = 4096;

/// A body, or an answer (as [`zeval_zobject::json::estimated_bytes`] counts it), larger than
/// this is parsed or written on a blocking thread.
const OFF_THREAD_BYTES: usize = 64 * 1024;

/// Bytes of randomness in an id and in a secret.
const RANDOM_BYTES: usize = 16;

/// What the thread waiting for a remote evaluation receives.
pub(crate) enum Message {
    /// A nested call from the evaluator, and where its answer goes.
    Nested {
        call: NestedCall,
        reply: tokio::sync::oneshot::Sender<Result<Value, Value>>,
        /// When it must be answered by: the call's deadline, or the calling guest's when
        /// that comes first ([`CALLBACK_REMAINING_MS_HEADER`]).
        deadline: Instant,
        /// The call's one turn ([`callback`]), given back once this nested call has been
        /// run, not when its poster stops waiting: one that closed its connection after
        /// posting would otherwise leave its call queued and post the next.
        turn: OwnedSemaphorePermit,
    },
    /// The evaluator's answer (or why there is none): the end of the evaluation.
    Done(Result<Value, String>),
}

struct Waiting {
    secret: String,
    sender: Sender<Message>,
    deadline: Instant,
    /// One nested call of this call at a time ([`callback`]).
    turn: Arc<Semaphore>,
}

/// The calls waiting for callbacks, and where this orchestrator can be reached.
pub struct Callbacks {
    base_url: RwLock<Option<String>>,
    waiting: Mutex<HashMap<String, Waiting>>,
}

static CALLBACKS: LazyLock<Callbacks> = LazyLock::new(|| Callbacks {
    base_url: RwLock::new(None),
    waiting: Mutex::new(HashMap::new()),
});

/// This process's table: the orchestrator API of a process is served once, and the ids are
/// random, so one table serves every remote evaluator of the process.
pub fn callbacks() -> &'static Callbacks {
    &CALLBACKS
}

/// One registered call; unregistered when dropped.
pub(crate) struct Registration {
    id: String,
    /// The URL the evaluator posts nested calls to.
    pub(crate) url: String,
    /// The secret it must send with them.
    pub(crate) secret: String,
    /// Nested calls, then the end of the evaluation.
    pub(crate) receiver: Receiver<Message>,
    /// For the thread that waits for the evaluator's answer, to send [`Message::Done`].
    pub(crate) done: Sender<Message>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        callbacks().lock().remove(&self.id);
    }
}

impl Callbacks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where this process's orchestrator API listens (`http://ADDR`).
    pub fn set_base_url(&self, url: String) {
        *self.base_url.write().unwrap_or_else(|p| p.into_inner()) = Some(url);
    }

    fn base_url(&self) -> Option<String> {
        self.base_url
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Registers a call whose nested calls may arrive until `deadline`; `None` when this
    /// process has no orchestrator URL, the table is full, or there is no randomness.
    pub(crate) fn register(&self, deadline: Instant) -> Option<Registration> {
        self.register_under(&self.base_url()?, deadline)
    }

    /// [`Callbacks::register`] with the callback URL under `base`.
    fn register_under(&self, base: &str, deadline: Instant) -> Option<Registration> {
        let id = random_hex()?;
        let secret = random_hex()?;
        let (sender, receiver) = channel();
        {
            let mut waiting = self.lock();
            if waiting.len() >= MAX_WAITING {
                tracing::warn!("too many calls wait for callbacks; this one runs without");
                return None;
            }
            waiting.insert(
                id.clone(),
                Waiting {
                    secret: secret.clone(),
                    sender: sender.clone(),
                    deadline,
                    turn: Arc::new(Semaphore::new(1)),
                },
            );
        }
        Some(Registration {
            url: format!("{base}/v1/reentry/{id}"),
            id,
            secret,
            receiver,
            done: sender,
        })
    }
}

fn random_hex() -> Option<String> {
    let mut bytes = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The callback route, for any router state. Its answers are not counted among the unsent
/// responses of their connection (`unsent::NotCounted`): a remote evaluator reads
/// them at once, and a 503 would fail the nested call.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/v1/reentry/{id}", post(callback))
        .layer(axum::middleware::map_response(crate::unsent::not_counted))
}

async fn callback(Path(id): Path<String>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let given = headers
        .get(CALLBACK_TOKEN_HEADER)
        .map(|value| value.as_bytes().to_vec())
        .unwrap_or_default();
    let (sender, deadline, turn) = {
        let waiting = callbacks().lock();
        let Some(entry) = waiting.get(&id) else {
            return answer(StatusCode::NOT_FOUND, "no call waits under this id");
        };
        if !crate::serve::same_secret(&given, entry.secret.as_bytes()) {
            return answer(StatusCode::UNAUTHORIZED, "wrong callback secret");
        }
        (
            entry.sender.clone(),
            entry.deadline,
            Arc::clone(&entry.turn),
        )
    };
    // At work for a call in progress from here (its secret checked): the connection does
    // not give way at the connection cap, which would fail the guest's nested call.
    let Ok(_working) = crate::serve::ConnectionWork::start_for(&parts.extensions) else {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "the connection is closing");
    };
    // The calling guest's own deadline, when the evaluator says it comes first: the nested
    // call is of no use past it. (The evaluator holds the call's secret; it can only make the
    // nested call shorter.)
    let deadline = headers
        .get(CALLBACK_REMAINING_MS_HEADER)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)))
        .map_or(deadline, |guest| guest.min(deadline));
    // One nested call of a call at a time, its body read only once the one before has been
    // run: a guest's `W.Call` waits for its answer, so an evaluator never needs more.
    // Nothing else bounded how many an evaluator (or whoever read its secret on the way)
    // posted at once, each holding up to 8 MiB of body and some 40 MiB of parsed values
    // in the queue to the call's one thread, until the call's deadline.
    let Ok(Ok(turn)) = tokio::time::timeout_at(deadline.into(), turn.acquire_owned()).await else {
        return answer(StatusCode::GATEWAY_TIMEOUT, "the call's deadline passed");
    };
    // Read only now, for a registered call and its secret, and within its deadline: the
    // route takes no work slot and is open to anyone, and a body read without a time limit
    // let anyone hold connections (and up to 8 MiB each) for as long as they liked.
    let left = deadline.saturating_duration_since(Instant::now());
    let body = match crate::limits::read_body_within(&headers, body, MAX_BODY_BYTES, left).await {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    // Parsing up to 8 MiB written by guest code, and writing its answer, take tens of
    // milliseconds: not on the runtime's threads, which every connection shares. A small
    // one stays here: handing it over costs more than it does.
    let decoded = if body.len() > OFF_THREAD_BYTES {
        crate::blocking::run(move || decode_request(&body)).await
    } else {
        Ok(decode_request(&body))
    };
    let call = match decoded {
        Ok(Ok(call)) => call,
        Ok(Err(message)) => return answer(StatusCode::BAD_REQUEST, &message),
        Err(panic) => return answer(StatusCode::INTERNAL_SERVER_ERROR, &panic),
    };
    let (reply, replied) = tokio::sync::oneshot::channel();
    if sender
        .send(Message::Nested {
            call,
            reply,
            deadline,
            turn,
        })
        .is_err()
    {
        return answer(StatusCode::GONE, "the call has ended");
    }
    match tokio::time::timeout_at(deadline.into(), replied).await {
        Ok(Ok(outcome)) => {
            let large = match &outcome {
                Ok(value) | Err(value) => {
                    zeval_zobject::json::estimated_bytes_within(value, OFF_THREAD_BYTES).is_none()
                }
            };
            // Written only up to what the evaluator reads: a result past it was written whole
            // (up to the request's budget, 256 MiB), sent, and then refused there.
            let write = move || {
                let most = zeval_evaluator::reentry::MAX_CALLBACK_ANSWER_BYTES as usize;
                let body = match outcome {
                    Ok(result) => serde_json::json!({ "result": result }),
                    Err(error) => serde_json::json!({ "error": error }),
                };
                match zeval_zobject::json::to_vec_within(&body, most) {
                    Some(text) => String::from_utf8(text).unwrap_or_default(),
                    None => serde_json::json!({ "error": zeval_zobject::error::z5_str(
                        "Z507",
                        &[format!("W.Call: the answer is more than the {most} bytes a nested call may give").as_str()],
                    ) })
                    .to_string(),
                }
            };
            let written = if large {
                crate::blocking::run(write).await
            } else {
                Ok(write())
            };
            match written {
                Ok(body) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response(),
                Err(panic) => answer(StatusCode::INTERNAL_SERVER_ERROR, &panic),
            }
        }
        Ok(Err(_)) => answer(StatusCode::GONE, "the call has ended"),
        Err(_) => answer(StatusCode::GATEWAY_TIMEOUT, "the call's deadline passed"),
    }
}

fn answer(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    fn post(id: &str, secret: &str, body: &str) -> Request<Body> {
        Request::post(format!("/v1/reentry/{id}"))
            .header(CALLBACK_TOKEN_HEADER, secret)
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    /// A call registered for callbacks for `seconds`, its id and its secret.
    fn registered(seconds: u64) -> (Registration, String, String) {
        let registration = callbacks()
            .register_under(
                "http://127.0.0.1:1",
                Instant::now() + Duration::from_secs(seconds),
            )
            .unwrap();
        let id = registration.url.rsplit('/').next().unwrap().to_owned();
        let secret = registration.secret.clone();
        (registration, id, secret)
    }

    async fn status_and_text(router: Router, request: Request<Body>) -> (StatusCode, String) {
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Its answers are not counted among a connection's unsent responses.
    #[tokio::test]
    async fn answers_are_marked_not_counted() {
        let router: Router = routes();
        let response = router
            .oneshot(post("0123456789abcdef0123456789abcdef", "x", "{}"))
            .await
            .unwrap();
        assert!(
            response
                .extensions()
                .get::<crate::unsent::NotCounted>()
                .is_some()
        );
    }

    /// A nested call is answered by the calling guest's deadline when the evaluator says it
    /// comes first: it ran to the request's, long after a remote guest had been stopped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nested_call_ends_by_its_guests_deadline() {
        let call_deadline = Instant::now() + Duration::from_secs(10);
        let registration = callbacks()
            .register_under("http://127.0.0.1:1", call_deadline)
            .unwrap();
        let id = registration.url.rsplit('/').next().unwrap().to_owned();
        let secret = registration.secret.clone();
        let router: Router = routes();
        let call = r#"{"function": "Z10000", "arguments": {"Z10000K1": "abc"}}"#;
        let waiter = std::thread::spawn(move || {
            let mut deadlines = Vec::new();
            for _ in 0..3 {
                match registration.receiver.recv().unwrap() {
                    Message::Nested {
                        reply, deadline, ..
                    } => {
                        deadlines.push(deadline);
                        let _ = reply.send(Ok(serde_json::json!("ok")));
                    }
                    Message::Done(_) => panic!("not a nested call"),
                }
            }
            (registration, deadlines)
        });
        let with_remaining = |ms: &str| {
            let mut request = post(&id, &secret, call);
            request.headers_mut().insert(
                CALLBACK_REMAINING_MS_HEADER,
                axum::http::HeaderValue::from_str(ms).unwrap(),
            );
            request
        };
        let sent = Instant::now();
        for request in [
            with_remaining("100"),
            post(&id, &secret, call),
            with_remaining("60000"),
        ] {
            let (status, text) = status_and_text(router.clone(), request).await;
            assert_eq!(status, StatusCode::OK, "{text}");
        }
        let (registration, deadlines) = waiter.join().unwrap();
        assert!(
            deadlines[0] <= sent + Duration::from_millis(1_000),
            "the guest's 100 ms: {:?} after sending",
            deadlines[0] - sent
        );
        assert_eq!(deadlines[1], call_deadline, "no header: the call's own");
        assert_eq!(deadlines[2], call_deadline, "never later than the call's");
        drop(registration);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_registered_call_with_its_secret_is_answered() {
        let registration = callbacks()
            .register_under(
                "http://127.0.0.1:1",
                Instant::now() + Duration::from_secs(10),
            )
            .unwrap();
        assert!(
            registration
                .url
                .starts_with("http://127.0.0.1:1/v1/reentry/")
        );
        let id = registration.url.rsplit('/').next().unwrap().to_owned();
        assert_eq!(id.len(), 2 * RANDOM_BYTES);
        let router: Router = routes();
        let call = r#"{"function": "Z10000", "arguments": {"Z10000K1": "abc"}}"#;

        let (status, _) = status_and_text(router.clone(), post(&id, "wrong", call)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = status_and_text(router.clone(), post("f00", "x", call)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, text) =
            status_and_text(router.clone(), post(&id, &registration.secret, "[]")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");

        // The waiting thread answers the nested call it receives.
        let secret = registration.secret.clone();
        let waiter = std::thread::spawn(move || {
            match registration.receiver.recv().unwrap() {
                Message::Nested { call, reply, .. } => {
                    assert_eq!(call.function, "Z10000");
                    let _ = reply.send(Ok(serde_json::json!({"Z1K1": "Z6", "Z6K1": "ABC"})));
                }
                Message::Done(_) => panic!("not a nested call"),
            }
            registration
        });
        let (status, text) = status_and_text(router.clone(), post(&id, &secret, call)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(text, r#"{"result":{"Z1K1":"Z6","Z6K1":"ABC"}}"#);

        // Once the call has ended, its id is gone.
        drop(waiter.join().unwrap());
        let (status, _) = status_and_text(router, post(&id, &secret, call)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// A nested call of a quarter of a million values takes the host a while to parse, and its
    /// answer a while to write: the runtime's thread, which every connection shares, goes
    /// on meanwhile. Both ran on it, and a one-thread runtime stopped for the whole time.
    #[tokio::test(flavor = "current_thread")]
    async fn a_large_call_is_parsed_and_answered_off_the_runtimes_threads() {
        let (registration, id, secret) = registered(60);
        let items = vec!["\"abcdefgh\""; 250_000].join(",");
        let call = format!(
            r#"{{"function": "Z10000", "arguments": {{"Z10000K1": {{"Z1K1": "Z6", "K1": [{items}]}}}}}}"#
        );
        // The answer is as large: the list it was given.
        let waiter = std::thread::spawn(move || {
            match registration.receiver.recv().unwrap() {
                Message::Nested { call, reply, .. } => {
                    let _ = reply.send(Ok(call.arguments[0].1.clone()));
                }
                Message::Done(_) => panic!("not a nested call"),
            }
            registration
        });
        // A task that should run every millisecond: the longest it waited is how long the
        // runtime's thread was held.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut longest = Duration::ZERO;
                let mut last = Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    longest = longest.max(last.elapsed());
                    last = Instant::now();
                }
                longest
            }
        });
        tokio::task::yield_now().await;
        let started = Instant::now();
        let (status, text) = status_and_text(routes(), post(&id, &secret, &call)).await;
        let took = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let longest = ticker.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{}", &text[..text.len().min(200)]);
        assert!(text.len() > 2_000_000, "{} bytes", text.len());
        drop(waiter.join().unwrap());
        eprintln!("the call took {took:?}; the runtime's thread was held {longest:?} at most");
        assert!(
            longest * 3 < took,
            "the runtime's thread was held {longest:?} of the call's {took:?}"
        );
    }

    /// A call's nested calls are taken one at a time: the next one's body is read only once
    /// the one before has been answered. Every one posted at once was read and queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_calls_nested_calls_are_taken_one_at_a_time() {
        let (registration, id, secret) = registered(10);
        let router: Router = routes();
        let posts: Vec<_> = (0..4)
            .map(|n| {
                let call =
                    format!(r#"{{"function": "Z10000", "arguments": {{"Z10000K1": "{n}"}}}}"#);
                tokio::spawn(status_and_text(router.clone(), post(&id, &secret, &call)))
            })
            .collect();
        let received = tokio::task::spawn_blocking(move || {
            let mut received = Vec::new();
            let mut queue = std::collections::VecDeque::new();
            for _ in 0..4 {
                let message = match queue.pop_front() {
                    Some(message) => message,
                    None => registration.receiver.recv().unwrap(),
                };
                let Message::Nested { call, reply, .. } = message else {
                    panic!("not a nested call");
                };
                // Any other nested call posted meanwhile is still unread.
                std::thread::sleep(Duration::from_millis(100));
                queue.extend(registration.receiver.try_iter());
                received.push((call.arguments[0].1.clone(), queue.len()));
                let _ = reply.send(Ok(serde_json::json!("ok")));
            }
            received
        })
        .await
        .unwrap();
        for answered in posts {
            let (status, text) = answered.await.unwrap();
            assert_eq!(status, StatusCode::OK, "{text}");
        }
        assert!(
            received.iter().all(|(_, queued)| *queued == 0),
            "nested calls queued beside the one in progress: {received:?}"
        );
        let mut arguments: Vec<_> = received.into_iter().map(|(argument, _)| argument).collect();
        arguments.sort_by_key(ToString::to_string);
        assert_eq!(arguments, ["0", "1", "2", "3"]);
    }

    /// A poster that closes its connection once its nested call is queued does not give the
    /// turn back: the call still holds it until it has been run. Else an evaluator could
    /// post, close and post again, and queue without bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nested_call_keeps_the_turn_after_its_poster_left() {
        let (registration, id, secret) = registered(10);
        let router: Router = routes();
        let call = r#"{"function": "Z10000", "arguments": {"Z10000K1": "x"}}"#;
        let first = tokio::spawn(status_and_text(router.clone(), post(&id, &secret, call)));
        let (registration, queued) = tokio::task::spawn_blocking(move || {
            let message = registration.receiver.recv().unwrap();
            (registration, message)
        })
        .await
        .unwrap();
        // The poster leaves (its connection closed) with its call queued.
        first.abort();
        let _ = first.await;
        let second = tokio::spawn(status_and_text(router.clone(), post(&id, &secret, call)));
        let (registration, early) = tokio::task::spawn_blocking(move || {
            let early = registration
                .receiver
                .recv_timeout(Duration::from_millis(300));
            (registration, early)
        })
        .await
        .unwrap();
        assert!(
            early.is_err(),
            "the next call was read before the first was run"
        );
        // The first is run (its poster gone, it is dropped unanswered): the next one comes.
        drop(queued);
        let registration = tokio::task::spawn_blocking(move || {
            match registration.receiver.recv_timeout(Duration::from_secs(5)) {
                Ok(Message::Nested { reply, .. }) => {
                    let _ = reply.send(Ok(serde_json::json!("ok")));
                }
                _ => panic!("the next call did not come"),
            }
            registration
        })
        .await
        .unwrap();
        let (status, text) = second.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        drop(registration);
    }
}
