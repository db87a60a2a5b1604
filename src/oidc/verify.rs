//! ID token (and Cloudflare Access JWT) verification.
//!
//! Follows OpenID Connect Core 1.0 §3.1.3.7 ("ID Token Validation"); each
//! numbered step is noted beside its code. Only RS256 is accepted: an
//! attacker cannot choose `none`, an HMAC algorithm keyed with our public
//! key, or anything else (RFC 8725 §3.1).

use jwt_compact::alg::{Rsa, RsaPublicKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, UntrustedToken};
use serde::Deserialize;

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 60;

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
struct RawSet<'a> {
    #[serde(borrow)]
    keys: Vec<RawKey<'a>>,
}

#[derive(Deserialize)]
struct RawKey<'a> {
    #[serde(flatten, borrow)]
    jwk: JsonWebKey<'a>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
}

impl KeySet {
    /// Keeps the RSA signing keys usable for RS256; skips the rest.
    /// `None` when the document is not a JWKS at all.
    pub fn parse(json: &[u8]) -> Option<Self> {
        let raw: RawSet<'_> = serde_json::from_slice(json).ok()?;
        let keys = raw
            .keys
            .iter()
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == "RS256"))
            .filter(|k| k.usage.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                RsaPublicKey::try_from(&k.jwk).ok().map(|key| Key {
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

/// Verifies a compact JWS ID token against `keys` and `expected`.
pub fn verify(
    token: &str,
    keys: &KeySet,
    expected: &Expected<'_>,
) -> Result<VerifiedClaims, TokenRejected> {
    let untrusted = UntrustedToken::new(token).map_err(|_| TokenRejected::Malformed)?;
    // Step 6/7 (and RFC 8725 §3.1): the algorithm is ours to choose, not
    // the token's. Only RS256.
    if untrusted.algorithm() != "RS256" {
        return Err(TokenRejected::Algorithm(
            untrusted.algorithm().chars().take(16).collect(),
        ));
    }
    let candidates: Vec<&Key> = match &untrusted.header().key_id {
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
    let rs256 = Rsa::rs256();
    let token = candidates
        .iter()
        .find_map(|k| {
            rs256
                .validator::<RawClaims>(&k.key)
                .validate(&untrusted)
                .ok()
        })
        .ok_or(TokenRejected::Signature)?;
    // jwt-compact parses exp/nbf/iat itself; the rest are ours.
    let times = token.claims();
    let exp = times.expiration.map(|t| t.timestamp());
    let nbf = times.not_before.map(|t| t.timestamp());
    let iat = times.issued_at.map(|t| t.timestamp());
    let claims = &times.custom;

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
