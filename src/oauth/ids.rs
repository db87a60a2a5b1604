//! The identifiers and secrets this server mints, and how they are
//! stored: the `pmcp_` token kinds and their two formats, hashes of
//! tokens, grant, login and ticket ids, the key a user is stored under,
//! and the routing id naming a (client, user) pair's object.
//!
//! Tokens and codes (access, refresh, authorization code) are minted in
//! the routed format: `<prefix>` + base64url(routing id 16 bytes ‖
//! issued-at u32 seconds, big-endian ‖ 24 random bytes ‖ tag 8 bytes),
//! 70 characters after the prefix. The tag is HMAC-SHA256(tag key,
//! prefix ‖ routing id ‖ issued-at ‖ random), truncated: checked in
//! constant time before anything is read from storage, so a forged or
//! garbled token costs no storage read. The previous release minted
//! `<prefix>` + 43 characters; those are told apart by length.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, UserKeys};
use crate::ports::{Entropy, EntropyError};
use crate::secret::PlausibleKey;

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

    /// A fresh routed value of this kind, for the pair `routing` names.
    pub fn mint_routed(
        self,
        entropy: &dyn Entropy,
        keys: &UserKeys,
        routing: &RoutingId,
        now_secs: u64,
    ) -> Result<String, EntropyError> {
        let mut random = [0u8; RANDOM_BYTES];
        entropy.fill(&mut random)?;
        let issued_at = u32::try_from(now_secs).unwrap_or(u32::MAX).to_be_bytes();
        let tag = self.tag(keys, &routing.0, &issued_at, &random);
        let mut body = Vec::with_capacity(ROUTED_BYTES);
        body.extend_from_slice(&routing.0);
        body.extend_from_slice(&issued_at);
        body.extend_from_slice(&random);
        body.extend_from_slice(&tag);
        Ok(format!("{}{}", self.prefix(), URL_SAFE_NO_PAD.encode(body)))
    }

    fn tag(
        self,
        keys: &UserKeys,
        routing: &[u8; ROUTING_BYTES],
        issued_at: &[u8; 4],
        random: &[u8; RANDOM_BYTES],
    ) -> [u8; TAG_BYTES] {
        let mac = keys.tag_mac(&[self.prefix().as_bytes(), routing, issued_at, random]);
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(mac.get(..TAG_BYTES).unwrap_or_default());
        tag
    }

    /// Whether `value` has a shape this server ever minted for this kind:
    /// the prefix, then the 43 base64url characters of the previous
    /// release ([`crypto::mint`]) or the 70 of the routed format. Nothing
    /// else can match a stored record, so anything else is refused before
    /// a key is used or storage is read (issue 12: a malformed token costs
    /// next to nothing).
    pub fn has_minted_shape(self, value: &str) -> bool {
        value.strip_prefix(self.prefix()).is_some_and(|body| {
            matches!(body.len(), LEGACY_CHARS | ROUTED_CHARS)
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    }

    /// Which format `value` is in, if it is of this kind. Reads nothing
    /// and checks no tag: see [`Format::Routed`].
    pub fn parse(self, value: &str) -> Option<Format> {
        let body = value.strip_prefix(self.prefix())?;
        if body.len() != ROUTED_CHARS {
            // Whatever the previous release minted (prefix + 43), or junk
            // that no stored hash matches: the legacy path, as before.
            return Some(Format::Legacy);
        }
        Some(
            Self::split(body).map_or(Format::Garbled, |(routing, issued_at, random, tag)| {
                Format::Routed(Unverified {
                    kind: self,
                    routing,
                    issued_at,
                    random,
                    tag,
                })
            }),
        )
    }

    #[allow(clippy::type_complexity)]
    fn split(
        body: &str,
    ) -> Option<(
        [u8; ROUTING_BYTES],
        [u8; 4],
        [u8; RANDOM_BYTES],
        [u8; TAG_BYTES],
    )> {
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        Some((
            bytes.get(..16)?.try_into().ok()?,
            bytes.get(16..20)?.try_into().ok()?,
            bytes.get(20..44)?.try_into().ok()?,
            bytes.get(44..52)?.try_into().ok()?,
        ))
    }
}

const ROUTING_BYTES: usize = 16;
const RANDOM_BYTES: usize = 24;
const TAG_BYTES: usize = 8;
/// routing ‖ issued-at ‖ random ‖ tag.
const ROUTED_BYTES: usize = ROUTING_BYTES + 4 + RANDOM_BYTES + TAG_BYTES;
/// base64url of [`ROUTED_BYTES`], unpadded.
const ROUTED_CHARS: usize = 70;
/// base64url of the previous release's [`crypto::TOKEN_BYTES`], unpadded.
const LEGACY_CHARS: usize = 43;

/// The format of a presented token or code.
#[derive(Debug)]
pub enum Format {
    /// Minted by the previous release: it lives in its client's legacy
    /// ledger (or KV), and its grant keeps minting this format.
    Legacy,
    /// Routed to its pair's object, once its tag checks out.
    Routed(Unverified),
    /// The routed length, but not base64url of a routed body: forged or
    /// garbled, refused without a storage read.
    Garbled,
}

/// A routed value whose tag is not checked yet: its routing id is
/// reachable only through [`Unverified::verify`].
#[derive(Debug)]
pub struct Unverified {
    kind: TokenKind,
    routing: [u8; ROUTING_BYTES],
    issued_at: [u8; 4],
    random: [u8; RANDOM_BYTES],
    tag: [u8; TAG_BYTES],
}

impl Unverified {
    /// The routing id and issue time, if the tag is ours (constant time).
    pub fn verify(&self, keys: &UserKeys) -> Option<Routed> {
        let expected = self
            .kind
            .tag(keys, &self.routing, &self.issued_at, &self.random);
        crate::secret::ct_eq(&expected, &self.tag).then(|| Routed {
            routing: RoutingId(self.routing),
            issued_at: u64::from(u32::from_be_bytes(self.issued_at)),
        })
    }
}

/// A routed value whose tag checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    pub routing: RoutingId,
    /// Seconds since the epoch, as minted.
    pub issued_at: u64,
}

/// Names the object of one (client, user) pair: HMAC(routing key,
/// client id ‖ 0 ‖ user key), truncated to 16 bytes. It reveals neither.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoutingId([u8; ROUTING_BYTES]);

impl RoutingId {
    pub fn of(keys: &UserKeys, client_id: &str, user: &UserKey) -> Self {
        let user = user.as_str().as_bytes();
        // The test build's per-client layout: one object for all users.
        #[cfg(feature = "test-hooks")]
        let user = if keys.per_client_routing { &[] } else { user };
        let mac = keys.routing_mac(&[client_id.as_bytes(), &[0], user]);
        let mut id = [0u8; ROUTING_BYTES];
        id.copy_from_slice(mac.get(..ROUTING_BYTES).unwrap_or_default());
        Self(id)
    }

    /// The Durable Object name of the pair's `GrantLedger`.
    pub fn object_name(&self) -> String {
        format!("g:{}", self.to_hex())
    }

    /// Lowercase hex, as listed in a user's directory and a client's index.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        <[u8; ROUTING_BYTES]>::try_from(bytes.as_slice())
            .ok()
            .map(Self)
    }
}

impl Serialize for RoutingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for RoutingId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_hex(&text).ok_or_else(|| serde::de::Error::custom("not a routing id"))
    }
}

impl std::fmt::Debug for RoutingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RoutingId({})", hex::encode(self.0))
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
    /// The key of the person with this (already normalised) email: hex
    /// HMAC-SHA256 under the user key (from `USER_KEY_SECRET`), so a store
    /// dump cannot be matched against a list of addresses.
    pub fn of_email(keys: &UserKeys, email: &str) -> Self {
        Self(hex::encode(
            keys.user_mac(format!("user:{email}").as_bytes()),
        ))
    }

    /// The user of a Plausible API key on `/mcp`: the same HMAC, over
    /// `plausible-key:<key>`, so no key can collide with an email's
    /// `user:<email>` (domain separation). Everyone holding the key is
    /// this one user: teammates who share a key share its consents and
    /// connections.
    pub fn of_plausible_key(keys: &UserKeys, key: &PlausibleKey) -> Self {
        Self(hex::encode(keys.user_mac(
            format!("plausible-key:{}", key.secret()).as_bytes(),
        )))
    }

    /// The short fingerprint admins see for a key's user: its first
    /// eight hex characters (a keyed hash, so it says nothing about the
    /// key to anyone without `USER_KEY_SECRET`).
    #[allow(dead_code)] // read by the connections page (byok2)
    pub fn fingerprint(&self) -> &str {
        self.0.get(..8).unwrap_or(&self.0)
    }

    /// The key the previous release stored people under (a bare SHA-256),
    /// still computed to find its consents.
    pub fn legacy_of_email(email: &str) -> Self {
        Self(crypto::token_hash(&format!("user:{email}")))
    }

    /// A key read back from storage (a consent's storage key) or from a
    /// link on the connections page: 64 lowercase hex characters, the
    /// shape of both kinds of key.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(text.to_owned()))
    }

    /// A key as stored, trusted as it is (the object wrote it).
    pub fn from_stored(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, user_keys};

    /// A key's user is keyed (no `USER_KEY_SECRET`, no match), stable,
    /// and domain-separated from emails: the key `x@example.com` is not
    /// the person `x@example.com`.
    #[test]
    fn plausible_key_users_are_keyed_and_apart_from_emails() {
        let k = user_keys();
        let key = PlausibleKey::new("x@example.com");
        let user = UserKey::of_plausible_key(&k, &key);
        assert_eq!(user, UserKey::of_plausible_key(&k, &key));
        assert_ne!(user, UserKey::of_email(&k, "x@example.com"));
        assert_ne!(
            user,
            UserKey::of_plausible_key(&k, &PlausibleKey::new("x@example.con"))
        );
        assert!(UserKey::parse(user.as_str()).is_some(), "64 hex characters");
        assert_eq!(user.fingerprint(), &user.as_str()[..8]);
        assert!(!user.as_str().contains("example"));
        let other = crate::crypto::UserKeys::derive(&crate::secret::ServerSecret::new(
            "another-user-key-secret-of-32-characters",
        ))
        .unwrap();
        assert_ne!(user, UserKey::of_plausible_key(&other, &key));
    }

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
    fn only_minted_shapes_pass_the_shape_check() {
        let p = FakePlatform::new();
        let k = user_keys();
        let routing = RoutingId::of(&k, "c", &UserKey::of_email(&k, "a@example.com"));
        let legacy = TokenKind::AccessToken.mint(&p).unwrap();
        let routed = TokenKind::AccessToken
            .mint_routed(&p, &k, &routing, 7)
            .unwrap();
        assert!(TokenKind::AccessToken.has_minted_shape(&legacy));
        assert!(TokenKind::AccessToken.has_minted_shape(&routed));
        let refused = [
            "not-a-token".to_owned(),
            "pmcp_at_".to_owned(),
            "pmcp_at_good".to_owned(),
            format!("{legacy}A"),
            legacy.replacen("pmcp_at_", "pmcp_rt_", 1),
            format!("{}=", &legacy[..legacy.len() - 1]),
            format!("{}é", &routed[..routed.len() - 2]),
            format!(" {legacy}"),
        ];
        for value in &refused {
            assert!(!TokenKind::AccessToken.has_minted_shape(value), "{value}");
        }
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
            UserKey::legacy_of_email("a@example.com"),
            UserKey::legacy_of_email("b@example.com")
        );
    }

    #[test]
    fn the_user_key_is_an_hmac_and_differs_from_the_legacy_one() {
        let k = user_keys();
        let key = UserKey::of_email(&k, "a@example.com");
        assert_eq!(key.as_str().len(), 64);
        assert_ne!(key, UserKey::legacy_of_email("a@example.com"));
        assert_eq!(
            UserKey::legacy_of_email("a@example.com").as_str(),
            crypto::token_hash("user:a@example.com")
        );
        let other = crate::crypto::UserKeys::derive(&crate::secret::ServerSecret::new(
            "another-user-key-secret-0123456789",
        ))
        .unwrap();
        assert_ne!(key, UserKey::of_email(&other, "a@example.com"), "keyed");
        assert_ne!(key, UserKey::of_email(&k, "b@example.com"));
    }

    #[test]
    fn routed_tokens_carry_their_pair_and_time_under_a_tag() {
        let p = FakePlatform::new();
        let k = user_keys();
        let user = UserKey::of_email(&k, "a@example.com");
        let routing = RoutingId::of(&k, "pmcp_client_A", &user);
        assert_ne!(routing, RoutingId::of(&k, "pmcp_client_B", &user));
        let name = routing.object_name();
        assert!(name.starts_with("g:") && name.len() == 34, "{name}");
        for kind in [
            TokenKind::AccessToken,
            TokenKind::RefreshToken,
            TokenKind::AuthorizationCode,
        ] {
            let value = kind.mint_routed(&p, &k, &routing, 1_773_576_000).unwrap();
            assert_eq!(value.len(), kind.prefix().len() + ROUTED_CHARS);
            let Some(Format::Routed(unverified)) = kind.parse(&value) else {
                panic!("{value}")
            };
            assert_eq!(
                unverified.verify(&k),
                Some(Routed {
                    routing,
                    issued_at: 1_773_576_000
                })
            );
            // Another kind's prefix on the same body fails its tag.
            let other = if kind == TokenKind::AccessToken {
                TokenKind::RefreshToken
            } else {
                TokenKind::AccessToken
            };
            let moved = value.replacen(kind.prefix(), other.prefix(), 1);
            let Some(Format::Routed(u)) = other.parse(&moved) else {
                panic!()
            };
            assert_eq!(u.verify(&k), None);
            // One changed character anywhere in the body fails it too.
            let body_at = kind.prefix().len();
            for i in [body_at, body_at + 20, value.len() - 1] {
                let mut bytes = value.clone().into_bytes();
                bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
                let garbled = String::from_utf8(bytes).unwrap();
                if let Some(Format::Routed(u)) = kind.parse(&garbled) {
                    assert_eq!(u.verify(&k), None, "{i}");
                }
            }
            // The previous release's format, by length.
            let legacy = kind.mint(&p).unwrap();
            assert!(matches!(kind.parse(&legacy), Some(Format::Legacy)));
            assert!(kind.parse("pmcp_xx_whatever").is_none());
        }
        let other_keys = crate::crypto::UserKeys::derive(&crate::secret::ServerSecret::new(
            "another-user-key-secret-0123456789",
        ))
        .unwrap();
        let value = TokenKind::RefreshToken
            .mint_routed(&p, &k, &routing, 5)
            .unwrap();
        let Some(Format::Routed(u)) = TokenKind::RefreshToken.parse(&value) else {
            panic!()
        };
        assert_eq!(u.verify(&other_keys), None);
        let junk = format!("pmcp_rt_{}", "!".repeat(ROUTED_CHARS));
        assert!(matches!(
            TokenKind::RefreshToken.parse(&junk),
            Some(Format::Garbled)
        ));
    }
}
