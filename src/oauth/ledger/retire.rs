//! Access records a grant no longer holds, deleted best-effort after the
//! transition that dropped them was committed (issue 11, "revocation that
//! always wins"): a delete that fails is kept under
//! [`StorageKey::Retired`] and retried by the object's alarm, which also
//! forgets sealed pairs past their grace period.

use super::records::{
    GrantRecord, KeyKind, MAX_LIVE_ACCESS, ROTATION_GRACE_SECS, StorageKey, access_key,
};
use super::store::{LedgerStore, load, put};
use crate::oauth::ids::{GrantId, TokenHash};
use crate::ports::{Clock, KeyValue, StorageError};

/// KV deletes a transition makes itself; the rest wait for the alarm.
/// Only a grant of the previous release (no bound on its access tokens)
/// can have more.
pub const INLINE_DELETES: usize = MAX_LIVE_ACCESS + 1;

/// When the alarm retries deletes that failed.
pub const RETRY_DELETES_SECS: u64 = 30;

/// KV deletes one alarm run makes, at most (the platform allows 1,000
/// operations per invocation).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const ALARM_DELETE_BUDGET: usize = 200;

/// Deletes access records the grant no longer holds: their KV records
/// (the first [`INLINE_DELETES`] here, the rest by the alarm) and this
/// object's copies. Best-effort by design: what fails is kept for the
/// alarm, and a failure to keep it leaves a record that expires on its
/// own (within the access lifetime); it never fails the transition,
/// whose outcome is committed already.
pub(super) async fn retire<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    grant_id: &GrantId,
    tokens: Vec<(TokenHash, u64)>,
    now: u64,
) {
    if tokens.is_empty() {
        return;
    }
    let copies = tokens
        .iter()
        .map(|(hash, _)| StorageKey::Access(hash.clone()).encode())
        .collect::<Vec<_>>();
    let mut pending = Vec::new();
    for (n, (hash, expires_at)) in tokens.into_iter().enumerate() {
        if expires_at <= now {
            continue;
        }
        if n >= INLINE_DELETES || kv.delete(&access_key(&hash)).await.is_err() {
            pending.push((hash, expires_at));
        }
    }
    if !pending.is_empty() {
        let _ = defer(store, grant_id, pending, now).await;
    }
    // The copies only answer lookups while the grant lists the token,
    // which it no longer does: removing them is tidiness.
    let _ = store.remove(copies).await;
}

/// Adds KV deletes to the grant's list for the alarm.
async fn defer<S: LedgerStore>(
    store: &S,
    grant_id: &GrantId,
    mut pending: Vec<(TokenHash, u64)>,
    now: u64,
) -> Result<(), StorageError> {
    let key = StorageKey::Retired(grant_id.clone());
    if let Some(earlier) = load::<Vec<(TokenHash, u64)>, _>(store, &key).await? {
        pending.extend(earlier);
    }
    store.commit(vec![put(&key, &pending)?]).await?;
    store.wake_at(now.saturating_add(RETRY_DELETES_SECS));
    Ok(())
}

/// The alarm's part: retries deferred KV deletes (at most `budget`) and
/// forgets sealed pairs past their grace period. Answers when it wants
/// to run again, if it does.
// Called by the Durable Objects' alarms (wasm32 glue) and native tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub async fn maintain<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    now: u64,
    budget: usize,
) -> Result<Option<u64>, StorageError> {
    let mut budget = budget;
    let mut again = None::<u64>;
    let mut soonest = |at: u64| again = Some(again.map_or(at, |a| a.min(at)));
    for (key, value) in store
        .list(KeyKind::Retired.prefix(), None, usize::MAX)
        .await?
    {
        let Ok(list) = serde_json::from_value::<Vec<(TokenHash, u64)>>(value) else {
            store.remove(vec![key]).await?;
            continue;
        };
        let mut left = Vec::new();
        for (hash, expires_at) in list {
            if expires_at <= now {
                // KV expires it on its own.
                continue;
            }
            if budget == 0 || kv.delete(&access_key(&hash)).await.is_err() {
                left.push((hash, expires_at));
            }
            budget = budget.saturating_sub(1);
        }
        if left.is_empty() {
            store.remove(vec![key]).await?;
        } else {
            store
                .commit(vec![(
                    key,
                    serde_json::to_value(&left)
                        .map_err(|e| StorageError(format!("encode: {e}")))?,
                )])
                .await?;
            soonest(now.saturating_add(RETRY_DELETES_SECS));
        }
    }
    for (key, value) in store
        .list(KeyKind::Grant.prefix(), None, usize::MAX)
        .await?
    {
        let Ok(mut grant) = serde_json::from_value::<GrantRecord>(value) else {
            continue;
        };
        let Some(rotation) = &grant.rotation else {
            continue;
        };
        let ends = rotation.at.saturating_add(ROTATION_GRACE_SECS);
        if ends <= now {
            grant.rotation = None;
            let value =
                serde_json::to_value(&grant).map_err(|e| StorageError(format!("encode: {e}")))?;
            store.commit(vec![(key, value)]).await?;
        } else {
            soonest(ends);
        }
    }
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::super::grants::tests::{refresh_chain, revoke_rt, sealed_refresh};
    use super::super::protocol::Refusal;
    use super::super::test_world::*;
    use super::*;
    use crate::testing::block_on;

    #[test]
    fn a_failing_delete_never_undoes_a_revocation_and_the_alarm_finishes_it() {
        let w = World::new();
        w.redeem(|_| {});
        refresh_chain(&w, 1, 1);
        w.p.fail_kv_deletes.set(true);
        revoke_rt(&w, "rt2");
        assert!(w.grant("g1").revoked, "recorded first");
        assert!(w.has_access("at2"), "the delete failed");
        let retired = StorageKey::Retired(GrantId::fixed("g1")).encode();
        assert!(w.keys().contains(&retired), "kept for the alarm");
        assert_eq!(w.store.wake.get(), Some(w.now() + RETRY_DELETES_SECS));
        // The refresh chain stays dead meanwhile.
        assert_eq!(refusal(&w.refresh("rt2", 9)), Some(Refusal::InvalidGrant));
        // Still failing: the alarm keeps the list and comes back.
        w.advance(RETRY_DELETES_SECS);
        let again = block_on(maintain(&w.store, &w.p, w.now(), 100)).unwrap();
        assert_eq!(again, Some(w.now() + RETRY_DELETES_SECS));
        w.p.fail_kv_deletes.set(false);
        w.advance(RETRY_DELETES_SECS);
        assert_eq!(
            block_on(maintain(&w.store, &w.p, w.now(), 100)).unwrap(),
            None
        );
        assert!(!w.has_access("at1") && !w.has_access("at2"));
        assert!(!w.keys().contains(&retired));
    }

    #[test]
    fn the_sealed_pair_is_forgotten_after_its_grace_period() {
        let w = World::new();
        w.redeem(|_| {});
        assert!(refusal(&sealed_refresh(&w, "rt1", 2)).is_none());
        assert_eq!(w.store.wake.get(), Some(w.now() + ROTATION_GRACE_SECS));
        let early = block_on(maintain(&w.store, &w.p, w.now(), 100)).unwrap();
        assert_eq!(early, Some(w.now() + ROTATION_GRACE_SECS));
        assert!(w.grant("g1").rotation.is_some());
        w.advance(ROTATION_GRACE_SECS);
        assert_eq!(
            block_on(maintain(&w.store, &w.p, w.now(), 100)).unwrap(),
            None
        );
        assert!(w.grant("g1").rotation.is_none());
    }

    /// A grant of the previous release may hold any number of access
    /// tokens: revoking it still makes [`INLINE_DELETES`] KV deletes and
    /// leaves the rest to the alarm, which works through them within its
    /// budget per run.
    #[test]
    fn a_legacy_grant_with_many_access_tokens_is_revoked_in_bounded_steps() {
        let w = World::new();
        w.redeem(|_| {});
        let key = StorageKey::Grant(GrantId::fixed("g1")).encode();
        let mut grant = w.grant("g1");
        let expires_at = w.now() + 3600;
        for n in 2..=50 {
            let hash = h(&format!("at{n}"));
            block_on(w.p.put(
                &access_key(&hash),
                b"{}",
                std::time::Duration::from_secs(3600),
            ))
            .unwrap();
            grant.access.push((hash, expires_at));
        }
        w.store
            .entries
            .borrow_mut()
            .insert(key, serde_json::to_value(&grant).unwrap());
        let kv_before = w.p.kv_writes.get();
        revoke_rt(&w, "rt1");
        assert!(w.grant("g1").revoked);
        assert_eq!(w.p.kv_writes.get() - kv_before, INLINE_DELETES);
        let mut runs = 0;
        while block_on(maintain(&w.store, &w.p, w.now(), 20))
            .unwrap()
            .is_some()
        {
            runs += 1;
            assert!(runs < 10);
        }
        for n in 1..=50 {
            assert!(!w.has_access(&format!("at{n}")), "at{n}");
        }
        assert_eq!(runs, 2, "47 deferred deletes at 20 a run");
    }
}
