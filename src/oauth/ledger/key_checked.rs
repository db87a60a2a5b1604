//! A key grant's hourly check with Plausible, recorded (issue 15): the
//! worker asks Plausible at refresh when the grant's last check is an
//! hour old, and tells the grant's object when Plausible accepted the key.

use super::protocol::{Done, KeyChecked};
use super::records::{GrantRecord, Home, StorageKey};
use super::store::{LedgerStore, load, put};
use crate::oauth::ids::GrantId;
use crate::ports::StorageError;

/// Records `m.at` on the live grant the refresh token names, if it is the
/// presenting client's; never moves the time backwards. Anything else
/// (an unknown or revoked grant, another client's) changes nothing.
pub async fn record<S: LedgerStore>(
    store: &S,
    home: Home<'_>,
    m: KeyChecked,
) -> Result<Done, StorageError> {
    let index = StorageKey::RefreshIndex(m.refresh_hash);
    let Some(grant_id) = load::<GrantId, _>(store, &index).await? else {
        return Ok(Done::Done);
    };
    let grant_key = StorageKey::Grant(grant_id);
    let Some(mut grant) = load::<GrantRecord, _>(store, &grant_key).await? else {
        return Ok(Done::Done);
    };
    if grant.revoked || !home.admits(&m.client_id, grant.client_id.as_ref()) {
        return Ok(Done::Done);
    }
    if grant.key_checked_at.is_some_and(|at| at >= m.at) {
        return Ok(Done::Done);
    }
    grant.key_checked_at = Some(m.at);
    store.commit(vec![put(&grant_key, &grant)?]).await?;
    Ok(Done::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ledger::test_world::{World, client, h};
    use crate::oauth::types::ClientId;
    use crate::testing::block_on;

    fn checked(w: &World, refresh: &str, by: &ClientId, at: u64) {
        let m = KeyChecked {
            refresh_hash: h(refresh),
            client_id: by.clone(),
            at,
        };
        block_on(record(&w.store, Home::Client(&client()), m)).unwrap();
    }

    #[test]
    fn only_the_grants_own_client_records_a_later_check_on_a_live_grant() {
        let w = World::new();
        w.redeem(|_| {});
        assert_eq!(w.grant("g1").key_checked_at, None);
        checked(&w, "rt1", &client(), 100);
        assert_eq!(w.grant("g1").key_checked_at, Some(100));
        checked(&w, "rt1", &client(), 50);
        assert_eq!(w.grant("g1").key_checked_at, Some(100), "never backwards");
        let other = ClientId::parse("pmcp_client_other").unwrap();
        checked(&w, "rt1", &other, 200);
        assert_eq!(
            w.grant("g1").key_checked_at,
            Some(100),
            "another client's word"
        );
        checked(&w, "unknown", &client(), 300);
        let mut revoked = w.grant("g1");
        revoked.revoked = true;
        w.store.entries.borrow_mut().insert(
            StorageKey::Grant(GrantId::fixed("g1")).encode(),
            serde_json::to_value(&revoked).unwrap(),
        );
        checked(&w, "rt1", &client(), 400);
        assert_eq!(
            w.grant("g1").key_checked_at,
            Some(100),
            "a revoked grant stays as it is"
        );
    }
}
