//! Statements cancelled at the deadline of the call they run for.
//!
//! A connection's wait ends by the call's deadline ([`crate::call_deadline`]), but a
//! statement, once sent, runs until PostgreSQL's `statement_timeout` (30 s): a lock held
//! elsewhere (an administrator's `LOCK TABLE`, a long migration) held every call that read
//! that table for 30 s past its deadline, with its work slot. So a connection handed out
//! under a call's deadline is watched: when the deadline passes while it is still out, a
//! thread of the pool sends PostgreSQL a cancel request for it (`CancelToken`), and the
//! connection is closed when it comes back rather than reused (the cancel request travels
//! on a connection of its own, and might otherwise reach the next statement run on it).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_postgres::{CancelToken, NoTls};

/// The connections out under a deadline, and the thread that cancels them.
pub(super) struct Watches {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    next: u64,
    out: BTreeMap<u64, Watch>,
    /// Whether the thread has been started (it starts with the first watch).
    started: bool,
    /// Set when the pool is dropped: the thread ends.
    closed: bool,
    /// When the thread will look next (`None`: when told). A watch due earlier wakes it; any
    /// other does not, so that a read costs no switch to that thread.
    wakes_at: Option<Instant>,
}

/// The longest one cancel request may take: a server that does not answer takes the
/// request into its socket's queue, and the statement is then given up on by its connection
/// ([`super::client::CUT_AFTER_DEADLINE`]).
const CANCEL_WAIT: Duration = Duration::from_secs(1);

struct Watch {
    deadline: Instant,
    token: CancelToken,
    cancelled: bool,
}

impl Watches {
    pub(super) fn new() -> Arc<Watches> {
        Arc::new(Watches {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain fields updated together under the lock: consistent after a panic too.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches a connection (`token` cancels its statements) until [`Self::end`] with the
    /// number returned.
    pub(super) fn watch(self: &Arc<Self>, deadline: Instant, token: CancelToken) -> u64 {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.out.insert(
            id,
            Watch {
                deadline,
                token,
                cancelled: false,
            },
        );
        if !state.started {
            state.started = true;
            let watches = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("zeval-pg-cancel".into())
                .spawn(move || watches.cancel_when_due());
            if let Err(error) = spawned {
                // No canceller: statements run to PostgreSQL's own statement_timeout.
                tracing::warn!(%error, "no thread to cancel statements past their deadline");
            }
        }
        let sooner = state.wakes_at.is_none_or(|wakes_at| deadline < wakes_at);
        drop(state);
        if sooner {
            self.changed.notify_one();
        }
        id
    }

    /// Ends the watch `id`; whether its statement was cancelled (then the connection must
    /// not be reused).
    pub(super) fn end(&self, id: u64) -> bool {
        self.lock()
            .out
            .remove(&id)
            .is_some_and(|watch| watch.cancelled)
    }

    /// Ends the thread.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_one();
    }

    fn cancel_when_due(&self) {
        let driver = match super::client::Driver::new() {
            Ok(driver) => driver,
            Err(error) => {
                // Statements then end at their connection's own bounds (`client`).
                tracing::warn!(%error, "no runtime to cancel statements past their deadline");
                return;
            }
        };
        let runtime = driver.runtime();
        let mut state = self.lock();
        loop {
            if state.closed {
                return;
            }
            let now = Instant::now();
            let due: Vec<CancelToken> = state
                .out
                .values_mut()
                .filter(|watch| !watch.cancelled && watch.deadline <= now)
                .map(|watch| {
                    watch.cancelled = true;
                    watch.token.clone()
                })
                .collect();
            if !due.is_empty() {
                state.wakes_at = Some(now);
                drop(state);
                for token in due {
                    // Its own connection to the server.
                    let cancelled = runtime.block_on(async {
                        tokio::time::timeout(CANCEL_WAIT, token.cancel_query(NoTls)).await
                    });
                    match cancelled {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => tracing::warn!(
                            %error,
                            "cancelling a statement past its call's deadline failed"
                        ),
                        Err(_) => tracing::warn!(
                            "cancelling a statement past its call's deadline took over {CANCEL_WAIT:?}"
                        ),
                    }
                }
                state = self.lock();
                continue;
            }
            let next = state
                .out
                .values()
                .filter(|watch| !watch.cancelled)
                .map(|watch| watch.deadline)
                .min();
            state.wakes_at = next;
            state = match next {
                Some(next) => {
                    self.changed
                        .wait_timeout(state, next.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}
