//! Per-user, per-client consent (the MCP "confused deputy" defence: a
//! proxy with one upstream client id must ask each user before each new
//! client gets tokens).
//!
//! After login, the pending approval travels in a ticket sealed with
//! AES-256-GCM (its contents are neither readable nor forgeable), bound to
//! the login cookie, single use, and valid for 10 minutes. The form also
//! carries a CSRF token: an HMAC over the ticket and the cookie value,
//! which a cross-site page cannot compute.

use serde::{Deserialize, Serialize};

use super::authorize::AuthorizationRequest;
use super::clients::ClientRecord;
use super::identity::{self, Identity};
use crate::crypto::{self, Keys};
use crate::pages::{self, escape};
use crate::ports::{Entropy, EntropyError};
use crate::secret::ct_eq;

const TICKET_AAD: &str = "consent-ticket";
const CSRF_PURPOSE: &str = "consent-csrf";

/// What a consent ticket holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub request: AuthorizationRequest,
    /// The signed-in email (sealed inside the ticket).
    pub email: String,
    pub expires_at: u64,
    /// The login cookie the ticket is bound to, and a hash of its value.
    pub cookie_name: String,
    pub browser: String,
}

fn browser_hash(cookie: &str) -> String {
    crypto::token_hash(&format!("consent-browser:{cookie}"))
}

/// A sealed ticket for `request`, bound to this browser's cookie.
pub fn seal(
    keys: &Keys,
    entropy: &dyn Entropy,
    request: AuthorizationRequest,
    identity: &Identity,
    cookie_name: &str,
    cookie: &str,
    expires_at: u64,
) -> Result<String, EntropyError> {
    let ticket = Ticket {
        id: crypto::mint(entropy, "t_")?,
        request,
        email: identity.email().to_owned(),
        expires_at,
        cookie_name: cookie_name.to_owned(),
        browser: browser_hash(cookie),
    };
    let json = serde_json::to_vec(&ticket).map_err(|_| EntropyError)?;
    keys.seal(entropy, &json, TICKET_AAD)
}

/// The CSRF token for a ticket in this browser.
pub fn csrf_token(keys: &Keys, ticket: &str, cookie: &str) -> String {
    keys.sign(CSRF_PURPOSE, format!("{ticket}\n{cookie}").as_bytes())
}

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
}

impl ConsentError {
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
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// A checked consent post.
#[derive(Debug)]
pub struct Checked {
    pub ticket: Ticket,
    pub identity: Identity,
    pub decision: Decision,
}

/// Opens and checks a posted form (`ticket`, `csrf`, `decision`) against
/// the ticket's login cookie in `headers`.
pub fn check(
    keys: &Keys,
    form: &std::collections::HashMap<String, String>,
    headers: &crate::http::Headers,
    now: u64,
    allowed_domains: &[String],
) -> Result<Checked, ConsentError> {
    let sealed = form.get("ticket").ok_or(ConsentError::BadTicket)?;
    let ticket: Ticket = keys
        .open(sealed, TICKET_AAD)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|t: &Ticket| now < t.expires_at)
        .ok_or(ConsentError::BadTicket)?;
    let cookie = crate::oidc::login::cookie(headers, &ticket.cookie_name)
        .ok_or(ConsentError::OtherBrowser)?;
    if !ct_eq(browser_hash(cookie).as_bytes(), ticket.browser.as_bytes()) {
        return Err(ConsentError::OtherBrowser);
    }
    let csrf_ok = form
        .get("csrf")
        .is_some_and(|c| ct_eq(c.as_bytes(), csrf_token(keys, sealed, cookie).as_bytes()));
    if !csrf_ok {
        return Err(ConsentError::Csrf);
    }
    let decision = match form.get("decision").map(String::as_str) {
        Some("approve") => Decision::Approve,
        Some("deny") => Decision::Deny,
        _ => return Err(ConsentError::NoDecision),
    };
    // The email was admitted at login; re-admitting re-checks the gate
    // against the current configuration.
    let identity = identity::admit(&ticket.email, Some(true), allowed_domains)
        .map_err(|_| ConsentError::BadTicket)?;
    Ok(Checked {
        ticket,
        identity,
        decision,
    })
}

/// The consent page: who is asking, where it will send you, what it may
/// do, and as whom.
pub fn page(
    client: &ClientRecord,
    request: &AuthorizationRequest,
    identity: &Identity,
    ticket: &str,
    csrf: &str,
) -> crate::http::Response {
    let scopes: String = request
        .scope
        .to_param()
        .split(' ')
        .map(|s| {
            let meaning = match s {
                "mcp" => "read your organisation's Plausible Analytics statistics through this server's tools",
                _ => "",
            };
            format!("<li><code>{}</code> — {}</li>", escape(s), escape(meaning))
        })
        .collect();
    let source = match client.source {
        super::clients::ClientSource::Registered => "registered itself with this server",
        super::clients::ClientSource::MetadataDocument => {
            "is identified by its published metadata document"
        }
    };
    let body = format!(
        "<h1>Allow {name} to access Plausible Analytics?</h1>\
<div class=\"box\"><dl>\
<dt>Application</dt><dd>{name} <span class=\"muted\">(client id <code>{id}</code>; it {source})</span></dd>\
<dt>After approval you will be sent to</dt><dd><code>{host}</code></dd>\
<dt>It will be able to</dt><dd><ul>{scopes}</ul></dd>\
<dt>Signed in as</dt><dd>{email}</dd>\
</dl></div>\
<form method=\"post\" action=\"/consent\">\
<input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></div></form>\
<p class=\"muted\">Only approve applications you are connecting yourself. You can revoke access by disconnecting the application.</p>",
        name = escape(client.display_name()),
        id = escape(client.client_id.as_str()),
        host = escape(request.redirect_uri.host()),
        email = escape(identity.email()),
        ticket = escape(ticket),
        csrf = escape(csrf),
    );
    let redirect_origin = request.redirect_uri.origin();
    pages::page_with_forms(200, "Approve access", &body, &["'self'", &redirect_origin])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::clients::{AuthMethod, ClientSource};
    use crate::oauth::types::{ClientId, CodeChallenge, RedirectUri, ScopeSet};
    use crate::secret::ServerSecret;
    use crate::testing::FakePlatform;
    use std::collections::HashMap;

    fn keys() -> Keys {
        Keys::derive(&ServerSecret::new("0123456789abcdef0123456789abcdef")).unwrap()
    }

    fn domains() -> Vec<String> {
        vec!["example.com".into()]
    }

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: ClientId::parse("pmcp_client_A").unwrap(),
            redirect_uri: RedirectUri::parse("https://app.example/cb").unwrap(),
            redirect_uri_given: true,
            state: Some("s".into()),
            scope: ScopeSet::parse(None).unwrap(),
            code_challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
                .unwrap(),
            resource: "https://mcp.example.com/internal".into(),
        }
    }

    const COOKIE: &str = "__Host-pmcp_login_test";

    fn jar(value: Option<&str>) -> crate::http::Headers {
        let mut h = crate::http::Headers::new();
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
            &id,
            COOKIE,
            "cookie-1",
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

    #[test]
    #[allow(clippy::type_complexity)]
    fn forged_or_foreign_posts_are_refused() {
        let k = keys();
        let id = identity::admit("alice@example.com", None, &domains()).unwrap();
        let ticket = seal(
            &k,
            &FakePlatform::new(),
            request(),
            &id,
            COOKIE,
            "cookie-1",
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
        let client = ClientRecord {
            client_id: ClientId::parse("pmcp_client_A").unwrap(),
            client_name: Some("<script>alert(1)</script> Evil & Co".into()),
            client_uri: None,
            redirect_uris: vec![],
            auth_method: AuthMethod::None,
            secret_hash: None,
            source: ClientSource::Registered,
            created_at: 0,
            expires_at: u64::MAX,
        };
        let id = identity::admit("alice@example.com", None, &domains()).unwrap();
        let r = page(&client, &request(), &id, "T", "C");
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
}
