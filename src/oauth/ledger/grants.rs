//! Grants and their tokens: refresh with rotation (OAuth 2.1 §4.3.1),
//! revocation (RFC 7009), and the access records `/internal` reads.

use std::time::Duration;

use super::protocol::{
    AccessReply, Done, Issued, LookupAccess, NewTokens, Refresh, Refusal, Refused, RevokeAccess,
    RevokeRefresh, TokensReply,
};
use super::records::{AccessRecord, GrantRecord, Home, StorageKey, access_key};
use super::store::{LedgerStore, load, put};
use crate::oauth::ids::GrantId;
use crate::oauth::types::ClientId;
use crate::ports::{Clock, KeyValue, StorageError};

fn refused(refusal: Refusal, reason: &str) -> TokensReply {
    TokensReply::Refused(Refused::new(refusal, reason))
}

/// RFC 6749 §6 with rotation; a rotated-out token in use ends the grant.
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
            "refresh token presented to another client's ledger",
        ));
    }
    let index = StorageKey::RefreshIndex(m.refresh_hash.clone());
    let Some(grant_id) = load::<GrantId, _>(store, &index).await? else {
        return Ok(refused(Refusal::InvalidGrant, "unknown refresh token"));
    };
    let grant_key = StorageKey::Grant(grant_id.clone());
    let Some(grant) = load::<GrantRecord, _>(store, &grant_key).await? else {
        return Ok(refused(Refusal::InvalidGrant, "grant not found"));
    };
    if !home.admits(&m.client_id, grant.client_id.as_ref()) {
        // Another client's token: refused, and the grant left alone (the
        // presenter proved nothing about it).
        return Ok(refused(
            Refusal::InvalidGrant,
            "refresh token issued to another client",
        ));
    }
    if grant.revoked {
        return Ok(refused(Refusal::InvalidGrant, "grant revoked"));
    }
    if !crate::secret::ct_eq(
        grant.refresh_hash.as_str().as_bytes(),
        m.refresh_hash.as_str().as_bytes(),
    ) {
        // OAuth 2.1 §4.3.1, RFC 9700 §4.14.2: a rotated-out refresh
        // token in use means it leaked; end the whole grant.
        revoke_grant(store, kv, &grant_id).await?;
        return Ok(refused(
            Refusal::InvalidGrant,
            "rotated-out refresh token reused; grant revoked",
        ));
    }
    if now >= grant.refresh_expires_at || now >= grant.expires_at {
        return Ok(refused(Refusal::InvalidGrant, "refresh token expired"));
    }
    let scope = m.scope.unwrap_or_else(|| grant.scope.clone());
    if !scope.is_subset_of(&grant.scope) {
        return Ok(refused(Refusal::InvalidScope, "scope exceeds the grant"));
    }
    if m.resource.as_ref().is_some_and(|r| r != &grant.resource) {
        return Ok(refused(
            Refusal::InvalidTarget,
            "resource differs from the grant",
        ));
    }
    let grant_expires_at = grant.expires_at;
    let mut rotated = grant;
    rotated.refresh_hash = m.tokens.refresh_hash.clone();
    rotated.refresh_expires_at = now
        .saturating_add(m.tokens.refresh_ttl_secs)
        .min(grant_expires_at);
    rotated.access.retain(|(_, exp)| *exp > now);
    let granted_scope = rotated.scope.clone();
    rotated.scope = scope.clone();
    let (mut rotated, expires_in, access) =
        write_access(kv, &m.client_id, rotated, &m.tokens, now).await?;
    // A narrowed scope applies to this access token only; the grant
    // keeps what the user approved (RFC 6749 §6).
    rotated.scope = granted_scope;
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
    Ok(TokensReply::Tokens(Issued {
        scope,
        resource: rotated.resource,
        access_expires_in: expires_in,
    }))
}

/// RFC 7009 §2.1 for a refresh token: the grant ends. Unknown tokens are
/// not an error (§2.2).
pub async fn revoke_refresh<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    home: Home<'_>,
    m: RevokeRefresh,
) -> Result<Done, StorageError> {
    let index = StorageKey::RefreshIndex(m.refresh_hash);
    let Some(grant_id) = load::<GrantId, _>(store, &index).await? else {
        return Ok(Done::Done);
    };
    let owner = load::<GrantRecord, _>(store, &StorageKey::Grant(grant_id.clone()))
        .await?
        .map(|g| g.client_id);
    let admitted = match (home, &m.client_id, owner) {
        (_, _, None) => false,
        // A message of the previous release's worker, to this client's
        // own ledger.
        (Home::Client(own), None, Some(recorded)) => recorded.is_none_or(|r| &r == own),
        (home, Some(presented), Some(recorded)) => home.admits(presented, recorded.as_ref()),
        (Home::Pair, None, Some(_)) => false,
    };
    if admitted {
        revoke_grant(store, kv, &grant_id).await?;
    }
    Ok(Done::Done)
}

/// Ends one access token, if it is the presenting client's: its KV
/// record and this object's copy go. Unknown tokens are not an error
/// (RFC 7009 §2.2).
pub async fn revoke_access<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    home: Home<'_>,
    m: RevokeAccess,
) -> Result<Done, StorageError> {
    let key = StorageKey::Access(m.access_hash.clone());
    let Some(record) = load::<AccessRecord, _>(store, &key).await? else {
        return Ok(Done::Done);
    };
    if !home.admits(&m.client_id, Some(&record.client_id)) {
        return Ok(Done::Done);
    }
    kv.delete(&access_key(&m.access_hash)).await?;
    let grant_key = StorageKey::Grant(record.grant_id.clone());
    if let Some(mut grant) = load::<GrantRecord, _>(store, &grant_key).await? {
        grant.access.retain(|(h, _)| h != &m.access_hash);
        store.commit(vec![put(&grant_key, &grant)?]).await?;
    }
    store.remove(vec![key.encode()]).await?;
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

/// Marks a grant revoked and deletes its access records from KV.
pub(super) async fn revoke_grant<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    grant_id: &GrantId,
) -> Result<(), StorageError> {
    let key = StorageKey::Grant(grant_id.clone());
    let Some(mut grant) = load::<GrantRecord, _>(store, &key).await? else {
        return Ok(());
    };
    for (hash, _) in &grant.access {
        kv.delete(&access_key(hash)).await?;
    }
    let copies = grant
        .access
        .iter()
        .map(|(hash, _)| StorageKey::Access(hash.clone()).encode())
        .collect::<Vec<_>>();
    grant.access.clear();
    grant.revoked = true;
    store.commit(vec![put(&key, &grant)?]).await?;
    if !copies.is_empty() {
        store.remove(copies).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
                },
            ))
            .unwrap()
        };
        assert_eq!(revoke("rt1"), Done::Done);
        assert!(w.grant("g1").revoked);
        assert!(!w.has_access("at1"));
        assert_eq!(revoke("unknown"), Done::Done);
    }
}
