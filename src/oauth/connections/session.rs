//! The connections page's session: after a sign-in for the page, a
//! `__Host-` cookie (Secure, Path=/, no Domain: no subdomain can set or
//! read it, RFC 6265bis §4.1.3.2) holding, sealed under the `Keyring`
//! (AES-256-GCM with its key id, bound to its purpose), a random session
//! id, the admitted email and an expiry 30 minutes on. Nothing is
//! stored server-side; signing out clears the cookie, and a session ends
//! by itself within 30 minutes.
//!
//! Every POST of the page carries a CSRF token: an HMAC (under the
//! `Keyring`, its own purpose) of the session id, so a token is good for
//! one session only and a page from another origin can neither read nor
//! forge it (the synchronizer-token pattern, OWASP CSRF cheat sheet).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sealed_session::{SealedSession, SessionKind};
use crate::crypto::Keyring;
use crate::identity::Identity;
use crate::ports::{Entropy, EntropyError};
use crate::secret::{Email, SetCookie};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-pmcp_connections";
/// How long a session lasts from its sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A signed-in person's session.
#[derive(Clone, Debug)]
pub struct Person;

/// Who holds a person's session: the admitted email.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedIn {
    m: Email,
}

impl SessionKind for Person {
    const COOKIE: &'static str = SESSION_COOKIE;
    const AAD: &'static str = "connections-session";
    const CSRF_PURPOSE: &'static str = "connections-csrf";
    const ID_PREFIX: &'static str = "s_";
    const LIFETIME: Duration = SESSION_LIFETIME;
    type Holder = SignedIn;
}

/// A signed-in person on the connections page.
pub type Session = SealedSession<Person>;

impl SealedSession<Person> {
    /// A new session for `identity`, and the cookie that carries it.
    pub fn start(
        keys: &Keyring,
        entropy: &dyn Entropy,
        identity: &Identity,
        now: u64,
    ) -> Result<(Session, SetCookie), EntropyError> {
        let holder = SignedIn {
            m: Email::new(identity.email()),
        };
        Self::begin(keys, entropy, holder, now)
    }

    /// The signed-in address, lowercased. Personal data: never log it.
    pub fn email(&self) -> &str {
        self.holder().m.secret()
    }
}

/// A `Set-Cookie` value that ends the session in this browser.
pub fn clear() -> SetCookie {
    Session::clear()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Headers;
    use crate::identity;
    use crate::testing::{FakePlatform, keys};

    fn jar(set: &SetCookie) -> Headers {
        let mut h = Headers::new();
        h.append("cookie", set.secret().split(';').next().unwrap().to_owned());
        h
    }

    fn alice() -> Identity {
        identity::admit("Alice@Example.com", Some(true), &["example.com".into()]).unwrap()
    }

    #[test]
    fn a_session_opens_until_it_expires_and_only_under_its_keys() {
        let k = keys();
        let p = FakePlatform::new();
        let (session, set) = Session::start(&k, &p, &alice(), 1000).unwrap();
        assert!(set.secret().starts_with("__Host-pmcp_connections="));
        for attr in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=1800",
        ] {
            assert!(set.secret().contains(attr), "{attr}");
        }
        assert!(!set.secret().contains("alice"), "the email is sealed");
        let h = jar(&set);
        let opened = Session::of(&k, &h, 1000 + 1799).unwrap();
        assert_eq!(opened.email(), "alice@example.com");
        assert_eq!(opened.expires_at(), session.expires_at());
        assert!(Session::of(&k, &h, 1000 + 1800).is_none(), "expired");
        let other = crate::crypto::Keyring::new(
            crate::crypto::Keys::derive(&crate::secret::ServerSecret::new(
                "ffffffffffffffffffffffffffffffff",
            ))
            .unwrap(),
        );
        assert!(Session::of(&other, &h, 1000).is_none(), "other key");
        // A value sealed for another purpose (a login cookie) does not open.
        let mut forged = Headers::new();
        let value = k
            .seal(
                &p,
                br#"{"s":"x","m":"a@example.com","e":9999}"#,
                "login-cookie",
            )
            .unwrap();
        forged.append("cookie", format!("{SESSION_COOKIE}={value}"));
        assert!(Session::of(&k, &forged, 1000).is_none());
        assert!(Session::of(&k, &Headers::new(), 1000).is_none());
        assert!(format!("{opened:?}").contains("redacted"));
        assert!(!format!("{opened:?}").contains("alice"));
    }

    #[test]
    fn the_sealed_body_keeps_its_wire_shape() {
        // Cookies sealed before the sessions shared one helper still open.
        let k = keys();
        let p = FakePlatform::new();
        let value = k
            .seal(
                &p,
                br#"{"s":"s_x","m":"a@example.com","e":9999}"#,
                "connections-session",
            )
            .unwrap();
        let mut h = Headers::new();
        h.append("cookie", format!("{SESSION_COOKIE}={value}"));
        let opened = Session::of(&k, &h, 1000).unwrap();
        assert_eq!(opened.email(), "a@example.com");
        assert_eq!(opened.expires_at(), 9999);
        let (_, set) = Session::start(&k, &p, &alice(), 1000).unwrap();
        let sealed = set.secret().split(';').next().unwrap();
        let json = k
            .open(sealed.split_once('=').unwrap().1, "connections-session")
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let fields: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, ["e", "m", "s"]);
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_session() {
        let k = keys();
        let p = FakePlatform::new();
        let (a, _) = Session::start(&k, &p, &alice(), 1000).unwrap();
        let (b, _) = Session::start(&k, &p, &alice(), 1000).unwrap();
        let token = a.csrf(&k);
        assert!(a.csrf_ok(&k, Some(&token)));
        assert!(!b.csrf_ok(&k, Some(&token)), "another session's token");
        assert!(!a.csrf_ok(&k, None));
        assert!(!a.csrf_ok(&k, Some("")));
        assert!(!a.csrf_ok(&k, Some(&format!("{token}x"))));
        // The consent page's token for the same bytes is another purpose.
        let consent = k.sign("consent-csrf", a.id().secret().as_bytes());
        assert!(!a.csrf_ok(&k, Some(&consent)));
    }
}
