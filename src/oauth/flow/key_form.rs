//! The key form of `/mcp` authorizations (issue 15): a person pastes their
//! Plausible API key and names the sites this connection may read; each
//! site is read once with the key; then the consent page, then the code.
//! No company sign-in: the key is the credential.
//!
//! validated request for `/mcp` → [`offer`] (the form, or a page naming
//! an unverified redirect host) → `POST /authorize/key` ([`submit`]):
//! the form again with what to fix, or the consent page
//! ([`consent::ask`]) for [`Who::Key`].
//!
//! Defences, each for a reason:
//! - Phishing: only clients whose redirect host an operator trusts
//!   (`BYOK_REDIRECT_HOSTS` over https on the default port, loopback over
//!   http always; see [`offered_to`]) are offered the form; any
//!   other sees its host named as unverified and no form, so a lookalike
//!   client cannot collect keys through our page.
//! - CSRF and binding: the pending request travels sealed (AES-256-GCM)
//!   in the form, bound to a random `__Host-` cookie set with the form
//!   (`SameSite=Strict`: only our own page posts it), with an HMAC of
//!   both as CSRF token (the same construction as the consent form). The
//!   consent ticket that follows is bound to the same cookie.
//! - Oracle: every post counts against a per-address rate limit (in
//!   `lib.rs`, tier `KeyForm`), and every answer Plausible gives for the
//!   first site gets one page: a refused key, an unreadable or unknown
//!   site, and also a 402 or a 429, which Plausible only gives a key it
//!   knows, so none tells a valid key from a wrong one. The audit line
//!   keeps the true reason (see [`Failed`]). After the first site the key
//!   is known good, and the page says exactly what went wrong.
//! - Nothing is written before the key validates; the key is never
//!   logged, never echoed back into the form, never shown again. A sites
//!   entry is quoted or re-filled only once it reads as a site id, and
//!   never when it is the key (fields swapped: see `entries`).

use serde::{Deserialize, Serialize};

use super::consent::{self, Asked, KeyHolder, Who};
use super::error::{ConsentError, FlowError};
use super::keys::FlowKeys;
use super::login::{Browser, LOGIN_LIFETIME, read_login_cookie};
use super::reply::Reply;
use super::sites::{AllSites, SiteOffer};
use crate::audit::{Event, Outcome, Record};
use crate::config::mcp::McpSettings;
use crate::crypto::{self, Keyring};
use crate::http::{Request, Response, form};
use crate::oauth::authorize::{AuthorizationRequest, PageError};
use crate::oauth::clients::record::ClientRecord;
use crate::oauth::clients::registry;
use crate::oauth::connections::block;
use crate::oauth::ids::{TicketId, TokenKind, UserKey};
use crate::oauth::key_grant;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::RedirectUri;
use crate::pages::{self, KeyFormView};
use crate::plausible::args::SiteId;
use crate::plausible::client::{PlausibleBaseUrl, PlausibleError};
use crate::ports::{Clock, Entropy, EntropyError, Outbound};
use crate::secret::{CookieValue, PlausibleKey, SetCookie, ct_eq};

mod entries;
mod problem;
use entries::Entry;
pub use problem::Problem;

const TICKET_AAD: &str = "key-form-ticket";
const CSRF_PURPOSE: &str = "key-form-csrf";
/// The key form's browser-binding cookie, named per form.
pub const KEY_COOKIE_PREFIX: &str = "__Host-pmcp_key_";
/// The most sites one connection may name (issue 15).
pub const MAX_SITES: usize = 20;

/// What the form carries, sealed.
#[derive(Debug, Serialize, Deserialize)]
struct FormTicket {
    id: TicketId,
    request: AuthorizationRequest,
    expires_at: u64,
    cookie_name: String,
    /// A hash of the cookie's value.
    browser: String,
}

fn browser_hash(cookie: &str) -> String {
    crypto::token_hash(&format!("key-form-browser:{cookie}"))
}

fn csrf_token(keys: &Keyring, ticket: &str, cookie: &str) -> String {
    keys.sign(CSRF_PURPOSE, format!("{ticket}\n{cookie}").as_bytes())
}

/// Whether a client redirecting to `redirect` is offered the form.
///
/// - A loopback host (RFC 8252 §7.3: `localhost`, 127.0.0.0/8, `[::1]`):
///   a native client on the person's own machine, over `http` on any
///   port (§7.3 lets it bind an ephemeral one). `https` to a loopback
///   host is no native-app redirect and is refused.
/// - Any other host: `https` on the default port, and the host exactly
///   one the operator listed (ASCII case-insensitive). A port other than
///   443 may be another service on the same name, not the one trusted.
///
/// The list names hosts, so every path on a listed host is trusted (the
/// README says so beside `BYOK_REDIRECT_HOSTS`).
pub fn offered_to(trusted: &[String], redirect: &RedirectUri) -> bool {
    let url = redirect.url();
    let Some(host) = url.host() else {
        return false;
    };
    let loopback = match &host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    if loopback {
        return url.scheme() == "http";
    }
    // `Url` drops a port that is the scheme's default, so `None` here
    // is 443 whether written or not.
    url.scheme() == "https"
        && url.port().is_none()
        && url
            .host_str()
            .is_some_and(|h| trusted.iter().any(|t| t.eq_ignore_ascii_case(h)))
}

/// A fresh form for `request`: its sealed ticket, CSRF token and cookie.
struct Fresh {
    ticket: String,
    csrf: String,
    set_cookie: SetCookie,
}

fn fresh(
    keys: &Keyring,
    entropy: &dyn Entropy,
    request: AuthorizationRequest,
    now: u64,
) -> Result<Fresh, EntropyError> {
    let id = TicketId::mint(entropy)?;
    let tag: String = crypto::short_hash(id.as_str()).chars().take(16).collect();
    let cookie_name = format!("{KEY_COOKIE_PREFIX}{tag}");
    let cookie_value = crypto::mint(entropy, "")?;
    let ticket = FormTicket {
        id,
        request,
        expires_at: now.saturating_add(LOGIN_LIFETIME.as_secs()),
        browser: browser_hash(&cookie_value),
        cookie_name: cookie_name.clone(),
    };
    let json = serde_json::to_vec(&ticket).map_err(|_| EntropyError)?;
    let sealed = keys.seal(entropy, &json, TICKET_AAD)?;
    let csrf = csrf_token(keys, &sealed, &cookie_value);
    // Strict: the form and the consent form are posted from our own
    // pages only, never reached by a cross-site navigation.
    let set_cookie = SetCookie::new(format!(
        "{cookie_name}={cookie_value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        LOGIN_LIFETIME.as_secs()
    ));
    Ok(Fresh {
        ticket: sealed,
        csrf,
        set_cookie,
    })
}

/// What the form page shows besides its hidden fields.
struct Shown<'a> {
    client: &'a ClientRecord,
    request: &'a AuthorizationRequest,
    sites: &'a str,
    problem: Option<&'a Problem>,
}

fn page(shown: &Shown<'_>, ticket: &str, csrf: &str) -> Response {
    let problem = shown.problem.map(Problem::message);
    pages::key_form_page(&KeyFormView {
        status: shown.problem.map_or(200, Problem::status),
        code: shown.problem.map(Problem::code),
        client_name: shown.client.display_name(),
        client_id: shown.client.client_id.as_str(),
        redirect_host: shown.request.redirect_uri.host(),
        problem: problem.as_deref(),
        sites: shown.sites,
        max_sites: MAX_SITES,
        ticket,
        csrf,
    })
}

/// `GET /authorize` for `/mcp`: the key form, for a client whose redirect
/// host is trusted.
pub fn offer<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    keys: FlowKeys<'_>,
    client: &ClientRecord,
    request: AuthorizationRequest,
) -> Result<Reply, FlowError> {
    if !offered_to(&server.settings.byok_redirect_hosts, &request.redirect_uri) {
        return Err(FlowError::UnverifiedRedirectHost {
            origin: request.redirect_uri.origin(),
        });
    }
    let shown_request = request.clone();
    let f = fresh(keys.ring, platform, request, platform.now().as_secs())
        .map_err(|_| FlowError::Entropy)?;
    let shown = Shown {
        client,
        request: &shown_request,
        sites: "",
        problem: None,
    };
    let mut response = page(&shown, &f.ticket, &f.csrf);
    response.headers.append("set-cookie", f.set_cookie.secret());
    Ok(Reply::Page(Box::new(response)))
}

/// The key and sites as typed, checked for shape only.
fn parse(
    form_key: Option<&str>,
    form_sites: Option<&str>,
) -> Result<(PlausibleKey, Vec<SiteId>), Problem> {
    let raw = form_key.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Err(Problem::NoKey);
    }
    let typed_sites = form_sites.unwrap_or("");
    if entries::split(typed_sites).any(|e| entries::read(e, raw) == Entry::TheKey) {
        return Err(Problem::KeyInSites);
    }
    if !key_grant::well_formed(raw) || TokenKind::is_ours(raw) {
        return Err(Problem::KeyShape);
    }
    let mut sites: Vec<SiteId> = Vec::new();
    for (i, item) in entries::split(typed_sites).enumerate() {
        let bad = Problem::BadSite {
            position: i.saturating_add(1),
        };
        let Entry::Site(cleaned) = entries::read(item, raw) else {
            return Err(bad);
        };
        let site = SiteId::parse("sites", &cleaned).map_err(|_| bad)?;
        if !sites.contains(&site) {
            sites.push(site);
        }
    }
    match sites.len() {
        0 => Err(Problem::NoSites),
        n if n > MAX_SITES => Err(Problem::TooManySites(n)),
        _ => Ok((PlausibleKey::new(raw), sites)),
    }
}

/// What the sites field is filled with when the form comes back: the
/// entries that read as sites, as Plausible writes them; nothing at all
/// if the key is among them (the person swapped or doubled the fields).
fn refill(form_key: Option<&str>, typed_sites: &str) -> String {
    let key = form_key.map(str::trim).unwrap_or("");
    let mut kept: Vec<String> = Vec::new();
    for item in entries::split(typed_sites) {
        match entries::read(item, key) {
            Entry::TheKey => return String::new(),
            Entry::Site(site) => kept.push(site),
            Entry::NotASite => {}
        }
    }
    kept.join("\n")
}

/// Why the check with Plausible failed: what the page says, and the
/// audit line's reason, which may say more than the page (a 402 or 429
/// for the first site, shown as [`Problem::Refused`]).
struct Failed {
    shown: Problem,
    audit: Option<Audited>,
}

/// An audit line for a failed check: its reason, and whether Plausible's
/// answer proves the key (so the line names its user).
struct Audited {
    reason: &'static str,
    key_known: bool,
}

impl Failed {
    fn new(shown: Problem) -> Self {
        Self { shown, audit: None }
    }

    fn audited(shown: Problem, reason: &'static str, key_known: bool) -> Self {
        Self {
            shown,
            audit: Some(Audited { reason, key_known }),
        }
    }
}

/// One cheap Stats API query per site (today's visitors), in order,
/// stopping at the first refusal: a wrong key costs one query.
async fn check_with_plausible<P: Outbound + Clock>(
    platform: &P,
    base: &PlausibleBaseUrl,
    key: &PlausibleKey,
    sites: &[SiteId],
) -> Result<(), Failed> {
    for (i, site) in sites.iter().enumerate() {
        let answer = key_grant::probe(platform, base, key, site.as_str()).await;
        let name = site.as_str().to_owned();
        let first = i == 0;
        match answer {
            Ok(()) => {}
            Err(PlausibleError::Unauthorized(_)) if first => {
                return Err(Failed::audited(
                    Problem::Refused(name),
                    "plausible refused the key",
                    false,
                ));
            }
            // A 400 for this minimal query means Plausible does not know
            // the site as written; it comes only after the key is found.
            Err(PlausibleError::Rejected | PlausibleError::RejectedBecause(_)) if first => {
                return Err(Failed::audited(
                    Problem::Refused(name),
                    "plausible accepted the key but rejected the query for the first site (400)",
                    true,
                ));
            }
            // 402 and 429 come only for a key Plausible found: on the
            // first site, shown as any refusal (no key checker).
            Err(PlausibleError::PaymentRequired) if first => {
                return Err(Failed::audited(
                    Problem::Refused(name),
                    "plausible answered 402 for the first site: no stats api on the plan, or the site is locked",
                    true,
                ));
            }
            Err(PlausibleError::RateLimited { .. }) if first => {
                return Err(Failed::audited(
                    Problem::Refused(name),
                    "plausible rate-limited the key at the first site",
                    true,
                ));
            }
            Err(
                PlausibleError::Unauthorized(_)
                | PlausibleError::Rejected
                | PlausibleError::RejectedBecause(_),
            ) => {
                return Err(Failed::audited(
                    Problem::Unreadable(name),
                    "plausible key cannot read a named site",
                    true,
                ));
            }
            Err(PlausibleError::PaymentRequired) => {
                return Err(Failed::new(Problem::PaymentRequired(name)));
            }
            Err(PlausibleError::RateLimited { retry_after_secs }) => {
                return Err(Failed::new(Problem::RateLimited { retry_after_secs }));
            }
            Err(_) => return Err(Failed::new(Problem::Unavailable)),
        }
    }
    Ok(())
}

/// `POST /authorize/key`: the form again with what to fix, or the
/// consent page.
pub async fn submit<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    keys: FlowKeys<'_>,
    mcp: &McpSettings,
    request: &Request,
) -> Result<Reply, FlowError> {
    // A post from any other origin is refused outright (beside the
    // CSRF token, as at /consent).
    if request
        .headers
        .get("origin")
        .is_some_and(|o| o != server.issuer.as_str())
    {
        return Err(FlowError::ForeignOrigin);
    }
    let ring = keys.ring;
    let fields = form(&request.headers, &request.body)
        .map_err(|_| FlowError::Consent(ConsentError::BadTicket))?;
    let sealed = fields
        .get("ticket")
        .ok_or(FlowError::Consent(ConsentError::BadTicket))?;
    let now = platform.now().as_secs();
    let ticket: FormTicket = ring
        .open(sealed, TICKET_AAD)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|t: &FormTicket| now < t.expires_at)
        .ok_or(FlowError::Consent(ConsentError::BadTicket))?;
    let cookie = read_login_cookie(&request.headers, &ticket.cookie_name)
        .ok_or(FlowError::Consent(ConsentError::OtherBrowser))?;
    if !ct_eq(browser_hash(&cookie).as_bytes(), ticket.browser.as_bytes()) {
        return Err(FlowError::Consent(ConsentError::OtherBrowser));
    }
    let csrf = fields.get("csrf").map(String::as_str).unwrap_or("");
    if !ring.verify(CSRF_PURPOSE, format!("{sealed}\n{cookie}").as_bytes(), csrf) {
        return Err(FlowError::Consent(ConsentError::Csrf));
    }
    // The client as it is now: still known, not blocked since, its
    // redirect host still trusted.
    let client = match registry::find(
        platform,
        server.fetch_policy(),
        &server.reached,
        &ticket.request.client_id,
    )
    .await
    {
        Ok(Some(c)) => c,
        Ok(None) | Err(registry::LookupError::Metadata(_)) => {
            return Err(FlowError::Request(PageError::UnknownClient));
        }
        Err(registry::LookupError::Storage(cause)) => {
            return Err(FlowError::Unavailable {
                step: "key form: client lookup",
                cause,
            });
        }
    };
    FlowError::unless_blocked(
        block::blocked_since(platform, &client.client_id).await,
        "key form: block lookup",
    )?;
    if !offered_to(
        &server.settings.byok_redirect_hosts,
        &ticket.request.redirect_uri,
    ) {
        return Err(FlowError::UnverifiedRedirectHost {
            origin: ticket.request.redirect_uri.origin(),
        });
    }
    let typed_key = fields.get("api_key").map(String::as_str);
    let typed_sites = fields.get("sites").map(String::as_str).unwrap_or("");
    let refilled = refill(typed_key, typed_sites);
    let again = |problem: Problem| {
        let shown = Shown {
            client: &client,
            request: &ticket.request,
            sites: &refilled,
            problem: Some(&problem),
        };
        // The same ticket and token: the person fixes and posts again.
        Ok(Reply::Page(Box::new(page(&shown, sealed, csrf))))
    };
    let (key, sites) = match parse(typed_key, Some(typed_sites)) {
        Ok(parsed) => parsed,
        Err(problem) => return again(problem),
    };
    let Ok(base) = mcp.base_url.as_ref() else {
        return Err(FlowError::PlausibleMisconfigured);
    };
    let user = UserKey::of_plausible_key(keys.user, &key);
    if let Err(failed) = check_with_plausible(platform, base, &key, &sites).await {
        // A key Plausible refused is a failed sign-in (and a key-guessing
        // pattern shows as many of them from one address); a tried key
        // Plausible did not recognize is nobody, so no user is named.
        if let Some(audited) = &failed.audit {
            let record = Record::new(Event::SignIn, Outcome::Refused);
            let record = if audited.key_known {
                record.user(&user)
            } else {
                record
            };
            server.audit(
                platform,
                record.reason(audited.reason).client(&client.client_id),
            );
        }
        return again(failed.shown);
    }
    server.audit(
        platform,
        Record::new(Event::SignIn, Outcome::Success)
            .reason("plausible key form")
            .client(&client.client_id)
            .user(&user),
    );
    let named: Vec<String> = sites.iter().map(|s| s.as_str().to_owned()).collect();
    // The consent page offers exactly the sites just checked, all ticked,
    // and no "all sites": the grant reads a chosen, non-empty subset.
    let offer = SiteOffer::new(AllSites::NotOffered, Some(named.clone()));
    let who = Who::Key(KeyHolder { key, sites: named });
    let browser = Browser {
        cookie_name: ticket.cookie_name.clone(),
        cookie_value: CookieValue::new(cookie),
    };
    // A key grant always shows the consent page (the sites are chosen
    // there each time), but like a person's it asks only for what is new:
    // what this key already allows this client at this redirect endpoint
    // is listed as already allowed (issue 15, step-up on /mcp).
    let approved_before = consent::allowed_before(
        platform,
        keys.user,
        &user,
        &ticket.request,
        server.settings.lifetimes.consent.as_secs(),
    )
    .await
    .map_err(|cause| FlowError::Unavailable {
        step: "key form: consent lookup",
        cause,
    })?;
    let asked = Asked {
        client,
        request: ticket.request,
        who,
        sites: offer,
        approved_before,
    };
    let page = consent::ask(ring, platform, asked, &browser, ticket.expires_at)?;
    Ok(Reply::Ask(Box::new(page)))
}

#[cfg(test)]
mod tests;
