//! A pair object's part of a revocation that spans many objects (all of
//! a user's grants, or all of a client's): every grant created at or
//! before the marker's time ends with its tokens and access records, and
//! the codes and consent from before then go, so the next authorization
//! asks again. Run once per pair by the fan-out of the user's directory
//! or the client's index; running it twice changes nothing more.
//!
//! In a client's legacy ledger the same step ends the previous
//! release's grants of that client (all its users').

use super::grants::revoke_grant;
use super::protocol::{Done, MarkListed, RevokeAll, RevokedAll};
use super::records::{CodeRecord, ConsentRecord, GrantRecord, KeyKind, Listed, StorageKey};
use super::store::{LedgerStore, entries_of, put};
use crate::ports::{Clock, KeyValue, StorageError};

pub async fn mark_listed<S: LedgerStore>(store: &S, m: MarkListed) -> Result<Done, StorageError> {
    store
        .commit(vec![put(&StorageKey::Listed, &Listed { at: m.at })?])
        .await?;
    Ok(Done::Done)
}

pub async fn revoke_all<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    m: RevokeAll,
    now: u64,
) -> Result<RevokedAll, StorageError> {
    let mut grants = Vec::new();
    let mut doomed = Vec::new();
    let kinds = [KeyKind::Grant, KeyKind::Code, KeyKind::Consent];
    for (key, value) in entries_of(store, &kinds).await? {
        let Some((kind, _)) = KeyKind::parse(&key) else {
            continue;
        };
        match kind {
            KeyKind::Grant => {
                if let Ok(grant) = serde_json::from_value::<GrantRecord>(value)
                    && !grant.revoked
                    && grant.created_at <= m.before
                {
                    grants.push(grant.grant_id);
                }
            }
            KeyKind::Code => {
                // A code without an issue time predates the directory,
                // so it predates the marker too.
                if let Ok(code) = serde_json::from_value::<CodeRecord>(value)
                    && !code.redeemed
                    && code.issued_at.is_none_or(|at| at <= m.before)
                {
                    doomed.push(key);
                }
            }
            KeyKind::Consent => {
                let old = serde_json::from_value::<ConsentRecord>(value)
                    .is_ok_and(|c| c.approved_at <= m.before);
                if old {
                    doomed.push(key);
                }
            }
            _ => {}
        }
    }
    let count = grants.len();
    for grant_id in &grants {
        revoke_grant(store, kv, grant_id, now).await?;
    }
    if !doomed.is_empty() {
        store.remove(doomed).await?;
    }
    Ok(RevokedAll::Revoked {
        grants: u64::try_from(count).unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::super::codes;
    use super::super::protocol::{IssueCode, Refusal};
    use super::super::records::Home;
    use super::super::test_world::*;
    use super::*;
    use crate::oauth::ids::GrantId;
    use crate::oauth::types::{RedirectUri, ScopeSet};
    use crate::testing::block_on;

    /// The grant ids a test expects revoked.
    fn revoked(store: &crate::testing::MemoryLedgerStore) -> Vec<GrantId> {
        let mut ids: Vec<GrantId> = store
            .entries
            .borrow()
            .iter()
            .filter(|(k, _)| k.starts_with("grant:"))
            .filter_map(|(_, v)| serde_json::from_value::<GrantRecord>(v.clone()).ok())
            .filter(|g| g.revoked)
            .map(|g| g.grant_id)
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids
    }

    #[test]
    fn grants_codes_and_consent_from_before_the_marker_end_and_later_ones_stay() {
        let w = World::new();
        w.redeem(|_| {});
        let consent = StorageKey::Consent(subject().user_key).encode();
        w.store.entries.borrow_mut().insert(
            consent.clone(),
            serde_json::to_value(ConsentRecord {
                sites: None,
                redirect_uri: RedirectUri::parse("https://a.example/cb").unwrap(),
                scope: ScopeSet::parse(None).unwrap(),
                approved_at: w.now(),
            })
            .unwrap(),
        );
        // An unredeemed code from before the marker.
        let before_code = code_record(w.now(), "g2");
        block_on(codes::issue(
            &w.store,
            Home::Pair,
            IssueCode {
                code_hash: h("c2"),
                record: before_code,
                ask_listed: false,
            },
        ))
        .unwrap();
        let marker = w.now();
        w.advance(5);
        // The person reconnects right after the marker: a new grant.
        let mut after = code_record(w.now(), "g3");
        after.issued_at = Some(w.now());
        block_on(codes::issue(
            &w.store,
            Home::Pair,
            IssueCode {
                code_hash: h("c3"),
                record: after,
                ask_listed: false,
            },
        ))
        .unwrap();
        let reply = block_on(revoke_all(
            &w.store,
            &w.p,
            RevokeAll { before: marker },
            w.now(),
        ))
        .unwrap();
        assert_eq!(reply, RevokedAll::Revoked { grants: 1 });
        assert_eq!(revoked(&w.store), vec![GrantId::fixed("g1")]);
        assert!(!w.has_access("at1"), "the access record left KV");
        assert!(!w.keys().contains(&consent), "consent asked again");
        // The old code is gone; the new one still redeems.
        let old = w.redeem(|m| {
            m.code_hash = h("c2");
            m.tokens = tokens(2);
        });
        assert_eq!(refusal(&old), Some(Refusal::InvalidGrant));
        let new = w.redeem(|m| {
            m.code_hash = h("c3");
            m.tokens = tokens(3);
        });
        assert!(refusal(&new).is_none());
        // Running it again ends nothing more: g3 is after the marker.
        let again = block_on(revoke_all(
            &w.store,
            &w.p,
            RevokeAll { before: marker },
            w.now(),
        ))
        .unwrap();
        assert_eq!(again, RevokedAll::Revoked { grants: 0 });
        assert!(w.has_access("at3"));
    }

    #[test]
    fn a_pair_object_asks_to_be_listed_until_marked() {
        let w = World::new();
        let ask = |n: &str| {
            block_on(codes::issue(
                &w.store,
                Home::Pair,
                IssueCode {
                    code_hash: h(n),
                    record: code_record(w.now(), n),
                    ask_listed: true,
                },
            ))
            .unwrap()
        };
        use super::super::protocol::CodeIssued;
        assert_eq!(ask("c7"), CodeIssued::Unlisted);
        assert_eq!(ask("c8"), CodeIssued::Unlisted, "until marked");
        block_on(mark_listed(&w.store, MarkListed { at: w.now() })).unwrap();
        assert_eq!(ask("c9"), CodeIssued::Done);
        // A legacy ledger never asks.
        let legacy = block_on(codes::issue(
            &w.store,
            Home::Client(&client()),
            IssueCode {
                code_hash: h("c10"),
                record: code_record(w.now(), "c10"),
                ask_listed: true,
            },
        ))
        .unwrap();
        assert_eq!(legacy, CodeIssued::Done);
    }
}
