//! The upstream provider: discovery (OpenID Connect Discovery 1.0), its
//! signing keys, and the code exchange (OIDC Core §3.1.3).
//!
//! Discovery documents and key sets are cached for a bounded lifetime in
//! this isolate's memory and the edge cache (`doc_cache`), never in KV:
//! the first `/authorize` of a cold deployment writes nothing. A token signed by a key we do not know causes at most one
//! refetch per minute, so key rotation needs no deploy and a flood of
//! bogus `kid`s cannot make us hammer the provider.

use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use url::Url;

use super::verify::{self, Expected, KeySet, TokenRejected, VerifiedClaims};
use crate::crypto;
use crate::doc_cache::{self, DocumentCache};
use crate::http::{Headers, Method};
use crate::ports::{Outbound, OutboundError, OutboundRequest, SignatureCheck};
use crate::secret::{ClientSecret, PkceVerifier};
use crate::ssrf_guard::{self, FetchPolicy};

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT: usize = 64 * 1024;
/// How long a discovery document or key set is trusted without refetch.
pub const CACHE_LIFETIME: Duration = Duration::from_secs(3600);
/// The least time between two key-set refetches caused by unknown kids.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Why the provider could not be used. Descriptions never include a
/// response body from the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderError {
    /// Our configuration points somewhere we will not fetch.
    Misconfigured(&'static str),
    /// Timeout, network failure or non-200.
    Unreachable(String),
    /// A document that is not what the spec requires.
    Invalid(&'static str),
}

/// The endpoints and choices we use (OIDC Discovery §3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    /// `client_secret_basic` unless the provider supports only `_post`.
    pub secret_in_body: bool,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
}

fn checked_url(raw: &str, policy: FetchPolicy) -> Result<Url, ProviderError> {
    let url = Url::parse(raw).map_err(|_| ProviderError::Invalid("an endpoint is not a URL"))?;
    ssrf_guard::check(&url, policy)
        .map_err(|_| ProviderError::Invalid("an endpoint is not a public https URL"))?;
    Ok(url)
}

/// Sends a bounded request and returns the body of a 200; anything else
/// is `Unreachable`, described without the body.
async fn exchange<P: Outbound>(
    platform: &P,
    method: Method,
    url: Url,
    headers: Headers,
    body: Vec<u8>,
) -> Result<Vec<u8>, ProviderError> {
    let what = url.path().to_owned();
    let response = platform
        .send(OutboundRequest {
            method,
            url,
            headers,
            body,
            timeout: FETCH_TIMEOUT,
            max_body_bytes: MAX_DOCUMENT,
        })
        .await
        .map_err(|e| ProviderError::Unreachable(describe(&e)))?;
    if response.status != 200 {
        return Err(ProviderError::Unreachable(format!(
            "{what} answered {}",
            response.status
        )));
    }
    Ok(response.body)
}

async fn fetch<P: Outbound>(platform: &P, url: Url) -> Result<Vec<u8>, ProviderError> {
    let mut headers = Headers::new();
    headers.set("accept", "application/json");
    exchange(platform, Method::Get, url, headers, Vec::new()).await
}

fn describe(e: &OutboundError) -> String {
    match e {
        OutboundError::Timeout => "timeout".into(),
        OutboundError::Network(_) => "network error".into(),
        OutboundError::TooLarge => "response too large".into(),
    }
}

async fn cache_put<T: Serialize, P: DocumentCache>(platform: &P, key: &str, value: &T, now: u64) {
    let until = now.saturating_add(CACHE_LIFETIME.as_secs());
    doc_cache::put(platform, key, value, now, until).await;
}

/// The provider for `issuer`, from cache or its discovery document.
pub async fn discover<P: Outbound + DocumentCache>(
    platform: &P,
    issuer: &str,
    policy: FetchPolicy,
) -> Result<Provider, ProviderError> {
    let now = platform.now().as_secs();
    let key = format!("oidc-discovery/{}", crypto::short_hash(issuer));
    if let Some(cached) = doc_cache::get::<Provider, _>(platform, &key).await
        && cached.value.issuer == issuer
    {
        return Ok(cached.value);
    }
    let base = checked_url(issuer, policy)
        .map_err(|_| ProviderError::Misconfigured("ACCESS_ISSUER must be an https URL"))?;
    // OIDC Discovery §4: issuer + "/.well-known/openid-configuration".
    let url = Url::parse(&format!(
        "{}/.well-known/openid-configuration",
        base.as_str().trim_end_matches('/')
    ))
    .map_err(|_| ProviderError::Misconfigured("ACCESS_ISSUER must be an https URL"))?;
    let doc: DiscoveryDocument = serde_json::from_slice(&fetch(platform, url).await?)
        .map_err(|_| ProviderError::Invalid("the discovery document is not valid"))?;
    // OIDC Discovery §4.3: the issuer must be exactly the one we asked.
    if doc.issuer != issuer {
        return Err(ProviderError::Invalid(
            "the discovery document names a different issuer",
        ));
    }
    if doc
        .id_token_signing_alg_values_supported
        .as_ref()
        .is_some_and(|algs| !algs.iter().any(|a| a == "RS256"))
    {
        return Err(ProviderError::Invalid(
            "the provider does not sign ID tokens with RS256",
        ));
    }
    for endpoint in [
        &doc.authorization_endpoint,
        &doc.token_endpoint,
        &doc.jwks_uri,
    ] {
        checked_url(endpoint, policy)?;
    }
    // RFC 8414 §2: the default is client_secret_basic.
    let secret_in_body = doc
        .token_endpoint_auth_methods_supported
        .as_ref()
        .is_some_and(|m| {
            !m.iter().any(|x| x == "client_secret_basic")
                && m.iter().any(|x| x == "client_secret_post")
        });
    let provider = Provider {
        issuer: doc.issuer,
        authorization_endpoint: doc.authorization_endpoint,
        token_endpoint: doc.token_endpoint,
        jwks_uri: doc.jwks_uri,
        secret_in_body,
    };
    cache_put(platform, &key, &provider, now).await;
    Ok(provider)
}

/// Why an ID token could not be verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    Provider(ProviderError),
    Rejected(TokenRejected),
}

/// Verifies a token against the key set at `jwks_uri`, refetching the set
/// once (at most once a minute) when the token names an unknown key.
pub async fn verify_token<P: Outbound + DocumentCache + SignatureCheck>(
    platform: &P,
    jwks_uri: &str,
    policy: FetchPolicy,
    token: &str,
    expected: &Expected<'_>,
) -> Result<VerifiedClaims, VerifyError> {
    let now = platform.now().as_secs();
    let key = format!("oidc-jwks/{}", crypto::short_hash(jwks_uri));
    let cached = doc_cache::get::<String, _>(platform, &key).await;
    let (set, fetched_at) = match &cached {
        Some(c) => match KeySet::parse(c.value.as_bytes()) {
            Some(set) => (set, c.fetched_at),
            None => fetch_keys(platform, &key, jwks_uri, policy, now).await?,
        },
        // Fail closed: an expired set is never used, even if the
        // provider is down.
        None => fetch_keys(platform, &key, jwks_uri, policy, now).await?,
    };
    match verify::verify(platform, token, &set, expected).await {
        Err(TokenRejected::UnknownKey)
            if now >= fetched_at.saturating_add(REFETCH_INTERVAL.as_secs()) =>
        {
            let (fresh, _) = fetch_keys(platform, &key, jwks_uri, policy, now).await?;
            verify::verify(platform, token, &fresh, expected)
                .await
                .map_err(VerifyError::Rejected)
        }
        other => other.map_err(VerifyError::Rejected),
    }
}

async fn fetch_keys<P: Outbound + DocumentCache>(
    platform: &P,
    cache_key: &str,
    jwks_uri: &str,
    policy: FetchPolicy,
    now: u64,
) -> Result<(KeySet, u64), VerifyError> {
    let url = checked_url(jwks_uri, policy).map_err(VerifyError::Provider)?;
    let body = fetch(platform, url).await.map_err(VerifyError::Provider)?;
    let set = KeySet::parse(&body)
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::Provider(ProviderError::Invalid(
            "the key set has no RS256 signing key",
        )))?;
    if let Ok(text) = String::from_utf8(body) {
        cache_put(platform, cache_key, &text, now).await;
    }
    Ok((set, now))
}

/// The upstream provider we sign people in with, and our client there.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// `ACCESS_ISSUER`, without a trailing slash.
    pub issuer: String,
    pub client: UpstreamClient,
}

/// Our registration at the provider.
#[derive(Clone, Debug)]
pub struct UpstreamClient {
    pub client_id: String,
    pub client_secret: ClientSecret,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// Exchanges the upstream code for an ID token (OIDC Core §3.1.3.1), with
/// PKCE (RFC 7636 §4.5).
pub async fn exchange_code<P: Outbound>(
    platform: &P,
    provider: &Provider,
    client: &UpstreamClient,
    code: &str,
    redirect_uri: &str,
    verifier: &PkceVerifier,
    policy: FetchPolicy,
) -> Result<String, ProviderError> {
    let url = checked_url(&provider.token_endpoint, policy)?;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier.secret());
    let mut headers = Headers::new();
    headers.set("content-type", "application/x-www-form-urlencoded");
    headers.set("accept", "application/json");
    if provider.secret_in_body {
        form.append_pair("client_id", &client.client_id)
            .append_pair("client_secret", client.client_secret.secret());
    } else {
        // RFC 6749 §2.3.1: each part form-urlencoded before base64.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!(
            "{}:{}",
            enc(&client.client_id),
            enc(client.client_secret.secret())
        );
        headers.set(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ),
        );
    }
    let body = exchange(
        platform,
        Method::Post,
        url,
        headers,
        form.finish().into_bytes(),
    )
    .await?;
    serde_json::from_slice::<TokenResponse>(&body)
        .ok()
        .and_then(|r| r.id_token)
        .ok_or(ProviderError::Invalid("the token response has no id_token"))
}

#[cfg(test)]
mod tests;
