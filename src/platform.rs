//! Workers glue: the only module that imports `worker`.
//!
//! It converts requests and responses at the edge and implements the core's
//! ports with KV, `fetch`, `Date` and `crypto.getRandomValues`. It holds no
//! protocol rules.

use std::time::Duration;

use futures_util::future::{Either, select};
use worker::wasm_bindgen::JsValue;

use crate::config::names;
use crate::config::source::Source;
use crate::http::{self, Headers, Method};
use crate::oauth::ledger::apply::apply;
use crate::oauth::ledger::client::{Address, Coordinator};
use crate::oauth::ledger::protocol::Message;
use crate::oauth::ledger::records::Home;
use crate::oauth::ledger::store::LedgerStore;
use crate::oauth::ledger::sweep::purge;
use crate::oauth::types::ClientId;
use crate::oauth::used::{self, Spend, Spent, UsedStateShards};
use crate::ports::{
    Clock, EdgeCache, Entropy, EntropyError, KeyValue, Log, Outbound, OutboundError,
    OutboundRequest, OutboundResponse, StorageError, UnixMillis,
};
use latency::StorageLatency;

mod latency;

/// Per-request access to the Worker's bindings.
pub struct WorkerPlatform {
    env: worker::Env,
    latency: StorageLatency,
}

impl WorkerPlatform {
    pub fn new(env: worker::Env) -> Self {
        Self {
            latency: StorageLatency::of(&env),
            env,
        }
    }

    fn kv(&self) -> Result<worker::KvStore, StorageError> {
        self.env
            .kv(names::OAUTH_KV)
            .map_err(|e| StorageError(format!("binding {}: {e}", names::OAUTH_KV)))
    }
}

/// Vars and secrets: a secret wins over a var of the same name.
impl Source for WorkerPlatform {
    fn get(&self, name: &str) -> Option<String> {
        self.env
            .secret(name)
            .map(|s| s.to_string())
            .or_else(|_| self.env.var(name).map(|v| v.to_string()))
            .ok()
    }
}

impl Log for WorkerPlatform {
    fn warn(&self, message: &str) {
        worker::console_warn!("{message}");
    }
}

impl Clock for WorkerPlatform {
    fn now(&self) -> UnixMillis {
        UnixMillis(worker::Date::now().as_millis())
    }
}

impl Entropy for WorkerPlatform {
    fn fill(&self, buf: &mut [u8]) -> Result<(), EntropyError> {
        getrandom::getrandom(buf).map_err(|_| EntropyError)
    }
}

impl KeyValue for WorkerPlatform {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.latency.wait().await;
        self.kv()?
            .get(key)
            .bytes()
            .await
            .map_err(|e| StorageError(format!("kv get: {e}")))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StorageError> {
        // KV refuses TTLs under 60 s.
        let ttl = ttl.as_secs().max(60);
        self.latency.wait().await;
        self.kv()?
            .put_bytes(key, value)
            .map_err(|e| StorageError(format!("kv put: {e}")))?
            .expiration_ttl(ttl)
            .execute()
            .await
            .map_err(|e| StorageError(format!("kv put: {e}")))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.latency.wait().await;
        self.kv()?
            .delete(key)
            .await
            .map_err(|e| StorageError(format!("kv delete: {e}")))
    }
}

impl Outbound for WorkerPlatform {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let controller = worker::AbortController::default();
        let signal = controller.signal();
        let limit = request.max_body_bytes;
        let timeout = request.timeout;
        let exchange = Box::pin(async move {
            let req =
                to_worker_outbound(&request).map_err(|e| OutboundError::Network(e.to_string()))?;
            let mut resp = worker::Fetch::Request(req)
                .send_with_signal(&signal)
                .await
                .map_err(|e| OutboundError::Network(e.to_string()))?;
            let declared = resp
                .headers()
                .get("content-length")
                .ok()
                .flatten()
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > limit) {
                return Err(OutboundError::TooLarge);
            }
            let body = resp
                .bytes()
                .await
                .map_err(|e| OutboundError::Network(e.to_string()))?;
            if body.len() > limit {
                return Err(OutboundError::TooLarge);
            }
            Ok(OutboundResponse {
                status: resp.status_code(),
                headers: from_worker_headers(resp.headers()),
                body,
            })
        });
        let deadline = Box::pin(worker::Delay::from(timeout));
        match select(exchange, deadline).await {
            Either::Left((result, _)) => result,
            Either::Right(((), _)) => {
                controller.abort();
                Err(OutboundError::Timeout)
            }
        }
    }
}

/// The Cache API: a named cache, keys as URLs under a host of our own.
/// Any failure (no Cache API behind Access, a workers.dev host where it is
/// a no-op, a full cache) is a miss, never an error.
impl EdgeCache for WorkerPlatform {
    async fn lookup(&self, key: &str) -> Option<Vec<u8>> {
        let cache = worker::Cache::open(EDGE_CACHE_NAME.to_owned()).await;
        let mut response = cache.get(edge_cache_url(key), false).await.ok()??;
        response.bytes().await.ok()
    }

    async fn store(&self, key: &str, value: &[u8], ttl: Duration) {
        let cache = worker::Cache::open(EDGE_CACHE_NAME.to_owned()).await;
        let headers = worker::Headers::new();
        if headers
            .set("cache-control", &format!("max-age={}", ttl.as_secs()))
            .is_err()
        {
            return;
        }
        let response = worker::ResponseBuilder::new()
            .with_headers(headers)
            .fixed(value.to_vec());
        let _ = cache.put(edge_cache_url(key), response).await;
    }
}

const EDGE_CACHE_NAME: &str = "plausible-mcp-stats";

fn edge_cache_url(key: &str) -> String {
    format!("https://edge-cache.plausible-mcp.invalid/{key}")
}

fn method_name(method: &Method) -> worker::Method {
    match method {
        Method::Get => worker::Method::Get,
        Method::Head => worker::Method::Head,
        Method::Post => worker::Method::Post,
        Method::Delete => worker::Method::Delete,
        Method::Options => worker::Method::Options,
        Method::Other(other) => worker::Method::from(other.clone()),
    }
}

fn to_worker_outbound(request: &OutboundRequest) -> worker::Result<worker::Request> {
    let headers = worker::Headers::new();
    for (name, value) in request.headers.iter() {
        headers.append(name, value)?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(method_name(&request.method))
        .with_headers(headers)
        // Never follow redirects: a 3xx to a private address would bypass
        // every target check made on the original URL.
        .with_redirect(worker::RequestRedirect::Manual);
    if !request.body.is_empty() {
        let bytes = worker::js_sys::Uint8Array::from(request.body.as_slice());
        init.with_body(Some(JsValue::from(bytes)));
    }
    worker::Request::new_with_init(request.url.as_str(), &init)
}

fn from_worker_headers(headers: &worker::Headers) -> Headers {
    headers.entries().collect()
}

/// Converts the incoming request. Failure here means the runtime handed us
/// something unreadable; the caller answers 400.
pub async fn to_core_request(mut req: worker::Request) -> worker::Result<http::Request> {
    let url = req.url()?;
    let method = Method::parse(req.method().as_ref());
    let headers = from_worker_headers(req.headers());
    let body = match method {
        Method::Get | Method::Head | Method::Options => Vec::new(),
        _ => req.bytes().await?,
    };
    Ok(http::Request {
        method,
        url,
        headers,
        body,
    })
}

pub fn to_worker_response(response: http::Response) -> worker::Result<worker::Response> {
    let headers = worker::Headers::new();
    for (name, value) in response.headers.iter() {
        headers.append(name, value)?;
    }
    let builder = worker::ResponseBuilder::new()
        .with_status(response.status)
        .with_headers(headers);
    Ok(if response.body.is_empty() {
        builder.empty()
    } else {
        builder.fixed(response.body)
    })
}

/// The message the worker sends to a client's ledger object.
#[derive(serde::Serialize, serde::Deserialize)]
struct LedgerMessage {
    client_id: ClientId,
    op: Message,
}

impl Coordinator for WorkerPlatform {
    async fn ledger(
        &self,
        address: &Address,
        op: Message,
    ) -> Result<serde_json::Value, StorageError> {
        // A client's legacy ledger takes v1's envelope (its client id and
        // the message); a pair's grant object takes the message alone.
        let (binding, body) = match address {
            Address::Client(client) => (
                names::CLIENT_LEDGER,
                serde_json::to_string(&LedgerMessage {
                    client_id: client.clone(),
                    op,
                }),
            ),
            Address::Pair(_) => (names::GRANT_LEDGER, serde_json::to_string(&op)),
        };
        let body = body.map_err(|e| StorageError(format!("ledger encode: {e}")))?;
        self.object_call(binding, &address.object_name(), body)
            .await
    }
}

impl UsedStateShards for WorkerPlatform {
    async fn spend_in(&self, shard: &str, spend: Spend) -> Result<Spent, StorageError> {
        let body = serde_json::to_string(&spend)
            .map_err(|e| StorageError(format!("used state encode: {e}")))?;
        let reply = self.object_call(names::USED_STATES, shard, body).await?;
        serde_json::from_value(reply).map_err(|e| StorageError(format!("used state reply: {e}")))
    }
}

impl WorkerPlatform {
    /// One POST to the named object of `binding`; its JSON reply.
    async fn object_call(
        &self,
        binding: &str,
        name: &str,
        body: String,
    ) -> Result<serde_json::Value, StorageError> {
        let fail = |what: &str, e: worker::Error| StorageError(format!("ledger {what}: {e}"));
        let namespace = self
            .env
            .durable_object(binding)
            .map_err(|e| fail("binding", e))?;
        let stub = namespace
            .get_by_name(name)
            .map_err(|e| fail("binding", e))?;
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let request = worker::Request::new_with_init("https://ledger/apply", &init)
            .map_err(|e| fail("request", e))?;
        let mut response = stub
            .fetch_with_request(request)
            .await
            .map_err(|e| fail("fetch", e))?;
        let text = response.text().await.map_err(|e| fail("read", e))?;
        if response.status_code() != 200 {
            return Err(StorageError(format!(
                "ledger answered {}",
                response.status_code()
            )));
        }
        serde_json::from_str(&text).map_err(|e| StorageError(format!("ledger decode: {e}")))
    }
}

/// Durable Object storage as the ledger's store.
struct ObjectStore(worker::Storage, StorageLatency);

impl LedgerStore for ObjectStore {
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

    async fn remove(&self, keys: Vec<String>) -> Result<(), StorageError> {
        self.1.wait().await;
        self.0
            .delete_multiple(keys)
            .await
            .map(|_| ())
            .map_err(|e| StorageError(format!("do delete: {e}")))
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
        let Ok(message) = serde_json::from_str::<LedgerMessage>(&req.text().await?) else {
            return worker::Response::error("bad ledger message", 400);
        };
        let LedgerMessage { client_id, op } = message;
        run(&self.state, &self.env, Some(client_id), op).await
    }

    async fn alarm(&self) -> worker::Result<worker::Response> {
        sweep(&self.state, &self.env).await
    }
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
    // Errors are returned as values: an Err here would reset the object.
    let outcome = state
        .block_concurrency_while(async move {
            let kv = WorkerPlatform::new(env);
            let home = match &client {
                Some(c) => Home::Client(c),
                None => Home::Pair,
            };
            let store = ObjectStore(storage, kv.latency);
            Ok(apply(&store, &kv, home, op).await)
        })
        .await?;
    // Keep a daily sweep scheduled while the object holds anything.
    let storage = state.storage();
    if matches!(storage.get_alarm().await, Ok(None)) {
        let _ = storage.set_alarm(PURGE_INTERVAL).await;
    }
    match outcome {
        Ok(reply) => worker::Response::from_json(&reply),
        Err(StorageError(reason)) => {
            worker::console_error!("ledger transition failed: {reason}");
            worker::Response::error("ledger storage failure", 503)
        }
    }
}

async fn sweep(state: &worker::State, env: &worker::Env) -> worker::Result<worker::Response> {
    let storage = state.storage();
    let now = worker::Date::now().as_millis() / 1000;
    let store = ObjectStore(state.storage(), StorageLatency::of(env));
    match purge(&store, now).await {
        Ok(removed) => worker::console_log!("ledger purge removed {removed} entries"),
        Err(StorageError(reason)) => worker::console_error!("ledger purge failed: {reason}"),
    }
    if !matches!(store.entries().await.map(|e| e.is_empty()), Ok(true)) {
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
        let store = ObjectStore(self.state.storage(), self.latency);
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
        let store = ObjectStore(self.state.storage(), self.latency);
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
