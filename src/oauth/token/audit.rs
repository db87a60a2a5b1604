//! The audit lines of the token endpoint's refusals (issue 11).

use crate::audit::{Actor, Event, Outcome, Record};
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::ClientId;

/// The ledger's refusal reasons the audit trail names, as fixed text
/// (a reason on the wire is a `String`; only one of these reaches a line).
const LEDGER_REASONS: &[&str] = &[
    CODE_REPLAY,
    REFRESH_REPLAY,
    "code replayed without its PKCE verifier; grant kept",
    "unknown code",
    "code issued to another client",
    "code expired",
    "redirect_uri missing or differs from the authorization request",
    "PKCE verification failed",
    "resource differs from the authorization request",
    "unknown refresh token",
    "grant not found",
    "refresh token issued to another client",
    "grant revoked",
    KILL_SWITCH,
    "refresh token expired",
    "scope exceeds the grant",
    "resource differs from the grant",
];
const CODE_REPLAY: &str = "code replayed; grant revoked";
const REFRESH_REPLAY: &str = "rotated-out refresh token reused; grant revoked";
const KILL_SWITCH: &str = "grant created before TOKENS_NOT_BEFORE";

/// Audits a ledger refusal: a replay (RFC 9700 §4.14.2) is its own event
/// and ends the grant; the kill switch says so; the rest are refusals of
/// `event` with the ledger's reason.
pub(super) fn audit_refusal<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    client: &ClientId,
    refused: &crate::oauth::ledger::protocol::Refused,
    event: Event,
) {
    let reason = LEDGER_REASONS
        .iter()
        .find(|r| **r == refused.reason)
        .copied()
        .unwrap_or("refused");
    if reason == CODE_REPLAY || reason == REFRESH_REPLAY {
        server.audit(
            platform,
            Record::new(Event::ReplayDetected, Outcome::Refused)
                .reason(reason)
                .client(client),
        );
        server.audit(
            platform,
            Record::new(Event::GrantRevoked, Outcome::Success)
                .reason(reason)
                .client(client)
                .by(Actor::Replay),
        );
        return;
    }
    let mut record = Record::new(event, Outcome::Refused)
        .reason(reason)
        .client(client);
    if reason == KILL_SWITCH {
        record = record.by(Actor::KillSwitch);
    }
    server.audit(platform, record);
}
