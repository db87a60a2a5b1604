//! The three browser endpoints of the authorization flow, one function
//! each for its handler to call:
//!
//! - `GET /authorize` ([`authorize`]): a validated request goes to the
//!   upstream login (or, under the test-only hook, straight to a code);
//! - `GET /callback` ([`callback`]): the login finishes, then
//!   [`consent::after_login`] issues a code or asks;
//! - `POST /consent` ([`consent`]): [`consent::decide`] approves (a code)
//!   or denies (an error to the client).

use super::consent::{self, AfterLogin, Consented, Decided};
use super::error::{BackCause, BackToClient, FlowError};
use super::issue::{IssueError, issue_code};
use super::key_form;
use super::keys::FlowKeys;
use super::login::{self, SignedIn, clear_login_cookie};
use super::principal::Who;
pub use super::reply::Reply;
use crate::audit::{Event, Outcome, Record};
use crate::http::{Request, single_params};
#[cfg(feature = "test-hooks")]
use crate::identity;
use crate::oauth::authorize::{self, AuthorizeError, PageError, RedirectErrorCode};
use crate::oauth::clients::registry::{self, LookupError};
use crate::oauth::connections::block;
use crate::oauth::connections::key_session::KeySession;
use crate::oauth::connections::session::Session;
use crate::oauth::ids::UserKey;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::Audience;

/// The header the test-only identity hook reads (see
/// `AuthServer::test_identity_hook`); the test build only.
#[cfg(feature = "test-hooks")]
pub const TEST_IDENTITY_HEADER: &str = "x-test-identity";

pub(crate) fn keys<'a>(server: &AuthServer<'a>) -> Result<FlowKeys<'a>, FlowError> {
    Ok(FlowKeys {
        ring: server
            .settings
            .keys
            .as_ref()
            .ok_or(FlowError::NoServerKey)?,
        user: server
            .settings
            .user_keys
            .as_ref()
            .ok_or(FlowError::NoUserKey)?,
    })
}

/// Issues the code for a consented request, or redirects the error.
async fn complete<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    keys: FlowKeys<'_>,
    consented: &Consented,
) -> String {
    match issue_code(platform, server, keys.ring, keys.user, consented).await {
        Ok(location) => location,
        Err(e) => {
            platform.warn(&e.log_line());
            let (code, description) = match e {
                // Not transient: trying again would be refused again.
                IssueError::WrongEndpoint => (
                    RedirectErrorCode::ServerError,
                    "the approval does not fit the requested resource",
                ),
                IssueError::Entropy | IssueError::Storage(_) => (
                    RedirectErrorCode::TemporarilyUnavailable,
                    "the server could not record the authorization; try again",
                ),
            };
            consented
                .request()
                .error(code, description)
                .location(&server.issuer)
        }
    }
}

fn back_to_client(
    server: &AuthServer<'_>,
    cause: BackCause,
    client_name: &str,
    error: &authorize::RedirectError,
) -> FlowError {
    FlowError::BackToClient(Box::new(BackToClient::new(
        cause,
        client_name,
        error,
        &server.issuer,
    )))
}

/// The error a refused sign-in reports to its client.
fn denied(request: &authorize::AuthorizationRequest) -> authorize::RedirectError {
    request.error(
        RedirectErrorCode::AccessDenied,
        "the person signing in was refused",
    )
}

/// `GET /authorize` (RFC 6749 §4.1.1).
pub async fn authorize<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    request: &Request,
) -> Result<Reply, FlowError> {
    let query = request.url.query().unwrap_or("");
    let params = single_params(query.as_bytes())
        .map_err(|r| FlowError::Request(PageError::DuplicateParameter(r.0)))?;
    let client_id = authorize::client_id_of(&params).map_err(FlowError::Request)?;
    let client =
        match registry::find(platform, server.fetch_policy(), &server.reached, &client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(FlowError::Request(PageError::UnknownClient)),
            Err(LookupError::Metadata(e)) => {
                // The page says what a stranger may know; the log says why.
                platform.warn(&format!("authorize: {}", e.log_detail()));
                return Err(FlowError::Request(PageError::ClientMetadata(
                    e.description(),
                )));
            }
            Err(LookupError::Storage(cause)) => {
                return Err(FlowError::Unavailable {
                    step: "authorize: client lookup",
                    cause,
                });
            }
        };
    // A blocked client is refused before anything else is looked at,
    // with a page (its redirect URI is not one to trust any more).
    FlowError::unless_blocked(
        block::blocked_since(platform, &client.client_id).await,
        "authorize: block lookup",
    )?;
    let auth_request = match authorize::validate(&params, &client, &server.issuer) {
        Ok(r) => r,
        Err(AuthorizeError::Page(e)) => return Err(FlowError::Request(e)),
        // RFC 9700 §4.11.2: not an immediate redirect, since anyone can
        // register the URI and nobody has signed in yet.
        Err(AuthorizeError::Redirect(e)) => {
            return Err(back_to_client(
                server,
                BackCause::Request,
                client.display_name(),
                &e,
            ));
        }
    };
    let keys = keys(server)?;

    // `/mcp`: the person's own key instead of a company sign-in.
    if auth_request.resource.audience(&server.issuer) == Some(Audience::Mcp) {
        return key_form::offer(platform, server, keys, &client, auth_request);
    }

    // Test-only identity hook: compiled into the test build only, and
    // even there only on a loopback host (see
    // `AuthServer::test_identity_hook`).
    #[cfg(feature = "test-hooks")]
    if server.test_identity_hook()
        && let Some(email) = request.headers.get(TEST_IDENTITY_HEADER)
    {
        // A refused identity stands for a sign-in the email gate refused
        // at `/callback`, and is answered as that is.
        let identity = identity::admit(email, Some(true), &server.settings.allowed_email_domains)
            .map_err(|refused| {
            server.audit(
                platform,
                login::LoginError::Refused(refused)
                    .audit_record()
                    .client(&auth_request.client_id),
            );
            back_to_client(
                server,
                BackCause::Login(login::LoginError::Refused(refused)),
                client.display_name(),
                &denied(&auth_request),
            )
        })?;
        let user = UserKey::of_email(keys.user, identity.email());
        server.audit(
            platform,
            Record::new(Event::SignIn, Outcome::Success)
                .reason("test identity hook")
                .client(&auth_request.client_id)
                .user(&user)
                .email(&identity),
        );
        if let Some(c) = Consented::by_test_identity(server, auth_request, identity) {
            return Ok(Reply::to(complete(platform, server, keys, &c).await));
        }
        return Err(FlowError::NoUpstream);
    }

    let upstream = server
        .settings
        .upstream
        .as_ref()
        .ok_or(FlowError::NoUpstream)?;
    let start = login::begin(platform, server, keys.ring, upstream, Some(auth_request))
        .await
        .map_err(FlowError::LoginStart)?;
    Ok(Reply::Redirect {
        location: start.location,
        cookies: start.set_cookies,
    })
}

/// `GET /callback`: the upstream provider's redirect back to us.
/// `directory` is the shared key's context, whose sites the consent page
/// offers (issue 15).
pub async fn callback<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    directory: Option<&crate::plausible::context::ToolContext>,
    request: &Request,
) -> Result<Reply, FlowError> {
    let keys = keys(server)?;
    let upstream = server
        .settings
        .upstream
        .as_ref()
        .ok_or(FlowError::NoUpstream)?;
    let query = request.url.query().unwrap_or("");
    let params = single_params(query.as_bytes())
        .map_err(|_| FlowError::Login(login::LoginError::BadState))?;
    let signed_in = match login::finish(
        platform,
        server,
        keys.ring,
        upstream,
        &params,
        &request.headers,
    )
    .await
    {
        Ok(l) => l,
        Err(login::LoginFailed {
            error,
            denied: Some(auth_request),
        }) => {
            server.audit(
                platform,
                error.audit_record().client(&auth_request.client_id),
            );
            // Only for the page's wording: the client's name, else its id.
            let name = match registry::find(
                platform,
                server.fetch_policy(),
                &server.reached,
                &auth_request.client_id,
            )
            .await
            {
                Ok(Some(c)) => c.display_name().to_owned(),
                _ => auth_request.client_id.as_str().to_owned(),
            };
            return Err(back_to_client(
                server,
                BackCause::Login(error),
                &name,
                &denied(&auth_request),
            ));
        }
        Err(login::LoginFailed {
            error,
            denied: None,
        }) => {
            server.audit(platform, error.audit_record());
            return Err(FlowError::Login(error));
        }
    };
    let identity = match &signed_in {
        SignedIn::Authorize(logged_in) => &logged_in.identity,
        SignedIn::Connections { identity, .. } => identity,
    };
    let user = UserKey::of_email(keys.user, identity.email());
    let signed_in_record = Record::new(Event::SignIn, Outcome::Success)
        .user(&user)
        .email(identity);
    server.audit(
        platform,
        match &signed_in {
            SignedIn::Authorize(logged_in) => signed_in_record
                .client(&logged_in.request.client_id)
                .reason("authorize"),
            SignedIn::Connections { .. } => signed_in_record.reason("connections"),
        },
    );
    let logged_in = match signed_in {
        SignedIn::Authorize(logged_in) => *logged_in,
        SignedIn::Connections { identity, browser } => {
            let (_, session) =
                Session::start(keys.ring, platform, &identity, platform.now().as_secs())
                    .map_err(|_| FlowError::Entropy)?;
            let mut cookies = clear_login_cookie(&browser.cookie_name);
            cookies.push(session);
            return Ok(Reply::Redirect {
                location: server.issuer.endpoint("/connections"),
                cookies,
            });
        }
    };
    match consent::after_login(platform, server, keys, logged_in, directory).await? {
        AfterLogin::Issue(consented, browser) => Ok(Reply::Redirect {
            location: complete(platform, server, keys, &consented).await,
            cookies: clear_login_cookie(&browser.cookie_name),
        }),
        AfterLogin::Ask(page) => Ok(Reply::Ask(Box::new(page))),
    }
}

/// `POST /consent`: the person's Approve or Deny.
pub async fn consent<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    request: &Request,
) -> Result<Reply, FlowError> {
    let keys = keys(server)?;
    let (decided, cookie_name) =
        consent::decide(platform, server, keys, &request.headers, &request.body).await?;
    let mut cookies = clear_login_cookie(&cookie_name);
    let location = match decided {
        Decided::Deny(error) => error.location(&server.issuer),
        Decided::Approve(consented) => {
            // A key grant's approval opens this browser's view of the
            // key's connections on `/connections` (issue 15): Plausible
            // has just accepted the key, so this browser holds it.
            if let Who::Key(holder) = consented.who() {
                let user = UserKey::of_plausible_key(keys.user, &holder.key);
                if let Ok((_, cookie)) =
                    KeySession::start(keys.ring, platform, &user, platform.now().as_secs())
                {
                    cookies.push(cookie);
                }
            }
            complete(platform, server, keys, &consented).await
        }
    };
    Ok(Reply::Redirect { location, cookies })
}
