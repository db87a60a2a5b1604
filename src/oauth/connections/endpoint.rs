//! `/connections`: `GET` shows the page (signed out: a sign-in link and
//! the Plausible key form; signed in: the person's connections, and for
//! admins whatever user or client they look up; with a key session: what
//! that key connected on `/mcp`), `GET /connections/login` starts the
//! sign-in, `POST /connections/key` opens a key session from the key
//! entered again, and `POST` takes one action of the page's forms. Every
//! POST needs a session (or, for the key, the signed-out form's cookie)
//! and its CSRF token, and is refused from another origin.

use crate::audit::{self, Actor, AdminAction, Event, Record};
use futures_util::future::join_all;
use std::collections::HashSet;

use super::block;
pub use super::error::ConnectionsError;
use super::error::{Outcome, from_this_origin, keys, posted_form, redirect};
use super::key_session;
use super::listing::{Connection, EmailOpener, assemble, open_email};
use super::session;
use super::viewer::{Viewer, signed_out};
use crate::crypto::{Keyring, UserKeys};
use crate::http::{Method, Params, Request, Response, single_params};
use crate::oauth::clients::registry;
use crate::oauth::flow::login;
use crate::oauth::ids::{RoutingId, UserKey};
use crate::oauth::ledger::client::Ledger;
use crate::oauth::listing::client::{
    Directory, Index, MAX_PAGE, revoke_all_for_client, revoke_all_for_user,
};
use crate::oauth::listing::records::ListedPair;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::token_cache::TokenCache;
use crate::oauth::types::ClientId;
use crate::pages::{
    self, AdminView, ClientSection, ConnectionsView, KeySection, PersonSection, UserSection,
};
use crate::ports::StorageError;

/// `GET /`: the landing page, which links here.
pub fn landing(origin: &str) -> Response {
    pages::landing_page(origin)
}

/// `GET /connections/login`: off to the upstream login, for this page.
pub async fn login<P: Platform>(platform: &P, server: &AuthServer<'_>) -> Outcome {
    let (ring, _) = keys(server)?;
    let upstream = server
        .settings
        .upstream
        .as_ref()
        .ok_or(ConnectionsError::NoUpstream)?;
    let start = login::begin(platform, server, ring, upstream, None)
        .await
        .map_err(ConnectionsError::LoginStart)?;
    Ok(redirect(302, &start.location, &start.set_cookies))
}

/// The admin view a query asks for: `user=<user key>`, `client=<id>`.
struct Wanted {
    user: Option<UserKey>,
    client: Option<ClientId>,
}

fn wanted(params: &Params) -> Result<Wanted, ConnectionsError> {
    let user = match params.get("user").filter(|u| !u.is_empty()) {
        Some(u) => Some(UserKey::parse(u).ok_or(ConnectionsError::BadRequest("not a user key"))?),
        None => None,
    };
    let client = match params
        .get("client")
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
    {
        Some(c) => Some(ClientId::parse(c).ok_or(ConnectionsError::BadRequest("not a client id"))?),
        None => None,
    };
    Ok(Wanted { user, client })
}

/// The rows of listed pairs, each read from its own grant object (in
/// parallel), with emails for admins.
async fn rows_of<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    ring: &Keyring,
    pairs: &[ListedPair],
    with_email: bool,
) -> Result<Vec<Connection>, ConnectionsError> {
    let access = server.settings.lifetimes.access.as_secs();
    let open = |s: &crate::oauth::ledger::records::Subject| open_email(ring, s);
    let rows = join_all(pairs.iter().map(|pair| async move {
        let summary = Ledger::pair(platform, pair.routing).summary().await?;
        // A client that is gone (its registration expired) is shown by id.
        let client = registry::find(
            platform,
            server.fetch_policy(),
            &server.reached,
            &pair.client_id,
        )
        .await
        .ok()
        .flatten();
        let email: Option<EmailOpener<'_>> = if with_email { Some(&open) } else { None };
        Ok::<_, StorageError>(assemble(pair, summary, client.as_ref(), access, email))
    }))
    .await;
    let mut out = Vec::new();
    for row in rows {
        if let Some(row) = row.map_err(ConnectionsError::Storage)? {
            out.push(row);
        }
    }
    Ok(out)
}

/// `GET /connections`.
pub async fn show<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    request: &Request,
) -> Outcome {
    let (ring, user_keys) = keys(server)?;
    let now = platform.now().as_secs();
    let Some(viewer) = Viewer::of(ring, request, now) else {
        return signed_out(platform, ring);
    };
    let params = single_params(request.url.query().unwrap_or("").as_bytes())
        .map_err(|_| ConnectionsError::BadRequest("a parameter appears twice"))?;
    let wanted = wanted(&params)?;
    let admin = viewer.admin(server);
    if !admin && (wanted.user.is_some() || wanted.client.is_some()) {
        return Err(ConnectionsError::NotAdmin);
    }
    let person = match &viewer.person {
        Some(session) => {
            let me = UserKey::of_email(user_keys, session.email());
            let mine = Directory::of(platform, &me)
                .list()
                .await
                .map_err(ConnectionsError::Storage)?;
            Some(PersonSection {
                email: session.email(),
                session_ends: session.expires_at(),
                own: rows_of(platform, server, ring, &mine.pairs, false).await?,
            })
        }
        None => None,
    };
    let key = match &viewer.key {
        Some(session) => {
            let listed = Directory::of(platform, session.user())
                .list()
                .await
                .map_err(ConnectionsError::Storage)?;
            Some(KeySection {
                fingerprint: session.user().fingerprint().to_owned(),
                session_ends: session.expires_at(),
                rows: rows_of(platform, server, ring, &listed.pairs, false).await?,
            })
        }
        None => None,
    };
    let admin_view = if admin {
        let user = match &wanted.user {
            Some(user) => {
                let listed = Directory::of(platform, user)
                    .list()
                    .await
                    .map_err(ConnectionsError::Storage)?;
                Some(UserSection {
                    user_key: user.as_str().to_owned(),
                    rows: rows_of(platform, server, ring, &listed.pairs, true).await?,
                    revoking: listed.revoking,
                })
            }
            None => None,
        };
        let client = match &wanted.client {
            Some(client) => {
                let listed = Index::of(platform, client)
                    .pairs(None, MAX_PAGE)
                    .await
                    .map_err(ConnectionsError::Storage)?;
                let record =
                    registry::find(platform, server.fetch_policy(), &server.reached, client)
                        .await
                        .ok()
                        .flatten();
                Some(ClientSection {
                    client_id: client.as_str().to_owned(),
                    name: record
                        .map(|r| r.display_name().to_owned())
                        .unwrap_or_else(|| client.as_str().to_owned()),
                    blocked_since: block::blocked_since(platform, client)
                        .await
                        .map_err(ConnectionsError::Storage)?,
                    rows: rows_of(platform, server, ring, &listed.pairs, true).await?,
                    revoking: listed.revoking,
                    more: listed.next.is_some(),
                })
            }
            None => None,
        };
        Some(AdminView { user, client })
    } else {
        None
    };
    let csrf = viewer.csrf(ring);
    Ok(pages::connections_page(&ConnectionsView {
        csrf: &csrf,
        person,
        key,
        admin: admin_view,
    }))
}

/// One action of the page's forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ends one pair's grants, tokens, codes and consent.
    Revoke(RoutingId),
    SignOut,
    /// Admins: a user's page, by email (kept out of URLs).
    FindUser(String),
    RevokeUser(UserKey),
    RevokeClient(ClientId),
    BlockClient(ClientId),
    UnblockClient(ClientId),
}

impl Action {
    pub fn parse(form: &Params) -> Result<Action, ConnectionsError> {
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
        let client = || {
            ClientId::parse(field("client").trim())
                .ok_or(ConnectionsError::BadRequest("not a client id"))
        };
        Ok(match field("action") {
            "revoke" => Action::Revoke(
                RoutingId::from_hex(field("pair"))
                    .ok_or(ConnectionsError::BadRequest("not a connection id"))?,
            ),
            "sign_out" => Action::SignOut,
            "find_user" => {
                let email = field("email").trim().to_ascii_lowercase();
                if !email.contains('@') {
                    return Err(ConnectionsError::BadRequest("not an email address"));
                }
                Action::FindUser(email)
            }
            "revoke_user" => Action::RevokeUser(
                UserKey::parse(field("user"))
                    .ok_or(ConnectionsError::BadRequest("not a user key"))?,
            ),
            "revoke_client" => Action::RevokeClient(client()?),
            "block_client" => Action::BlockClient(client()?),
            "unblock_client" => Action::UnblockClient(client()?),
            _ => return Err(ConnectionsError::BadRequest("unknown action")),
        })
    }

    /// Only admins may take it.
    pub fn needs_admin(&self) -> bool {
        !matches!(self, Action::Revoke(_) | Action::SignOut)
    }
}

/// Where the page returns after an action: the admin's view it was
/// taken from, rebuilt from parsed values only.
fn back_to(form: &Params, action: &Action, user_keys: &UserKeys) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    match action {
        Action::FindUser(email) => {
            url.append_pair("user", UserKey::of_email(user_keys, email).as_str());
        }
        _ => {
            if let Some(u) = form.get("view_user").and_then(|u| UserKey::parse(u)) {
                url.append_pair("user", u.as_str());
            }
            if let Some(c) = form.get("view_client").and_then(|c| ClientId::parse(c)) {
                url.append_pair("client", c.as_str());
            }
        }
    }
    let query = url.finish();
    if query.is_empty() {
        "/connections".to_owned()
    } else {
        format!("/connections?{query}")
    }
}

/// `POST /connections`.
pub async fn act<P: Platform>(platform: &P, server: &AuthServer<'_>, request: &Request) -> Outcome {
    if request.method != Method::Post {
        return Err(ConnectionsError::BadRequest("use GET or POST"));
    }
    let (ring, user_keys) = keys(server)?;
    from_this_origin(server, request)?;
    let now = platform.now().as_secs();
    let viewer = Viewer::of(ring, request, now).ok_or(ConnectionsError::SignedOut)?;
    let form = posted_form(request)?;
    if !viewer.csrf_ok(ring, form.get("csrf").map(String::as_str)) {
        return Err(ConnectionsError::Csrf);
    }
    let action = Action::parse(&form)?;
    let admin = viewer.admin(server);
    if action.needs_admin() && !admin {
        return Err(ConnectionsError::NotAdmin);
    }
    let storage = ConnectionsError::Storage;
    match &action {
        Action::Revoke(pair) => {
            if !admin {
                // The signed-in person's pairs and the key's, if both.
                let mut mine: HashSet<RoutingId> = HashSet::new();
                for user in viewer.users(user_keys) {
                    let listed = Directory::of(platform, &user)
                        .list()
                        .await
                        .map_err(storage)?;
                    mine.extend(listed.pairs.into_iter().map(|p| p.routing));
                }
                if !mine.contains(pair) {
                    return Err(ConnectionsError::UnknownPair);
                }
            }
            Ledger::pair(platform, *pair)
                .revoke_all(now)
                .await
                .map_err(storage)?;
            forget(platform, |m| m.forget_pair(user_keys, *pair));
        }
        Action::SignOut => {
            return Ok(redirect(
                303,
                "/connections",
                &[session::clear(), key_session::clear()],
            ));
        }
        Action::FindUser(_) => {}
        Action::RevokeUser(user) => {
            revoke_all_for_user(platform, user, now)
                .await
                .map_err(storage)?;
            forget(platform, |m| m.forget_user(user));
        }
        Action::RevokeClient(client) => {
            revoke_all_for_client(platform, client, now)
                .await
                .map_err(storage)?;
            forget(platform, |m| m.forget_client(client));
        }
        Action::BlockClient(client) => {
            // The block first: a failure after it leaves the client
            // refused, never a revocation without the block.
            block::block(platform, client, now).await.map_err(storage)?;
            revoke_all_for_client(platform, client, now)
                .await
                .map_err(storage)?;
            forget(platform, |m| m.forget_client(client));
        }
        Action::UnblockClient(client) => block::unblock(platform, client).await.map_err(storage)?,
    }
    audit_action(platform, server, &action, admin);
    Ok(redirect(303, &back_to(&form, &action, user_keys), &[]))
}

/// This isolate forgets the token records it remembered that an action
/// revoked, at once (as `/revoke` does): the token memory would otherwise
/// admit them here for up to `TOKEN_CACHE_SECONDS` more. Other isolates
/// honour the revocation within KV's own propagation window.
fn forget<P: Platform>(platform: &P, what: impl FnOnce(&mut TokenCache)) {
    what(&mut platform.token_memory().borrow_mut());
}

/// The audit line of a done action: a person's own revocation, or an
/// admin's act (`ADMIN_EMAILS`).
fn audit_action<P: Platform>(platform: &P, server: &AuthServer<'_>, action: &Action, admin: bool) {
    let by = if admin { Actor::Admin } else { Actor::User };
    let record = match action {
        Action::Revoke(_) if !admin => Record::new(Event::GrantRevoked, audit::Outcome::Success)
            .reason("revoked on the connections page")
            .by(by),
        Action::Revoke(_) => Record::new(Event::AdminAction, audit::Outcome::Success)
            .action(AdminAction::RevokeGrant)
            .by(by),
        Action::RevokeUser(user) => Record::new(Event::AdminAction, audit::Outcome::Success)
            .action(AdminAction::RevokeUser)
            .user(user)
            .by(by),
        Action::RevokeClient(client) => Record::new(Event::AdminAction, audit::Outcome::Success)
            .action(AdminAction::RevokeClient)
            .client(client)
            .by(by),
        Action::BlockClient(client) => Record::new(Event::AdminAction, audit::Outcome::Success)
            .action(AdminAction::BlockClient)
            .client(client)
            .by(by),
        Action::UnblockClient(client) => Record::new(Event::AdminAction, audit::Outcome::Success)
            .action(AdminAction::UnblockClient)
            .client(client)
            .by(by),
        Action::SignOut | Action::FindUser(_) => return,
    };
    server.audit(platform, record);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::oauth::OAuthSettings;
    use crate::identity;
    use crate::oauth::connections::key_session::{KeyEntry, KeySession};
    use crate::oauth::connections::session::Session;
    use crate::oauth::connections::viewer::enter_key;
    use crate::oauth::ledger::client::PairSummary;
    use crate::oauth::ledger::records::ConsentRecord;
    use crate::oauth::listing::client::list_pair;
    use crate::oauth::token_cache::TokenMemory;
    use crate::oauth::types::{RedirectUri, ScopeSet};
    use crate::ports::Clock;
    use crate::secret::PlausibleKey;
    use crate::secret::SetCookie;
    use crate::testing::{FakePlatform, block_on, keys, source, user_keys};

    /// Alice's and Bob's pairs with one client, each with a consent.
    fn world() -> (FakePlatform, OAuthSettings, RoutingId, RoutingId) {
        let p = FakePlatform::new();
        let settings = OAuthSettings::load(&source(&[
            ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
            ("USER_KEY_SECRET", "user-key-secret-for-tests-0123456789"),
            ("ADMIN_EMAILS", "Admin@example.com"),
        ]));
        let client = ClientId::parse("pmcp_client_A").unwrap();
        let mut pairs = Vec::new();
        for who in ["alice@example.com", "bob@example.com"] {
            let user = UserKey::of_email(&user_keys(), who);
            let routing = RoutingId::of(&user_keys(), client.as_str(), &user);
            block_on(list_pair(
                &p,
                &user,
                ListedPair {
                    client_id: client.clone(),
                    routing,
                    first_connected: p.now().as_secs(),
                },
            ))
            .unwrap();
            block_on(Ledger::pair(&p, routing).record_consent(
                user,
                ConsentRecord {
                    sites: None,
                    redirect_uri: RedirectUri::parse("https://app.example/cb").unwrap(),
                    scope: ScopeSet::parse(Some("mcp")).unwrap(),
                    approved_at: p.now().as_secs(),
                },
            ))
            .unwrap();
            pairs.push(routing);
        }
        (p, settings, pairs[0], pairs[1])
    }

    fn consented(p: &FakePlatform, routing: RoutingId) -> bool {
        let PairSummary::Summary { consents, .. } =
            block_on(Ledger::pair(p, routing).summary()).unwrap();
        !consents.is_empty()
    }

    /// A POST of the page's form, signed in as `who`.
    fn post(
        p: &FakePlatform,
        settings: &OAuthSettings,
        who: &str,
        fields: &[(&str, &str)],
    ) -> Outcome {
        let identity = identity::admit(who, Some(true), &["example.com".into()]).unwrap();
        let (session, cookie) = Session::start(&keys(), p, &identity, p.now().as_secs()).unwrap();
        let mut request = Request::new(
            Method::Post,
            url::Url::parse("https://mcp.example.com/connections").unwrap(),
        );
        let pair = cookie.secret().split(';').next().unwrap().to_owned();
        request.headers.set("cookie", pair);
        request.headers.set("origin", "https://mcp.example.com");
        request
            .headers
            .set("content-type", "application/x-www-form-urlencoded");
        let csrf = session.csrf(&keys());
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("csrf", &csrf);
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        request.body = form.finish().into_bytes();
        let server = AuthServer::new(settings, &request);
        block_on(act(p, &server, &request))
    }

    #[test]
    fn a_person_revokes_their_own_pair_and_no_one_else_s() {
        let (p, settings, alice, bob) = world();
        let forged = post(
            &p,
            &settings,
            "alice@example.com",
            &[("action", "revoke"), ("pair", &bob.to_hex())],
        );
        assert!(
            matches!(forged, Err(ConnectionsError::UnknownPair)),
            "{forged:?}"
        );
        assert!(consented(&p, bob), "nothing changed");
        for admin_only in [
            vec![("action", "revoke_client"), ("client", "pmcp_client_A")],
            vec![("action", "block_client"), ("client", "pmcp_client_A")],
        ] {
            let r = post(&p, &settings, "alice@example.com", &admin_only);
            assert!(matches!(r, Err(ConnectionsError::NotAdmin)), "{r:?}");
        }
        assert!(consented(&p, bob) && consented(&p, alice));
        let own = post(
            &p,
            &settings,
            "alice@example.com",
            &[("action", "revoke"), ("pair", &alice.to_hex())],
        )
        .unwrap();
        assert_eq!(own.status, 303);
        assert_eq!(own.headers.get("location"), Some("/connections"));
        assert!(!consented(&p, alice), "the consent went with the grant");
        assert!(consented(&p, bob));
    }

    #[test]
    fn an_admin_reaches_any_pair_and_blocks_clients() {
        let (p, settings, _, bob) = world();
        let r = post(
            &p,
            &settings,
            "ADMIN@example.com",
            &[("action", "revoke"), ("pair", &bob.to_hex())],
        )
        .unwrap();
        assert_eq!(r.status, 303);
        assert!(!consented(&p, bob));
        let client = ClientId::parse("pmcp_client_A").unwrap();
        let r = post(
            &p,
            &settings,
            "admin@example.com",
            &[
                ("action", "block_client"),
                ("client", "pmcp_client_A"),
                ("view_client", "pmcp_client_A"),
            ],
        )
        .unwrap();
        assert_eq!(
            r.headers.get("location"),
            Some("/connections?client=pmcp_client_A")
        );
        assert!(
            block_on(block::blocked_since(&p, &client))
                .unwrap()
                .is_some()
        );
        let r = post(
            &p,
            &settings,
            "admin@example.com",
            &[("action", "unblock_client"), ("client", "pmcp_client_A")],
        )
        .unwrap();
        assert_eq!(r.status, 303);
        assert!(
            block_on(block::blocked_since(&p, &client))
                .unwrap()
                .is_none()
        );
    }

    const KEY: &str = "plausible-key-of-the-team";

    /// The key's user: a pair with the client of `world`, listed and consented.
    fn key_pair(p: &FakePlatform) -> (UserKey, RoutingId) {
        let user = UserKey::of_plausible_key(&user_keys(), &PlausibleKey::new(KEY));
        let client = ClientId::parse("pmcp_client_A").unwrap();
        let routing = RoutingId::of(&user_keys(), client.as_str(), &user);
        block_on(list_pair(
            p,
            &user,
            ListedPair {
                client_id: client,
                routing,
                first_connected: p.now().as_secs(),
            },
        ))
        .unwrap();
        block_on(Ledger::pair(p, routing).record_consent(
            user.clone(),
            ConsentRecord {
                sites: Some(vec!["example.com".into()]),
                redirect_uri:
                    RedirectUri::parse("https://claude.ai/api/mcp/auth_callback").unwrap(),
                scope: ScopeSet::parse(Some("mcp")).unwrap(),
                approved_at: p.now().as_secs(),
            },
        ))
        .unwrap();
        (user, routing)
    }

    fn request(
        method: Method,
        path: &str,
        cookies: &[&SetCookie],
        body: &[(&str, &str)],
    ) -> Request {
        let mut request = Request::new(
            method,
            url::Url::parse(&format!("https://mcp.example.com{path}")).unwrap(),
        );
        let jar: Vec<&str> = cookies
            .iter()
            .map(|c| c.secret().split(';').next().unwrap())
            .collect();
        if !jar.is_empty() {
            request.headers.set("cookie", jar.join("; "));
        }
        request.headers.set("origin", "https://mcp.example.com");
        request
            .headers
            .set("content-type", "application/x-www-form-urlencoded");
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in body {
            form.append_pair(k, v);
        }
        request.body = form.finish().into_bytes();
        request
    }

    fn set_cookies(r: &Response) -> Vec<SetCookie> {
        r.headers
            .get_all("set-cookie")
            .map(|c| SetCookie::new(c.to_owned()))
            .collect()
    }

    fn body(r: &Response) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn a_key_session_lists_and_revokes_its_key_s_pairs_only() {
        let (p, settings, alice, _) = world();
        let (user, mine) = key_pair(&p);
        let (session, cookie) = KeySession::start(&keys(), &p, &user, p.now().as_secs()).unwrap();
        let get = request(Method::Get, "/connections", &[&cookie], &[]);
        let page = block_on(show(&p, &AuthServer::new(&settings, &get), &get)).unwrap();
        let html = body(&page);
        assert!(html.contains("data-client-id=\"pmcp_client_A\""), "{html}");
        assert!(html.contains(user.fingerprint()), "the key's fingerprint");
        assert!(!html.contains(KEY), "never the key");
        assert!(!html.contains("Signed in as"), "no person here");
        // Not an admin: no other user's page.
        let other = request(
            Method::Get,
            "/connections?client=pmcp_client_A",
            &[&cookie],
            &[],
        );
        assert!(matches!(
            block_on(show(&p, &AuthServer::new(&settings, &other), &other)),
            Err(ConnectionsError::NotAdmin)
        ));
        let csrf = session.csrf(&keys());
        let post = |fields: &[(&str, &str)]| {
            let r = request(Method::Post, "/connections", &[&cookie], fields);
            block_on(act(&p, &AuthServer::new(&settings, &r), &r))
        };
        let theirs = post(&[
            ("csrf", &csrf),
            ("action", "revoke"),
            ("pair", &alice.to_hex()),
        ]);
        assert!(
            matches!(theirs, Err(ConnectionsError::UnknownPair)),
            "{theirs:?}"
        );
        assert!(consented(&p, alice));
        let forged = post(&[
            ("csrf", "x"),
            ("action", "revoke"),
            ("pair", &mine.to_hex()),
        ]);
        assert!(matches!(forged, Err(ConnectionsError::Csrf)), "{forged:?}");
        let admin_only = post(&[
            ("csrf", &csrf),
            ("action", "revoke_client"),
            ("client", "pmcp_client_A"),
        ]);
        assert!(matches!(admin_only, Err(ConnectionsError::NotAdmin)));
        // A token of the pair this isolate admitted a moment ago.
        let remembered = crate::oauth::ids::TokenHash::of("pmcp_at_remembered");
        {
            let mut memory = p.token_memory().borrow_mut();
            let epoch = memory.epoch();
            memory.remember(
                remembered.clone(),
                crate::oauth::ledger::records::AccessRecord {
                    sites: Some(vec!["example.com".into()]),
                    client_id: ClientId::parse("pmcp_client_A").unwrap(),
                    grant_id: crate::oauth::ids::GrantId::fixed("g1"),
                    scope: ScopeSet::parse(Some("mcp")).unwrap(),
                    resource: crate::testing::resource("https://mcp.example.com/mcp"),
                    subject: crate::oauth::ledger::records::Subject {
                        user_key: user.clone(),
                        sealed_props: "s".into(),
                        kind: None,
                    },
                    expires_at: p.now().as_secs() + 3600,
                    grant_created_at: Some(0),
                },
                p.now(),
                std::time::Duration::from_secs(60),
                epoch,
            );
        }
        let own = post(&[
            ("csrf", &csrf),
            ("action", "revoke"),
            ("pair", &mine.to_hex()),
        ])
        .unwrap();
        assert_eq!(own.status, 303);
        assert!(!consented(&p, mine), "the key's consent went with it");
        assert!(
            p.token_memory()
                .borrow_mut()
                .recall(&remembered, p.now())
                .is_none(),
            "this isolate forgot the pair's tokens at once"
        );
        assert!(consented(&p, alice));
        let out = post(&[("csrf", &csrf), ("action", "sign_out")]).unwrap();
        let cleared: Vec<String> = set_cookies(&out)
            .iter()
            .map(|c| c.secret().to_owned())
            .collect();
        assert!(
            cleared
                .iter()
                .any(|c| c.starts_with("__Host-pmcp_connections_key=;")),
            "{cleared:?}"
        );
    }

    #[test]
    fn a_browser_with_both_sessions_sees_both_lists_and_revokes_from_either() {
        let (p, settings, alice, bob) = world();
        let (user, key_pair_id) = key_pair(&p);
        let identity =
            crate::identity::admit("alice@example.com", Some(true), &["example.com".into()])
                .unwrap();
        let (person, person_cookie) =
            Session::start(&keys(), &p, &identity, p.now().as_secs()).unwrap();
        let (_, key_cookie) = KeySession::start(&keys(), &p, &user, p.now().as_secs()).unwrap();
        let both = [&person_cookie, &key_cookie];
        let get = request(Method::Get, "/connections", &both, &[]);
        let html = body(&block_on(show(&p, &AuthServer::new(&settings, &get), &get)).unwrap());
        assert!(html.contains("Signed in as"), "{html}");
        assert!(html.contains(user.fingerprint()));
        assert_eq!(html.matches("data-client-id=\"pmcp_client_A\"").count(), 2);
        // The page's one token (the person's) serves both lists.
        let csrf = person.csrf(&keys());
        for pair in [key_pair_id, alice] {
            let r = request(
                Method::Post,
                "/connections",
                &both,
                &[
                    ("csrf", &csrf),
                    ("action", "revoke"),
                    ("pair", &pair.to_hex()),
                ],
            );
            let out = block_on(act(&p, &AuthServer::new(&settings, &r), &r)).unwrap();
            assert_eq!(out.status, 303);
            assert!(!consented(&p, pair));
        }
        assert!(consented(&p, bob), "nobody else's");
    }

    #[test]
    fn entering_the_key_again_opens_its_session() {
        let (p, settings, _, _) = world();
        let (user, _) = key_pair(&p);
        // Signed out: the page carries the key form, bound to a fresh cookie.
        let get = request(Method::Get, "/connections", &[], &[]);
        let page = block_on(show(&p, &AuthServer::new(&settings, &get), &get)).unwrap();
        let html = body(&page);
        assert!(html.contains("action=\"/connections/key\""), "{html}");
        assert!(html.contains("autocomplete=\"off\""));
        let form_cookie = set_cookies(&page).into_iter().next().unwrap();
        assert!(
            form_cookie
                .secret()
                .starts_with("__Host-pmcp_connections_form=")
        );
        assert!(form_cookie.secret().contains("SameSite=Strict"));
        let entry = KeyEntry::of(&{
            let mut h = crate::http::Headers::new();
            h.set("cookie", form_cookie.secret().split(';').next().unwrap());
            h
        })
        .unwrap();
        let csrf = entry.csrf(&keys());
        assert!(html.contains(&csrf));
        let post = |cookies: &[&SetCookie], fields: &[(&str, &str)], origin: Option<&str>| {
            let mut r = request(Method::Post, "/connections/key", cookies, fields);
            if let Some(o) = origin {
                r.headers.set("origin", o);
            }
            block_on(enter_key(&p, &AuthServer::new(&settings, &r), &r))
        };
        for (label, cookies, fields, origin) in [
            (
                "no cookie",
                vec![],
                vec![("csrf", csrf.as_str()), ("api_key", KEY)],
                None,
            ),
            ("no token", vec![&form_cookie], vec![("api_key", KEY)], None),
            (
                "another token",
                vec![&form_cookie],
                vec![("csrf", "k.x"), ("api_key", KEY)],
                None,
            ),
        ] {
            let r = post(&cookies, &fields, origin);
            assert!(matches!(r, Err(ConnectionsError::Csrf)), "{label}: {r:?}");
        }
        let foreign = post(
            &[&form_cookie],
            &[("csrf", &csrf), ("api_key", KEY)],
            Some("https://evil.example"),
        );
        assert!(matches!(foreign, Err(ConnectionsError::ForeignOrigin)));
        for bad in ["", "short", "has a space in it"] {
            let r = post(&[&form_cookie], &[("csrf", &csrf), ("api_key", bad)], None);
            assert!(
                matches!(r, Err(ConnectionsError::NotAKey)),
                "{bad:?}: {r:?}"
            );
        }
        let ok = post(
            &[&form_cookie],
            &[("csrf", &csrf), ("api_key", &format!("  {KEY}\n"))],
            None,
        )
        .unwrap();
        assert_eq!(ok.status, 303);
        assert_eq!(ok.headers.get("location"), Some("/connections"));
        let set = set_cookies(&ok);
        let session_cookie = set
            .iter()
            .find(|c| c.secret().starts_with("__Host-pmcp_connections_key="))
            .unwrap();
        assert!(!session_cookie.secret().contains(KEY));
        assert!(
            set.iter()
                .any(|c| c.secret().starts_with("__Host-pmcp_connections_form=;")),
            "the form cookie is dropped"
        );
        let mut h = crate::http::Headers::new();
        h.set("cookie", session_cookie.secret().split(';').next().unwrap());
        let opened = KeySession::of(&keys(), &h, p.now().as_secs()).unwrap();
        assert_eq!(opened.user(), &user, "the key's user, trimmed as pasted");
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn actions_parse_and_say_who_may_take_them() {
        let pair = "00112233445566778899aabbccddeeff";
        let revoke = Action::parse(&params(&[("action", "revoke"), ("pair", pair)])).unwrap();
        assert!(matches!(revoke, Action::Revoke(_)) && !revoke.needs_admin());
        assert!(
            !Action::parse(&params(&[("action", "sign_out")]))
                .unwrap()
                .needs_admin()
        );
        let key = "a".repeat(64);
        for (fields, admin) in [
            (
                vec![("action", "revoke_user"), ("user", key.as_str())],
                true,
            ),
            (
                vec![("action", "revoke_client"), ("client", "pmcp_client_A")],
                true,
            ),
            (
                vec![("action", "block_client"), ("client", "pmcp_client_A")],
                true,
            ),
            (
                vec![("action", "unblock_client"), ("client", "pmcp_client_A")],
                true,
            ),
            (
                vec![("action", "find_user"), ("email", "A@Example.com")],
                true,
            ),
        ] {
            assert_eq!(
                Action::parse(&params(&fields)).unwrap().needs_admin(),
                admin
            );
        }
        for bad in [
            vec![("action", "revoke"), ("pair", "zz")],
            vec![("action", "revoke")],
            vec![("action", "revoke_user"), ("user", "ABC")],
            vec![("action", "block_client"), ("client", "")],
            vec![("action", "find_user"), ("email", "nobody")],
            vec![("action", "drop_tables")],
            vec![],
        ] {
            assert!(
                matches!(
                    Action::parse(&params(&bad)),
                    Err(ConnectionsError::BadRequest(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_way_back_is_rebuilt_from_parsed_values() {
        let uk = crate::testing::user_keys();
        let a = Action::SignOut;
        assert_eq!(back_to(&params(&[]), &a, &uk), "/connections");
        let key = "b".repeat(64);
        let form = params(&[
            ("view_user", key.as_str()),
            ("view_client", "pmcp_client_A"),
        ]);
        assert_eq!(
            back_to(&form, &a, &uk),
            format!("/connections?user={key}&client=pmcp_client_A")
        );
        let evil = params(&[("view_user", "//evil.example"), ("view_client", "\r\nx")]);
        assert_eq!(back_to(&evil, &a, &uk), "/connections");
        let found = back_to(&params(&[]), &Action::FindUser("a@example.com".into()), &uk);
        assert!(
            !found.contains("example.com"),
            "the email stays out of the URL"
        );
        assert!(found.starts_with("/connections?user="));
    }
}
