//! A pair object's account of itself for the connections page: its live
//! grants and its consents, read in one message (two prefix listings of
//! the object's own storage; nothing else is touched).

use super::protocol::{ConsentSummary, GrantSummary, PairSummary, Summarize};
use super::records::{ConsentRecord, GrantRecord, KeyKind};
use super::store::{LedgerStore, entries_of};
use crate::oauth::ids::UserKey;
use crate::ports::StorageError;

/// Whether a grant can still be used: not revoked, before its absolute
/// end, and holding either a refresh token or an access token that has
/// not expired.
fn live(grant: &GrantRecord, now: u64) -> bool {
    !grant.revoked
        && now < grant.expires_at
        && (now < grant.refresh_expires_at || grant.access.iter().any(|(_, exp)| now < *exp))
}

pub async fn summarize<S: LedgerStore>(
    store: &S,
    _: Summarize,
    now: u64,
) -> Result<PairSummary, StorageError> {
    let mut grants = Vec::new();
    let mut consents = Vec::new();
    for (key, value) in entries_of(store, &[KeyKind::Grant, KeyKind::Consent]).await? {
        match KeyKind::parse(&key) {
            Some((KeyKind::Grant, _)) => {
                if let Ok(grant) = serde_json::from_value::<GrantRecord>(value)
                    && live(&grant, now)
                {
                    grants.push(GrantSummary {
                        client_id: grant.client_id,
                        scope: grant.scope,
                        subject: grant.subject,
                        created_at: grant.created_at,
                        expires_at: grant.expires_at,
                        newest_access_expiry: grant.access.iter().map(|(_, exp)| *exp).max(),
                        sites: grant.sites,
                    });
                }
            }
            Some((KeyKind::Consent, user)) => {
                if let Ok(consent) = serde_json::from_value::<ConsentRecord>(value) {
                    consents.push(ConsentSummary {
                        user_key: UserKey::from_stored(user),
                        redirect_uri: consent.redirect_uri,
                        scope: consent.scope,
                        approved_at: consent.approved_at,
                        sites: consent.sites,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(PairSummary::Summary { grants, consents })
}

#[cfg(test)]
mod tests {
    use super::super::records::StorageKey;
    use super::super::test_world::*;
    use super::*;
    use crate::oauth::types::{RedirectUri, ScopeSet};
    use crate::testing::block_on;

    fn summary(w: &World) -> (Vec<GrantSummary>, Vec<ConsentSummary>) {
        let PairSummary::Summary { grants, consents } =
            block_on(summarize(&w.store, Summarize {}, w.now())).unwrap();
        (grants, consents)
    }

    #[test]
    fn lists_live_grants_and_consents_and_leaves_out_ended_grants() {
        let w = World::new();
        w.redeem(|_| {});
        let approved = w.now();
        w.store.entries.borrow_mut().insert(
            StorageKey::Consent(subject().user_key).encode(),
            serde_json::to_value(ConsentRecord {
                sites: None,
                redirect_uri: RedirectUri::parse("https://a.example/cb").unwrap(),
                scope: ScopeSet::parse(Some("mcp")).unwrap(),
                approved_at: approved,
            })
            .unwrap(),
        );
        w.advance(100);
        let (grants, consents) = summary(&w);
        assert_eq!(grants.len(), 1);
        let g = &grants[0];
        assert_eq!(g.subject, subject());
        assert_eq!(g.created_at, approved);
        assert_eq!(g.newest_access_expiry, Some(approved + 3600));
        assert_eq!(consents.len(), 1);
        assert_eq!(consents[0].user_key, subject().user_key);
        assert_eq!(consents[0].approved_at, approved);
        // A refresh moves the newest access expiry.
        assert!(refusal(&w.refresh("rt1", 2)).is_none());
        let (grants, _) = summary(&w);
        assert_eq!(grants[0].newest_access_expiry, Some(w.now() + 3600));
        // A revoked grant is not listed.
        block_on(super::super::revoke_all::revoke_all(
            &w.store,
            &w.p,
            super::super::protocol::RevokeAll { before: w.now() },
            w.now(),
        ))
        .unwrap();
        let (grants, consents) = summary(&w);
        assert!(grants.is_empty() && consents.is_empty());
    }

    #[test]
    fn a_grant_past_its_end_is_not_live() {
        let w = World::new();
        w.redeem(|_| {});
        let g = w.grant("g1");
        assert!(live(&g, w.now()));
        assert!(!live(&g, g.expires_at));
        let mut ended = g.clone();
        ended.refresh_expires_at = w.now();
        ended.access.clear();
        assert!(!live(&ended, w.now()));
    }
}
