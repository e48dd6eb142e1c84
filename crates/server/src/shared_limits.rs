//! Per-client limits shared by every node through Redis: how many work slots a client holds
//! at once (`limits.per_client_concurrent_requests`) and how many requests it may start per
//! minute (`limits.per_client_requests_per_minute`), counted across all the orchestrators
//! that share `limits.redis_url`.
//!
//! A client's slots are a sorted set of leases (`zeval:slots:<hash of the client>`), each
//! scored by when it lapses: the longest a request may hold a slot ([`longest_request`]) plus
//! a margin ([`LEASE_MARGIN`]), so a node that dies holding slots frees them by then, and a
//! lease never lapses while its request still runs (a lapsed one let a client hold more slots
//! than its limit across nodes). A request takes a lease in one script
//! (drop lapsed leases, count, add) and gives it back when it ends. The rate is a counter per
//! client and minute (`zeval:rate:<hash>:<minute>`), kept two minutes. Both use Redis's
//! clock, so the nodes' clocks do not matter. Clients are hashed: no token reaches Redis.
//! The hash is keyed with `limits.redis_key_secret` (HMAC-SHA-256) when one is set: plain
//! SHA-256 of `ip 203.0.113.9` is reversed by trying every IPv4 address, so anyone who can
//! read Redis (or a dump of it) could list who used the service in the last two minutes.
//!
//! Redis failing never fails a request: each command waits at most the configured timeout,
//! after a failure Redis is skipped for a moment ([`crate::redis_pool`]) and the node applies
//! the same limits with its own counters ([`crate::limits`]) meanwhile, counted in
//! `zeval_shared_limits_errors_total`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::redis_pool::{RedisPool, RedisPoolError};

/// Added to [`longest_request`] for a lease's lifetime.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// The longest a request may hold a work slot under `limits`: a call (the call timeout), a
/// tester run (its budget, and a cell started just before its end runs a call), or a write
/// that compiles (the compiler's queue, then the compilation).
pub fn longest_request(limits: &crate::config::Limits) -> Duration {
    let call = Duration::from_millis(limits.call_timeout_ms);
    let tests = Duration::from_millis(limits.test_timeout_ms) + call;
    let compiler = zeval_compiler::CompilerConfig::default();
    let write = compiler.queue_timeout + compiler.wall_time;
    call.max(tests).max(write)
}

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
pub type SharedLimitsError = RedisPoolError;

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
    redis: RedisPool,
    lease_lifetime: Duration,
    concurrent: usize,
    per_minute: u64,
    next_lease: AtomicU64,
    node: String,
    /// `limits.redis_key_secret`, the HMAC key of the clients' hashes.
    key_secret: Option<HmacKey>,
}

/// An HMAC-SHA-256 (RFC 2104) key, its padded blocks hashed once, at start-up.
#[derive(Clone)]
struct HmacKey {
    inner: Sha256,
    outer: Sha256,
}

impl HmacKey {
    fn new(key: &[u8]) -> Self {
        const BLOCK: usize = 64;
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| block.map(|k| k ^ byte);
        HmacKey {
            inner: Sha256::new().chain_update(pad(0x36)),
            outer: Sha256::new().chain_update(pad(0x5c)),
        }
    }

    /// The HMAC of `message`, in hex.
    fn hex(&self, message: &[u8]) -> String {
        let inner = self.inner.clone().chain_update(message).finalize();
        hex::encode(self.outer.clone().chain_update(inner).finalize())
    }
}

/// HMAC-SHA-256 of `message` under `key`, in hex.
#[cfg(test)]
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    HmacKey::new(key).hex(message)
}

impl SharedLimits {
    /// Limits of `concurrent` slots (0: none) and `per_minute` requests (0: none) per client,
    /// shared through the Redis at `url`; each command waits at most `timeout`; a lease lapses
    /// `longest_request` ([`longest_request`]) + [`LEASE_MARGIN`] after it was taken.
    pub fn new(
        url: &str,
        timeout: Duration,
        longest_request: Duration,
        concurrent: usize,
        per_minute: u64,
    ) -> Result<Self, SharedLimitsError> {
        Self::with_key_secret(url, timeout, longest_request, concurrent, per_minute, None)
    }

    /// [`SharedLimits::new`], with clients hashed under `key_secret` (see the module
    /// documentation; `None` or empty: plain SHA-256).
    pub fn with_key_secret(
        url: &str,
        timeout: Duration,
        longest_request: Duration,
        concurrent: usize,
        per_minute: u64,
        key_secret: Option<&str>,
    ) -> Result<Self, SharedLimitsError> {
        let redis = RedisPool::new(url, timeout, "limits.redis_url", "shared limits")?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| RedisPoolError::Config {
            setting: "limits.redis_url",
            message: format!("no randomness for lease names: {e}"),
        })?;
        Ok(SharedLimits {
            redis,
            lease_lifetime: longest_request + LEASE_MARGIN,
            concurrent,
            per_minute,
            next_lease: AtomicU64::new(0),
            node: hex::encode(random),
            key_secret: key_secret
                .filter(|secret| !secret.is_empty())
                .map(|secret| HmacKey::new(secret.as_bytes())),
        })
    }

    /// Failures so far (for `/metrics`).
    pub fn errors(&self) -> u64 {
        self.redis.errors()
    }

    fn client_key(&self, client: &str) -> String {
        match &self.key_secret {
            Some(key) => key.hex(client.as_bytes()),
            None => hex::encode(Sha256::digest(client.as_bytes())),
        }
    }

    /// Takes a slot of `client` and counts the request against its rate.
    pub fn take(&self, client: &str) -> Result<Decision, SharedLimitsError> {
        let hashed = self.client_key(client);
        let key = format!("zeval:slots:{hashed}");
        let id = format!(
            "{}-{}",
            self.node,
            self.next_lease.fetch_add(1, Ordering::Relaxed)
        );
        // EVAL with the script's text (under 1 KiB) each time: no script cache to lose.
        let (verdict, seconds): (u64, u64) = self.redis.run(|conn| {
            redis::cmd("EVAL")
                .arg(TAKE)
                .arg(1)
                .arg(&key)
                .arg(self.concurrent)
                .arg(&id)
                .arg(u64::try_from(self.lease_lifetime.as_millis()).unwrap_or(u64::MAX))
                .arg(format!("zeval:rate:{hashed}"))
                .arg(self.per_minute)
                .query(conn)
        })?;
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
        // A failure leaves the lease to lapse.
        let _ = self.redis.run(|conn| {
            redis::cmd("ZREM")
                .arg(&lease.key)
                .arg(&lease.id)
                .query::<u64>(conn)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lease outlives every request that may hold it: it used to lapse 5 s after the call
    /// timeout (25 s), while a tester run holds its slot up to 80 s and a write that compiles
    /// up to 90 s, and the client could then take more slots than its limit on other nodes.
    #[test]
    fn a_lease_outlives_the_longest_request() {
        let limits = crate::config::Limits::default();
        let longest = longest_request(&limits);
        let call = Duration::from_millis(limits.call_timeout_ms);
        assert!(longest >= Duration::from_millis(limits.test_timeout_ms) + call);
        let compiler = zeval_compiler::CompilerConfig::default();
        assert!(longest >= compiler.queue_timeout + compiler.wall_time);
        let long_calls = crate::config::Limits {
            call_timeout_ms: 600_000,
            ..limits
        };
        assert!(longest_request(&long_calls) >= Duration::from_secs(600));
    }

    fn limits(secret: Option<&str>) -> SharedLimits {
        SharedLimits::with_key_secret(
            "redis://127.0.0.1:1/",
            Duration::from_millis(10),
            Duration::from_secs(1),
            1,
            0,
            secret,
        )
        .unwrap()
    }

    #[test]
    fn clients_are_hashed() {
        let key = limits(None).client_key("token secret-token");
        assert_eq!(key.len(), 64);
        assert!(!key.contains("secret"));
    }

    /// With a secret, a client's key is not the plain SHA-256 anyone can recompute for every
    /// IPv4 address, and differs between secrets; it is the same on every node with the one
    /// secret.
    #[test]
    fn with_a_secret_clients_are_hashed_under_it() {
        let client = "ip 203.0.113.9";
        let plain = hex::encode(Sha256::digest(client.as_bytes()));
        assert_eq!(limits(None).client_key(client), plain);
        assert_eq!(limits(Some("")).client_key(client), plain);
        let keyed = limits(Some("one secret")).client_key(client);
        assert_ne!(keyed, plain);
        assert_ne!(keyed, limits(Some("another")).client_key(client));
        assert_eq!(keyed, limits(Some("one secret")).client_key(client));
    }

    /// RFC 4231 test cases 1, 2 and 6 (a key longer than the block).
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        assert_eq!(
            hmac_sha256_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
