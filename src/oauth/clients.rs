//! OAuth clients: dynamic registration (RFC 7591) and the stored record.
//!
//! Clients come from two places: `POST /register` (stored in KV under
//! `client:<id>`, expiring) and client ID metadata documents (fetched by
//! URL, see `cimd`). Both end up as a [`ClientRecord`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::types::{ClientId, RedirectUri, RedirectUriError};
use crate::crypto;
use crate::ports::{Entropy, KeyValue, StorageError, UnixMillis};
use crate::secret::{ClientSecret, ct_eq};

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client: PKCE only (native apps, CIMD clients).
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::None, Self::ClientSecretBasic, Self::ClientSecretPost]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// Where a client came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    Registered,
    MetadataDocument,
}

/// A client as stored and as used by every endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: ClientId,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub auth_method: AuthMethod,
    /// Hex SHA-256 of the client secret; the secret itself is shown once.
    pub secret_hash: Option<String>,
    pub source: ClientSource,
    pub created_at: u64,
    /// Seconds since the epoch after which the client is unknown.
    pub expires_at: u64,
}

impl ClientRecord {
    /// The name to show people: the registered name or the client id.
    pub fn display_name(&self) -> &str {
        self.client_name
            .as_deref()
            .unwrap_or(self.client_id.as_str())
    }

    /// Checks a presented secret in constant time.
    pub fn secret_matches(&self, presented: &ClientSecret) -> bool {
        match &self.secret_hash {
            Some(hash) => ct_eq(
                crypto::token_hash(presented.secret()).as_bytes(),
                hash.as_bytes(),
            ),
            None => false,
        }
    }

    pub fn is_expired(&self, now: UnixMillis) -> bool {
        now.as_secs() >= self.expires_at
    }
}

/// Registered clients expire after 90 days (a client that still runs
/// re-registers on `invalid_client`, as Claude does).
pub const REGISTRATION_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

const MAX_REDIRECT_URIS: usize = 10;
const MAX_NAME: usize = 200;
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Why a registration request is refused (RFC 7591 §3.2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationError {
    /// `invalid_redirect_uri`.
    InvalidRedirectUri(String),
    /// `invalid_client_metadata`.
    InvalidMetadata(String),
}

impl RegistrationError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidMetadata(_) => "invalid_client_metadata",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            RegistrationError::InvalidRedirectUri(d) | RegistrationError::InvalidMetadata(d) => d,
        }
    }
}

fn meta_err(msg: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidMetadata(msg.into())
}

/// Validated registration metadata, before an id is assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub auth_method: AuthMethod,
}

/// Human-readable client metadata (shown on the consent page, escaped):
/// printable and bounded. The error names the field. Shared by
/// registration and client ID metadata documents.
pub(crate) fn display_text(
    field: &str,
    v: Option<&Value>,
    max: usize,
) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if s.chars().count() > max || s.chars().any(char::is_control) {
                Err(format!(
                    "{field} must be at most {max} printable characters"
                ))
            } else {
                Ok(Some(s.to_owned()))
            }
        }
        Some(_) => Err(format!("{field} must be a string")),
    }
}

/// Parses and checks client metadata (RFC 7591 §2), strictly: what we
/// cannot honour is refused rather than silently ignored.
pub fn parse_registration(body: &[u8]) -> Result<Registration, RegistrationError> {
    if body.len() > MAX_METADATA_BYTES {
        return Err(meta_err(format!(
            "client metadata must be at most {MAX_METADATA_BYTES} bytes"
        )));
    }
    let meta: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(meta_err(
                "the body must be a JSON object of client metadata",
            ));
        }
    };
    let uris = match meta.get("redirect_uris") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            return Err(RegistrationError::InvalidRedirectUri(
                "redirect_uris is required: a non-empty array of https (or loopback http) URLs"
                    .into(),
            ));
        }
    };
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(RegistrationError::InvalidRedirectUri(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris"
        )));
    }
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for u in uris {
        let raw = u.as_str().ok_or_else(|| {
            RegistrationError::InvalidRedirectUri("redirect_uris must be strings".into())
        })?;
        let parsed = RedirectUri::parse(raw).map_err(|e| {
            RegistrationError::InvalidRedirectUri(format!(
                "{}: {}",
                raw.escape_default(),
                match e {
                    RedirectUriError::NotAbsolute => "not an absolute URL",
                    RedirectUriError::Scheme =>
                        "must be https, or http on a loopback host (127.0.0.1, [::1], localhost)",
                    RedirectUriError::Fragment => "must not contain a fragment",
                    RedirectUriError::UserInfo => "must not contain credentials",
                    RedirectUriError::TooLong => "longer than 2048 characters",
                }
            ))
        })?;
        if !redirect_uris.contains(&parsed) {
            redirect_uris.push(parsed);
        }
    }
    let auth_method = match meta.get("token_endpoint_auth_method") {
        // RFC 7591 §2: the default is client_secret_basic.
        None | Some(Value::Null) => AuthMethod::ClientSecretBasic,
        Some(Value::String(s)) => AuthMethod::parse(s).ok_or_else(|| {
            meta_err(format!(
                "token_endpoint_auth_method {:?} is not supported; use none, client_secret_basic or client_secret_post",
                s
            ))
        })?,
        Some(_) => return Err(meta_err("token_endpoint_auth_method must be a string")),
    };
    if let Some(grants) = meta.get("grant_types") {
        let list = grants
            .as_array()
            .ok_or_else(|| meta_err("grant_types must be an array"))?;
        for g in list {
            match g.as_str() {
                Some("authorization_code" | "refresh_token") => {}
                _ => {
                    return Err(meta_err(format!(
                        "grant_types may contain only authorization_code and refresh_token, not {g}"
                    )));
                }
            }
        }
    }
    if let Some(types) = meta.get("response_types") {
        let ok = types
            .as_array()
            .is_some_and(|l| l.iter().all(|t| t.as_str() == Some("code")));
        if !ok {
            return Err(meta_err("response_types may contain only \"code\""));
        }
    }
    let client_uri = display_text("client_uri", meta.get("client_uri"), 512).map_err(meta_err)?;
    if let Some(uri) = &client_uri {
        let ok = url::Url::parse(uri).is_ok_and(|u| u.scheme() == "https");
        if !ok {
            return Err(meta_err("client_uri must be an https URL"));
        }
    }
    Ok(Registration {
        client_name: display_text("client_name", meta.get("client_name"), MAX_NAME)
            .map_err(meta_err)?,
        client_uri,
        redirect_uris,
        auth_method,
    })
}

/// Stores a new client. Returns the record and, for confidential
/// clients, the secret, which is never stored or shown again.
pub async fn register<P: KeyValue + Entropy>(
    platform: &P,
    registration: Registration,
    now: UnixMillis,
) -> Result<(ClientRecord, Option<ClientSecret>), RegisterFailure> {
    let id = crypto::mint(platform, "pmcp_client_").map_err(|_| RegisterFailure::Entropy)?;
    let client_id = ClientId::parse(&id).ok_or(RegisterFailure::Entropy)?;
    let secret = match registration.auth_method {
        AuthMethod::None => None,
        _ => Some(ClientSecret::new(
            crypto::mint(platform, "pmcp_cs_").map_err(|_| RegisterFailure::Entropy)?,
        )),
    };
    let record = ClientRecord {
        client_id,
        client_name: registration.client_name,
        client_uri: registration.client_uri,
        redirect_uris: registration.redirect_uris,
        auth_method: registration.auth_method,
        secret_hash: secret.as_ref().map(|s| crypto::token_hash(s.secret())),
        source: ClientSource::Registered,
        created_at: now.as_secs(),
        expires_at: now.plus(REGISTRATION_LIFETIME).as_secs(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|_| RegisterFailure::Entropy)?;
    platform
        .put(
            &client_key(&record.client_id),
            &bytes,
            REGISTRATION_LIFETIME,
        )
        .await
        .map_err(RegisterFailure::Storage)?;
    Ok((record, secret))
}

#[derive(Debug)]
pub enum RegisterFailure {
    Entropy,
    Storage(StorageError),
}

pub fn client_key(id: &ClientId) -> String {
    format!("client:{}", id.as_str())
}

/// The registration response (RFC 7591 §3.2.1).
pub fn registration_response(record: &ClientRecord, secret: Option<&ClientSecret>) -> Value {
    let mut body = Map::new();
    body.insert("client_id".into(), json!(record.client_id.as_str()));
    body.insert("client_id_issued_at".into(), json!(record.created_at));
    body.insert(
        "redirect_uris".into(),
        json!(
            record
                .redirect_uris
                .iter()
                .map(RedirectUri::as_str)
                .collect::<Vec<_>>()
        ),
    );
    body.insert(
        "token_endpoint_auth_method".into(),
        json!(record.auth_method.as_str()),
    );
    body.insert(
        "grant_types".into(),
        json!(["authorization_code", "refresh_token"]),
    );
    body.insert("response_types".into(), json!(["code"]));
    if let Some(name) = &record.client_name {
        body.insert("client_name".into(), json!(name));
    }
    if let Some(uri) = &record.client_uri {
        body.insert("client_uri".into(), json!(uri));
    }
    if let Some(secret) = secret {
        body.insert("client_secret".into(), json!(secret.secret()));
        body.insert("client_secret_expires_at".into(), json!(record.expires_at));
    }
    Value::Object(body)
}

/// A registered client by id, if it exists and has not expired.
pub async fn lookup_registered<P: KeyValue>(
    platform: &P,
    id: &ClientId,
    now: UnixMillis,
) -> Result<Option<ClientRecord>, StorageError> {
    let Some(bytes) = platform.get(&client_key(id)).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<ClientRecord>(&bytes)
        .ok()
        .filter(|c| !c.is_expired(now)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, block_on};

    fn parse(v: Value) -> Result<Registration, RegistrationError> {
        parse_registration(v.to_string().as_bytes())
    }

    #[test]
    fn good_registrations() {
        let r = parse(json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1:6274/oauth/callback"], "client_name": "Claude", "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})).unwrap();
        assert_eq!(r.auth_method, AuthMethod::None);
        assert_eq!(r.redirect_uris.len(), 2);
        assert_eq!(r.client_name.as_deref(), Some("Claude"));
        let r = parse(json!({"redirect_uris": ["https://a.example/cb"]})).unwrap();
        assert_eq!(r.auth_method, AuthMethod::ClientSecretBasic);
        let r = parse(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_post", "scope": "mcp", "software_id": "x"})).unwrap();
        assert_eq!(r.auth_method, AuthMethod::ClientSecretPost);
    }

    #[test]
    fn bad_registrations() {
        let cases = [
            (json!({}), "invalid_redirect_uri"),
            (json!({"redirect_uris": []}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": "https://a.example/cb"}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["http://a.example/cb"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["javascript:alert(1)"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb#x"]}),
                "invalid_redirect_uri",
            ),
            (json!({"redirect_uris": [5]}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": (0..11).map(|i| format!("https://a.example/{i}")).collect::<Vec<_>>()}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "client_name": "x".repeat(201)}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "client_name": "a\u{0007}b"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "client_uri": "javascript:alert(1)"}),
                "invalid_client_metadata",
            ),
            (json!([1]), "invalid_client_metadata"),
        ];
        for (body, code) in cases {
            assert_eq!(parse(body.clone()).unwrap_err().code(), code, "{body}");
        }
        assert_eq!(
            parse_registration(b"not json").unwrap_err().code(),
            "invalid_client_metadata"
        );
        let huge = format!(
            "{{\"redirect_uris\":[\"https://a.example/cb\"],\"x\":\"{}\"}}",
            "y".repeat(MAX_METADATA_BYTES)
        );
        assert_eq!(
            parse_registration(huge.as_bytes()).unwrap_err().code(),
            "invalid_client_metadata"
        );
    }

    #[test]
    fn secrets_are_returned_once_and_stored_hashed() {
        let p = FakePlatform::new();
        let now = UnixMillis(1_773_576_000_000);
        let reg = parse(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_post"})).unwrap();
        let (record, secret) = block_on(register(&p, reg, now)).unwrap();
        let secret = secret.unwrap();
        let stored = String::from_utf8(
            p.kv.borrow()
                .get(&client_key(&record.client_id))
                .unwrap()
                .0
                .clone(),
        )
        .unwrap();
        assert!(!stored.contains(secret.secret()));
        assert!(record.secret_matches(&secret));
        assert!(!record.secret_matches(&ClientSecret::new("pmcp_cs_wrong")));
        let found = block_on(lookup_registered(&p, &record.client_id, now))
            .unwrap()
            .unwrap();
        assert_eq!(found, record);
        let later = now.plus(REGISTRATION_LIFETIME);
        assert!(
            block_on(lookup_registered(&p, &record.client_id, later))
                .unwrap()
                .is_none()
        );
        let body = registration_response(&record, Some(&secret));
        assert_eq!(body["client_secret"], secret.secret());
        assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
        let public = parse(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"})).unwrap();
        let (record, secret) = block_on(register(&p, public, now)).unwrap();
        assert!(secret.is_none() && record.secret_hash.is_none());
    }
}
