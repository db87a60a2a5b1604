//! The daily sweep of a ledger object: what can no longer matter goes.

use std::collections::HashSet;

use serde_json::Value;

use super::records::KeyKind;
use super::store::{LedgerStore, entries_of};
use crate::ports::StorageError;

/// How long a redeemed or expired code is kept after its expiry, so a
/// late replay still finds it and revokes the grant (RFC 6749 §4.1.2).
pub const CODE_MEMORY_SECS: u64 = 24 * 3600;

/// Deletes codes a day past expiry, finished or expired logins, expired
/// nonces, grants past their end (and the refresh-token index entries
/// pointing at them). Consents stay. Returns how many entries were
/// removed. Run from the ledger object's alarm.
// Called by the Durable Object (wasm32 glue) and by native tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub async fn purge<S: LedgerStore>(store: &S, now: u64) -> Result<usize, StorageError> {
    // Consents and listings are never swept: not even loaded.
    let entries = entries_of(
        store,
        &[
            KeyKind::Code,
            KeyKind::Grant,
            KeyKind::RefreshIndex,
            KeyKind::Login,
            KeyKind::Nonce,
            KeyKind::Access,
        ],
    )
    .await?;
    let expiry = |v: &Value| v.get("expires_at").and_then(Value::as_u64);
    let mut dead_grants = HashSet::new();
    let mut doomed: Vec<String> = Vec::new();
    for (key, value) in &entries {
        let gone = match KeyKind::parse(key) {
            Some((KeyKind::Code, _)) => {
                expiry(value).is_some_and(|e| now >= e.saturating_add(CODE_MEMORY_SECS))
            }
            Some((KeyKind::Login | KeyKind::Access, _)) => expiry(value).is_some_and(|e| now >= e),
            Some((KeyKind::Nonce, _)) => value.as_u64().is_some_and(|e| now >= e),
            Some((KeyKind::Grant, id)) => {
                let ended = expiry(value).is_some_and(|e| now >= e);
                if ended {
                    dead_grants.insert(id.to_owned());
                }
                ended
            }
            Some((
                KeyKind::RefreshIndex | KeyKind::Consent | KeyKind::Listed | KeyKind::Retired,
                _,
            ))
            | None => false,
        };
        if gone {
            doomed.push(key.clone());
        }
    }
    for (key, value) in &entries {
        let index = matches!(KeyKind::parse(key), Some((KeyKind::RefreshIndex, _)));
        if index && value.as_str().is_some_and(|g| dead_grants.contains(g)) {
            doomed.push(key.clone());
        }
    }
    let count = doomed.len();
    if count > 0 {
        store.remove(doomed).await?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::super::consents;
    use super::super::logins::{self, tests::login_record};
    use super::super::protocol::{BeginLogin, ConsumeNonce, RecordConsent, Refusal};
    use super::super::records::ConsentRecord;
    use super::super::test_world::*;
    use super::*;
    use crate::oauth::ids::{LoginId, TicketId, UserKey};
    use crate::oauth::types::{RedirectUri, ScopeSet};
    use crate::testing::block_on;

    #[test]
    fn purge_removes_only_what_can_no_longer_matter() {
        let w = World::new();
        w.redeem(|_| {});
        block_on(logins::begin(
            &w.store,
            BeginLogin {
                login_id: LoginId::fixed("l1"),
                record: login_record(w.now()),
            },
        ))
        .unwrap();
        block_on(consents::consume_nonce(
            &w.store,
            ConsumeNonce {
                nonce: TicketId::fixed("t1"),
                expires_at: w.now() + 60,
            },
            w.now(),
        ))
        .unwrap();
        let user = UserKey::legacy_of_email("u1@example.com");
        block_on(consents::record(
            &w.store,
            RecordConsent {
                user_key: user.clone(),
                record: ConsentRecord {
                    sites: None,
                    redirect_uri: RedirectUri::parse("https://a.example/cb").unwrap(),
                    scope: ScopeSet::parse(None).unwrap(),
                    approved_at: 1,
                },
            },
        ))
        .unwrap();
        // Nothing is due yet.
        assert_eq!(block_on(purge(&w.store, w.now())).unwrap(), 0);
        let before = w.keys();
        // After ten minutes: the login and the nonce; the code is still
        // remembered for replay detection, the grant lives on.
        w.advance(600);
        assert_eq!(block_on(purge(&w.store, w.now())).unwrap(), 2);
        let keys = w.keys();
        assert!(!keys.contains(&"login:l1".to_owned()) && !keys.contains(&"nonce:t1".to_owned()));
        assert!(
            keys.iter().any(|k| k.starts_with("code:")) && keys.contains(&"grant:g1".to_owned())
        );
        // A replay a day later still revokes the grant.
        let replay = w.redeem(|m| m.tokens = tokens(9));
        assert_eq!(refusal(&replay), Some(Refusal::InvalidGrant));
        // After the grant's end (7 days): the code, the grant and its
        // refresh index go; the consent, the client's index of pairs and
        // a pair's listed mark stay.
        for key in ["pair:00112233445566778899aabbccddeeff", "listed:pair"] {
            w.store
                .entries
                .borrow_mut()
                .insert(key.to_owned(), serde_json::json!({"at": 1}));
        }
        w.advance(7 * 86400);
        block_on(purge(&w.store, w.now())).unwrap();
        assert_eq!(
            w.keys(),
            vec![
                format!("consent:{}", user.as_str()),
                "listed:pair".to_owned(),
                "pair:00112233445566778899aabbccddeeff".to_owned(),
            ],
            "before: {before:?}"
        );
    }
}
