//! Where a presented code or token lives, decided from the value alone
//! before anything is read from storage: the previous release's format
//! goes to its client's legacy ledger (or KV) as before; the routed
//! format goes to its pair's grant object once its tag checks out; a
//! forged or garbled one goes nowhere.

use super::ids::{Format, Routed, TokenKind};
use crate::crypto::UserKeys;

/// Where a presented value goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Located {
    /// The previous release's format, or a value without our prefix (no
    /// stored hash matches it): the legacy path, as before.
    Legacy,
    /// A routed value whose tag is ours.
    Pair(Routed),
}

/// Why a presented value goes nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unroutable {
    /// A routed-length value whose tag is not ours: forged or garbled.
    Forged,
    /// A routed value, but `USER_KEY_SECRET` is not configured, so its
    /// tag cannot be checked.
    NoUserKey,
}

pub fn locate(
    kind: TokenKind,
    value: &str,
    user_keys: Option<&UserKeys>,
) -> Result<Located, Unroutable> {
    match kind.parse(value) {
        None | Some(Format::Legacy) => Ok(Located::Legacy),
        Some(Format::Garbled) => Err(Unroutable::Forged),
        Some(Format::Routed(unverified)) => {
            let keys = user_keys.ok_or(Unroutable::NoUserKey)?;
            unverified
                .verify(keys)
                .map(Located::Pair)
                .ok_or(Unroutable::Forged)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ids::{RoutingId, UserKey};
    use crate::testing::{FakePlatform, user_keys};

    #[test]
    fn values_are_located_by_format_and_tag() {
        let k = user_keys();
        let routing = RoutingId::of(&k, "c", &UserKey::of_email(&k, "a@example.com"));
        let p = FakePlatform::new();
        let routed = TokenKind::RefreshToken
            .mint_routed(&p, &k, &routing, 7)
            .unwrap();
        assert_eq!(
            locate(TokenKind::RefreshToken, &routed, Some(&k)),
            Ok(Located::Pair(Routed {
                routing,
                issued_at: 7
            }))
        );
        assert_eq!(
            locate(TokenKind::RefreshToken, &routed, None),
            Err(Unroutable::NoUserKey)
        );
        let forged = format!("{}A", &routed[..routed.len() - 1]);
        let forged = if forged == routed {
            format!("{}B", &routed[..routed.len() - 1])
        } else {
            forged
        };
        assert_eq!(
            locate(TokenKind::RefreshToken, &forged, Some(&k)),
            Err(Unroutable::Forged)
        );
        let legacy = TokenKind::RefreshToken.mint(&p).unwrap();
        assert_eq!(
            locate(TokenKind::RefreshToken, &legacy, Some(&k)),
            Ok(Located::Legacy)
        );
        assert_eq!(
            locate(TokenKind::RefreshToken, "not-ours", None),
            Ok(Located::Legacy)
        );
    }
}
