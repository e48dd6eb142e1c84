//! Blocking connections to one Redis, shared by the parts of a node that keep state there
//! (the per-client limits, the live ranking figures), with the same failure rule for all.
//!
//! Bounds: each connect, read and write waits at most the configured timeout; after a
//! failure Redis is skipped for [`RETRY_AFTER`] (so a Redis that is down costs one timeout a
//! second, not one per request); at most [`MAX_IDLE_CONNECTIONS`] connections are kept.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Connection;

/// How long Redis is skipped after it failed.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Connections kept open for reuse.
pub const MAX_IDLE_CONNECTIONS: usize = 16;

/// Why Redis could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisPoolError {
    /// The URL is not a Redis URL.
    #[error("{setting}: {message}")]
    Config {
        /// The setting that named it.
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Redis failed or is being skipped after a failure.
    #[error("{what}: {message}")]
    Unavailable {
        /// What this node keeps in that Redis.
        what: &'static str,
        /// Redis's error.
        message: String,
    },
}

/// Connections to one Redis; see the module documentation.
pub struct RedisPool {
    client: redis::Client,
    timeout: Duration,
    what: &'static str,
    idle: Mutex<Vec<Connection>>,
    down_until: Mutex<Option<Instant>>,
    errors: AtomicU64,
}

impl RedisPool {
    /// A pool for the Redis at `url` (named by `setting` in errors), keeping `what` (named in
    /// logs); every command waits at most `timeout`.
    pub fn new(
        url: &str,
        timeout: Duration,
        setting: &'static str,
        what: &'static str,
    ) -> Result<Self, RedisPoolError> {
        let client = redis::Client::open(url).map_err(|e| RedisPoolError::Config {
            setting,
            message: e.to_string(),
        })?;
        Ok(RedisPool {
            client,
            timeout: timeout.max(Duration::from_millis(1)),
            what,
            idle: Mutex::new(Vec::new()),
            down_until: Mutex::new(None),
            errors: AtomicU64::new(0),
        })
    }

    /// Failures so far (for `/metrics`).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Runs `command` on a connection; a failure marks Redis down for [`RETRY_AFTER`].
    pub fn run<T>(
        &self,
        command: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, RedisPoolError> {
        let mut conn = self.connection()?;
        match command(&mut conn) {
            Ok(answer) => {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < MAX_IDLE_CONNECTIONS {
                    idle.push(conn);
                }
                Ok(answer)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn connection(&self) -> Result<Connection, RedisPoolError> {
        if let Some(until) = *self.down_until.lock().unwrap_or_else(|e| e.into_inner())
            && Instant::now() < until
        {
            return Err(RedisPoolError::Unavailable {
                what: self.what,
                message: "Redis failed a moment ago".into(),
            });
        }
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| self.failed(e))?;
        conn.set_read_timeout(Some(self.timeout))
            .and_then(|()| conn.set_write_timeout(Some(self.timeout)))
            .map_err(|e| self.failed(e))?;
        Ok(conn)
    }

    fn failed(&self, e: redis::RedisError) -> RedisPoolError {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if down.is_none_or(|until| Instant::now() >= until) {
            tracing::warn!(error = %e, what = self.what, "Redis failed; this node keeps its own figures for a moment");
        }
        *down = Some(Instant::now() + RETRY_AFTER);
        RedisPoolError::Unavailable {
            what: self.what,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_a_configuration_error_naming_the_setting() {
        let error = RedisPool::new(
            "http://not-redis",
            Duration::from_millis(50),
            "ranking.redis_url",
            "ranking",
        )
        .err()
        .unwrap();
        assert!(
            error.to_string().starts_with("ranking.redis_url: "),
            "{error}"
        );
    }

    #[test]
    fn a_redis_that_is_down_is_reported_quickly_and_then_skipped() {
        // A port nothing listens on: connection refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pool = RedisPool::new(
            &format!("redis://127.0.0.1:{port}"),
            Duration::from_millis(50),
            "test.redis_url",
            "test",
        )
        .unwrap();
        let started = Instant::now();
        let ping = |c: &mut Connection| redis::cmd("PING").query::<String>(c);
        assert!(pool.run(ping).is_err());
        assert!(pool.run(ping).is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(pool.errors(), 1, "the second attempt skipped Redis");
    }
}
