//! Deployment settings of the authorization server, read per request.

use std::time::Duration;

use super::target::FetchPolicy;
use crate::config::{Source, names, non_empty, split_list};
use crate::crypto::Keys;
use crate::http::Request;
use crate::oidc::access::AccessApp;
use crate::oidc::login::Upstream;
use crate::oidc::provider::UpstreamClient;
use crate::secret::{ClientSecret, ServerSecret};

/// Token lifetimes. Each is configurable within bounds that keep it safe:
/// an operator can shorten them, never make them dangerous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// `ACCESS_TOKEN_TTL`, 5 min to 1 h, default 1 h.
    pub access: Duration,
    /// `REFRESH_TOKEN_TTL`, 1 h to 7 d, default 24 h; each rotation starts
    /// a new period.
    pub refresh: Duration,
    /// `AUTHORIZATION_CODE_TTL`, 1 to 10 min (RFC 6749 §4.1.2), default 10 min.
    pub code: Duration,
    /// A grant ends 7 days after login whatever the refreshes: people are
    /// sent back through the email-domain gate weekly, so offboarding
    /// takes effect without anyone revoking anything.
    pub grant: Duration,
}

fn bounded(source: &dyn Source, name: &str, default: u64, min: u64, max: u64) -> Duration {
    let secs = non_empty(source, name)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(default)
        .clamp(min, max);
    Duration::from_secs(secs)
}

impl Lifetimes {
    pub fn load(source: &dyn Source) -> Self {
        Self {
            access: bounded(source, "ACCESS_TOKEN_TTL", 3600, 300, 3600),
            refresh: bounded(source, "REFRESH_TOKEN_TTL", 86400, 3600, 7 * 86400),
            code: bounded(source, "AUTHORIZATION_CODE_TTL", 600, 60, 600),
            grant: Duration::from_secs(7 * 86400),
        }
    }
}

/// Everything the authorization server endpoints need.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// The issuer: this deployment's origin, no trailing slash (RFC 8414 §2).
    pub issuer: String,
    /// The protected resource's canonical URI (RFC 8707 §2, RFC 9728 §2).
    pub resource: String,
    pub lifetimes: Lifetimes,
    pub fetch_policy: FetchPolicy,
    /// `None` when `COOKIE_SECRET` is missing or shorter than 32 bytes.
    pub keys: Option<Keys>,
    /// `ALLOWED_EMAIL_DOMAIN`, lowercased, without a leading `@`.
    pub allowed_email_domains: Vec<String>,
    /// The test-only identity hook (see `routes::oauth`).
    pub test_identity_hook: bool,
    /// The upstream OpenID provider, when all of `ACCESS_ISSUER`,
    /// `ACCESS_CLIENT_ID` and `ACCESS_CLIENT_SECRET` are set.
    pub upstream: Option<Upstream>,
    /// Cloudflare Access in front of `/internal`, when both
    /// `CF_ACCESS_TEAM_DOMAIN` and `CF_ACCESS_AUD` are set.
    pub access_app: Option<AccessApp>,
}

/// Whether the request reached us on a loopback host: true under
/// `wrangler dev` and never for a deployed worker, whose requests are
/// routed by public hostname.
pub fn is_local(request: &Request) -> bool {
    super::types::is_loopback(&request.url)
}

impl OAuthSettings {
    pub fn load(source: &dyn Source, request: &Request) -> Self {
        let issuer = request.origin();
        let local = is_local(request);
        let flag =
            |name: &str| non_empty(source, name).is_some_and(|v| v == "true" || v == "enabled");
        Self {
            resource: format!("{issuer}/internal"),
            issuer,
            lifetimes: Lifetimes::load(source),
            fetch_policy: FetchPolicy {
                allow_loopback_http: local && flag(names::DEV_ALLOW_LOOPBACK),
            },
            keys: non_empty(source, names::COOKIE_SECRET)
                .and_then(|s| Keys::derive(&ServerSecret::new(s)).ok()),
            allowed_email_domains: split_list(source.get(names::ALLOWED_EMAIL_DOMAIN))
                .into_iter()
                .map(|d| d.trim_start_matches('@').to_owned())
                .filter(|d| !d.is_empty())
                .collect(),
            test_identity_hook: local && flag(names::TEST_IDENTITY_HOOK),
            upstream: match (
                non_empty(source, names::ACCESS_ISSUER),
                non_empty(source, names::ACCESS_CLIENT_ID),
                non_empty(source, names::ACCESS_CLIENT_SECRET),
            ) {
                (Some(issuer), Some(client_id), Some(secret)) => Some(Upstream {
                    issuer: issuer.trim_end_matches('/').to_owned(),
                    client: UpstreamClient {
                        client_id,
                        client_secret: ClientSecret::new(secret),
                    },
                }),
                _ => None,
            },
            access_app: match (
                non_empty(source, names::CF_ACCESS_TEAM_DOMAIN),
                non_empty(source, names::CF_ACCESS_AUD),
            ) {
                (Some(team), Some(aud)) => Some(AccessApp {
                    team_domain: team.trim_end_matches('/').to_owned(),
                    aud,
                }),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use std::collections::HashMap;

    fn source(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn request(url: &str) -> Request {
        Request::new(Method::Get, url::Url::parse(url).unwrap())
    }

    #[test]
    fn lifetimes_are_clamped_into_safe_bounds() {
        let l = Lifetimes::load(&source(&[
            ("ACCESS_TOKEN_TTL", "999999"),
            ("REFRESH_TOKEN_TTL", "1"),
            ("AUTHORIZATION_CODE_TTL", "x"),
        ]));
        assert_eq!(l.access, Duration::from_secs(3600));
        assert_eq!(l.refresh, Duration::from_secs(3600));
        assert_eq!(l.code, Duration::from_secs(600));
        let l = Lifetimes::load(&source(&[("ACCESS_TOKEN_TTL", "900")]));
        assert_eq!(l.access, Duration::from_secs(900));
    }

    #[test]
    fn development_switches_work_only_on_loopback() {
        let on = source(&[
            (names::TEST_IDENTITY_HOOK, "enabled"),
            (names::DEV_ALLOW_LOOPBACK, "true"),
        ]);
        let local = OAuthSettings::load(&on, &request("http://127.0.0.1:8787/authorize"));
        assert!(local.test_identity_hook && local.fetch_policy.allow_loopback_http);
        let deployed = OAuthSettings::load(&on, &request("https://mcp.example.com/authorize"));
        assert!(!deployed.test_identity_hook && !deployed.fetch_policy.allow_loopback_http);
        let off = OAuthSettings::load(&source(&[]), &request("http://127.0.0.1:8787/authorize"));
        assert!(!off.test_identity_hook);
    }

    #[test]
    fn issuer_and_resource_come_from_the_origin() {
        let s = OAuthSettings::load(
            &source(&[("ALLOWED_EMAIL_DOMAIN", " @Example.com, b.io ")]),
            &request("https://mcp.example.com/token?x=1"),
        );
        assert_eq!(s.issuer, "https://mcp.example.com");
        assert_eq!(s.resource, "https://mcp.example.com/internal");
        assert_eq!(s.allowed_email_domains, vec!["example.com", "b.io"]);
        assert!(s.keys.is_none());
    }
}
