//! The ledger object's dispatch: one message in, one transition, its
//! reply out as JSON. The caller runs this with no other message of the
//! same client interleaved.

use serde::Serialize;
use serde_json::Value;

use super::protocol::Message;
use super::records::Home;
use super::store::LedgerStore;
use super::{codes, consents, grants, key_checked, logins, revoke_all, summary};
use crate::ports::{Clock, KeyValue, StorageError};

/// Applies one message. `kv` receives access records; `store` is the
/// object's own storage; `home` says which kind of object it is.
// Called by the Durable Object (wasm32 glue) and by native tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub async fn apply<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    home: Home<'_>,
    message: Message,
) -> Result<Value, StorageError> {
    let now = kv.now().as_secs();
    match message {
        Message::IssueCode(m) => json(&codes::issue(store, home, m).await?),
        Message::RedeemCode(m) => json(&codes::redeem(store, kv, home, m, now).await?),
        Message::Refresh(m) => json(&grants::refresh(store, kv, home, m, now).await?),
        Message::RevokeRefresh(m) => json(&grants::revoke_refresh(store, kv, home, m, now).await?),
        Message::LookupAccess(m) => json(&grants::lookup_access(store, m, now).await?),
        Message::RevokeAccess(m) => json(&grants::revoke_access(store, kv, home, m, now).await?),
        Message::BeginLogin(m) => json(&logins::begin(store, m).await?),
        Message::FinishLogin(m) => json(&logins::finish(store, m, now).await?),
        Message::ConsumeNonce(m) => json(&consents::consume_nonce(store, m, now).await?),
        Message::GetConsent(m) => json(&consents::get(store, m).await?),
        Message::LegacyConsentUsers(m) => json(&consents::legacy_users(store, m).await?),
        Message::RecordConsent(m) => json(&consents::record(store, m).await?),
        Message::MarkListed(m) => json(&revoke_all::mark_listed(store, m).await?),
        Message::RevokeAll(m) => json(&revoke_all::revoke_all(store, kv, m, now).await?),
        Message::Summarize(m) => json(&summary::summarize(store, m, now).await?),
        Message::KeyChecked(m) => json(&key_checked::record(store, home, m).await?),
    }
}

fn json<T: Serialize>(reply: &T) -> Result<Value, StorageError> {
    serde_json::to_value(reply).map_err(|e| StorageError(format!("encode reply: {e}")))
}
