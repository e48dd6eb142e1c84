//! How zeval's HTTP clients (ureq agents) find a host's addresses: an IP address is taken as
//! it is; a name goes to ureq's own resolver.
//!
//! ureq's `DefaultResolver` looks up every host, IP addresses included, and when the request
//! has a timeout (every request of zeval's has one) it does so on a thread of its own, which
//! it spawns for the lookup and detaches. That is a thread per new connection: with
//! evaluators restarting under load, an orchestrator spawned and detached them by the
//! hundred, and once (CI, 2026-12-07) one of its `zeval-remote-call` threads died of a
//! segmentation fault in `pthread_detach` on such a thread, which took the orchestrator down
//! (`dmesg`: "segfault … in libc.so.6", at `pthread_detach+28`). An address needs no lookup,
//! so nothing is spawned for it.

use std::net::{IpAddr, SocketAddr};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// A resolver that looks up only names (see the module's docs).
#[derive(Debug, Default)]
pub struct AddressFirstResolver {
    names: DefaultResolver,
}

impl Resolver for AddressFirstResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match literal_address(uri) {
            Some(address) => {
                let mut addresses = self.empty();
                addresses.push(address);
                Ok(addresses)
            }
            None => self.names.resolve(uri, config, timeout),
        }
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
    ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        AddressFirstResolver::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(uri: &str) -> Option<SocketAddr> {
        literal_address(&uri.parse().expect("a URI"))
    }

    #[test]
    fn addresses_are_taken_as_they_are() {
        for (uri, expected) in [
            (
                "http://127.0.0.1:6927/wikifunctions.org/v1/evaluate/",
                "127.0.0.1:6927",
            ),
            ("http://[::1]:8080/x", "[::1]:8080"),
            ("http://10.0.0.2/x", "10.0.0.2:80"),
            ("https://10.0.0.2/x", "10.0.0.2:443"),
        ] {
            assert_eq!(address(uri), Some(expected.parse().unwrap()), "{uri}");
        }
    }

    #[test]
    fn names_are_left_to_ureq() {
        assert_eq!(address("http://localhost:6927/x"), None);
        assert_eq!(address("http://evaluator.zeval.svc:6927/x"), None);
        assert_eq!(address("http://1.2.3.4.example/x"), None);
    }

    /// The agent reaches an address without a lookup (and so without a thread for one).
    #[test]
    fn an_agent_reaches_an_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = listener.accept().expect("a connection");
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .expect("an answer");
        });
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(5)))
            .build();
        let mut response = agent(config)
            .get(format!("http://127.0.0.1:{port}/"))
            .call()
            .expect("an answer");
        assert_eq!(response.body_mut().read_to_string().expect("a body"), "ok");
        server.join().expect("the server");
    }
}
