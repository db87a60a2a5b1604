//! The client address an audit line carries: the `CF-Connecting-IP`
//! header Cloudflare sets on every request that reaches a Worker, cut to
//! its network (a /24 for IPv4, a /48 for IPv6) unless the operator asks
//! for full addresses (`AUDIT_IP_FULL=true`). A /24 or /48 still tells
//! an operator which network a burst came from, while not naming one
//! household's connection (GDPR Art. 5(1)(c), data minimisation).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// The header Cloudflare sets to the visitor's address.
pub const CONNECTING_IP_HEADER: &str = "cf-connecting-ip";

/// An address as logged: truncated, or whole when configured so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct ClientIp {
    addr: IpAddr,
    /// The prefix length kept; `None` when logged whole.
    prefix: Option<u8>,
}

impl ClientIp {
    /// From the header's value: `None` when absent or not an address (a
    /// request that did not come through Cloudflare's edge, e.g. local).
    pub fn from_header(value: Option<&str>, full: bool) -> Option<Self> {
        let addr: IpAddr = value?.trim().parse().ok()?;
        Some(if full {
            Self { addr, prefix: None }
        } else {
            Self::truncated(addr)
        })
    }

    fn truncated(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Self {
                    addr: IpAddr::V4(Ipv4Addr::new(a, b, c, 0)),
                    prefix: Some(24),
                }
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let keep = |i: usize| s.get(i).copied().unwrap_or(0);
                Self {
                    addr: IpAddr::V6(Ipv6Addr::new(keep(0), keep(1), keep(2), 0, 0, 0, 0, 0)),
                    prefix: Some(48),
                }
            }
        }
    }
}

impl From<ClientIp> for String {
    fn from(ip: ClientIp) -> String {
        match ip.prefix {
            Some(p) => format!("{}/{p}", ip.addr),
            None => ip.addr.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_cut_to_their_network_unless_asked_whole() {
        let cases = [
            (Some("203.0.113.77"), false, Some("203.0.113.0/24")),
            (Some("203.0.113.77"), true, Some("203.0.113.77")),
            (
                Some("2001:db8:abcd:12:1:2:3:4"),
                false,
                Some("2001:db8:abcd::/48"),
            ),
            (
                Some("2001:db8:abcd:12:1:2:3:4"),
                true,
                Some("2001:db8:abcd:12:1:2:3:4"),
            ),
            (Some(" 198.51.100.9 "), false, Some("198.51.100.0/24")),
            (Some("not an address"), false, None),
            (Some("203.0.113.77, 10.0.0.1"), false, None),
            (None, false, None),
        ];
        for (header, full, want) in cases {
            let got = ClientIp::from_header(header, full).map(String::from);
            assert_eq!(got.as_deref(), want, "{header:?} full={full}");
        }
    }
}
