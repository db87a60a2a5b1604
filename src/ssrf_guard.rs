//! The SSRF guard: whether the server may fetch a URL it was handed by
//! someone else (client ID metadata documents, the upstream provider's
//! endpoints). Owns the address and name rules; knows nothing of OAuth.
//!
//! draft-ietf-oauth-client-id-metadata-document, "Server Side Request
//! Forgery (SSRF) Attacks": an authorization server MUST NOT fetch a URL
//! that resolves to a special-use address (RFC 6890), and MAY relax this
//! for loopback only in development deployments.
//!
//! What this can and cannot see: it judges the URL as written. IP literals
//! are checked against the IANA special-purpose registries (RFC 6890 and
//! its updates); names are checked against the special-use and
//! private-use suffixes (RFC 6761, RFC 6762, RFC 8375, ICANN's `.internal`).
//! A public name that resolves to a private address is outside its reach:
//! the Workers runtime does the DNS lookup and does not route to private
//! networks, which is the layer that closes that gap.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::http::is_loopback;

/// Where server-side fetches may go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Allow loopback hosts (127.0.0.0/8, `::1`, `localhost`), over http
    /// or https. True only in local development, set from configuration by
    /// the caller; the CIMD draft forbids this exception in production.
    pub allow_loopback_http: bool,
}

impl FetchPolicy {
    /// The production policy: public https hosts only.
    #[cfg(test)]
    pub const PRODUCTION: Self = Self {
        allow_loopback_http: false,
    };
    /// Local development: loopback is reachable too.
    #[cfg(test)]
    pub const DEVELOPMENT: Self = Self {
        allow_loopback_http: true,
    };
}

/// Why a URL may not be fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// Not https. Plain http is allowed only to a loopback host under the
    /// development policy; other schemes are never fetched (CIMD draft,
    /// SSRF section: "only fetch … URLs with known and supported URI
    /// schemes").
    Scheme,
    /// The URL carries a username or password (RFC 3986 §3.2.1 userinfo):
    /// it would send credentials, and it disguises the real host
    /// (`https://trusted.example@evil.example/`).
    Credentials,
    /// No host to connect to.
    NoHost,
    /// An IP literal in a special-use range (RFC 6890, RFC 6598 CGNAT,
    /// RFC 5737 / RFC 3849 / RFC 9637 documentation, multicast, IPv6 forms
    /// that embed such an IPv4 address), or loopback outside development.
    PrivateAddress,
    /// A name that only means something on a local network: `localhost`
    /// and `*.localhost` (RFC 6761 §6.3), `*.local` (RFC 6762), `*.internal`,
    /// `*.home.arpa` (RFC 8375), `*.localdomain`, or a single label that a
    /// resolver would complete with a search domain.
    LocalName,
}

impl TargetError {
    /// A sentence safe to show the person who supplied the URL.
    pub fn describe(self) -> &'static str {
        match self {
            TargetError::Scheme => "the URL must use https",
            TargetError::Credentials => "the URL must not contain a username or password",
            TargetError::NoHost => "the URL has no host",
            TargetError::PrivateAddress => {
                "the URL names a private, loopback or otherwise special-use IP address"
            }
            TargetError::LocalName => {
                "the URL names a local-network host (localhost, .local, .internal, .home.arpa or a single-label name)"
            }
        }
    }
}

/// Whether the server may fetch `url` under `policy`.
pub fn check(url: &Url, policy: FetchPolicy) -> Result<(), TargetError> {
    let dev_loopback = policy.allow_loopback_http && is_loopback(url);
    match url.scheme() {
        "https" => {}
        "http" if dev_loopback => {}
        _ => return Err(TargetError::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    if dev_loopback {
        return Ok(());
    }
    match url.host() {
        None => Err(TargetError::NoHost),
        Some(Host::Domain(name)) => check_name(name),
        Some(Host::Ipv4(ip)) if is_public_v4(ip) => Ok(()),
        Some(Host::Ipv6(ip)) if is_public_v6(ip) => Ok(()),
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => Err(TargetError::PrivateAddress),
    }
}

/// Suffixes that never name a host on the public internet.
const LOCAL_SUFFIXES: [&str; 5] = ["localhost", "local", "internal", "home.arpa", "localdomain"];

fn check_name(name: &str) -> Result<(), TargetError> {
    // `localhost.` is `localhost`: the trailing dot only marks the name as
    // fully qualified.
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || !name.contains('.') {
        return Err(TargetError::LocalName);
    }
    let local = LOCAL_SUFFIXES.iter().any(|suffix| {
        name == *suffix
            || name
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
    });
    if local {
        return Err(TargetError::LocalName);
    }
    Ok(())
}

/// IPv4 ranges that are not public unicast (IANA IPv4 Special-Purpose
/// Address Registry, RFC 6890 §2.2.2 and updates).
const SPECIAL_V4: [([u8; 4], u32); 15] = [
    ([0, 0, 0, 0], 8),       // "this network" (RFC 791), incl. 0.0.0.0
    ([10, 0, 0, 0], 8),      // private (RFC 1918)
    ([100, 64, 0, 0], 10),   // shared address space, CGNAT (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback (RFC 1122)
    ([169, 254, 0, 0], 16),  // link-local, cloud metadata (RFC 3927)
    ([172, 16, 0, 0], 12),   // private (RFC 1918)
    ([192, 0, 0, 0], 24),    // IETF protocol assignments (RFC 6890)
    ([192, 0, 2, 0], 24),    // TEST-NET-1 (RFC 5737)
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (RFC 7526)
    ([192, 168, 0, 0], 16),  // private (RFC 1918)
    ([198, 18, 0, 0], 15),   // benchmarking (RFC 2544)
    ([198, 51, 100, 0], 24), // TEST-NET-2 (RFC 5737)
    ([203, 0, 113, 0], 24),  // TEST-NET-3 (RFC 5737)
    ([224, 0, 0, 0], 4),     // multicast (RFC 5771)
    ([240, 0, 0, 0], 4),     // reserved, incl. broadcast 255.255.255.255 (RFC 1112, RFC 919)
];

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(ip: Ipv6Addr, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    (u128::from(ip) & mask) == (net & mask)
}

/// Public unicast IPv4: outside every special-purpose range.
fn is_public_v4(ip: Ipv4Addr) -> bool {
    !SPECIAL_V4.iter().any(|(net, len)| in_v4(ip, *net, *len))
}

/// IPv6 special-purpose ranges inside global unicast 2000::/3 (IANA IPv6
/// Special-Purpose Address Registry, RFC 6890 §2.2.3 and updates).
const SPECIAL_V6: [(u128, u32); 3] = [
    // IETF protocol assignments: Teredo, benchmarking, ORCHID, …
    // (RFC 2928, RFC 4380, RFC 5180, RFC 7343).
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23),
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation (RFC 3849)
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // documentation (RFC 9637)
];

/// Public unicast IPv6. Forms that embed an IPv4 address are judged by
/// that address, so `[::ffff:10.0.0.1]` is as private as `10.0.0.1`.
fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    // Outside 2000::/3 lie loopback, unspecified, unique-local fc00::/7,
    // link-local fe80::/10, site-local fec0::/10, multicast ff00::/8,
    // discard-only 100::/64 and unallocated space.
    in_v6(ip, 0x2000_0000_0000_0000_0000_0000_0000_0000, 3)
        && !SPECIAL_V6.iter().any(|(net, len)| in_v6(ip, *net, *len))
}

/// The IPv4 address an IPv6 address stands for, where it stands for one:
/// IPv4-mapped `::ffff:a.b.c.d` and IPv4-compatible `::a.b.c.d`
/// (RFC 4291 §2.5.5), NAT64 `64:ff9b::a.b.c.d` (RFC 6052 §2.1) and 6to4
/// `2002:aabb:ccdd::/48` (RFC 3056 §2).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    // The low 32 bits, as the IPv4 address of the mapped, compatible and
    // NAT64 forms (truncation intended).
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if in_v6(ip, 0xffff_0000_0000, 96)
        || in_v6(ip, 0, 96)
        || in_v6(ip, 0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96)
    {
        return Some(low);
    }
    if in_v6(ip, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_str(raw: &str, policy: FetchPolicy) -> Result<(), TargetError> {
        check(&Url::parse(raw).unwrap(), policy)
    }

    #[test]
    fn production_policy() {
        use TargetError::*;
        let cases = [
            // Public https hosts.
            ("https://client.example.com/client.json", Ok(())),
            ("https://client.example.com:8443/c", Ok(())),
            ("https://93.184.216.34/c", Ok(())),
            ("https://[2606:4700:4700::1111]/c", Ok(())),
            ("https://1.1.1.1/c", Ok(())),
            ("https://[::ffff:8.8.8.8]/c", Ok(())),
            ("https://[2002:808:808::]/c", Ok(())),
            ("https://sub.localhost.example.com/c", Ok(())),
            ("https://internal.example.com/c", Ok(())),
            // Scheme.
            ("http://client.example.com/c", Err(Scheme)),
            ("http://127.0.0.1/c", Err(Scheme)),
            ("http://localhost/c", Err(Scheme)),
            ("ftp://client.example.com/c", Err(Scheme)),
            ("file:///etc/passwd", Err(Scheme)),
            ("javascript:alert(1)", Err(Scheme)),
            ("data:application/json,{}", Err(Scheme)),
            // Userinfo.
            ("https://user@client.example.com/c", Err(Credentials)),
            ("https://user:pw@client.example.com/c", Err(Credentials)),
            ("https://client.example.com@10.0.0.1/c", Err(Credentials)),
            // IPv4 special-use.
            ("https://127.0.0.1/c", Err(PrivateAddress)),
            ("https://127.255.255.254/c", Err(PrivateAddress)),
            ("https://10.0.0.1/c", Err(PrivateAddress)),
            ("https://172.16.0.1/c", Err(PrivateAddress)),
            ("https://172.31.255.255/c", Err(PrivateAddress)),
            ("https://192.168.1.1/c", Err(PrivateAddress)),
            (
                "https://169.254.169.254/latest/meta-data",
                Err(PrivateAddress),
            ),
            ("https://100.64.0.1/c", Err(PrivateAddress)),
            ("https://100.127.255.255/c", Err(PrivateAddress)),
            ("https://0.0.0.0/c", Err(PrivateAddress)),
            ("https://0.1.2.3/c", Err(PrivateAddress)),
            ("https://255.255.255.255/c", Err(PrivateAddress)),
            ("https://240.0.0.1/c", Err(PrivateAddress)),
            ("https://224.0.0.1/c", Err(PrivateAddress)),
            ("https://239.255.255.250/c", Err(PrivateAddress)),
            ("https://192.0.0.8/c", Err(PrivateAddress)),
            ("https://192.0.2.1/c", Err(PrivateAddress)),
            ("https://198.51.100.7/c", Err(PrivateAddress)),
            ("https://203.0.113.9/c", Err(PrivateAddress)),
            ("https://198.18.0.1/c", Err(PrivateAddress)),
            ("https://192.88.99.1/c", Err(PrivateAddress)),
            // Edges of the private ranges stay public.
            ("https://172.15.255.255/c", Ok(())),
            ("https://172.32.0.0/c", Ok(())),
            ("https://100.63.255.255/c", Ok(())),
            ("https://100.128.0.0/c", Ok(())),
            ("https://11.0.0.0/c", Ok(())),
            ("https://9.255.255.255/c", Ok(())),
            // Odd IPv4 spellings the url crate normalises (WHATWG URL §3.5).
            ("https://0x7f.1/c", Err(PrivateAddress)),
            ("https://0x7f000001/c", Err(PrivateAddress)),
            ("https://2130706433/c", Err(PrivateAddress)),
            ("https://017700000001/c", Err(PrivateAddress)),
            ("https://127.1/c", Err(PrivateAddress)),
            ("https://0/c", Err(PrivateAddress)),
            ("https://0xa.0.0.1/c", Err(PrivateAddress)),
            ("https://%31%30.0.0.1/c", Err(PrivateAddress)),
            ("https://0251.0376.0251.0376/c", Err(PrivateAddress)),
            // IPv6 special-use.
            ("https://[::1]/c", Err(PrivateAddress)),
            ("https://[::]/c", Err(PrivateAddress)),
            ("https://[fe80::1]/c", Err(PrivateAddress)),
            ("https://[febf::1]/c", Err(PrivateAddress)),
            ("https://[fc00::1]/c", Err(PrivateAddress)),
            ("https://[fd12:3456::1]/c", Err(PrivateAddress)),
            ("https://[fec0::1]/c", Err(PrivateAddress)),
            ("https://[ff02::1]/c", Err(PrivateAddress)),
            ("https://[100::1]/c", Err(PrivateAddress)),
            ("https://[2001:db8::1]/c", Err(PrivateAddress)),
            ("https://[3fff::1]/c", Err(PrivateAddress)),
            ("https://[2001::1]/c", Err(PrivateAddress)),
            // IPv6 forms embedding a special-use IPv4 address.
            ("https://[::ffff:127.0.0.1]/c", Err(PrivateAddress)),
            ("https://[::ffff:7f00:1]/c", Err(PrivateAddress)),
            ("https://[::ffff:10.0.0.1]/c", Err(PrivateAddress)),
            ("https://[::ffff:169.254.169.254]/c", Err(PrivateAddress)),
            ("https://[::127.0.0.1]/c", Err(PrivateAddress)),
            ("https://[::10.0.0.1]/c", Err(PrivateAddress)),
            ("https://[64:ff9b::10.0.0.1]/c", Err(PrivateAddress)),
            ("https://[64:ff9b::192.168.0.1]/c", Err(PrivateAddress)),
            ("https://[2002:a00:1::]/c", Err(PrivateAddress)),
            ("https://[2002:7f00:1::1]/c", Err(PrivateAddress)),
            // Local names.
            ("https://localhost/c", Err(LocalName)),
            ("https://LOCALHOST/c", Err(LocalName)),
            ("https://localhost./c", Err(LocalName)),
            ("https://app.localhost/c", Err(LocalName)),
            ("https://printer.local/c", Err(LocalName)),
            ("https://printer.local./c", Err(LocalName)),
            ("https://db.internal/c", Err(LocalName)),
            ("https://metadata.google.internal/c", Err(LocalName)),
            ("https://nas.home.arpa/c", Err(LocalName)),
            ("https://home.arpa/c", Err(LocalName)),
            ("https://localhost.localdomain/c", Err(LocalName)),
            ("https://intranet/c", Err(LocalName)),
            ("https://metadata/c", Err(LocalName)),
        ];
        for (raw, expected) in cases {
            assert_eq!(check_str(raw, FetchPolicy::PRODUCTION), expected, "{raw}");
        }
    }

    #[test]
    fn development_policy_opens_loopback_only() {
        use TargetError::*;
        let cases = [
            ("http://127.0.0.1:8787/client.json", Ok(())),
            ("https://127.0.0.1:8787/client.json", Ok(())),
            ("http://127.0.0.2/c", Ok(())),
            ("http://0x7f.1/c", Ok(())),
            ("http://[::1]:3000/c", Ok(())),
            ("http://localhost:3000/c", Ok(())),
            ("https://localhost/c", Ok(())),
            ("https://client.example.com/c", Ok(())),
            // Still closed.
            ("http://user:pw@127.0.0.1/c", Err(Credentials)),
            ("http://client.example.com/c", Err(Scheme)),
            ("http://10.0.0.1/c", Err(Scheme)),
            ("https://10.0.0.1/c", Err(PrivateAddress)),
            ("https://192.168.1.1/c", Err(PrivateAddress)),
            ("https://169.254.169.254/c", Err(PrivateAddress)),
            ("https://[::ffff:127.0.0.1]/c", Err(PrivateAddress)),
            ("https://[fe80::1]/c", Err(PrivateAddress)),
            ("https://app.localhost/c", Err(LocalName)),
            ("https://printer.local/c", Err(LocalName)),
            ("file:///etc/passwd", Err(Scheme)),
        ];
        for (raw, expected) in cases {
            assert_eq!(check_str(raw, FetchPolicy::DEVELOPMENT), expected, "{raw}");
        }
    }

    #[test]
    fn default_policy_is_production() {
        assert_eq!(FetchPolicy::default(), FetchPolicy::PRODUCTION);
    }

    #[test]
    fn every_error_has_a_description() {
        use TargetError::*;
        for e in [Scheme, Credentials, NoHost, PrivateAddress, LocalName] {
            assert!(!e.describe().is_empty());
        }
    }
}
