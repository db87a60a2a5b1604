//! What the connections page's two sessions share: a `__Host-` cookie
//! (Secure, Path=/, no Domain: no subdomain can set or read it, RFC 6265bis
//! §4.1.3.2) holding, sealed under the `Keyring` (AES-256-GCM with its key
//! id, bound to the kind's purpose), a random session id, who holds the
//! session and an expiry; and a CSRF token for the session's forms, an
//! HMAC (under the `Keyring`, the kind's own purpose) of the session id
//! (the synchronizer-token pattern, OWASP CSRF cheat sheet). Nothing is
//! stored server-side.
//!
//! Each kind keeps its own cookie name, seal purpose, CSRF purpose and
//! lifetime, so one kind's cookie or token never passes for the other's.

use std::fmt::Debug;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, Keyring};
use crate::http::{Headers, cookie};
use crate::ports::{Entropy, EntropyError};
use crate::secret::{CookieValue, SetCookie};

/// One kind of connections-page session.
pub trait SessionKind {
    /// The cookie's name (`__Host-`).
    const COOKIE: &'static str;
    /// The purpose the cookie is sealed under.
    const AAD: &'static str;
    /// The purpose the CSRF token is signed under.
    const CSRF_PURPOSE: &'static str;
    /// The session id's prefix.
    const ID_PREFIX: &'static str;
    /// How long a session lasts from its start.
    const LIFETIME: Duration;
    /// Who holds the session, sealed beside the id and expiry (its
    /// fields are flattened into the sealed object).
    type Holder: Clone + Debug + Serialize + DeserializeOwned;
}

/// The sealed cookie's body: `{"s": id, <holder's fields>, "e": expiry}`.
#[derive(Serialize, Deserialize)]
struct Sealed<H> {
    /// Session id.
    s: String,
    #[serde(flatten)]
    holder: H,
    /// Expiry, seconds.
    e: u64,
}

/// A session of kind `K` on the connections page.
#[derive(Clone, Debug)]
pub struct SealedSession<K: SessionKind> {
    id: CookieValue,
    holder: K::Holder,
    expires_at: u64,
}

impl<K: SessionKind> SealedSession<K> {
    /// A new session for `holder`, and the cookie that carries it.
    pub(super) fn begin(
        keys: &Keyring,
        entropy: &dyn Entropy,
        holder: K::Holder,
        now: u64,
    ) -> Result<(Self, SetCookie), EntropyError> {
        let sealed = Sealed {
            s: crypto::mint(entropy, K::ID_PREFIX)?,
            holder,
            e: now + K::LIFETIME.as_secs(),
        };
        let json = serde_json::to_vec(&sealed).map_err(|_| EntropyError)?;
        let value = keys.seal(entropy, &json, K::AAD)?;
        let cookie = SetCookie::new(format!(
            "{}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
            K::COOKIE,
            K::LIFETIME.as_secs()
        ));
        Ok((Self::from(sealed), cookie))
    }

    /// The session the request's cookie carries, if it opens and has not
    /// expired.
    pub fn of(keys: &Keyring, headers: &Headers, now: u64) -> Option<Self> {
        let value = cookie(headers, K::COOKIE)?;
        let json = keys.open(&value, K::AAD)?;
        let sealed: Sealed<K::Holder> = serde_json::from_slice(&json).ok()?;
        (now < sealed.e).then(|| Self::from(sealed))
    }

    pub(super) fn holder(&self) -> &K::Holder {
        &self.holder
    }

    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The CSRF token for this session's forms.
    pub fn csrf(&self, keys: &Keyring) -> String {
        keys.sign(K::CSRF_PURPOSE, self.id.secret().as_bytes())
    }

    /// Whether a posted token is this session's (constant time).
    pub fn csrf_ok(&self, keys: &Keyring, presented: Option<&str>) -> bool {
        presented.is_some_and(|t| keys.verify(K::CSRF_PURPOSE, self.id.secret().as_bytes(), t))
    }

    /// A `Set-Cookie` value that ends the session in this browser.
    pub fn clear() -> SetCookie {
        SetCookie::new(crate::oauth::flow::login::clear_cookie(K::COOKIE))
    }

    #[cfg(test)]
    pub(super) fn id(&self) -> &CookieValue {
        &self.id
    }
}

impl<K: SessionKind> From<Sealed<K::Holder>> for SealedSession<K> {
    fn from(s: Sealed<K::Holder>) -> Self {
        Self {
            id: CookieValue::new(s.s),
            holder: s.holder,
            expires_at: s.e,
        }
    }
}
