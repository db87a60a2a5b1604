//! Consents (per user, per client) and the single use of consent tickets.

use super::legacy_consents::MARK_LEN;
use super::protocol::{
    ConsentReply, ConsumeNonce, Done, GetConsent, LegacyConsentUsers, LegacyConsentsReply,
    NonceReply, Reason, RecordConsent, Refusal, Refused,
};
use super::records::{KeyKind, StorageKey};
use super::store::{LedgerStore, load, put};
use crate::ports::StorageError;

/// Succeeds once per ticket, until it expires.
pub async fn consume_nonce<S: LedgerStore>(
    store: &S,
    m: ConsumeNonce,
    now: u64,
) -> Result<NonceReply, StorageError> {
    let refused = |reason| {
        Ok(NonceReply::Refused(Refused::new(
            Refusal::InvalidGrant,
            reason,
        )))
    };
    let key = StorageKey::Nonce(m.nonce);
    if load::<u64, _>(store, &key).await?.is_some() {
        return refused(Reason::TicketReplayed);
    }
    if now >= m.expires_at {
        return refused(Reason::TicketExpired);
    }
    store.commit(vec![put(&key, &m.expires_at)?]).await?;
    Ok(NonceReply::Done)
}

pub async fn get<S: LedgerStore>(store: &S, m: GetConsent) -> Result<ConsentReply, StorageError> {
    Ok(ConsentReply::Consent {
        record: load(store, &StorageKey::Consent(m.user_key)).await?,
    })
}

/// The users holding a consent here (in a client's legacy ledger: the
/// previous release's), as marks of their keys: one list of at most
/// `limit + 1` keys, so "more than `limit`" is known without reading all.
pub async fn legacy_users<S: LedgerStore>(
    store: &S,
    m: LegacyConsentUsers,
) -> Result<LegacyConsentsReply, StorageError> {
    let limit = usize::try_from(m.limit).unwrap_or(usize::MAX);
    let prefix = KeyKind::Consent.prefix();
    let page = store.list(prefix, None, limit.saturating_add(1)).await?;
    let complete = page.len() <= limit;
    let marks = page
        .iter()
        .take(limit)
        .filter_map(|(key, _)| key.strip_prefix(prefix))
        .map(|user| user.get(..MARK_LEN).unwrap_or(user).to_owned())
        .collect();
    Ok(LegacyConsentsReply::Users { marks, complete })
}

pub async fn record<S: LedgerStore>(store: &S, m: RecordConsent) -> Result<Done, StorageError> {
    store
        .commit(vec![put(&StorageKey::Consent(m.user_key), &m.record)?])
        .await?;
    Ok(Done::Done)
}

#[cfg(test)]
mod tests {
    use super::super::logins::tests::login_record;
    use super::super::records::ConsentRecord;
    use super::super::test_world::*;
    use super::*;
    use crate::oauth::ids::{TicketId, UserKey};
    use crate::oauth::types::{RedirectUri, ScopeSet};
    use crate::testing::block_on;

    #[test]
    fn nonces_are_single_use() {
        let w = World::new();
        let spend = |id: &str, expires_at: u64| {
            block_on(consume_nonce(
                &w.store,
                ConsumeNonce {
                    nonce: TicketId::fixed(id),
                    expires_at,
                },
                w.now(),
            ))
            .unwrap()
        };
        let exp = w.now() + 60;
        assert_eq!(spend("t1", exp), NonceReply::Done);
        assert!(matches!(spend("t1", exp), NonceReply::Refused(_)));
        assert!(matches!(spend("t2", w.now()), NonceReply::Refused(_)));
    }

    #[test]
    fn the_legacy_users_are_listed_as_marks_up_to_the_limit() {
        use super::super::legacy_consents::mark;
        let w = World::new();
        let consent = ConsentRecord {
            sites: None,
            redirect_uri: RedirectUri::parse("https://a.example/cb").unwrap(),
            scope: ScopeSet::parse(None).unwrap(),
            approved_at: 1,
        };
        let users: Vec<UserKey> = (1..=3)
            .map(|n| UserKey::legacy_of_email(&format!("u{n}@example.com")))
            .collect();
        for user in &users {
            let m = RecordConsent {
                user_key: user.clone(),
                record: consent.clone(),
            };
            block_on(record(&w.store, m)).unwrap();
        }
        let ask = |limit| block_on(legacy_users(&w.store, LegacyConsentUsers { limit })).unwrap();
        let LegacyConsentsReply::Users { marks, complete } = ask(3);
        let mut expected: Vec<String> = users.iter().map(|u| mark(u).to_owned()).collect();
        expected.sort();
        assert_eq!((marks, complete), (expected, true));
        let LegacyConsentsReply::Users { marks, complete } = ask(2);
        assert_eq!((marks.len(), complete), (2, false), "more than the limit");
    }

    #[test]
    fn consent_covers_only_the_same_redirect_and_scopes() {
        let w = World::new();
        let user = UserKey::legacy_of_email("u1@example.com");
        let lookup = || {
            block_on(get(
                &w.store,
                GetConsent {
                    user_key: user.clone(),
                },
            ))
            .unwrap()
        };
        assert_eq!(lookup(), ConsentReply::Consent { record: None });
        let consent = ConsentRecord {
            sites: None,
            redirect_uri: RedirectUri::parse("https://a.example/cb").unwrap(),
            scope: ScopeSet::parse(None).unwrap(),
            approved_at: 1,
        };
        block_on(record(
            &w.store,
            RecordConsent {
                user_key: user.clone(),
                record: consent.clone(),
            },
        ))
        .unwrap();
        assert_eq!(
            lookup(),
            ConsentReply::Consent {
                record: Some(consent.clone())
            }
        );
        let request = login_record(w.now()).request;
        assert!(consent.covers(&request));
        let mut moved = request.clone();
        moved.redirect_uri = RedirectUri::parse("https://a.example/other").unwrap();
        assert!(!consent.covers(&moved));
    }

    /// Issue 10: a loopback client's consent does not depend on the
    /// ephemeral port it bound (RFC 8252 §7.3); host, path and query
    /// still must match exactly.
    #[test]
    fn a_loopback_consent_covers_every_port() {
        let consent = ConsentRecord {
            sites: None,
            redirect_uri: RedirectUri::parse("http://127.0.0.1:49152/cb").unwrap(),
            scope: ScopeSet::parse(None).unwrap(),
            approved_at: 1,
        };
        let mut request = login_record(0).request;
        for (uri, covered) in [
            ("http://127.0.0.1:61234/cb", true),
            ("http://127.0.0.1/cb", true),
            ("http://localhost:61234/cb", false),
            ("http://[::1]:61234/cb", false),
            ("http://127.0.0.1:61234/other", false),
            ("http://127.0.0.1:61234/cb?x=1", false),
        ] {
            request.redirect_uri = RedirectUri::parse(uri).unwrap();
            assert_eq!(consent.covers(&request), covered, "{uri}");
        }
        let https = ConsentRecord {
            sites: None,
            redirect_uri: RedirectUri::parse("https://a.example:8443/cb").unwrap(),
            ..consent
        };
        request.redirect_uri = RedirectUri::parse("https://a.example:9443/cb").unwrap();
        assert!(!https.covers(&request), "ports matter off loopback");
    }

    #[test]
    fn consents_expire_after_their_lifetime() {
        let consent = ConsentRecord {
            sites: None,
            redirect_uri: RedirectUri::parse("https://a.example/cb").unwrap(),
            scope: ScopeSet::parse(None).unwrap(),
            approved_at: 1000,
        };
        assert!(consent.is_current(1000, 90 * 86400));
        assert!(consent.is_current(1000 + 90 * 86400 - 1, 90 * 86400));
        assert!(!consent.is_current(1000 + 90 * 86400, 90 * 86400));
    }
}
