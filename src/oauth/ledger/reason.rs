//! Why the ledger refused a transition, as a typed value (issue 11).
//!
//! The worker acts on some reasons (a replay is audited as its own event
//! and ends the grant; the kill switch names itself), so matching on the
//! text would let a change of wording silently turn a replay line into a
//! plain refusal. Both ends match on [`Reason`] instead.
//!
//! On the wire a reason is still the text v1 sent in `Refused.reason`
//! (`tests/fixtures/stored-v1/wire.json`), so a worker and an object of
//! different releases understand each other during a deploy. Each text is
//! therefore frozen: [`tests::every_reason_keeps_its_wire_text`] pins
//! them. A text this release does not know (a newer object's) reads as
//! [`Reason::Unrecognized`], never as a failed reply.

use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize, Serializer};

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// A ledger refusal's reason. The text is for the log and the
        /// audit trail only, never for the client (RFC 6749 §5.2 answers
        /// carry only the [`super::protocol::Refusal`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$doc])* $variant,)*
            /// A text this release does not know (sent by a newer object).
            Unrecognized,
        }

        impl Reason {
            /// Every reason this release sends.
            #[cfg(test)]
            pub const ALL: &[Reason] = &[$(Reason::$variant,)*];

            /// The fixed text: on the wire, in the log and in the audit
            /// line's `reason`.
            pub fn text(self) -> &'static str {
                match self {
                    $(Reason::$variant => $text,)*
                    Reason::Unrecognized => "refused for a reason this release does not know",
                }
            }

            fn from_text(text: &str) -> Self {
                match text {
                    $($text => Reason::$variant,)*
                    _ => Reason::Unrecognized,
                }
            }
        }
    };
}

reasons! {
    // Codes (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2).
    CodeToAnotherLedger => "code presented to another client's ledger",
    UnknownCode => "unknown code",
    CodeOfAnotherClient => "code issued to another client",
    /// A used code presented without its PKCE verifier: refused, and the
    /// grant kept (RFC 9700 §4.5.3.1).
    CodeReplayedWithoutVerifier => "code replayed without its PKCE verifier; grant kept",
    /// RFC 6749 §4.1.2: a used code presented again; its grant ended.
    CodeReplayed => "code replayed; grant revoked",
    CodeExpired => "code expired",
    RedirectUriMismatch => "redirect_uri missing or differs from the authorization request",
    PkceFailed => "PKCE verification failed",
    CodeResourceMismatch => "resource differs from the authorization request",
    // Refresh tokens (RFC 6749 §6, OAuth 2.1 §4.3.1).
    RefreshToAnotherLedger => "refresh token presented to another client's ledger",
    UnknownRefreshToken => "unknown refresh token",
    GrantNotFound => "grant not found",
    RefreshOfAnotherClient => "refresh token issued to another client",
    GrantRevoked => "grant revoked",
    /// `TOKENS_NOT_BEFORE`: the grant is older than the kill switch.
    KillSwitch => "grant created before TOKENS_NOT_BEFORE",
    /// RFC 9700 §4.14.2: a rotated-out refresh token in use; its grant
    /// ended.
    RefreshReplayed => "rotated-out refresh token reused; grant revoked",
    RefreshExpired => "refresh token expired",
    ScopeExceedsGrant => "scope exceeds the grant",
    GrantResourceMismatch => "resource differs from the grant",
    // Logins and consent tickets: single use until they expire.
    UnknownLogin => "unknown login",
    LoginReplayed => "login state replayed",
    LoginExpired => "login state expired",
    TicketReplayed => "ticket replayed",
    TicketExpired => "ticket expired",
    /// The worker's own: an object answered a redemption with a refresh
    /// retry (never sent by an object).
    UnexpectedReply => "unexpected reply to a code redemption",
}

impl Reason {
    /// A replay (RFC 9700 §4.14.2): its own audit event, and the grant
    /// ended. A code replayed without its verifier is not one (the grant
    /// is kept: anyone holding a leaked used code could otherwise end it).
    pub fn is_replay(self) -> bool {
        matches!(self, Reason::CodeReplayed | Reason::RefreshReplayed)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.text())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)
            .map_err(|e| D::Error::custom(format!("a refusal reason: {e}")))?;
        Ok(Reason::from_text(&text))
    }
}

#[cfg(test)]
mod sent;

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire texts are frozen: a worker of the previous release (and
    /// the v1 fixtures) send exactly these. A new wording is a new
    /// variant, with the old text kept.
    #[test]
    fn every_reason_keeps_its_wire_text() {
        let pinned = [
            (
                Reason::CodeToAnotherLedger,
                "code presented to another client's ledger",
            ),
            (Reason::UnknownCode, "unknown code"),
            (Reason::CodeOfAnotherClient, "code issued to another client"),
            (
                Reason::CodeReplayedWithoutVerifier,
                "code replayed without its PKCE verifier; grant kept",
            ),
            (Reason::CodeReplayed, "code replayed; grant revoked"),
            (Reason::CodeExpired, "code expired"),
            (
                Reason::RedirectUriMismatch,
                "redirect_uri missing or differs from the authorization request",
            ),
            (Reason::PkceFailed, "PKCE verification failed"),
            (
                Reason::CodeResourceMismatch,
                "resource differs from the authorization request",
            ),
            (
                Reason::RefreshToAnotherLedger,
                "refresh token presented to another client's ledger",
            ),
            (Reason::UnknownRefreshToken, "unknown refresh token"),
            (Reason::GrantNotFound, "grant not found"),
            (
                Reason::RefreshOfAnotherClient,
                "refresh token issued to another client",
            ),
            (Reason::GrantRevoked, "grant revoked"),
            (Reason::KillSwitch, "grant created before TOKENS_NOT_BEFORE"),
            (
                Reason::RefreshReplayed,
                "rotated-out refresh token reused; grant revoked",
            ),
            (Reason::RefreshExpired, "refresh token expired"),
            (Reason::ScopeExceedsGrant, "scope exceeds the grant"),
            (
                Reason::GrantResourceMismatch,
                "resource differs from the grant",
            ),
            (Reason::UnknownLogin, "unknown login"),
            (Reason::LoginReplayed, "login state replayed"),
            (Reason::LoginExpired, "login state expired"),
            (Reason::TicketReplayed, "ticket replayed"),
            (Reason::TicketExpired, "ticket expired"),
            (
                Reason::UnexpectedReply,
                "unexpected reply to a code redemption",
            ),
        ];
        assert_eq!(pinned.len(), Reason::ALL.len(), "a reason without a pin");
        for (reason, text) in pinned {
            let wire = serde_json::to_value(reason).unwrap();
            assert_eq!(wire, text, "{reason:?}");
            assert_eq!(serde_json::from_value::<Reason>(wire).unwrap(), reason);
        }
    }

    #[test]
    fn an_unknown_text_is_unrecognized_not_a_failed_reply() {
        let r: Reason = serde_json::from_str(r#""a reason from a newer release""#).unwrap();
        assert_eq!(r, Reason::Unrecognized);
        assert!(serde_json::from_str::<Reason>("42").is_err());
    }

    #[test]
    fn only_the_two_revoking_replays_are_replays() {
        let replays: Vec<Reason> = Reason::ALL
            .iter()
            .copied()
            .filter(|r| r.is_replay())
            .collect();
        assert_eq!(replays, [Reason::CodeReplayed, Reason::RefreshReplayed]);
    }
}
