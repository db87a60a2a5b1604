//! Documents fetched from other servers (client metadata documents, the
//! provider's discovery document and key set), cached where a stranger's
//! request cannot make us write to storage: this isolate's memory first,
//! then the data centre's Cache API ([`EdgeCache`]). Neither is KV or a
//! Durable Object, so `/authorize` with an unseen metadata URL or a cold
//! provider costs fetches, never a storage write.
//!
//! Every entry carries its own freshness: a reader ignores an entry past
//! `fresh_until` whatever a layer kept. Losing either layer only costs a
//! refetch.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ports::{Clock, EdgeCache, IsolateCache, UnixMillis};

/// The ports the cache uses: memory, the edge cache and the clock.
pub trait DocumentCache: IsolateCache + EdgeCache + Clock {}
impl<T: IsolateCache + EdgeCache + Clock> DocumentCache for T {}

/// A cached document and when it was fetched (seconds).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry<T> {
    pub value: T,
    pub fetched_at: u64,
    pub fresh_until: u64,
}

/// The fresh entry at `key`, from memory or the edge cache (which then
/// fills memory).
pub async fn get<T: DeserializeOwned, P: DocumentCache>(
    platform: &P,
    key: &str,
) -> Option<Entry<T>> {
    let now = platform.now();
    let bytes = match platform.recall(key, now) {
        Some(bytes) => bytes,
        None => {
            let bytes = platform.lookup(key).await?;
            let entry: Entry<serde_json::Value> = serde_json::from_slice(&bytes).ok()?;
            platform.remember(
                key,
                &bytes,
                UnixMillis(entry.fresh_until.saturating_mul(1000)),
            );
            bytes
        }
    };
    let entry: Entry<T> = serde_json::from_slice(&bytes).ok()?;
    (now.as_secs() < entry.fresh_until).then_some(entry)
}

/// Keeps `value`, fetched `fetched_at`, until `fresh_until` (seconds) in
/// both layers. Failures are silent: the next reader refetches.
pub async fn put<T: Serialize, P: DocumentCache>(
    platform: &P,
    key: &str,
    value: &T,
    fetched_at: u64,
    fresh_until: u64,
) {
    let entry = Entry {
        value,
        fetched_at,
        fresh_until,
    };
    let Ok(bytes) = serde_json::to_vec(&entry) else {
        return;
    };
    let now = platform.now().as_secs();
    if fresh_until <= now {
        return;
    }
    platform.remember(key, &bytes, UnixMillis(fresh_until.saturating_mul(1000)));
    platform
        .store(key, &bytes, Duration::from_secs(fresh_until - now))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, block_on};

    #[test]
    fn entries_live_in_memory_and_the_edge_cache_until_they_go_stale() {
        let p = FakePlatform::new();
        let now = p.now().as_secs();
        block_on(put(&p, "doc/x", &"v".to_owned(), now, now + 60));
        assert_eq!(p.storage_writes(), 0, "no KV or object write");
        let hit = block_on(get::<String, _>(&p, "doc/x")).unwrap();
        assert_eq!((hit.value.as_str(), hit.fetched_at), ("v", now));
        // Another isolate (empty memory) finds it in the edge cache.
        p.isolate.borrow_mut().clear();
        assert!(block_on(get::<String, _>(&p, "doc/x")).is_some());
        assert!(p.isolate.borrow().contains_key("doc/x"), "memory refilled");
        p.advance(Duration::from_secs(60));
        assert!(block_on(get::<String, _>(&p, "doc/x")).is_none(), "stale");
        // An already stale value is not kept.
        block_on(put(&p, "doc/y", &"v".to_owned(), now, now));
        assert!(p.edge.borrow().get("doc/y").is_none());
    }
}
