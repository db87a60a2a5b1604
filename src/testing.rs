//! In-memory implementations of the ports, for native tests.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use crate::ports::{
    Clock, Entropy, EntropyError, KeyValue, Outbound, OutboundError, OutboundRequest,
    OutboundResponse, StorageError, UnixMillis,
};

type Responder = Box<dyn Fn(&OutboundRequest) -> Result<OutboundResponse, OutboundError>>;

/// A platform whose clock, store and network are plain values.
pub struct FakePlatform {
    pub now: Cell<u64>,
    pub kv: RefCell<HashMap<String, (Vec<u8>, Duration)>>,
    pub sent: RefCell<Vec<OutboundRequest>>,
    responder: RefCell<Responder>,
    pub fail_storage: Cell<bool>,
    /// One ledger store per client, as one Durable Object per client.
    pub ledgers: RefCell<HashMap<String, std::rc::Rc<MemoryLedgerStore>>>,
    pub logs: RefCell<Vec<String>>,
    /// The edge cache: key -> (value, expires at, in ms).
    pub edge: RefCell<HashMap<String, (Vec<u8>, u64)>>,
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
            logs: RefCell::default(),
            edge: RefCell::default(),
        }
    }
}

impl FakePlatform {
    pub fn new() -> Self {
        Self::default()
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
}

impl Clock for FakePlatform {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.now.get())
    }
}

impl Entropy for FakePlatform {
    fn fill(&self, buf: &mut [u8]) -> Result<(), EntropyError> {
        getrandom::getrandom(buf).map_err(|_| EntropyError)
    }
}

impl KeyValue for FakePlatform {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if self.fail_storage.get() {
            return Err(StorageError("injected".into()));
        }
        Ok(self.kv.borrow().get(key).map(|(v, _)| v.clone()))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StorageError> {
        if self.fail_storage.get() {
            return Err(StorageError("injected".into()));
        }
        self.kv
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), ttl));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        if self.fail_storage.get() {
            return Err(StorageError("injected".into()));
        }
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

impl crate::ports::Coordinator for FakePlatform {
    async fn ledger(
        &self,
        client: &crate::oauth::types::ClientId,
        op: crate::oauth::ledger::LedgerOp,
    ) -> Result<crate::oauth::ledger::LedgerReply, StorageError> {
        let store = self
            .ledgers
            .borrow_mut()
            .entry(client.as_str().to_owned())
            .or_default()
            .clone();
        crate::oauth::ledger::apply(store.as_ref(), self, client, op).await
    }
}

impl crate::ports::Log for FakePlatform {
    fn warn(&self, message: &str) {
        self.logs.borrow_mut().push(message.to_owned());
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
}

impl crate::oauth::ledger::LedgerStore for MemoryLedgerStore {
    async fn load(&self, key: &str) -> Result<Option<serde_json::Value>, StorageError> {
        Ok(self.entries.borrow().get(key).cloned())
    }

    async fn commit(&self, puts: Vec<(String, serde_json::Value)>) -> Result<(), StorageError> {
        if self.fail_commit.get() {
            return Err(StorageError("injected".into()));
        }
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

    async fn remove(&self, keys: Vec<String>) -> Result<(), StorageError> {
        let mut entries = self.entries.borrow_mut();
        for key in keys {
            entries.remove(&key);
        }
        Ok(())
    }
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
