//! Token minting and hashing, key derivation, and sealing data at rest.
//!
//! Primitives come from RustCrypto (sha2, hmac, hkdf, aes-gcm); this
//! module only fixes how the product uses them.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::ports::{Entropy, EntropyError};
use crate::secret::ServerSecret;

/// 256 bits: tokens and codes cannot be guessed (RFC 6749 §10.10,
/// OAuth 2.1 §7.1.2 asks for at least 128).
pub const TOKEN_BYTES: usize = 32;

/// A fresh random token: `prefix` + 43 base64url characters. The prefix
/// names the kind (`pmcp_at_`, `pmcp_rt_`, …) so a leaked value is easy to
/// recognise in secret scanners.
pub fn mint(entropy: &dyn Entropy, prefix: &str) -> Result<String, EntropyError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    entropy.fill(&mut bytes)?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The storage key of a token: hex SHA-256. A store dump yields no usable
/// token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A short stable identifier for a value (e.g. a Durable Object name for a
/// client id), not secret.
pub fn short_hash(value: &str) -> String {
    token_hash(value).chars().take(32).collect()
}

/// Keys derived from `COOKIE_SECRET` with HKDF-SHA256 (RFC 5869), one per
/// purpose, so no key is ever used for two jobs. What they seal or sign
/// carries their key id (see [`Keyring`]).
#[derive(Clone)]
pub struct Keys {
    seal: [u8; 32],
    /// One SHA-256 block, so `Mac::new` takes it without a length check.
    sign: [u8; 64],
    /// A short hash of the derived keys (never of the secret itself):
    /// names this key set in what it sealed or signed.
    kid: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

/// Why a server secret cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeakSecret;

impl Keys {
    /// At least 32 bytes of secret material are required.
    pub fn derive(secret: &ServerSecret) -> Result<Self, WeakSecret> {
        if secret.secret().len() < 32 {
            return Err(WeakSecret);
        }
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"plausible-mcp/v1"), secret.secret().as_bytes());
        let mut seal = [0u8; 32];
        let mut sign = [0u8; 64];
        hk.expand(b"seal: user properties at rest", &mut seal)
            .map_err(|_| WeakSecret)?;
        hk.expand(b"sign: state and cookies", &mut sign)
            .map_err(|_| WeakSecret)?;
        let mut id = Sha256::new();
        id.update(b"kid\0");
        id.update(seal);
        id.update(sign);
        let kid = hex::encode(id.finalize()).chars().take(KID_LEN).collect();
        Ok(Self { seal, sign, kid })
    }

    /// This key set's id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// AES-256-GCM with a random 96-bit nonce; `aad` binds the ciphertext
    /// to its record (a sealed value moved to another record fails to
    /// open). Output: base64url(nonce ‖ ciphertext).
    pub fn seal(
        &self,
        entropy: &dyn Entropy,
        plaintext: &[u8],
        aad: &str,
    ) -> Result<String, EntropyError> {
        let cipher = Aes256Gcm::new((&self.seal).into());
        let mut nonce = [0u8; 12];
        entropy.fill(&mut nonce)?;
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                aes_gcm::aead::Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| EntropyError)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let (nonce, ciphertext) = bytes.split_at_checked(12)?;
        Aes256Gcm::new((&self.seal).into())
            .decrypt(
                Nonce::from_slice(nonce),
                aes_gcm::aead::Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .ok()
    }

    /// HMAC-SHA256 over `purpose ‖ 0 ‖ data`, base64url.
    pub fn sign(&self, purpose: &str, data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, data))
    }

    /// Constant-time check of [`Keys::sign`] output.
    pub fn verify(&self, purpose: &str, data: &[u8], signature: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        crate::secret::ct_eq(&self.mac(purpose, data), &given)
    }

    fn mac(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new(&self.sign.into());
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Hex characters of a key id: enough to tell a handful of key sets apart,
/// too few to say anything about the keys.
const KID_LEN: usize = 8;

/// The `COOKIE_SECRET` key sets the server seals and signs with: the
/// current one, and (issue 11, `COOKIE_SECRET_PREVIOUS`) optionally the
/// one before it, so values sealed or signed before a rotation still open
/// until they expire.
///
/// Everything sealed or signed carries the key id of its set:
/// `<kid>.<payload>` (a `.` never occurs in base64url). A value without
/// a key id was written before key ids existed and is tried under every
/// set, current first.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: Keys,
    previous: Option<Keys>,
}

impl Keyring {
    pub fn new(current: Keys) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// The ring with `previous` (`COOKIE_SECRET_PREVIOUS`) also opening
    /// and verifying; sealing and signing stay with the current set.
    pub fn with_previous(self, previous: Keys) -> Self {
        Self {
            previous: Some(previous),
            ..self
        }
    }

    fn sets(&self) -> impl Iterator<Item = &Keys> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    fn by_kid(&self, kid: &str) -> Option<&Keys> {
        self.sets().find(|k| k.kid() == kid)
    }

    /// [`Keys::seal`] under the current set, with its key id.
    pub fn seal(
        &self,
        entropy: &dyn Entropy,
        plaintext: &[u8],
        aad: &str,
    ) -> Result<String, EntropyError> {
        let sealed = self.current.seal(entropy, plaintext, aad)?;
        Ok(format!("{}.{sealed}", self.current.kid))
    }

    /// Opens a value sealed under any set of the ring, or a legacy value
    /// without a key id.
    pub fn open(&self, sealed: &str, aad: &str) -> Option<Vec<u8>> {
        match sealed.split_once('.') {
            Some((kid, body)) => self.by_kid(kid)?.open(body, aad),
            None => self.sets().find_map(|k| k.open(sealed, aad)),
        }
    }

    /// [`Keys::sign`] under the current set: `<kid>.<signature>`.
    pub fn sign(&self, purpose: &str, data: &[u8]) -> String {
        format!("{}.{}", self.current.kid, self.current.sign(purpose, data))
    }

    /// Checks [`Keyring::sign`] output, or a legacy signature without a
    /// key id, in constant time.
    pub fn verify(&self, purpose: &str, data: &[u8], signature: &str) -> bool {
        match signature.split_once('.') {
            Some((kid, sig)) => self
                .by_kid(kid)
                .is_some_and(|k| k.verify(purpose, data, sig)),
            None => self.sets().any(|k| k.verify(purpose, data, signature)),
        }
    }
}

/// Keys derived from `USER_KEY_SECRET` with HKDF-SHA256 (RFC 5869). That
/// secret is never rotated: the user key names people in storage, and
/// routing ids name Durable Objects, so a new secret would orphan both.
#[derive(Clone)]
pub struct UserKeys {
    // One SHA-256 block each, so `Mac::new` takes them without a check.
    user: [u8; 64],
    routing: [u8; 64],
    tag: [u8; 64],
    /// Test build only (`TEST_GRANT_LAYOUT=per-client`): every routing id
    /// of a client names one object, the previous release's per-client
    /// layout, for the scale benchmark.
    #[cfg(feature = "test-hooks")]
    pub per_client_routing: bool,
}

impl std::fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserKeys([redacted])")
    }
}

impl UserKeys {
    /// At least 32 bytes of secret material are required.
    pub fn derive(secret: &ServerSecret) -> Result<Self, WeakSecret> {
        if secret.secret().len() < 32 {
            return Err(WeakSecret);
        }
        let hk = hkdf::Hkdf::<Sha256>::new(
            Some(b"plausible-mcp/user-keys/v1"),
            secret.secret().as_bytes(),
        );
        let mut keys = Self {
            user: [0; 64],
            routing: [0; 64],
            tag: [0; 64],
            #[cfg(feature = "test-hooks")]
            per_client_routing: false,
        };
        hk.expand(b"user key: who a record is for", &mut keys.user)
            .map_err(|_| WeakSecret)?;
        hk.expand(b"routing: which object holds a grant", &mut keys.routing)
            .map_err(|_| WeakSecret)?;
        hk.expand(b"tag: tokens and codes we minted", &mut keys.tag)
            .map_err(|_| WeakSecret)?;
        Ok(keys)
    }

    /// HMAC-SHA256 under the user key.
    pub fn user_mac(&self, data: &[u8]) -> [u8; 32] {
        hmac32(&self.user, &[data])
    }

    /// HMAC-SHA256 under the routing key over the concatenated parts.
    pub fn routing_mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        hmac32(&self.routing, parts)
    }

    /// HMAC-SHA256 under the tag key over the concatenated parts.
    pub fn tag_mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        hmac32(&self.tag, parts)
    }
}

fn hmac32(key: &[u8; 64], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new(key.into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePlatform;

    fn keys() -> Keys {
        Keys::derive(&ServerSecret::new("0123456789abcdef0123456789abcdef")).unwrap()
    }

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let p = FakePlatform::new();
        let a = mint(&p, "pmcp_at_").unwrap();
        let b = mint(&p, "pmcp_at_").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("pmcp_at_"));
        assert_eq!(a.len(), "pmcp_at_".len() + 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn sealing_round_trips_and_binds_to_aad() {
        let p = FakePlatform::new();
        let k = keys();
        let sealed = k.seal(&p, b"alice@example.com", "grant:1").unwrap();
        assert!(!sealed.contains("alice"));
        assert_eq!(k.open(&sealed, "grant:1").unwrap(), b"alice@example.com");
        assert!(k.open(&sealed, "grant:2").is_none());
        let other = Keys::derive(&ServerSecret::new("ffffffffffffffffffffffffffffffff")).unwrap();
        assert!(other.open(&sealed, "grant:1").is_none());
        assert!(k.open("not-base64!", "grant:1").is_none());
        assert!(k.open("", "grant:1").is_none());
    }

    #[test]
    fn signatures_are_purpose_bound() {
        let k = keys();
        let sig = k.sign("state", b"payload");
        assert!(k.verify("state", b"payload", &sig));
        assert!(!k.verify("cookie", b"payload", &sig));
        assert!(!k.verify("state", b"payload2", &sig));
        assert!(!k.verify("state", b"payload", "AAAA"));
    }

    #[test]
    fn sealed_and_signed_values_carry_the_key_id_and_legacy_ones_still_open() {
        let p = FakePlatform::new();
        let k = keys();
        let ring = Keyring::new(k.clone());
        let sealed = ring.seal(&p, b"alice", "aad").unwrap();
        let (kid, _) = sealed.split_once('.').unwrap();
        assert_eq!(kid, k.kid());
        assert_eq!(kid.len(), KID_LEN);
        assert_eq!(ring.open(&sealed, "aad").unwrap(), b"alice");
        // Written before key ids: no `kid.` in front.
        let legacy = k.seal(&p, b"bob", "aad").unwrap();
        assert_eq!(ring.open(&legacy, "aad").unwrap(), b"bob");
        assert!(ring.open(&format!("ffffffff.{legacy}"), "aad").is_none());
        let sig = ring.sign("state", b"x");
        assert!(sig.starts_with(&format!("{kid}.")));
        assert!(ring.verify("state", b"x", &sig));
        assert!(ring.verify("state", b"x", &k.sign("state", b"x")), "legacy");
        assert!(!ring.verify("state", b"y", &sig));
        assert!(!ring.verify(
            "state",
            b"x",
            &format!("ffffffff.{}", k.sign("state", b"x"))
        ));
        // The key id names the derived keys, not the secret text.
        let other = Keys::derive(&ServerSecret::new("ffffffffffffffffffffffffffffffff")).unwrap();
        assert_ne!(other.kid(), k.kid());
        assert!(!k.kid().contains("0123"));
        assert!(Keyring::new(other).open(&sealed, "aad").is_none());
    }

    #[test]
    fn user_keys_need_a_long_secret_and_separate_their_purposes() {
        assert!(UserKeys::derive(&ServerSecret::new("short")).is_err());
        let u = UserKeys::derive(&ServerSecret::new("user-key-secret-0123456789abcdef!")).unwrap();
        assert_ne!(u.user_mac(b"x"), u.routing_mac(&[b"x"]));
        assert_ne!(u.routing_mac(&[b"x"]), u.tag_mac(&[b"x"]));
        assert!(format!("{u:?}").contains("redacted"));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            Keys::derive(&ServerSecret::new("short")).unwrap_err(),
            WeakSecret
        );
        assert!(format!("{:?}", keys()).contains("redacted"));
    }
}
