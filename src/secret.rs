//! Secret values: redacted in `Debug`, compared in constant time, and
//! reachable only through `.secret()` so every use is visible in review.

use subtle::ConstantTimeEq;

/// Constant-time equality of two byte strings. Length is not secret.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Declares a string secret newtype.
macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Never log or format the result.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                $crate::secret::ct_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl Eq for $name {}
    };
    // Stored or sealed as a plain JSON string, redacted everywhere else.
    ($(#[$meta:meta])* stored $name:ident) => {
        secret_string!($(#[$meta])* $name);

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self)
            }
        }
    };
}

secret_string!(
    /// A Plausible Stats API key (the caller's on `/mcp`, the shared one on
    /// `/internal`). Serialised only into sealed consent tickets.
    stored PlausibleKey
);

secret_string!(
    /// An OAuth access token we issued (RFC 6749 §1.4). Stored only hashed.
    AccessToken
);
secret_string!(
    /// An OAuth refresh token we issued (RFC 6749 §1.5). Stored only hashed.
    RefreshToken
);
secret_string!(
    /// An authorization code (RFC 6749 §4.1.2). Stored only hashed.
    AuthorizationCode
);
secret_string!(
    /// A confidential client's secret (RFC 7591 §3.2.1). Stored only hashed.
    ClientSecret
);
secret_string!(
    /// A PKCE code verifier (RFC 7636 §4.1); ours for the upstream login
    /// is kept in the login record until the callback.
    stored PkceVerifier
);
secret_string!(
    /// The OpenID Connect `nonce` of an upstream login (OIDC Core
    /// §3.1.2.1), kept in the login record until the ID token returns.
    stored LoginNonce
);
secret_string!(
    /// The random value of a login's browser-binding cookie.
    CookieValue
);
secret_string!(
    /// A whole `Set-Cookie` header value carrying a cookie value.
    SetCookie
);
secret_string!(
    /// A person's email address: personal data, kept out of logs. Sealed
    /// inside consent tickets.
    stored Email
);
secret_string!(
    /// `COOKIE_SECRET`: the server key from which the keys for state
    /// signing, cookie signing and at-rest encryption are derived.
    ServerSecret
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = PlausibleKey::new("pk_live_SECRET");
        assert_eq!(format!("{key:?}"), "PlausibleKey([redacted])");
        assert_eq!(
            format!("{:?}", Some(key.clone())),
            "Some(PlausibleKey([redacted]))"
        );
        assert_eq!(key.secret(), "pk_live_SECRET");
    }

    #[test]
    fn every_secret_type_redacts() {
        let printed = format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            AccessToken::new("s1"),
            RefreshToken::new("s2"),
            AuthorizationCode::new("s3"),
            ClientSecret::new("s4"),
            PkceVerifier::new("s5"),
            ServerSecret::new("s6"),
            LoginNonce::new("s7"),
            CookieValue::new("s8"),
            SetCookie::new("s9"),
            Email::new("s10@example.com"),
        );
        for s in ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10"] {
            assert!(!printed.contains(s), "{printed}");
        }
        assert!(printed.contains("RefreshToken([redacted])"));
    }

    #[test]
    fn stored_secrets_keep_a_plain_string_shape() {
        let v = PkceVerifier::new("verifier-1");
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"verifier-1\"");
        let back: PkceVerifier = serde_json::from_str("\"verifier-1\"").unwrap();
        assert_eq!(back, v);
        assert_eq!(format!("{back:?}"), "PkceVerifier([redacted])");
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(PlausibleKey::new("a"), PlausibleKey::new("a"));
        assert_ne!(PlausibleKey::new("a"), PlausibleKey::new("b"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
