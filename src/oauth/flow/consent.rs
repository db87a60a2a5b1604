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

use super::error::{ConsentError, FlowError};
use super::keys::FlowKeys;
use super::login::{Browser, LOGIN_LIFETIME, LoggedIn};
use super::sites::{AllSites, GrantSites, SiteOffer};
use crate::crypto::Keyring;
use crate::crypto::UserKeys;
use crate::http::{Headers, Response, form_with_list};
use crate::oauth::authorize::{AuthorizationRequest, PageError, RedirectError, RedirectErrorCode};
use crate::oauth::clients::record::{ClientRecord, ClientSource};
use crate::oauth::clients::registry;
use crate::oauth::ids::{RoutingId, UserKey};
use crate::oauth::ledger::client::Ledger;
use crate::oauth::ledger::legacy_consents::legacy_users;
use crate::oauth::ledger::records::ConsentRecord;
use crate::oauth::scope::{Scope, ScopeSet};
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::used::{self, Once};
use crate::pages::{self, ConsentView, KeyView, SiteChooser};
use crate::plausible::context::ToolContext;
use crate::ports::{Entropy, StorageError};

pub use super::principal::{KeyHolder, Who};
use super::ticket::{Decision, check, csrf_token, seal};

/// Proof that this person approved this request for this client. A code
/// can only be issued from one (`issue::issue_code`). Its fields are
/// private: only this module builds it, from a recorded consent that
/// covers the request, from an Approve post, or for the test-only
/// identity hook.
#[derive(Debug)]
pub struct Consented {
    request: AuthorizationRequest,
    who: Who,
    /// The sites the person chose, or a recorded consent's (issue 15).
    sites: GrantSites,
}

impl Consented {
    pub fn request(&self) -> &AuthorizationRequest {
        &self.request
    }

    pub fn who(&self) -> &Who {
        &self.who
    }

    /// The sites the grant may read (`None`: all).
    pub fn sites(&self) -> Option<&[String]> {
        self.sites.as_deref()
    }

    /// Any proof at all, for tests of what `issue_code` refuses.
    #[cfg(test)]
    pub(super) fn for_tests(request: AuthorizationRequest, who: Who, sites: GrantSites) -> Self {
        Self {
            request,
            who,
            sites,
        }
    }

    /// The test-only identity hook's proof (`X-Test-Identity`, loopback
    /// hosts only): it stands for a person who signed in and approved.
    #[cfg(feature = "test-hooks")]
    pub(super) fn by_test_identity(
        server: &AuthServer<'_>,
        request: AuthorizationRequest,
        identity: crate::identity::Identity,
    ) -> Option<Self> {
        server.test_identity_hook().then_some(Self {
            request,
            who: Who::Person(identity),
            sites: None,
        })
    }
}

/// The consent page to show, with its sealed ticket and CSRF token.
#[derive(Debug)]
pub struct ConsentPage {
    pub client: ClientRecord,
    pub request: AuthorizationRequest,
    pub who: Who,
    pub ticket: String,
    pub csrf: String,
    /// The scopes this person already approved for this client and
    /// redirect endpoint: the page asks only for the rest (incremental
    /// consent, MCP 2025-11-25 "Step-Up Authorization Flow").
    pub approved_before: Option<ScopeSet>,
    /// The site chooser's choices (as sealed in the ticket).
    pub sites: SiteOffer,
}

impl ConsentPage {
    pub fn response(&self) -> Response {
        let (new, granted) = self.request.scope.split_by(self.approved_before.as_ref());
        let described = |list: &[Scope]| -> Vec<(&'static str, &'static str)> {
            list.iter().map(|s| (s.as_str(), s.meaning())).collect()
        };
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
                ("", Some(tail))
            }
        };
        pages::consent_page(&ConsentView {
            client_name: self.client.display_name(),
            client_id: self.client.client_id.as_str(),
            client_source: source,
            redirect_host: self.request.redirect_uri.host(),
            redirect_origin: &redirect_origin,
            scopes: described(&new),
            already_allowed: described(&granted),
            email,
            key: key.map(|tail| KeyView { tail }),
            ticket: &self.ticket,
            csrf: &self.csrf,
            sites: SiteChooser {
                all_offered: self.sites.all_offered(),
                listed: self.sites.listed(),
                cut: self.sites.cut(),
            },
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

/// This person's current (unexpired) consent for the request's client,
/// covering the request or not (the consent page shows what it already
/// allows). It is looked up in the pair's grant object; when that holds
/// none and the client's legacy ledger may hold one of this person's,
/// once, in that ledger under the previous release's user key, and a
/// covering record found there is copied forward into the pair's object
/// (so the legacy object is asked at most until the pair has a consent of
/// its own).
pub async fn current_consent<P: Platform>(
    platform: &P,
    user_keys: &UserKeys,
    request: &AuthorizationRequest,
    email: &str,
    consent_ttl_secs: u64,
) -> Result<Option<ConsentRecord>, StorageError> {
    let now = platform.now().as_secs();
    let current = |record: &ConsentRecord| record.is_current(now, consent_ttl_secs);
    let covers = |record: &ConsentRecord| record.covers(request) && current(record);
    let user = UserKey::of_email(user_keys, email);
    let pair = Ledger::pair(
        platform,
        RoutingId::of(user_keys, request.client_id.as_str(), &user),
    );
    if let Some(record) = pair.consent(user.clone()).await? {
        return Ok(current(&record).then_some(record));
    }
    // The legacy ledger only for a user it may hold a consent of: its set
    // is asked once per isolate, not once per sign-in (see
    // `ledger::legacy_consents`), so new users do not queue behind it.
    let legacy_user = UserKey::legacy_of_email(email);
    if !legacy_users(platform, &request.client_id)
        .await
        .may_hold(&legacy_user)
    {
        return Ok(None);
    }
    let legacy = Ledger::of(platform, &request.client_id)
        .consent(legacy_user)
        .await?;
    match legacy {
        Some(record) if covers(&record) => {
            pair.record_consent(user, record.clone()).await?;
            Ok(Some(record))
        }
        _ => Ok(None),
    }
}

/// What `user` still allows the request's client at the request's
/// redirect endpoint: the scope of a current consent recorded for the same
/// endpoint, for incremental consent (the page lists it as already
/// allowed and asks only for the rest). A key holder's consent is looked
/// up here, keyed on the key's user key; a person's goes through
/// [`current_consent`], which also reads the legacy ledger.
pub async fn allowed_before<P: Platform>(
    platform: &P,
    user_keys: &UserKeys,
    user: &UserKey,
    request: &AuthorizationRequest,
    consent_ttl_secs: u64,
) -> Result<Option<ScopeSet>, StorageError> {
    let now = platform.now().as_secs();
    let pair = Ledger::pair(
        platform,
        RoutingId::of(user_keys, request.client_id.as_str(), user),
    );
    Ok(pair
        .consent(user.clone())
        .await?
        .filter(|r| {
            r.redirect_uri.same_endpoint(&request.redirect_uri)
                && r.is_current(now, consent_ttl_secs)
        })
        .map(|r| r.scope))
}

/// Consent once per user and client, again when the redirect URI or
/// scopes change. A recorded consent's sites go to the new grant as
/// chosen then; the page offers the sites `directory` (the shared key's
/// context on `/internal`) lists, asked only when the page is shown.
pub async fn after_login<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    keys: FlowKeys<'_>,
    logged_in: LoggedIn,
    directory: Option<&ToolContext>,
) -> Result<AfterLogin, FlowError> {
    let LoggedIn {
        request,
        identity,
        browser,
    } = logged_in;
    let prior = current_consent(
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
    let offer = SiteOffer::new(AllSites::Offered, None);
    if let Some(sites) = prior
        .as_ref()
        .filter(|record| record.covers(&request))
        .and_then(|record| offer.reuse(record.sites.as_deref()))
    {
        return Ok(AfterLogin::Issue(
            Consented {
                request,
                who: Who::Person(identity),
                sites,
            },
            browser,
        ));
    }
    let approved_before = prior
        .filter(|record| record.redirect_uri.same_endpoint(&request.redirect_uri))
        .map(|record| record.scope);
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
    let offered = match directory {
        Some(ctx) => crate::plausible::site_offer::offerable(platform, ctx).await,
        None => None,
    };
    let sites = SiteOffer::new(AllSites::Offered, offered);
    let expires_at = platform.now().plus(LOGIN_LIFETIME).as_secs();
    let who = Who::Person(identity);
    Ok(AfterLogin::Ask(ask(
        keys,
        platform,
        Asked {
            client,
            request,
            who,
            sites,
            approved_before,
        },
        &browser,
        expires_at,
    )?))
}

/// What a consent page asks about.
pub struct Asked {
    pub client: ClientRecord,
    pub request: AuthorizationRequest,
    pub who: Who,
    /// The site chooser's choices.
    pub sites: SiteOffer,
    /// What this person already allowed this client here (incremental
    /// consent).
    pub approved_before: Option<ScopeSet>,
}

/// The consent page for `request`, its ticket sealed for `who` and bound
/// to `browser` (the login's cookie, or the key form's).
pub fn ask(
    keys: &Keyring,
    entropy: &dyn Entropy,
    asked: Asked,
    browser: &Browser,
    expires_at: u64,
) -> Result<ConsentPage, FlowError> {
    let Asked {
        client,
        request,
        who,
        sites,
        approved_before,
    } = asked;
    let ticket = seal(
        keys,
        entropy,
        request.clone(),
        who.principal(),
        browser,
        expires_at,
        Some(sites.listed().to_vec()).filter(|l| !l.is_empty()),
    )
    .map_err(|_| FlowError::Entropy)?;
    let csrf = csrf_token(keys, &ticket, browser.cookie_value.secret());
    Ok(ConsentPage {
        client,
        request,
        who,
        ticket,
        csrf,
        approved_before,
        sites,
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
    let (form, picked_sites) = form_with_list(headers, body, "site")
        .map_err(|_| FlowError::Consent(ConsentError::BadTicket))?;
    let now = platform.now().as_secs();
    let post = check(
        keys,
        &form,
        &picked_sites,
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
    if post.decision == Decision::Approve {
        // Which kind of grant was approved (issue 15); the sites
        // themselves are on `/connections`, not in the log.
        audited = audited.reason(match post.sites {
            None => "all sites",
            Some(_) => "chosen sites",
        });
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
            let routing = RoutingId::of(flow_keys.user, ticket.request.client_id.as_str(), &user);
            let pair = Ledger::pair(platform, routing);
            let unavailable = |e| FlowError::Unavailable {
                step: "consent record",
                cause: e,
            };
            // Incremental consent: what this person still allows this
            // client at this endpoint stays allowed beside what they just
            // approved (the page showed it as already allowed).
            let before = pair
                .consent(user.clone())
                .await
                .map_err(unavailable)?
                .filter(|r| {
                    r.redirect_uri.same_endpoint(&ticket.request.redirect_uri)
                        && r.is_current(now, server.settings.lifetimes.consent.as_secs())
                });
            let scope = match before {
                Some(r) => ticket.request.scope.union(&r.scope),
                None => ticket.request.scope.clone(),
            };
            let record = ConsentRecord {
                redirect_uri: ticket.request.redirect_uri.clone(),
                scope,
                approved_at: now,
                sites: post.sites.clone(),
            };
            pair.record_consent(user.clone(), record)
                .await
                .map_err(unavailable)?;
            server.audit(platform, audited);
            Decided::Approve(Box::new(Consented {
                request: ticket.request,
                who: post.who,
                sites: post.sites,
            }))
        }
    };
    Ok((decided, ticket.cookie_name))
}

#[cfg(test)]
mod tests {
    use super::super::principal::Principal;
    use super::super::ticket::TICKET_AAD;
    use super::*;
    use crate::identity;
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
            None,
        )
        .unwrap();
        assert!(!ticket.contains("alice"));
        let csrf = csrf_token(&k, &ticket, "cookie-1");
        let ok = check(
            &k,
            &form(&ticket, &csrf, "approve"),
            &[],
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
            &[],
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
            Some(vec!["example.com".into()]),
        )
        .unwrap();
        let csrf = csrf_token(&k, &sealed, "cookie-1");
        let post = check(
            &k,
            &form(&sealed, &csrf, "approve"),
            &["example.com".to_owned()],
            &jar(Some("cookie-1")),
            999,
            &[],
        )
        .unwrap();
        assert_eq!(post.sites, Some(vec!["example.com".to_owned()]));
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
            None,
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
            None,
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
                check(&k, &f, &[], &jar(cookie), now, &allowed).unwrap_err(),
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
            approved_before: None,
            sites: SiteOffer::new(AllSites::Offered, None),
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

    /// Incremental consent: a wider request from a client this person
    /// already allowed asks only for what is new, and lists the rest as
    /// already allowed; each scope says what it lets the client do.
    #[test]
    fn a_wider_request_asks_only_for_what_is_new() {
        let page = |scope: &str, before: Option<&str>| {
            let mut request = request();
            request.scope = ScopeSet::parse(Some(scope)).unwrap();
            let html = String::from_utf8(
                ConsentPage {
                    client: client_record("pmcp_client_A", &[]),
                    request,
                    who: Who::Person(
                        identity::admit("alice@example.com", None, &domains()).unwrap(),
                    ),
                    ticket: "T".into(),
                    csrf: "C".into(),
                    approved_before: before.map(|b| ScopeSet::parse(Some(b)).unwrap()),
                    sites: SiteOffer::new(AllSites::Offered, None),
                }
                .response()
                .body,
            )
            .unwrap();
            let list = |id: &str| -> Vec<String> {
                let Some(start) = html.find(&format!("<ul id=\"{id}\">")) else {
                    return Vec::new();
                };
                let end = start + html[start..].find("</ul>").unwrap();
                html[start..end]
                    .split("<code>")
                    .skip(1)
                    .map(|c| c[..c.find("</code>").unwrap()].to_owned())
                    .collect()
            };
            (list("scopes-asked"), list("scopes-allowed"), html.clone())
        };
        let (asked, allowed, html) = page("sites:read stats:read", Some("sites:read"));
        assert_eq!(
            (asked, allowed),
            (vec!["stats:read".to_owned()], vec!["sites:read".to_owned()])
        );
        assert!(html.contains("It asks to also") && html.contains(Scope::StatsRead.meaning()));
        let (asked, allowed, html) = page("sites:read stats:read", None);
        assert_eq!(asked, ["sites:read", "stats:read"]);
        assert!(allowed.is_empty() && html.contains("It will be able to"));
        assert!(!html.contains("Already allowed"));
        let (asked, allowed, _) = page("mcp", Some("stats:read"));
        assert_eq!((asked, allowed), (vec!["mcp".to_owned()], vec![]));
        // The umbrella with its parts is one permission, shown once.
        let (asked, allowed, html) = page("mcp sites:read stats:read", None);
        assert_eq!((asked, allowed), (vec!["mcp".to_owned()], vec![]));
        assert!(!html.contains(Scope::StatsRead.meaning()));
    }

    /// Issue 15: the fullest offer still makes a post inside the form
    /// ceiling, and a chosen site the ticket does not offer is refused
    /// (nothing spent: `check` runs before the ticket is used).
    #[test]
    fn a_full_offer_fits_the_form_and_binds_the_choice() {
        use super::super::sites::{MAX_CHOSEN_SITES, MAX_OFFERED_BYTES};
        let k = keys();
        let id = identity::admit("alice@example.com", None, &domains()).unwrap();
        let names: Vec<String> = (0..MAX_OFFERED_BYTES / 256)
            .map(|i| format!("{i:03}{}.example", "x".repeat(245)))
            .collect();
        let offer = SiteOffer::new(AllSites::Offered, Some(names.clone()));
        assert_eq!(offer.listed().len(), names.len());
        let ticket = seal(
            &k,
            &FakePlatform::new(),
            request(),
            Principal::person(&id),
            &browser("cookie-1"),
            1000,
            Some(offer.listed().to_vec()),
        )
        .unwrap();
        let csrf = csrf_token(&k, &ticket, "cookie-1");
        let picked: Vec<String> = names[..MAX_CHOSEN_SITES].to_vec();
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        body.extend_pairs([
            ("ticket", &ticket),
            ("csrf", &csrf),
            ("decision", &"approve".to_owned()),
        ]);
        for site in &picked {
            body.append_pair("site", site);
        }
        assert!(
            body.finish().len() < crate::limits::MAX_FORM_BODY_BYTES,
            "a full post fits the form ceiling"
        );
        let mut f = form(&ticket, &csrf, "approve");
        f.insert("all_sites".into(), "0".into());
        let ok = check(&k, &f, &picked, &jar(Some("cookie-1")), 999, &domains()).unwrap();
        assert_eq!(ok.sites, Some(picked));
        assert_eq!(
            check(
                &k,
                &f,
                &["other.example".to_owned()],
                &jar(Some("cookie-1")),
                999,
                &domains()
            )
            .unwrap_err(),
            ConsentError::SiteNotOffered
        );
        // Deny needs no choice.
        let deny = form(&ticket, &csrf, "deny");
        assert_eq!(
            check(&k, &deny, &[], &jar(Some("cookie-1")), 999, &domains())
                .unwrap()
                .sites,
            None
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
            None,
        )
        .unwrap();
        let csrf = csrf_token(&k, &sealed, "cookie-1");
        let post = check(
            &k,
            &form(&sealed, &csrf, "approve"),
            &[],
            &jar(Some("cookie-1")),
            999,
            &domains(),
        )
        .unwrap();
        assert!(!format!("{post:?}").contains("alice"), "{post:?}");
    }

    /// Whether this person's recorded consent covers the request.
    async fn consent_covers<P: Platform>(
        platform: &P,
        user_keys: &UserKeys,
        request: &AuthorizationRequest,
        email: &str,
        consent_ttl_secs: u64,
    ) -> Result<bool, StorageError> {
        Ok(
            current_consent(platform, user_keys, request, email, consent_ttl_secs)
                .await?
                .is_some_and(|record| record.covers(request)),
        )
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
                sites: None,
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
