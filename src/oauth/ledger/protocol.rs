//! The messages the worker sends a client's ledger object, one type per
//! operation, and what each answers. On the wire each message is JSON
//! tagged by `op` and each reply by `result`, in the shapes of v1 (see
//! `tests/fixtures/stored-v1/wire.json`), so a worker and an object of
//! different versions still understand each other during a deploy.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use super::reason::Reason;
use super::records::{AccessRecord, CodeRecord, ConsentRecord, LoginRecord, Subject};
use crate::oauth::ids::{GrantId, LoginId, TicketId, TokenHash, UserKey};
use crate::oauth::types::{ClientId, CodeChallenge, RedirectUri, Resource, ScopeSet};

/// Hashes and lifetimes of tokens the worker minted for this transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTokens {
    pub access_hash: TokenHash,
    pub refresh_hash: TokenHash,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
}

/// Records a code issued for an approved request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueCode {
    pub code_hash: TokenHash,
    pub record: CodeRecord,
    /// Asks whether the pair is listed yet (a pair object answers
    /// [`CodeIssued::Unlisted`] until [`MarkListed`]); absent from the
    /// previous release's messages, which get v1's `done`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ask_listed: bool,
}

/// The pair is now in its user's directory and its client's index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkListed {
    pub at: u64,
}

/// Ends every grant of the object created at or before `before`
/// (seconds), with its tokens and access records, and the codes and
/// consent from before then: one step of a revoke-all fan-out (a user's
/// or a client's). Later grants stay: the person may have reconnected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeAll {
    pub before: u64,
}

/// RFC 6749 §4.1.3, with RFC 7636 §4.6 and RFC 8707 §2.2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemCode {
    pub client_id: ClientId,
    pub code_hash: TokenHash,
    /// As presented, compared exactly.
    pub redirect_uri: Option<String>,
    /// BASE64URL(SHA256(code_verifier)), computed by the worker.
    pub computed_challenge: CodeChallenge,
    pub resource: Option<Resource>,
    pub grant_lifetime_secs: u64,
    pub tokens: NewTokens,
}

/// RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    pub client_id: ClientId,
    pub refresh_hash: TokenHash,
    pub scope: Option<ScopeSet>,
    pub resource: Option<Resource>,
    pub tokens: NewTokens,
    /// The new pair sealed by the worker, kept by the object for a lost
    /// response's retry ([`TokensReply::Again`]); absent from the
    /// previous release's workers, whose rotations get no retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_pair: Option<String>,
    /// `TOKENS_NOT_BEFORE` (seconds): a grant created before it is
    /// refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<u64>,
}

/// RFC 7009 §2.1 for a refresh token: ends the grant, if it is the
/// presenting client's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRefresh {
    pub refresh_hash: TokenHash,
    /// The authenticated client (absent from the previous release's
    /// workers, whose messages only reach that client's own ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// The client revoked it at `/revoke`: the user's consent for the
    /// client goes too, so the next authorization asks again (issue 11).
    /// Not when the worker ends a grant itself (the email gate refused
    /// its user): the consent is the person's, not the grant's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forget_consent: bool,
}

/// RFC 7009 §2.1 for an access token of a grant object: its record goes
/// from KV and from the object, so no later lookup finds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeAccess {
    pub access_hash: TokenHash,
    pub client_id: ClientId,
}

/// The record of a live access token, for a worker whose KV read missed
/// it right after issue (KV's read-after-write lag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupAccess {
    pub access_hash: TokenHash,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginLogin {
    pub login_id: LoginId,
    pub record: LoginRecord,
}

/// Returns the login once; a second finish is a replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishLogin {
    pub login_id: LoginId,
}

/// Succeeds once per consent ticket until it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumeNonce {
    pub nonce: TicketId,
    pub expires_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetConsent {
    pub user_key: UserKey,
}

/// A client's legacy ledger: which users hold a consent the previous
/// release recorded (marks of their legacy user keys), at most `limit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyConsentUsers {
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordConsent {
    pub user_key: UserKey,
    pub record: ConsentRecord,
}

/// Plausible accepted a key grant's key at `at` (the worker's hourly
/// re-check at refresh, issue 15): the grant its current refresh token
/// names records it, if that grant is `client_id`'s and live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChecked {
    pub refresh_hash: TokenHash,
    pub client_id: ClientId,
    pub at: u64,
}

/// A pair object's live grants and consents, for the connections page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summarize {}

/// A message to a ledger object: one operation, tagged by `op`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Message {
    IssueCode(IssueCode),
    RedeemCode(RedeemCode),
    Refresh(Refresh),
    RevokeRefresh(RevokeRefresh),
    BeginLogin(BeginLogin),
    FinishLogin(FinishLogin),
    ConsumeNonce(ConsumeNonce),
    GetConsent(GetConsent),
    LegacyConsentUsers(LegacyConsentUsers),
    RecordConsent(RecordConsent),
    LookupAccess(LookupAccess),
    RevokeAccess(RevokeAccess),
    MarkListed(MarkListed),
    RevokeAll(RevokeAll),
    Summarize(Summarize),
    KeyChecked(KeyChecked),
}

/// Why a transition was refused, in RFC 6749 §5.2 terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // RFC 6749 §5.2's own names
pub enum Refusal {
    /// Unknown, expired, redeemed or revoked code or token; redirect URI
    /// or PKCE mismatch; a used or expired login or ticket.
    InvalidGrant,
    /// A scope beyond the grant's.
    InvalidScope,
    /// A resource other than the grant's (RFC 8707 §2.2).
    InvalidTarget,
}

/// A refusal and its reason (for the log only, never for the client).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub refusal: Refusal,
    /// Typed, so the worker's audit never matches on wording; on the
    /// wire, v1's text ([`Reason`]).
    pub reason: Reason,
    /// The grant the refused code or token belongs to, once it is known
    /// to be the presenting client's: for the audit line (a replay names
    /// the grant it ended and whose it was). Absent from v1's replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantRef>,
}

impl Refused {
    pub fn new(refusal: Refusal, reason: Reason) -> Self {
        Self {
            refusal,
            reason,
            grant: None,
        }
    }

    pub fn of_grant(mut self, grant_id: &GrantId, user_key: &UserKey) -> Self {
        self.grant = Some(GrantRef {
            grant_id: grant_id.clone(),
            user_key: user_key.clone(),
        });
        self
    }
}

/// Which grant, and whose: public ids the audit trail may carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRef {
    pub grant_id: GrantId,
    pub user_key: UserKey,
}

/// The reply of an operation that cannot be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Done {
    Done,
}

/// The reply to issuing a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CodeIssued {
    /// Recorded (and, if asked, the pair is listed already).
    Done,
    /// Recorded; the pair is not listed yet: the worker lists it, then
    /// sends [`MarkListed`].
    Unlisted,
}

/// What a revoke-all step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RevokedAll {
    Revoked { grants: u64 },
}

/// Tokens were issued: what the token response reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub scope: ScopeSet,
    pub resource: Resource,
    pub access_expires_in: u64,
    /// The grant's subject, for the worker's email gate at refresh
    /// (absent from code redemptions and older objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<super::records::Subject>,
    /// A key grant's last check with Plausible (issue 15), for the
    /// worker's hourly re-check at refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_checked_at: Option<u64>,
    /// The grant's sites (issue 15), for that re-check: it reads a site
    /// the grant may read, not one the person unticked. Absent for all
    /// sites, and from code redemptions and older objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
    /// The grant, for the audit line of a redemption or refresh (absent
    /// from older objects' replies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<GrantId>,
}

/// A lost refresh response's retry: the pair issued at the rotation,
/// still sealed as the worker sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Again {
    pub sealed_pair: String,
    pub issued: Issued,
}

/// The reply to a code redemption or a refresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TokensReply {
    Tokens(Issued),
    Refused(Refused),
    /// Only to a refresh that sent a sealed pair (so never to a worker
    /// of the previous release).
    Again(Again),
}

/// The reply to finishing a login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LoginReply {
    Login { record: Box<LoginRecord> },
    Refused(Refused),
}

/// The reply to spending a consent ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum NonceReply {
    Done,
    Refused(Refused),
}

/// The reply to a consent lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ConsentReply {
    Consent { record: Option<ConsentRecord> },
}

/// The reply to [`LegacyConsentUsers`]: the first [`MARK_LEN`] hex
/// characters of each legacy user key holding a consent; `complete` when
/// that is all of them (at most `limit`).
///
/// [`MARK_LEN`]: super::legacy_consents::MARK_LEN
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LegacyConsentsReply {
    Users { marks: Vec<String>, complete: bool },
}

/// The reply to an access lookup: the record while the token lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AccessReply {
    Access { record: Option<AccessRecord> },
}

/// A live grant, as the connections page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSummary {
    pub client_id: Option<ClientId>,
    pub scope: ScopeSet,
    /// Whose it is; an admin's page opens the sealed email.
    pub subject: Subject,
    pub created_at: u64,
    /// The absolute end: no refresh extends a grant past it.
    pub expires_at: u64,
    /// The expiry of its newest access token: when it was last refreshed
    /// is this less the access-token lifetime (no write per refresh).
    pub newest_access_expiry: Option<u64>,
    /// The sites it may read (issue 15; absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

/// A consent, as the connections page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentSummary {
    pub user_key: UserKey,
    pub redirect_uri: RedirectUri,
    pub scope: ScopeSet,
    pub approved_at: u64,
    /// The sites approved (issue 15; absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

/// The reply to [`Summarize`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PairSummary {
    Summary {
        grants: Vec<GrantSummary>,
        consents: Vec<ConsentSummary>,
    },
}

/// An operation and the reply it gets.
pub trait Operation: Into<Message> {
    type Reply: Serialize + DeserializeOwned;
}

macro_rules! operations {
    ($($op:ident => $reply:ty),* $(,)?) => {
        $(
            impl From<$op> for Message {
                fn from(op: $op) -> Self {
                    Message::$op(op)
                }
            }
            impl Operation for $op {
                type Reply = $reply;
            }
        )*
    };
}

operations! {
    IssueCode => CodeIssued,
    RedeemCode => TokensReply,
    Refresh => TokensReply,
    RevokeRefresh => Done,
    KeyChecked => Done,
    BeginLogin => Done,
    FinishLogin => LoginReply,
    ConsumeNonce => NonceReply,
    GetConsent => ConsentReply,
    LegacyConsentUsers => LegacyConsentsReply,
    RecordConsent => Done,
    LookupAccess => AccessReply,
    RevokeAccess => Done,
    MarkListed => Done,
    RevokeAll => RevokedAll,
    Summarize => PairSummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_replies_keep_their_v1_shapes() {
        let op: Message = RevokeRefresh {
            refresh_hash: TokenHash::of("x"),
            client_id: None,
            forget_consent: false,
        }
        .into();
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"op":"revoke_refresh","refresh_hash":"{}"}}"#,
                TokenHash::of("x").as_str()
            )
        );
        assert_eq!(serde_json::from_str::<Message>(&text).unwrap(), op);
        assert_eq!(
            serde_json::to_string(&Done::Done).unwrap(),
            r#"{"result":"done"}"#
        );
        let refused =
            TokensReply::Refused(Refused::new(Refusal::InvalidGrant, Reason::CodeExpired));
        assert_eq!(
            serde_json::to_string(&refused).unwrap(),
            r#"{"result":"refused","refusal":"invalid_grant","reason":"code expired"}"#
        );
        assert_eq!(
            serde_json::from_str::<NonceReply>(r#"{"result":"done"}"#).unwrap(),
            NonceReply::Done
        );
    }
}
