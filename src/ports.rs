//! The small interfaces the core needs from its runtime: clock, entropy,
//! key-value storage, outbound HTTP and the operator's log. The bottom
//! layer: it knows no feature of the product (ports a feature alone needs,
//! like the ledger's, are defined by that feature).
//!
//! The Workers glue (`platform`, wasm32 only) implements them with KV,
//! `fetch`, `Date` and `crypto.getRandomValues`; native tests implement
//! them in memory (`testing`). Nothing in the core imports `worker`.
//!
//! Futures here are not `Send`: a Worker isolate is single-threaded.
#![allow(async_fn_in_trait)]

use std::time::Duration;

use crate::http::{Headers, Method};
use url::Url;

/// Milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

/// Wall-clock time. Injected so expiry rules can be tested at their edges.
pub trait Clock {
    fn now(&self) -> UnixMillis;
}

/// A cryptographically secure random source.
pub trait Entropy {
    fn fill(&self, buf: &mut [u8]) -> Result<(), EntropyError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntropyError;

/// An eventually consistent key-value store (Workers KV).
///
/// Values are opaque bytes; callers own their encoding. `ttl` is a hint
/// for garbage collection only: every reader checks its own expiry times,
/// because KV may serve an expired value for up to a minute.
pub trait KeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StorageError>;
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
}

/// The storage backend failed. The cause goes to the log; clients only
/// learn that the server could not complete the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError(pub String);

/// A request we send to another server.
// Read natively only by the test fakes; the Workers glue reads all of it.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[derive(Clone)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: Url,
    pub headers: Headers,
    pub body: Vec<u8>,
    /// The whole exchange, headers and body, must finish within this.
    pub timeout: Duration,
    /// Bodies longer than this are refused rather than buffered.
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Outbound bodies carry API keys' queries and client secrets.
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("host", &self.url.host_str())
            .field("path", &self.url.path())
            .field("headers", &self.headers)
            .finish()
    }
}

/// The answer from another server.
#[derive(Clone, Debug)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

// Read natively only by the test fakes; the Workers glue reads all of it.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    /// No complete answer within the request's timeout.
    Timeout,
    /// DNS, TLS or connection failure.
    Network(String),
    /// The body exceeded the request's `max_body_bytes`.
    TooLarge,
}

/// Outbound HTTP.
pub trait Outbound {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError>;
}

/// Operational log lines for the operator. Clients get terse protocol
/// errors; the reason goes here. Callers pass only non-secret facts:
/// never a token, code, key, secret or email.
pub trait Log {
    fn warn(&self, message: &str);

    /// One line of the audit trail (`audit`), a JSON object. Its own
    /// level so operators can keep it apart from warnings; by default
    /// a warning like any other.
    fn audit(&self, line: &str) {
        self.warn(line);
    }
}

/// A short-lived, best-effort cache local to one data centre (the Workers
/// Cache API). A failure is a miss: callers never depend on it. Keys are
/// opaque hex digests the caller derives; values are opaque bytes.
pub trait EdgeCache {
    async fn lookup(&self, key: &str) -> Option<Vec<u8>>;
    async fn store(&self, key: &str, value: &[u8], ttl: Duration);
}

/// Memory of this isolate (one running copy of the Worker), lost whenever
/// the runtime evicts it. Bounded by the implementation; a value past
/// `until` is never recalled. The first, free layer in front of
/// [`EdgeCache`] for documents fetched from other servers.
pub trait IsolateCache {
    fn recall(&self, key: &str, now: UnixMillis) -> Option<Vec<u8>>;
    fn remember(&self, key: &str, value: &[u8], until: UnixMillis);
}

/// An RSA public key as a JWK carries it (RFC 7518 §6.3.1): the modulus
/// and the public exponent, unsigned big-endian bytes. Only the key
/// parser (`oidc::verify`) builds one, after checking its size.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RsaPublicKey {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("bits", &self.n.len().saturating_mul(8))
            .finish_non_exhaustive()
    }
}

/// Signature checks the runtime does for us: RS256, RSASSA-PKCS1-v1_5
/// with SHA-256 (RFC 7518 §3.3, RFC 8017 §8.2.2). The Workers glue uses
/// WebCrypto (`crypto.subtle`), which keeps RSA and big-number code out
/// of the module; native tests use the `rsa` crate.
pub trait SignatureCheck {
    /// Whether `signature` is `key`'s RS256 signature of `message`. Any
    /// failure (a key the runtime refuses, a signature of the wrong
    /// length) is `false`: the caller refuses the token either way.
    async fn rs256_verify(&self, key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool;
}
