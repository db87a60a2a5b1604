//! What a client's ledger object stores, under which keys; and the
//! access-token record it writes to KV. The serde shapes are those of
//! layout v1 (`tests/fixtures/stored-v1/`): deployments hold them.

use serde::{Deserialize, Serialize};

use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::ids::{GrantId, LoginId, TicketId, TokenHash, UserKey};
use crate::oauth::types::{Audience, ClientId, CodeChallenge, RedirectUri, Resource, ScopeSet};
use crate::secret::{LoginNonce, PkceVerifier};

/// Who a grant is for: a stable key (a hash, never the email) and the
/// user's properties sealed under the server key (see `crypto::Keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub user_key: UserKey,
    pub sealed_props: String,
    /// Whom `sealed_props` is for, in the clear, so a resource refuses a
    /// grant of the other kind without opening them (issue 15, defence in
    /// depth beside the record's `resource`). Absent in records written
    /// before it: those are checked by `resource` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<SubjectKind>,
}

/// The kind of principal a grant is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A person the upstream provider signed in: `/internal` only.
    Person,
    /// Whoever holds a Plausible key: `/mcp` only.
    PlausibleKey,
}

impl SubjectKind {
    /// The one endpoint a grant of this kind may be for.
    pub fn audience(self) -> Audience {
        match self {
            SubjectKind::Person => Audience::Internal,
            SubjectKind::PlausibleKey => Audience::Mcp,
        }
    }
}

/// Which object a transition runs in, and so whose records it may touch.
// Built by the Durable Objects (wasm32 glue) and by native tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home<'a> {
    /// A client's legacy ledger: every record in it is this client's.
    Client(&'a ClientId),
    /// A (client, user) pair's grant object, reached by a routing id the
    /// caller chose: each record names its client, and only that client
    /// may use it.
    Pair,
}

impl Home<'_> {
    /// Whether `presented` (the authenticated client) may use a record
    /// that names `recorded` (absent in records of the previous release,
    /// all of which live in their client's own ledger).
    pub fn admits(self, presented: &ClientId, recorded: Option<&ClientId>) -> bool {
        match self {
            Home::Client(own) => presented == own && recorded.is_none_or(|r| r == presented),
            Home::Pair => recorded == Some(presented),
        }
    }
}

/// An issued authorization code (RFC 6749 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The client the code was issued to (absent in the previous
    /// release's records, which live in that client's own ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    pub grant_id: GrantId,
    pub redirect_uri: RedirectUri,
    /// Whether the authorization request named the redirect URI (then the
    /// token request must repeat it, RFC 6749 §4.1.3).
    #[serde(default = "yes")]
    pub redirect_uri_given: bool,
    /// S256 challenge (RFC 7636 §4.2).
    pub code_challenge: CodeChallenge,
    pub scope: ScopeSet,
    pub resource: Resource,
    pub subject: Subject,
    pub expires_at: u64,
    pub redeemed: bool,
    /// When the code was issued (seconds; absent before issue 9's
    /// directory): a revoke-all marker ends the codes issued before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<u64>,
    /// A key grant of `/mcp` (issue 15): when Plausible last accepted its
    /// key (the key form, just before this code). Absent for persons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_checked_at: Option<u64>,
    /// The sites the grant may read (issue 15); absent means every site
    /// its key can read: every grant of the previous release, and grants
    /// whose person chose "all sites".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

/// A grant: one user's authorization of one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// As in [`CodeRecord::client_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    pub grant_id: GrantId,
    pub scope: ScopeSet,
    pub resource: Resource,
    pub subject: Subject,
    pub created_at: u64,
    /// Absolute end: no refresh extends a grant past this.
    pub expires_at: u64,
    pub refresh_hash: TokenHash,
    pub refresh_expires_at: u64,
    /// Live access tokens (hash, expiry), deleted from KV on revocation:
    /// at most [`MAX_LIVE_ACCESS`] since issue 11 (a grant of the previous
    /// release may hold more until its next refresh).
    pub access: Vec<(TokenHash, u64)>,
    pub revoked: bool,
    /// The last rotation, for a client that lost the refresh response
    /// (see `grants::refresh`); absent before issue 11.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// A key grant of `/mcp` (issue 15): when Plausible last accepted its
    /// key; a refresh asks Plausible again once this is an hour old.
    /// Absent for persons' grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_checked_at: Option<u64>,
    /// As in [`CodeRecord::sites`], from the code; every access token of
    /// the grant carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

/// How many access tokens a grant keeps alive: the newest two. One would
/// turn a client's calls in flight right after a refresh into 401s; more
/// would let a thief who refreshes in a loop make revocation a task
/// without bound (issue 11).
pub const MAX_LIVE_ACCESS: usize = 2;

/// A grant's last rotation, kept [`ROTATION_GRACE_SECS`]: the refresh
/// token it rotated out, and the pair it issued, sealed by the worker
/// (the object cannot open it), so a client whose response was lost gets
/// the same pair again instead of a revoked grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub from: TokenHash,
    pub at: u64,
    pub sealed_pair: String,
    pub scope: ScopeSet,
    pub access_expires_at: u64,
}

/// How long a rotated-out refresh token may still fetch the pair that
/// replaced it: long enough for a client to retry a lost response, short
/// enough that a stolen old token is of no use later.
pub const ROTATION_GRACE_SECS: u64 = 30;

/// What `/internal` reads for a bearer token: one KV get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub client_id: ClientId,
    pub grant_id: GrantId,
    pub scope: ScopeSet,
    pub resource: Resource,
    pub subject: Subject,
    pub expires_at: u64,
    /// When the token's grant was created (seconds): compared with
    /// `TOKENS_NOT_BEFORE`. Absent in records written before issue 11,
    /// which count as older than any such time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_created_at: Option<u64>,
    /// As in [`CodeRecord::sites`]: the tools refuse any other site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

/// The KV key of an access token's record.
pub fn access_key(hash: &TokenHash) -> String {
    format!("at:{}", hash.as_str())
}

/// An upstream login in progress (`/authorize` → provider → `/callback`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRecord {
    pub request: AuthorizationRequest,
    /// Our PKCE verifier for the upstream code exchange.
    pub upstream_verifier: PkceVerifier,
    pub nonce: LoginNonce,
    pub expires_at: u64,
    pub used: bool,
}

/// A user's approval of this client (per redirect URI and scopes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub redirect_uri: RedirectUri,
    pub scope: ScopeSet,
    pub approved_at: u64,
    /// The sites the person chose (absent: all sites, as every consent of
    /// the previous release); a later sign-in that skips the page gets
    /// them again (see `flow::sites`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

impl ConsentRecord {
    /// Consent covers a request only for the same redirect endpoint and
    /// no scope beyond what was approved; anything else is asked again.
    /// A loopback endpoint is the same on any port (RFC 8252 §7.3): a
    /// native client binds a new ephemeral port for every sign-in.
    pub fn covers(&self, request: &AuthorizationRequest) -> bool {
        self.redirect_uri.same_endpoint(&request.redirect_uri)
            && request.scope.is_subset_of(&self.scope)
    }

    /// Consents expire (issue 11; `CONSENT_TTL_DAYS`): the consent page
    /// says access can be revoked, and an approval nobody renewed for
    /// months should be asked again.
    pub fn is_current(&self, now: u64, ttl_secs: u64) -> bool {
        now < self.approved_at.saturating_add(ttl_secs)
    }
}

/// Every key of a ledger object's storage, with the value kept there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageKey {
    /// [`CodeRecord`], kept after redemption to detect replay.
    Code(TokenHash),
    /// [`GrantRecord`].
    Grant(GrantId),
    /// The [`GrantId`] a refresh token (current or rotated out) belongs to.
    RefreshIndex(TokenHash),
    /// [`LoginRecord`], consumed by the callback.
    Login(LoginId),
    /// The expiry of a spent consent ticket (seconds).
    Nonce(TicketId),
    /// [`ConsentRecord`].
    Consent(UserKey),
    /// The [`AccessRecord`] of a live access token, beside its KV copy:
    /// read when KV has not caught up yet at a location.
    Access(TokenHash),
    /// A pair object's [`Listed`]: its pair is in the user's directory
    /// and the client's index.
    Listed,
    /// Access records of a grant whose KV delete is still to be done
    /// (`Vec<(TokenHash, u64)>`): the revocation is recorded already, the
    /// object's alarm retries the deletes.
    Retired(GrantId),
}

/// When a pair was entered in its user's directory and its client's
/// index (seconds). Kept until the object is gone, so a pair is listed
/// once, not on every code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub at: u64,
}

/// The kind of a stored key, read back from its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Code,
    Grant,
    RefreshIndex,
    Login,
    Nonce,
    Consent,
    Access,
    Listed,
    Retired,
}

impl KeyKind {
    const ALL: [KeyKind; 9] = [
        KeyKind::Code,
        KeyKind::Grant,
        KeyKind::RefreshIndex,
        KeyKind::Login,
        KeyKind::Nonce,
        KeyKind::Consent,
        KeyKind::Access,
        KeyKind::Listed,
        KeyKind::Retired,
    ];

    /// The prefix of this kind's keys.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Code => "code:",
            KeyKind::Grant => "grant:",
            KeyKind::RefreshIndex => "rt:",
            KeyKind::Login => "login:",
            KeyKind::Nonce => "nonce:",
            KeyKind::Consent => "consent:",
            KeyKind::Access => "at:",
            KeyKind::Listed => "listed:",
            KeyKind::Retired => "retired:",
        }
    }

    /// The kind of a stored key and the id after its prefix.
    pub fn parse(key: &str) -> Option<(KeyKind, &str)> {
        Self::ALL
            .iter()
            .find_map(|kind| key.strip_prefix(kind.prefix()).map(|id| (*kind, id)))
    }
}

impl StorageKey {
    fn kind(&self) -> KeyKind {
        match self {
            StorageKey::Code(_) => KeyKind::Code,
            StorageKey::Grant(_) => KeyKind::Grant,
            StorageKey::RefreshIndex(_) => KeyKind::RefreshIndex,
            StorageKey::Login(_) => KeyKind::Login,
            StorageKey::Nonce(_) => KeyKind::Nonce,
            StorageKey::Consent(_) => KeyKind::Consent,
            StorageKey::Access(_) => KeyKind::Access,
            StorageKey::Listed => KeyKind::Listed,
            StorageKey::Retired(_) => KeyKind::Retired,
        }
    }

    fn id(&self) -> &str {
        match self {
            StorageKey::Code(h) | StorageKey::RefreshIndex(h) | StorageKey::Access(h) => h.as_str(),
            StorageKey::Grant(g) | StorageKey::Retired(g) => g.as_str(),
            StorageKey::Login(l) => l.as_str(),
            StorageKey::Nonce(t) => t.as_str(),
            StorageKey::Consent(u) => u.as_str(),
            StorageKey::Listed => "pair",
        }
    }

    /// The key as stored: `<kind>:<id>`.
    pub fn encode(&self) -> String {
        format!("{}{}", self.kind().prefix(), self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_text() {
        let hash = TokenHash::of("x");
        let cases = [
            (StorageKey::Code(hash.clone()), KeyKind::Code, "code:"),
            (
                StorageKey::RefreshIndex(hash.clone()),
                KeyKind::RefreshIndex,
                "rt:",
            ),
            (
                StorageKey::Consent(UserKey::legacy_of_email("a@example.com")),
                KeyKind::Consent,
                "consent:",
            ),
        ];
        for (key, kind, prefix) in cases {
            let text = key.encode();
            assert!(text.starts_with(prefix), "{text}");
            assert_eq!(KeyKind::parse(&text).map(|(k, _)| k), Some(kind));
        }
        assert_eq!(KeyKind::parse("other:1"), None);
        assert_eq!(access_key(&hash), format!("at:{}", hash.as_str()));
    }
}
