//! Blocked clients. An admin's block is a KV record,
//! `blocked_client:<short hash of the client id>`, holding the client id
//! and when; `/authorize` and `/token` read it (one KV read, cached at
//! the edge like every KV read) and refuse the client. Blocking also
//! revokes all of the client's grants (its index's fan-out), so a
//! blocked client holds no live token and cannot get a new one.
//!
//! Why KV and not the client's `ClientLedger`: the check sits on the
//! token endpoint of every user of the client, and a read of one Durable
//! Object per `/token` would funnel a popular client's whole traffic
//! through one object. The cost: KV takes up to 60 seconds to reach
//! other locations, so a block is certain everywhere a minute after it
//! is made (the revocation itself is immediate in the pair objects).
//! KV needs an expiry: ten years, longer than any deployment's memory.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::oauth::types::ClientId;
use crate::ports::{KeyValue, StorageError};

const PREFIX: &str = "blocked_client:";
const KEEP: Duration = Duration::from_secs(10 * 365 * 86400);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct BlockRecord {
    client_id: ClientId,
    blocked_at: u64,
}

fn key(client: &ClientId) -> String {
    format!("{PREFIX}{}", crypto::short_hash(client.as_str()))
}

/// When `client` was blocked, if it is. A record naming another client
/// (a hash collision) does not count.
pub async fn blocked_since<K: KeyValue + ?Sized>(
    kv: &K,
    client: &ClientId,
) -> Result<Option<u64>, StorageError> {
    Ok(kv
        .get(&key(client))
        .await?
        .and_then(|v| serde_json::from_slice::<BlockRecord>(&v).ok())
        .filter(|r| &r.client_id == client)
        .map(|r| r.blocked_at))
}

pub async fn block<K: KeyValue + ?Sized>(
    kv: &K,
    client: &ClientId,
    now: u64,
) -> Result<(), StorageError> {
    let record = BlockRecord {
        client_id: client.clone(),
        blocked_at: now,
    };
    let value =
        serde_json::to_vec(&record).map_err(|e| StorageError(format!("block record: {e}")))?;
    kv.put(&key(client), &value, KEEP).await
}

pub async fn unblock<K: KeyValue + ?Sized>(kv: &K, client: &ClientId) -> Result<(), StorageError> {
    kv.delete(&key(client)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, block_on};

    #[test]
    fn a_block_holds_until_lifted_and_names_its_client() {
        let p = FakePlatform::new();
        let a = ClientId::parse("pmcp_client_A").unwrap();
        let b = ClientId::parse("https://b.example/client.json").unwrap();
        assert_eq!(block_on(blocked_since(&p, &a)).unwrap(), None);
        block_on(block(&p, &a, 100)).unwrap();
        assert_eq!(block_on(blocked_since(&p, &a)).unwrap(), Some(100));
        assert_eq!(block_on(blocked_since(&p, &b)).unwrap(), None);
        // A record under a's key naming b (a collision) blocks neither b
        // nor a.
        let forged = serde_json::to_vec(&BlockRecord {
            client_id: b.clone(),
            blocked_at: 5,
        })
        .unwrap();
        block_on(p.put(&key(&a), &forged, KEEP)).unwrap();
        assert_eq!(block_on(blocked_since(&p, &a)).unwrap(), None);
        block_on(block(&p, &a, 200)).unwrap();
        block_on(unblock(&p, &a)).unwrap();
        assert_eq!(block_on(blocked_since(&p, &a)).unwrap(), None);
    }

    #[test]
    fn a_storage_failure_is_not_read_as_unblocked() {
        let p = FakePlatform::new();
        p.fail_storage.set(true);
        let a = ClientId::parse("pmcp_client_A").unwrap();
        assert!(block_on(blocked_since(&p, &a)).is_err());
    }
}
