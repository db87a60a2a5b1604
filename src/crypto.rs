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
/// purpose, so no key is ever used for two jobs.
#[derive(Clone)]
pub struct Keys {
    seal: [u8; 32],
    /// One SHA-256 block, so `Mac::new` takes it without a length check.
    sign: [u8; 64],
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
        Ok(Self { seal, sign })
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
    fn short_secrets_are_refused() {
        assert_eq!(
            Keys::derive(&ServerSecret::new("short")).unwrap_err(),
            WeakSecret
        );
        assert!(format!("{:?}", keys()).contains("redacted"));
    }
}
