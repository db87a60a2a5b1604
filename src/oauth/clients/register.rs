//! Dynamic client registration (RFC 7591): the request, the stored
//! client, and the response that shows a secret once.

use serde_json::{Map, Value, json};

use super::metadata::{ClientMetadata, MetadataError, Profile, validate};
use super::record::{ClientRecord, ClientSource, REGISTRATION_LIFETIME, client_key};
use crate::http::{Headers, Response, media_type};
use crate::oauth::ids::{TokenHash, TokenKind};
use crate::oauth::types::{ClientId, RedirectUri};
use crate::ports::{Entropy, KeyValue, StorageError, UnixMillis};
use crate::secret::ClientSecret;

/// Registration requests larger than this are refused unread.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Why a registration failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// Not `application/json`.
    MediaType,
    /// Over [`MAX_METADATA_BYTES`].
    TooLarge,
    /// Not JSON at all.
    NotJson,
    /// The metadata breaks a rule (RFC 7591 §3.2.2).
    Metadata(MetadataError),
    /// Randomness or storage failed; the client may retry.
    Unavailable(String),
}

impl RegisterError {
    pub fn code(&self) -> &'static str {
        match self {
            RegisterError::Metadata(e) => e.code(),
            RegisterError::Unavailable(_) => "temporarily_unavailable",
            _ => "invalid_client_metadata",
        }
    }

    pub fn description(&self) -> String {
        match self {
            RegisterError::MediaType => "the body must be application/json client metadata".into(),
            RegisterError::TooLarge => {
                format!("client metadata must be at most {MAX_METADATA_BYTES} bytes")
            }
            RegisterError::NotJson => "the body must be a JSON object of client metadata".into(),
            RegisterError::Metadata(e) => e.description(),
            RegisterError::Unavailable(_) => {
                "The server could not complete the request; retry shortly.".into()
            }
        }
    }

    pub fn response(&self) -> Response {
        let status = if matches!(self, RegisterError::Unavailable(_)) {
            503
        } else {
            400
        };
        let r = Response::json(
            status,
            &json!({"error": self.code(), "error_description": self.description()}),
        );
        if status == 503 {
            r.with_header("retry-after", "5")
        } else {
            r
        }
    }
}

/// Parses and checks a registration request (RFC 7591 §2, §3.1).
pub fn parse(headers: &Headers, body: &[u8]) -> Result<ClientMetadata, RegisterError> {
    if headers.get("content-type").map(media_type).as_deref() != Some("application/json") {
        return Err(RegisterError::MediaType);
    }
    if body.len() > MAX_METADATA_BYTES {
        return Err(RegisterError::TooLarge);
    }
    let meta: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(RegisterError::Metadata(MetadataError::NotAnObject)),
        Err(_) => return Err(RegisterError::NotJson),
    };
    validate(&meta, Profile::Registration).map_err(RegisterError::Metadata)
}

/// Stores a new client. Returns the record and, for confidential
/// clients, the secret, which is never stored or shown again.
pub async fn register<P: KeyValue + Entropy>(
    platform: &P,
    metadata: ClientMetadata,
    now: UnixMillis,
) -> Result<(ClientRecord, Option<ClientSecret>), RegisterError> {
    let entropy = |_| RegisterError::Unavailable("entropy".into());
    let id = TokenKind::ClientId.mint(platform).map_err(entropy)?;
    let client_id = ClientId::parse(&id).ok_or(RegisterError::Unavailable("client id".into()))?;
    let secret = match metadata.auth_method {
        super::record::AuthMethod::None => None,
        _ => Some(ClientSecret::new(
            TokenKind::ClientSecret.mint(platform).map_err(entropy)?,
        )),
    };
    let record = ClientRecord {
        client_id,
        client_name: metadata.client_name,
        client_uri: metadata.client_uri,
        redirect_uris: metadata.redirect_uris,
        auth_method: metadata.auth_method,
        secret_hash: secret.as_ref().map(|s| TokenHash::of(s.secret())),
        source: ClientSource::Registered,
        created_at: now.as_secs(),
        expires_at: now.plus(REGISTRATION_LIFETIME).as_secs(),
    };
    let bytes = serde_json::to_vec(&record)
        .map_err(|e| RegisterError::Unavailable(format!("encode: {e}")))?;
    platform
        .put(
            &client_key(&record.client_id),
            &bytes,
            REGISTRATION_LIFETIME,
        )
        .await
        .map_err(|StorageError(e)| RegisterError::Unavailable(e))?;
    Ok((record, secret))
}

/// The registration response (RFC 7591 §3.2.1), 201.
pub fn response(record: &ClientRecord, secret: Option<&ClientSecret>) -> Response {
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
    Response::json(201, &Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::super::record::{AuthMethod, lookup_registered};
    use super::*;
    use crate::testing::{FakePlatform, block_on};

    fn headers() -> Headers {
        [("content-type", "application/json")].into_iter().collect()
    }

    fn parse_json(v: Value) -> Result<ClientMetadata, RegisterError> {
        parse(&headers(), v.to_string().as_bytes())
    }

    #[test]
    fn good_registrations() {
        let r = parse_json(json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1:6274/oauth/callback"], "client_name": "Claude", "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})).unwrap();
        assert_eq!(r.auth_method, AuthMethod::None);
        assert_eq!(r.redirect_uris.len(), 2);
        assert_eq!(r.client_name.as_deref(), Some("Claude"));
        let r = parse_json(json!({"redirect_uris": ["https://a.example/cb"]})).unwrap();
        assert_eq!(r.auth_method, AuthMethod::ClientSecretBasic);
        let r = parse_json(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_post", "scope": "mcp", "software_id": "x"})).unwrap();
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
            // Issue 10 findings (RFC 7591 §3.2.2 codes).
            (
                json!({"redirect_uris": ["https://*.a.example/cb"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb\r\nSet-Cookie: x=1"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["http://127.0.0.2/cb"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "client_name": "Claude\u{202E}"}),
                "invalid_client_metadata",
            ),
        ];
        for (body, code) in cases {
            assert_eq!(parse_json(body.clone()).unwrap_err().code(), code, "{body}");
        }
        assert_eq!(
            parse(&headers(), b"not json").unwrap_err(),
            RegisterError::NotJson
        );
        let huge = format!(
            "{{\"redirect_uris\":[\"https://a.example/cb\"],\"x\":\"{}\"}}",
            "y".repeat(MAX_METADATA_BYTES)
        );
        assert_eq!(
            parse(&headers(), huge.as_bytes()).unwrap_err(),
            RegisterError::TooLarge
        );
        assert_eq!(
            parse(&Headers::new(), b"{}").unwrap_err(),
            RegisterError::MediaType
        );
    }

    #[test]
    fn secrets_are_returned_once_and_stored_hashed() {
        let p = FakePlatform::new();
        let now = UnixMillis(1_773_576_000_000);
        let reg = parse_json(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_post"})).unwrap();
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
        let body = response(&record, Some(&secret)).json_body();
        assert_eq!(body["client_secret"], secret.secret());
        assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
        let public = parse_json(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"})).unwrap();
        let (record, secret) = block_on(register(&p, public, now)).unwrap();
        assert!(secret.is_none() && record.secret_hash.is_none());
    }
}
