//! The ledger object's own storage (Durable Object storage), as a port,
//! and typed reads and writes by [`StorageKey`].
#![allow(async_fn_in_trait)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::records::{KeyKind, StorageKey};
use crate::ports::StorageError;

/// Strongly consistent key-value storage of JSON values.
pub trait LedgerStore {
    async fn load(&self, key: &str) -> Result<Option<Value>, StorageError>;
    /// Writes all of `puts` atomically.
    async fn commit(&self, puts: Vec<(String, Value)>) -> Result<(), StorageError>;
    /// Every entry (for the sweep; a client's ledger is small).
    async fn entries(&self) -> Result<Vec<(String, Value)>, StorageError>;
    /// Up to `limit` entries whose key starts with `prefix` and sorts
    /// after `after` (exclusive), in key order: a page of a long list.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StorageError>;
    async fn remove(&self, keys: Vec<String>) -> Result<(), StorageError>;
    /// Asks for the object's maintenance (its alarm) by `at` (seconds):
    /// deletes to retry, a sealed pair to forget. The glue keeps the
    /// earliest; stores without an alarm ignore it.
    fn wake_at(&self, _at: u64) {}
}

/// Every entry of the given kinds: one prefix listing each, so a client's
/// ledger never loads its index of pairs (one entry per user) for them.
pub async fn entries_of<S: LedgerStore>(
    store: &S,
    kinds: &[KeyKind],
) -> Result<Vec<(String, Value)>, StorageError> {
    let mut out = Vec::new();
    for kind in kinds {
        out.extend(store.list(kind.prefix(), None, usize::MAX).await?);
    }
    Ok(out)
}

/// The value at `key`; one that no longer parses counts as absent.
pub async fn load<T: DeserializeOwned, S: LedgerStore>(
    store: &S,
    key: &StorageKey,
) -> Result<Option<T>, StorageError> {
    Ok(store
        .load(&key.encode())
        .await?
        .and_then(|v| serde_json::from_value(v).ok()))
}

/// One write for [`LedgerStore::commit`].
pub fn put<T: Serialize>(key: &StorageKey, value: &T) -> Result<(String, Value), StorageError> {
    serde_json::to_value(value)
        .map(|v| (key.encode(), v))
        .map_err(|e| StorageError(format!("encode: {e}")))
}
