//! A refresh's new pair, sealed for the grant object to hand back to a
//! lost response's retry (issue 11) and opened again here.

use serde_json::{Value, json};

use crate::crypto::Keyring;
use crate::oauth::ids::TokenHash;
use crate::oauth::server::Platform;
use crate::secret::{AccessToken, RefreshToken};

/// The additional data a sealed pair is bound to: the refresh token it
/// answers, so a pair cannot be replayed for another.
fn pair_aad(presented: &TokenHash) -> String {
    format!("pair:{}", presented.as_str())
}

/// The new pair, sealed for the grant object to keep during the retry
/// grace period (it cannot open it; only a worker holding the keyring
/// can).
pub(super) fn seal_pair<P: Platform>(
    platform: &P,
    keys: &Keyring,
    presented: &TokenHash,
    access: &AccessToken,
    refresh: &RefreshToken,
) -> Result<String, crate::ports::EntropyError> {
    let plain = json!({"a": access.secret(), "r": refresh.secret()}).to_string();
    keys.seal(platform, plain.as_bytes(), &pair_aad(presented))
}

pub(super) fn open_pair(
    keys: &Keyring,
    presented: &TokenHash,
    sealed: &str,
) -> Option<(AccessToken, RefreshToken)> {
    let plain = keys.open(sealed, &pair_aad(presented))?;
    let value: Value = serde_json::from_slice(&plain).ok()?;
    let access = value.get("a")?.as_str()?;
    let refresh = value.get("r")?.as_str()?;
    Some((
        AccessToken::new(access.to_owned()),
        RefreshToken::new(refresh.to_owned()),
    ))
}
