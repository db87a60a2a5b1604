//! The client record every endpoint uses, however the client came:
//! `POST /register` (stored in KV under `client:<id>`, expiring) or a
//! client ID metadata document (cached, see `cimd_fetch`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::oauth::ids::TokenHash;
use crate::oauth::types::{ClientId, RedirectUri};
use crate::ports::{KeyValue, StorageError, UnixMillis};
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

    pub fn parse(s: &str) -> Option<Self> {
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
    pub secret_hash: Option<TokenHash>,
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
                TokenHash::of(presented.secret()).as_str().as_bytes(),
                hash.as_str().as_bytes(),
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

pub fn client_key(id: &ClientId) -> String {
    format!("client:{}", id.as_str())
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
    use crate::testing::{FakePlatform, block_on, client_record};

    #[test]
    fn registered_clients_are_found_until_they_expire() {
        let p = FakePlatform::new();
        let now = UnixMillis(1_773_576_000_000);
        let mut record = client_record("pmcp_client_A", &["https://a.example/cb"]);
        record.expires_at = now.plus(REGISTRATION_LIFETIME).as_secs();
        let bytes = serde_json::to_vec(&record).unwrap();
        block_on(p.put(
            &client_key(&record.client_id),
            &bytes,
            REGISTRATION_LIFETIME,
        ))
        .unwrap();
        let found = block_on(lookup_registered(&p, &record.client_id, now)).unwrap();
        assert_eq!(found, Some(record.clone()));
        let later = now.plus(REGISTRATION_LIFETIME);
        assert!(
            block_on(lookup_registered(&p, &record.client_id, later))
                .unwrap()
                .is_none()
        );
        assert_eq!(record.display_name(), "Test");
    }
}
