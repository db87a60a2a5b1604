//! Every way the browser flow (`/authorize`, `/callback`, `/consent`) can
//! stop on a page: each variant owns its status, heading, message, the
//! machine-readable code the page carries in `<meta name="error">`, and
//! the operator's log line.

use super::login::LoginError;
use crate::http::Response;
use crate::oauth::authorize::{PageError, RedirectError};
use crate::oauth::types::Issuer;
use crate::pages::{self, BackToClientView};
use crate::ports::StorageError;

/// Why a consent form post is refused (all 400 pages, nothing stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentError {
    /// Unreadable, forged or expired ticket.
    BadTicket,
    /// No login cookie, or one from another browser.
    OtherBrowser,
    /// Missing or wrong CSRF token.
    Csrf,
    /// Neither approve nor deny.
    NoDecision,
    /// A chosen site the page did not offer (a forged or stale form).
    SiteNotOffered,
    /// "Only these sites" with none checked.
    NoSitesChosen,
    /// More than `flow::sites::MAX_CHOSEN_SITES` sites checked.
    TooManySites,
    /// "All sites" and particular sites in one post.
    SitesAmbiguous,
    /// "All sites" for a grant that must name its sites (a key grant).
    AllSitesNotOffered,
    /// An `all_sites` value that is neither `1` nor `0`.
    SitesUnreadable,
}

impl ConsentError {
    pub fn code(self) -> &'static str {
        match self {
            ConsentError::BadTicket => "bad_ticket",
            ConsentError::OtherBrowser => "ticket_other_browser",
            ConsentError::Csrf => "bad_csrf",
            ConsentError::NoDecision => "no_decision",
            ConsentError::SiteNotOffered => "site_not_offered",
            ConsentError::NoSitesChosen => "no_sites_chosen",
            ConsentError::TooManySites => "too_many_sites",
            ConsentError::SitesAmbiguous => "sites_ambiguous",
            ConsentError::AllSitesNotOffered => "all_sites_not_offered",
            ConsentError::SitesUnreadable => "sites_unreadable",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ConsentError::BadTicket => {
                "This approval form is invalid or has expired. Start connecting again from your application."
            }
            ConsentError::OtherBrowser => {
                "This approval form belongs to a sign-in in another browser."
            }
            ConsentError::Csrf => {
                "The approval form was not submitted from this server's page (missing or invalid CSRF token)."
            }
            ConsentError::NoDecision => "The form carried no decision.",
            ConsentError::SiteNotOffered => {
                "The form chose a site this page did not offer. Go back and choose among the sites listed."
            }
            ConsentError::NoSitesChosen => {
                "No site was chosen. Go back and check at least one site, or choose all sites where that is offered."
            }
            ConsentError::TooManySites => {
                "At most 20 sites can be chosen for one connection. Go back and check fewer sites, or choose all sites where that is offered."
            }
            ConsentError::SitesAmbiguous => {
                "The form chose all sites and also checked particular sites. Go back and choose one: all sites, or only the sites checked."
            }
            ConsentError::AllSitesNotOffered => {
                "This connection must name its sites: go back and check the sites it may read."
            }
            ConsentError::SitesUnreadable => {
                "The form's site choice is not readable. Go back and choose the sites again."
            }
        }
    }
}

/// Why a verified client's flow stopped before consent.
#[derive(Debug)]
pub enum BackCause {
    /// The authorization request itself is wrong (RFC 6749 §4.1.2.1).
    Request,
    /// The sign-in refused the person: the provider's `access_denied`, or
    /// the email gate.
    Login(LoginError),
}

impl FlowError {
    /// A client's block flag, as the browser flow answers it: a blocked
    /// client gets a page (its redirect URI is not one to trust any
    /// more); a lookup that failed is named by `step`.
    pub fn unless_blocked(
        lookup: Result<Option<u64>, StorageError>,
        step: &'static str,
    ) -> Result<(), FlowError> {
        match lookup {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(FlowError::Request(PageError::BlockedClient)),
            Err(cause) => Err(FlowError::Unavailable { step, cause }),
        }
    }
}

/// An error for a client whose redirect URI is verified, stopped before
/// the person approved anything: shown on a page with a link back
/// instead of an automatic redirect (RFC 9700 §4.11.2).
#[derive(Debug)]
pub struct BackToClient {
    pub cause: BackCause,
    pub client_name: String,
    pub redirect_host: String,
    /// The redirect URI with `error`, `error_description`, `state`, `iss`.
    pub link: String,
    /// The OAuth error code the link carries.
    pub oauth_code: &'static str,
    pub description: String,
}

impl BackToClient {
    pub fn new(
        cause: BackCause,
        client_name: &str,
        error: &RedirectError,
        issuer: &Issuer,
    ) -> Self {
        Self {
            cause,
            client_name: client_name.to_owned(),
            redirect_host: error.redirect_uri.host().to_owned(),
            link: error.location(issuer),
            oauth_code: error.code.as_str(),
            description: error.description.clone(),
        }
    }
}

#[derive(Debug)]
pub enum FlowError {
    /// A verified client's request or sign-in failed before consent; a
    /// page with a link back to the client (RFC 9700 §4.11.2).
    BackToClient(Box<BackToClient>),
    /// The authorization request cannot be used; shown, never redirected
    /// to an unverified redirect URI (RFC 6749 §4.1.2.1).
    Request(PageError),
    /// `COOKIE_SECRET` is missing or shorter than 32 characters.
    NoServerKey,
    /// `USER_KEY_SECRET` is missing or shorter than 32 characters.
    NoUserKey,
    /// No upstream provider is configured.
    NoUpstream,
    /// The upstream login could not be started.
    LoginStart(LoginError),
    /// The login at `/callback` failed.
    Login(LoginError),
    /// The consent form post was refused.
    Consent(ConsentError),
    /// A consent form posted from another origin.
    ForeignOrigin,
    /// The consent ticket was already spent.
    TicketUsed,
    /// The platform's randomness failed.
    Entropy,
    /// A `/mcp` authorization from a client whose redirect host is not
    /// in `BYOK_REDIRECT_HOSTS`: no key form (issue 15). `origin` is the
    /// redirect's `scheme://host[:port]`, so a person sees why a listed
    /// name on another port or scheme is refused.
    UnverifiedRedirectHost { origin: String },
    /// `PLAUSIBLE_BASE_URL` is unusable, so no key can be checked.
    PlausibleMisconfigured,
    /// Storage failed at `step`.
    Unavailable {
        step: &'static str,
        cause: StorageError,
    },
}

impl FlowError {
    pub fn status(&self) -> u16 {
        match self {
            FlowError::BackToClient(b) => match &b.cause {
                BackCause::Request => 400,
                BackCause::Login(e) => e.status(),
            },
            FlowError::Request(PageError::BlockedClient)
            | FlowError::ForeignOrigin
            | FlowError::UnverifiedRedirectHost { .. } => 403,
            FlowError::Request(_) | FlowError::Consent(_) | FlowError::TicketUsed => 400,
            FlowError::NoServerKey | FlowError::NoUserKey | FlowError::PlausibleMisconfigured => {
                500
            }
            FlowError::NoUpstream | FlowError::Entropy | FlowError::Unavailable { .. } => 503,
            FlowError::LoginStart(e) | FlowError::Login(e) => e.status(),
        }
    }

    /// The variable whose misconfiguration stopped the flow, if that is
    /// what did (a 500 naming it; issue 11).
    pub fn misconfigured(&self) -> Option<&'static str> {
        use crate::config::names;
        match self {
            FlowError::NoServerKey => Some(names::COOKIE_SECRET),
            FlowError::NoUserKey => Some(names::USER_KEY_SECRET),
            FlowError::PlausibleMisconfigured => Some(names::PLAUSIBLE_BASE_URL),
            FlowError::LoginStart(e) | FlowError::Login(e) => e.misconfigured(),
            _ => None,
        }
    }

    /// The machine-readable reason, as `<meta name="error" content="…">`.
    pub fn code(&self) -> &'static str {
        match self {
            FlowError::BackToClient(b) => match &b.cause {
                BackCause::Request => b.oauth_code,
                BackCause::Login(e) => e.code(),
            },
            FlowError::Request(e) => e.code(),
            FlowError::NoServerKey | FlowError::NoUserKey | FlowError::PlausibleMisconfigured => {
                "server_misconfigured"
            }
            FlowError::UnverifiedRedirectHost { .. } => "unverified_redirect_host",
            FlowError::NoUpstream => "sign_in_not_configured",
            FlowError::LoginStart(e) | FlowError::Login(e) => e.code(),
            FlowError::Consent(e) => e.code(),
            FlowError::ForeignOrigin => "foreign_origin",
            FlowError::TicketUsed => "ticket_used",
            FlowError::Entropy | FlowError::Unavailable { .. } => "temporarily_unavailable",
        }
    }

    fn heading(&self) -> &'static str {
        match self {
            FlowError::BackToClient(b) => match &b.cause {
                BackCause::Request => "This sign-in request cannot be completed",
                BackCause::Login(_) => "Sign-in failed",
            },
            FlowError::Request(_) => "This sign-in request cannot be completed",
            FlowError::NoServerKey | FlowError::NoUserKey | FlowError::PlausibleMisconfigured => {
                "Server misconfigured"
            }
            FlowError::UnverifiedRedirectHost { .. } => "This application is not verified",
            FlowError::NoUpstream => "Sign-in is not configured",
            FlowError::LoginStart(e) if e.misconfigured().is_some() => "Server misconfigured",
            FlowError::LoginStart(_) => "Sign-in is unavailable",
            FlowError::Login(_) => "Sign-in failed",
            FlowError::Consent(_) | FlowError::TicketUsed => "Approval failed",
            FlowError::ForeignOrigin => "Approval refused",
            FlowError::Entropy | FlowError::Unavailable { .. } => "Temporarily unavailable",
        }
    }

    fn message(&self) -> String {
        match self {
            FlowError::BackToClient(b) => match &b.cause {
                BackCause::Request => format!(
                    "The application sent a request this server cannot accept: {}.",
                    b.description
                ),
                BackCause::Login(e) => e.message().into(),
            },
            FlowError::Request(e) => e.message(),
            FlowError::NoServerKey => "COOKIE_SECRET is missing or shorter than 32 characters, so this server cannot sign anyone in.".into(),
            FlowError::NoUserKey => "USER_KEY_SECRET is missing or shorter than 32 characters, so this server cannot sign anyone in.".into(),
            FlowError::NoUpstream => "This server has no upstream identity provider configured (ACCESS_ISSUER, ACCESS_CLIENT_ID, ACCESS_CLIENT_SECRET).".into(),
            FlowError::LoginStart(e) | FlowError::Login(e) => e.message().into(),
            FlowError::Consent(e) => e.message().into(),
            FlowError::ForeignOrigin => "This form must be submitted from this server's own page.".into(),
            FlowError::TicketUsed => "This approval form was already used.".into(),
            FlowError::Entropy | FlowError::Unavailable { .. } => LoginError::Unavailable.message().into(),
            FlowError::UnverifiedRedirectHost { origin } => format!(
                "This application would send you back to {origin}, which this server has not verified for connecting with your own Plausible API key, so no key form is shown: a page that asks for your key must only hand the connection to an application you can trust. If you run this server and trust that host, add it to BYOK_REDIRECT_HOSTS (a listed host is trusted over https on the default port; loopback over http)."
            ),
            FlowError::PlausibleMisconfigured => "PLAUSIBLE_BASE_URL is not a usable https URL, so this server cannot check Plausible keys.".into(),
        }
    }

    /// What the operator is told, without secrets; `None` for a plain bad
    /// request, which the page explains to the person who sent it.
    pub fn log_line(&self) -> Option<String> {
        match self {
            FlowError::Request(PageError::BlockedClient) => {
                Some("authorize: refused a blocked client".to_owned())
            }
            FlowError::Request(_) | FlowError::UnverifiedRedirectHost { .. } => None,
            FlowError::BackToClient(b) => match &b.cause {
                BackCause::Request => None,
                BackCause::Login(e) => Some(format!("callback refused: {e:?}")),
            },
            FlowError::LoginStart(e) => {
                Some(format!("authorize: cannot start the upstream login: {e:?}"))
            }
            FlowError::Login(e) => Some(format!("callback refused: {e:?}")),
            FlowError::Consent(e) => Some(format!("consent refused: {e:?}")),
            FlowError::Unavailable { step, cause } => {
                Some(format!("{step}: storage failed: {}", cause.0))
            }
            other => Some(format!("sign-in flow stopped: {}", other.code())),
        }
    }

    pub fn response(&self) -> Response {
        match self {
            FlowError::BackToClient(b) => pages::back_to_client_page(&BackToClientView {
                status: self.status(),
                heading: self.heading(),
                message: &self.message(),
                code: self.code(),
                client_name: &b.client_name,
                redirect_host: &b.redirect_host,
                link: &b.link,
            }),
            _ => pages::error_page(self.status(), self.heading(), &self.message(), self.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_the_code_and_storage_failures_are_logged() {
        let e = FlowError::Unavailable {
            step: "consent lookup",
            cause: StorageError("do get: timeout".into()),
        };
        assert_eq!(e.status(), 503);
        assert_eq!(
            e.log_line().as_deref(),
            Some("consent lookup: storage failed: do get: timeout")
        );
        let page = String::from_utf8(e.response().body).unwrap();
        assert!(page.contains("<meta name=\"error\" content=\"temporarily_unavailable\">"));
        let e = FlowError::Login(LoginError::BadState);
        assert_eq!((e.status(), e.code()), (400, "bad_state"));
        assert!(
            FlowError::Request(PageError::UnknownClient)
                .log_line()
                .is_none()
        );
        let page = String::from_utf8(FlowError::NoUserKey.response().body).unwrap();
        assert!(page.contains("USER_KEY_SECRET") && page.contains("server_misconfigured"));
        assert_eq!(FlowError::NoUserKey.status(), 500);
    }
}
