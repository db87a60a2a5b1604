//! The rules of a fetched client ID metadata document (CIMD §4 "Client
//! ID Metadata Document", §4.1 "Credential and Key Material
//! Restrictions"): it names itself, carries no secret and no private key,
//! and its metadata passes the shared validator under the document
//! profile. No error quotes the document.

use serde_json::{Map, Value};

use super::metadata::{MetadataError, validate_document};
use super::record::{ClientRecord, ClientSource};
use crate::oauth::types::ClientId;
use crate::ports::UnixMillis;

/// Why a fetched document is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocumentError {
    /// Not a JSON object.
    NotAnObject,
    /// `client_id` absent or not a string.
    NoClientId,
    /// `client_id` differs from the URL (CIMD §4: exact string match).
    ClientIdMismatch,
    /// `client_secret` or `client_secret_expires_at` present (§4.1).
    Secret,
    /// A private or symmetric key in `jwks` (§4.1).
    PrivateKey,
    Metadata(MetadataError),
}

impl DocumentError {
    pub fn describe(&self) -> String {
        match self {
            DocumentError::NotAnObject => "it must be a JSON object".into(),
            DocumentError::NoClientId => "client_id is required and must be a string".into(),
            DocumentError::ClientIdMismatch => "its client_id does not match the URL it was fetched from (they must be identical strings)".into(),
            DocumentError::Secret => {
                "it must not contain client_secret or client_secret_expires_at".into()
            }
            DocumentError::PrivateKey => "jwks must contain public keys only".into(),
            DocumentError::Metadata(e) => e.description(),
        }
    }
}

/// Checks the document and builds the client, which counts as expired
/// at `fresh_until` (then it is resolved again, so changes are seen).
pub fn parse(
    body: &[u8],
    client_id: &ClientId,
    now: UnixMillis,
    fresh_until: u64,
    allow_loopback_client_uri: bool,
) -> Result<ClientRecord, DocumentError> {
    let meta: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        _ => return Err(DocumentError::NotAnObject),
    };
    match meta.get("client_id") {
        Some(Value::String(id)) if id == client_id.as_str() => {}
        Some(Value::String(_)) => return Err(DocumentError::ClientIdMismatch),
        _ => return Err(DocumentError::NoClientId),
    }
    // There is no way to share a secret with a document.
    if meta.contains_key("client_secret") || meta.contains_key("client_secret_expires_at") {
        return Err(DocumentError::Secret);
    }
    // "private key material MUST NOT be included": a JWK with `d` (RSA,
    // EC, OKP private part) or `k` (symmetric key) is private.
    let leaked = meta
        .get("jwks")
        .and_then(|jwks| jwks.get("keys"))
        .and_then(Value::as_array)
        .is_some_and(|keys| {
            keys.iter()
                .any(|k| k.get("d").is_some() || k.get("k").is_some())
        });
    if leaked {
        return Err(DocumentError::PrivateKey);
    }
    let metadata =
        validate_document(&meta, allow_loopback_client_uri).map_err(DocumentError::Metadata)?;
    Ok(ClientRecord {
        client_id: client_id.clone(),
        client_name: metadata.client_name,
        client_uri: metadata.client_uri,
        redirect_uris: metadata.redirect_uris,
        auth_method: metadata.auth_method,
        secret_hash: None,
        source: ClientSource::MetadataDocument,
        created_at: now.as_secs(),
        expires_at: fresh_until,
    })
}
