//! Abuse limits: who is counted, under which key, in which tier.
//!
//! The counting itself is the Workers Rate Limiting binding's (one
//! binding per tier, limits and periods in `wrangler.toml`), reached
//! through the [`RateLimits`] port. This module decides the keys: the
//! client address (`CF-Connecting-IP`, an IPv6 address as its /64), a
//! hash of a credential, or the pair a verified refresh token routes to.
#![allow(async_fn_in_trait)]

use std::net::IpAddr;

use serde_json::json;

use crate::crypto;
use crate::http::{Headers, Response};
use crate::{mcp, pages};

/// Who reads a route's refusals, and so in what form they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// MCP clients: JSON-RPC errors.
    Mcp,
    /// OAuth clients and everything else machine-facing: RFC 6749 §5.2
    /// style JSON errors.
    Api,
    /// A person's browser (the sign-in flow): an HTML page.
    Browser,
}

/// The largest body an OAuth or other non-MCP route reads. Registration
/// metadata is capped lower (10 KiB, refused with its own error); forms
/// at `/token`, `/revoke` and `/consent` are a few hundred bytes.
pub const MAX_FORM_BODY_BYTES: usize = 32 * 1024;

/// 413: a body past its route's ceiling, in its surface's form.
pub fn too_large(surface: Surface) -> Response {
    match surface {
        Surface::Mcp => mcp::body_too_large(),
        Surface::Api => Response::json(
            413,
            &json!({
                "error": "invalid_request",
                "error_description": format!("The request body exceeds {MAX_FORM_BODY_BYTES} bytes."),
            }),
        ),
        Surface::Browser => pages::error_page(
            413,
            "Request too large",
            "The form sent more data than a sign-in step ever needs.",
            "invalid_request",
        ),
    }
}

/// 429 with `Retry-After` (RFC 6585 §4; RFC 9110 §10.2.3) in the
/// surface's form. OAuth routes answer `temporarily_unavailable`, the
/// registered OAuth code for a transient refusal (RFC 6749 §4.1.2.1), so
/// a client that knows only RFC codes retries later rather than starting
/// over; 429 and `Retry-After` say why and when.
pub fn limited(surface: Surface, retry_after_secs: u64) -> Response {
    let response = match surface {
        Surface::Mcp => return mcp::rate_limited(retry_after_secs),
        Surface::Api => Response::json(
            429,
            &json!({
                "error": "temporarily_unavailable",
                "error_description": format!("Too many requests: rate limit exceeded. Retry after {retry_after_secs} seconds."),
            }),
        ),
        Surface::Browser => pages::error_page(
            429,
            "Too many attempts",
            &format!(
                "Too many sign-in attempts came from your network. Wait {retry_after_secs} seconds, then try connecting again."
            ),
            "temporarily_unavailable",
        ),
    };
    response.with_header("retry-after", retry_after_secs.to_string())
}

/// One rate-limit tier: a binding of its own, so each has its own limit
/// and period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Failed attempts per address at `/token`, `/revoke`, `/register`
    /// and `/consent` (invalid client, grant or request; refused
    /// registrations; bad state or consent posts).
    Failures,
    /// Registrations per address (RFC 7591 §3 is open to anyone).
    Registrations,
    /// Refreshes per grant (a client refreshes about once an hour).
    Refreshes,
    /// MCP requests per credential (a hash of the bearer value).
    McpCredential,
    /// MCP requests per address.
    McpAddress,
    /// Posts of the `/mcp` key form per address (issue 15).
    KeyForm,
}

impl Tier {
    #[cfg(test)]
    pub const ALL: [Tier; 6] = [
        Tier::Failures,
        Tier::Registrations,
        Tier::Refreshes,
        Tier::McpCredential,
        Tier::McpAddress,
        Tier::KeyForm,
    ];

    /// The binding's name in `wrangler.toml`.
    #[cfg_attr(not(any(test, target_arch = "wasm32")), allow(dead_code))]
    pub fn binding(self) -> &'static str {
        match self {
            Tier::Failures => "LIMIT_FAILURES",
            Tier::Registrations => "LIMIT_REGISTRATIONS",
            Tier::Refreshes => "LIMIT_REFRESHES",
            Tier::McpCredential => "LIMIT_MCP_CREDENTIAL",
            Tier::McpAddress => "LIMIT_MCP_ADDRESS",
            Tier::KeyForm => "LIMIT_KEY_FORM",
        }
    }

    /// The binding's period (`simple.period` in `wrangler.toml`): how long
    /// a limited caller waits at most, so the `Retry-After` we send.
    pub fn period_secs(self) -> u64 {
        match self {
            Tier::Failures | Tier::Registrations | Tier::Refreshes => 60,
            Tier::McpCredential | Tier::McpAddress | Tier::KeyForm => 60,
        }
    }

    /// The name the test build's `TEST_RATE_LIMITS_OFF` uses.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub fn name(self) -> &'static str {
        match self {
            Tier::Failures => "failures",
            Tier::Registrations => "registrations",
            Tier::Refreshes => "refreshes",
            Tier::McpCredential => "mcp-credential",
            Tier::McpAddress => "mcp-address",
            Tier::KeyForm => "key-form",
        }
    }
}

/// The rate limiter (the Workers Rate Limiting binding). `allow` counts
/// one request under `key` and says whether it is within the limit. A
/// binding that is missing or fails answers `true`: limits protect the
/// service, and an outage of the limiter must not become an outage of the
/// service (the glue logs it).
pub trait RateLimits {
    async fn allow(&self, tier: Tier, key: &str) -> bool;
}

/// Where a request came from, as a rate-limit key.
///
/// Only `CF-Connecting-IP` is read: Cloudflare sets it on every request
/// and overwrites any value the client sent. `X-Forwarded-For` and
/// `X-Real-IP` are the client's to write and are never read. Locally
/// (wrangler dev, Miniflare) the header is set to the socket's address
/// when the client sent none. Absent or unparsable, every such request
/// shares one bucket, `unknown`: strict, never spoofable into a fresh one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddress(String);

impl ClientAddress {
    pub fn of(headers: &Headers) -> Self {
        let parsed = headers
            .get("cf-connecting-ip")
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        Self(match parsed {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                // One subscriber gets a whole /64 (RFC 6177 §2): counting
                // single addresses would let it rotate through 2^64.
                None => {
                    let s = v6.segments();
                    let [a, b, c, d, ..] = s;
                    format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
                }
            },
            None => "unknown".to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key of a bearer credential: a hash, so no limiter ever holds the
/// secret (a Plausible key, one of our access tokens).
pub fn credential_key(credential: &str) -> String {
    crypto::short_hash(credential)
}

/// Whether a tier is switched off by the test build's
/// `TEST_RATE_LIMITS_OFF` (a comma-separated list of tier names). The
/// release build has no such switch: this function answers `false`.
pub fn switched_off(tier: Tier, setting: Option<&str>) -> bool {
    #[cfg(feature = "test-hooks")]
    {
        setting.is_some_and(|list| list.split(',').any(|n| n.trim() == tier.name()))
    }
    #[cfg(not(feature = "test-hooks"))]
    {
        let _ = (tier, setting);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(value: Option<&str>) -> String {
        let mut h = Headers::new();
        if let Some(v) = value {
            h.set("cf-connecting-ip", v);
        }
        h.set("x-forwarded-for", "203.0.113.99");
        ClientAddress::of(&h).as_str().to_owned()
    }

    #[test]
    fn client_addresses() {
        let cases = [
            (Some("198.51.100.7"), "198.51.100.7"),
            (Some(" 198.51.100.7 "), "198.51.100.7"),
            (Some("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64"),
            (Some("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64"),
            (Some("::ffff:198.51.100.7"), "198.51.100.7"),
            (Some("::1"), "0:0:0:0::/64"),
            (Some("not an address"), "unknown"),
            (Some("198.51.100.7, 10.0.0.1"), "unknown"),
            // X-Forwarded-For is the client's to write: never read.
            (None, "unknown"),
        ];
        for (header, expected) in cases {
            assert_eq!(from(header), expected, "{header:?}");
        }
    }

    #[test]
    fn credentials_are_hashed() {
        let key = credential_key("plausible-secret-key");
        assert!(!key.contains("secret"));
        assert_eq!(key, credential_key("plausible-secret-key"));
        assert_ne!(key, credential_key("plausible-secret-kez"));
    }

    #[test]
    fn every_tier_has_its_own_binding_and_a_supported_period() {
        let mut names: Vec<_> = Tier::ALL.iter().map(|t| t.binding()).collect();
        names.dedup();
        assert_eq!(names.len(), Tier::ALL.len());
        for tier in Tier::ALL {
            assert!([10, 60].contains(&tier.period_secs()), "{tier:?}");
        }
    }

    #[test]
    fn wrangler_toml_declares_each_tier_with_its_period() {
        let toml = include_str!("../wrangler.toml");
        for tier in Tier::ALL {
            let at = toml
                .find(&format!("name = \"{}\"", tier.binding()))
                .unwrap_or_else(|| panic!("{tier:?} missing from wrangler.toml"));
            let rest = &toml[at..];
            let block = &rest[..rest.find("[[").unwrap_or(rest.len())];
            assert!(
                block.contains(&format!("period = {}", tier.period_secs())),
                "{tier:?}: {block}"
            );
        }
    }

    #[test]
    fn only_the_test_build_can_switch_a_tier_off() {
        let off = switched_off(Tier::Refreshes, Some("refreshes, mcp-credential"));
        assert_eq!(off, cfg!(feature = "test-hooks"));
        assert!(!switched_off(Tier::Failures, Some("refreshes")));
        assert!(!switched_off(Tier::Refreshes, None));
    }
}
