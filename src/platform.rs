//! Workers glue: the only module (with its `objects`) that imports `worker`.
//!
//! It converts requests and responses at the edge and implements the core's
//! ports with KV, `fetch`, `Date` and `crypto.getRandomValues`. It holds no
//! protocol rules. The Durable Object classes are in `objects`.

use std::cell::RefCell;
use std::time::Duration;

use futures_util::future::{Either, select};
use worker::wasm_bindgen::JsValue;

use crate::body::{BodyError, read_capped};
use crate::config::deployment::Deployment;
use crate::config::source::Source;
use crate::config::{self, names};
use crate::doc_cache::Memory;
use crate::http::{Headers, Method};
use crate::limits::{RateLimits, Tier};
use crate::oauth::ledger::client::{Address, Coordinator};
use crate::oauth::ledger::legacy_consents::{LegacyConsentCache, LegacyConsentMemory};
use crate::oauth::ledger::protocol::Message;
use crate::oauth::listing::client::{Listing, Listings};
use crate::oauth::listing::protocol::ListingMessage;
use crate::oauth::token_cache::{TokenCache, TokenMemory};
use crate::oauth::types::ClientId;
use crate::oauth::used::{Spend, Spent, UsedStateShards};
use crate::ports::{
    Clock, EdgeCache, Entropy, EntropyError, IsolateCache, KeyValue, Log, Outbound, OutboundError,
    OutboundRequest, OutboundResponse, RsaPublicKey, SignatureCheck, StorageError, UnixMillis,
};
pub use edge::{
    EdgeRequest, EdgeResponse, Inbound, read_core_body, to_core_head, to_edge_response,
};
use hooks::TestHooks;
use latency::StorageLatency;

// The test build's clock and KV-delete hooks (no-ops in the release build).
mod hooks;
// The test build's storage latency (a no-op in the release build).
mod latency;
// The incoming request and the outgoing response, converted at the edge.
mod edge;
// The Durable Object classes (exported to the runtime by their macro).
mod objects;
// RS256 through the runtime's WebCrypto.
mod webcrypto;

/// Per-request access to the Worker's bindings.
pub struct WorkerPlatform {
    env: worker::Env,
    latency: StorageLatency,
    hooks: TestHooks,
    legacy_consents: std::rc::Rc<LegacyConsentCache>,
    token_memory: std::rc::Rc<RefCell<TokenCache>>,
}

std::thread_local! {
    /// The isolate's legacy consent sets, by client (one thread per
    /// isolate, so shared by every request it serves).
    static LEGACY_CONSENTS: std::rc::Rc<LegacyConsentCache> = std::rc::Rc::default();
    /// The isolate's verified access-token records (`oauth::token_cache`).
    static TOKEN_MEMORY: std::rc::Rc<RefCell<TokenCache>> = std::rc::Rc::default();
    /// The `env` object the settings were last derived from, and them.
    static DEPLOYMENT: RefCell<Option<(JsValue, std::rc::Rc<Deployment>)>> =
        const { RefCell::new(None) };
}

impl WorkerPlatform {
    pub fn new(env: worker::Env) -> Self {
        Self {
            latency: StorageLatency::of(&env),
            hooks: TestHooks::of(&env),
            legacy_consents: LEGACY_CONSENTS.with(std::rc::Rc::clone),
            token_memory: TOKEN_MEMORY.with(std::rc::Rc::clone),
            env,
        }
    }

    /// This deployment's settings. The runtime hands every request of an
    /// isolate the same `env` object (bindings, vars and secrets fixed
    /// for its life); when it is that very object (`===`), the settings
    /// derived from it are reused without reading a value. Any other
    /// object goes through `config::deployment::current`, which reads
    /// every value and re-derives only if their hash changed.
    pub fn deployment(&self) -> std::rc::Rc<Deployment> {
        let env: &JsValue = self.env.as_ref();
        let known = DEPLOYMENT.with_borrow(|d| {
            d.as_ref()
                .filter(|(seen, _)| seen == env)
                .map(|(_, deployment)| std::rc::Rc::clone(deployment))
        });
        if let Some(deployment) = known {
            return deployment;
        }
        let deployment = config::deployment::current(self);
        DEPLOYMENT.set(Some((env.clone(), std::rc::Rc::clone(&deployment))));
        deployment
    }

    /// The test build's clock hook: this request's clock runs ahead as
    /// `X-Test-Clock-Offset` asks, where `test_hooks::clock_offset`
    /// honours it.
    #[cfg(feature = "test-hooks")]
    pub fn run_clock_ahead(
        &self,
        settings: &config::oauth::OAuthSettings,
        request: &crate::http::Request,
    ) {
        if let Some(secs) = crate::test_hooks::clock_offset(settings, request) {
            self.hooks.run_clock_ahead(secs);
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

    fn audit(&self, line: &str) {
        worker::console_log!("{line}");
    }
}

impl SignatureCheck for WorkerPlatform {
    async fn rs256_verify(&self, key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
        webcrypto::rs256_verify(key, message, signature).await
    }
}

impl Clock for WorkerPlatform {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.hooks.now_millis(worker::Date::now().as_millis()))
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
        if self.hooks.delete_fails(key) {
            return Err(StorageError("kv delete: an injected failure".into()));
        }
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
            let headers = from_worker_headers(resp.headers());
            // Read as a stream with a running count: a chunked answer with
            // no Content-Length is refused at the ceiling, not buffered
            // whole first. (Leaving the loop cancels the rest.)
            let body = match resp.stream() {
                Err(_) => Vec::new(), // no body at all (204, 304, HEAD)
                Ok(stream) => read_capped(Box::pin(stream), headers.get("content-length"), limit)
                    .await
                    .map_err(|e| match e {
                        BodyError::TooLarge => OutboundError::TooLarge,
                        BodyError::Stream(e) => OutboundError::Network(e.to_string()),
                    })?,
            };
            Ok(OutboundResponse {
                status: resp.status_code(),
                headers,
                body,
            })
        });
        let deadline = Box::pin(worker::Delay::from(timeout));
        match select(exchange, deadline).await {
            Either::Left((result, _)) => {
                // A refused body (too large, broken) is not read further:
                // abort so the runtime drops the connection now.
                if result.is_err() {
                    controller.abort();
                }
                result
            }
            Either::Right(((), _)) => {
                controller.abort();
                Err(OutboundError::Timeout)
            }
        }
    }
}

/// The Rate Limiting binding, one per tier. A missing or failing binding
/// lets the request through (see [`RateLimits`]) and says so in the log.
impl RateLimits for WorkerPlatform {
    async fn allow(&self, tier: Tier, key: &str) -> bool {
        match limit(&self.env, tier.binding(), key).await {
            Ok(success) => success,
            Err(e) => {
                worker::console_warn!("rate limiter {}: {e:?}", tier.binding());
                true
            }
        }
    }
}

/// One `limit({ key })` call on the Rate Limiting binding `binding`
/// (<https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/>):
/// whether the key is still within its limit. Called directly rather than
/// through `worker::RateLimiter`, whose binding lookup (a constructor-name
/// check) and serde conversions of the argument and the outcome cost about
/// three times the JS crossings, twice on every MCP post.
async fn limit(env: &worker::Env, binding: &str, key: &str) -> Result<bool, JsValue> {
    use worker::js_sys::{Function, Object, Promise, Reflect};
    use worker::wasm_bindgen::JsCast;
    let limiter = Reflect::get(env.as_ref(), &JsValue::from_str(binding))?;
    let method: Function = Reflect::get(&limiter, &JsValue::from_str("limit"))?.dyn_into()?;
    let options = Object::new();
    Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key))?;
    let promise: Promise = method.call1(&limiter, &options)?.dyn_into()?;
    let outcome = worker::wasm_bindgen_futures::JsFuture::from(promise).await?;
    Reflect::get(&outcome, &JsValue::from_str("success"))?
        .as_bool()
        .ok_or_else(|| JsValue::from_str("no boolean `success` in the outcome"))
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

std::thread_local! {
    /// The isolate's memory of fetched documents. An isolate runs one
    /// thread, so this is shared by every request it serves.
    static ISOLATE_CACHE: std::cell::RefCell<Memory> =
        std::cell::RefCell::new(Memory::new(Memory::CAPACITY));
}

impl TokenMemory for WorkerPlatform {
    fn token_memory(&self) -> &RefCell<TokenCache> {
        &self.token_memory
    }
}

impl LegacyConsentMemory for WorkerPlatform {
    fn legacy_consents(&self) -> &LegacyConsentCache {
        &self.legacy_consents
    }
}

impl IsolateCache for WorkerPlatform {
    fn recall(&self, key: &str, now: UnixMillis) -> Option<Vec<u8>> {
        ISOLATE_CACHE.with(|memory| memory.borrow().recall(key, now))
    }

    fn remember(&self, key: &str, value: &[u8], until: UnixMillis) {
        let now = self.now();
        ISOLATE_CACHE.with(|memory| memory.borrow_mut().remember(key, value, until, now));
    }
}

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

/// The message the worker sends to a client's ledger object.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct LedgerMessage {
    pub(crate) client_id: ClientId,
    pub(crate) op: Message,
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

impl Listings for WorkerPlatform {
    async fn listing(
        &self,
        at: &Listing,
        message: ListingMessage,
    ) -> Result<serde_json::Value, StorageError> {
        let body = serde_json::to_string(&message)
            .map_err(|e| StorageError(format!("listing encode: {e}")))?;
        // A client's index lives in its ledger object, on a path of its
        // own beside the ledger's messages.
        let binding = match at {
            Listing::Directory(_) => names::USER_DIRECTORY,
            Listing::Index(_) => names::CLIENT_LEDGER,
        };
        self.object_call_at(binding, &at.object_name(), LISTING_PATH, body)
            .await
    }
}

/// The path of listing messages to a `ClientLedger`.
pub(crate) const LISTING_PATH: &str = "/listing";

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
        self.object_call_at(binding, name, "/apply", body).await
    }

    async fn object_call_at(
        &self,
        binding: &str,
        name: &str,
        path: &str,
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
        let request = worker::Request::new_with_init(&format!("https://ledger{path}"), &init)
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
