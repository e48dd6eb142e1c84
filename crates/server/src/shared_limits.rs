//! Per-client limits shared by every node through Redis: how many work slots a client holds
//! at once (`limits.per_client_concurrent_requests`) and how many requests it may start per
//! minute (`limits.per_client_requests_per_minute`), counted across all the orchestrators
//! that share `limits.redis_url`.
//!
//! A client's slots are a sorted set of leases (`zeval:slots:<sha256 of the client>`), each
//! scored by when it lapses: the server's call timeout plus a margin ([`LEASE_MARGIN`]), so a
//! node that dies holding slots frees them by then. A request takes a lease in one script
//! (drop lapsed leases, count, add) and gives it back when it ends. The rate is a counter per
//! client and minute (`zeval:rate:<sha256>:<minute>`), kept two minutes. Both use Redis's
//! clock, so the nodes' clocks do not matter. Clients are hashed: no token reaches Redis.
//!
//! Redis failing never fails a request: each command waits at most the configured timeout,
//! after a failure Redis is skipped for [`RETRY_AFTER`] and the node applies the same limits
//! with its own counters ([`crate::limits`]) meanwhile, counted in
//! `zeval_shared_limits_errors_total`. At most [`MAX_IDLE_CONNECTIONS`] connections are kept.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Connection;
use sha2::{Digest, Sha256};

/// Added to the call timeout for a lease's lifetime.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How long Redis is skipped after it failed.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Connections kept open for reuse.
pub const MAX_IDLE_CONNECTIONS: usize = 16;

/// What Redis said of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; give the lease back with [`SharedLimits::release`].
    Admitted(Lease),
    /// The client holds all its slots on some node.
    Busy,
    /// The client started its requests of this minute; retry after so many seconds.
    RateLimited { retry_after: u64 },
}

/// A taken slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    key: String,
    id: String,
}

/// Why Redis could not decide.
#[derive(Debug, thiserror::Error)]
pub enum SharedLimitsError {
    /// The URL is not a Redis URL.
    #[error("limits.redis_url: {0}")]
    Config(String),
    /// Redis failed or is being skipped after a failure.
    #[error("shared limits: {0}")]
    Unavailable(String),
}

/// Lapsed leases out, then a lease in if there is room. KEYS[1] the client's set; ARGV: the
/// limit (0: none), the lease id, its lifetime in ms, the rate key prefix, the rate per minute
/// (0: none). Returns {1, 0} admitted, {0, 0} busy, {2, seconds} rate limited.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local per_minute = tonumber(ARGV[5])
if per_minute > 0 then
  local minute = math.floor(now / 60000)
  local rate_key = ARGV[4] .. ':' .. minute
  local started = redis.call('INCR', rate_key)
  if started == 1 then redis.call('PEXPIRE', rate_key, 120000) end
  if started > per_minute then
    return {2, math.floor(((minute + 1) * 60000 - now) / 1000) + 1}
  end
end
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= limit then return {0, 0} end
  local ttl = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, 0}
";

/// The shared limits of one node.
pub struct SharedLimits {
    client: redis::Client,
    timeout: Duration,
    lease_lifetime: Duration,
    concurrent: usize,
    per_minute: u64,
    idle: Mutex<Vec<Connection>>,
    down_until: Mutex<Option<Instant>>,
    next_lease: AtomicU64,
    node: String,
    errors: AtomicU64,
}

impl SharedLimits {
    /// Limits of `concurrent` slots (0: none) and `per_minute` requests (0: none) per client,
    /// shared through the Redis at `url`; each command waits at most `timeout`; a lease lapses
    /// `call_timeout` + [`LEASE_MARGIN`] after it was taken.
    pub fn new(
        url: &str,
        timeout: Duration,
        call_timeout: Duration,
        concurrent: usize,
        per_minute: u64,
    ) -> Result<Self, SharedLimitsError> {
        let client =
            redis::Client::open(url).map_err(|e| SharedLimitsError::Config(e.to_string()))?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random)
            .map_err(|e| SharedLimitsError::Config(format!("no randomness: {e}")))?;
        Ok(SharedLimits {
            client,
            timeout: timeout.max(Duration::from_millis(1)),
            lease_lifetime: call_timeout + LEASE_MARGIN,
            concurrent,
            per_minute,
            idle: Mutex::new(Vec::new()),
            down_until: Mutex::new(None),
            next_lease: AtomicU64::new(0),
            node: hex::encode(random),
            errors: AtomicU64::new(0),
        })
    }

    /// Failures so far (for `/metrics`).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn connection(&self) -> Result<Connection, SharedLimitsError> {
        if let Some(until) = *self.down_until.lock().unwrap_or_else(|e| e.into_inner())
            && Instant::now() < until
        {
            return Err(SharedLimitsError::Unavailable(
                "Redis failed a moment ago".into(),
            ));
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

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }

    fn failed(&self, e: redis::RedisError) -> SharedLimitsError {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if down.is_none_or(|until| Instant::now() >= until) {
            tracing::warn!(error = %e, "shared limits: Redis failed; using this node's own counters for a moment");
        }
        *down = Some(Instant::now() + RETRY_AFTER);
        SharedLimitsError::Unavailable(e.to_string())
    }

    fn client_key(client: &str) -> String {
        hex::encode(Sha256::digest(client.as_bytes()))
    }

    /// Takes a slot of `client` and counts the request against its rate.
    pub fn take(&self, client: &str) -> Result<Decision, SharedLimitsError> {
        let hashed = Self::client_key(client);
        let key = format!("zeval:slots:{hashed}");
        let id = format!(
            "{}-{}",
            self.node,
            self.next_lease.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = self.connection()?;
        // EVAL with the script's text (under 1 KiB) each time: no script cache to lose.
        let answer: Result<(u64, u64), _> = redis::cmd("EVAL")
            .arg(TAKE)
            .arg(1)
            .arg(&key)
            .arg(self.concurrent)
            .arg(&id)
            .arg(u64::try_from(self.lease_lifetime.as_millis()).unwrap_or(u64::MAX))
            .arg(format!("zeval:rate:{hashed}"))
            .arg(self.per_minute)
            .query(&mut conn);
        let (verdict, seconds) = answer.map_err(|e| self.failed(e))?;
        self.give_back(conn);
        Ok(match verdict {
            1 => Decision::Admitted(Lease { key, id }),
            2 => Decision::RateLimited {
                retry_after: seconds.max(1),
            },
            _ => Decision::Busy,
        })
    }

    /// Gives a slot back (a failure leaves it to lapse).
    pub fn release(&self, lease: &Lease) {
        if self.concurrent == 0 {
            return;
        }
        let Ok(mut conn) = self.connection() else {
            return;
        };
        match redis::cmd("ZREM")
            .arg(&lease.key)
            .arg(&lease.id)
            .query::<u64>(&mut conn)
        {
            Ok(_) => self.give_back(conn),
            Err(e) => {
                self.failed(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_a_configuration_error() {
        let error = SharedLimits::new(
            "http://not-redis",
            Duration::from_millis(50),
            Duration::from_secs(1),
            8,
            0,
        )
        .err()
        .unwrap();
        assert!(matches!(error, SharedLimitsError::Config(_)), "{error}");
    }

    #[test]
    fn a_redis_that_is_down_is_reported_quickly_and_then_skipped() {
        // A port nothing listens on: connection refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let limits = SharedLimits::new(
            &format!("redis://127.0.0.1:{port}"),
            Duration::from_millis(50),
            Duration::from_secs(1),
            8,
            10,
        )
        .unwrap();
        let started = Instant::now();
        assert!(limits.take("token a").is_err());
        assert!(limits.take("token a").is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(limits.errors(), 1, "the second attempt skipped Redis");
    }

    #[test]
    fn clients_are_hashed() {
        let key = SharedLimits::client_key("token secret-token");
        assert_eq!(key.len(), 64);
        assert!(!key.contains("secret"));
    }
}
