//! The consent step: per user and client (the MCP "confused deputy"
//! defence: a proxy with one upstream client id must ask each user before
//! each new client gets tokens). It alone builds [`Consented`], the proof
//! a code is issued from.
//!
//! After login, the pending approval travels in a ticket sealed with
//! AES-256-GCM (its contents are neither readable nor forgeable), bound to
//! the login cookie, single use, and valid for 10 minutes. The form also
//! carries a CSRF token: an HMAC over the ticket and the cookie value,
//! which a cross-site page cannot compute.

use crate::audit::{Event, Outcome, Record};
use serde::{Deserialize, Serialize};

use super::error::{ConsentError, FlowError};
use super::keys::FlowKeys;
use super::login::{Browser, LOGIN_LIFETIME, LoggedIn, read_login_cookie};
use crate::crypto::UserKeys;
use crate::crypto::{self, Keyring};
use crate::http::{Headers, Params, Response, form};
use crate::identity;
use crate::oauth::authorize::{AuthorizationRequest, PageError, RedirectError, RedirectErrorCode};
use crate::oauth::clients::record::{ClientRecord, ClientSource};
use crate::oauth::clients::registry;
use crate::oauth::ids::{RoutingId, TicketId, UserKey};
use crate::oauth::ledger::client::Ledger;
use crate::oauth::ledger::legacy_consents::legacy_users;
use crate::oauth::ledger::records::ConsentRecord;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::used::{self, Once};
use crate::pages::{self, ConsentView, KeyView};
use crate::ports::{Entropy, EntropyError, StorageError};
use crate::secret::ct_eq;

pub use super::principal::{KeyHolder, Principal, Who};

const TICKET_AAD: &str = "consent-ticket";
const CSRF_PURPOSE: &str = "consent-csrf";

/// Proof that this person approved this request for this client. A code
/// can only be issued from one (`issue::issue_code`). Its fields are
/// private: only this module builds it, from a recorded consent that
/// covers the request, from an Approve post, or for the test-only
/// identity hook.
#[derive(Debug)]
pub struct Consented {
    request: AuthorizationRequest,
    who: Who,
}

impl Consented {
    pub fn request(&self) -> &AuthorizationRequest {
        &self.request
    }

    pub fn who(&self) -> &Who {
        &self.who
    }

    /// The test-only identity hook's proof (`X-Test-Identity`, loopback
    /// hosts only): it stands for a person who signed in and approved.
    #[cfg(feature = "test-hooks")]
    pub(super) fn by_test_identity(
        server: &AuthServer<'_>,
        request: AuthorizationRequest,
        identity: identity::Identity,
    ) -> Option<Self> {
        server.test_identity_hook().then_some(Self {
            request,
            who: Who::Person(identity),
        })
    }
}

/// What a consent ticket holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub request: AuthorizationRequest,
    /// Who approves, sealed inside the ticket (see [`Principal`]).
    #[serde(flatten)]
    pub principal: Principal,
    pub expires_at: u64,
    /// The browser-binding cookie the ticket is bound to (the login's,
    /// or the key form's), and a hash of its value.
    pub cookie_name: String,
    pub browser: String,
}

fn browser_hash(cookie: &str) -> String {
    crypto::token_hash(&format!("consent-browser:{cookie}"))
}

/// A sealed ticket for `request`, bound to this browser's cookie.
pub fn seal(
    keys: &Keyring,
    entropy: &dyn Entropy,
    request: AuthorizationRequest,
    principal: Principal,
    browser: &Browser,
    expires_at: u64,
) -> Result<String, EntropyError> {
    let ticket = Ticket {
        id: TicketId::mint(entropy)?,
        request,
        principal,
        expires_at,
        cookie_name: browser.cookie_name.clone(),
        browser: browser_hash(browser.cookie_value.secret()),
    };
    let json = serde_json::to_vec(&ticket).map_err(|_| EntropyError)?;
    keys.seal(entropy, &json, TICKET_AAD)
}

/// The CSRF token for a ticket in this browser.
pub fn csrf_token(keys: &Keyring, ticket: &str, cookie: &str) -> String {
    keys.sign(CSRF_PURPOSE, format!("{ticket}\n{cookie}").as_bytes())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// A consent post whose ticket, browser and CSRF token checked out.
#[derive(Debug)]
pub struct ConsentPost {
    pub ticket: Ticket,
    /// Sealed by the previous release (no key id): its single use is
    /// recorded in the client's legacy ledger, as it was then.
    pub legacy: bool,
    pub who: Who,
    pub decision: Decision,
}

/// Opens and checks a posted form (`ticket`, `csrf`, `decision`) against
/// the ticket's login cookie in `headers`.
pub fn check(
    keys: &Keyring,
    form: &Params,
    headers: &Headers,
    now: u64,
    allowed_domains: &[String],
) -> Result<ConsentPost, ConsentError> {
    let sealed = form.get("ticket").ok_or(ConsentError::BadTicket)?;
    let ticket: Ticket = keys
        .open(sealed, TICKET_AAD)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|t: &Ticket| now < t.expires_at)
        .ok_or(ConsentError::BadTicket)?;
    let cookie =
        read_login_cookie(headers, &ticket.cookie_name).ok_or(ConsentError::OtherBrowser)?;
    if !ct_eq(browser_hash(&cookie).as_bytes(), ticket.browser.as_bytes()) {
        return Err(ConsentError::OtherBrowser);
    }
    let csrf_ok = form
        .get("csrf")
        .is_some_and(|c| keys.verify(CSRF_PURPOSE, format!("{sealed}\n{cookie}").as_bytes(), c));
    if !csrf_ok {
        return Err(ConsentError::Csrf);
    }
    let decision = match form.get("decision").map(String::as_str) {
        Some("approve") => Decision::Approve,
        Some("deny") => Decision::Deny,
        _ => return Err(ConsentError::NoDecision),
    };
    let who = match &ticket.principal {
        // The email was admitted at login; re-admitting re-checks the
        // gate against the current configuration.
        Principal::Person { email } => Who::Person(
            identity::admit(email.secret(), Some(true), allowed_domains)
                .map_err(|_| ConsentError::BadTicket)?,
        ),
        // Plausible accepted the key moments ago, on the key form; the
        // email gate is not for key holders.
        Principal::Key { key, sites } => Who::Key(KeyHolder {
            key: key.clone(),
            sites: sites.clone(),
        }),
    };
    Ok(ConsentPost {
        ticket,
        legacy: !sealed.contains('.'),
        who,
        decision,
    })
}

/// The consent page to show, with its sealed ticket and CSRF token.
#[derive(Debug)]
pub struct ConsentPage {
    pub client: ClientRecord,
    pub request: AuthorizationRequest,
    pub who: Who,
    pub ticket: String,
    pub csrf: String,
}

impl ConsentPage {
    pub fn response(&self) -> Response {
        let scopes = self
            .request
            .scope
            .to_param()
            .split(' ')
            .map(|s| {
                let meaning = match (s, &self.who) {
                    ("mcp", Who::Key(_)) => "read the statistics of the sites below with your Plausible API key, through this server's tools",
                    ("mcp", Who::Person(_)) => "read your organisation's Plausible Analytics statistics through this server's tools",
                    _ => "",
                };
                (s.to_owned(), meaning)
            })
            .collect::<Vec<_>>();
        let source = match self.client.source {
            ClientSource::Registered => "registered itself with this server",
            ClientSource::MetadataDocument => "is identified by its published metadata document",
        };
        let redirect_origin = self.request.redirect_uri.origin();
        // At most the key's last four characters: enough for a person to
        // tell which of their keys this is, never enough to matter.
        let (email, key) = match &self.who {
            Who::Person(identity) => (identity.email(), None),
            Who::Key(holder) => {
                let secret = holder.key.secret();
                let tail = secret
                    .char_indices()
                    .rev()
                    .nth(3)
                    .map_or("", |(at, _)| secret.get(at..).unwrap_or(""));
                ("", Some((tail, holder.sites.as_slice())))
            }
        };
        pages::consent_page(&ConsentView {
            client_name: self.client.display_name(),
            client_id: self.client.client_id.as_str(),
            client_source: source,
            redirect_host: self.request.redirect_uri.host(),
            redirect_origin: &redirect_origin,
            scopes: scopes.iter().map(|(s, m)| (s.as_str(), *m)).collect(),
            email,
            key: key.map(|(tail, sites)| KeyView { tail, sites }),
            ticket: &self.ticket,
            csrf: &self.csrf,
        })
    }
}

/// Where the flow goes after a login.
#[derive(Debug)]
pub enum AfterLogin {
    /// A recorded consent covers the request: issue a code.
    Issue(Consented, Browser),
    /// Ask the person.
    Ask(ConsentPage),
}

/// Whether this person's recorded consent covers the request. It is
/// looked up in the pair's grant object; when that holds none and the
/// client's legacy ledger may hold one of this person's, once, in that
/// ledger under the previous release's user key, and
/// a covering record found there is copied forward into the pair's
/// object (so the legacy object is asked at most until the pair has a
/// consent of its own).
pub async fn consent_covers<P: Platform>(
    platform: &P,
    user_keys: &UserKeys,
    request: &AuthorizationRequest,
    email: &str,
    consent_ttl_secs: u64,
) -> Result<bool, StorageError> {
    let now = platform.now().as_secs();
    let covers =
        |record: &ConsentRecord| record.covers(request) && record.is_current(now, consent_ttl_secs);
    let user = UserKey::of_email(user_keys, email);
    let pair = Ledger::pair(
        platform,
        RoutingId::of(user_keys, request.client_id.as_str(), &user),
    );
    if let Some(record) = pair.consent(user.clone()).await? {
        return Ok(covers(&record));
    }
    // The legacy ledger only for a user it may hold a consent of: its set
    // is asked once per isolate, not once per sign-in (see
    // `ledger::legacy_consents`), so new users do not queue behind it.
    let legacy_user = UserKey::legacy_of_email(email);
    if !legacy_users(platform, &request.client_id)
        .await
        .may_hold(&legacy_user)
    {
        return Ok(false);
    }
    let legacy = Ledger::of(platform, &request.client_id)
        .consent(legacy_user)
        .await?;
    match legacy {
        Some(record) if covers(&record) => {
            pair.record_consent(user, record).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Consent once per user and client, again when the redirect URI or
/// scopes change.
pub async fn after_login<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    keys: FlowKeys<'_>,
    logged_in: LoggedIn,
) -> Result<AfterLogin, FlowError> {
    let LoggedIn {
        request,
        identity,
        browser,
    } = logged_in;
    let covered = consent_covers(
        platform,
        keys.user,
        &request,
        identity.email(),
        server.settings.lifetimes.consent.as_secs(),
    )
    .await
    .map_err(|e| FlowError::Unavailable {
        step: "consent lookup",
        cause: e,
    })?;
    if covered {
        return Ok(AfterLogin::Issue(
            Consented {
                request,
                who: Who::Person(identity),
            },
            browser,
        ));
    }
    let keys = keys.ring;
    let client = match registry::find(
        platform,
        server.fetch_policy(),
        &server.reached,
        &request.client_id,
    )
    .await
    {
        Ok(Some(c)) => c,
        Ok(None) | Err(registry::LookupError::Metadata(_)) => {
            return Err(FlowError::Request(PageError::UnknownClient));
        }
        Err(registry::LookupError::Storage(e)) => {
            return Err(FlowError::Unavailable {
                step: "client lookup after login",
                cause: e,
            });
        }
    };
    let expires_at = platform.now().plus(LOGIN_LIFETIME).as_secs();
    let who = Who::Person(identity);
    Ok(AfterLogin::Ask(ask(
        keys, platform, client, request, who, &browser, expires_at,
    )?))
}

/// The consent page for `request`, its ticket sealed for `who` and bound
/// to `browser` (the login's cookie, or the key form's).
pub fn ask(
    keys: &Keyring,
    entropy: &dyn Entropy,
    client: ClientRecord,
    request: AuthorizationRequest,
    who: Who,
    browser: &Browser,
    expires_at: u64,
) -> Result<ConsentPage, FlowError> {
    let ticket = seal(
        keys,
        entropy,
        request.clone(),
        who.principal(),
        browser,
        expires_at,
    )
    .map_err(|_| FlowError::Entropy)?;
    let csrf = csrf_token(keys, &ticket, browser.cookie_value.secret());
    Ok(ConsentPage {
        client,
        request,
        who,
        ticket,
        csrf,
    })
}

/// The person's answer, checked and recorded.
#[derive(Debug)]
pub enum Decided {
    Approve(Box<Consented>),
    Deny(Box<RedirectError>),
}

/// `POST /consent`: checks the form, spends the ticket, records an
/// approval. Returns the decision and the login cookie to clear.
pub async fn decide<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    flow_keys: FlowKeys<'_>,
    headers: &Headers,
    body: &[u8],
) -> Result<(Decided, String), FlowError> {
    let keys = flow_keys.ring;
    // A form post from any other origin is refused outright (CSRF
    // defence in depth, beside the token).
    if headers
        .get("origin")
        .is_some_and(|o| o != server.issuer.as_str())
    {
        return Err(FlowError::ForeignOrigin);
    }
    let form = form(headers, body).map_err(|_| FlowError::Consent(ConsentError::BadTicket))?;
    let now = platform.now().as_secs();
    let post = check(
        keys,
        &form,
        headers,
        now,
        &server.settings.allowed_email_domains,
    )
    .map_err(FlowError::Consent)?;
    let ticket = post.ticket;
    let fresh = if post.legacy {
        Ledger::of(platform, &ticket.request.client_id)
            .consume_nonce(ticket.id.clone(), ticket.expires_at)
            .await
            .map(|r| r.is_ok())
    } else {
        used::spend(platform, &Once::Ticket(&ticket.id), ticket.expires_at).await
    };
    match fresh {
        Ok(true) => {}
        Ok(false) => return Err(FlowError::TicketUsed),
        Err(e) => {
            return Err(FlowError::Unavailable {
                step: "consent ticket",
                cause: e,
            });
        }
    }
    let user = post.who.user(flow_keys.user);
    let (event, outcome) = match post.decision {
        Decision::Deny => (Event::ConsentDenied, Outcome::Refused),
        Decision::Approve => (Event::ConsentGiven, Outcome::Success),
    };
    let mut audited = Record::new(event, outcome)
        .client(&ticket.request.client_id)
        .user(&user);
    if let Some(identity) = post.who.identity() {
        audited = audited.email(identity);
    }
    let decided = match post.decision {
        Decision::Deny => {
            server.audit(platform, audited);
            Decided::Deny(Box::new(
                ticket
                    .request
                    .error(RedirectErrorCode::AccessDenied, "the user denied access"),
            ))
        }
        Decision::Approve => {
            let record = ConsentRecord {
                redirect_uri: ticket.request.redirect_uri.clone(),
                scope: ticket.request.scope.clone(),
                approved_at: now,
            };
            let routing = RoutingId::of(flow_keys.user, ticket.request.client_id.as_str(), &user);
            Ledger::pair(platform, routing)
                .record_consent(user.clone(), record)
                .await
                .map_err(|e| FlowError::Unavailable {
                    step: "consent record",
                    cause: e,
                })?;
            server.audit(platform, audited);
            Decided::Approve(Box::new(Consented {
                request: ticket.request,
                who: post.who,
            }))
        }
    };
    Ok((decided, ticket.cookie_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::types::{ClientId, CodeChallenge, RedirectUri, ScopeSet, State};
    use crate::secret::CookieValue;
    use crate::testing::{FakePlatform, client_record, keys, resource};
    use std::collections::HashMap;

    fn domains() -> Vec<String> {
        vec!["example.com".into()]
    }

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: ClientId::parse("pmcp_client_A").unwrap(),
            redirect_uri: RedirectUri::parse("https://app.example/cb").unwrap(),
            redirect_uri_given: true,
            state: State::parse("s"),
            scope: ScopeSet::parse(None).unwrap(),
            code_challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
                .unwrap(),
            resource: resource("https://mcp.example.com/internal"),
        }
    }

    const COOKIE: &str = "__Host-pmcp_login_test";

    fn browser(value: &str) -> Browser {
        Browser {
            cookie_name: COOKIE.into(),
            cookie_value: CookieValue::new(value),
        }
    }

    fn jar(value: Option<&str>) -> Headers {
        let mut h = Headers::new();
        if let Some(v) = value {
            h.append("cookie", format!("{COOKIE}={v}"));
        }
        h
    }

    fn form(ticket: &str, csrf: &str, decision: &str) -> HashMap<String, String> {
        [("ticket", ticket), ("csrf", csrf), ("decision", decision)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn a_ticket_posted_from_its_browser_is_accepted() {
        let k = keys();
        let id = identity::admit("alice@example.com", None, &domains()).unwrap();
        let ticket = seal(
            &k,
            &FakePlatform::new(),
            request(),
            Principal::person(&id),
            &browser("cookie-1"),
            1000,
        )
        .unwrap();
        assert!(!ticket.contains("alice"));
        let csrf = csrf_token(&k, &ticket, "cookie-1");
        let ok = check(
            &k,
            &form(&ticket, &csrf, "approve"),
            &jar(Some("cookie-1")),
            999,
            &domains(),
        )
        .unwrap();
        assert_eq!(ok.decision, Decision::Approve);
        assert_eq!(ok.ticket.request, request());
        let deny = check(
            &k,
            &form(&ticket, &csrf, "deny"),
            &jar(Some("cookie-1")),
            999,
            &domains(),
        )
        .unwrap();
        assert_eq!(deny.decision, Decision::Deny);
    }

    /// Issue 15: a key holder's ticket carries the key and sites sealed,
    /// passes no email gate, and a person's ticket keeps the shape the
    /// previous release sealed (a bare `email`).
    #[test]
    fn key_tickets_carry_the_key_sealed_and_person_tickets_keep_their_shape() {
        let k = keys();
        let principal = Principal::Key {
            key: crate::secret::PlausibleKey::new("plausible-key-9876"),
            sites: vec!["example.com".into()],
        };
        let sealed = seal(
            &k,
            &FakePlatform::new(),
            request(),
            principal,
            &browser("cookie-1"),
            1000,
        )
        .unwrap();
        let csrf = csrf_token(&k, &sealed, "cookie-1");
        let post = check(
            &k,
            &form(&sealed, &csrf, "approve"),
            &jar(Some("cookie-1")),
            999,
            &[],
        )
        .unwrap();
        match &post.who {
            Who::Key(holder) => {
                assert_eq!(holder.key.secret(), "plausible-key-9876");
                assert_eq!(holder.sites, ["example.com"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{post:?}").contains("plausible-key-9876"));
        let opened = k.open(&sealed, TICKET_AAD).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&opened).unwrap();
        assert_eq!(json["key"]["sites"][0], "example.com");
        assert!(json.get("email").is_none());
        let id = identity::admit("alice@example.com", None, &domains()).unwrap();
        let person = seal(
            &k,
            &FakePlatform::new(),
            request(),
            Principal::person(&id),
            &browser("cookie-1"),
            1000,
        )
        .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&k.open(&person, TICKET_AAD).unwrap()).unwrap();
        assert_eq!(json["email"], "alice@example.com");
        assert!(json.get("key").is_none());
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn forged_or_foreign_posts_are_refused() {
        let k = keys();
        let id = identity::admit("alice@example.com", None, &domains()).unwrap();
        let ticket = seal(
            &k,
            &FakePlatform::new(),
            request(),
            Principal::person(&id),
            &browser("cookie-1"),
            1000,
        )
        .unwrap();
        let csrf = csrf_token(&k, &ticket, "cookie-1");
        let cases: Vec<(
            &str,
            HashMap<String, String>,
            Option<&str>,
            u64,
            Vec<String>,
            ConsentError,
        )> = vec![
            (
                "expired",
                form(&ticket, &csrf, "approve"),
                Some("cookie-1"),
                1000,
                domains(),
                ConsentError::BadTicket,
            ),
            (
                "garbled ticket",
                form("xxxx", &csrf, "approve"),
                Some("cookie-1"),
                999,
                domains(),
                ConsentError::BadTicket,
            ),
            (
                "no cookie",
                form(&ticket, &csrf, "approve"),
                None,
                999,
                domains(),
                ConsentError::OtherBrowser,
            ),
            (
                "other browser",
                form(&ticket, &csrf, "approve"),
                Some("cookie-2"),
                999,
                domains(),
                ConsentError::OtherBrowser,
            ),
            (
                "missing csrf",
                form(&ticket, "", "approve"),
                Some("cookie-1"),
                999,
                domains(),
                ConsentError::Csrf,
            ),
            (
                "wrong csrf",
                form(&ticket, &csrf_token(&k, &ticket, "cookie-2"), "approve"),
                Some("cookie-1"),
                999,
                domains(),
                ConsentError::Csrf,
            ),
            (
                "no decision",
                form(&ticket, &csrf, "maybe"),
                Some("cookie-1"),
                999,
                domains(),
                ConsentError::NoDecision,
            ),
            (
                "domain removed since",
                form(&ticket, &csrf, "approve"),
                Some("cookie-1"),
                999,
                vec!["other.com".into()],
                ConsentError::BadTicket,
            ),
        ];
        for (name, f, cookie, now, allowed, expected) in cases {
            assert_eq!(
                check(&k, &f, &jar(cookie), now, &allowed).unwrap_err(),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn the_page_escapes_the_client_and_names_everything() {
        let mut client = client_record("pmcp_client_A", &[]);
        client.client_name = Some("<script>alert(1)</script> Evil & Co".into());
        let page = ConsentPage {
            client,
            request: request(),
            who: Who::Person(identity::admit("alice@example.com", None, &domains()).unwrap()),
            ticket: "T".into(),
            csrf: "C".into(),
        };
        let r = page.response();
        let html = String::from_utf8(r.body).unwrap();
        assert!(!html.contains("<script>alert(1)"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; Evil &amp; Co"));
        assert!(
            html.contains("app.example")
                && html.contains("alice@example.com")
                && html.contains("<code>mcp</code>")
        );
        assert!(html.contains("name=\"csrf\" value=\"C\""));
        assert!(
            r.headers
                .get("content-security-policy")
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }

    #[test]
    fn tickets_and_posts_never_print_the_email() {
        let id = identity::admit("alice@example.com", None, &domains()).unwrap();
        let k = keys();
        let sealed = seal(
            &k,
            &FakePlatform::new(),
            request(),
            Principal::person(&id),
            &browser("cookie-1"),
            1000,
        )
        .unwrap();
        let csrf = csrf_token(&k, &sealed, "cookie-1");
        let post = check(
            &k,
            &form(&sealed, &csrf, "approve"),
            &jar(Some("cookie-1")),
            999,
            &domains(),
        )
        .unwrap();
        assert!(!format!("{post:?}").contains("alice"), "{post:?}");
    }

    /// Consents expire (`CONSENT_TTL_DAYS`): a recorded consent covers the
    /// same request until its lifetime is over, then the page asks again.
    #[test]
    fn a_consent_covers_until_it_expires() {
        use crate::ports::Clock;
        let p = FakePlatform::new();
        let user_keys = crate::testing::user_keys();
        let email = "alice@example.com";
        let user = UserKey::of_email(&user_keys, email);
        let ttl = 90 * 86400;
        let routing = RoutingId::of(&user_keys, request().client_id.as_str(), &user);
        crate::testing::block_on(Ledger::pair(&p, routing).record_consent(
            user,
            ConsentRecord {
                redirect_uri: request().redirect_uri,
                scope: request().scope,
                approved_at: p.now().as_secs(),
            },
        ))
        .unwrap();
        let covers = || {
            crate::testing::block_on(consent_covers(&p, &user_keys, &request(), email, ttl))
                .unwrap()
        };
        assert!(covers());
        p.advance(std::time::Duration::from_secs(ttl - 1));
        assert!(covers());
        p.advance(std::time::Duration::from_secs(1));
        assert!(!covers(), "asked again after CONSENT_TTL_DAYS");
    }
}
