//! The token endpoint's audit lines (issue 11): which grant and user a
//! line names, and the lines of the ledger's refusals.

use crate::audit::{Actor, Event, Outcome, Record};
use crate::oauth::ledger::protocol::{Issued, Reason, Refused};
use crate::oauth::routing::Located;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::ClientId;

/// Whether a ledger's user keys may be named on an audit line: a pair
/// object's are keyed hashes (HMAC under `USER_KEY_SECRET`); a legacy
/// ledger's are the previous release's bare SHA-256 of the email, which
/// anyone holding a list of addresses could match, so they are left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AuditedUsers {
    Keyed,
    Legacy,
}

impl AuditedUsers {
    /// A pair object's keys are keyed hashes; a legacy ledger's are not.
    pub(super) fn of(located: &Located) -> Self {
        match located {
            Located::Pair(_) => AuditedUsers::Keyed,
            Located::Legacy => AuditedUsers::Legacy,
        }
    }
}

/// An audit line's grant and user, as far as the object named them.
pub(super) fn of_grant<'a>(
    mut record: Record<'a>,
    issued: &'a Issued,
    users: AuditedUsers,
) -> Record<'a> {
    if let Some(subject) = &issued.subject
        && users == AuditedUsers::Keyed
    {
        record = record.user(&subject.user_key);
    }
    if let Some(grant) = &issued.grant_id {
        record = record.grant(grant);
    }
    record
}

/// Audits a ledger refusal: a replay (RFC 9700 §4.14.2) is its own event
/// and ends the grant; the kill switch says so; the rest are refusals of
/// `event` with the ledger's reason. The reason is typed
/// ([`Reason`]), so no change of wording turns one into another.
pub(super) fn audit_refusal<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    client: &ClientId,
    refused: &Refused,
    event: Event,
    users: AuditedUsers,
) {
    for record in refusal_records(client, refused, event, users) {
        server.audit(platform, record);
    }
}

/// The lines [`audit_refusal`] writes, in order.
fn refusal_records<'a>(
    client: &'a ClientId,
    refused: &'a Refused,
    event: Event,
    users: AuditedUsers,
) -> Vec<Record<'a>> {
    let reason = refused.reason;
    let of_grant = |mut record: Record<'a>| {
        if let Some(grant) = &refused.grant {
            record = record.grant(&grant.grant_id);
            if users == AuditedUsers::Keyed {
                record = record.user(&grant.user_key);
            }
        }
        record.reason(reason.text()).client(client)
    };
    if reason.is_replay() {
        return vec![
            of_grant(Record::new(Event::ReplayDetected, Outcome::Refused)),
            of_grant(Record::new(Event::GrantRevoked, Outcome::Success)).by(Actor::Replay),
        ];
    }
    let record = of_grant(Record::new(event, Outcome::Refused));
    vec![match reason {
        Reason::KillSwitch => record.by(Actor::KillSwitch),
        _ => record,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditSettings, Auditor};
    use crate::oauth::ids::{GrantId, UserKey};
    use crate::oauth::ledger::protocol::Refusal;
    use crate::ports::UnixMillis;
    use serde_json::Value;

    fn lines(refused: &Refused, event: Event) -> Vec<Value> {
        lines_of(refused, event, AuditedUsers::Keyed)
    }

    fn lines_of(refused: &Refused, event: Event, users: AuditedUsers) -> Vec<Value> {
        let client = ClientId::parse("pmcp_client_A").unwrap();
        let auditor = Auditor::detached(AuditSettings::default());
        refusal_records(&client, refused, event, users)
            .iter()
            .map(|r| serde_json::from_str(&auditor.line(r, UnixMillis(0))).unwrap())
            .collect()
    }

    fn of_grant(reason: Reason) -> Refused {
        Refused::new(Refusal::InvalidGrant, reason).of_grant(
            &GrantId::fixed("g_1"),
            &UserKey::legacy_of_email("u@example.com"),
        )
    }

    /// Each reason the ledger sends has its line: the replays two (the
    /// replay, and the grant it ended, by `replay`), the kill switch its
    /// actor, the rest a refusal of the event tried; each with the
    /// reason's text, the client, and the grant and user when the ledger
    /// named them.
    #[test]
    fn each_ledger_reason_gets_its_line() {
        let user = UserKey::legacy_of_email("u@example.com");
        for &reason in Reason::ALL {
            for event in [Event::CodeRedeemed, Event::TokenRefreshed] {
                let got = lines(&of_grant(reason), event);
                let want: Vec<(&str, &str, Value)> = match reason {
                    Reason::CodeReplayed | Reason::RefreshReplayed => vec![
                        ("replay_detected", "refused", Value::Null),
                        ("grant_revoked", "success", "replay".into()),
                    ],
                    Reason::KillSwitch => {
                        vec![(event_name(event), "refused", "kill_switch".into())]
                    }
                    _ => vec![(event_name(event), "refused", Value::Null)],
                };
                assert_eq!(got.len(), want.len(), "{reason:?}: {got:?}");
                for (line, (name, outcome, by)) in got.iter().zip(want) {
                    assert_eq!(line["event"], name, "{reason:?}");
                    assert_eq!(line["outcome"], outcome, "{reason:?}");
                    assert_eq!(line["by"], by, "{reason:?}");
                    assert_eq!(line["reason"], reason.text(), "{reason:?}");
                    assert_eq!(line["client_id"], "pmcp_client_A");
                    assert_eq!(line["grant"], "g_1", "{reason:?}");
                    assert_eq!(line["user"], user.as_str(), "{reason:?}");
                }
            }
        }
    }

    fn event_name(event: Event) -> &'static str {
        match event {
            Event::CodeRedeemed => "code_redeemed",
            _ => "token_refreshed",
        }
    }

    /// A legacy ledger's key is a bare SHA-256 of the email: never logged.
    #[test]
    fn a_legacy_ledgers_lines_name_the_grant_but_no_user() {
        for reason in [Reason::RefreshReplayed, Reason::KillSwitch] {
            for line in lines_of(
                &of_grant(reason),
                Event::TokenRefreshed,
                AuditedUsers::Legacy,
            ) {
                assert_eq!(line["grant"], "g_1", "{reason:?}");
                assert!(line["user"].is_null(), "{reason:?}: {line}");
            }
        }
    }

    #[test]
    fn a_refusal_without_a_grant_names_none_and_an_unknown_reason_is_a_refusal() {
        let refused = Refused::new(Refusal::InvalidGrant, Reason::UnknownCode);
        let got = lines(&refused, Event::CodeRedeemed);
        assert_eq!(got.len(), 1);
        assert!(got[0]["grant"].is_null() && got[0]["user"].is_null());
        assert_eq!(got[0]["reason"], "unknown code");
        // A newer object's reason: a refusal, never a replay or a crash.
        let newer: Refused = serde_json::from_value(serde_json::json!({
            "refusal": "invalid_grant",
            "reason": "some reason of a newer release",
        }))
        .unwrap();
        let got = lines(&newer, Event::TokenRefreshed);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["event"], "token_refreshed");
        assert_eq!(got[0]["outcome"], "refused");
        assert_eq!(got[0]["reason"], Reason::Unrecognized.text());
    }
}
