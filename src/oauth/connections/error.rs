//! The connections page's refusals, one enum mapped once to a status,
//! a machine-readable code and a message (and what the operator is told),
//! plus the small helpers every handler of the page shares.

use crate::crypto::{Keyring, UserKeys};
use crate::http::{Params, Request, Response, form};
use crate::oauth::flow::login::LoginError;
use crate::oauth::server::AuthServer;
use crate::pages;
use crate::ports::StorageError;
use crate::secret::SetCookie;

/// Why the page answered no.
#[derive(Debug)]
pub enum ConnectionsError {
    /// `COOKIE_SECRET` is missing or too short.
    NoServerKey,
    /// `USER_KEY_SECRET` is missing or too short.
    NoUserKey,
    /// No upstream provider is configured.
    NoUpstream,
    LoginStart(LoginError),
    /// A POST without a live session (401).
    SignedOut,
    /// An admin's view or action asked by someone else (403).
    NotAdmin,
    /// A pair that is not the signed-in person's (404: whether it exists
    /// is not theirs to learn).
    UnknownPair,
    /// A form or query that does not parse (400).
    BadRequest(&'static str),
    /// A missing or wrong CSRF token (403).
    Csrf,
    /// A POST from another origin (403).
    ForeignOrigin,
    /// What was entered as a Plausible key cannot be one (400).
    NotAKey,
    /// No randomness for a session or form cookie (503).
    Entropy,
    Storage(StorageError),
}

impl ConnectionsError {
    fn status(&self) -> u16 {
        match self {
            ConnectionsError::NoServerKey | ConnectionsError::NoUserKey => 500,
            ConnectionsError::NoUpstream
            | ConnectionsError::Storage(_)
            | ConnectionsError::Entropy => 503,
            ConnectionsError::LoginStart(e) => e.status(),
            ConnectionsError::SignedOut => 401,
            ConnectionsError::NotAdmin
            | ConnectionsError::Csrf
            | ConnectionsError::ForeignOrigin => 403,
            ConnectionsError::UnknownPair => 404,
            ConnectionsError::BadRequest(_) | ConnectionsError::NotAKey => 400,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ConnectionsError::NoServerKey | ConnectionsError::NoUserKey => "server_misconfigured",
            ConnectionsError::NoUpstream => "sign_in_not_configured",
            ConnectionsError::LoginStart(e) => e.code(),
            ConnectionsError::SignedOut => "signed_out",
            ConnectionsError::NotAdmin => "not_admin",
            ConnectionsError::UnknownPair => "not_found",
            ConnectionsError::BadRequest(_) => "bad_request",
            ConnectionsError::Csrf => "csrf",
            ConnectionsError::ForeignOrigin => "foreign_origin",
            ConnectionsError::NotAKey => "not_a_key",
            ConnectionsError::Storage(_) | ConnectionsError::Entropy => "temporarily_unavailable",
        }
    }

    fn message(&self) -> String {
        match self {
            ConnectionsError::NoServerKey => "COOKIE_SECRET is missing or shorter than 32 characters, so this server cannot sign anyone in.".into(),
            ConnectionsError::NoUserKey => "USER_KEY_SECRET is missing or shorter than 32 characters, so this server cannot sign anyone in.".into(),
            ConnectionsError::NoUpstream => "This server has no upstream identity provider configured (ACCESS_ISSUER, ACCESS_CLIENT_ID, ACCESS_CLIENT_SECRET).".into(),
            ConnectionsError::LoginStart(e) => e.message().into(),
            ConnectionsError::SignedOut => "Your session has ended. Sign in again at /connections.".into(),
            ConnectionsError::NotAdmin => "Only this server's administrators can see or change other people's connections.".into(),
            ConnectionsError::UnknownPair => "No such connection among yours.".into(),
            ConnectionsError::BadRequest(why) => (*why).into(),
            ConnectionsError::Csrf => "The form was not submitted from this server's page (missing or invalid CSRF token). Reload the page and try again.".into(),
            ConnectionsError::ForeignOrigin => "This form must be submitted from this server's own page.".into(),
            ConnectionsError::NotAKey => "That is not a Plausible API key. Paste the whole key, as Plausible showed it when you created it.".into(),
            ConnectionsError::Storage(_) | ConnectionsError::Entropy => "The server could not complete the request. Try again shortly.".into(),
        }
    }

    /// What the operator is told; none for a plain bad request.
    pub fn log_line(&self) -> Option<String> {
        match self {
            ConnectionsError::Storage(StorageError(why)) => {
                Some(format!("connections: storage failed: {why}"))
            }
            ConnectionsError::LoginStart(e) => Some(format!(
                "connections: cannot start the upstream login: {e:?}"
            )),
            ConnectionsError::NotAdmin
            | ConnectionsError::UnknownPair
            | ConnectionsError::Csrf
            | ConnectionsError::ForeignOrigin => {
                Some(format!("connections: refused: {}", self.code()))
            }
            ConnectionsError::BadRequest(_)
            | ConnectionsError::SignedOut
            | ConnectionsError::NotAKey => None,
            other => Some(format!("connections: stopped: {}", other.code())),
        }
    }

    pub fn response(&self) -> Response {
        let heading = match self.status() {
            401 => "Signed out",
            403 => "Not allowed",
            404 => "Not found",
            400 => "Bad request",
            500 => "Server misconfigured",
            _ => "Temporarily unavailable",
        };
        pages::error_page(self.status(), heading, &self.message(), self.code())
    }
}

pub(super) type Outcome = Result<Response, ConnectionsError>;

pub(super) fn keys<'a>(
    server: &AuthServer<'a>,
) -> Result<(&'a Keyring, &'a UserKeys), ConnectionsError> {
    Ok((
        server
            .settings
            .keys
            .as_ref()
            .ok_or(ConnectionsError::NoServerKey)?,
        server
            .settings
            .user_keys
            .as_ref()
            .ok_or(ConnectionsError::NoUserKey)?,
    ))
}

/// Refuses a POST that another origin's page sent (the page's forms post
/// only to this server; a missing `Origin` is left to the CSRF token).
pub(super) fn from_this_origin(
    server: &AuthServer<'_>,
    request: &Request,
) -> Result<(), ConnectionsError> {
    if request
        .headers
        .get("origin")
        .is_some_and(|o| o != server.issuer.as_str())
    {
        return Err(ConnectionsError::ForeignOrigin);
    }
    Ok(())
}

/// The posted form's fields.
pub(super) fn posted_form(request: &Request) -> Result<Params, ConnectionsError> {
    form(&request.headers, &request.body)
        .map_err(|_| ConnectionsError::BadRequest("the form could not be read"))
}

pub(super) fn redirect(status: u16, location: &str, cookies: &[SetCookie]) -> Response {
    let mut r = Response::new(status).with_header("location", location);
    for c in cookies {
        r.headers.append("set-cookie", c.secret());
    }
    r
}
