//! Several remote evaluators taking the same calls (an `[evaluators]` entry with `urls`, or
//! one `url`, which is a pool of one): which one runs each code run, their health, and
//! fail-over.
//!
//! - **Choice**: the healthy endpoint with the fewest runs outstanding from this process;
//!   ties go round-robin, so that sequential calls spread too ([`pick`]). An endpoint down
//!   or draining gets no runs while another one is healthy; when none is, those down are
//!   tried, then those draining (a mark may be stale, and a refusal costs little).
//! - **Health**: one thread per endpoint checks it (`GET` on its evaluate route,
//!   [`RemoteEvaluator::health`]) each `failover.health_interval_ms`, waiting at most
//!   `failover.health_timeout_ms`, and marks it healthy, down or draining. Each endpoint has
//!   its own thread so that one that hangs until the timeout delays no other's check (they
//!   were checked one after another on one thread until 2026-12-07); the threads are as many
//!   as the configuration's URLs. During calls, no response marks an endpoint down at once, a
//!   503 saying `draining` marks it draining, and a success brings a down one back. A thread
//!   ends once its endpoint is dropped (within one interval and one check).
//! - **Fail-over**: a run whose endpoint gave no response (refused, reset, closed before the
//!   status line) or refused it with 503 is sent again, with the time the call has left, at
//!   most `failover.max_attempts` times in all ([`Pool::run`]): to an endpoint not tried yet
//!   while there is one, else to one tried already (a Kubernetes Service URL is one
//!   endpoint, and a new connection to it may reach another pod). An answer is never run
//!   again, even one cut short or failing, and neither is a run whose time ran out.
//! - **Metrics** (label `endpoint`: a URL from the configuration, so the label set is
//!   bounded by it): `zeval_evaluator_outstanding`, `zeval_evaluator_healthy` (1 healthy, 0
//!   down or draining), `zeval_evaluator_draining`, and the counters
//!   `zeval_evaluator_requests_total`, `zeval_evaluator_failures_total` (runs it did not
//!   answer) and `zeval_evaluator_retries_total` (of those, runs sent on to another one).

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use zeval_evaluator::client::{FailureKind, Health, RemoteEvaluator, RemoteFailure};
use zeval_zobject::Value;

use crate::metrics::Metrics;

/// What the pool knows of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Takes calls.
    Healthy,
    /// Unreachable or failing its health check.
    Down,
    /// Shutting down: takes no new calls.
    Draining,
}

impl State {
    fn from_u8(value: u8) -> State {
        match value {
            0 => State::Healthy,
            1 => State::Down,
            _ => State::Draining,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            State::Healthy => 0,
            State::Down => 1,
            State::Draining => 2,
        }
    }
}

/// One remote evaluator.
pub struct Endpoint {
    client: RemoteEvaluator,
    state: AtomicU8,
    outstanding: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
}

impl Endpoint {
    /// An endpoint reached through `client`, taken as healthy until found otherwise.
    pub fn new(client: RemoteEvaluator) -> Endpoint {
        Endpoint {
            client,
            state: AtomicU8::new(State::Healthy.as_u8()),
            outstanding: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// Its evaluate route.
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// What the pool knows of it now.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::SeqCst))
    }

    fn set_state(&self, state: State) {
        let old = State::from_u8(self.state.swap(state.as_u8(), Ordering::SeqCst));
        if old != state {
            tracing::info!(endpoint = self.url(), from = ?old, to = ?state, "evaluator state");
        }
    }

    /// Runs sent to it and not answered yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    /// Runs sent to it.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Checks its health now and records what was found.
    pub fn check(&self, timeout: Duration) {
        self.set_state(match self.client.health(timeout) {
            Health::Healthy => State::Healthy,
            Health::Draining => State::Draining,
            Health::Down(why) => {
                tracing::debug!(endpoint = self.url(), %why, "evaluator down");
                State::Down
            }
        });
    }
}

/// Counts a run outstanding on an endpoint until dropped.
struct Outstanding<'a>(&'a Endpoint);

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The endpoint for the next attempt, given each endpoint's state and runs outstanding,
/// which were `tried` by this run already, and where the round-robin starts (`start`, any
/// number). Preferred in this order: untried before tried; then healthy, down, draining;
/// then the fewest outstanding; then the first at or after `start`. `None` only without
/// endpoints.
pub fn pick(endpoints: &[(State, usize)], tried: &[bool], start: usize) -> Option<usize> {
    let n = endpoints.len();
    (0..n).map(|k| (start + k) % n).min_by_key(|&i| {
        let (state, outstanding) = endpoints[i];
        let was_tried = tried.get(i).copied().unwrap_or(false);
        (was_tried, state.as_u8(), outstanding)
    })
}

/// Several endpoints taking the same calls.
pub struct Pool {
    endpoints: Vec<Arc<Endpoint>>,
    max_attempts: usize,
    next: AtomicUsize,
}

impl Pool {
    /// A pool over `endpoints` sending one run to at most `max_attempts` of them (1 to
    /// [`crate::config::MAX_ATTEMPTS`]).
    pub fn new(endpoints: Vec<Arc<Endpoint>>, max_attempts: usize) -> Pool {
        Pool {
            endpoints,
            max_attempts: max_attempts.clamp(1, crate::config::MAX_ATTEMPTS),
            next: AtomicUsize::new(0),
        }
    }

    /// Its endpoints.
    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    /// Sends one run through `send` (given the chosen endpoint's client and the time left)
    /// until an endpoint answers, fails in a way that may have run the call, or the bounds
    /// are reached: `max_attempts` endpoints, each tried once, while time is left before
    /// `deadline`. The error is the last failure's message.
    pub fn run(
        &self,
        deadline: Instant,
        mut send: impl FnMut(&RemoteEvaluator, Duration) -> Result<Value, RemoteFailure>,
    ) -> Result<Value, String> {
        let mut tried = vec![false; self.endpoints.len()];
        let mut last_failure: Option<String> = None;
        // The endpoint that left the run unrun, counted as a retry once the run is sent again.
        let mut previous: Option<&Arc<Endpoint>> = None;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for attempt in 0..self.max_attempts {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if attempt > 0 && remaining.is_zero() {
                break;
            }
            let seen: Vec<(State, usize)> = self
                .endpoints
                .iter()
                .map(|e| (e.state(), e.outstanding()))
                .collect();
            let Some(i) = pick(&seen, &tried, start) else {
                break;
            };
            tried[i] = true;
            let endpoint = &self.endpoints[i];
            if let Some(previous) = previous.take() {
                previous.retries.fetch_add(1, Ordering::SeqCst);
            }
            endpoint.outstanding.fetch_add(1, Ordering::SeqCst);
            endpoint.requests.fetch_add(1, Ordering::SeqCst);
            let outcome = {
                let _outstanding = Outstanding(endpoint);
                send(&endpoint.client, remaining)
            };
            let failure = match outcome {
                Ok(z22) => {
                    // A success brings back an endpoint marked down (not a draining one,
                    // which still finishes the runs it took).
                    let _ = endpoint.state.compare_exchange(
                        State::Down.as_u8(),
                        State::Healthy.as_u8(),
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    return Ok(z22);
                }
                Err(failure) => failure,
            };
            endpoint.failures.fetch_add(1, Ordering::SeqCst);
            match failure.kind {
                FailureKind::Failed => {
                    // The answer names no URL (the caller may be anyone); the log does.
                    tracing::warn!(
                        endpoint = endpoint.url(),
                        error = %failure.message,
                        "the evaluator's run failed"
                    );
                    return Err(failure.message);
                }
                FailureKind::NoResponse => endpoint.set_state(State::Down),
                FailureKind::Refused { draining: true } => endpoint.set_state(State::Draining),
                FailureKind::Refused { draining: false } => {}
            }
            tracing::warn!(
                endpoint = endpoint.url(),
                error = %failure.message,
                "the evaluator did not run the call"
            );
            last_failure = Some(failure.message);
            previous = Some(endpoint);
        }
        Err(last_failure
            .unwrap_or_else(|| "no evaluator URL is configured for this language".to_owned()))
    }
}

/// Checks the health of each of `endpoints` every `interval` (waiting at most `timeout`), on
/// a thread of its own that ends once that endpoint is no longer in use.
pub fn spawn_health_checks(endpoints: &[Arc<Endpoint>], interval: Duration, timeout: Duration) {
    // A zero interval would spin.
    let interval = interval.max(Duration::from_millis(10));
    for endpoint in endpoints {
        let weak: Weak<Endpoint> = Arc::downgrade(endpoint);
        let spawned = std::thread::Builder::new()
            .name("zeval-evaluator-health".into())
            .spawn(move || {
                while let Some(endpoint) = weak.upgrade() {
                    endpoint.check(timeout);
                    // Not held while sleeping: the thread must not keep its endpoint alive.
                    drop(endpoint);
                    std::thread::sleep(interval);
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, url = endpoint.url(), "cannot start an evaluator's health checks");
        }
    }
}

/// Writes the per-endpoint series of `endpoints` into `metrics` at every scrape.
pub fn add_metrics(metrics: &Metrics, endpoints: &[Arc<Endpoint>]) {
    if endpoints.is_empty() {
        return;
    }
    let weak: Vec<Weak<Endpoint>> = endpoints.iter().map(Arc::downgrade).collect();
    metrics.add_text_sampler(Box::new(move || {
        let endpoints: Vec<Arc<Endpoint>> = weak.iter().filter_map(Weak::upgrade).collect();
        render(&endpoints)
    }));
}

fn render(endpoints: &[Arc<Endpoint>]) -> String {
    use std::fmt::Write as _;
    type Read = fn(&Endpoint) -> u64;
    let series: [(&str, &str, &str, Read); 6] = [
        (
            "zeval_evaluator_outstanding",
            "gauge",
            "Code runs sent to a remote evaluator and not answered yet.",
            |e| e.outstanding() as u64,
        ),
        (
            "zeval_evaluator_healthy",
            "gauge",
            "1 when a remote evaluator takes calls, 0 when it is down or draining.",
            |e| u64::from(e.state() == State::Healthy),
        ),
        (
            "zeval_evaluator_draining",
            "gauge",
            "1 when a remote evaluator said it is draining.",
            |e| u64::from(e.state() == State::Draining),
        ),
        (
            "zeval_evaluator_requests_total",
            "counter",
            "Code runs sent to a remote evaluator.",
            |e| e.requests(),
        ),
        (
            "zeval_evaluator_failures_total",
            "counter",
            "Code runs a remote evaluator did not answer (no response, 503 or a failure).",
            |e| e.failures.load(Ordering::SeqCst),
        ),
        (
            "zeval_evaluator_retries_total",
            "counter",
            "Code runs a remote evaluator did not run that were sent on to another one.",
            |e| e.retries.load(Ordering::SeqCst),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, read) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for endpoint in endpoints {
            let _ = writeln!(
                out,
                "{name}{{endpoint=\"{}\"}} {}",
                escape(endpoint.url()),
                read(endpoint)
            );
        }
    }
    out
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;
    use zeval_evaluator::Encoding;

    use super::*;

    const H: State = State::Healthy;
    const D: State = State::Down;
    const R: State = State::Draining;

    #[test]
    fn the_fewest_outstanding_wins() {
        assert_eq!(pick(&[(H, 3), (H, 1), (H, 2)], &[false; 3], 0), Some(1));
        assert_eq!(
            pick(&[(H, 3), (H, 1), (H, 2)], &[false, true, false], 0),
            Some(2)
        );
        assert_eq!(pick(&[], &[], 0), None);
    }

    #[test]
    fn ties_go_round_robin() {
        let idle = [(H, 0), (H, 0), (H, 0)];
        let chosen: Vec<_> = (0..6)
            .map(|start| pick(&idle, &[false; 3], start).unwrap())
            .collect();
        assert_eq!(chosen, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn down_and_draining_ones_are_skipped_while_another_is_healthy() {
        assert_eq!(pick(&[(D, 0), (H, 5), (R, 0)], &[false; 3], 0), Some(1));
        // None healthy: a down one is tried anyway (its mark may be stale), then a draining
        // one.
        assert_eq!(pick(&[(D, 2), (R, 0), (D, 1)], &[false; 3], 0), Some(2));
        assert_eq!(pick(&[(R, 1), (R, 0)], &[false; 2], 0), Some(1));
    }

    #[test]
    fn untried_ones_come_first_then_tried_ones_again() {
        assert_eq!(pick(&[(H, 0), (D, 3)], &[true, false], 0), Some(1));
        // All tried (a single Service URL): the same one again.
        assert_eq!(pick(&[(D, 0)], &[true], 7), Some(0));
        assert_eq!(pick(&[(D, 0), (H, 0)], &[true, true], 0), Some(1));
    }

    /// A pool over `n` endpoints on URLs nothing listens on (the test's `send` answers).
    fn pool(n: usize, max_attempts: usize) -> Pool {
        let endpoints = (0..n)
            .map(|i| {
                Arc::new(Endpoint::new(RemoteEvaluator::new(
                    format!("http://e{i}/"),
                    Encoding::Json,
                    Duration::from_secs(1),
                )))
            })
            .collect();
        Pool::new(endpoints, max_attempts)
    }

    fn failure(kind: FailureKind) -> RemoteFailure {
        RemoteFailure {
            kind,
            message: format!("{kind:?}"),
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn a_run_without_response_goes_to_another_endpoint_and_marks_it_down() {
        let pool = pool(3, 3);
        let asked = RefCell::new(Vec::new());
        let answer = pool.run(soon(), |client, _| {
            asked.borrow_mut().push(client.url().to_owned());
            if client.url() == "http://e0/" {
                Err(failure(FailureKind::NoResponse))
            } else {
                Ok(json!({"Z1K1": "Z22"}))
            }
        });
        assert!(answer.is_ok());
        assert_eq!(asked.borrow().as_slice(), ["http://e0/", "http://e1/"]);
        assert_eq!(pool.endpoints()[0].state(), State::Down);
        assert_eq!(pool.endpoints()[0].retries.load(Ordering::SeqCst), 1);
        // The next runs avoid it while others are healthy.
        for _ in 0..4 {
            pool.run(soon(), |client, _| {
                assert_ne!(client.url(), "http://e0/");
                Ok(json!({}))
            })
            .unwrap();
        }
        assert!(pool.endpoints().iter().all(|e| e.outstanding() == 0));
    }

    #[test]
    fn an_answer_that_failed_is_not_run_again() {
        let pool = pool(3, 3);
        let mut sent = 0;
        let answer = pool.run(soon(), |_, _| {
            sent += 1;
            Err(failure(FailureKind::Failed))
        });
        assert_eq!(answer.unwrap_err(), "Failed");
        assert_eq!(sent, 1);
        assert_eq!(pool.endpoints()[0].state(), State::Healthy);
    }

    /// However many attempts a configuration asks for, one run is sent at most
    /// `MAX_ATTEMPTS` times: with one Service URL that kept refusing, a million were re-sent
    /// back to back until the call's deadline.
    #[test]
    fn attempts_never_exceed_the_cap() {
        let pool = pool(1, 1_000_000);
        let mut sent = 0;
        let answer = pool.run(soon(), |_, _| {
            sent += 1;
            Err(failure(FailureKind::NoResponse))
        });
        assert!(answer.is_err());
        assert_eq!(sent, crate::config::MAX_ATTEMPTS);
    }

    #[test]
    fn attempts_are_bounded() {
        let pool = pool(5, 2);
        let mut sent = 0;
        let answer = pool.run(soon(), |_, _| {
            sent += 1;
            Err(failure(FailureKind::NoResponse))
        });
        assert_eq!(answer.unwrap_err(), "NoResponse");
        assert_eq!(sent, 2, "max_attempts bounds the attempts");
        // One endpoint (a Service URL): tried again, up to max_attempts.
        let pool = self::pool(1, 3);
        let mut sent = 0;
        let answer = pool.run(soon(), |_, _| {
            sent += 1;
            if sent < 3 {
                Err(failure(FailureKind::Refused { draining: false }))
            } else {
                Ok(json!({}))
            }
        });
        assert!(answer.is_ok());
        assert_eq!(sent, 3);
        assert_eq!(pool.endpoints()[0].retries.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn no_retry_once_the_deadline_passed() {
        let pool = pool(3, 3);
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_millis(20);
        let answer = pool.run(deadline, |_, _| {
            sent += 1;
            std::thread::sleep(Duration::from_millis(30));
            Err(failure(FailureKind::NoResponse))
        });
        assert!(answer.is_err());
        assert_eq!(sent, 1);
    }

    #[test]
    fn a_draining_endpoint_gets_no_more_runs() {
        let pool = pool(2, 3);
        let asked = RefCell::new(Vec::new());
        let answer = pool.run(soon(), |client, _| {
            asked.borrow_mut().push(client.url().to_owned());
            if client.url() == "http://e0/" {
                Err(failure(FailureKind::Refused { draining: true }))
            } else {
                Ok(json!({}))
            }
        });
        assert!(answer.is_ok());
        assert_eq!(pool.endpoints()[0].state(), State::Draining);
        // A success elsewhere does not bring it back; only its health check can.
        for _ in 0..3 {
            pool.run(soon(), |client, _| {
                assert_eq!(client.url(), "http://e1/");
                Ok(json!({}))
            })
            .unwrap();
        }
        // With every endpoint draining, runs are still sent (a refusal costs little, and a
        // mark may be stale).
        pool.endpoints()[1].set_state(State::Draining);
        assert!(pool.run(soon(), |_, _| Ok(json!({}))).is_ok());
    }

    #[test]
    fn a_success_brings_a_down_endpoint_back() {
        let pool = pool(1, 3);
        pool.endpoints()[0].set_state(State::Down);
        pool.run(soon(), |_, _| Ok(json!({}))).unwrap();
        assert_eq!(pool.endpoints()[0].state(), State::Healthy);
    }

    #[test]
    fn metrics_name_each_endpoint() {
        let pool = pool(2, 3);
        pool.endpoints()[1].set_state(State::Down);
        let text = render(pool.endpoints());
        assert!(
            text.contains("zeval_evaluator_healthy{endpoint=\"http://e0/\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("zeval_evaluator_healthy{endpoint=\"http://e1/\"} 0"),
            "{text}"
        );
        assert!(text.contains("# TYPE zeval_evaluator_retries_total counter"));
    }

    #[test]
    fn health_checks_mark_an_unreachable_endpoint_down() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = Endpoint::new(RemoteEvaluator::new(
            format!("http://127.0.0.1:{port}/wikifunctions.org/v1/evaluate/"),
            Encoding::Json,
            Duration::from_secs(1),
        ));
        endpoint.check(Duration::from_millis(500));
        assert_eq!(endpoint.state(), State::Down);
    }

    /// An endpoint that hangs until the health timeout delays no other endpoint's check.
    #[test]
    fn a_hanging_endpoint_delays_no_other_health_check() {
        // Connections complete in the kernel's backlog and are never answered.
        let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let unreachable = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = |port: u16| {
            Arc::new(Endpoint::new(RemoteEvaluator::new(
                format!("http://127.0.0.1:{port}/wikifunctions.org/v1/evaluate/"),
                Encoding::Json,
                Duration::from_secs(1),
            )))
        };
        let endpoints = vec![
            endpoint(hanging.local_addr().unwrap().port()),
            endpoint(unreachable),
        ];
        let health_timeout = Duration::from_secs(3);
        spawn_health_checks(&endpoints, Duration::from_millis(20), health_timeout);
        let started = Instant::now();
        while endpoints[1].state() != State::Down && started.elapsed() < health_timeout {
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = started.elapsed();
        assert_eq!(endpoints[1].state(), State::Down);
        assert!(
            took < Duration::from_secs(1),
            "the unreachable endpoint was marked down after {took:?}, behind the hanging one's {health_timeout:?}"
        );
        // The hanging one is still being waited for.
        assert_eq!(endpoints[0].state(), State::Healthy);
    }
}
