//! Single use of a login `state` and of a consent ticket, in a small
//! sharded Durable Object (`UsedStates`), so `/authorize` stores nothing
//! and neither value costs a write in a client's or a pair's object.
//!
//! A value is spent at most once: the first [`spend`] records it, every
//! later one is refused. An entry is kept until the value itself expires
//! (a state or ticket lives at most 10 minutes,
//! `flow::login::LOGIN_LIFETIME`), after which the value is refused by
//! its own signed expiry before anyone asks here; the object's alarm then
//! purges it. Sixteen shards, chosen by the first hex digit of a hash of
//! the value's key, spread the writes of a busy deployment.
#![allow(async_fn_in_trait)]

use serde::{Deserialize, Serialize};

use super::ids::{LoginId, TicketId};
use super::ledger::store::LedgerStore;
use crate::crypto;
use crate::ports::StorageError;

/// How many `UsedStates` objects share the entries.
pub const SHARDS: usize = 16;

/// A value spent once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Once<'a> {
    /// A login's `state`, at `/callback`.
    Login(&'a LoginId),
    /// A consent ticket, at `POST /consent`.
    Ticket(&'a TicketId),
}

impl Once<'_> {
    /// The storage key inside its shard.
    pub fn key(&self) -> String {
        match self {
            Once::Login(l) => format!("login:{}", l.as_str()),
            Once::Ticket(t) => format!("ticket:{}", t.as_str()),
        }
    }

    /// The Durable Object name of its shard: `used:<hex digit>`. Part of
    /// the stored layout.
    pub fn shard(&self) -> String {
        let first = crypto::token_hash(&self.key())
            .get(..2)
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        format!("used:{:x}", first % SHARDS)
    }
}

/// The message to a shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub key: String,
    /// When the value expires, seconds: the entry is kept until then.
    pub expires_at: u64,
}

/// A shard's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Spent {
    /// First use: recorded now.
    Fresh,
    /// Spent before (or expired).
    Used,
}

/// The line to the `UsedStates` shards; each applies its messages one at
/// a time in strongly consistent storage.
pub trait UsedStateShards {
    async fn spend_in(&self, shard: &str, spend: Spend) -> Result<Spent, StorageError>;
}

/// Spends `once`, valid until `expires_at`: `true` the first time.
pub async fn spend<U: UsedStateShards + ?Sized>(
    used: &U,
    once: &Once<'_>,
    expires_at: u64,
) -> Result<bool, StorageError> {
    let reply = used
        .spend_in(
            &once.shard(),
            Spend {
                key: once.key(),
                expires_at,
            },
        )
        .await?;
    Ok(reply == Spent::Fresh)
}

/// Inside a shard: records `spend` unless it is already there (or has
/// expired: an expired value is never fresh).
#[cfg_attr(not(any(test, target_arch = "wasm32")), allow(dead_code))]
pub async fn apply<S: LedgerStore>(
    store: &S,
    spend: Spend,
    now: u64,
) -> Result<Spent, StorageError> {
    if now >= spend.expires_at || store.load(&spend.key).await?.is_some() {
        return Ok(Spent::Used);
    }
    store
        .commit(vec![(spend.key, serde_json::Value::from(spend.expires_at))])
        .await?;
    Ok(Spent::Fresh)
}

/// Inside a shard, from its alarm: removes the entries whose value has
/// expired and returns when the next one does (to set the next alarm),
/// or `None` when the shard is empty.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub async fn purge<S: LedgerStore>(store: &S, now: u64) -> Result<Option<u64>, StorageError> {
    let mut expired = Vec::new();
    let mut next: Option<u64> = None;
    for (key, value) in store.entries().await? {
        match value.as_u64() {
            Some(e) if e > now => next = Some(next.map_or(e, |n| n.min(e))),
            _ => expired.push(key),
        }
    }
    if !expired.is_empty() {
        store.remove(expired).await?;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MemoryLedgerStore, block_on};

    fn spend_at(store: &MemoryLedgerStore, key: &str, expires_at: u64, now: u64) -> Spent {
        block_on(apply(
            store,
            Spend {
                key: key.into(),
                expires_at,
            },
            now,
        ))
        .unwrap()
    }

    #[test]
    fn a_value_is_spent_once_and_never_after_it_expires() {
        let s = MemoryLedgerStore::default();
        assert_eq!(spend_at(&s, "login:l_1", 1600, 1000), Spent::Fresh);
        assert_eq!(spend_at(&s, "login:l_1", 1600, 1001), Spent::Used);
        assert_eq!(spend_at(&s, "login:l_2", 1600, 1600), Spent::Used);
        assert_eq!(
            s.entries.borrow().len(),
            1,
            "an expired value writes nothing"
        );
        // A write that fails leaves the value unspent.
        s.fail_commit.set(true);
        assert!(
            block_on(apply(
                &s,
                Spend {
                    key: "ticket:t_1".into(),
                    expires_at: 1600
                },
                1000
            ))
            .is_err()
        );
        s.fail_commit.set(false);
        assert_eq!(spend_at(&s, "ticket:t_1", 1600, 1000), Spent::Fresh);
    }

    #[test]
    fn the_alarm_purges_expired_entries_and_names_the_next_expiry() {
        let s = MemoryLedgerStore::default();
        spend_at(&s, "login:a", 1100, 1000);
        spend_at(&s, "login:b", 1300, 1000);
        spend_at(&s, "ticket:c", 1200, 1000);
        assert_eq!(block_on(purge(&s, 1000)).unwrap(), Some(1100));
        assert_eq!(block_on(purge(&s, 1150)).unwrap(), Some(1200));
        assert_eq!(s.entries.borrow().len(), 2);
        assert_eq!(block_on(purge(&s, 1300)).unwrap(), None);
        assert!(s.entries.borrow().is_empty());
    }

    #[test]
    fn values_spread_over_sixteen_named_shards() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..400 {
            let id = LoginId::fixed(&format!("l_{i}"));
            let shard = Once::Login(&id).shard();
            assert!(shard.starts_with("used:") && shard.len() == 6, "{shard}");
            seen.insert(shard);
        }
        assert_eq!(seen.len(), SHARDS);
        let t = TicketId::fixed("l_1");
        let l = LoginId::fixed("l_1");
        assert_ne!(Once::Ticket(&t).key(), Once::Login(&l).key());
    }
}
