//! The consent ticket (issue 11's single-use approval, issue 15's
//! principal and site offer): what the consent form carries sealed with
//! AES-256-GCM, bound to the browser's cookie, and how a post of it is
//! checked (the ticket, the browser, the CSRF token, the decision, the
//! site choice) before anything is spent.

use serde::{Deserialize, Serialize};

use super::error::ConsentError;
use super::login::{Browser, read_login_cookie};
use super::principal::{KeyHolder, Principal, Who};
use super::sites::{AllSites, GrantSites, SiteOffer};
use crate::crypto::{self, Keyring};
use crate::http::{Headers, Params};
use crate::identity;
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::ids::TicketId;
use crate::ports::{Entropy, EntropyError};
use crate::secret::ct_eq;

pub(super) const TICKET_AAD: &str = "consent-ticket";
pub(super) const CSRF_PURPOSE: &str = "consent-csrf";

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
    /// The sites the chooser offered (issue 15; `None`: only "all
    /// sites"). Sealed with the rest, so a post can choose only these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_sites: Option<Vec<String>>,
}

impl Ticket {
    /// What this ticket's page offered, and so what its post may choose.
    /// A key grant's ticket (`/mcp`) is the one place that passes
    /// [`AllSites::NotOffered`].
    pub fn site_offer(&self) -> SiteOffer {
        let all = match self.principal {
            Principal::Person { .. } => AllSites::Offered,
            Principal::Key { .. } => AllSites::NotOffered,
        };
        SiteOffer::new(all, self.offered_sites.clone())
    }
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
    offered_sites: Option<Vec<String>>,
) -> Result<String, EntropyError> {
    let ticket = Ticket {
        id: TicketId::mint(entropy)?,
        request,
        principal,
        expires_at,
        cookie_name: browser.cookie_name.clone(),
        browser: browser_hash(browser.cookie_value.secret()),
        offered_sites,
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
    /// The sites chosen, when approving (`None`: all sites).
    pub sites: GrantSites,
}

/// Opens and checks a posted form (`ticket`, `csrf`, `decision`, and the
/// site choice: `all_sites` and the `site` fields, `picked_sites`)
/// against the ticket's login cookie in `headers`.
pub fn check(
    keys: &Keyring,
    form: &Params,
    picked_sites: &[String],
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
    // Refused before anything is spent: the person can go back and
    // choose again on the same page.
    let sites = match decision {
        Decision::Approve => ticket
            .site_offer()
            .choose(form.get("all_sites").map(String::as_str), picked_sites)?,
        Decision::Deny => None,
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
        sites,
    })
}
