//! Grants and their tokens: refresh with rotation (OAuth 2.1 §4.3.1),
//! revocation (RFC 7009), and the access records `/internal` reads.
//!
//! Revocation always wins (issue 11): the revocation is committed first,
//! then the access records are deleted from KV best-effort
//! ([`super::retire`]), so a failing delete can delay the end of an
//! access token (at most until its own expiry) but never undo a
//! revocation. A
//! grant keeps at most [`MAX_LIVE_ACCESS`] access tokens, so revoking one
//! costs a small, fixed number of storage operations whatever its
//! history.

use std::time::Duration;

use super::protocol::{
    AccessReply, Again, Done, Issued, LookupAccess, NewTokens, Reason, Refresh, Refusal, Refused,
    RevokeAccess, RevokeRefresh, TokensReply,
};
use super::records::{
    AccessRecord, GrantRecord, Home, MAX_LIVE_ACCESS, ROTATION_GRACE_SECS, Rotation, StorageKey,
    access_key,
};
use super::retire::retire;
use super::store::{LedgerStore, load, put};
use crate::oauth::ids::GrantId;
use crate::oauth::types::ClientId;
use crate::ports::{Clock, KeyValue, StorageError};

fn refused(refusal: Refusal, reason: Reason) -> TokensReply {
    TokensReply::Refused(Refused::new(refusal, reason))
}

/// A refusal of a grant the presenting client holds: it names the grant
/// and its user for the audit line.
fn refused_grant(refusal: Refusal, reason: Reason, grant: &GrantRecord) -> TokensReply {
    TokensReply::Refused(
        Refused::new(refusal, reason).of_grant(&grant.grant_id, &grant.subject.user_key),
    )
}

/// RFC 6749 §6 with rotation; a rotated-out token in use ends the grant,
/// except a lost response's retry (see [`Rotation`]).
pub async fn refresh<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    home: Home<'_>,
    m: Refresh,
    now: u64,
) -> Result<TokensReply, StorageError> {
    if let Home::Client(own) = home
        && &m.client_id != own
    {
        return Ok(refused(
            Refusal::InvalidGrant,
            Reason::RefreshToAnotherLedger,
        ));
    }
    let index = StorageKey::RefreshIndex(m.refresh_hash.clone());
    let Some(grant_id) = load::<GrantId, _>(store, &index).await? else {
        return Ok(refused(Refusal::InvalidGrant, Reason::UnknownRefreshToken));
    };
    let grant_key = StorageKey::Grant(grant_id.clone());
    let Some(mut grant) = load::<GrantRecord, _>(store, &grant_key).await? else {
        return Ok(refused(Refusal::InvalidGrant, Reason::GrantNotFound));
    };
    if !home.admits(&m.client_id, grant.client_id.as_ref()) {
        // Another client's token: refused, and the grant left alone (the
        // presenter proved nothing about it).
        return Ok(refused(
            Refusal::InvalidGrant,
            Reason::RefreshOfAnotherClient,
        ));
    }
    if grant.revoked {
        return Ok(refused_grant(
            Refusal::InvalidGrant,
            Reason::GrantRevoked,
            &grant,
        ));
    }
    if m.not_before.is_some_and(|nb| grant.created_at < nb) {
        // TOKENS_NOT_BEFORE: refused, nothing written (no sweep).
        return Ok(refused_grant(
            Refusal::InvalidGrant,
            Reason::KillSwitch,
            &grant,
        ));
    }
    let current = crate::secret::ct_eq(
        grant.refresh_hash.as_str().as_bytes(),
        m.refresh_hash.as_str().as_bytes(),
    );
    if !current {
        // A lost response's retry: the token the last rotation replaced,
        // within the grace period, while the token it issued has not
        // been presented (a presentation clears the rotation).
        if let Some(rotation) = &grant.rotation
            && rotation.from == m.refresh_hash
            && now < rotation.at.saturating_add(ROTATION_GRACE_SECS)
            && now < rotation.access_expires_at
        {
            return Ok(TokensReply::Again(Again {
                sealed_pair: rotation.sealed_pair.clone(),
                issued: Issued {
                    scope: rotation.scope.clone(),
                    resource: grant.resource.clone(),
                    access_expires_in: rotation.access_expires_at.saturating_sub(now),
                    subject: Some(grant.subject.clone()),
                    key_checked_at: grant.key_checked_at,
                    sites: grant.sites.clone(),
                    grant_id: Some(grant_id),
                },
            }));
        }
        // OAuth 2.1 §4.3.1, RFC 9700 §4.14.2: a rotated-out refresh
        // token in use means it leaked; end the whole grant.
        let replayed = refused_grant(Refusal::InvalidGrant, Reason::RefreshReplayed, &grant);
        revoke_loaded(store, kv, &grant_id, grant, now).await?;
        return Ok(replayed);
    }
    let refusal = if now >= grant.refresh_expires_at || now >= grant.expires_at {
        Some(refused_grant(
            Refusal::InvalidGrant,
            Reason::RefreshExpired,
            &grant,
        ))
    } else if m
        .scope
        .as_ref()
        .is_some_and(|s| !s.is_subset_of(&grant.scope))
    {
        Some(refused_grant(
            Refusal::InvalidScope,
            Reason::ScopeExceedsGrant,
            &grant,
        ))
    } else if m.resource.as_ref().is_some_and(|r| r != &grant.resource) {
        Some(refused_grant(
            Refusal::InvalidTarget,
            Reason::GrantResourceMismatch,
            &grant,
        ))
    } else {
        None
    };
    if let Some(refusal) = refusal {
        // The current token was presented: the previous one may no
        // longer fetch its pair.
        if grant.rotation.take().is_some() {
            store.commit(vec![put(&grant_key, &grant)?]).await?;
        }
        return Ok(refusal);
    }
    let scope = m.scope.clone().unwrap_or_else(|| grant.scope.clone());
    let grant_expires_at = grant.expires_at;
    let mut rotated = grant;
    rotated.refresh_hash = m.tokens.refresh_hash.clone();
    rotated.refresh_expires_at = now
        .saturating_add(m.tokens.refresh_ttl_secs)
        .min(grant_expires_at);
    // The newest token stays beside the one issued now; older ones (and
    // expired ones) retire.
    let (live, mut retired): (Vec<_>, Vec<_>) =
        rotated.access.drain(..).partition(|(_, exp)| *exp > now);
    let keep_from = live.len().saturating_sub(MAX_LIVE_ACCESS - 1);
    let mut live = live;
    retired.extend(live.drain(..keep_from));
    rotated.access = live;
    let granted_scope = rotated.scope.clone();
    rotated.scope = scope.clone();
    let (mut rotated, expires_in, access) =
        write_access(kv, &m.client_id, rotated, &m.tokens, now).await?;
    // A narrowed scope applies to this access token only; the grant
    // keeps what the user approved (RFC 6749 §6).
    rotated.scope = granted_scope;
    rotated.rotation = m.sealed_pair.map(|sealed_pair| Rotation {
        from: m.refresh_hash.clone(),
        at: now,
        sealed_pair,
        scope: scope.clone(),
        access_expires_at: now.saturating_add(expires_in),
    });
    if rotated.rotation.is_some() {
        // The sealed pair is forgotten once its grace period is over.
        store.wake_at(now.saturating_add(ROTATION_GRACE_SECS));
    }
    store
        .commit(vec![
            access,
            put(
                &StorageKey::RefreshIndex(m.tokens.refresh_hash.clone()),
                &grant_id,
            )?,
            put(&grant_key, &rotated)?,
        ])
        .await?;
    retire(store, kv, &grant_id, retired, now).await;
    Ok(TokensReply::Tokens(Issued {
        scope,
        resource: rotated.resource,
        access_expires_in: expires_in,
        subject: Some(rotated.subject),
        key_checked_at: rotated.key_checked_at,
        sites: rotated.sites,
        grant_id: Some(grant_id),
    }))
}

/// RFC 7009 §2.1 for a refresh token: the grant ends. Unknown tokens are
/// not an error (§2.2). When asked ([`RevokeRefresh::forget_consent`]),
/// the user's consent for the client goes too (issue 11): revoking says
/// "not this app any more", so the next authorization asks again.
pub async fn revoke_refresh<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    home: Home<'_>,
    m: RevokeRefresh,
    now: u64,
) -> Result<Done, StorageError> {
    let index = StorageKey::RefreshIndex(m.refresh_hash);
    let Some(grant_id) = load::<GrantId, _>(store, &index).await? else {
        return Ok(Done::Done);
    };
    let Some(grant) = load::<GrantRecord, _>(store, &StorageKey::Grant(grant_id.clone())).await?
    else {
        return Ok(Done::Done);
    };
    let admitted = match (home, &m.client_id) {
        // A message of the previous release's worker, to this client's
        // own ledger.
        (Home::Client(own), None) => grant.client_id.as_ref().is_none_or(|r| r == own),
        (home, Some(presented)) => home.admits(presented, grant.client_id.as_ref()),
        (Home::Pair, None) => false,
    };
    if admitted {
        let consent = StorageKey::Consent(grant.subject.user_key.clone()).encode();
        revoke_loaded(store, kv, &grant_id, grant, now).await?;
        if m.forget_consent {
            store.remove(vec![consent]).await?;
        }
    }
    Ok(Done::Done)
}

/// Ends one access token, if it is the presenting client's: the grant
/// forgets it first, then its KV record and this object's copy go.
/// Unknown tokens are not an error (RFC 7009 §2.2).
pub async fn revoke_access<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    home: Home<'_>,
    m: RevokeAccess,
    now: u64,
) -> Result<Done, StorageError> {
    let key = StorageKey::Access(m.access_hash.clone());
    let Some(record) = load::<AccessRecord, _>(store, &key).await? else {
        return Ok(Done::Done);
    };
    if !home.admits(&m.client_id, Some(&record.client_id)) {
        return Ok(Done::Done);
    }
    let grant_key = StorageKey::Grant(record.grant_id.clone());
    if let Some(mut grant) = load::<GrantRecord, _>(store, &grant_key).await? {
        grant.access.retain(|(h, _)| h != &m.access_hash);
        store.commit(vec![put(&grant_key, &grant)?]).await?;
    }
    retire(
        store,
        kv,
        &record.grant_id,
        vec![(m.access_hash, record.expires_at)],
        now,
    )
    .await;
    Ok(Done::Done)
}

/// The record of a live access token of this object, or none: unknown,
/// expired, or its grant revoked (a revoked token is never resurrected).
pub async fn lookup_access<S: LedgerStore>(
    store: &S,
    m: LookupAccess,
    now: u64,
) -> Result<AccessReply, StorageError> {
    let key = StorageKey::Access(m.access_hash.clone());
    let mut live = None;
    if let Some(record) = load::<AccessRecord, _>(store, &key).await?
        && now < record.expires_at
        && let Some(grant) =
            load::<GrantRecord, _>(store, &StorageKey::Grant(record.grant_id.clone())).await?
        && !grant.revoked
        && now < grant.expires_at
        && grant.access.iter().any(|(h, _)| h == &m.access_hash)
    {
        live = Some(record);
    }
    Ok(AccessReply::Access { record: live })
}

/// Writes the access record to KV and notes it on the grant; returns
/// the object's own copy of the record for the caller's commit. The KV
/// write comes before the ledger commit: if the commit then fails, the
/// client never saw the token and the orphan record expires on its own.
pub(super) async fn write_access<K: KeyValue + Clock>(
    kv: &K,
    client: &ClientId,
    mut grant: GrantRecord,
    tokens: &NewTokens,
    now: u64,
) -> Result<(GrantRecord, u64, (String, serde_json::Value)), StorageError> {
    let expires_at = now
        .saturating_add(tokens.access_ttl_secs)
        .min(grant.expires_at);
    let expires_in = expires_at.saturating_sub(now);
    let record = AccessRecord {
        client_id: client.clone(),
        grant_id: grant.grant_id.clone(),
        scope: grant.scope.clone(),
        resource: grant.resource.clone(),
        subject: grant.subject.clone(),
        expires_at,
        grant_created_at: Some(grant.created_at),
        sites: grant.sites.clone(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| StorageError(format!("encode: {e}")))?;
    kv.put(
        &access_key(&tokens.access_hash),
        &bytes,
        Duration::from_secs(expires_in),
    )
    .await?;
    grant.access.push((tokens.access_hash.clone(), expires_at));
    let copy = put(&StorageKey::Access(tokens.access_hash.clone()), &record)?;
    Ok((grant, expires_in, copy))
}

/// Marks a grant revoked, then deletes its access records best-effort.
pub(super) async fn revoke_grant<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    grant_id: &GrantId,
    now: u64,
) -> Result<(), StorageError> {
    let key = StorageKey::Grant(grant_id.clone());
    let Some(grant) = load::<GrantRecord, _>(store, &key).await? else {
        return Ok(());
    };
    revoke_loaded(store, kv, grant_id, grant, now).await
}

/// [`revoke_grant`] for a grant the caller has loaded. The one commit
/// that records the revocation comes first: a failure after it leaves
/// the grant revoked.
async fn revoke_loaded<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    grant_id: &GrantId,
    mut grant: GrantRecord,
    now: u64,
) -> Result<(), StorageError> {
    if grant.revoked {
        return Ok(());
    }
    let access = std::mem::take(&mut grant.access);
    grant.revoked = true;
    grant.rotation = None;
    store
        .commit(vec![put(&StorageKey::Grant(grant_id.clone()), &grant)?])
        .await?;
    retire(store, kv, grant_id, access, now).await;
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::records::StorageKey;
    use super::super::test_world::*;
    use super::*;
    use crate::oauth::types::ScopeSet;
    use crate::testing::block_on;

    #[test]
    fn refresh_rotates_and_reuse_of_a_rotated_token_ends_the_grant() {
        let w = World::new();
        w.redeem(|_| {});
        assert!(refusal(&w.refresh("rt1", 2)).is_none());
        assert!(w.has_access("at2"));
        assert_eq!(w.grant("g1").refresh_hash, h("rt2"));
        assert!(refusal(&w.refresh("rt2", 3)).is_none());
        // rt1 was rotated out: presenting it revokes everything.
        assert_eq!(refusal(&w.refresh("rt1", 4)), Some(Refusal::InvalidGrant));
        assert!(w.grant("g1").revoked);
        for at in ["at1", "at2", "at3", "at4"] {
            assert!(!w.has_access(at), "{at}");
        }
        assert_eq!(refusal(&w.refresh("rt3", 5)), Some(Refusal::InvalidGrant));
    }

    #[test]
    fn refresh_checks_scope_resource_and_expiry() {
        let w = World::new();
        w.redeem(|_| {});
        let narrowed = w.refresh_with(|m| {
            m.scope = Some(ScopeSet::parse(Some("mcp")).unwrap());
            m.resource = Some(resource("https://other.example/internal"));
        });
        assert_eq!(refusal(&narrowed), Some(Refusal::InvalidTarget));
        assert_eq!(
            refusal(&w.refresh("unknown", 2)),
            Some(Refusal::InvalidGrant)
        );
        w.advance(86400);
        assert_eq!(refusal(&w.refresh("rt1", 2)), Some(Refusal::InvalidGrant));
    }

    #[test]
    fn revoking_a_refresh_token_ends_the_grant() {
        let w = World::new();
        w.redeem(|_| {});
        let revoke = |name: &str| {
            block_on(revoke_refresh(
                &w.store,
                &w.p,
                Home::Client(&client()),
                RevokeRefresh {
                    refresh_hash: h(name),
                    client_id: None,
                    forget_consent: false,
                },
                w.now(),
            ))
            .unwrap()
        };
        assert_eq!(revoke("rt1"), Done::Done);
        assert!(w.grant("g1").revoked);
        assert!(!w.has_access("at1"));
        assert_eq!(revoke("unknown"), Done::Done);
    }

    pub(in crate::oauth::ledger) fn revoke_rt(w: &World, name: &str) {
        revoke_rt_with(w, name, true);
    }

    fn revoke_rt_with(w: &World, name: &str, forget_consent: bool) {
        block_on(revoke_refresh(
            &w.store,
            &w.p,
            Home::Client(&client()),
            RevokeRefresh {
                refresh_hash: h(name),
                client_id: Some(client()),
                forget_consent,
            },
            w.now(),
        ))
        .unwrap();
    }

    /// Refreshes `n` times from `rt<from>`, each a second apart; the
    /// last refresh token is `rt<from + n>`.
    pub(in crate::oauth::ledger) fn refresh_chain(w: &World, from: u32, n: u32) {
        for i in from..from + n {
            w.advance(1);
            assert!(
                refusal(&w.refresh(&format!("rt{i}"), i + 1)).is_none(),
                "{i}"
            );
        }
    }

    #[test]
    fn a_grant_keeps_only_its_two_newest_access_tokens() {
        let w = World::new();
        w.redeem(|_| {});
        refresh_chain(&w, 1, 5);
        let live: Vec<_> = w.grant("g1").access.into_iter().map(|(h, _)| h).collect();
        assert_eq!(live, vec![h("at5"), h("at6")]);
        for at in ["at1", "at2", "at3", "at4"] {
            assert!(!w.has_access(at), "{at} retired from KV");
            assert!(
                !w.keys().contains(&StorageKey::Access(h(at)).encode()),
                "{at} copy"
            );
        }
        assert!(w.has_access("at5") && w.has_access("at6"));
    }

    /// Every storage operation so far: the object's and KV's.
    fn ops(w: &World) -> usize {
        w.store.ops() + w.p.reads.get() + w.p.kv_writes.get()
    }

    /// Issue 11's proof: what revoking costs does not grow with the
    /// grant's history. Counted through the storage fakes, since
    /// Miniflare enforces none of the platform's limits (1,000 KV
    /// operations per invocation).
    #[test]
    fn revoking_costs_a_small_constant_whatever_the_grant_did_before() {
        let cost = |refreshes: u32, by_reuse: bool| {
            let w = World::new();
            w.redeem(|_| {});
            refresh_chain(&w, 1, refreshes);
            let before = ops(&w);
            if by_reuse {
                // An old refresh token comes back: the grant ends.
                w.advance(60);
                let reply = w.refresh("rt1", 1_000_000);
                assert_eq!(refusal(&reply), Some(Refusal::InvalidGrant));
            } else {
                revoke_rt(&w, &format!("rt{}", refreshes + 1));
            }
            assert!(w.grant("g1").revoked);
            for n in 1..=refreshes + 1 {
                assert!(!w.has_access(&format!("at{n}")), "at{n} left in KV");
            }
            ops(&w) - before
        };
        for by_reuse in [false, true] {
            let small = cost(1, by_reuse);
            let large = cost(1000, by_reuse);
            assert_eq!(small, large, "reuse: {by_reuse}");
            assert!(large <= 8, "revocation took {large} storage operations");
        }
    }

    #[test]
    fn a_failed_revocation_commit_revokes_nothing_and_deletes_nothing() {
        let w = World::new();
        w.redeem(|_| {});
        w.store.fail_commit.set(true);
        let result = block_on(revoke_refresh(
            &w.store,
            &w.p,
            Home::Client(&client()),
            RevokeRefresh {
                refresh_hash: h("rt1"),
                client_id: Some(client()),
                forget_consent: true,
            },
            w.now(),
        ));
        assert!(result.is_err());
        w.store.fail_commit.set(false);
        assert!(!w.grant("g1").revoked);
        assert!(w.has_access("at1"));
    }

    pub(in crate::oauth::ledger) fn sealed_refresh(
        w: &World,
        presented: &str,
        new: u32,
    ) -> TokensReply {
        w.refresh_with(|m| {
            m.refresh_hash = h(presented);
            m.tokens = tokens(new);
            m.sealed_pair = Some(format!("pair{new}"));
        })
    }

    fn again(reply: &TokensReply) -> Option<String> {
        match reply {
            TokensReply::Again(a) => Some(a.sealed_pair.clone()),
            _ => None,
        }
    }

    #[test]
    fn a_lost_responses_retry_gets_the_same_pair_within_the_grace_period() {
        let w = World::new();
        w.redeem(|_| {});
        assert!(refusal(&sealed_refresh(&w, "rt1", 2)).is_none());
        w.advance(ROTATION_GRACE_SECS - 1);
        // Retried (its own new pair minted, as every worker does): the
        // first pair again, nothing new stored.
        let retry = sealed_refresh(&w, "rt1", 3);
        assert_eq!(again(&retry).as_deref(), Some("pair2"));
        assert!(!w.has_access("at3"));
        assert!(
            !w.keys()
                .contains(&StorageKey::RefreshIndex(h("rt3")).encode())
        );
        assert!(!w.grant("g1").revoked);
        // The chain continues from rt2.
        assert!(refusal(&sealed_refresh(&w, "rt2", 4)).is_none());
        // rt2 was presented: rt1 is a reuse now, whatever the time.
        assert_eq!(
            refusal(&sealed_refresh(&w, "rt1", 5)),
            Some(Refusal::InvalidGrant)
        );
        assert!(w.grant("g1").revoked);
    }

    /// Issue 15: a grant's sites go from its code to the grant, to every
    /// access token its refreshes write, and to the pair a lost
    /// response's retry gets again (its access record is the one the
    /// rotation wrote).
    #[test]
    fn the_sites_of_a_grant_reach_every_access_token() {
        let w = World::new();
        let sites = Some(vec!["shop.example.com".to_owned()]);
        let code_key = StorageKey::Code(h("c1")).encode();
        let mut code: crate::oauth::ledger::records::CodeRecord =
            serde_json::from_value(w.store.entries.borrow()[&code_key].clone()).unwrap();
        code.sites.clone_from(&sites);
        w.store
            .entries
            .borrow_mut()
            .insert(code_key, serde_json::to_value(&code).unwrap());
        w.redeem(|_| {});
        assert_eq!(w.grant("g1").sites, sites);
        assert_eq!(w.access_record("at1").sites, sites);
        assert!(refusal(&sealed_refresh(&w, "rt1", 2)).is_none());
        assert_eq!(w.access_record("at2").sites, sites);
        assert_eq!(
            again(&sealed_refresh(&w, "rt1", 3)).as_deref(),
            Some("pair2")
        );
        assert_eq!(
            w.access_record("at2").sites,
            sites,
            "the retried pair's token"
        );
        assert_eq!(w.grant("g1").sites, sites, "kept by every rotation");
    }

    #[test]
    fn a_retry_after_the_grace_period_or_by_another_client_is_refused() {
        // Late: the grant ends, as before issue 11.
        let w = World::new();
        w.redeem(|_| {});
        assert!(refusal(&sealed_refresh(&w, "rt1", 2)).is_none());
        w.advance(ROTATION_GRACE_SECS);
        assert_eq!(
            refusal(&sealed_refresh(&w, "rt1", 3)),
            Some(Refusal::InvalidGrant)
        );
        assert!(w.grant("g1").revoked);
        // Another client: refused, and gets nothing.
        let w = World::new();
        w.redeem(|_| {});
        assert!(refusal(&sealed_refresh(&w, "rt1", 2)).is_none());
        let other = block_on(refresh(
            &w.store,
            &w.p,
            Home::Pair,
            Refresh {
                client_id: ClientId::parse("pmcp_client_B").unwrap(),
                refresh_hash: h("rt1"),
                scope: None,
                resource: None,
                tokens: tokens(3),
                sealed_pair: Some("x".into()),
                not_before: None,
            },
            w.now(),
        ))
        .unwrap();
        assert_eq!(refusal(&other), Some(Refusal::InvalidGrant));
        // The current token presented and refused (a scope beyond the
        // grant's) counts as presented: the retry is over.
        let w = World::new();
        w.redeem(|_| {});
        assert!(refusal(&sealed_refresh(&w, "rt1", 2)).is_none());
        let wide = w.refresh_with(|m| {
            m.refresh_hash = h("rt2");
            m.tokens = tokens(3);
            m.scope = Some(ScopeSet::parse(Some("mcp other")).unwrap_or_else(|_| {
                serde_json::from_value(serde_json::json!(["mcp", "other"])).unwrap()
            }));
        });
        assert!(refusal(&wide).is_some());
        assert_eq!(
            refusal(&sealed_refresh(&w, "rt1", 4)),
            Some(Refusal::InvalidGrant)
        );
    }

    #[test]
    fn grants_from_before_the_kill_switch_are_refused_without_a_write() {
        let w = World::new();
        w.redeem(|_| {});
        let writes = w.store.writes.get() + w.p.kv_writes.get();
        let reply = w.refresh_with(|m| m.not_before = Some(w.now() + 1));
        assert_eq!(refusal(&reply), Some(Refusal::InvalidGrant));
        assert_eq!(w.store.writes.get() + w.p.kv_writes.get(), writes);
        assert!(!w.grant("g1").revoked, "refused, not revoked: no sweep");
        // Created at the switch's time: still good.
        assert!(refusal(&w.refresh_with(|m| m.not_before = Some(w.now()))).is_none());
        assert_eq!(
            w.access_record("at2").grant_created_at,
            Some(w.grant("g1").created_at)
        );
    }

    #[test]
    fn revoking_a_refresh_token_removes_the_users_consent_for_the_client() {
        let consent = StorageKey::Consent(subject().user_key).encode();
        let world = || {
            let w = World::new();
            w.redeem(|_| {});
            w.store
                .entries
                .borrow_mut()
                .insert(consent.clone(), serde_json::json!({"approved_at": 1}));
            w
        };
        // The worker ending a grant itself (the email gate) keeps it.
        let w = world();
        revoke_rt_with(&w, "rt1", false);
        assert!(w.grant("g1").revoked);
        assert!(w.keys().contains(&consent));
        // The client revoking at /revoke removes it.
        let w = world();
        revoke_rt(&w, "rt1");
        assert!(w.grant("g1").revoked);
        assert!(!w.keys().contains(&consent));
    }
}
