//! ID token (and Cloudflare Access JWT) verification.
//!
//! Follows OpenID Connect Core 1.0 §3.1.3.7 ("ID Token Validation"); each
//! numbered step is noted beside its code. Only RS256 is accepted: an
//! attacker cannot choose `none`, an HMAC algorithm keyed with our public
//! key, or anything else (RFC 8725 §3.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::ports::{RsaPublicKey, SignatureCheck};

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 60;

/// RFC 7518 §3.3: RS256 keys are at least 2048 bits. The upper bound
/// keeps one verification's cost bounded (and is the `rsa` crate's).
const MIN_MODULUS_BITS: usize = 2048;
const MAX_MODULUS_BITS: usize = 4096;

/// One key of a JWKS that can verify RS256.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    key: RsaPublicKey,
}

/// The usable keys of a JSON Web Key Set (RFC 7517 §5).
#[derive(Clone, Default)]
pub struct KeySet(Vec<Key>);

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|k| k.kid.as_deref().unwrap_or("-")))
            .finish()
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<RawKey>,
}

/// The members of a JWK we read (RFC 7517 §4, RFC 7518 §6.3.1); others
/// are ignored. A member of the wrong JSON type makes the whole set
/// unreadable, as before.
#[derive(Deserialize)]
struct RawKey {
    kty: Option<String>,
    n: Option<String>,
    e: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
}

/// An unsigned big-endian integer without its leading zero bytes.
fn unsigned(b64: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).ok()?;
    let first = bytes.iter().position(|b| *b != 0)?;
    bytes.get(first..).map(<[u8]>::to_vec)
}

/// Bits of a big-endian integer without leading zero bytes.
fn bit_length(bytes: &[u8]) -> usize {
    let lead = bytes.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
    bytes
        .len()
        .saturating_sub(1)
        .saturating_mul(8)
        .saturating_add(lead)
}

impl RawKey {
    /// The RSA public key, if it is one RS256 may use: a modulus of
    /// 2048 to 4096 bits, an odd public exponent of at least 3 and at
    /// most 2^33 - 1 (the bounds the `rsa` crate and BoringSSL accept).
    fn rsa(&self) -> Option<RsaPublicKey> {
        if self.kty.as_deref() != Some("RSA") {
            return None;
        }
        let n = unsigned(self.n.as_deref()?)?;
        let e = unsigned(self.e.as_deref()?)?;
        let bits = bit_length(&n);
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) {
            return None;
        }
        let exponent = e.iter().try_fold(0u64, |acc, b| {
            acc.checked_mul(256).map(|a| a | u64::from(*b))
        })?;
        if !(3..1 << 33).contains(&exponent) || exponent % 2 == 0 {
            return None;
        }
        Some(RsaPublicKey { n, e })
    }
}

impl KeySet {
    /// Keeps the RSA signing keys usable for RS256; skips the rest.
    /// `None` when the document is not a JWKS at all.
    pub fn parse(json: &[u8]) -> Option<Self> {
        let raw: RawSet = serde_json::from_slice(json).ok()?;
        let keys = raw
            .keys
            .iter()
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == "RS256"))
            .filter(|k| k.usage.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                k.rsa().map(|key| Key {
                    kid: k.kid.clone(),
                    key,
                })
            })
            .collect();
        Some(Self(keys))
    }

    #[cfg(test)]
    pub fn has_kid(&self, kid: &str) -> bool {
        self.0.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the token must say.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// The nonce sent in the authentication request; `None` for tokens
    /// that carry none (Access application tokens).
    pub nonce: Option<&'a str>,
    pub now_secs: i64,
}

/// Why a token is refused. Each maps to a check below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRejected {
    Malformed,
    /// Anything but RS256, including `none` and HS256.
    Algorithm(String),
    /// No key with the token's `kid` (callers may refetch the JWKS once).
    UnknownKey,
    Signature,
    Issuer,
    Audience,
    AuthorizedParty,
    Expired,
    NotYetValid,
    IssuedInTheFuture,
    Nonce,
    MissingClaim(&'static str),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn list(&self) -> Vec<&str> {
        match self {
            Audience::One(a) => vec![a.as_str()],
            Audience::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Deserialize)]
struct RawClaims {
    // RFC 7519 §4.1.4–6: NumericDate, whole seconds here (what every
    // provider we federate to sends).
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    azp: Option<String>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
}

/// The claims we use from a verified token.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    pub subject: String,
    pub email: Option<String>,
    /// `None` when the provider does not say (Cloudflare Access does not).
    pub email_verified: Option<bool>,
}

impl std::fmt::Debug for VerifiedClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedClaims")
            .field("email_verified", &self.email_verified)
            .finish_non_exhaustive()
    }
}

/// The JOSE header members we read (RFC 7515 §4.1).
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// A compact JWS split and decoded (RFC 7515 §7.1), nothing verified.
struct Untrusted<'a> {
    header: RawHeader,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: what is signed.
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Untrusted<'a> {
    /// Exactly three base64url parts (no padding), a JSON header.
    fn parse(token: &'a str) -> Result<Self, TokenRejected> {
        let malformed = |_| TokenRejected::Malformed;
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenRejected::Malformed)?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or(TokenRejected::Malformed)?;
        if payload.contains('.') {
            return Err(TokenRejected::Malformed);
        }
        let header: RawHeader =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(malformed)?)
                .map_err(|_| TokenRejected::Malformed)?;
        Ok(Self {
            header,
            signing_input,
            payload: URL_SAFE_NO_PAD.decode(payload).map_err(malformed)?,
            signature: URL_SAFE_NO_PAD.decode(signature).map_err(malformed)?,
        })
    }
}

/// Verifies a compact JWS ID token against `keys` and `expected`; the
/// signature itself is checked by `crypto` (WebCrypto in the worker).
pub async fn verify<C: SignatureCheck>(
    crypto: &C,
    token: &str,
    keys: &KeySet,
    expected: &Expected<'_>,
) -> Result<VerifiedClaims, TokenRejected> {
    let untrusted = Untrusted::parse(token)?;
    let header = &untrusted.header;
    // Step 6/7 (and RFC 8725 §3.1): the algorithm is ours to choose, not
    // the token's. Only RS256.
    if header.alg != "RS256" {
        return Err(TokenRejected::Algorithm(
            header.alg.chars().take(16).collect(),
        ));
    }
    // RFC 7515 §4.1.11: we understand no extension, so a token that
    // marks any as critical is invalid.
    if header.crit.is_some() {
        return Err(TokenRejected::Malformed);
    }
    let candidates: Vec<&Key> = match &header.kid {
        Some(kid) => keys
            .0
            .iter()
            .filter(|k| k.kid.as_deref() == Some(kid))
            .collect(),
        None => keys.0.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(TokenRejected::UnknownKey);
    }
    // Step 6: the signature, with a key from the issuer's jwks_uri.
    let mut verified = false;
    for candidate in candidates {
        if crypto
            .rs256_verify(
                &candidate.key,
                untrusted.signing_input.as_bytes(),
                &untrusted.signature,
            )
            .await
        {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err(TokenRejected::Signature);
    }
    // Only now is the payload read: it is what the issuer signed.
    let claims: RawClaims =
        serde_json::from_slice(&untrusted.payload).map_err(|_| TokenRejected::Malformed)?;
    let (exp, nbf, iat) = (claims.exp, claims.nbf, claims.iat);

    // Step 2: iss exactly equals the issuer we discovered.
    if claims.iss.as_deref() != Some(expected.issuer) {
        return Err(TokenRejected::Issuer);
    }
    // Step 3: aud contains our client id …
    let audiences = claims.aud.as_ref().map(Audience::list).unwrap_or_default();
    if !audiences.contains(&expected.audience) {
        return Err(TokenRejected::Audience);
    }
    // Steps 4–5: … and with several audiences, azp names us.
    if audiences.len() > 1 && claims.azp.as_deref() != Some(expected.audience) {
        return Err(TokenRejected::AuthorizedParty);
    }
    if claims
        .azp
        .as_deref()
        .is_some_and(|azp| azp != expected.audience)
    {
        return Err(TokenRejected::AuthorizedParty);
    }
    // Step 9: not expired (with a small leeway).
    let exp = exp.ok_or(TokenRejected::MissingClaim("exp"))?;
    if expected.now_secs >= exp.saturating_add(LEEWAY_SECS) {
        return Err(TokenRejected::Expired);
    }
    if nbf.is_some_and(|nbf| expected.now_secs.saturating_add(LEEWAY_SECS) < nbf) {
        return Err(TokenRejected::NotYetValid);
    }
    // Step 10: iat is required; one from the future is refused.
    let iat = iat.ok_or(TokenRejected::MissingClaim("iat"))?;
    if iat > expected.now_secs.saturating_add(LEEWAY_SECS) {
        return Err(TokenRejected::IssuedInTheFuture);
    }
    // Step 11: the nonce we sent comes back, compared in constant time.
    if let Some(nonce) = expected.nonce {
        let matches = claims
            .nonce
            .as_deref()
            .is_some_and(|n| crate::secret::ct_eq(n.as_bytes(), nonce.as_bytes()));
        if !matches {
            return Err(TokenRejected::Nonce);
        }
    }
    let subject = claims
        .sub
        .clone()
        .ok_or(TokenRejected::MissingClaim("sub"))?;
    // Providers send email_verified as a boolean, some as "true"/"false".
    let email_verified = match &claims.email_verified {
        Some(serde_json::Value::Bool(b)) => Some(*b),
        Some(serde_json::Value::String(s)) => Some(s == "true"),
        _ => None,
    };
    Ok(VerifiedClaims {
        subject,
        email: claims.email.clone(),
        email_verified,
    })
}

#[cfg(test)]
mod tests;
