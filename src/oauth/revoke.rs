//! Token revocation (RFC 7009).

use super::ids::{TokenHash, TokenKind};
use super::ledger::client::Ledger;
use super::ledger::records::{AccessRecord, access_key};
use super::routing::{Located, Unroutable, locate};
use super::server::{AuthServer, Platform};
use super::token::{self, TokenError};
use super::types::ClientId;
use crate::audit::{Actor, Event, Outcome, Record};
use crate::http::Headers;

/// Handles `POST /revoke`. The client authenticates as at the token
/// endpoint and may revoke only its own tokens; unknown tokens, or tokens
/// of other clients, answer 200 like any other (RFC 7009 §2.2), so the
/// endpoint tells nobody which tokens exist. A routed token whose tag is
/// not ours is unknown without a storage read.
pub async fn revoke<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    headers: &Headers,
    body: &[u8],
) -> Result<(), TokenError> {
    let form = token::form(headers, body)?;
    let presented = form
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TokenError::InvalidRequest("token is required".into()))?;
    // Our tokens carry their kind in a prefix, so token_type_hint is only
    // a hint we do not need (RFC 7009 §2.1).
    let kind = if TokenKind::RefreshToken.is_kind_of(presented) {
        TokenKind::RefreshToken
    } else if TokenKind::AccessToken.is_kind_of(presented) {
        TokenKind::AccessToken
    } else {
        token::authenticate(platform, server, headers, &form).await?;
        return Ok(());
    };
    let located = match locate(kind, presented, server.settings.user_keys.as_ref()) {
        Ok(located) => located,
        // Nothing of ours: the answer to any unknown token, at no
        // storage read (not even the client's).
        Err(Unroutable::Forged) => return Ok(()),
        Err(Unroutable::NoUserKey) => return Err(TokenError::NoUserKey),
    };
    let client = token::authenticate(platform, server, headers, &form).await?;
    let hash = TokenHash::of(presented);
    let done = end(platform, kind, located, &hash, &client.client_id).await;
    if done.is_ok() && kind == TokenKind::RefreshToken {
        // RFC 7009 §2.2 answers 200 whether or not the token was live;
        // the line says the client asked, and its grant (if any) ended.
        server.audit(
            platform,
            Record::new(Event::GrantRevoked, Outcome::Success)
                .reason("refresh token revoked at /revoke")
                .client(&client.client_id)
                .by(Actor::Client),
        );
    }
    // This isolate forgets what it remembered at once, whatever storage
    // answered (a failed call may still have revoked): an access token by
    // its hash; a refresh token ends its grant, whose access tokens this
    // isolate cannot name, so the client's entries go (`token_cache`).
    let mut memory = platform.token_memory().borrow_mut();
    match kind {
        TokenKind::AccessToken => memory.forget_token(&hash),
        _ => memory.forget_client(&client.client_id),
    }
    done
}

/// Ends the token in storage, if it is the presenting client's.
async fn end<P: Platform>(
    platform: &P,
    kind: TokenKind,
    located: Located,
    hash: &TokenHash,
    client_id: &ClientId,
) -> Result<(), TokenError> {
    let hash = hash.clone();
    let unavailable = |e: crate::ports::StorageError| TokenError::TemporarilyUnavailable(e.0);
    match (kind, located) {
        (TokenKind::RefreshToken, Located::Legacy) => {
            // The legacy ledger is per client: another client's token is
            // unknown there.
            Ledger::of(platform, client_id)
                .revoke_refresh(hash, client_id, true)
                .await
                .map_err(unavailable)?;
        }
        (TokenKind::RefreshToken, Located::Pair(routed)) => {
            Ledger::pair(platform, routed.routing)
                .revoke_refresh(hash, client_id, true)
                .await
                .map_err(unavailable)?;
        }
        (_, Located::Pair(routed)) => {
            Ledger::pair(platform, routed.routing)
                .revoke_access(hash, client_id)
                .await
                .map_err(unavailable)?;
        }
        (_, Located::Legacy) => {
            let key = access_key(&hash);
            let record = platform.get(&key).await.map_err(unavailable)?;
            let owned = record
                .and_then(|bytes| serde_json::from_slice::<AccessRecord>(&bytes).ok())
                .is_some_and(|r| &r.client_id == client_id);
            if owned {
                platform.delete(&key).await.map_err(unavailable)?;
            }
        }
    }
    Ok(())
}
