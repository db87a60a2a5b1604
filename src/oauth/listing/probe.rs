//! A state probe for the end-to-end tests, compiled into the test build
//! only (cargo feature `test-hooks`) and served only where the test
//! identity header is (a loopback host with `TEST_IDENTITY_HOOK` set,
//! never a deployed worker): reads a user's directory or a client's
//! index, and starts a revoke-all, so the tests can check both through
//! the real flow before the control issue's pages exist.
//!
//! `GET /__test/listings?email=…` or `?client_id=…` answers the pairs
//! listed and the time of a revocation still fanning out; `POST` with the
//! same query marks a revoke-all now and answers its time.

use serde_json::{Value, json};

use super::client::{Directory, Index, MAX_PAGE, Page, revoke_all_for_client, revoke_all_for_user};
use crate::http::{Method, Request, Response};
use crate::oauth::ids::UserKey;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::ClientId;
use crate::ports::StorageError;

/// Why the probe answered no.
#[derive(Debug)]
pub enum ProbeError {
    /// Not a loopback host with the test hook on: nothing is here.
    Disabled,
    /// Neither `email` nor a valid `client_id`, or another method.
    BadRequest(&'static str),
    /// `USER_KEY_SECRET` is not configured.
    NoUserKey,
    Storage(StorageError),
}

impl ProbeError {
    pub fn log_line(&self) -> Option<String> {
        match self {
            ProbeError::Storage(StorageError(why)) => Some(format!("test probe: {why}")),
            _ => None,
        }
    }

    /// `None` for [`ProbeError::Disabled`]: the caller answers as for any
    /// unknown path.
    pub fn response(&self) -> Option<Response> {
        let (status, why) = match self {
            ProbeError::Disabled => return None,
            ProbeError::BadRequest(why) => (400, (*why).to_owned()),
            ProbeError::NoUserKey => (500, "USER_KEY_SECRET is not configured".to_owned()),
            ProbeError::Storage(_) => (503, "storage failed".to_owned()),
        };
        Some(Response::json(
            status,
            &json!({"error": "probe_failed", "error_description": why}),
        ))
    }
}

pub async fn probe<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    request: &Request,
) -> Result<Value, ProbeError> {
    if !server.test_identity_hook() {
        return Err(ProbeError::Disabled);
    }
    let param = |name: &str| {
        request
            .url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let now = platform.now().as_secs();
    let storage = ProbeError::Storage;
    if let Some(email) = param("email") {
        let keys = server
            .settings
            .user_keys
            .as_ref()
            .ok_or(ProbeError::NoUserKey)?;
        let user = UserKey::of_email(keys, &email.trim().to_ascii_lowercase());
        return match request.method {
            Method::Get => Ok(page(
                Directory::of(platform, &user)
                    .list()
                    .await
                    .map_err(storage)?,
            )),
            Method::Post => {
                revoke_all_for_user(platform, &user, now)
                    .await
                    .map_err(storage)?;
                // The fan-out runs in the objects, elsewhere: this
                // isolate forgets now, other isolates within 60 s
                // (`token_cache`).
                platform.token_memory().borrow_mut().forget_user(&user);
                Ok(json!({"marked_at": now}))
            }
            _ => Err(ProbeError::BadRequest("GET or POST")),
        };
    }
    let client = param("client_id")
        .and_then(|c| ClientId::parse(&c))
        .ok_or(ProbeError::BadRequest("email or client_id is required"))?;
    match request.method {
        Method::Get => Ok(page(
            Index::of(platform, &client)
                .pairs(None, MAX_PAGE)
                .await
                .map_err(storage)?,
        )),
        Method::Post => {
            revoke_all_for_client(platform, &client, now)
                .await
                .map_err(storage)?;
            platform.token_memory().borrow_mut().forget_client(&client);
            Ok(json!({"marked_at": now}))
        }
        _ => Err(ProbeError::BadRequest("GET or POST")),
    }
}

fn page(page: Page) -> Value {
    json!({"pairs": page.pairs, "next": page.next, "revoking": page.revoking})
}
