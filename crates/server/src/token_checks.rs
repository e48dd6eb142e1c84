//! What bounds one client's token checks, where the store cannot answer them at once
//! (PostgreSQL; SQLite with no reader free): they wait, [`crate::access::MAX_TOKEN_CHECKS_AT_ONCE`]
//! at a time, in one queue per process, so one client's connections sending made-up tokens
//! made every real token holder wait behind them (503 `token_check_busy` past a second).
//!
//! - A client (its address, as the per-client limits count it: [`crate::client_address`])
//!   may have [`MAX_TOKEN_CHECKS_WAITING_PER_CLIENT`] checks waiting or running at once;
//!   past it, 429 with `Retry-After`. Made-up tokens from one address hold at most that many
//!   places in the queue.
//! - A token the store found valid is remembered for [`KNOWN_TOKEN_TIME`] (at most
//!   [`MAX_KNOWN_TOKENS`], by its SHA-256): its holder's next requests neither wait nor count.
//! - Requests with a token being checked wait for that check's answer
//!   ([`TokenChecks::check_of`]) rather than take a place of their own: a client that sends
//!   many requests at once on a new token is checked once, not refused. A check that ends
//!   without an answer (the store busy) hands it to one of those waiting.
//!   Only valid tokens are remembered, and the store cannot take a user or a role back (no
//!   command does), so what a token grants does not change while it is remembered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::access::Caller;
use crate::client_address::{TrustedProxies, client_key};

/// Token checks one client may have waiting for the store or running at once.
pub const MAX_TOKEN_CHECKS_WAITING_PER_CLIENT: usize = 2;

/// How long a token the store found valid is taken as valid without asking it again.
pub const KNOWN_TOKEN_TIME: Duration = Duration::from_secs(30);

/// The most tokens remembered at once (about 100 bytes each). Only valid tokens are, so they
/// are bounded by the store's users as well; past it, expired ones are dropped, and if none
/// has, the new token is not remembered.
pub const MAX_KNOWN_TOKENS: usize = 65_536;

/// The token checks of one server: its remembered tokens and who is waiting.
pub struct TokenChecks {
    proxies: TrustedProxies,
    ipv6_prefix: u8,
    /// SHA-256 of a token → its user, and when the store said so.
    known: Mutex<HashMap<[u8; 32], (Caller, Instant)>>,
    /// Client → its checks waiting or running; an entry lives while it has one.
    waiting: Mutex<HashMap<String, usize>>,
    /// SHA-256 of a token being checked → told when that check ends; an entry lives while
    /// it runs, so the map is bounded by the checks waiting.
    checking: Mutex<HashMap<[u8; 32], tokio::sync::watch::Receiver<Ended>>>,
}

/// How a check of a token ended, as the requests waiting for it learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It has not.
    Running,
    /// With the store's answer: the token's user, or none (not a valid token).
    Answered(Option<Caller>),
    /// Without one (the store busy or failing, its client gone): a waiter checks instead.
    GaveUp,
}

/// Whose check of a token this is ([`TokenChecks::check_of`]).
pub enum CheckOf {
    /// This request's: the others with the token wait for it until this is dropped.
    Own(Checking),
    /// Another request's, running: wait for its answer.
    Another(tokio::sync::watch::Receiver<Ended>),
}

/// A check of a token running; dropped when it ends, which tells those waiting for it.
pub struct Checking {
    checks: Arc<TokenChecks>,
    token: [u8; 32],
    ended: tokio::sync::watch::Sender<Ended>,
}

impl Checking {
    /// Tells those waiting the store's answer.
    pub fn answer(self, found: Option<Caller>) {
        self.ended.send_replace(Ended::Answered(found));
    }
}

impl Drop for Checking {
    fn drop(&mut self) {
        self.checks
            .checking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.token);
        self.ended.send_if_modified(|ended| {
            let running = *ended == Ended::Running;
            if running {
                *ended = Ended::GaveUp;
            }
            running
        });
    }
}

/// A client's place among the checks waiting; given back when dropped (it goes with the
/// check, which runs on when its client hangs up).
pub struct Waiting {
    checks: Arc<TokenChecks>,
    client: String,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiting = self
            .checks
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = waiting.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.client);
            }
        }
    }
}

impl TokenChecks {
    /// Checks whose clients are counted as the per-client limits count them: behind
    /// `proxies`, by the address they forwarded for; an IPv6 client by its network of
    /// `ipv6_prefix` bits.
    pub fn new(proxies: TrustedProxies, ipv6_prefix: u8) -> Self {
        TokenChecks {
            proxies,
            ipv6_prefix,
            known: Mutex::default(),
            waiting: Mutex::default(),
            checking: Mutex::default(),
        }
    }

    /// This request's check of `token`, or the one running already.
    pub fn check_of(self: &Arc<Self>, token: &str) -> CheckOf {
        let token = hash(token);
        let mut checking = self.checking.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(running) = checking.get(&token) {
            return CheckOf::Another(running.clone());
        }
        let (ended, running) = tokio::sync::watch::channel(Ended::Running);
        checking.insert(token, running);
        CheckOf::Own(Checking {
            checks: Arc::clone(self),
            token,
            ended,
        })
    }

    /// The user of `token`, when the store said it was valid in the last [`KNOWN_TOKEN_TIME`].
    pub fn known(&self, token: &str) -> Option<Caller> {
        let key = hash(token);
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        match known.get(&key) {
            Some((caller, since)) if since.elapsed() < KNOWN_TOKEN_TIME => Some(caller.clone()),
            Some(_) => {
                known.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers that the store found `token` to be `caller`'s.
    pub fn remember(&self, token: &str, caller: &Caller) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_KNOWN_TOKENS {
            known.retain(|_, (_, since)| since.elapsed() < KNOWN_TOKEN_TIME);
            if known.len() >= MAX_KNOWN_TOKENS {
                return;
            }
        }
        known.insert(hash(token), (caller.clone(), Instant::now()));
    }

    /// A place among the checks waiting for the client at `peer` (`None` when served without
    /// a connection, as tests that call the router do: counted as one client), or `None`
    /// when it already has [`MAX_TOKEN_CHECKS_WAITING_PER_CLIENT`].
    pub fn wait_as(
        self: &Arc<Self>,
        peer: Option<IpAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Option<Waiting> {
        let client = match peer {
            Some(peer) => client_key(self.proxies.client_of(peer, headers), self.ipv6_prefix),
            None => "unknown".to_owned(),
        };
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let count = waiting.entry(client.clone()).or_insert(0);
        if *count >= MAX_TOKEN_CHECKS_WAITING_PER_CLIENT {
            return None;
        }
        *count += 1;
        Some(Waiting {
            checks: Arc::clone(self),
            client,
        })
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::UserRole;

    #[test]
    fn a_client_has_at_most_its_share_of_places_and_gets_them_back() {
        let checks = Arc::new(TokenChecks::new(TrustedProxies::default(), 64));
        let none = axum::http::HeaderMap::new();
        let (one, other): (IpAddr, IpAddr) = ([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        let held: Vec<_> = (0..MAX_TOKEN_CHECKS_WAITING_PER_CLIENT)
            .map(|_| checks.wait_as(Some(one), &none).expect("a place"))
            .collect();
        assert!(checks.wait_as(Some(one), &none).is_none());
        assert!(checks.wait_as(Some(other), &none).is_some());
        drop(held);
        assert!(checks.wait_as(Some(one), &none).is_some());
        assert!(
            checks.waiting.lock().unwrap().is_empty(),
            "no entry outlives its client's checks"
        );
    }

    #[tokio::test]
    async fn a_token_being_checked_is_checked_once() {
        let checks = Arc::new(TokenChecks::new(TrustedProxies::default(), 64));
        let CheckOf::Own(first) = checks.check_of("secret") else {
            panic!("the first check is its own");
        };
        let CheckOf::Another(mut running) = checks.check_of("secret") else {
            panic!("a second request waits for the first's check");
        };
        assert!(matches!(checks.check_of("other"), CheckOf::Own(_)));
        first.answer(None);
        let ended = running.wait_for(|ended| *ended != Ended::Running).await;
        assert_eq!(*ended.unwrap(), Ended::Answered(None));
        let CheckOf::Own(second) = checks.check_of("secret") else {
            panic!("a check that ended is not waited for");
        };
        let CheckOf::Another(mut running) = checks.check_of("secret") else {
            panic!("a second request waits for the first's check");
        };
        drop(second);
        let ended = running.wait_for(|ended| *ended != Ended::Running).await;
        assert_eq!(*ended.unwrap(), Ended::GaveUp);
        assert!(checks.checking.lock().unwrap().is_empty());
    }

    #[test]
    fn only_remembered_tokens_are_known() {
        let checks = TokenChecks::new(TrustedProxies::default(), 64);
        let ada = Caller {
            name: "ada".into(),
            role: UserRole::Admin,
        };
        assert_eq!(checks.known("secret"), None);
        checks.remember("secret", &ada);
        assert_eq!(checks.known("secret"), Some(ada));
        assert_eq!(checks.known("secreT"), None);
    }
}
