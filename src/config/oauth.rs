//! The authorization server's deployment settings: token lifetimes, the
//! server key, the email gate, the upstream provider, Cloudflare Access,
//! and the development switches.

use std::time::Duration;

use super::names;
use super::source::{Source, bounded_secs, flag, non_empty, split_list};
use crate::audit::AuditSettings;
use crate::crypto::{Keyring, Keys, UserKeys};
use crate::oauth::connections::admins::Admins;
use crate::oidc::access::AccessApp;
use crate::oidc::provider::{Upstream, UpstreamClient};
use crate::plausible::client::PlausibleBaseUrl;
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
    /// `CONSENT_TTL_DAYS`, 1 to 365 days, default 90: after it the
    /// consent page is shown again (issue 11).
    pub consent: Duration,
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
            consent: Duration::from_secs(
                bounded_secs(source, names::CONSENT_TTL_DAYS, 90, 1, 365)
                    .as_secs()
                    .saturating_mul(86400),
            ),
            grant: Duration::from_secs(7 * 86400),
            token_cache: bounded_secs(source, names::TOKEN_CACHE_SECONDS, 60, 0, 60),
        }
    }
}

/// `TOKENS_NOT_BEFORE`, the kill switch: grants created before this
/// time (an RFC 3339 date-time, RFC 3339 §5.6) are refused everywhere
/// their tokens are checked, with no storage sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotBefore {
    Unset,
    At(u64),
    /// Set but not an RFC 3339 time (or before 1970).
    Unparseable,
}

/// The kill switch is misconfigured: a value in the future or one that
/// does not parse. Endpoints answer 500 naming the variable (never its
/// value): a typo must not lock everyone out, nor silently do nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotBeforeMisconfigured;

impl NotBeforeMisconfigured {
    pub fn description(self) -> String {
        format!(
            "the server is misconfigured: {} is not an RFC 3339 time in the past",
            names::TOKENS_NOT_BEFORE
        )
    }
}

impl NotBefore {
    pub fn load(source: &dyn Source) -> Self {
        let Some(raw) = non_empty(source, names::TOKENS_NOT_BEFORE) else {
            return NotBefore::Unset;
        };
        chrono::DateTime::parse_from_rfc3339(raw.trim())
            .ok()
            .and_then(|t| u64::try_from(t.timestamp()).ok())
            .map_or(NotBefore::Unparseable, NotBefore::At)
    }

    /// The time in force at `now` (seconds), if any.
    pub fn in_force(self, now: u64) -> Result<Option<u64>, NotBeforeMisconfigured> {
        match self {
            NotBefore::Unset => Ok(None),
            NotBefore::At(at) if at <= now => Ok(Some(at)),
            NotBefore::At(_) | NotBefore::Unparseable => Err(NotBeforeMisconfigured),
        }
    }

    /// Whether a token of a grant created at `created` (absent: before
    /// issue 11, so older than any time) is refused.
    pub fn refuses(at: Option<u64>, created: Option<u64>) -> bool {
        at.is_some_and(|at| created.is_none_or(|c| c < at))
    }
}

/// The redirect hosts offered the `/mcp` key form when
/// `BYOK_REDIRECT_HOSTS` is unset: Claude.ai's and Claude's connectors.
pub const DEFAULT_BYOK_REDIRECT_HOSTS: [&str; 2] = ["claude.ai", "claude.com"];

/// Everything the authorization server reads from configuration.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// `MCP_ALLOWED_HOSTNAMES`: every hostname this server answers on.
    pub allowed_hosts: Vec<String>,
    pub lifetimes: Lifetimes,
    /// `None` when `COOKIE_SECRET` is missing or shorter than 32 bytes.
    pub keys: Option<Keyring>,
    /// `None` when `USER_KEY_SECRET` is missing or shorter than 32 bytes:
    /// then nobody new can sign in and new-format tokens are refused,
    /// while tokens of the previous release keep working.
    pub user_keys: Option<UserKeys>,
    /// `ALLOWED_EMAIL_DOMAIN`, lowercased, without a leading `@`.
    pub allowed_email_domains: Vec<String>,
    /// `TOKENS_NOT_BEFORE`.
    pub not_before: NotBefore,
    /// The upstream OpenID provider, when all of `ACCESS_ISSUER`,
    /// `ACCESS_CLIENT_ID` and `ACCESS_CLIENT_SECRET` are set.
    pub upstream: Option<Upstream>,
    /// Cloudflare Access in front of `/internal`, when both
    /// `CF_ACCESS_TEAM_DOMAIN` and `CF_ACCESS_AUD` are set.
    pub access_app: Option<AccessApp>,
    /// `ADMIN_EMAILS`: who administers the connections page.
    pub admins: Admins,
    /// `DEV_ALLOW_LOOPBACK` as configured; it takes effect only for a
    /// request to a loopback host (see `oauth::server`).
    pub dev_allow_loopback: bool,
    /// `BYOK_REDIRECT_HOSTS`: the redirect hosts of clients that are
    /// offered the `/mcp` key form (lower-case hostnames, exact match);
    /// loopback redirect hosts are always offered it.
    pub byok_redirect_hosts: Vec<String>,
    /// `PLAUSIBLE_BASE_URL` (default Plausible's), for the hourly check of
    /// a key grant's key at refresh; `None` when it is unusable (the MCP
    /// endpoints report that).
    pub plausible_base_url: Option<PlausibleBaseUrl>,
    /// `AUDIT_LOG_EMAILS`, `AUDIT_IP_FULL`.
    pub audit: AuditSettings,
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

/// `COOKIE_SECRET`, and `COOKIE_SECRET_PREVIOUS` beside it to open what
/// the previous secret made. A previous secret too weak to use is
/// ignored: it only ever widens what opens.
fn keyring(source: &dyn Source) -> Option<Keyring> {
    let keys =
        |name| non_empty(source, name).and_then(|s| Keys::derive(&ServerSecret::new(s)).ok());
    let ring = Keyring::new(keys(names::COOKIE_SECRET)?);
    Some(match keys(names::COOKIE_SECRET_PREVIOUS) {
        Some(previous) => ring.with_previous(previous),
        None => ring,
    })
}

impl OAuthSettings {
    pub fn load(source: &dyn Source) -> Self {
        Self {
            allowed_hosts: super::mcp::allowed_hosts(source),
            lifetimes: Lifetimes::load(source),
            keys: keyring(source),
            not_before: NotBefore::load(source),
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
            admins: Admins::parse(source.get(names::ADMIN_EMAILS).as_deref()),
            dev_allow_loopback: flag(source, names::DEV_ALLOW_LOOPBACK),
            // Unset: Claude's two web hosts. Set: exactly the list (an
            // operator who adds a host repeats the defaults they keep).
            plausible_base_url: PlausibleBaseUrl::parse(
                &non_empty(source, names::PLAUSIBLE_BASE_URL)
                    .unwrap_or_else(|| PlausibleBaseUrl::DEFAULT.to_owned()),
            )
            .ok(),
            byok_redirect_hosts: match source.get(names::BYOK_REDIRECT_HOSTS) {
                None => DEFAULT_BYOK_REDIRECT_HOSTS
                    .iter()
                    .map(|h| (*h).to_owned())
                    .collect(),
                raw @ Some(_) => split_list(raw),
            },
            audit: AuditSettings {
                log_emails: flag(source, names::AUDIT_LOG_EMAILS),
                full_ip: flag(source, names::AUDIT_IP_FULL),
            },
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

    #[test]
    fn the_kill_switch_parses_rfc_3339_and_refuses_the_future() {
        let load = |v: &str| NotBefore::load(&source(&[(names::TOKENS_NOT_BEFORE, v)]));
        assert_eq!(NotBefore::load(&source(&[])), NotBefore::Unset);
        assert_eq!(load("2026-03-15T12:00:00Z"), NotBefore::At(1_773_576_000));
        assert_eq!(
            load("2026-03-15T13:00:00+01:00"),
            NotBefore::At(1_773_576_000)
        );
        for bad in [
            "2026-03-15",
            "yesterday",
            "1969-12-31T23:59:59Z",
            "1773576000",
        ] {
            assert_eq!(load(bad), NotBefore::Unparseable, "{bad}");
        }
        let now = 1_773_576_000;
        assert_eq!(NotBefore::At(now).in_force(now), Ok(Some(now)));
        assert_eq!(
            NotBefore::At(now + 1).in_force(now),
            Err(NotBeforeMisconfigured)
        );
        assert_eq!(
            NotBefore::Unparseable.in_force(now),
            Err(NotBeforeMisconfigured)
        );
        assert_eq!(NotBefore::Unset.in_force(now), Ok(None));
        assert!(
            NotBeforeMisconfigured
                .description()
                .contains(names::TOKENS_NOT_BEFORE)
        );
        // Created before: refused; at or after: kept; unknown: older.
        assert!(NotBefore::refuses(Some(now), Some(now - 1)));
        assert!(!NotBefore::refuses(Some(now), Some(now)));
        assert!(NotBefore::refuses(Some(now), None));
        assert!(!NotBefore::refuses(None, None));
    }

    #[test]
    fn consents_last_ninety_days_unless_configured() {
        assert_eq!(
            Lifetimes::load(&source(&[])).consent,
            Duration::from_secs(90 * 86400)
        );
        let l = Lifetimes::load(&source(&[(names::CONSENT_TTL_DAYS, "7")]));
        assert_eq!(l.consent, Duration::from_secs(7 * 86400));
        let l = Lifetimes::load(&source(&[(names::CONSENT_TTL_DAYS, "0")]));
        assert_eq!(l.consent, Duration::from_secs(86400));
    }

    #[test]
    fn the_previous_cookie_secret_opens_but_never_seals() {
        let a = "A".repeat(32);
        let b = "B".repeat(32);
        let entropy = crate::testing::FakePlatform::new();
        let old = OAuthSettings::load(&source(&[(names::COOKIE_SECRET, &a)]))
            .keys
            .unwrap();
        let sealed = old.seal(&entropy, b"x", "aad").unwrap();
        let signed = old.sign("p", b"d");
        let rotated = OAuthSettings::load(&source(&[
            (names::COOKIE_SECRET, &b),
            (names::COOKIE_SECRET_PREVIOUS, &a),
        ]))
        .keys
        .unwrap();
        assert_eq!(rotated.open(&sealed, "aad").as_deref(), Some(&b"x"[..]));
        assert!(rotated.verify("p", b"d", &signed));
        // New values are the new secret's: the old one alone cannot open them.
        let fresh = rotated.seal(&entropy, b"y", "aad").unwrap();
        assert!(old.open(&fresh, "aad").is_none());
        assert!(!old.verify("p", b"d", &rotated.sign("p", b"d")));
        let without = OAuthSettings::load(&source(&[(names::COOKIE_SECRET, &b)]))
            .keys
            .unwrap();
        assert!(without.open(&sealed, "aad").is_none());
        assert!(!without.verify("p", b"d", &signed));
    }
}
