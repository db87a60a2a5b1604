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
