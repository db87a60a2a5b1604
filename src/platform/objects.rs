//! The Durable Object classes: a client's ledger (legacy state and its
//! index of pairs), a pair's grant object, a user's directory and the
//! used-state shards; and Durable Object storage as the ledger's store.

use std::time::Duration;

use worker::wasm_bindgen::JsValue;

use super::latency::StorageLatency;
use super::{LISTING_PATH, LedgerMessage, WorkerPlatform};
use crate::oauth::ledger::apply::apply;
use crate::oauth::ledger::protocol::Message;
use crate::oauth::ledger::records::Home;
use crate::oauth::ledger::retire::{ALARM_DELETE_BUDGET, RETRY_DELETES_SECS, maintain};
use crate::oauth::ledger::store::LedgerStore;
use crate::oauth::ledger::sweep::purge;
use crate::oauth::listing::object::{self as listing, FAN_OUT_BUDGET, FanOut};
use crate::oauth::listing::protocol::ListingMessage;
use crate::oauth::listing::records::Kind;
use crate::oauth::types::ClientId;
use crate::oauth::used::{self, Spend, Spent};
use crate::ports::StorageError;

/// Durable Object storage as the ledger's store, behind the test build's
/// storage latency (none in the release build).
struct ObjectStore(worker::Storage, StorageLatency, WakeAt);

/// The earliest maintenance a transition asked for (seconds).
#[derive(Clone, Default)]
struct WakeAt(std::rc::Rc<std::cell::Cell<Option<u64>>>);

impl ObjectStore {
    fn new(storage: worker::Storage, latency: StorageLatency) -> Self {
        Self(storage, latency, WakeAt::default())
    }
}

impl LedgerStore for ObjectStore {
    fn wake_at(&self, at: u64) {
        let cell = &(self.2).0;
        cell.set(Some(cell.get().map_or(at, |w| w.min(at))));
    }

    async fn load(&self, key: &str) -> Result<Option<serde_json::Value>, StorageError> {
        // Values are stored as JSON text, so no structured-clone or
        // serde-wasm-bindgen mapping can change their shape.
        self.1.wait().await;
        let text = self
            .0
            .get::<String>(key)
            .await
            .map_err(|e| StorageError(format!("do get: {e}")))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    async fn commit(&self, puts: Vec<(String, serde_json::Value)>) -> Result<(), StorageError> {
        // One put of a plain object writes every key atomically.
        let entries = worker::js_sys::Object::new();
        for (key, value) in puts {
            worker::js_sys::Reflect::set(
                &entries,
                &JsValue::from_str(&key),
                &JsValue::from_str(&value.to_string()),
            )
            .map_err(|_| StorageError("do put: cannot build entries".into()))?;
        }
        self.1.wait().await;
        self.0
            .put_multiple_raw(entries)
            .await
            .map_err(|e| StorageError(format!("do put: {e}")))
    }

    async fn entries(&self) -> Result<Vec<(String, serde_json::Value)>, StorageError> {
        self.1.wait().await;
        let map = self
            .0
            .list()
            .await
            .map_err(|e| StorageError(format!("do list: {e}")))?;
        let mut out = Vec::new();
        map.for_each(&mut |value, key| {
            if let (Some(k), Some(text)) = (key.as_string(), value.as_string())
                && let Ok(v) = serde_json::from_str(&text)
            {
                out.push((k, v));
            }
        });
        Ok(out)
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, serde_json::Value)>, StorageError> {
        // `start` is inclusive: ask for one more and drop `after` itself.
        let mut options = worker::ListOptions::new().prefix(prefix);
        // No limit for "all of them" (the runtime's own bound applies).
        if limit < 1_000_000 {
            options = options.limit(limit.saturating_add(1));
        }
        if let Some(after) = after {
            options = options.start(after);
        }
        self.1.wait().await;
        let map = self
            .0
            .list_with_options(options)
            .await
            .map_err(|e| StorageError(format!("do list: {e}")))?;
        let mut out = Vec::new();
        map.for_each(&mut |value, key| {
            if let (Some(k), Some(text)) = (key.as_string(), value.as_string())
                && Some(k.as_str()) != after
                && let Ok(v) = serde_json::from_str(&text)
            {
                out.push((k, v));
            }
        });
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.truncate(limit);
        Ok(out)
    }

    async fn remove(&self, keys: Vec<String>) -> Result<(), StorageError> {
        // The runtime deletes at most 128 keys per call.
        for chunk in keys.chunks(128) {
            self.1.wait().await;
            self.0
                .delete_multiple(chunk.to_vec())
                .await
                .map_err(|e| StorageError(format!("do delete: {e}")))?;
        }
        Ok(())
    }
}

/// How often a ledger object sweeps out what can no longer matter.
const PURGE_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Per-client approval state: consents and serialised grant transitions.
///
/// One instance per OAuth client. Its storage is strongly consistent, and
/// each transition runs under `blockConcurrencyWhile`, so no other request
/// to this client interleaves even while the KV write is in flight: code
/// redemption and refresh rotation succeed once.
#[worker::durable_object]
pub struct ClientLedger {
    state: worker::State,
    env: worker::Env,
}

impl worker::DurableObject for ClientLedger {
    fn new(state: worker::State, env: worker::Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: worker::Request) -> worker::Result<worker::Response> {
        if req.path() == LISTING_PATH {
            return listing_fetch(&self.state, &self.env, Kind::Index, &req.text().await?).await;
        }
        let Ok(message) = serde_json::from_str::<LedgerMessage>(&req.text().await?) else {
            return worker::Response::error("bad ledger message", 400);
        };
        let LedgerMessage { client_id, op } = message;
        run(&self.state, &self.env, Some(client_id), op).await
    }

    /// A revoke-all fan-out in progress comes first; the daily sweep runs
    /// when none is.
    async fn alarm(&self) -> worker::Result<worker::Response> {
        match fan_out_step(&self.state, &self.env).await? {
            FanOut::Again { .. } => worker::Response::ok("fanning out"),
            FanOut::Idle | FanOut::Done => sweep(&self.state, &self.env).await,
        }
    }
}

/// A person's directory: the pairs (clients) they connected, and the
/// revoke-all marker of all their grants, fanned out from the alarm.
/// Named `u:<user key>`.
#[worker::durable_object]
pub struct UserDirectory {
    state: worker::State,
    env: worker::Env,
}

impl worker::DurableObject for UserDirectory {
    fn new(state: worker::State, env: worker::Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: worker::Request) -> worker::Result<worker::Response> {
        listing_fetch(&self.state, &self.env, Kind::Directory, &req.text().await?).await
    }

    async fn alarm(&self) -> worker::Result<worker::Response> {
        fan_out_step(&self.state, &self.env).await?;
        worker::Response::ok("fanned out")
    }
}

/// Applies one listing message; a revoke-all marker sets the alarm now.
async fn listing_fetch(
    state: &worker::State,
    env: &worker::Env,
    kind: Kind,
    text: &str,
) -> worker::Result<worker::Response> {
    let Ok(message) = serde_json::from_str::<ListingMessage>(text) else {
        return worker::Response::error("bad listing message", 400);
    };
    let store = ObjectStore::new(state.storage(), StorageLatency::of(env));
    let outcome = state
        .block_concurrency_while(async move { Ok(listing::apply(&store, kind, message).await) })
        .await?;
    match outcome {
        Ok((reply, arm)) => {
            if arm {
                let _ = state.storage().set_alarm(Duration::from_millis(0)).await;
            }
            worker::Response::from_json(&reply)
        }
        Err(StorageError(reason)) => {
            worker::console_error!("listing failed: {reason}");
            worker::Response::error("listing storage failure", 503)
        }
    }
}

/// One alarm run of a revoke-all fan-out, serialised with the object's
/// messages; re-arms the alarm while work is left.
async fn fan_out_step(state: &worker::State, env: &worker::Env) -> worker::Result<FanOut> {
    let storage = state.storage();
    let env = env.clone();
    let outcome = state
        .block_concurrency_while(async move {
            let platform = WorkerPlatform::new(env);
            let store = ObjectStore::new(storage, platform.latency);
            Ok(listing::fan_out(&store, &platform, FAN_OUT_BUDGET).await)
        })
        .await?;
    let next = match outcome {
        Ok(FanOut::Again { delay_secs }) => Some(delay_secs),
        Ok(done) => return Ok(done),
        Err(StorageError(reason)) => {
            worker::console_error!("revoke-all fan-out failed: {reason}");
            Some(listing::RETRY_DELAY_SECS)
        }
    };
    if let Some(delay) = next {
        state
            .storage()
            .set_alarm(Duration::from_secs(delay))
            .await?;
    }
    Ok(FanOut::Again {
        delay_secs: next.unwrap_or(0),
    })
}

/// One (client, user) pair's codes, grants, refresh chains and consent,
/// named `g:<routing id>`. Each record names its client; the object
/// serialises its transitions exactly as [`ClientLedger`] does, so the
/// single-success rules hold here too.
#[worker::durable_object]
pub struct GrantLedger {
    state: worker::State,
    env: worker::Env,
}

impl worker::DurableObject for GrantLedger {
    fn new(state: worker::State, env: worker::Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: worker::Request) -> worker::Result<worker::Response> {
        let Ok(op) = serde_json::from_str::<Message>(&req.text().await?) else {
            return worker::Response::error("bad ledger message", 400);
        };
        run(&self.state, &self.env, None, op).await
    }

    async fn alarm(&self) -> worker::Result<worker::Response> {
        sweep(&self.state, &self.env).await
    }
}

/// Applies one message in a ledger object: a client's (`Some` client id)
/// or a pair's.
async fn run(
    state: &worker::State,
    env: &worker::Env,
    client: Option<ClientId>,
    op: Message,
) -> worker::Result<worker::Response> {
    let storage = state.storage();
    let env = env.clone();
    let wake = WakeAt::default();
    let woken = wake.clone();
    // Errors are returned as values: an Err here would reset the object.
    let outcome = state
        .block_concurrency_while(async move {
            let kv = WorkerPlatform::new(env);
            let home = match &client {
                Some(c) => Home::Client(c),
                None => Home::Pair,
            };
            let store = ObjectStore(storage, kv.latency, woken);
            Ok(apply(&store, &kv, home, op).await)
        })
        .await?;
    // Keep a daily sweep scheduled while the object holds anything, and
    // the alarm early when a transition asked for it (deletes to retry,
    // a sealed pair to forget).
    let storage = state.storage();
    match wake.0.get() {
        Some(at) => arm_purge(&storage, at).await,
        None => {
            if matches!(storage.get_alarm().await, Ok(None)) {
                let _ = storage.set_alarm(PURGE_INTERVAL).await;
            }
        }
    }
    match outcome {
        Ok(reply) => worker::Response::from_json(&reply),
        Err(StorageError(reason)) => {
            worker::console_error!("ledger transition failed: {reason}");
            worker::Response::error("ledger storage failure", 503)
        }
    }
}

/// A ledger object's alarm: deferred KV deletes are retried and sealed
/// pairs past their grace period forgotten (serialised with the
/// object's messages), then the sweep. The next alarm is the earlier of
/// what maintenance still wants and the daily sweep.
async fn sweep(state: &worker::State, env: &worker::Env) -> worker::Result<worker::Response> {
    let storage = state.storage();
    let now = worker::Date::now().as_millis() / 1000;
    let maintenance_storage = state.storage();
    let latency = StorageLatency::of(env);
    let env = env.clone();
    let again = state
        .block_concurrency_while(async move {
            let kv = WorkerPlatform::new(env);
            let store = ObjectStore::new(maintenance_storage, kv.latency);
            Ok(maintain(&store, &kv, now, ALARM_DELETE_BUDGET).await)
        })
        .await?;
    let again = match again {
        Ok(again) => again,
        Err(StorageError(reason)) => {
            worker::console_error!("ledger maintenance failed: {reason}");
            Some(now.saturating_add(RETRY_DELETES_SECS))
        }
    };
    let store = ObjectStore::new(state.storage(), latency);
    match purge(&store, now).await {
        Ok(removed) => worker::console_log!("ledger purge removed {removed} entries"),
        Err(StorageError(reason)) => worker::console_error!("ledger purge failed: {reason}"),
    }
    if let Some(at) = again {
        arm_purge(&storage, at).await;
    } else if !matches!(
        store.list("", None, 1).await.map(|e| e.is_empty()),
        Ok(true)
    ) {
        storage.set_alarm(PURGE_INTERVAL).await?;
    }
    worker::Response::ok("purged")
}

/// One shard of the single-use record of login states and consent
/// tickets (`used:<hex digit>`). Entries are kept until their value
/// expires (at most 10 minutes) and purged by the alarm, which is set for
/// the earliest expiry still held.
#[worker::durable_object]
pub struct UsedStates {
    state: worker::State,
    latency: StorageLatency,
}

impl worker::DurableObject for UsedStates {
    fn new(state: worker::State, env: worker::Env) -> Self {
        Self {
            state,
            latency: StorageLatency::of(&env),
        }
    }

    async fn fetch(&self, mut req: worker::Request) -> worker::Result<worker::Response> {
        let Ok(spend) = serde_json::from_str::<Spend>(&req.text().await?) else {
            return worker::Response::error("bad used-state message", 400);
        };
        let expires_at = spend.expires_at;
        let store = ObjectStore::new(self.state.storage(), self.latency);
        let now = worker::Date::now().as_millis() / 1000;
        let outcome = self
            .state
            .block_concurrency_while(async move { Ok(used::apply(&store, spend, now).await) })
            .await?;
        match outcome {
            Ok(reply) => {
                if reply == Spent::Fresh {
                    arm_purge(&self.state.storage(), expires_at).await;
                }
                worker::Response::from_json(&reply)
            }
            Err(StorageError(reason)) => {
                worker::console_error!("used state failed: {reason}");
                worker::Response::error("used state storage failure", 503)
            }
        }
    }

    async fn alarm(&self) -> worker::Result<worker::Response> {
        let store = ObjectStore::new(self.state.storage(), self.latency);
        let now = worker::Date::now().as_millis() / 1000;
        match used::purge(&store, now).await {
            Ok(Some(next)) => arm_purge(&self.state.storage(), next).await,
            Ok(None) => {}
            Err(StorageError(reason)) => {
                worker::console_error!("used state purge failed: {reason}");
                // Try again later rather than keep entries for ever.
                arm_purge(&self.state.storage(), now.saturating_add(60)).await;
            }
        }
        worker::Response::ok("purged")
    }
}

/// Sets the purge alarm for `expires_at` (seconds) unless one is set for
/// earlier already.
async fn arm_purge(storage: &worker::Storage, expires_at: u64) {
    let at_ms = expires_at.saturating_add(1).saturating_mul(1000);
    let due = i64::try_from(at_ms).unwrap_or(i64::MAX);
    match storage.get_alarm().await {
        Ok(Some(current)) if current <= due => {}
        _ => {
            let date = worker::js_sys::Date::new(&JsValue::from_f64(at_ms as f64));
            let _ = storage.set_alarm(worker::ScheduledTime::new(date)).await;
        }
    }
}
