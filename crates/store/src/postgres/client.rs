//! A PostgreSQL connection whose every wait ends by a time this side sets.
//!
//! PostgreSQL's own `statement_timeout` ends a statement the server runs, and a call's
//! statement is cancelled at its deadline (`cancel`); both need the server to act. A server
//! that does not (stopped, hung, swapping, a stalled disk under its WAL) left the statement
//! waiting for its answer for ever: TCP's probes do not help, since the server's kernel
//! answers them, and a unix socket has none. Each call's thread, its work slot and its
//! connection were held until the server came back, and every later call queued behind
//! them. So every statement here, and the opening of a connection, is bounded on the
//! client's side too ([`Client::set_call_deadline`], [`Bounds`]). A connection cut that way
//! may be in the middle of an answer: it is never used again ([`Client::is_cut`]).
//!
//! This wraps tokio-postgres, as the `postgres` crate does, on a runtime of its own per
//! connection; that crate has no way to bound a statement's wait.

use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, NoTls, Row};

/// How long past a call's deadline a statement may still wait for its answer. The
/// statement is cancelled at the deadline (`cancel`), and a server that works answers
/// that within milliseconds; one that does not is given up on this much later.
pub const CUT_AFTER_DEADLINE: Duration = Duration::from_millis(500);

/// How long past the statement timeout a statement with no call's deadline (a write, a
/// command's read) may still wait: the server's own timeout ends it before then when the
/// server works.
pub const CUT_AFTER_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The bounds every statement of a connection is given.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// PostgreSQL's `statement_timeout` on this connection.
    pub(super) statement_timeout: Duration,
    /// The longest opening a connection may take, its startup and authentication included
    /// (tokio-postgres's `connect_timeout` bounds only the socket's connection).
    pub(super) connect_timeout: Duration,
}

/// Why a statement failed.
#[derive(Debug)]
pub(crate) enum Error {
    /// What the server or the connection said.
    Postgres(tokio_postgres::Error),
    /// No runtime could be made to drive the connection.
    Runtime(std::io::Error),
    /// The server did not answer a commit in time; the connection is cut, and whether the
    /// transaction was committed is unknown (the server may have it and go on).
    CommitUnanswered {
        /// How long the commit waited.
        waited: Duration,
    },
    /// The server did not answer in time; the connection is cut.
    NoAnswer {
        /// How long the statement waited.
        waited: Duration,
        /// Whether the time was a call's deadline ([`CUT_AFTER_DEADLINE`] past it).
        call_deadline: bool,
    },
}

impl Error {
    /// The SQL state the server gave, if it answered with one.
    pub(crate) fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            Error::Postgres(e) => e.code(),
            Error::Runtime(_) | Error::CommitUnanswered { .. } | Error::NoAnswer { .. } => None,
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Postgres(e)
    }
}

/// A current-thread runtime that is shut down without waiting for its blocking work when
/// dropped: a name lookup that hangs (tokio-postgres resolves host names on the runtime's
/// blocking pool) would otherwise hold the drop for as long as the resolver takes.
pub(super) struct Driver(Option<tokio::runtime::Runtime>);

impl Driver {
    pub(super) fn new() -> std::io::Result<Driver> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Driver(Some(runtime)))
    }

    pub(super) fn runtime(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("present until drop")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A connection, with the runtime that drives it.
pub(crate) struct Client {
    inner: tokio_postgres::Client,
    /// Drives `inner` and its connection's task (spawned on it), during each statement.
    /// Declared after `inner`, so dropped after it: the task it runs then ends with it.
    runtime: Driver,
    bounds: Bounds,
    /// The deadline of the call the connection is lent to, if any.
    call_deadline: Option<Instant>,
    /// Set when a statement was given up on.
    cut: bool,
}

impl Client {
    /// Opens a connection with `config`, within [`Bounds::connect_timeout`] and no later
    /// than [`CUT_AFTER_DEADLINE`] past `call_deadline`.
    pub(super) fn connect(
        config: &tokio_postgres::Config,
        bounds: Bounds,
        call_deadline: Option<Instant>,
    ) -> Result<Client, Error> {
        let driver = Driver::new().map_err(Error::Runtime)?;
        let runtime = driver.runtime();
        let started = Instant::now();
        let own = later(started, bounds.connect_timeout);
        let (until, is_call) = match call_deadline {
            Some(call) if later(call, CUT_AFTER_DEADLINE) < own => {
                (later(call, CUT_AFTER_DEADLINE), true)
            }
            _ => (own, false),
        };
        let connected = runtime
            .block_on(async { tokio::time::timeout_at(until.into(), config.connect(NoTls)).await });
        let (inner, connection) = match connected {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(Error::NoAnswer {
                    waited: started.elapsed(),
                    call_deadline: is_call,
                });
            }
        };
        // Polled whenever a statement is, on this runtime's one thread: it reads the
        // server's answers. It ends when `inner` is dropped or the server closes.
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                // What the server said (an administrator's shutdown, a fatal error) or the
                // socket's error: the statement that was waiting sees only a closed
                // connection.
                tracing::warn!(%error, "a PostgreSQL connection ended");
            }
        });
        Ok(Client {
            inner,
            runtime: driver,
            bounds,
            call_deadline,
            cut: false,
        })
    }

    /// Bounds the statements from now on by `deadline` too (`None`: by the statement
    /// timeout only).
    pub(super) fn set_call_deadline(&mut self, deadline: Option<Instant>) {
        self.call_deadline = deadline;
    }

    /// Whether a statement was given up on, or the connection has ended: it is not reused.
    pub(super) fn is_cut(&self) -> bool {
        self.cut || self.inner.is_closed()
    }

    /// What cancels this connection's statement.
    pub(super) fn cancel_token(&self) -> tokio_postgres::CancelToken {
        self.inner.cancel_token()
    }

    /// Starts a transaction; rolled back when dropped uncommitted.
    pub(crate) fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        self.transaction_within(self.bounds.statement_timeout)
    }

    /// [`Self::transaction`] whose statements the server stops after `statement_timeout`
    /// (a `SET LOCAL` of the caller's), and the client gives up on after that and
    /// [`CUT_AFTER_STATEMENT_TIMEOUT`], or the call's deadline.
    pub(crate) fn transaction_within(
        &mut self,
        statement_timeout: Duration,
    ) -> Result<Transaction<'_>, Error> {
        let mut waiter = Waiter {
            runtime: self.runtime.runtime(),
            bounds: Bounds {
                statement_timeout,
                ..self.bounds
            },
            call_deadline: self.call_deadline,
            cut: &mut self.cut,
        };
        let inner = waiter.wait(self.inner.transaction())?;
        Ok(Transaction {
            waiter,
            inner: Some(inner),
        })
    }
}

/// A transaction on a [`Client`].
pub(crate) struct Transaction<'a> {
    waiter: Waiter<'a>,
    /// `None` once committed.
    inner: Option<tokio_postgres::Transaction<'a>>,
}

impl Transaction<'_> {
    /// Commits what the transaction wrote. A commit the server does not answer in time is
    /// [`Error::CommitUnanswered`]: it may have been made.
    pub(crate) fn commit(mut self) -> Result<(), Error> {
        let inner = self.inner.take().expect("present until committed");
        match self.waiter.wait(inner.commit()) {
            Err(Error::NoAnswer { waited, .. }) => Err(Error::CommitUnanswered { waited }),
            outcome => outcome,
        }
    }
}

impl Drop for Transaction<'_> {
    /// Rolls back at once, within the statements' bounds. tokio-postgres only queues the
    /// rollback when its transaction is dropped, and the connection's task sends it with the
    /// next statement, whenever the pool lends the connection again: until then the server
    /// kept the transaction open, its locks with it (the write lock every writer waits for).
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let _ = self.waiter.wait(inner.rollback());
        }
    }
}

/// `start` plus `wait`, or a year after `start` where that would overflow (a limit an
/// operator set near `u64::MAX` milliseconds): adding past the clock's range panics.
fn later(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .or_else(|| start.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(start)
}

/// Runs statements on a connection's runtime, each within its bound.
struct Waiter<'a> {
    runtime: &'a tokio::runtime::Runtime,
    bounds: Bounds,
    call_deadline: Option<Instant>,
    cut: &'a mut bool,
}

impl Waiter<'_> {
    /// The outcome of `statement`, unless the time runs out first: then the connection is
    /// cut.
    fn wait<T>(
        &mut self,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Error> {
        if *self.cut {
            // The protocol may be in the middle of an earlier answer.
            return Err(Error::NoAnswer {
                waited: Duration::ZERO,
                call_deadline: self.call_deadline.is_some(),
            });
        }
        let started = Instant::now();
        let own = later(
            started,
            self.bounds
                .statement_timeout
                .saturating_add(CUT_AFTER_STATEMENT_TIMEOUT),
        );
        let (until, is_call) = match self.call_deadline {
            Some(call) if later(call, CUT_AFTER_DEADLINE) < own => {
                (later(call, CUT_AFTER_DEADLINE), true)
            }
            _ => (own, false),
        };
        let outcome = self
            .runtime
            .block_on(async { tokio::time::timeout_at(until.into(), statement).await });
        match outcome {
            Ok(answer) => answer.map_err(Error::Postgres),
            Err(_) => {
                *self.cut = true;
                Err(Error::NoAnswer {
                    waited: started.elapsed(),
                    call_deadline: is_call,
                })
            }
        }
    }
}

/// The statements a [`Client`] and a [`Transaction`] both run.
pub(crate) trait Statements {
    /// Runs `query`; how many rows it changed.
    fn execute(&mut self, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error>;
    /// Runs `query`; its rows.
    fn query(&mut self, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error>;
    /// Runs `query`, which returns exactly one row.
    fn query_one(&mut self, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error>;
    /// Runs `query`, which returns at most one row.
    fn query_opt(
        &mut self,
        query: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>;
    /// Runs statements separated by semicolons, without parameters.
    fn batch_execute(&mut self, query: &str) -> Result<(), Error>;
}

/// What runs a [`Statements`]' statement: a [`Waiter`], and tokio-postgres's client or
/// transaction.
trait Parts {
    type Inner: GenericClient;
    fn parts(&mut self) -> (Waiter<'_>, &Self::Inner);
}

impl Parts for Client {
    type Inner = tokio_postgres::Client;
    fn parts(&mut self) -> (Waiter<'_>, &Self::Inner) {
        let waiter = Waiter {
            runtime: self.runtime.runtime(),
            bounds: self.bounds,
            call_deadline: self.call_deadline,
            cut: &mut self.cut,
        };
        (waiter, &self.inner)
    }
}

impl<'t> Parts for Transaction<'t> {
    type Inner = tokio_postgres::Transaction<'t>;
    fn parts(&mut self) -> (Waiter<'_>, &Self::Inner) {
        let waiter = Waiter {
            runtime: self.waiter.runtime,
            bounds: self.waiter.bounds,
            call_deadline: self.waiter.call_deadline,
            cut: &mut *self.waiter.cut,
        };
        (
            waiter,
            self.inner.as_ref().expect("present until committed"),
        )
    }
}

impl<P: Parts> Statements for P {
    fn execute(&mut self, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        let (mut waiter, inner) = self.parts();
        waiter.wait(inner.execute(query, params))
    }

    fn query(&mut self, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        let (mut waiter, inner) = self.parts();
        waiter.wait(inner.query(query, params))
    }

    fn query_one(&mut self, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        let (mut waiter, inner) = self.parts();
        waiter.wait(inner.query_one(query, params))
    }

    fn query_opt(
        &mut self,
        query: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        let (mut waiter, inner) = self.parts();
        waiter.wait(inner.query_opt(query, params))
    }

    fn batch_execute(&mut self, query: &str) -> Result<(), Error> {
        let (mut waiter, inner) = self.parts();
        waiter.wait(inner.batch_execute(query))
    }
}
