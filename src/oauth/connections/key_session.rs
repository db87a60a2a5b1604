//! The connections page for a Plausible key (issue 15): on `/mcp` the
//! user is the key (`UserKey::of_plausible_key`), and nobody signs in.
//! The page is opened by one of two proofs of holding the key:
//!
//! - the browser that approved a key grant: the approval sets a
//!   `__Host-` cookie ([`KEY_SESSION_COOKIE`]) sealed under the `Keyring`
//!   (AES-256-GCM with its key id, its own purpose) holding a random
//!   session id, the key's user key and an expiry 30 minutes on, like the
//!   sign-in session of `session`; nothing server-side;
//! - the key entered again on the page ([`KeyEntry`]): the same cookie
//!   is then set.
//!
//! The cookie carries the user key, never the key: it lets the page list
//! and revoke what that key connected, and nothing else (it cannot query
//! Plausible). Its forms carry a CSRF token, an HMAC of the session id
//! under a purpose of its own.
//!
//! The key entry form is shown signed out, so its CSRF token is bound to
//! a pre-session cookie ([`FORM_COOKIE`], random, `SameSite=Strict`): a
//! page elsewhere cannot post someone else's key into this browser
//! (login CSRF, OWASP CSRF cheat sheet "Login CSRF").

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sealed_session::{SealedSession, SessionKind};
use crate::crypto::{self, Keyring};
use crate::http::{Headers, cookie};
use crate::oauth::ids::UserKey;
use crate::ports::{Entropy, EntropyError};
use crate::secret::{CookieValue, SetCookie};

/// The key session's cookie.
pub const KEY_SESSION_COOKIE: &str = "__Host-pmcp_connections_key";
/// The key entry form's pre-session cookie.
pub const FORM_COOKIE: &str = "__Host-pmcp_connections_form";
/// How long a key session lasts, like a sign-in session.
pub const KEY_SESSION_LIFETIME: Duration = super::session::SESSION_LIFETIME;
/// How long the key entry form may be posted after the page was shown.
const FORM_LIFETIME: Duration = Duration::from_secs(30 * 60);
const FORM_PURPOSE: &str = "connections-key-form";

/// A session proven to hold one Plausible key.
#[derive(Clone, Debug)]
pub struct Key;

/// Who holds a key session: the key's user key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyHolder {
    u: UserKey,
}

impl SessionKind for Key {
    const COOKIE: &'static str = KEY_SESSION_COOKIE;
    const AAD: &'static str = "connections-key-session";
    const CSRF_PURPOSE: &'static str = "connections-key-csrf";
    const ID_PREFIX: &'static str = "k_";
    const LIFETIME: Duration = KEY_SESSION_LIFETIME;
    type Holder = KeyHolder;
}

/// A browser proven to hold one Plausible key.
pub type KeySession = SealedSession<Key>;

impl SealedSession<Key> {
    /// A new session for the key whose user key is `user`, and its cookie.
    pub fn start(
        keys: &Keyring,
        entropy: &dyn Entropy,
        user: &UserKey,
        now: u64,
    ) -> Result<(KeySession, SetCookie), EntropyError> {
        Self::begin(keys, entropy, KeyHolder { u: user.clone() }, now)
    }

    /// The key's user key.
    pub fn user(&self) -> &UserKey {
        &self.holder().u
    }
}

/// A `Set-Cookie` value that ends the key session in this browser.
pub fn clear() -> SetCookie {
    KeySession::clear()
}

/// The signed-out page's key entry form: a random pre-session cookie and
/// the CSRF token bound to it.
#[derive(Debug)]
pub struct KeyEntry {
    value: CookieValue,
}

impl KeyEntry {
    /// A fresh form for this browser, and the cookie it is bound to.
    pub fn start(entropy: &dyn Entropy) -> Result<(KeyEntry, SetCookie), EntropyError> {
        let value = crypto::mint(entropy, "f_")?;
        let cookie = SetCookie::new(format!(
            "{FORM_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
            FORM_LIFETIME.as_secs()
        ));
        Ok((
            KeyEntry {
                value: CookieValue::new(value),
            },
            cookie,
        ))
    }

    /// The form this browser's cookie belongs to, if it has one.
    pub fn of(headers: &Headers) -> Option<KeyEntry> {
        cookie(headers, FORM_COOKIE)
            .filter(|v| !v.is_empty())
            .map(|v| KeyEntry {
                value: CookieValue::new(v),
            })
    }

    /// The form's CSRF token.
    pub fn csrf(&self, keys: &Keyring) -> String {
        keys.sign(FORM_PURPOSE, self.value.secret().as_bytes())
    }

    /// Whether a posted token belongs to this browser's form (constant time).
    pub fn csrf_ok(&self, keys: &Keyring, presented: Option<&str>) -> bool {
        presented.is_some_and(|t| keys.verify(FORM_PURPOSE, self.value.secret().as_bytes(), t))
    }
}

/// A `Set-Cookie` value that drops the key entry form's cookie.
pub fn clear_form() -> SetCookie {
    SetCookie::new(crate::oauth::flow::login::clear_cookie(FORM_COOKIE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, keys, user_keys};

    fn jar(set: &SetCookie) -> Headers {
        let mut h = Headers::new();
        h.append("cookie", set.secret().split(';').next().unwrap().to_owned());
        h
    }

    fn user() -> UserKey {
        // Any user key will do here: the session does not care whose.
        UserKey::of_email(&user_keys(), "key-holder@example.com")
    }

    #[test]
    fn a_key_session_opens_until_it_expires_and_only_under_its_purpose() {
        let k = keys();
        let p = FakePlatform::new();
        let (session, set) = KeySession::start(&k, &p, &user(), 1000).unwrap();
        assert!(set.secret().starts_with("__Host-pmcp_connections_key="));
        for attr in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=1800",
        ] {
            assert!(set.secret().contains(attr), "{attr}");
        }
        assert!(
            !set.secret().contains(user().as_str()),
            "the user key is sealed"
        );
        let h = jar(&set);
        let opened = KeySession::of(&k, &h, 1000 + 1799).unwrap();
        assert_eq!(opened.user(), &user());
        assert_eq!(opened.expires_at(), session.expires_at());
        assert!(KeySession::of(&k, &h, 1000 + 1800).is_none(), "expired");
        // A person's session cookie value does not open as a key session.
        let id =
            crate::identity::admit("a@example.com", Some(true), &["example.com".into()]).unwrap();
        let (_, person) = super::super::session::Session::start(&k, &p, &id, 1000).unwrap();
        let value = person.secret().split(';').next().unwrap();
        let value = value.split_once('=').unwrap().1;
        let mut forged = Headers::new();
        forged.append("cookie", format!("{KEY_SESSION_COOKIE}={value}"));
        assert!(KeySession::of(&k, &forged, 1000).is_none());
        assert!(!format!("{opened:?}").contains(session.id().secret()));
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_session_and_purpose() {
        let k = keys();
        let p = FakePlatform::new();
        let (a, _) = KeySession::start(&k, &p, &user(), 1000).unwrap();
        let (b, _) = KeySession::start(&k, &p, &user(), 1000).unwrap();
        let token = a.csrf(&k);
        assert!(a.csrf_ok(&k, Some(&token)));
        assert!(!b.csrf_ok(&k, Some(&token)), "another session's token");
        assert!(!a.csrf_ok(&k, None));
        assert!(!a.csrf_ok(&k, Some("")));
        // The person session's token over the same id is another purpose.
        let person = k.sign("connections-csrf", a.id().secret().as_bytes());
        assert!(!a.csrf_ok(&k, Some(&person)));
    }

    #[test]
    fn the_key_entry_form_is_bound_to_its_browser() {
        let k = keys();
        let p = FakePlatform::new();
        let (form, set) = KeyEntry::start(&p).unwrap();
        for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(set.secret().contains(attr), "{attr}");
        }
        let token = form.csrf(&k);
        let here = KeyEntry::of(&jar(&set)).unwrap();
        assert!(here.csrf_ok(&k, Some(&token)));
        let (other, other_set) = KeyEntry::start(&p).unwrap();
        let there = KeyEntry::of(&jar(&other_set)).unwrap();
        assert!(!there.csrf_ok(&k, Some(&token)), "another browser's form");
        assert!(there.csrf_ok(&k, Some(&other.csrf(&k))));
        assert!(KeyEntry::of(&Headers::new()).is_none());
        assert!(!here.csrf_ok(&k, None));
        // A key session's token is not a form token.
        let (s, _) = KeySession::start(&k, &p, &user(), 1000).unwrap();
        assert!(!here.csrf_ok(&k, Some(&s.csrf(&k))));
    }
}
