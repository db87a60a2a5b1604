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

/// An isolate's memory of documents, bounded: when full, entries past
/// their time go first, then the one that goes stale soonest. A stream of
/// a stranger's unseen metadata URLs cannot grow it. (Natively only its
/// tests use it; the Workers glue keeps one per isolate.)
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[derive(Debug)]
pub struct Memory {
    entries: std::collections::HashMap<String, (Vec<u8>, u64)>,
    capacity: usize,
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
impl Memory {
    /// How many documents an isolate keeps (a few KiB each at most).
    pub const CAPACITY: usize = 256;

    pub fn new(capacity: usize) -> Self {
        Self {
            entries: std::collections::HashMap::new(),
            capacity,
        }
    }

    pub fn recall(&self, key: &str, now: UnixMillis) -> Option<Vec<u8>> {
        self.entries
            .get(key)
            .filter(|(_, until)| *until > now.0)
            .map(|(value, _)| value.clone())
    }

    pub fn remember(&mut self, key: &str, value: &[u8], until: UnixMillis, now: UnixMillis) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(key) {
            self.entries.retain(|_, (_, u)| *u > now.0);
            if self.entries.len() >= self.capacity
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries
            .insert(key.to_owned(), (value.to_vec(), until.0));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, block_on};

    #[test]
    fn memory_is_bounded_dropping_stale_then_soonest_stale_entries() {
        let mut m = Memory::new(3);
        let now = UnixMillis(1_000);
        m.remember("a", b"1", UnixMillis(1_500), now);
        m.remember("b", b"2", UnixMillis(9_000), now);
        m.remember("c", b"3", UnixMillis(5_000), now);
        // Full: "a" goes stale soonest.
        m.remember("d", b"4", UnixMillis(9_000), now);
        assert_eq!(m.len(), 3);
        assert!(m.recall("a", now).is_none() && m.recall("c", now).is_some());
        // Later "c" is stale: it goes, nothing live does.
        let later = UnixMillis(6_000);
        m.remember("e", b"5", UnixMillis(9_000), later);
        assert_eq!(m.len(), 3);
        assert!(m.recall("c", later).is_none());
        assert!(["b", "d", "e"].iter().all(|k| m.recall(k, later).is_some()));
        // Replacing a key never evicts another.
        m.remember("b", b"6", UnixMillis(9_500), later);
        assert_eq!(m.recall("b", later).as_deref(), Some(&b"6"[..]));
        assert_eq!(m.len(), 3);
        assert!(m.recall("b", UnixMillis(9_500)).is_none(), "past its time");
    }

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
