//! The audit trail (issue 11): one JSON object per line on the Workers
//! log for every security event, with stable field names an operator can
//! filter on (`wrangler tail --format json`, Workers Logs; see the
//! README's "Operating it").
//!
//! A line is built from typed values only: an [`Event`], an [`Outcome`],
//! a `&'static str` reason, and the ids the core already treats as
//! public (`ClientId`, `GrantId`, `UserKey`, the keyed hash of an email).
//! No field takes a `String` a caller could fill with a token, a code, a
//! key or a secret: such a value cannot reach the trail without a
//! change to this module. The email is carried only when the operator
//! opts in (`AUDIT_LOG_EMAILS=true`); the address is cut to its network
//! unless `AUDIT_IP_FULL=true` (see [`ip`]).
//!
//! Every line has every field (`null` where it does not apply), so a
//! filter never has to ask whether a field exists.

pub mod ip;

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde::Serialize;

use crate::http::Headers;
use crate::identity::Identity;
use crate::oauth::ids::{GrantId, UserKey};
use crate::oauth::types::ClientId;
use crate::ports::{Log, UnixMillis};
use ip::{CONNECTING_IP_HEADER, ClientIp};

/// The value of the `audit` field: the version of this line's shape.
/// Bumped only if a field changes meaning; new fields do not bump it.
pub const FORMAT: u8 = 1;

/// What happened. The serialised names are part of the operator's
/// interface: never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The upstream sign-in finished (success), or failed (`reason`).
    SignIn,
    /// A signed-in person whose email the gate (`ALLOWED_EMAIL_DOMAIN`)
    /// does not admit.
    DomainRefused,
    ConsentGiven,
    ConsentDenied,
    /// An authorization code was recorded for a client (RFC 6749 §4.1.2).
    CodeIssued,
    /// A code was exchanged for tokens (RFC 6749 §4.1.3).
    CodeRedeemed,
    /// A refresh token was rotated (RFC 6749 §6).
    TokenRefreshed,
    /// A rotated-out refresh token came back within the grace period and
    /// got the same pair again (a lost response's retry; issue 11).
    RefreshRetry,
    /// A grant ended; `by` says who or what ended it.
    GrantRevoked,
    /// A redeemed code or rotated-out refresh token was presented again
    /// (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1).
    ReplayDetected,
    /// A request over a rate limit ([`rate_limited`]).
    // Emitted by the rate limiter (branch `limits`), not merged yet.
    #[cfg_attr(not(test), allow(dead_code))]
    RateLimited,
    /// An admin acted on the connections page; `action` says what.
    AdminAction,
    /// A variable is missing or invalid; `variable` names it. Logged once
    /// per isolate and variable.
    Misconfiguration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Refused by a rule (the email gate, a replay, a block).
    Refused,
    /// Could not complete (the provider, storage, configuration).
    Failure,
}

/// Who or what ended a grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The person, on the connections page.
    User,
    /// The client, at `/revoke` (RFC 7009).
    Client,
    /// An admin, on the connections page.
    Admin,
    /// Replay detection: a used code or rotated-out refresh token.
    Replay,
    /// `TOKENS_NOT_BEFORE`.
    KillSwitch,
    /// The email gate at refresh (`ALLOWED_EMAIL_DOMAIN`).
    EmailGate,
    /// A key grant's hourly check at refresh: Plausible no longer
    /// accepts its key (issue 15).
    PlausibleKeyCheck,
}

/// What an admin did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminAction {
    RevokeGrant,
    RevokeUser,
    RevokeClient,
    BlockClient,
    UnblockClient,
}

/// One event, before the request's context (address, time) is added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    event: Event,
    outcome: Outcome,
    reason: Option<&'static str>,
    client_id: Option<&'a ClientId>,
    user: Option<&'a UserKey>,
    email: Option<&'a Identity>,
    grant: Option<&'a GrantId>,
    by: Option<Actor>,
    action: Option<AdminAction>,
    variable: Option<&'static str>,
}

impl<'a> Record<'a> {
    pub fn new(event: Event, outcome: Outcome) -> Self {
        Self {
            event,
            outcome,
            reason: None,
            client_id: None,
            user: None,
            email: None,
            grant: None,
            by: None,
            action: None,
            variable: None,
        }
    }

    /// Why: a fixed phrase from the code, never a value from a request.
    pub fn reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn client(mut self, client: &'a ClientId) -> Self {
        self.client_id = Some(client);
        self
    }

    pub fn user(mut self, user: &'a UserKey) -> Self {
        self.user = Some(user);
        self
    }

    /// The person's address; logged only under `AUDIT_LOG_EMAILS=true`.
    pub fn email(mut self, identity: &'a Identity) -> Self {
        self.email = Some(identity);
        self
    }

    pub fn grant(mut self, grant: &'a GrantId) -> Self {
        self.grant = Some(grant);
        self
    }

    pub fn by(mut self, actor: Actor) -> Self {
        self.by = Some(actor);
        self
    }

    pub fn action(mut self, action: AdminAction) -> Self {
        self.action = Some(action);
        self
    }

    pub fn variable(mut self, name: &'static str) -> Self {
        self.variable = Some(name);
        self
    }
}

/// Every field of every line, in order: the names the README documents
/// and operators filter on.
#[cfg(test)]
pub const FIELDS: &[&str] = &[
    "audit",
    "event",
    "outcome",
    "reason",
    "client_id",
    "user",
    "email",
    "ip",
    "grant",
    "by",
    "action",
    "variable",
    "at",
];

/// The wire shape of a line. Field order is the order an operator reads.
#[derive(Serialize)]
struct Line<'a> {
    audit: u8,
    event: Event,
    outcome: Outcome,
    reason: Option<&'static str>,
    client_id: Option<&'a str>,
    user: Option<&'a str>,
    email: Option<&'a str>,
    ip: Option<ClientIp>,
    grant: Option<&'a str>,
    by: Option<Actor>,
    action: Option<AdminAction>,
    variable: Option<&'static str>,
    at: String,
}

/// `AUDIT_LOG_EMAILS` and `AUDIT_IP_FULL`, read once with the settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditSettings {
    pub log_emails: bool,
    pub full_ip: bool,
}

/// The audit context of one request: its (truncated) address and the
/// operator's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auditor {
    settings: AuditSettings,
    ip: Option<ClientIp>,
}

impl Auditor {
    pub fn of(settings: AuditSettings, headers: &Headers) -> Self {
        Self {
            settings,
            ip: ClientIp::from_header(headers.get(CONNECTING_IP_HEADER), settings.full_ip),
        }
    }

    /// Without a request (a test; later a Durable Object's alarm).
    #[cfg(test)]
    pub fn detached(settings: AuditSettings) -> Self {
        Self { settings, ip: None }
    }

    /// The line for `record` at `now`, as written to the log.
    pub fn line(&self, record: &Record<'_>, now: UnixMillis) -> String {
        let line = Line {
            audit: FORMAT,
            event: record.event,
            outcome: record.outcome,
            reason: record.reason,
            client_id: record.client_id.map(ClientId::as_str),
            user: record.user.map(UserKey::as_str),
            email: record
                .email
                .filter(|_| self.settings.log_emails)
                .map(Identity::email),
            ip: self.ip,
            grant: record.grant.map(GrantId::as_str),
            by: record.by,
            action: record.action,
            variable: record.variable,
            at: rfc3339(now),
        };
        // Serialising plain strings, numbers and unit enums cannot fail;
        // were it ever to, the event is still noted, without detail.
        serde_json::to_string(&line).unwrap_or_else(|_| {
            format!(
                "{{\"audit\":{FORMAT},\"event\":\"unserialisable\",\"at\":\"{}\"}}",
                rfc3339(now)
            )
        })
    }

    pub fn emit<P: Log + crate::ports::Clock + ?Sized>(&self, platform: &P, record: Record<'_>) {
        platform.audit(&self.line(&record, platform.now()));
    }
}

thread_local! {
    /// Variables already reported as misconfigured by this isolate (a
    /// Worker isolate is one thread).
    static REPORTED: RefCell<BTreeSet<&'static str>> = const { RefCell::new(BTreeSet::new()) };
}

/// Reports a misconfigured variable, once per isolate: every request
/// meets it, and one line says all there is to say until a deploy.
pub fn misconfiguration<P: Log + crate::ports::Clock + ?Sized>(
    platform: &P,
    auditor: &Auditor,
    variable: &'static str,
) {
    let first = REPORTED.with(|r| r.borrow_mut().insert(variable));
    if first {
        auditor.emit(
            platform,
            Record::new(Event::Misconfiguration, Outcome::Failure).variable(variable),
        );
    }
}

/// A request over a rate limit: the call the rate limiter makes, with
/// the limit's fixed name as the reason.
pub fn rate_limited<P: Log + crate::ports::Clock + ?Sized>(
    platform: &P,
    auditor: &Auditor,
    limit: &'static str,
    client: Option<&ClientId>,
) {
    let mut record = Record::new(Event::RateLimited, Outcome::Refused).reason(limit);
    if let Some(c) = client {
        record = record.client(c);
    }
    auditor.emit(platform, record);
}

/// `2026-11-05T09:30:00.123Z` (RFC 3339 §5.6, UTC). chrono is built
/// without its formatting (`alloc`) feature here, so the fields are
/// written one by one.
fn rfc3339(now: UnixMillis) -> String {
    use chrono::{Datelike, Timelike};
    let Some(t) = i64::try_from(now.0)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
    else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        now.0 % 1000
    )
}

#[cfg(test)]
mod tests;
