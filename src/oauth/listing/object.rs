//! Inside a listing object: its messages, and the fan-out of a
//! revoke-all marker run from its alarm.

use serde::Serialize;
use serde_json::Value;

use super::protocol::{Listed, ListingMessage, PairsReply};
use super::records::{Kind, ListedPair, MARKER_KEY, PAIR_PREFIX, RevokeMarker, pair_key};
use crate::oauth::ids::RoutingId;
use crate::oauth::ledger::client::{Coordinator, Ledger};
use crate::oauth::ledger::protocol::RevokeAll;
use crate::oauth::ledger::revoke_all::revoke_all;
use crate::oauth::ledger::store::LedgerStore;
use crate::ports::{Clock, KeyValue, Log, StorageError};

/// Pair objects one alarm run sends their step to, at most: well under
/// the runtime's subrequest limit per invocation (each step also
/// deletes the pair's access records from KV).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const FAN_OUT_BUDGET: usize = 50;
/// How long to wait before retrying when a run made no progress (every
/// pair it tried failed).
pub const RETRY_DELAY_SECS: u64 = 30;

/// Applies one message. Returns the reply and whether the alarm must be
/// set now (a revocation was marked).
#[cfg_attr(not(any(test, target_arch = "wasm32")), allow(dead_code))]
pub async fn apply<S: LedgerStore>(
    store: &S,
    kind: Kind,
    message: ListingMessage,
) -> Result<(Value, bool), StorageError> {
    match message {
        ListingMessage::AddPair(m) => {
            // One write, no read first: a client's index takes one entry
            // per new user, all in one object, so a burst of new users
            // queues here (the scale benchmark); a read would double
            // that. A pair is sent again only when its listing failed
            // part-way (the pair object was not marked), and then within
            // seconds, so overwriting `first_connected` moves it by
            // those seconds at most.
            let key = pair_key(&m.pair.routing);
            store.commit(vec![(key, encode(&m.pair)?)]).await?;
            Ok((encode(&Listed::Done)?, false))
        }
        ListingMessage::Pairs(m) => {
            let limit = usize::try_from(m.limit.clamp(1, super::client::MAX_PAGE)).unwrap_or(1);
            let after = m
                .after
                .as_deref()
                .and_then(RoutingId::from_hex)
                .map(|r| pair_key(&r));
            let page = store.list(PAIR_PREFIX, after.as_deref(), limit).await?;
            let full = page.len() == limit;
            let pairs: Vec<ListedPair> = page
                .into_iter()
                .filter_map(|(_, v)| serde_json::from_value(v).ok())
                .collect();
            let next = if full {
                pairs.last().map(|p| p.routing.to_hex())
            } else {
                None
            };
            let revoking = marker(store).await?.map(|m| m.before);
            Ok((
                encode(&PairsReply::Pairs {
                    pairs,
                    next,
                    revoking,
                })?,
                false,
            ))
        }
        ListingMessage::MarkRevokeAll(m) => {
            // A later marker restarts the fan-out from the first pair; an
            // earlier one is covered by the marker in place.
            let before = marker(store)
                .await?
                .map_or(m.at, |old| old.before.max(m.at));
            let fresh = RevokeMarker {
                before,
                cursor: None,
                scanned: false,
                retry: Vec::new(),
                own_done: kind == Kind::Directory,
                runs: 0,
            };
            store
                .commit(vec![(MARKER_KEY.to_owned(), encode(&fresh)?)])
                .await?;
            Ok((encode(&Listed::Done)?, true))
        }
    }
}

async fn marker<S: LedgerStore>(store: &S) -> Result<Option<RevokeMarker>, StorageError> {
    Ok(store
        .load(MARKER_KEY)
        .await?
        .and_then(|v| serde_json::from_value(v).ok()))
}

fn encode<T: Serialize>(value: &T) -> Result<Value, StorageError> {
    serde_json::to_value(value).map_err(|e| StorageError(format!("encode: {e}")))
}

/// What an alarm run leaves to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanOut {
    /// No revocation in progress.
    Idle,
    /// The revocation reached every pair; the marker is gone.
    Done,
    /// More to do: run again in this many seconds.
    Again { delay_secs: u64 },
}

/// One alarm run of a revocation: the object's own grants (a client's
/// legacy ledger), then the pairs that failed last time, then the next
/// listed pairs, at most `budget` pair calls in all. A pair whose call
/// fails is kept for the next run; the marker goes once every pair has
/// succeeded.
#[cfg_attr(not(any(test, target_arch = "wasm32")), allow(dead_code))]
pub async fn fan_out<S: LedgerStore, P: Coordinator + KeyValue + Clock + Log>(
    store: &S,
    platform: &P,
    budget: usize,
) -> Result<FanOut, StorageError> {
    let Some(mut m) = marker(store).await? else {
        return Ok(FanOut::Idle);
    };
    let before = m.before;
    let mut progressed = false;
    let mut failed: Vec<RoutingId> = Vec::new();
    if !m.own_done {
        match revoke_all(
            store,
            platform,
            RevokeAll { before },
            platform.now().as_secs(),
        )
        .await
        {
            Ok(_) => {
                m.own_done = true;
                progressed = true;
            }
            Err(StorageError(why)) => platform.warn(&format!("revoke-all: own grants: {why}")),
        }
    }
    let mut left = budget;
    let retry = std::mem::take(&mut m.retry);
    let mut untried = Vec::new();
    for routing in retry {
        if left == 0 {
            untried.push(routing);
            continue;
        }
        left -= 1;
        match Ledger::pair(platform, routing).revoke_all(before).await {
            Ok(_) => progressed = true,
            Err(_) => failed.push(routing),
        }
    }
    while left > 0 && !m.scanned {
        let page = store.list(PAIR_PREFIX, m.cursor.as_deref(), left).await?;
        if page.len() < left {
            m.scanned = true;
        }
        for (key, value) in page {
            left -= 1;
            m.cursor = Some(key);
            let Ok(pair) = serde_json::from_value::<ListedPair>(value) else {
                continue;
            };
            match Ledger::pair(platform, pair.routing)
                .revoke_all(before)
                .await
            {
                Ok(_) => progressed = true,
                Err(_) => failed.push(pair.routing),
            }
        }
    }
    if !failed.is_empty() {
        platform.warn(&format!(
            "revoke-all: {} pair objects failed; retried on the next run",
            failed.len()
        ));
    }
    untried.extend(failed);
    m.retry = untried;
    m.runs = m.runs.saturating_add(1);
    // A newer marker written meanwhile restarts the fan-out: keep it.
    if marker(store).await?.map(|now| now.before) != Some(before) {
        return Ok(FanOut::Again { delay_secs: 0 });
    }
    if m.scanned && m.retry.is_empty() && m.own_done {
        store.remove(vec![MARKER_KEY.to_owned()]).await?;
        return Ok(FanOut::Done);
    }
    store
        .commit(vec![(MARKER_KEY.to_owned(), encode(&m)?)])
        .await?;
    Ok(FanOut::Again {
        delay_secs: if progressed { 0 } else { RETRY_DELAY_SECS },
    })
}
