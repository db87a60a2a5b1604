//! What a refresh re-checks about the grant's holder (issue 11, issue
//! 15): a person against the email gate as configured now; a key grant
//! of `/mcp` is handed back for its check with Plausible.

use serde_json::Value;

use crate::audit::Actor;
use crate::identity;
use crate::oauth::ids::TokenHash;
use crate::oauth::key_grant::{self, Held, Holder, KEY_RECHECK_SECS, Verdict};
use crate::oauth::ledger::client::Ledger;
use crate::oauth::ledger::protocol::Issued;
use crate::oauth::ledger::records::Subject;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::ClientId;

/// Each refresh applies the email gate as it is now (issue 11): the
/// grant's sealed identity is opened and the person admitted again. A
/// domain removed from `ALLOWED_EMAIL_DOMAIN`, or an identity that no
/// longer opens (`COOKIE_SECRET` rotated without
/// `COOKIE_SECRET_PREVIOUS`), ends the grant.
///
/// A key grant of `/mcp` is not a person's: the email gate does not
/// apply, and its key is returned for the hourly check with Plausible.
fn readmit(server: &AuthServer<'_>, subject: &Subject) -> Result<Option<Held>, &'static str> {
    let keys = server
        .settings
        .keys
        .as_ref()
        .ok_or("no COOKIE_SECRET to open the grant's identity")?;
    match key_grant::holder(keys, subject) {
        Holder::Key(held) => return Ok(Some(held)),
        Holder::Unreadable => {
            return Err("the grant's identity does not open under the configured keys");
        }
        Holder::Person => {}
    }
    let plain = keys
        .open(
            &subject.sealed_props,
            &format!("subject:{}", subject.user_key.as_str()),
        )
        .ok_or("the grant's identity does not open under the configured keys")?;
    let email = serde_json::from_slice::<Value>(&plain)
        .ok()
        .and_then(|v| v.get("email").and_then(Value::as_str).map(str::to_owned))
        .ok_or("the grant's identity holds no email")?;
    identity::admit(&email, None, &server.settings.allowed_email_domains)
        .map(|_| None)
        .map_err(|_| "the email gate refuses the grant's user now; grant revoked")
}

/// A key grant's check at refresh (issue 15): Plausible is asked whether
/// it still accepts the key, reading the grant's own sites (the ones the
/// person kept on the consent page; the key form's if the grant names
/// none), at most once an hour per grant (`checked_at`: the last time it
/// said yes). See [`key_grant::recheck`].
/// When Plausible says yes, the grant (named by its newest refresh token
/// and client) records the time; a failure to record is only logged: the
/// next refresh asks again.
async fn recheck<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    ledger: &Ledger<'_, P>,
    (newest, client): (TokenHash, &ClientId),
    held: &Held,
    (checked_at, granted): (Option<u64>, Option<&[String]>),
) -> Option<Verdict> {
    let now = platform.now().as_secs();
    if checked_at.is_some_and(|at| now < at.saturating_add(KEY_RECHECK_SECS)) {
        return None;
    }
    let Some(base) = &server.settings.plausible_base_url else {
        return Some(Verdict::Unknown);
    };
    let sites = granted.filter(|s| !s.is_empty()).unwrap_or(&held.sites);
    let verdict = key_grant::recheck(platform, base, &held.key, sites).await;
    if verdict == Verdict::Accepted
        && let Err(e) = ledger.key_checked(newest, client, now).await
    {
        platform.warn(&format!("token: key check not recorded: {}", e.0));
    }
    Some(verdict)
}

/// Why a refresh ends its grant after the ledger rotated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ended {
    /// The email gate refuses the person now (or their identity no
    /// longer opens).
    Gate(&'static str),
    /// Plausible no longer accepts a key grant's key.
    KeyRefused,
}

impl Ended {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Ended::Gate(reason) => reason,
            Ended::KeyRefused => "Plausible no longer accepts the grant's key; grant revoked",
        }
    }

    pub(super) fn actor(self) -> Actor {
        match self {
            Ended::Gate(_) => Actor::EmailGate,
            Ended::KeyRefused => Actor::PlausibleKeyCheck,
        }
    }
}

/// The grant's holder, checked at refresh: a person against the email
/// gate, a key grant with Plausible at most hourly.
pub(super) async fn holder_ends<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    ledger: &Ledger<'_, P>,
    newest: (TokenHash, &ClientId),
    issued: &Issued,
) -> Option<Ended> {
    match issued.subject.as_ref().map(|s| readmit(server, s)) {
        Some(Err(reason)) => Some(Ended::Gate(reason)),
        Some(Ok(Some(held))) => {
            let verdict = recheck(
                platform,
                server,
                ledger,
                newest,
                &held,
                (issued.key_checked_at, issued.sites.as_deref()),
            );
            (verdict.await == Some(Verdict::Refused)).then_some(Ended::KeyRefused)
        }
        Some(Ok(None)) | None => None,
    }
}
