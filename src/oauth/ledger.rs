//! The per-client ledger: every state transition of codes, grants and
//! refresh tokens for one client, applied one at a time.
//!
//! It runs inside the client's Durable Object, whose storage is strongly
//! consistent and whose requests the glue serialises (including across the
//! KV write), so two redemptions of one code, or two uses of one refresh
//! token, cannot both succeed: the gap Workers KV alone leaves
//! (cloudflare/workers-oauth-provider#214).
//!
//! Token plaintexts never reach the ledger: the worker mints them and
//! sends only their SHA-256 hashes, and the PKCE check compares the
//! challenge the worker computed from the verifier.
//!
//! Storage layout (Durable Object storage, JSON values):
//! - `code:<hash>` → [`CodeRecord`], kept after redemption to detect replay
//! - `grant:<id>` → [`GrantRecord`]
//! - `rt:<hash>` → grant id, for current and rotated-out refresh tokens
//! - `login:<id>` → [`LoginRecord`], consumed by the callback
//! - `nonce:<id>` → expiry, for single-use consent tickets
//! - `consent:<user key>` → [`ConsentRecord`]
//!
//! and in KV, for the resource server's single read:
//! - `at:<hash>` → [`AccessRecord`]
#![allow(async_fn_in_trait)]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::authorize::AuthorizationRequest;
use super::types::{ClientId, ScopeSet};
use crate::ports::{Clock, KeyValue, StorageError};

/// The ledger's own strongly consistent storage (Durable Object storage).
pub trait LedgerStore {
    async fn load(&self, key: &str) -> Result<Option<Value>, StorageError>;
    /// Writes all of `puts` atomically.
    async fn commit(&self, puts: Vec<(String, Value)>) -> Result<(), StorageError>;
    /// Every entry (for [`purge`]; a client's ledger is small).
    async fn entries(&self) -> Result<Vec<(String, Value)>, StorageError>;
    async fn remove(&self, keys: Vec<String>) -> Result<(), StorageError>;
}

/// Who a grant is for: a stable key (a hash, never the email) and the
/// user's properties sealed under the server key (see `crypto::Keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub user_key: String,
    pub sealed_props: String,
}

/// An issued authorization code (RFC 6749 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub grant_id: String,
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI (then the
    /// token request must repeat it, RFC 6749 §4.1.3).
    #[serde(default = "yes")]
    pub redirect_uri_given: bool,
    /// S256 challenge (RFC 7636 §4.2).
    pub code_challenge: String,
    pub scope: ScopeSet,
    pub resource: String,
    pub subject: Subject,
    pub expires_at: u64,
    pub redeemed: bool,
}

/// A grant: one user's authorization of one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub grant_id: String,
    pub scope: ScopeSet,
    pub resource: String,
    pub subject: Subject,
    pub created_at: u64,
    /// Absolute end: no refresh extends a grant past this.
    pub expires_at: u64,
    pub refresh_hash: String,
    pub refresh_expires_at: u64,
    /// Live access tokens (hash, expiry), deleted from KV on revocation.
    pub access: Vec<(String, u64)>,
    pub revoked: bool,
}

fn yes() -> bool {
    true
}

/// What `/internal` reads for a bearer token: one KV get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub client_id: ClientId,
    pub grant_id: String,
    pub scope: ScopeSet,
    pub resource: String,
    pub subject: Subject,
    pub expires_at: u64,
}

/// An upstream login in progress (`/authorize` → provider → `/callback`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRecord {
    pub request: AuthorizationRequest,
    /// Our PKCE verifier for the upstream code exchange.
    pub upstream_verifier: String,
    pub nonce: String,
    pub expires_at: u64,
    pub used: bool,
}

/// A user's approval of this client (per redirect URI and scopes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub redirect_uri: String,
    pub scope: ScopeSet,
    pub approved_at: u64,
}

impl ConsentRecord {
    /// Consent covers a request only for the same redirect URI and no
    /// scope beyond what was approved; anything else is asked again.
    pub fn covers(&self, request: &AuthorizationRequest) -> bool {
        self.redirect_uri == request.redirect_uri.as_str()
            && request.scope.is_subset_of(&self.scope)
    }
}

/// Hashes and lifetimes of tokens the worker minted for this transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTokens {
    pub access_hash: String,
    pub refresh_hash: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
}

/// A transition request, sent from the worker to the client's Durable
/// Object as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LedgerOp {
    IssueCode {
        code_hash: String,
        record: CodeRecord,
    },
    /// RFC 6749 §4.1.3, with RFC 7636 §4.6 and RFC 8707 §2.2.
    RedeemCode {
        client_id: ClientId,
        code_hash: String,
        redirect_uri: Option<String>,
        /// BASE64URL(SHA256(code_verifier)), computed by the worker.
        computed_challenge: String,
        resource: Option<String>,
        grant_lifetime_secs: u64,
        tokens: NewTokens,
    },
    /// RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1).
    Refresh {
        client_id: ClientId,
        refresh_hash: String,
        scope: Option<ScopeSet>,
        resource: Option<String>,
        tokens: NewTokens,
    },
    /// RFC 7009 §2.1 for a refresh token: ends the grant.
    RevokeRefresh {
        refresh_hash: String,
    },
    BeginLogin {
        login_id: String,
        record: LoginRecord,
    },
    /// Returns the login once; a second finish is a replay.
    FinishLogin {
        login_id: String,
    },
    /// Succeeds once per nonce until it expires.
    ConsumeNonce {
        nonce: String,
        expires_at: u64,
    },
    GetConsent {
        user_key: String,
    },
    RecordConsent {
        user_key: String,
        record: ConsentRecord,
    },
}

/// Why a transition was refused, in RFC 6749 §5.2 terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Unknown, expired, redeemed or revoked code or token; redirect URI
    /// or PKCE mismatch.
    InvalidGrant,
    /// A scope beyond the grant's.
    InvalidScope,
    /// A resource other than the grant's (RFC 8707 §2.2).
    InvalidTarget,
}

/// The result of a transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LedgerReply {
    Done,
    Tokens {
        scope: ScopeSet,
        resource: String,
        access_expires_in: u64,
    },
    Refused {
        refusal: Refusal,
        /// For the log only, never sent to the client.
        reason: String,
    },
    Login {
        record: Box<LoginRecord>,
    },
    Consent {
        record: Option<ConsentRecord>,
    },
}

fn refuse(refusal: Refusal, reason: &str) -> LedgerReply {
    LedgerReply::Refused {
        refusal,
        reason: reason.to_owned(),
    }
}

pub fn access_key(hash: &str) -> String {
    format!("at:{hash}")
}

async fn load<T: for<'de> Deserialize<'de>, S: LedgerStore>(
    store: &S,
    key: &str,
) -> Result<Option<T>, StorageError> {
    Ok(store
        .load(key)
        .await?
        .and_then(|v| serde_json::from_value(v).ok()))
}

fn json<T: Serialize>(value: &T) -> Result<Value, StorageError> {
    serde_json::to_value(value).map_err(|e| StorageError(format!("encode: {e}")))
}

/// Applies one transition. `kv` receives access records; `store` is the
/// client's own storage. The caller runs this with no other transition of
/// the same client interleaved.
pub async fn apply<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    client: &ClientId,
    op: LedgerOp,
) -> Result<LedgerReply, StorageError> {
    let now = kv.now().as_secs();
    match op {
        LedgerOp::IssueCode { code_hash, record } => {
            store
                .commit(vec![(format!("code:{code_hash}"), json(&record)?)])
                .await?;
            Ok(LedgerReply::Done)
        }
        LedgerOp::RedeemCode {
            client_id,
            code_hash,
            redirect_uri,
            computed_challenge,
            resource,
            grant_lifetime_secs,
            tokens,
        } => {
            if &client_id != client {
                return Ok(refuse(
                    Refusal::InvalidGrant,
                    "code presented to another client's ledger",
                ));
            }
            let key = format!("code:{code_hash}");
            let Some(mut code) = load::<CodeRecord, _>(store, &key).await? else {
                return Ok(refuse(Refusal::InvalidGrant, "unknown code"));
            };
            if code.redeemed {
                // RFC 6749 §4.1.2 / §10.5: a replayed code revokes every
                // token issued from it.
                revoke_grant(store, kv, &code.grant_id).await?;
                return Ok(refuse(
                    Refusal::InvalidGrant,
                    "code replayed; grant revoked",
                ));
            }
            if now >= code.expires_at {
                return Ok(refuse(Refusal::InvalidGrant, "code expired"));
            }
            let redirect_ok = match redirect_uri {
                Some(r) => r == code.redirect_uri,
                None => !code.redirect_uri_given,
            };
            if !redirect_ok {
                return Ok(refuse(
                    Refusal::InvalidGrant,
                    "redirect_uri missing or differs from the authorization request",
                ));
            }
            if !crate::secret::ct_eq(
                code.code_challenge.as_bytes(),
                computed_challenge.as_bytes(),
            ) {
                return Ok(refuse(Refusal::InvalidGrant, "PKCE verification failed"));
            }
            if resource.as_ref().is_some_and(|r| r != &code.resource) {
                return Ok(refuse(
                    Refusal::InvalidTarget,
                    "resource differs from the authorization request",
                ));
            }
            let grant = GrantRecord {
                grant_id: code.grant_id.clone(),
                scope: code.scope.clone(),
                resource: code.resource.clone(),
                subject: code.subject.clone(),
                created_at: now,
                expires_at: now.saturating_add(grant_lifetime_secs),
                refresh_hash: tokens.refresh_hash.clone(),
                refresh_expires_at: now
                    .saturating_add(tokens.refresh_ttl_secs)
                    .min(now.saturating_add(grant_lifetime_secs)),
                access: Vec::new(),
                revoked: false,
            };
            code.redeemed = true;
            let (grant, expires_in) = write_access(kv, client, grant, &tokens, now).await?;
            store
                .commit(vec![
                    (key, json(&code)?),
                    (
                        format!("rt:{}", tokens.refresh_hash),
                        json(&grant.grant_id)?,
                    ),
                    (format!("grant:{}", grant.grant_id), json(&grant)?),
                ])
                .await?;
            Ok(LedgerReply::Tokens {
                scope: grant.scope,
                resource: grant.resource,
                access_expires_in: expires_in,
            })
        }
        LedgerOp::Refresh {
            client_id,
            refresh_hash,
            scope,
            resource,
            tokens,
        } => {
            if &client_id != client {
                return Ok(refuse(
                    Refusal::InvalidGrant,
                    "refresh token presented to another client's ledger",
                ));
            }
            let Some(grant_id) = load::<String, _>(store, &format!("rt:{refresh_hash}")).await?
            else {
                return Ok(refuse(Refusal::InvalidGrant, "unknown refresh token"));
            };
            let Some(grant) = load::<GrantRecord, _>(store, &format!("grant:{grant_id}")).await?
            else {
                return Ok(refuse(Refusal::InvalidGrant, "grant not found"));
            };
            if grant.revoked {
                return Ok(refuse(Refusal::InvalidGrant, "grant revoked"));
            }
            if !crate::secret::ct_eq(grant.refresh_hash.as_bytes(), refresh_hash.as_bytes()) {
                // OAuth 2.1 §4.3.1, RFC 9700 §4.14.2: a rotated-out refresh
                // token in use means it leaked; end the whole grant.
                revoke_grant(store, kv, &grant_id).await?;
                return Ok(refuse(
                    Refusal::InvalidGrant,
                    "rotated-out refresh token reused; grant revoked",
                ));
            }
            if now >= grant.refresh_expires_at || now >= grant.expires_at {
                return Ok(refuse(Refusal::InvalidGrant, "refresh token expired"));
            }
            let scope = scope.unwrap_or_else(|| grant.scope.clone());
            if !scope.is_subset_of(&grant.scope) {
                return Ok(refuse(Refusal::InvalidScope, "scope exceeds the grant"));
            }
            if resource.as_ref().is_some_and(|r| r != &grant.resource) {
                return Ok(refuse(
                    Refusal::InvalidTarget,
                    "resource differs from the grant",
                ));
            }
            let grant_expires_at = grant.expires_at;
            let mut rotated = grant;
            rotated.refresh_hash = tokens.refresh_hash.clone();
            rotated.refresh_expires_at = now
                .saturating_add(tokens.refresh_ttl_secs)
                .min(grant_expires_at);
            rotated.access.retain(|(_, exp)| *exp > now);
            let granted_scope = rotated.scope.clone();
            rotated.scope = scope.clone();
            let (mut rotated, expires_in) = write_access(kv, client, rotated, &tokens, now).await?;
            // A narrowed scope applies to this access token only; the grant
            // keeps what the user approved (RFC 6749 §6).
            rotated.scope = granted_scope;
            store
                .commit(vec![
                    (format!("rt:{}", tokens.refresh_hash), json(&grant_id)?),
                    (format!("grant:{grant_id}"), json(&rotated)?),
                ])
                .await?;
            Ok(LedgerReply::Tokens {
                scope,
                resource: rotated.resource,
                access_expires_in: expires_in,
            })
        }
        LedgerOp::RevokeRefresh { refresh_hash } => {
            if let Some(grant_id) = load::<String, _>(store, &format!("rt:{refresh_hash}")).await? {
                revoke_grant(store, kv, &grant_id).await?;
            }
            // RFC 7009 §2.2: unknown tokens are not an error.
            Ok(LedgerReply::Done)
        }
        LedgerOp::BeginLogin { login_id, record } => {
            store
                .commit(vec![(format!("login:{login_id}"), json(&record)?)])
                .await?;
            Ok(LedgerReply::Done)
        }
        LedgerOp::FinishLogin { login_id } => {
            let key = format!("login:{login_id}");
            let Some(mut record) = load::<LoginRecord, _>(store, &key).await? else {
                return Ok(refuse(Refusal::InvalidGrant, "unknown login"));
            };
            if record.used {
                return Ok(refuse(Refusal::InvalidGrant, "login state replayed"));
            }
            if now >= record.expires_at {
                return Ok(refuse(Refusal::InvalidGrant, "login state expired"));
            }
            record.used = true;
            store.commit(vec![(key, json(&record)?)]).await?;
            Ok(LedgerReply::Login {
                record: Box::new(record),
            })
        }
        LedgerOp::ConsumeNonce { nonce, expires_at } => {
            let key = format!("nonce:{nonce}");
            if load::<u64, _>(store, &key).await?.is_some() {
                return Ok(refuse(Refusal::InvalidGrant, "ticket replayed"));
            }
            if now >= expires_at {
                return Ok(refuse(Refusal::InvalidGrant, "ticket expired"));
            }
            store.commit(vec![(key, json(&expires_at)?)]).await?;
            Ok(LedgerReply::Done)
        }
        LedgerOp::GetConsent { user_key } => Ok(LedgerReply::Consent {
            record: load(store, &format!("consent:{user_key}")).await?,
        }),
        LedgerOp::RecordConsent { user_key, record } => {
            store
                .commit(vec![(format!("consent:{user_key}"), json(&record)?)])
                .await?;
            Ok(LedgerReply::Done)
        }
    }
}

/// How long a redeemed or expired code is kept after its expiry, so a
/// late replay still finds it and revokes the grant (RFC 6749 §4.1.2).
pub const CODE_MEMORY_SECS: u64 = 24 * 3600;

/// Deletes what can no longer matter: codes a day past expiry, finished
/// or expired logins, expired nonces, grants past their end (and the
/// refresh-token index entries pointing at them). Consents stay. Returns
/// how many entries were removed. Run from the ledger object's alarm.
pub async fn purge<S: LedgerStore>(store: &S, now: u64) -> Result<usize, StorageError> {
    let entries = store.entries().await?;
    let expiry = |v: &Value| v.get("expires_at").and_then(Value::as_u64);
    let mut dead_grants = std::collections::HashSet::new();
    let mut doomed: Vec<String> = Vec::new();
    for (key, value) in &entries {
        let gone = if key.starts_with("code:") {
            expiry(value).is_some_and(|e| now >= e.saturating_add(CODE_MEMORY_SECS))
        } else if key.starts_with("login:") {
            expiry(value).is_some_and(|e| now >= e)
        } else if key.starts_with("nonce:") {
            value.as_u64().is_some_and(|e| now >= e)
        } else if let Some(id) = key.strip_prefix("grant:") {
            let ended = expiry(value).is_some_and(|e| now >= e);
            if ended {
                dead_grants.insert(id.to_owned());
            }
            ended
        } else {
            false
        };
        if gone {
            doomed.push(key.clone());
        }
    }
    for (key, value) in &entries {
        if key.starts_with("rt:") && value.as_str().is_some_and(|g| dead_grants.contains(g)) {
            doomed.push(key.clone());
        }
    }
    let count = doomed.len();
    if count > 0 {
        store.remove(doomed).await?;
    }
    Ok(count)
}

/// Writes the access record to KV and notes it on the grant. The KV write
/// comes before the ledger commit: if the commit then fails, the client
/// never saw the token and the orphan record expires on its own.
async fn write_access<K: KeyValue + Clock>(
    kv: &K,
    client: &ClientId,
    mut grant: GrantRecord,
    tokens: &NewTokens,
    now: u64,
) -> Result<(GrantRecord, u64), StorageError> {
    let expires_at = now
        .saturating_add(tokens.access_ttl_secs)
        .min(grant.expires_at);
    let expires_in = expires_at.saturating_sub(now);
    let record = AccessRecord {
        client_id: client.clone(),
        grant_id: grant.grant_id.clone(),
        scope: grant.scope.clone(),
        resource: grant.resource.clone(),
        subject: grant.subject.clone(),
        expires_at,
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| StorageError(format!("encode: {e}")))?;
    kv.put(
        &access_key(&tokens.access_hash),
        &bytes,
        Duration::from_secs(expires_in),
    )
    .await?;
    grant.access.push((tokens.access_hash.clone(), expires_at));
    Ok((grant, expires_in))
}

/// Marks a grant revoked and deletes its access records from KV.
async fn revoke_grant<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    grant_id: &str,
) -> Result<(), StorageError> {
    let key = format!("grant:{grant_id}");
    let Some(mut grant) = load::<GrantRecord, _>(store, &key).await? else {
        return Ok(());
    };
    for (hash, _) in &grant.access {
        kv.delete(&access_key(hash)).await?;
    }
    grant.access.clear();
    grant.revoked = true;
    store.commit(vec![(key, json(&grant)?)]).await
}

#[cfg(test)]
mod tests;
