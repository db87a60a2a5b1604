//! The identifiers and secrets this server mints, and how they are
//! stored: the `pmcp_` token kinds, hashes of tokens, grant, login and
//! ticket ids, and the key a user is stored under.

use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::ports::{Entropy, EntropyError};

/// Every kind of value we mint and hand out, and its prefix. A prefix
/// names the kind, so a leaked value is recognisable (secret scanners)
/// and a token offered to the wrong endpoint is refused by its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// RFC 6749 §1.4.
    AccessToken,
    /// RFC 6749 §1.5.
    RefreshToken,
    /// RFC 6749 §4.1.2.
    AuthorizationCode,
    /// A registered client's id (RFC 7591 §3.2.1).
    ClientId,
    /// A confidential client's secret (RFC 7591 §3.2.1).
    ClientSecret,
}

/// What every value we mint starts with.
const FAMILY: &str = "pmcp_";

impl TokenKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            TokenKind::AccessToken => "pmcp_at_",
            TokenKind::RefreshToken => "pmcp_rt_",
            TokenKind::AuthorizationCode => "pmcp_ac_",
            TokenKind::ClientId => "pmcp_client_",
            TokenKind::ClientSecret => "pmcp_cs_",
        }
    }

    /// A fresh value of this kind: the prefix and 256 random bits.
    pub fn mint(self, entropy: &dyn Entropy) -> Result<String, EntropyError> {
        crypto::mint(entropy, self.prefix())
    }

    /// Whether `value` claims to be of this kind.
    pub fn is_kind_of(self, value: &str) -> bool {
        value.starts_with(self.prefix())
    }

    /// Whether `value` looks like anything this server minted (so it must
    /// never be forwarded elsewhere, e.g. to Plausible).
    pub fn is_ours(value: &str) -> bool {
        value.starts_with(FAMILY)
    }
}

/// How a token is stored: hex SHA-256 of its plaintext. A store dump
/// yields no usable token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(crypto::token_hash(token))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Declares an opaque id newtype minted with a short prefix.
macro_rules! minted_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn mint(entropy: &dyn Entropy) -> Result<Self, EntropyError> {
                crypto::mint(entropy, $prefix).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A fixed id for tests.
            #[cfg(test)]
            pub fn fixed(raw: &str) -> Self {
                Self(raw.to_owned())
            }
        }
    };
}

minted_id!(
    /// One user's authorization of one client, across refreshes.
    GrantId,
    "g_"
);
minted_id!(
    /// An upstream login in progress.
    LoginId,
    "l_"
);
minted_id!(
    /// A consent ticket, spent once.
    TicketId,
    "t_"
);

/// Who a record is for, stored in the clear: a hash of the email, never
/// the email itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserKey(String);

impl UserKey {
    /// The key of the person with this (already normalised) email.
    pub fn of_email(email: &str) -> Self {
        Self(crypto::token_hash(&format!("user:{email}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePlatform;

    #[test]
    fn each_kind_mints_under_its_own_prefix() {
        let p = FakePlatform::new();
        let kinds = [
            TokenKind::AccessToken,
            TokenKind::RefreshToken,
            TokenKind::AuthorizationCode,
            TokenKind::ClientId,
            TokenKind::ClientSecret,
        ];
        for kind in kinds {
            let value = kind.mint(&p).unwrap();
            assert!(kind.is_kind_of(&value) && TokenKind::is_ours(&value));
            assert_eq!(value.len(), kind.prefix().len() + 43);
            for other in kinds.iter().filter(|k| **k != kind) {
                assert!(!other.is_kind_of(&value), "{kind:?} vs {other:?}");
            }
        }
        assert!(!TokenKind::is_ours("plausible-key-1"));
    }

    #[test]
    fn ids_and_hashes_are_plain_strings_when_stored() {
        let hash = TokenHash::of("pmcp_at_x");
        assert_eq!(hash.as_str().len(), 64);
        assert_eq!(
            serde_json::to_string(&hash).unwrap(),
            format!("\"{}\"", hash.as_str())
        );
        let grant = GrantId::mint(&FakePlatform::new()).unwrap();
        assert!(grant.as_str().starts_with("g_"));
        let back: GrantId = serde_json::from_str(&serde_json::to_string(&grant).unwrap()).unwrap();
        assert_eq!(back, grant);
        assert_ne!(
            UserKey::of_email("a@example.com"),
            UserKey::of_email("b@example.com")
        );
    }
}
