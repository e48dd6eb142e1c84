//! How zeval's HTTP clients (ureq agents) find a host's addresses: an IP address is taken as
//! it is, and a name is looked up on one of a few long-lived threads.
//!
//! ureq's `DefaultResolver` looks up every host, IP addresses included, and when the request
//! has a timeout (every request of zeval's has one) it does so on a thread of its own, which
//! it spawns for the lookup and detaches. That is a thread per new connection: with
//! evaluators restarting under load, an orchestrator spawned and detached them by the
//! hundred, and once (CI, 2026-12-07) one of its `zeval-remote-call` threads died of a
//! segmentation fault in `pthread_detach` on such a thread, which took the orchestrator down
//! (`dmesg`: "segfault … in libc.so.6", at `pthread_detach+28`). An address needs no lookup,
//! so nothing is spawned for it; a name (a Kubernetes service, the wiki's host) is handed to
//! [`LOOKUP_THREADS`] threads started once, so no thread is spawned or detached per
//! connection there either.
//!
//! Bounds: a caller waits for its lookup at most the request's own timeout (ureq's `Resolve`
//! timeout, then the request fails as it did with ureq's resolver); a lookup still running
//! then (a name server that does not answer) keeps its thread until `getaddrinfo` gives up
//! (`resolv.conf`'s timeouts), and its answer is dropped. At most [`MAX_WAITING_LOOKUPS`]
//! lookups wait for a thread; one more fails at once instead of queueing without bound.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Threads that look names up for the whole process, started on the first lookup. Lookups
/// are rare (one per new connection to a named host, and clients keep connections alive), so
/// a few suffice; more than one, so that a name server slow for one name does not hold every
/// other lookup behind it.
pub const LOOKUP_THREADS: usize = 4;

/// Lookups that may wait for a lookup thread; past that a lookup fails at once.
pub const MAX_WAITING_LOOKUPS: usize = 256;

/// A resolver that looks up only names, on the process's lookup threads (see the crate's
/// docs).
#[derive(Debug, Default)]
pub struct AddressFirstResolver;

impl Resolver for AddressFirstResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut addresses = self.empty();
        if let Some(address) = literal_address(uri) {
            addresses.push(address);
            return Ok(addresses);
        }
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(ureq::Error::BadUri(uri.to_string()));
        };
        let host_and_port = DefaultResolver::host_and_port(scheme, authority)
            .ok_or_else(|| ureq::Error::BadUri(uri.to_string()))?;
        let wait = (!timeout.after.is_not_happening()).then(|| *timeout.after);
        let found =
            process_lookups()
                .look_up(host_and_port, wait)
                .map_err(|failure| match failure {
                    LookupFailure::TimedOut => ureq::Error::Timeout(timeout.reason),
                    LookupFailure::Io(error) => ureq::Error::Io(error),
                })?;
        // ureq keeps at most as many addresses as its array holds.
        for address in config.ip_family().keep_wanted(found.into_iter()) {
            if addresses.try_push(address).is_err() {
                break;
            }
        }
        if addresses.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(addresses)
    }
}

/// The socket address of `uri` when its host is an IP address (`[…]` for IPv6) and its
/// port is given or its scheme's default.
fn literal_address(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = uri.port_u16().or_else(|| match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(SocketAddr::new(ip, port))
}

/// An agent with `config` that resolves with [`AddressFirstResolver`].
pub fn agent(config: Config) -> ureq::Agent {
    ureq::Agent::with_parts(config, DefaultConnector::default(), AddressFirstResolver)
}

/// Why a lookup gave no addresses.
#[derive(Debug)]
enum LookupFailure {
    /// The caller's time ran out first (the lookup may still be running).
    TimedOut,
    /// The lookup failed, or could not be started.
    Io(io::Error),
}

/// What a lookup finds: `host:port` to its addresses.
type FindAddresses = dyn Fn(&str) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// One lookup waiting for a thread, and where its answer goes.
struct Lookup {
    host_and_port: String,
    answer: SyncSender<io::Result<Vec<SocketAddr>>>,
}

/// Lookup threads fed from one bounded queue.
struct Lookups {
    queue: SyncSender<Lookup>,
    waiting: usize,
}

/// Names the process's lookup threads have looked up (for the tests: that agents use them).
static PROCESS_LOOKUPS_DONE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The process's lookup threads, with the system's resolver (`getaddrinfo`).
fn process_lookups() -> &'static Lookups {
    static LOOKUPS: OnceLock<Lookups> = OnceLock::new();
    LOOKUPS.get_or_init(|| {
        Lookups::start(
            "zeval-lookup",
            LOOKUP_THREADS,
            MAX_WAITING_LOOKUPS,
            Arc::new(|host_and_port: &str| {
                PROCESS_LOOKUPS_DONE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                host_and_port.to_socket_addrs().map(|found| found.collect())
            }),
        )
    })
}

impl Lookups {
    /// `threads` threads named `name` that run `look_up`, with `waiting` lookups queued at
    /// most. A thread that cannot be started is logged; with none, every lookup fails (its
    /// queue has no reader).
    fn start(name: &str, threads: usize, waiting: usize, look_up: Arc<FindAddresses>) -> Self {
        let (queue, lookups) = sync_channel::<Lookup>(waiting);
        let lookups = Arc::new(Mutex::new(lookups));
        for _ in 0..threads {
            let (lookups, look_up) = (lookups.clone(), look_up.clone());
            let started = std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || serve_lookups(&lookups, &*look_up));
            if let Err(error) = started {
                tracing::error!(%error, "a name lookup thread could not be started");
            }
        }
        Self { queue, waiting }
    }

    /// The addresses of `host_and_port`, waiting for them at most `wait` (`None`: as long as
    /// the lookup takes).
    fn look_up(
        &self,
        host_and_port: String,
        wait: Option<Duration>,
    ) -> Result<Vec<SocketAddr>, LookupFailure> {
        // Room for the answer, so that a thread whose caller has gone never blocks.
        let (answer, answered) = sync_channel(1);
        let lookup = Lookup {
            host_and_port,
            answer,
        };
        match self.queue.try_send(lookup) {
            Ok(()) => {}
            Err(TrySendError::Full(lookup)) => {
                return Err(LookupFailure::Io(io::Error::other(format!(
                    "too many name lookups waiting ({}) to look up {}",
                    self.waiting, lookup.host_and_port
                ))));
            }
            Err(TrySendError::Disconnected(lookup)) => {
                return Err(LookupFailure::Io(io::Error::other(format!(
                    "no thread to look up {}",
                    lookup.host_and_port
                ))));
            }
        }
        let found = match wait {
            Some(wait) => answered.recv_timeout(wait).map_err(|error| match error {
                RecvTimeoutError::Timeout => LookupFailure::TimedOut,
                RecvTimeoutError::Disconnected => lookup_thread_gone(),
            })?,
            None => answered.recv().map_err(|_| lookup_thread_gone())?,
        };
        found.map_err(LookupFailure::Io)
    }
}

fn lookup_thread_gone() -> LookupFailure {
    LookupFailure::Io(io::Error::other("the name lookup thread stopped"))
}

/// A lookup thread's life: one lookup at a time, until the queue is gone.
fn serve_lookups(lookups: &Mutex<Receiver<Lookup>>, look_up: &FindAddresses) {
    loop {
        // The lock is held while waiting: the other idle threads wait on it instead of on the
        // queue, and the first to get it takes the next lookup.
        let next = lookups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok(lookup) = next else { return };
        let found = look_up(&lookup.host_and_port);
        // The caller may have stopped waiting.
        let _ = lookup.answer.try_send(found);
    }
}

#[cfg(test)]
mod tests;
