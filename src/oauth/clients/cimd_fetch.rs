//! Clients whose `client_id` is a URL: OAuth Client ID Metadata Documents
//! (draft-ietf-oauth-client-id-metadata-document, "CIMD"; MCP 2025-11-25
//! authorization, "Client ID Metadata Documents"). This file owns the
//! fetch and the cache; the URL rules are in `cimd_url`, the document
//! rules in `cimd_document`.
//!
//! The authorization server fetches the document at the `client_id` URL,
//! checks that it names itself, and uses its metadata as the client's
//! registration. We support public clients only (PKCE, no client
//! authentication): `private_key_jwt` would need JWKS fetching and JWT
//! verification this server does not do.
//!
//! Section numbers below are those of the CIMD draft's current text; the
//! section titles are quoted because the numbering moved between drafts.

use std::time::Duration;

use url::Url;

use super::cimd_document::{self, DocumentError};
use super::cimd_url::{self, ClientIdUrlError};
use super::record::ClientRecord;
use crate::crypto;
use crate::doc_cache::{self, DocumentCache};
use crate::http::{Headers, Method};
use crate::oauth::types::ClientId;
use crate::ports::{Outbound, OutboundError, OutboundRequest};
use crate::ssrf_guard::{self, FetchPolicy, TargetError};

/// The whole exchange must finish within this: the person is waiting on
/// the authorization page.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// CIMD "Maximum Response Size" recommends reading at most 5 KB; we allow
/// 10 KiB so documents with several redirect URIs and a logo URL fit.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024;
/// Freshness when the response says nothing about caching.
pub const DEFAULT_FRESHNESS: Duration = Duration::from_secs(300);
/// Lower bound on freshness: a client cannot make us fetch on every
/// request (and Workers KV refuses TTLs under 60 s).
pub const MIN_FRESHNESS: Duration = Duration::from_secs(60);
/// Upper bound on freshness: a changed document (new redirect URIs, a
/// compromised client withdrawn) is seen within a day (CIMD §5.2 "Metadata
/// Caching" lets the server bound the cache lifetime).
pub const MAX_FRESHNESS: Duration = Duration::from_secs(24 * 3600);

/// Why fetching the document failed (CIMD §5 "Client Information
/// Discovery", §5.1 "Metadata Discovery Errors").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// No complete answer within [`FETCH_TIMEOUT`].
    Timeout,
    /// DNS, TLS or connection failure; the platform's detail is for logs.
    Network(String),
    /// A 3xx: the draft forbids following redirects automatically.
    Redirect(u16),
    /// Any status other than 200 and 3xx: "MUST treat all other HTTP
    /// status codes as an error".
    Status(u16),
    /// The body exceeded [`MAX_DOCUMENT_BYTES`].
    TooLarge,
    /// A 200 whose `Content-Type` is not `application/json` or a `+json`
    /// type (CIMD §4: the document is a JSON object served as JSON).
    ContentType,
}

/// Why a URL `client_id` cannot be resolved to a client.
///
/// No variant holds the fetched body, so `Debug` (for logs) and
/// [`CimdError::description`] (for people) cannot leak it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CimdError {
    /// The `client_id` is not a valid Client Identifier URL (CIMD §3).
    InvalidClientId(ClientIdUrlError),
    /// The URL names this server itself: it would fetch its own pages
    /// (and a stranger could pick any of our paths as a "document").
    OwnHost,
    /// This URL failed to fetch within the last [`NEGATIVE_FRESHNESS`];
    /// not tried again (CIMD "Server Side Request Forgery (SSRF)
    /// Attacks": bound what a stranger's URL can make us fetch).
    RecentlyFailed,
    /// The URL names a host the server will not fetch (CIMD "Server Side
    /// Request Forgery (SSRF) Attacks").
    Blocked(TargetError),
    /// The document could not be fetched (CIMD §5.1: abort the request).
    Fetch(FetchError),
    /// The document was fetched but is not acceptable (CIMD §4, §4.1);
    /// the reason never quotes the document.
    InvalidDocument(DocumentError),
}

impl CimdError {
    /// A sentence safe to show the person authorizing, or the client
    /// developer: it names the rule, never the fetched content.
    pub fn description(&self) -> String {
        match self {
            CimdError::InvalidClientId(e) => format!(
                "The client_id is not a valid client metadata document URL: {}.",
                e.describe()
            ),
            CimdError::Blocked(e) => format!(
                "The client_id URL cannot be fetched by this server: {}.",
                e.describe()
            ),
            CimdError::OwnHost => {
                "The client_id URL names this server itself, which serves no client metadata documents.".into()
            }
            // One sentence for every fetch failure: the status, timing or
            // network detail would tell a stranger about hosts this server
            // can reach (an SSRF oracle). The detail goes to the log
            // ([`CimdError::log_detail`]).
            CimdError::Fetch(_) | CimdError::RecentlyFailed => format!(
                "The client metadata document could not be fetched (it must answer 200 with application/json within {} seconds, without redirects, and be at most {MAX_DOCUMENT_BYTES} bytes).",
                FETCH_TIMEOUT.as_secs()
            ),
            CimdError::InvalidDocument(reason) => {
                format!(
                    "The client metadata document is invalid: {}.",
                    reason.describe()
                )
            }
        }
    }
}

impl CimdError {
    /// What the operator's log gets: the fetch failure's detail, which
    /// the page does not show. Never the document.
    pub fn log_detail(&self) -> String {
        match self {
            CimdError::Fetch(e) => format!("client metadata document fetch failed: {e:?}"),
            other => format!("client metadata document refused: {other:?}"),
        }
    }
}

/// How long a URL whose fetch failed is not tried again, in this isolate.
pub const NEGATIVE_FRESHNESS: Duration = Duration::from_secs(60);

fn cache_key(client_id: &ClientId) -> String {
    format!("cimd/{}", crypto::short_hash(client_id.as_str()))
}

fn failure_key(client_id: &ClientId) -> String {
    format!("cimd-failed/{}", crypto::short_hash(client_id.as_str()))
}

/// Where this server is: the URL a request reached, and every hostname
/// it answers on (`MCP_ALLOWED_HOSTNAMES`), so a client metadata URL on
/// any of them (a `workers.dev` name beside a custom domain) is refused,
/// not fetched from ourselves.
#[derive(Clone, Debug)]
pub struct OwnOrigin {
    pub reached: Url,
    pub hosts: Vec<String>,
}

/// Whether `url` is this server itself: the port the request reached,
/// on its host or on any hostname this server answers on. (Another port
/// of the same loopback host is another program, e.g. a local document
/// server in development.)
fn is_own_host(url: &Url, own: &OwnOrigin) -> bool {
    if url.port_or_known_default() != own.reached.port_or_known_default() {
        return false;
    }
    url.host() == own.reached.host()
        || url.host_str().is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            own.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
        })
}

/// CIMD §4: `application/json`, or a structured `+json` type, with any
/// parameters (`; charset=utf-8`).
fn is_json_media_type(value: Option<&str>) -> bool {
    let Some(value) = value else { return false };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || (sub.ends_with("+json") && sub.len() > 5),
        _ => false,
    }
}

/// The client named by a URL `client_id`, from cache or by fetching its
/// metadata document.
///
/// MCP 2025-11-25 authorization, "Client ID Metadata Documents": the
/// server fetches the document, MUST check that its `client_id` matches
/// the URL exactly, SHOULD cache it respecting HTTP cache headers, and
/// MUST validate its structure and required fields. Cache failures
/// never fail the resolve: the cache is an optimisation.
pub async fn resolve<P: Outbound + DocumentCache>(
    platform: &P,
    client_id: &ClientId,
    policy: FetchPolicy,
    own_origin: &OwnOrigin,
) -> Result<ClientRecord, CimdError> {
    let url = cimd_url::parse(client_id, policy).map_err(CimdError::InvalidClientId)?;
    if is_own_host(&url, own_origin) {
        return Err(CimdError::OwnHost);
    }
    ssrf_guard::check(&url, policy).map_err(CimdError::Blocked)?;

    let key = cache_key(client_id);
    let now = platform.now();
    // The id check guards against a (vanishingly unlikely) short-hash
    // collision handing one client another's redirect URIs.
    if let Some(entry) = doc_cache::get::<ClientRecord, _>(platform, &key).await
        && entry.value.client_id == *client_id
    {
        return Ok(entry.value);
    }

    // A URL that just failed is not fetched again for a minute: in
    // this isolate's memory only, so a stranger's URL never costs a
    // storage write (not KV, issue 10).
    let failed = failure_key(client_id);
    if platform.recall(&failed, now).is_some() {
        return Err(CimdError::RecentlyFailed);
    }
    let (body, freshness) = match fetch(platform, url).await {
        Ok(fetched) => fetched,
        Err(e) => {
            platform.remember(&failed, b"1", now.plus(NEGATIVE_FRESHNESS));
            return Err(e);
        }
    };
    let fresh_until = now.plus(freshness.unwrap_or(MIN_FRESHNESS)).as_secs();
    let allow_loopback_client_uri = policy.allow_loopback_http;
    let record = cimd_document::parse(
        &body,
        client_id,
        now,
        fresh_until,
        allow_loopback_client_uri,
    )
    .map_err(CimdError::InvalidDocument)?;

    // CIMD §5.2: only valid documents are cached, and never against the
    // origin's `no-store`/`no-cache`. In memory and the edge cache only:
    // an unseen metadata URL costs a fetch, never a storage write.
    if freshness.is_some() {
        doc_cache::put(platform, &key, &record, now.as_secs(), fresh_until).await;
    }
    Ok(record)
}

/// GETs the document. Returns the body and how long it may be cached
/// (`None`: not at all).
async fn fetch<P: Outbound>(
    platform: &P,
    url: Url,
) -> Result<(Vec<u8>, Option<Duration>), CimdError> {
    let mut headers = Headers::new();
    headers.set("accept", "application/json");
    let request = OutboundRequest {
        method: Method::Get,
        url,
        headers,
        body: Vec::new(),
        timeout: FETCH_TIMEOUT,
        max_body_bytes: MAX_DOCUMENT_BYTES,
    };
    let response = platform.send(request).await.map_err(|e| {
        CimdError::Fetch(match e {
            OutboundError::Timeout => FetchError::Timeout,
            OutboundError::Network(detail) => FetchError::Network(detail),
            OutboundError::TooLarge => FetchError::TooLarge,
        })
    })?;
    // CIMD §5: 200 only; redirects are not followed.
    match response.status {
        200 => {}
        300..=399 => return Err(CimdError::Fetch(FetchError::Redirect(response.status))),
        other => return Err(CimdError::Fetch(FetchError::Status(other))),
    }
    // The platform enforces the limit; checking again costs nothing.
    if response.body.len() > MAX_DOCUMENT_BYTES {
        return Err(CimdError::Fetch(FetchError::TooLarge));
    }
    if !is_json_media_type(response.headers.get("content-type")) {
        return Err(CimdError::Fetch(FetchError::ContentType));
    }
    Ok((response.body, freshness(&response.headers)))
}

/// How long a response may be reused, from `Cache-Control` (RFC 9111
/// §5.2.2): `no-store` and `no-cache` mean not at all (we have no
/// revalidation), `max-age` is clamped to [`MIN_FRESHNESS`]..=
/// [`MAX_FRESHNESS`], and silence means [`DEFAULT_FRESHNESS`].
fn freshness(headers: &Headers) -> Option<Duration> {
    let mut max_age = None;
    for directive in headers.get_all("cache-control").flat_map(|v| v.split(',')) {
        let (name, value) = directive
            .split_once('=')
            .map_or((directive, None), |(n, v)| (n, Some(v)));
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "no-store" | "no-cache" => return None,
            "max-age" if max_age.is_none() => {
                // RFC 9111 §1.2.2: delta-seconds too large to represent
                // count as "a very long time".
                max_age = value
                    .map(|v| v.trim().trim_matches('"'))
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .map(|v| Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
            }
            _ => {}
        }
    }
    Some(
        max_age
            .unwrap_or(DEFAULT_FRESHNESS)
            .clamp(MIN_FRESHNESS, MAX_FRESHNESS),
    )
}

#[cfg(test)]
mod tests {
    use super::super::record::{AuthMethod, ClientSource};
    use super::*;
    use crate::ports::{Clock, OutboundResponse};
    use crate::testing::{FakePlatform, block_on};
    use serde_json::Value;
    use serde_json::json;

    const ID: &str = "https://client.example.com/oauth/client.json";

    fn id(raw: &str) -> ClientId {
        ClientId::parse(raw).unwrap()
    }

    fn good_doc() -> Value {
        json!({
            "client_id": ID,
            "client_name": "Example MCP Client",
            "client_uri": "https://client.example.com",
            "redirect_uris": ["https://client.example.com/callback", "http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    fn response(status: u16, cache_control: Option<&str>, body: Vec<u8>) -> OutboundResponse {
        let mut headers = Headers::new();
        headers.set("content-type", "application/json");
        if let Some(cc) = cache_control {
            headers.set("cache-control", cc);
        }
        OutboundResponse {
            status,
            headers,
            body,
        }
    }

    /// A platform that serves `doc` with `cache_control`.
    fn serving(doc: Value, cache_control: Option<&'static str>) -> FakePlatform {
        let p = FakePlatform::new();
        let body = doc.to_string().into_bytes();
        p.respond_with(move |_| Ok(response(200, cache_control, body.clone())));
        p
    }

    fn resolve_with(
        p: &FakePlatform,
        raw: &str,
        policy: FetchPolicy,
    ) -> Result<ClientRecord, CimdError> {
        let own = OwnOrigin {
            reached: Url::parse("https://mcp.example.com/authorize").unwrap(),
            hosts: vec!["mcp.example.com".into(), "mcp.example.workers.dev".into()],
        };
        block_on(resolve(p, &id(raw), policy, &own))
    }

    /// How long the edge cache keeps the entry (memory keeps it as long).
    fn ttl_stored(p: &FakePlatform, raw: &str) -> Option<Duration> {
        let key = cache_key(&id(raw));
        let edge = p.edge.borrow().get(&key).map(|(_, until)| *until);
        let memory = p.isolate.borrow().get(&key).map(|(_, until)| *until);
        assert_eq!(edge, memory, "both layers keep it as long");
        edge.map(|until| Duration::from_millis(until - p.now.get()))
    }

    fn nothing_cached(p: &FakePlatform) -> bool {
        p.edge.borrow().is_empty() && p.isolate.borrow().is_empty()
    }

    #[test]
    fn good_document_becomes_a_public_client() {
        let p = serving(good_doc(), None);
        let record = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(record.client_id.as_str(), ID);
        assert_eq!(record.client_name.as_deref(), Some("Example MCP Client"));
        assert_eq!(
            record.client_uri.as_deref(),
            Some("https://client.example.com")
        );
        assert_eq!(record.redirect_uris.len(), 2);
        assert_eq!(record.auth_method, AuthMethod::None);
        assert_eq!(record.secret_hash, None);
        assert_eq!(record.source, ClientSource::MetadataDocument);
        let now = p.now().as_secs();
        assert_eq!(record.created_at, now);
        assert_eq!(record.expires_at, now + DEFAULT_FRESHNESS.as_secs());

        let sent = p.sent.borrow();
        assert_eq!(sent.len(), 1);
        let request = sent.first().unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.url.as_str(), ID);
        assert_eq!(request.headers.get("accept"), Some("application/json"));
        assert_eq!(request.timeout, FETCH_TIMEOUT);
        assert_eq!(request.max_body_bytes, 10 * 1024);
    }

    #[test]
    fn minimal_document_is_enough() {
        let p = serving(
            json!({"client_id": ID, "redirect_uris": ["https://client.example.com/cb"]}),
            None,
        );
        let record = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(record.client_name, None);
        assert_eq!(record.display_name(), ID);
    }

    #[test]
    fn second_call_is_served_from_cache_until_stale() {
        let p = serving(good_doc(), None);
        let first = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(ttl_stored(&p, ID), Some(DEFAULT_FRESHNESS));
        let second = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(first, second);
        assert_eq!(p.sent_count(), 1);
        p.advance(DEFAULT_FRESHNESS);
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(p.sent_count(), 2);
    }

    #[test]
    fn cache_control_sets_freshness() {
        // (Cache-Control, expected cache lifetime; None = not cached)
        let cases: [(Option<&'static str>, Option<u64>); 12] = [
            (None, Some(300)),
            (Some("max-age=3600"), Some(3600)),
            (Some("public, max-age=600"), Some(600)),
            (Some("MAX-AGE=\"120\""), Some(120)),
            (Some("max-age=5"), Some(60)),
            (Some("max-age=0"), Some(60)),
            (Some("max-age=31536000"), Some(86_400)),
            (Some("max-age=99999999999999999999999"), Some(86_400)),
            (Some("max-age=soon"), Some(300)),
            (Some("no-store"), None),
            (Some("max-age=600, no-cache"), None),
            (Some("private, No-Store"), None),
        ];
        for (cc, expected) in cases {
            let p = serving(good_doc(), cc);
            let record = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
            let now = p.now().as_secs();
            assert_eq!(ttl_stored(&p, ID).map(|d| d.as_secs()), expected, "{cc:?}");
            assert_eq!(p.storage_writes(), 0, "{cc:?}: never in KV");
            assert_eq!(record.expires_at, now + expected.unwrap_or(60), "{cc:?}");
        }
    }

    #[test]
    fn max_age_is_honoured() {
        let p = serving(good_doc(), Some("max-age=3600"));
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        p.advance(Duration::from_secs(3599));
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(p.sent_count(), 1);
        p.advance(Duration::from_secs(1));
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(p.sent_count(), 2);
    }

    #[test]
    fn no_store_is_fetched_every_time() {
        let p = serving(good_doc(), Some("no-store"));
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(p.sent_count(), 2);
        assert!(nothing_cached(&p));
    }

    #[test]
    fn a_new_isolate_finds_the_edge_cache_and_without_it_refetches() {
        let p = serving(good_doc(), None);
        p.fail_storage.set(true);
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        // Another isolate of this data centre: memory empty, edge hit.
        p.isolate.borrow_mut().clear();
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(p.sent_count(), 1, "KV is not involved at all");
        // Another data centre (both layers empty): one more fetch.
        p.isolate.borrow_mut().clear();
        p.edge.borrow_mut().clear();
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(p.sent_count(), 2);
    }

    #[test]
    fn unreadable_or_foreign_cache_entries_are_ignored() {
        let p = serving(good_doc(), None);
        let key = cache_key(&id(ID));
        p.edge
            .borrow_mut()
            .insert(key.clone(), (b"garbage".to_vec(), u64::MAX));
        resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(p.sent_count(), 1);
        // An entry naming another client under this key is not trusted.
        let mut other = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        other.client_id = id("https://evil.example/client.json");
        let entry = doc_cache::Entry {
            value: other,
            fetched_at: 0,
            fresh_until: u64::MAX,
        };
        p.isolate
            .borrow_mut()
            .insert(key, (serde_json::to_vec(&entry).unwrap(), u64::MAX));
        let record = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap();
        assert_eq!(record.client_id.as_str(), ID);
        assert_eq!(p.sent_count(), 2);
    }

    #[test]
    fn invalid_documents() {
        let with = |patch: Value| {
            let mut doc = good_doc();
            if let (Value::Object(d), Value::Object(p)) = (&mut doc, patch) {
                d.extend(p);
            }
            doc
        };
        let without = |field: &str| {
            let mut doc = good_doc();
            doc.as_object_mut().unwrap().remove(field);
            doc
        };
        let many: Vec<String> = (0..11)
            .map(|i| format!("https://client.example.com/{i}"))
            .collect();
        let cases: Vec<(&str, Value)> = vec![
            (
                "client_id mismatch",
                with(json!({"client_id": "https://client.example.com/other.json"})),
            ),
            (
                "client_id differs only by normalisation",
                with(json!({"client_id": "https://CLIENT.example.com/oauth/client.json"})),
            ),
            (
                "client_id trailing slash",
                with(json!({"client_id": format!("{ID}/")})),
            ),
            ("client_id missing", without("client_id")),
            ("client_id not a string", with(json!({"client_id": 7}))),
            ("redirect_uris missing", without("redirect_uris")),
            ("redirect_uris empty", with(json!({"redirect_uris": []}))),
            (
                "redirect_uris a string",
                with(json!({"redirect_uris": "https://client.example.com/cb"})),
            ),
            (
                "redirect_uri http",
                with(json!({"redirect_uris": ["http://client.example.com/cb"]})),
            ),
            (
                "redirect_uri javascript",
                with(json!({"redirect_uris": ["javascript:alert(1)"]})),
            ),
            (
                "redirect_uri fragment",
                with(json!({"redirect_uris": ["https://client.example.com/cb#x"]})),
            ),
            (
                "redirect_uri credentials",
                with(json!({"redirect_uris": ["https://u:p@client.example.com/cb"]})),
            ),
            (
                "redirect_uri relative",
                with(json!({"redirect_uris": ["/cb"]})),
            ),
            (
                "redirect_uri not a string",
                with(json!({"redirect_uris": [1]})),
            ),
            (
                "too many redirect_uris",
                with(json!({"redirect_uris": many})),
            ),
            ("client_secret", with(json!({"client_secret": "s3cret"}))),
            (
                "client_secret_expires_at",
                with(json!({"client_secret_expires_at": 0})),
            ),
            (
                "client_secret_basic",
                with(json!({"token_endpoint_auth_method": "client_secret_basic"})),
            ),
            (
                "client_secret_post",
                with(json!({"token_endpoint_auth_method": "client_secret_post"})),
            ),
            (
                "client_secret_jwt",
                with(json!({"token_endpoint_auth_method": "client_secret_jwt"})),
            ),
            (
                "private_key_jwt",
                with(
                    json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://client.example.com/jwks"}),
                ),
            ),
            (
                "unknown auth method",
                with(json!({"token_endpoint_auth_method": "tls_client_auth"})),
            ),
            (
                "auth method not a string",
                with(json!({"token_endpoint_auth_method": ["none"]})),
            ),
            (
                "private jwk",
                with(
                    json!({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}]}}),
                ),
            ),
            (
                "symmetric jwk",
                with(json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}})),
            ),
            (
                "no authorization_code grant",
                with(json!({"grant_types": ["client_credentials"]})),
            ),
            (
                "no code response type",
                with(json!({"response_types": ["token"]})),
            ),
            (
                "client_name too long",
                with(json!({"client_name": "x".repeat(201)})),
            ),
            (
                "client_name control character",
                with(json!({"client_name": "a\u{0007}b"})),
            ),
            (
                "client_name not a string",
                with(json!({"client_name": {"en": "x"}})),
            ),
            (
                "client_uri http",
                with(json!({"client_uri": "http://client.example.com"})),
            ),
            (
                "client_uri javascript",
                with(json!({"client_uri": "javascript:alert(1)"})),
            ),
            ("array instead of object", json!([good_doc()])),
            ("string instead of object", json!("hello")),
        ];
        for (name, doc) in cases {
            let p = serving(doc, None);
            let err = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap_err();
            assert!(
                matches!(err, CimdError::InvalidDocument(_)),
                "{name}: {err:?}"
            );
            assert!(
                nothing_cached(&p),
                "{name}: invalid documents are not cached"
            );
        }
    }

    #[test]
    fn lenient_where_the_document_is_shared_with_other_servers() {
        let cases = [
            json!({"grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"]}),
            json!({"response_types": ["code", "id_token"]}),
            json!({"token_endpoint_auth_method": null, "client_name": null}),
            json!({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]}}),
            json!({"client_name": "   "}),
            json!({"logo_uri": "https://client.example.com/logo.png", "scope": "mcp"}),
        ];
        for patch in cases {
            let mut doc = good_doc();
            if let (Value::Object(d), Value::Object(p)) = (&mut doc, patch.clone()) {
                d.extend(p);
            }
            let p = serving(doc, None);
            assert!(
                resolve_with(&p, ID, FetchPolicy::PRODUCTION).is_ok(),
                "{patch}"
            );
        }
    }

    #[test]
    fn fetch_failures() {
        type Answer = Result<OutboundResponse, OutboundError>;
        let ok_body = good_doc().to_string().into_bytes();
        let redirect = || {
            let mut r = response(302, None, Vec::new());
            r.headers
                .set("location", "https://elsewhere.example/client.json");
            r
        };
        let cases: Vec<(&str, Answer, FetchError)> = vec![
            ("302", Ok(redirect()), FetchError::Redirect(302)),
            (
                "301",
                Ok(response(301, None, Vec::new())),
                FetchError::Redirect(301),
            ),
            (
                "307",
                Ok(response(307, None, Vec::new())),
                FetchError::Redirect(307),
            ),
            (
                "404",
                Ok(response(404, None, b"not found".to_vec())),
                FetchError::Status(404),
            ),
            (
                "500",
                Ok(response(500, None, Vec::new())),
                FetchError::Status(500),
            ),
            (
                "204",
                Ok(response(204, None, Vec::new())),
                FetchError::Status(204),
            ),
            (
                "201 with a document",
                Ok(response(201, None, ok_body)),
                FetchError::Status(201),
            ),
            (
                "oversized",
                Err(OutboundError::TooLarge),
                FetchError::TooLarge,
            ),
            (
                "oversized body the platform let through",
                Ok(response(200, None, vec![b' '; MAX_DOCUMENT_BYTES + 1])),
                FetchError::TooLarge,
            ),
            ("timeout", Err(OutboundError::Timeout), FetchError::Timeout),
            (
                "network",
                Err(OutboundError::Network("dns".into())),
                FetchError::Network("dns".into()),
            ),
            // Issue 10: the document must be served as JSON.
            (
                "text/html",
                Ok(with_type(Some("text/html"))),
                FetchError::ContentType,
            ),
            (
                "no content type",
                Ok(with_type(None)),
                FetchError::ContentType,
            ),
            (
                "application/jsonp",
                Ok(with_type(Some("application/jsonp"))),
                FetchError::ContentType,
            ),
            (
                "bare +json",
                Ok(with_type(Some("application/+json"))),
                FetchError::ContentType,
            ),
            (
                "text/json",
                Ok(with_type(Some("text/json"))),
                FetchError::ContentType,
            ),
        ];
        let generic = CimdError::Fetch(FetchError::Timeout).description();
        for (name, answer, expected) in cases {
            let p = FakePlatform::new();
            p.respond_with(move |_| answer.clone());
            let err = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap_err();
            assert_eq!(err, CimdError::Fetch(expected), "{name}");
            assert_eq!(err.description(), generic, "{name}: one sentence for all");
            assert_eq!(p.sent_count(), 1, "{name}");
            assert!(p.edge.borrow().is_empty(), "{name}: errors are not cached");
            assert_eq!(p.storage_writes(), 0, "{name}: nor written to KV");
            // Negative cache: in this isolate, for a minute.
            let again = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap_err();
            assert_eq!(again, CimdError::RecentlyFailed, "{name}");
            assert_eq!(again.description(), generic, "{name}");
            assert_eq!(p.sent_count(), 1, "{name}: not fetched again");
            p.advance(NEGATIVE_FRESHNESS);
            let _ = resolve_with(&p, ID, FetchPolicy::PRODUCTION);
            assert_eq!(p.sent_count(), 2, "{name}: tried again after a minute");
        }
    }

    fn with_type(content_type: Option<&str>) -> OutboundResponse {
        let mut r = response(200, None, good_doc().to_string().into_bytes());
        r.headers = Headers::new();
        if let Some(t) = content_type {
            r.headers.set("content-type", t);
        }
        r
    }

    /// Issue 10: under the development policy a loopback document may
    /// name a loopback client_uri, as it may loopback redirect URIs;
    /// in production it may not.
    #[test]
    fn a_loopback_document_may_name_a_loopback_client_uri_in_development() {
        let raw = "http://127.0.0.1:4000/client.json";
        let doc = json!({
            "client_id": raw,
            "client_uri": "http://127.0.0.1:4000/",
            "redirect_uris": ["http://127.0.0.1:4000/cb", "http://localhost/cb"],
        });
        let p = serving(doc.clone(), None);
        let record = resolve_with(&p, raw, FetchPolicy::DEVELOPMENT).unwrap();
        assert_eq!(record.client_uri.as_deref(), Some("http://127.0.0.1:4000/"));
        let mut public = doc;
        public["client_id"] = json!(ID);
        let p = serving(public, None);
        assert_eq!(
            resolve_with(&p, ID, FetchPolicy::PRODUCTION),
            Err(CimdError::InvalidDocument(DocumentError::Metadata(
                crate::oauth::clients::metadata::MetadataError::ClientUriNotHttps
            )))
        );
    }

    #[test]
    fn json_media_types() {
        for t in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/oauth-client-metadata+json",
        ] {
            assert!(is_json_media_type(Some(t)), "{t}");
            let p = FakePlatform::new();
            let t = t.to_owned();
            p.respond_with(move |_| {
                let mut r = with_type(None);
                r.headers.set("content-type", &t);
                Ok(r)
            });
            assert!(resolve_with(&p, ID, FetchPolicy::PRODUCTION).is_ok());
        }
    }

    /// Issue 10: a client_id on this server's own host and port is
    /// refused before anything is fetched; another port of the same
    /// loopback host is not us.
    #[test]
    fn a_client_id_on_this_server_is_refused() {
        let p = serving(good_doc(), None);
        for raw in [
            "https://mcp.example.com/.well-known/oauth-authorization-server",
            "https://MCP.example.com:443/x.json",
            // Another hostname this server answers on (the attack suite's
            // SS-33: it was fetched from ourselves).
            "https://mcp.example.workers.dev/.well-known/oauth-authorization-server",
        ] {
            assert_eq!(
                resolve_with(&p, raw, FetchPolicy::PRODUCTION),
                Err(CimdError::OwnHost),
                "{raw}"
            );
        }
        assert_eq!(p.sent_count(), 0);
        let own = OwnOrigin {
            reached: Url::parse("http://127.0.0.1:8787/authorize").unwrap(),
            hosts: vec!["localhost".into(), "127.0.0.1".into()],
        };
        let raw = "http://127.0.0.1:8787/client.json";
        assert_eq!(
            block_on(resolve(&p, &id(raw), FetchPolicy::DEVELOPMENT, &own)),
            Err(CimdError::OwnHost)
        );
        assert_eq!(
            block_on(resolve(
                &p,
                &id("http://localhost:8787/.well-known/oauth-authorization-server"),
                FetchPolicy::DEVELOPMENT,
                &own
            )),
            Err(CimdError::OwnHost),
            "the other allowed hostname on the port reached"
        );
        let other = "http://127.0.0.1:9999/client.json";
        assert_ne!(
            block_on(resolve(&p, &id(other), FetchPolicy::DEVELOPMENT, &own)),
            Err(CimdError::OwnHost)
        );
    }

    #[test]
    fn non_json_body() {
        for body in [
            &b"<html>hi</html>"[..],
            b"",
            b"{\"client_id\":",
            b"\xff\xfe",
        ] {
            let p = FakePlatform::new();
            let body = body.to_vec();
            p.respond_with(move |_| Ok(response(200, None, body.clone())));
            let err = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap_err();
            assert!(matches!(err, CimdError::InvalidDocument(_)), "{err:?}");
        }
    }

    #[test]
    fn client_id_urls() {
        use ClientIdUrlError::*;
        use TargetError::{LocalName, PrivateAddress};
        let prod = FetchPolicy::PRODUCTION;
        let dev = FetchPolicy::DEVELOPMENT;
        let cases: [(&str, FetchPolicy, Option<CimdError>); 32] = [
            ("https://client.example.com/client.json", prod, None),
            (
                "https://m%C3%BCnchen.example/client.json",
                prod,
                Some(CimdError::InvalidClientId(NonAsciiHost)),
            ),
            ("https://client.example.com/a/b?v=1", prod, None),
            ("https://client.example.com:8443/c", prod, None),
            ("https://client.example.com/.well-known/client", prod, None),
            ("https://client.example.com/a..b/c", prod, None),
            ("https://client.example.com/c?next=/../x", prod, None),
            (
                "pmcp_client_abc",
                prod,
                Some(CimdError::InvalidClientId(Malformed)),
            ),
            (
                "https://client.example.com\\c.json",
                prod,
                Some(CimdError::InvalidClientId(Malformed)),
            ),
            (
                "http://client.example.com/c.json",
                prod,
                Some(CimdError::InvalidClientId(Scheme)),
            ),
            (
                "ftp://client.example.com/c.json",
                prod,
                Some(CimdError::InvalidClientId(Scheme)),
            ),
            (
                "https://client.example.com",
                prod,
                Some(CimdError::InvalidClientId(NoPath)),
            ),
            (
                "https://client.example.com/",
                prod,
                Some(CimdError::InvalidClientId(NoPath)),
            ),
            (
                "https://client.example.com/c#x",
                prod,
                Some(CimdError::InvalidClientId(Fragment)),
            ),
            (
                "https://client.example.com/c#",
                prod,
                Some(CimdError::InvalidClientId(Fragment)),
            ),
            (
                "https://u:p@client.example.com/c",
                prod,
                Some(CimdError::InvalidClientId(UserInfo)),
            ),
            (
                "https://u@client.example.com/c",
                prod,
                Some(CimdError::InvalidClientId(UserInfo)),
            ),
            (
                "https://client.example.com/./c",
                prod,
                Some(CimdError::InvalidClientId(DotSegment)),
            ),
            (
                "https://client.example.com/a/../c",
                prod,
                Some(CimdError::InvalidClientId(DotSegment)),
            ),
            (
                "https://client.example.com/a/..",
                prod,
                Some(CimdError::InvalidClientId(DotSegment)),
            ),
            (
                "https://client.example.com/a/%2e%2E/c",
                prod,
                Some(CimdError::InvalidClientId(DotSegment)),
            ),
            (
                "https://client.example.com/a/.%2e/c",
                prod,
                Some(CimdError::InvalidClientId(DotSegment)),
            ),
            (
                "https://client.example.com/%2e/c",
                prod,
                Some(CimdError::InvalidClientId(DotSegment)),
            ),
            (
                "https://10.0.0.1/client.json",
                prod,
                Some(CimdError::Blocked(PrivateAddress)),
            ),
            (
                "https://169.254.169.254/latest",
                prod,
                Some(CimdError::Blocked(PrivateAddress)),
            ),
            (
                "https://0x7f.1/client.json",
                prod,
                Some(CimdError::Blocked(PrivateAddress)),
            ),
            (
                "https://[::ffff:10.0.0.1]/c",
                prod,
                Some(CimdError::Blocked(PrivateAddress)),
            ),
            (
                "https://localhost/client.json",
                prod,
                Some(CimdError::Blocked(LocalName)),
            ),
            (
                "https://printer.local/client.json",
                prod,
                Some(CimdError::Blocked(LocalName)),
            ),
            (
                "http://127.0.0.1:8787/client.json",
                prod,
                Some(CimdError::InvalidClientId(Scheme)),
            ),
            ("http://localhost:8787/client.json", dev, None),
            (
                "https://10.0.0.1/client.json",
                dev,
                Some(CimdError::Blocked(PrivateAddress)),
            ),
        ];
        for (raw, policy, expected) in cases {
            let doc = json!({"client_id": raw, "redirect_uris": ["https://client.example.com/cb"]});
            let p = serving(doc, None);
            let result = resolve_with(&p, raw, policy);
            match expected {
                None => {
                    assert!(result.is_ok(), "{raw}: {result:?}");
                    assert_eq!(p.sent_count(), 1, "{raw}");
                }
                Some(err) => {
                    assert_eq!(result.unwrap_err(), err, "{raw}");
                    assert_eq!(p.sent_count(), 0, "{raw}: refused before any request");
                }
            }
        }
    }

    #[test]
    fn loopback_http_only_under_the_development_policy() {
        let raw = "http://127.0.0.1:8787/client.json";
        let doc = json!({"client_id": raw, "redirect_uris": ["http://127.0.0.1:8787/cb"]});
        let p = serving(doc, None);
        assert_eq!(
            resolve_with(&p, raw, FetchPolicy::PRODUCTION).unwrap_err(),
            CimdError::InvalidClientId(ClientIdUrlError::Scheme)
        );
        assert_eq!(p.sent_count(), 0);
        let record = resolve_with(&p, raw, FetchPolicy::DEVELOPMENT).unwrap();
        assert_eq!(record.client_id.as_str(), raw);
        assert_eq!(p.sent_count(), 1);
    }

    #[test]
    fn descriptions_and_debug_never_quote_the_body() {
        let marker = "BODY-MARKER-7f3a";
        let docs = [
            json!({"client_id": format!("https://{marker}.example/c"), "redirect_uris": ["https://a.example/cb"]}),
            json!({"client_id": ID, "redirect_uris": [format!("http://{marker}.example/cb")]}),
            json!({"client_id": ID, "redirect_uris": ["https://a.example/cb"], "client_name": format!("{marker}{}", "x".repeat(300))}),
            json!({"client_id": ID, "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": marker}),
            json!({"client_id": ID, "redirect_uris": ["https://a.example/cb"], "client_uri": format!("http://{marker}")}),
            json!({"client_id": ID, "redirect_uris": ["https://a.example/cb"], "client_secret": marker}),
            json!(marker),
        ];
        for doc in docs {
            let p = serving(doc.clone(), None);
            let err = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap_err();
            assert!(
                !err.description().contains(marker),
                "{doc}: {}",
                err.description()
            );
            assert!(!format!("{err:?}").contains(marker), "{doc}: {err:?}");
        }
        let p = FakePlatform::new();
        p.respond_with(move |_| Ok(response(404, None, marker.as_bytes().to_vec())));
        let err = resolve_with(&p, ID, FetchPolicy::PRODUCTION).unwrap_err();
        assert!(!err.description().contains(marker) && !format!("{err:?}").contains(marker));
        assert!(
            !err.description().contains("404"),
            "the status is not shown"
        );
        assert!(err.log_detail().contains("404") && !err.log_detail().contains(marker));
    }

    #[test]
    fn every_error_has_a_description() {
        use ClientIdUrlError::*;
        let errors = [
            CimdError::InvalidClientId(Malformed),
            CimdError::InvalidClientId(Scheme),
            CimdError::InvalidClientId(UserInfo),
            CimdError::InvalidClientId(NoPath),
            CimdError::InvalidClientId(DotSegment),
            CimdError::InvalidClientId(Fragment),
            CimdError::Blocked(TargetError::PrivateAddress),
            CimdError::Fetch(FetchError::Timeout),
            CimdError::Fetch(FetchError::Network("secret detail".into())),
            CimdError::Fetch(FetchError::Redirect(302)),
            CimdError::Fetch(FetchError::Status(404)),
            CimdError::Fetch(FetchError::TooLarge),
            CimdError::InvalidDocument(DocumentError::Secret),
        ];
        for e in errors {
            let d = e.description();
            assert!(d.len() > 20 && d.ends_with('.'), "{d}");
            assert!(!d.contains("secret detail"), "{d}");
        }
    }
}
