//! Who an anonymous request comes from, for the per-client limits: the peer's IP address,
//! or, when the peer is a proxy the operator trusts (`limits.trusted_proxies`), the address
//! that proxy says it forwarded for in `X-Forwarded-For`.
//!
//! The header is read from the right, the way proxies append to it: the first address that
//! is not itself a trusted proxy is the client (everything to its left was written by the
//! client and proves nothing). Without trusted proxies, or from any other peer, the header
//! is ignored, so that no client can choose the address it is counted under.
//!
//! Bounds: at most [`MAX_FORWARDED_HOPS`] addresses are read from the header (the header's
//! own size is bounded by the server's header limits); an entry that is not an IP address
//! ends the walk at the last trusted hop's word for it.
//!
//! An IPv6 client is counted by its network, not its address ([`client_key`]): a host is
//! usually given a whole /64, so counted by address, one machine could send from as many
//! "clients" as it liked, each with its own per-client slots.

use std::net::{IpAddr, Ipv6Addr};

/// The default prefix length an IPv6 client is counted under (`limits.client_ipv6_prefix`):
/// one /64, what a single host or link is usually given (SLAAC needs one, and RFC 6177 has
/// sites get /48 to /64), and what MediaWiki's own rate limits take as one IPv6 client. An
/// operator whose users' providers hand out /56 or /48 per customer sets that instead.
pub const DEFAULT_CLIENT_IPV6_PREFIX: u8 = 64;

/// What the per-client limits count the client at `ip` as: an IPv4 address itself (an
/// IPv4-mapped IPv6 address too), an IPv6 address its network of `ipv6_prefix` bits (at most
/// 128), e.g. `2001:db8:1:2::/64`.
pub fn client_key(ip: IpAddr, ipv6_prefix: u8) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u32::from(ipv6_prefix.min(128));
                let network = u128::from(v6)
                    .checked_shr(128 - prefix)
                    .and_then(|kept| kept.checked_shl(128 - prefix))
                    .unwrap_or(0);
                format!("{}/{prefix}", Ipv6Addr::from(network))
            }
        },
    }
}

/// The most `X-Forwarded-For` entries read, from the right.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// An address range: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    address: IpAddr,
    prefix: u8,
}

impl Range {
    fn parse(text: &str) -> Option<Range> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.trim().parse().ok()?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|&p| p <= bits)?,
            None => bits,
        };
        Some(Range { address, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.address, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (_, ip) => ip,
        };
        let (network, candidate): (u128, u128) = match (self.address, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into()),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => return false,
        };
        let bits: u32 = if self.address.is_ipv4() { 32 } else { 128 };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (network >> shift) == (candidate >> shift)
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<Range>,
}

/// A `limits.trusted_proxies` entry that is not an address or a range.
#[derive(Debug, thiserror::Error)]
#[error("limits.trusted_proxies: {0:?} is not an IP address or a range such as 10.0.0.0/8")]
pub struct BadProxy(pub String);

impl TrustedProxies {
    /// From addresses and ranges (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BadProxy> {
        let ranges = entries
            .iter()
            .map(|e| Range::parse(e.as_ref()).ok_or_else(|| BadProxy(e.as_ref().to_owned())))
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { ranges })
    }

    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// The address a request from `peer` with `headers` is counted under: `peer`'s, or when
    /// `peer` is trusted, the one its `X-Forwarded-For` names ([`Self::client`]).
    pub fn client_of(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // The last lines: a proxy appends its own line after the client's, and a client
        // that sent more lines than are read must not push the proxy's out of sight.
        let mut forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .take(MAX_FORWARDED_HOPS)
            .filter_map(|v| v.to_str().ok())
            .collect();
        forwarded.reverse();
        self.client(peer, &forwarded)
    }

    /// The address a request from `peer` with `forwarded_for` (the header's values, in
    /// order) is counted under.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = forwarded_for
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(','))
            .take(MAX_FORWARDED_HOPS);
        for hop in hops {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_ipv6_client_is_its_64_network_and_an_ipv4_client_its_address() {
        let key = |text| client_key(ip(text), DEFAULT_CLIENT_IPV6_PREFIX);
        assert_eq!(key("203.0.113.9"), "203.0.113.9");
        assert_eq!(key("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        assert_eq!(key("::1"), "::/64");
    }

    #[test]
    fn the_ipv6_prefix_is_the_operators_choice() {
        let v6 = ip("2001:db8:1:2ff::1");
        assert_eq!(client_key(v6, 56), "2001:db8:1:200::/56");
        assert_eq!(client_key(v6, 48), "2001:db8:1::/48");
        assert_eq!(client_key(v6, 128), "2001:db8:1:2ff::1/128");
        assert_eq!(client_key(v6, 0), "::/0");
        assert_eq!(client_key(v6, 200), "2001:db8:1:2ff::1/128");
        // IPv4 clients are their address, whatever the IPv6 prefix.
        assert_eq!(client_key(ip("203.0.113.9"), 48), "203.0.113.9");
    }

    #[test]
    fn ranges_parse_and_match() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.7", "fd00::/8"]).unwrap();
        for (address, trusted) in [
            ("10.1.2.3", true),
            ("11.0.0.1", false),
            ("192.0.2.7", true),
            ("192.0.2.8", false),
            ("fd12::1", true),
            ("fe80::1", false),
            ("::ffff:10.9.9.9", true),
        ] {
            assert_eq!(proxies.trusts(ip(address)), trusted, "{address}");
        }
        assert!(
            TrustedProxies::parse(&["0.0.0.0/0"])
                .unwrap()
                .trusts(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "proxy", "10.0.0/8", ""] {
            assert!(TrustedProxies::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.0.0.5"), &["203.0.113.9"]),
            ip("10.0.0.5")
        );
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        // Not from the proxy: the header is the client's own word.
        assert_eq!(
            proxies.client(ip("198.51.100.1"), &["203.0.113.9"]),
            ip("198.51.100.1")
        );
        // From the proxy: the rightmost address that is not a proxy.
        assert_eq!(
            proxies.client(ip("10.0.0.5"), &["203.0.113.9"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.5"), &["1.1.1.1, 203.0.113.9, 10.0.0.7"]),
            ip("203.0.113.9"),
            "what the client wrote on the left is not believed"
        );
        assert_eq!(
            proxies.client(ip("10.0.0.5"), &["1.1.1.1", "203.0.113.9"]),
            ip("203.0.113.9"),
            "several headers are one list"
        );
        assert_eq!(proxies.client(ip("10.0.0.5"), &[]), ip("10.0.0.5"));
        assert_eq!(
            proxies.client(ip("10.0.0.5"), &["junk, 10.0.0.9"]),
            ip("10.0.0.9"),
            "a word that is not an address ends the walk"
        );
    }

    #[test]
    fn at_most_max_forwarded_hops_are_read() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let mut hops = vec!["203.0.113.9".to_owned()];
        hops.extend((0..MAX_FORWARDED_HOPS).map(|i| format!("10.0.0.{}", i % 250)));
        let header = hops.join(",");
        let client = proxies.client(ip("10.0.0.5"), &[header.as_str()]);
        assert!(
            proxies.trusts(client),
            "stopped before the far end: {client}"
        );
    }
}
