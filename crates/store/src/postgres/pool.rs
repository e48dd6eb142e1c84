//! A small, bounded pool of PostgreSQL connections.
//!
//! At most [`POOL_SIZE`] connections are open at once; a caller that finds them all busy
//! waits up to [`POOL_WAIT`] for one and then fails as busy (no queue grows
//! without bound: waiters are the server's blocking threads, themselves bounded). A
//! connection that broke (server restart, network) is dropped when it is handed back, and a
//! new one is opened on demand.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_postgres::Config;

use super::cancel::Watches;
use super::client::{Bounds, Client};
use super::pg_error;
use crate::StoreError;

/// The most connections one process keeps open to PostgreSQL. Two nodes use twice that:
/// PostgreSQL's default `max_connections` (100) leaves room for a dozen nodes.
pub const POOL_SIZE: usize = 8;

/// How long a caller waits for a free connection before failing.
pub const POOL_WAIT: Duration = Duration::from_secs(10);

/// How long opening a connection may take (unless the URL sets `connect_timeout`), its
/// startup and authentication included.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one statement may run (PostgreSQL's `statement_timeout`, set on every
/// connection): a write waiting for the write lock counts, so a stuck writer elsewhere makes
/// writes fail after this instead of piling up.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection may stay quiet before TCP probes whether the server is still
/// reachable, then between probes, and how many go unanswered before it is closed (Linux
/// lets [`TCP_USER_TIMEOUT`] decide instead when it is set, as here: the link is closed once
/// nothing has come back for that long). A network partition then ends a statement's wait
/// for its answer some 30 s after the link went quiet (tokio-postgres's default idle time is
/// 2 hours). A server that is reachable but does not answer (stopped, hung) is not found out
/// by the probes, which its kernel answers: the client gives up on its statements instead
/// (`client`). Unless the URL sets other values than tokio-postgres's defaults.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// See [`KEEPALIVE_IDLE`].
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// See [`KEEPALIVE_IDLE`].
pub const KEEPALIVE_RETRIES: u32 = 3;

/// How long data sent to the server may go unacknowledged before the connection is closed
/// (`TCP_USER_TIMEOUT`, unless the URL sets `tcp_user_timeout`): a statement sent into a
/// partition fails then, rather than after the kernel's retransmissions (some 15 minutes).
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds of a pool; [`Default`] gives the constants above, which the server uses.
/// (Tests shrink them to reach each bound quickly.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresLimits {
    /// The most connections open at once ([`POOL_SIZE`]).
    pub pool_size: usize,
    /// How long to wait for a free connection ([`POOL_WAIT`]).
    pub pool_wait: Duration,
    /// How long opening a connection may take, unless the URL says ([`CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// The longest one statement may run ([`STATEMENT_TIMEOUT`]).
    pub statement_timeout: Duration,
}

impl Default for PostgresLimits {
    fn default() -> Self {
        PostgresLimits {
            pool_size: POOL_SIZE,
            pool_wait: POOL_WAIT,
            connect_timeout: CONNECT_TIMEOUT,
            statement_timeout: STATEMENT_TIMEOUT,
        }
    }
}

/// Runs `f`, which blocks on the PostgreSQL client's own runtime, where that is allowed.
///
/// The synchronous client drives each call (and its `Drop`) with a private tokio runtime,
/// which panics when the calling thread is already running one: the server's async threads
/// (startup, metrics samplers, shutdown). On such a thread `f` runs in `block_in_place`, which
/// hands the thread's other tasks to another worker first; on any other thread (the blocking
/// pool's, a command's) it simply runs. A current-thread runtime cannot give its thread away:
/// the server runs a multi-thread one.
pub(crate) fn outside_runtime<T>(f: impl FnOnce() -> T) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Idle or busy connections, and how many exist.
struct State {
    idle: Vec<Client>,
    open: usize,
    /// Connections out for a scan ([`Pool::get_scan`]).
    scans: usize,
}

pub(super) struct Pool {
    config: Config,
    limits: PostgresLimits,
    state: Mutex<State>,
    freed: Condvar,
    /// Connections out for a call with a deadline ([`super::cancel`]).
    watches: Arc<Watches>,
}

/// A connection borrowed from the pool; handed back when dropped.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Client>,
    /// Its watch, when it is out for a call with a deadline.
    watch: Option<u64>,
    /// Whether it is out for a scan.
    scan: bool,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let client = self.client.take().expect("present until drop");
        // A connection whose statement was cancelled is not reused: the cancel request
        // might still reach it.
        let cancelled = self.watch.is_some_and(|id| self.pool.watches.end(id));
        let mut state = self.pool.lock();
        if self.scan {
            state.scans -= 1;
        }
        if client.is_cut() || cancelled {
            state.open -= 1;
            drop(state);
            outside_runtime(|| drop(client));
        } else {
            state.idle.push(client);
            drop(state);
        }
        // Every waiter looks: a scan woken for a connection it may not take would leave a
        // lookup waiting beside a free one.
        self.pool.freed.notify_all();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.watches.close();
        let idle = std::mem::take(&mut self.lock().idle);
        outside_runtime(|| drop(idle));
    }
}

/// The settings every connection of a pool for `url` opens with: the URL's, and the bounds
/// above where it sets none.
fn connection_config(url: &str, limits: PostgresLimits) -> Result<Config, StoreError> {
    let mut config: Config = url
        .parse()
        .map_err(|e| StoreError::Database(format!("invalid database URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(limits.connect_timeout);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if config.get_keepalives() {
        if config.get_keepalives_idle() == Config::new().get_keepalives_idle() {
            config.keepalives_idle(KEEPALIVE_IDLE);
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(KEEPALIVE_RETRIES);
        }
    }
    let timeout = format!(
        "-c statement_timeout={}",
        limits.statement_timeout.as_millis()
    );
    let options = match config.get_options() {
        Some(given) => format!("{given} {timeout}"),
        None => timeout,
    };
    config.options(&options);
    config.application_name("zeval");
    Ok(config)
}

impl Pool {
    /// A pool for `url` (a `postgres://` URL or a libpq key=value string). Opens one
    /// connection at once, so a wrong URL or an unreachable server fails here.
    pub(super) fn new(url: &str, limits: PostgresLimits) -> Result<Self, StoreError> {
        let config = connection_config(url, limits)?;
        let pool = Pool {
            config,
            limits,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                scans: 0,
            }),
            freed: Condvar::new(),
            watches: Watches::new(),
        };
        drop(pool.get()?);
        Ok(pool)
    }

    /// `client`, lent out; watched until it comes back when a call's deadline is in force.
    fn lend(&self, mut client: Client, call_deadline: Option<Instant>, scan: bool) -> Pooled<'_> {
        client.set_call_deadline(call_deadline);
        let watch =
            call_deadline.map(|deadline| self.watches.watch(deadline, client.cancel_token()));
        Pooled {
            pool: self,
            client: Some(client),
            watch,
            scan,
        }
    }

    /// The bounds each connection's statements are given.
    fn bounds(&self) -> Bounds {
        Bounds {
            statement_timeout: self.limits.statement_timeout,
            connect_timeout: self
                .config
                .get_connect_timeout()
                .copied()
                .unwrap_or(self.limits.connect_timeout),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two plain fields updated together; a panic elsewhere cannot leave
        // them half-written, so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection: an idle one, a new one while fewer than [`POOL_SIZE`] are open, or the
    /// first one freed within [`POOL_WAIT`] and no later than the deadline of the call this
    /// thread works for ([`crate::call_deadline`]).
    pub(super) fn get(&self) -> Result<Pooled<'_>, StoreError> {
        self.get_until(None)
    }

    /// [`Self::get`] for a scan (a search, a history page, a count): at most all but one of
    /// the pool's connections are out for scans at once, so that lookups (objects, token
    /// checks) always find one. The routes that scan are open to anyone, and one client may
    /// send eight such reads at once.
    pub(super) fn get_scan(&self) -> Result<Pooled<'_>, StoreError> {
        self.get_as(true, None)
    }

    /// [`Self::get`], waiting no later than `call_deadline` either (a call's fetch):
    /// [`StoreError::DeadlineExceeded`] (with no ZIDs named) when that comes first.
    pub(super) fn get_until(
        &self,
        call_deadline: Option<Instant>,
    ) -> Result<Pooled<'_>, StoreError> {
        self.get_as(false, call_deadline)
    }

    fn get_as(&self, scan: bool, call_deadline: Option<Instant>) -> Result<Pooled<'_>, StoreError> {
        let PostgresLimits {
            pool_size,
            pool_wait,
            ..
        } = self.limits;
        let call_deadline = crate::call_deadline::earliest(call_deadline);
        // Past the deadline a connection would only be lent to be cancelled and closed at
        // once: a reconnection for every read of a call out of time.
        if call_deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(StoreError::DeadlineExceeded {
                zids: String::new(),
            });
        }
        let own = Instant::now() + pool_wait;
        let deadline = call_deadline.map_or(own, |call| call.min(own));
        let max_scans = pool_size.saturating_sub(1).max(1);
        let mut state = self.lock();
        loop {
            let may_take = !scan || state.scans < max_scans;
            if may_take && let Some(client) = state.idle.pop() {
                if client.is_cut() {
                    state.open -= 1;
                    drop(state);
                    outside_runtime(|| drop(client));
                    state = self.lock();
                    continue;
                }
                state.scans += usize::from(scan);
                drop(state);
                return Ok(self.lend(client, call_deadline, scan));
            }
            if may_take && state.open < pool_size {
                state.open += 1;
                state.scans += usize::from(scan);
                drop(state);
                return match Client::connect(&self.config, self.bounds(), call_deadline) {
                    Ok(client) => Ok(self.lend(client, call_deadline, scan)),
                    Err(e) => {
                        let mut state = self.lock();
                        state.open -= 1;
                        state.scans -= usize::from(scan);
                        drop(state);
                        self.freed.notify_all();
                        Err(pg_error(e))
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() && call_deadline.is_some_and(|call| call <= own) {
                return Err(StoreError::DeadlineExceeded {
                    zids: String::new(),
                });
            }
            if left.is_zero() {
                return Err(StoreError::Busy(format!(
                    "all {pool_size} database connections stayed busy for {pool_wait:?}"
                )));
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition ends a connection's waits: probes after 10 s of quiet, and unacknowledged
    /// data after 30 s, unless the URL says otherwise.
    #[test]
    fn connections_probe_a_quiet_link_unless_the_url_says_otherwise() {
        let limits = PostgresLimits::default();
        let config = connection_config("postgres://zeval@localhost/zeval", limits).unwrap();
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(config.get_keepalives_interval(), Some(KEEPALIVE_INTERVAL));
        assert_eq!(config.get_keepalives_retries(), Some(KEEPALIVE_RETRIES));
        assert_eq!(config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        assert_eq!(config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        let given = connection_config(
            "host=localhost user=zeval keepalives_idle=60 tcp_user_timeout=5 keepalives=0",
            limits,
        )
        .unwrap();
        assert!(!given.get_keepalives());
        assert_eq!(given.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(given.get_tcp_user_timeout(), Some(&Duration::from_secs(5)));
    }
}
