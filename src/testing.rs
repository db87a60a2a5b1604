//! In-memory implementations of the ports, and the fixtures tests share
//! (keys, client records, configuration maps), for native tests.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::crypto::{Keyring, Keys, UserKeys};
use crate::http::{Method, Request};
use crate::oauth::clients::record::{AuthMethod, ClientRecord, ClientSource};
use crate::oauth::ledger::apply::apply;
use crate::oauth::ledger::client::{Address, Coordinator};
use crate::oauth::ledger::protocol::Message;
use crate::oauth::ledger::records::Home;
use crate::oauth::ledger::store::LedgerStore;
use crate::oauth::listing::client::{Listing, Listings};
use crate::oauth::listing::object as listing_object;
use crate::oauth::listing::protocol::ListingMessage;
use crate::oauth::types::{ClientId, Issuer, RedirectUri, Resource};
use crate::oauth::used::{self, Spend, Spent, UsedStateShards};
use crate::ports::{
    Clock, Entropy, EntropyError, KeyValue, Outbound, OutboundError, OutboundRequest,
    OutboundResponse, StorageError, UnixMillis,
};
use crate::secret::ServerSecret;

type Responder = Box<dyn Fn(&OutboundRequest) -> Result<OutboundResponse, OutboundError>>;

/// A platform whose clock, store and network are plain values.
pub struct FakePlatform {
    pub now: Cell<u64>,
    pub kv: RefCell<HashMap<String, (Vec<u8>, Duration)>>,
    pub sent: RefCell<Vec<OutboundRequest>>,
    responder: RefCell<Responder>,
    pub fail_storage: Cell<bool>,
    /// One ledger store per object: a client's legacy ledger under its
    /// client id, a pair's grant object under its name (`g:…`).
    pub ledgers: RefCell<HashMap<String, std::rc::Rc<MemoryLedgerStore>>>,
    /// Storage reads a request made: KV gets and ledger messages.
    pub reads: Cell<usize>,
    pub logs: RefCell<Vec<String>>,
    /// Audit lines written so far.
    pub audits: RefCell<Vec<String>>,
    /// When set, entropy is a deterministic stream (seed, draws so far),
    /// so fixtures written from it are reproducible.
    pub seed: Cell<Option<(u64, u64)>>,
    /// Every ledger message and its reply, as JSON on the wire.
    pub wire: RefCell<Vec<(serde_json::Value, serde_json::Value)>>,
    /// The edge cache: key -> (value, expires at, in ms).
    pub edge: RefCell<HashMap<String, (Vec<u8>, u64)>>,
    /// KV writes (puts and deletes) made so far.
    pub kv_writes: Cell<usize>,
    /// When set, KV deletes fail (and only they).
    pub fail_kv_deletes: Cell<bool>,
    /// This "isolate's" memory: key -> (value, until in ms).
    pub isolate: RefCell<HashMap<String, (Vec<u8>, u64)>>,
    /// Objects (by their name in `ledgers`) whose every call fails.
    pub failing: RefCell<std::collections::HashSet<String>>,
    /// This "isolate's" legacy consent sets.
    pub legacy_consents: crate::oauth::ledger::legacy_consents::LegacyConsentCache,
    /// The rate limiter: each tier's limit (unlimited unless a test sets
    /// one) and its counts per (tier, key, window), windows fixed to the
    /// clock as the binding's are.
    pub rate_limits: RefCell<HashMap<&'static str, u32>>,
    pub rate_counts: RefCell<HashMap<(&'static str, String, u64), u32>>,
    /// This "isolate's" memory of verified access-token records.
    pub token_memory: RefCell<crate::oauth::token_cache::TokenCache>,
}

impl Default for FakePlatform {
    fn default() -> Self {
        Self {
            // 2026-03-15T12:00:00Z: a fixed, realistic "now".
            now: Cell::new(1_773_576_000_000),
            kv: RefCell::default(),
            sent: RefCell::default(),
            responder: RefCell::new(Box::new(|_| Err(OutboundError::Network("offline".into())))),
            fail_storage: Cell::new(false),
            ledgers: RefCell::default(),
            reads: Cell::new(0),
            logs: RefCell::default(),
            audits: RefCell::default(),
            seed: Cell::new(None),
            wire: RefCell::default(),
            edge: RefCell::default(),
            kv_writes: Cell::new(0),
            fail_kv_deletes: Cell::new(false),
            isolate: RefCell::default(),
            failing: RefCell::default(),
            legacy_consents: Default::default(),
            rate_limits: RefCell::default(),
            rate_counts: RefCell::default(),
            token_memory: RefCell::default(),
        }
    }
}

impl FakePlatform {
    pub fn new() -> Self {
        Self::default()
    }

    /// A platform whose entropy is SHA-256(seed ‖ counter), block by block.
    pub fn seeded(seed: u64) -> Self {
        let p = Self::default();
        p.seed.set(Some((seed, 0)));
        p
    }

    /// Answers every outbound request with `f`.
    pub fn respond_with(
        &self,
        f: impl Fn(&OutboundRequest) -> Result<OutboundResponse, OutboundError> + 'static,
    ) {
        *self.responder.borrow_mut() = Box::new(f);
    }

    pub fn advance(&self, d: Duration) {
        self.now
            .set(self.now.get() + u64::try_from(d.as_millis()).unwrap());
    }

    pub fn sent_count(&self) -> usize {
        self.sent.borrow().len()
    }

    /// Every storage write so far: KV puts and deletes, and each commit or
    /// removal in any Durable Object (ledgers and used-state shards).
    pub fn storage_writes(&self) -> usize {
        self.kv_writes.get()
            + self
                .ledgers
                .borrow()
                .values()
                .map(|s| s.writes.get())
                .sum::<usize>()
    }

    /// The Durable Objects holding anything.
    pub fn objects_with_state(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ledgers
            .borrow()
            .iter()
            .filter(|(_, s)| !s.entries.borrow().is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }
}

impl crate::limits::RateLimits for FakePlatform {
    async fn allow(&self, tier: crate::limits::Tier, key: &str) -> bool {
        let limit = self.rate_limits.borrow().get(tier.binding()).copied();
        let Some(limit) = limit else { return true };
        let window = self.now.get() / (tier.period_secs() * 1000);
        let mut counts = self.rate_counts.borrow_mut();
        let count = counts
            .entry((tier.binding(), key.to_owned(), window))
            .or_default();
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }
}

impl Clock for FakePlatform {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.now.get())
    }
}

impl Entropy for FakePlatform {
    fn fill(&self, buf: &mut [u8]) -> Result<(), EntropyError> {
        let Some((seed, mut counter)) = self.seed.get() else {
            return getrandom::getrandom(buf).map_err(|_| EntropyError);
        };
        for chunk in buf.chunks_mut(32) {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(seed.to_le_bytes());
            h.update(counter.to_le_bytes());
            let block = h.finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
            counter += 1;
        }
        self.seed.set(Some((seed, counter)));
        Ok(())
    }
}

impl KeyValue for FakePlatform {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.reads.set(self.reads.get() + 1);
        if self.fail_storage.get() {
            return Err(StorageError("injected".into()));
        }
        Ok(self.kv.borrow().get(key).map(|(v, _)| v.clone()))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StorageError> {
        if self.fail_storage.get() {
            return Err(StorageError("injected".into()));
        }
        self.kv_writes.set(self.kv_writes.get() + 1);
        self.kv
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), ttl));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        if self.fail_storage.get() || self.fail_kv_deletes.get() {
            return Err(StorageError("injected".into()));
        }
        self.kv_writes.set(self.kv_writes.get() + 1);
        self.kv.borrow_mut().remove(key);
        Ok(())
    }
}

impl Outbound for FakePlatform {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let answer = (self.responder.borrow())(&request);
        self.sent.borrow_mut().push(request);
        answer
    }
}

/// One object per address, as on Workers; every message goes through
/// JSON as it would on the wire.
impl Coordinator for FakePlatform {
    async fn ledger(&self, address: &Address, message: Message) -> Result<Value, StorageError> {
        self.reads.set(self.reads.get() + 1);
        if self.fail_storage.get() {
            return Err(StorageError("injected".into()));
        }
        let name = match address {
            Address::Client(client) => client.as_str().to_owned(),
            Address::Pair(routing) => routing.object_name(),
        };
        if self.failing.borrow().contains(&name) {
            return Err(StorageError(format!("injected: {name}")));
        }
        let store = self.ledgers.borrow_mut().entry(name).or_default().clone();
        let sent = serde_json::to_value(&message).unwrap_or_default();
        let message: Message =
            serde_json::from_value(sent.clone()).map_err(|e| StorageError(format!("wire: {e}")))?;
        let home = match address {
            Address::Client(client) => Home::Client(client),
            Address::Pair(_) => Home::Pair,
        };
        let reply = apply(store.as_ref(), self, home, message).await?;
        self.wire.borrow_mut().push((sent, reply.clone()));
        Ok(reply)
    }
}

/// A user's directory lives beside the ledgers as `u:<user key>`; a
/// client's index in its legacy ledger's store (its client id).
impl Listings for FakePlatform {
    async fn listing(&self, at: &Listing, message: ListingMessage) -> Result<Value, StorageError> {
        self.reads.set(self.reads.get() + 1);
        if self.fail_storage.get() {
            return Err(StorageError("injected".into()));
        }
        let name = self.listing_store_name(at);
        if self.failing.borrow().contains(&name) {
            return Err(StorageError(format!("injected: {name}")));
        }
        let kind = match at {
            Listing::Directory(_) => crate::oauth::listing::records::Kind::Directory,
            Listing::Index(_) => crate::oauth::listing::records::Kind::Index,
        };
        let store = self.ledgers.borrow_mut().entry(name).or_default().clone();
        let sent = serde_json::to_value(&message).unwrap_or_default();
        let message: ListingMessage =
            serde_json::from_value(sent).map_err(|e| StorageError(format!("wire: {e}")))?;
        let (reply, _) = listing_object::apply(store.as_ref(), kind, message).await?;
        Ok(reply)
    }
}

impl FakePlatform {
    /// The name of a listing object's store in `ledgers`.
    pub fn listing_store_name(&self, at: &Listing) -> String {
        match at {
            Listing::Directory(_) => at.object_name(),
            Listing::Index(client) => client.as_str().to_owned(),
        }
    }

    /// Runs the alarm of a listing object once, as the runtime would.
    pub fn run_fan_out(&self, at: &Listing, budget: usize) -> listing_object::FanOut {
        let name = self.listing_store_name(at);
        let store = self.ledgers.borrow_mut().entry(name).or_default().clone();
        block_on(listing_object::fan_out(store.as_ref(), self, budget)).unwrap()
    }
}

/// The used-state shards live beside the ledgers, named `used:<digit>`.
impl UsedStateShards for FakePlatform {
    async fn spend_in(&self, shard: &str, spend: Spend) -> Result<Spent, StorageError> {
        self.reads.set(self.reads.get() + 1);
        if self.fail_storage.get() {
            return Err(StorageError("injected".into()));
        }
        let store = self
            .ledgers
            .borrow_mut()
            .entry(shard.to_owned())
            .or_default()
            .clone();
        let sent = serde_json::to_value(&spend).unwrap_or_default();
        let spend: Spend =
            serde_json::from_value(sent).map_err(|e| StorageError(format!("wire: {e}")))?;
        used::apply(store.as_ref(), spend, self.now.get() / 1000).await
    }
}

impl crate::ports::Log for FakePlatform {
    fn warn(&self, message: &str) {
        self.logs.borrow_mut().push(message.to_owned());
    }

    fn audit(&self, line: &str) {
        self.audits.borrow_mut().push(line.to_owned());
    }
}

/// Runs a future to completion on the test thread.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// Durable Object storage in memory.
#[derive(Default)]
pub struct MemoryLedgerStore {
    pub entries: RefCell<HashMap<String, serde_json::Value>>,
    pub fail_commit: Cell<bool>,
    /// Commits and removals so far.
    pub writes: Cell<usize>,
    /// Loads and listings so far.
    pub reads: Cell<usize>,
    /// The earliest maintenance asked for (`LedgerStore::wake_at`).
    pub wake: Cell<Option<u64>>,
}

impl MemoryLedgerStore {
    /// Every storage operation so far, reads and writes.
    pub fn ops(&self) -> usize {
        self.reads.get() + self.writes.get()
    }
}

impl LedgerStore for MemoryLedgerStore {
    async fn load(&self, key: &str) -> Result<Option<serde_json::Value>, StorageError> {
        self.reads.set(self.reads.get() + 1);
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn wake_at(&self, at: u64) {
        self.wake
            .set(Some(self.wake.get().map_or(at, |w| w.min(at))));
    }

    async fn commit(&self, puts: Vec<(String, serde_json::Value)>) -> Result<(), StorageError> {
        if self.fail_commit.get() {
            return Err(StorageError("injected".into()));
        }
        self.writes.set(self.writes.get() + 1);
        self.entries.borrow_mut().extend(puts);
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<(String, serde_json::Value)>, StorageError> {
        Ok(self
            .entries
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, serde_json::Value)>, StorageError> {
        self.reads.set(self.reads.get() + 1);
        let mut page: Vec<(String, serde_json::Value)> = self
            .entries
            .borrow()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        page.sort_by(|a, b| a.0.cmp(&b.0));
        page.truncate(limit);
        Ok(page)
    }

    async fn remove(&self, keys: Vec<String>) -> Result<(), StorageError> {
        self.writes.set(self.writes.get() + 1);
        let mut entries = self.entries.borrow_mut();
        for key in keys {
            entries.remove(&key);
        }
        Ok(())
    }
}

/// A configuration source from name-value pairs.
pub fn source(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Server keys from a fixed test secret.
pub fn keys() -> Keyring {
    Keyring::new(Keys::derive(&ServerSecret::new("0123456789abcdef0123456789abcdef")).unwrap())
}

/// User keys from a fixed test secret.
pub fn user_keys() -> UserKeys {
    UserKeys::derive(&ServerSecret::new("user-key-secret-for-tests-0123456789")).unwrap()
}

/// A registered public client named "Test".
pub fn client_record(id: &str, redirect_uris: &[&str]) -> ClientRecord {
    ClientRecord {
        client_id: ClientId::parse(id).unwrap(),
        client_name: Some("Test".into()),
        client_uri: None,
        redirect_uris: redirect_uris
            .iter()
            .map(|u| RedirectUri::parse(u).unwrap())
            .collect(),
        auth_method: AuthMethod::None,
        secret_hash: None,
        source: ClientSource::Registered,
        created_at: 0,
        expires_at: u64::MAX,
    }
}

/// The issuer of a deployment reached at `origin`.
pub fn issuer(origin: &str) -> Issuer {
    Issuer::of(&Request::new(Method::Get, url::Url::parse(origin).unwrap()))
}

/// A resource URI as stored.
pub fn resource(raw: &str) -> Resource {
    serde_json::from_value(serde_json::json!(raw)).unwrap()
}

/// The throwaway RSA keys of `tests/fixtures/rsa-test-keys.json`.
pub fn rsa_keys() -> Value {
    serde_json::from_str(include_str!("../tests/fixtures/rsa-test-keys.json")).unwrap()
}

impl crate::ports::EdgeCache for FakePlatform {
    async fn lookup(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.now.get();
        self.edge
            .borrow()
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(v, _)| v.clone())
    }

    async fn store(&self, key: &str, value: &[u8], ttl: Duration) {
        let expires = self.now.get() + u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.edge
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), expires));
    }
}

impl crate::oauth::ledger::legacy_consents::LegacyConsentMemory for FakePlatform {
    fn legacy_consents(&self) -> &crate::oauth::ledger::legacy_consents::LegacyConsentCache {
        &self.legacy_consents
    }
}

impl crate::oauth::token_cache::TokenMemory for FakePlatform {
    fn token_memory(&self) -> &RefCell<crate::oauth::token_cache::TokenCache> {
        &self.token_memory
    }
}

impl crate::ports::IsolateCache for FakePlatform {
    fn recall(&self, key: &str, now: UnixMillis) -> Option<Vec<u8>> {
        self.isolate
            .borrow()
            .get(key)
            .filter(|(_, until)| *until > now.0)
            .map(|(v, _)| v.clone())
    }

    fn remember(&self, key: &str, value: &[u8], until: UnixMillis) {
        self.isolate
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), until.0));
    }
}

/// RS256 natively, with the `rsa` crate (a dev-dependency only: the
/// worker checks signatures through WebCrypto).
impl crate::ports::SignatureCheck for FakePlatform {
    async fn rs256_verify(
        &self,
        key: &crate::ports::RsaPublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        rs256_verify(key, message, signature)
    }
}

/// Just the native signature check, for tests of the verifier alone.
pub struct NativeCrypto;

impl crate::ports::SignatureCheck for NativeCrypto {
    async fn rs256_verify(
        &self,
        key: &crate::ports::RsaPublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        rs256_verify(key, message, signature)
    }
}

pub fn rs256_verify(key: &crate::ports::RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
    use sha2::{Digest, Sha256};
    let Ok(key) = RsaPublicKey::new(
        BigUint::from_bytes_be(&key.n),
        BigUint::from_bytes_be(&key.e),
    ) else {
        return false;
    };
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(message),
        signature,
    )
    .is_ok()
}
