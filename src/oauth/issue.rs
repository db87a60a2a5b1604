//! The end of a successful authorization: a code for the client
//! (RFC 6749 §4.1.2), with `iss` (RFC 9207).

use super::authorize::AuthorizationRequest;
use super::identity::Identity;
use super::ledger::{CodeRecord, LedgerOp, LedgerReply};
use super::settings::OAuthSettings;
use crate::crypto::{self, Keys};
use crate::ports::{Platform, StorageError};
use crate::secret::AuthorizationCode;

pub const CODE_PREFIX: &str = "pmcp_ac_";

#[derive(Debug)]
pub enum IssueError {
    Entropy,
    Storage(StorageError),
}

/// Records a code for an approved request and returns the client's
/// redirect `Location`.
pub async fn issue_code<P: Platform>(
    platform: &P,
    settings: &OAuthSettings,
    keys: &Keys,
    request: &AuthorizationRequest,
    identity: &Identity,
) -> Result<String, IssueError> {
    let code = AuthorizationCode::new(
        crypto::mint(platform, CODE_PREFIX).map_err(|_| IssueError::Entropy)?,
    );
    let grant_id = crypto::mint(platform, "g_").map_err(|_| IssueError::Entropy)?;
    let subject = identity
        .subject(keys, platform)
        .map_err(|_| IssueError::Entropy)?;
    let record = CodeRecord {
        grant_id,
        redirect_uri: request.redirect_uri.as_str().to_owned(),
        redirect_uri_given: request.redirect_uri_given,
        code_challenge: request.code_challenge.as_str().to_owned(),
        scope: request.scope.clone(),
        resource: request.resource.clone(),
        subject,
        expires_at: platform.now().plus(settings.lifetimes.code).as_secs(),
        redeemed: false,
    };
    let reply = platform
        .ledger(
            &request.client_id,
            LedgerOp::IssueCode {
                code_hash: crypto::token_hash(code.secret()),
                record,
            },
        )
        .await
        .map_err(IssueError::Storage)?;
    if reply != LedgerReply::Done {
        return Err(IssueError::Storage(StorageError(
            "unexpected ledger reply".into(),
        )));
    }
    let mut params = vec![("code", code.secret())];
    if let Some(state) = &request.state {
        params.push(("state", state.as_str()));
    }
    params.push(("iss", settings.issuer.as_str()));
    Ok(request.redirect_uri.with_params(&params))
}
