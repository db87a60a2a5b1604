//! Token revocation (RFC 7009).

use super::ledger::{self, AccessRecord, LedgerOp};
use super::settings::OAuthSettings;
use super::token::{self, ACCESS_PREFIX, REFRESH_PREFIX, TokenError};
use crate::crypto;
use crate::http::Headers;
use crate::ports::Platform;

/// Handles `POST /revoke`. The client authenticates as at the token
/// endpoint and may revoke only its own tokens; unknown tokens, or tokens
/// of other clients, answer 200 like any other (RFC 7009 §2.2), so the
/// endpoint tells nobody which tokens exist.
pub async fn revoke<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    headers: &Headers,
    body: &[u8],
) -> Result<(), TokenError> {
    let form = token::form(headers, body)?;
    let client = token::authenticate(platform, settings, headers, &form).await?;
    let presented = form
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TokenError::InvalidRequest("token is required".into()))?;
    let hash = crypto::token_hash(presented);
    let unavailable = |e: crate::ports::StorageError| TokenError::TemporarilyUnavailable(e.0);
    // Our tokens carry their kind in a prefix, so token_type_hint is only
    // a hint we do not need (RFC 7009 §2.1).
    if presented.starts_with(REFRESH_PREFIX) {
        // The ledger is per client: another client's token is unknown there.
        platform
            .ledger(
                &client.client_id,
                LedgerOp::RevokeRefresh { refresh_hash: hash },
            )
            .await
            .map_err(unavailable)?;
    } else if presented.starts_with(ACCESS_PREFIX) {
        let key = ledger::access_key(&hash);
        let record = platform.get(&key).await.map_err(unavailable)?;
        let owned = record
            .and_then(|bytes| serde_json::from_slice::<AccessRecord>(&bytes).ok())
            .is_some_and(|r| r.client_id == client.client_id);
        if owned {
            platform.delete(&key).await.map_err(unavailable)?;
        }
    }
    Ok(())
}
