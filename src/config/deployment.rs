//! The deployment's settings, derived once per isolate (issue 12: nothing
//! derived per request that could be derived once).
//!
//! Deriving them costs HKDF and HMAC key schedules, list and URL parsing.
//! An isolate serves many requests under one set of vars and secrets (a
//! changed secret means a new deployment and so new isolates), but this
//! module does not rely on that: every request reads the raw values,
//! hashes them, and reuses the derived settings only when the hash is the
//! one they were derived from. The Workers glue skips even the reads when
//! it is handed the very same `env` object again (`platform`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::mcp::{self, McpSettings};
use super::names;
use super::oauth::OAuthSettings;
use super::source::Source;
use crate::secret::PlausibleKey;

/// Every variable or secret the settings read. A test checks that the
/// loaders read nothing else: a name missing here would read as unset.
const INPUTS: &[&str] = &[
    names::PLAUSIBLE_API_KEY,
    names::PLAUSIBLE_BASE_URL,
    names::PLAUSIBLE_DEFAULT_SITE_ID,
    names::PLAUSIBLE_SITES,
    names::PLAUSIBLE_CACHE_TTL,
    names::MCP_ALLOWED_HOSTNAMES,
    names::MCP_ALLOWED_ORIGIN_HOSTNAMES,
    names::ALLOWED_EMAIL_DOMAIN,
    names::ACCESS_ISSUER,
    names::ACCESS_CLIENT_ID,
    names::ACCESS_CLIENT_SECRET,
    names::CF_ACCESS_TEAM_DOMAIN,
    names::CF_ACCESS_AUD,
    names::COOKIE_SECRET,
    names::USER_KEY_SECRET,
    names::ACCESS_TOKEN_TTL,
    names::REFRESH_TOKEN_TTL,
    names::AUTHORIZATION_CODE_TTL,
    names::TOKEN_CACHE_SECONDS,
    names::TOKENS_NOT_BEFORE,
    names::COOKIE_SECRET_PREVIOUS,
    names::CONSENT_TTL_DAYS,
    names::BYOK_REDIRECT_HOSTS,
    names::ADMIN_EMAILS,
    names::DEV_ALLOW_LOOPBACK,
    names::AUDIT_LOG_EMAILS,
    names::AUDIT_IP_FULL,
    #[cfg(feature = "test-hooks")]
    names::TEST_IDENTITY_HOOK,
    #[cfg(feature = "test-hooks")]
    names::TEST_GRANT_LAYOUT,
    #[cfg(feature = "test-hooks")]
    names::TEST_RATE_LIMITS_OFF,
];

/// Every variable or secret the settings read (the README test checks
/// each is documented).
#[cfg(test)]
pub fn inputs() -> &'static [&'static str] {
    INPUTS
}

/// Everything the request handlers read from configuration.
pub struct Deployment {
    pub oauth: OAuthSettings,
    pub mcp: McpSettings,
    /// `PLAUSIBLE_API_KEY`, the key `/internal` queries with.
    pub shared_key: Option<PlausibleKey>,
    /// The test build's `TEST_RATE_LIMITS_OFF` (tiers switched off by
    /// name); always `None` in the release build, which never reads it.
    pub rate_limits_off: Option<String>,
    /// SHA-256 of the raw inputs these were derived from.
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The fingerprint is a hash over the secrets: left out.
        f.debug_struct("Deployment")
            .field("oauth", &self.oauth)
            .field("mcp", &self.mcp)
            .field("shared_key", &self.shared_key)
            .finish_non_exhaustive()
    }
}

/// The raw inputs of one request, read once each.
struct Snapshot(Vec<(&'static str, Option<String>)>);

impl Snapshot {
    fn read(source: &dyn Source) -> Self {
        Self(
            INPUTS
                .iter()
                .map(|&name| (name, source.get(name)))
                .collect(),
        )
    }

    /// Length-prefixed, so no two different snapshots hash alike by
    /// shifting bytes from one value into the next.
    fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for (name, value) in &self.0 {
            h.update(name.as_bytes());
            match value {
                None => h.update([0]),
                Some(v) => {
                    h.update([1]);
                    h.update((v.len() as u64).to_le_bytes());
                    h.update(v.as_bytes());
                }
            }
        }
        h.finalize().into()
    }
}

impl Source for Snapshot {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.clone())
    }
}

impl Deployment {
    /// Derives every setting from `source` (no caching: see [`current`]).
    #[cfg(any(test, fuzzing))]
    pub fn load(source: &dyn Source) -> Self {
        let snapshot = Snapshot::read(source);
        let fingerprint = snapshot.fingerprint();
        Self::derive(&snapshot, fingerprint)
    }

    /// `/internal`'s tool context: the shared key with `PLAUSIBLE_SITES`,
    /// or `None` when either is missing or misconfigured (a page that only
    /// lists sites goes on without them; `/internal` itself names the
    /// variable).
    pub fn shared_tool_context(&self) -> Option<crate::plausible::context::ToolContext> {
        let key = self.shared_key.clone()?;
        self.mcp
            .tool_context(key)
            .and_then(|ctx| self.mcp.with_configured_sites(ctx))
            .ok()
    }

    fn derive(snapshot: &Snapshot, fingerprint: [u8; 32]) -> Self {
        Self {
            oauth: OAuthSettings::load(snapshot),
            mcp: McpSettings::load(snapshot),
            shared_key: mcp::shared_key(snapshot),
            rate_limits_off: rate_limits_off(snapshot),
            fingerprint,
        }
    }
}

fn rate_limits_off(source: &dyn Source) -> Option<String> {
    #[cfg(feature = "test-hooks")]
    {
        source.get(names::TEST_RATE_LIMITS_OFF)
    }
    #[cfg(not(feature = "test-hooks"))]
    {
        let _ = source;
        None
    }
}

thread_local! {
    /// This isolate's settings (one thread per isolate).
    static CURRENT: RefCell<Option<Rc<Deployment>>> = const { RefCell::new(None) };
    static DERIVATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The settings for `source`'s current values: derived on the first
/// request of an isolate, and again only if the values ever differ.
/// (Natively only tests call it: the Workers glue is its root.)
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn current(source: &dyn Source) -> Rc<Deployment> {
    let snapshot = Snapshot::read(source);
    let fingerprint = snapshot.fingerprint();
    let cached = CURRENT.with_borrow(|c| {
        c.as_ref()
            .filter(|d| d.fingerprint == fingerprint)
            .map(Rc::clone)
    });
    if let Some(deployment) = cached {
        return deployment;
    }
    let deployment = Rc::new(Deployment::derive(&snapshot, fingerprint));
    DERIVATIONS.set(DERIVATIONS.get().saturating_add(1));
    CURRENT.set(Some(Rc::clone(&deployment)));
    deployment
}

/// How many times this thread derived settings (tests: once per change).
#[cfg(test)]
pub fn derivations() -> u64 {
    DERIVATIONS.get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    /// Records every name asked for, answering `value` to each.
    struct Recording(RefCell<BTreeSet<String>>, Option<String>);

    impl Source for Recording {
        fn get(&self, name: &str) -> Option<String> {
            self.0.borrow_mut().insert(name.to_owned());
            self.1.clone()
        }
    }

    #[test]
    fn the_inputs_are_every_name_the_loaders_read() {
        // Unset, and set to something long enough to be a secret (some
        // names are read only once another one derived a key).
        let mut read = BTreeSet::new();
        for value in [None, Some("v".repeat(40))] {
            let recording = Recording(RefCell::new(BTreeSet::new()), value);
            let _ = OAuthSettings::load(&recording);
            let _ = McpSettings::load(&recording);
            let _ = mcp::shared_key(&recording);
            let _ = rate_limits_off(&recording);
            read.extend(recording.0.into_inner());
        }
        let listed: BTreeSet<String> = INPUTS.iter().map(|n| (*n).to_owned()).collect();
        assert_eq!(read, listed);
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn settings_are_derived_once_and_again_when_a_value_changes() {
        let secret = "a-cookie-secret-of-at-least-32-bytes-0123";
        let a = vars(&[(names::COOKIE_SECRET, secret)]);
        let before = derivations();
        let first = current(&a);
        let second = current(&a);
        assert!(Rc::ptr_eq(&first, &second));
        assert_eq!(derivations(), before + 1);

        // A rotated secret is never served from the old derivation.
        let b = vars(&[(names::COOKIE_SECRET, &format!("{secret}4"))]);
        let third = current(&b);
        assert!(!Rc::ptr_eq(&first, &third));
        assert_eq!(derivations(), before + 2);
        let kid = |d: &Deployment| d.oauth.keys.as_ref().map(|k| k.sign("t", b"x"));
        assert_ne!(kid(&first), kid(&third));
        assert_eq!(kid(&third), kid(&Deployment::load(&b)));
    }

    #[test]
    fn values_cannot_shift_between_inputs() {
        let a = vars(&[(names::ACCESS_CLIENT_ID, "ab"), (names::ACCESS_ISSUER, "c")]);
        let b = vars(&[(names::ACCESS_CLIENT_ID, "a"), (names::ACCESS_ISSUER, "bc")]);
        assert_ne!(
            Snapshot::read(&a).fingerprint(),
            Snapshot::read(&b).fingerprint()
        );
        let unset = vars(&[]);
        let empty = vars(&[(names::ACCESS_ISSUER, "")]);
        assert_ne!(
            Snapshot::read(&unset).fingerprint(),
            Snapshot::read(&empty).fingerprint()
        );
    }
}
