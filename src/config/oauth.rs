//! The authorization server's deployment settings: token lifetimes, the
//! server key, the email gate, the upstream provider, Cloudflare Access,
//! and the development switches.

use std::time::Duration;

use super::names;
use super::source::{Source, bounded_secs, flag, non_empty, split_list};
use crate::crypto::{Keyring, Keys, UserKeys};
use crate::oidc::access::AccessApp;
use crate::oidc::provider::{Upstream, UpstreamClient};
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
    /// `TOKEN_CACHE_SECONDS`, 0 to 60 s, default 60: how long `/internal`
    /// may answer from the isolate's memory of a verified access-token
    /// record (`oauth::token_cache`). Never more than 60 s, Workers KV's
    /// documented propagation window: a token revoked in another location
    /// is refused here no later than KV itself would refuse it. 0 turns
    /// the memory off (the benchmark's uncached run).
    pub token_cache: Duration,
}

impl Lifetimes {
    pub fn load(source: &dyn Source) -> Self {
        Self {
            access: bounded_secs(source, names::ACCESS_TOKEN_TTL, 3600, 300, 3600),
            refresh: bounded_secs(source, names::REFRESH_TOKEN_TTL, 86400, 3600, 7 * 86400),
            code: bounded_secs(source, names::AUTHORIZATION_CODE_TTL, 600, 60, 600),
            grant: Duration::from_secs(7 * 86400),
            token_cache: bounded_secs(source, names::TOKEN_CACHE_SECONDS, 60, 0, 60),
        }
    }
}

/// Everything the authorization server reads from configuration.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    pub lifetimes: Lifetimes,
    /// `None` when `COOKIE_SECRET` is missing or shorter than 32 bytes.
    pub keys: Option<Keyring>,
    /// `None` when `USER_KEY_SECRET` is missing or shorter than 32 bytes:
    /// then nobody new can sign in and new-format tokens are refused,
    /// while tokens of the previous release keep working.
    pub user_keys: Option<UserKeys>,
    /// `ALLOWED_EMAIL_DOMAIN`, lowercased, without a leading `@`.
    pub allowed_email_domains: Vec<String>,
    /// The upstream OpenID provider, when all of `ACCESS_ISSUER`,
    /// `ACCESS_CLIENT_ID` and `ACCESS_CLIENT_SECRET` are set.
    pub upstream: Option<Upstream>,
    /// Cloudflare Access in front of `/internal`, when both
    /// `CF_ACCESS_TEAM_DOMAIN` and `CF_ACCESS_AUD` are set.
    pub access_app: Option<AccessApp>,
    /// `DEV_ALLOW_LOOPBACK` as configured; it takes effect only for a
    /// request to a loopback host (see `oauth::server`).
    pub dev_allow_loopback: bool,
    /// `TEST_IDENTITY_HOOK` as configured; likewise loopback only. The
    /// test build only.
    #[cfg(feature = "test-hooks")]
    pub test_identity_hook: bool,
}

/// The test build's grant layout knob (`TEST_GRANT_LAYOUT=per-client`).
#[cfg(feature = "test-hooks")]
fn test_layout(source: &dyn Source, mut keys: UserKeys) -> UserKeys {
    keys.per_client_routing =
        non_empty(source, names::TEST_GRANT_LAYOUT).is_some_and(|v| v == "per-client");
    keys
}

#[cfg(not(feature = "test-hooks"))]
fn test_layout(_: &dyn Source, keys: UserKeys) -> UserKeys {
    keys
}

impl OAuthSettings {
    pub fn load(source: &dyn Source) -> Self {
        Self {
            lifetimes: Lifetimes::load(source),
            keys: non_empty(source, names::COOKIE_SECRET)
                .and_then(|s| Keys::derive(&ServerSecret::new(s)).ok())
                .map(Keyring::new),
            user_keys: non_empty(source, names::USER_KEY_SECRET)
                .and_then(|s| UserKeys::derive(&ServerSecret::new(s)).ok())
                .map(|keys| test_layout(source, keys)),
            allowed_email_domains: split_list(source.get(names::ALLOWED_EMAIL_DOMAIN))
                .into_iter()
                .map(|d| d.trim_start_matches('@').to_owned())
                .filter(|d| !d.is_empty())
                .collect(),
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
            dev_allow_loopback: flag(source, names::DEV_ALLOW_LOOPBACK),
            #[cfg(feature = "test-hooks")]
            test_identity_hook: flag(source, names::TEST_IDENTITY_HOOK),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::source;

    #[test]
    fn lifetimes_are_clamped_into_safe_bounds() {
        let l = Lifetimes::load(&source(&[
            (names::ACCESS_TOKEN_TTL, "999999"),
            (names::REFRESH_TOKEN_TTL, "1"),
            (names::AUTHORIZATION_CODE_TTL, "x"),
        ]));
        assert_eq!(l.access, Duration::from_secs(3600));
        assert_eq!(l.refresh, Duration::from_secs(3600));
        assert_eq!(l.code, Duration::from_secs(600));
        let l = Lifetimes::load(&source(&[(names::ACCESS_TOKEN_TTL, "900")]));
        assert_eq!(l.access, Duration::from_secs(900));
        assert_eq!(l.token_cache, Duration::from_secs(60));
        for (raw, secs) in [("0", 0), ("15", 15), ("3600", 60), ("x", 60)] {
            let l = Lifetimes::load(&source(&[(names::TOKEN_CACHE_SECONDS, raw)]));
            assert_eq!(l.token_cache, Duration::from_secs(secs), "{raw}");
        }
    }

    #[test]
    fn email_domains_are_normalised_and_keys_need_a_secret() {
        let s = OAuthSettings::load(&source(&[(
            names::ALLOWED_EMAIL_DOMAIN,
            " @Example.com, b.io ",
        )]));
        assert_eq!(s.allowed_email_domains, vec!["example.com", "b.io"]);
        assert!(s.keys.is_none() && s.user_keys.is_none());
    }
}
