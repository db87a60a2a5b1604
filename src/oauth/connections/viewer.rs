//! Who is looking at `/connections`: the sessions a request carries (a
//! signed-in person's, a Plausible key's, or both), the signed-out page
//! with its key form, and `POST /connections/key`, where a key entered
//! again opens a key session (issue 15; see `key_session`).

use super::error::{ConnectionsError, Outcome, from_this_origin, keys, posted_form, redirect};
use super::key_session::{self, KeyEntry, KeySession};
use super::session::Session;
use crate::audit::{self, Event, Record};
use crate::crypto::{Keyring, UserKeys};
use crate::http::{Method, Request};
use crate::oauth::ids::UserKey;
use crate::oauth::key_grant;
use crate::oauth::server::{AuthServer, Platform};
use crate::pages;
use crate::secret::PlausibleKey;

/// The sessions a request carries: a signed-in person's, a key's, or both.
pub(super) struct Viewer {
    pub(super) person: Option<Session>,
    pub(super) key: Option<KeySession>,
}

impl Viewer {
    pub(super) fn of(ring: &Keyring, request: &Request, now: u64) -> Option<Viewer> {
        let person = Session::of(ring, &request.headers, now);
        let key = KeySession::of(ring, &request.headers, now);
        (person.is_some() || key.is_some()).then_some(Viewer { person, key })
    }

    /// The one CSRF token of the page's forms: the person's session's if
    /// signed in, else the key session's.
    pub(super) fn csrf(&self, ring: &Keyring) -> String {
        match (&self.person, &self.key) {
            (Some(p), _) => p.csrf(ring),
            (None, Some(k)) => k.csrf(ring),
            (None, None) => String::new(),
        }
    }

    pub(super) fn csrf_ok(&self, ring: &Keyring, presented: Option<&str>) -> bool {
        self.person
            .as_ref()
            .is_some_and(|p| p.csrf_ok(ring, presented))
            || self
                .key
                .as_ref()
                .is_some_and(|k| k.csrf_ok(ring, presented))
    }

    pub(super) fn admin(&self, server: &AuthServer<'_>) -> bool {
        self.person
            .as_ref()
            .is_some_and(|p| server.settings.admins.includes(p.email()))
    }

    /// The user keys whose pairs this viewer may revoke.
    pub(super) fn users(&self, user_keys: &UserKeys) -> Vec<UserKey> {
        let mut out = Vec::new();
        if let Some(p) = &self.person {
            out.push(UserKey::of_email(user_keys, p.email()));
        }
        if let Some(k) = &self.key {
            out.push(k.user().clone());
        }
        out
    }
}

/// The signed-out page, with a fresh key form bound to this browser.
pub(super) fn signed_out<P: Platform>(platform: &P, ring: &Keyring) -> Outcome {
    let (entry, cookie) = KeyEntry::start(platform).map_err(|_| ConnectionsError::Entropy)?;
    let mut page = pages::signed_out_page(&entry.csrf(ring));
    page.headers.append("set-cookie", cookie.secret());
    Ok(page)
}

/// `POST /connections/key`: the Plausible key entered again opens a key
/// session. The key is not sent to Plausible and not kept: its keyed hash
/// (the user key its grants were made under) is all the page needs, and
/// matching it is the proof of holding the key. So the form tells nobody
/// whether a key is valid at Plausible (no key checker), and a key already
/// revoked there can still end what it left connected here. Counted by
/// the key form's per-address rate limit (`lib.rs`).
pub async fn enter_key<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    request: &Request,
) -> Outcome {
    if request.method != Method::Post {
        return Err(ConnectionsError::BadRequest("use POST"));
    }
    let (ring, user_keys) = keys(server)?;
    from_this_origin(server, request)?;
    let form = posted_form(request)?;
    let entry = KeyEntry::of(&request.headers).ok_or(ConnectionsError::Csrf)?;
    if !entry.csrf_ok(ring, form.get("csrf").map(String::as_str)) {
        return Err(ConnectionsError::Csrf);
    }
    let raw = form.get("api_key").map(|k| k.trim()).unwrap_or("");
    if !key_grant::well_formed(raw) {
        return Err(ConnectionsError::NotAKey);
    }
    let user = UserKey::of_plausible_key(user_keys, &PlausibleKey::new(raw));
    let now = platform.now().as_secs();
    let (_, cookie) =
        KeySession::start(ring, platform, &user, now).map_err(|_| ConnectionsError::Entropy)?;
    server.audit(
        platform,
        Record::new(Event::SignIn, audit::Outcome::Success)
            .reason("connections: plausible key entered")
            .user(&user),
    );
    Ok(redirect(
        303,
        "/connections",
        &[cookie, key_session::clear_form()],
    ))
}
