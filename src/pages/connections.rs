//! The connections page (`/connections`) and the landing page (`/`):
//! templates only, over views the endpoint fills. Every value is
//! escaped by `maud`; names chosen by clients sit in `<bdi>`, so a
//! right-to-left override in a name cannot reorder the text around it.

use maud::{Markup, html};

use super::page;
use crate::http::Response;
use crate::oauth::connections::listing::Connection;

/// `2026-11-05 14:03 UTC`.
pub fn when(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_else(|| "—".to_owned())
}

fn maybe_when(secs: Option<u64>) -> String {
    secs.map(when).unwrap_or_else(|| "—".to_owned())
}

/// Where an admin was looking, carried through a form so the page
/// comes back to it.
#[derive(Clone, Debug, Default)]
pub struct Back {
    pub user: Option<String>,
    pub client: Option<String>,
}

fn back_fields(back: &Back) -> Markup {
    html! {
        @if let Some(u) = &back.user { input type="hidden" name="view_user" value=(u); }
        @if let Some(c) = &back.client { input type="hidden" name="view_client" value=(c); }
    }
}

/// A POST form of one button.
fn action(csrf: &str, back: &Back, fields: &[(&str, &str)], label: &str, primary: bool) -> Markup {
    html! {
        form method="post" action="/connections" {
            input type="hidden" name="csrf" value=(csrf);
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            (back_fields(back))
            @if primary {
                button.primary type="submit" { (label) }
            } @else {
                button type="submit" { (label) }
            }
        }
    }
}

fn connection(row: &Connection, csrf: &str, back: &Back, admin: bool) -> Markup {
    let pair = row.pair.to_hex();
    html! {
        div.box.connection data-client-id=(row.client_id.as_str()) {
            h2 { bdi { (row.name) } }
            dl {
                @if admin {
                    dt { "User" }
                    dd.user {
                        @if let Some(email) = &row.email { (email) " " }
                        @if let Some(fp) = &row.key_fingerprint {
                            "Plausible key " code.fingerprint { (fp) } " "
                        }
                        @if let Some(user) = &row.user {
                            a href={ "/connections?user=" (user.as_str()) } { "all of this user's connections" }
                        }
                    }
                }
                dt { "Client id" }
                dd { code { (row.client_id.as_str()) } }
                dt { "Sends you back to" }
                dd { code { (row.redirect_host.as_deref().unwrap_or("—")) } }
                dt { "Scopes" }
                dd { @for s in &row.scopes { code { (s) } " " } }
                dt { "Sites" }
                dd.sites {
                    @match &row.sites {
                        None => "All sites (including sites added later)",
                        Some(sites) => { @for s in sites { code { (s) } " " } }
                    }
                    @if let Some(approved) = &row.approved_sites {
                        br;
                        span.muted {
                            @if approved == &row.sites {
                                "A new sign-in of this application gets these sites without asking again"
                            } @else {
                                "A new sign-in of this application gets "
                                @match approved {
                                    None => "all sites",
                                    Some(sites) => { @for s in sites { code { (s) } " " } }
                                }
                                " without asking again"
                            }
                            "; revoke it to choose again."
                        }
                    }
                }
                dt { "Approved" }
                dd { (maybe_when(row.approved_at)) }
                dt { "Last refreshed" }
                dd { (maybe_when(row.last_refreshed)) }
                dt { "Ends" }
                dd {
                    @if row.grants == 0 {
                        "no active grant; approval on file"
                    } @else {
                        (maybe_when(row.ends_at))
                        @if row.grants > 1 { " (" (row.grants) " devices)" }
                    }
                }
            }
            (action(csrf, back, &[("action", "revoke"), ("pair", &pair)], "Revoke", false))
        }
    }
}

/// A list of connections, or a line saying there are none.
fn rows(rows: &[Connection], csrf: &str, back: &Back, admin: bool, none: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted.none { (none) }
        }
        @for row in rows { (connection(row, csrf, back, admin)) }
    }
}

/// An admin's view of one user.
pub struct UserSection {
    pub user_key: String,
    pub rows: Vec<Connection>,
    pub revoking: Option<u64>,
}

/// An admin's view of one client.
pub struct ClientSection {
    pub client_id: String,
    pub name: String,
    pub blocked_since: Option<u64>,
    pub rows: Vec<Connection>,
    pub revoking: Option<u64>,
    /// More pairs than one page shows.
    pub more: bool,
}

pub struct AdminView {
    pub user: Option<UserSection>,
    pub client: Option<ClientSection>,
}

/// A signed-in person's part of the page.
pub struct PersonSection<'a> {
    pub email: &'a str,
    pub session_ends: u64,
    pub own: Vec<Connection>,
}

/// The part of the page of a Plausible key (issue 15): what was connected
/// with it on `/mcp`.
pub struct KeySection {
    /// The key's fingerprint (`UserKey::fingerprint`): how the person and
    /// an admin can tell which key this is without showing any of it.
    pub fingerprint: String,
    pub session_ends: u64,
    pub rows: Vec<Connection>,
}

/// What the page shows: a signed-in person, a key, or both (one browser
/// may hold both sessions); its forms carry one CSRF token.
pub struct ConnectionsView<'a> {
    pub csrf: &'a str,
    pub person: Option<PersonSection<'a>>,
    pub key: Option<KeySection>,
    pub admin: Option<AdminView>,
}

fn admin_section(view: &AdminView, csrf: &str) -> Markup {
    html! {
        section.admin {
            h2 { "Administration" }
            p.muted { "You are an administrator of this server: you can look at anyone's connected applications." }
            form method="post" action="/connections" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="find_user";
                label { "User's email " input type="email" name="email" required; }
                " " button type="submit" { "Show" }
            }
            form method="get" action="/connections" {
                label { "Client id " input type="text" name="client" required; }
                " " button type="submit" { "Show" }
            }
            @if let Some(user) = &view.user {
                @let back = Back { user: Some(user.user_key.clone()), client: None };
                section.user-view {
                    h3 { "A user's connections" }
                    p.muted { "User key " code { (user.user_key) } }
                    @if let Some(at) = user.revoking {
                        p.notice { "Revoking every grant made up to " (when(at)) "; in progress." }
                    }
                    (rows(&user.rows, csrf, &back, true, "This user has no connected applications."))
                    (action(csrf, &back, &[("action", "revoke_user"), ("user", &user.user_key)], "Revoke all of this user's grants", true))
                }
            }
            @if let Some(client) = &view.client {
                @let back = Back { user: None, client: Some(client.client_id.clone()) };
                section.client-view {
                    h3 { "Application " bdi { (client.name) } }
                    p.muted { "Client id " code { (client.client_id) } }
                    @if let Some(at) = client.blocked_since {
                        p.notice.blocked { "Blocked since " (when(at)) ": refused at sign-in and at the token endpoint." }
                    }
                    @if let Some(at) = client.revoking {
                        p.notice { "Revoking every grant made up to " (when(at)) "; in progress." }
                    }
                    (rows(&client.rows, csrf, &back, true, "Nobody has connected this application."))
                    @if client.more { p.muted { "Only the first page of users is shown." } }
                    div.actions {
                        (action(csrf, &back, &[("action", "revoke_client"), ("client", &client.client_id)], "Revoke all grants of this application", true))
                        @if client.blocked_since.is_some() {
                            (action(csrf, &back, &[("action", "unblock_client"), ("client", &client.client_id)], "Unblock", false))
                        } @else {
                            (action(csrf, &back, &[("action", "block_client"), ("client", &client.client_id)], "Block this application", false))
                        }
                    }
                }
            }
        }
    }
}

/// The signed-in page.
pub fn connections_page(view: &ConnectionsView<'_>) -> Response {
    let back = Back::default();
    let body = html! {
        h1 { "Connected applications" }
        @if let Some(person) = &view.person {
            p {
                "Signed in as " strong.email { (person.email) } ". "
                span.muted { "This session ends at " (when(person.session_ends)) "." }
            }
            p.muted { "These applications can read this server's Plausible Analytics statistics as you. Revoking one ends its access at once; it has to ask you again to reconnect." }
            section.own {
                (rows(&person.own, view.csrf, &back, false, "No application is connected to your account."))
            }
        }
        @if let Some(key) = &view.key {
            section.key {
                h2 { "Connected with your Plausible API key" }
                p {
                    "Key fingerprint " code.fingerprint { (key.fingerprint) } ". "
                    span.muted { "This view ends at " (when(key.session_ends)) "." }
                }
                p.muted { "These applications read Plausible Analytics with this key, through this server's " code { "/mcp" } ". Everyone who uses the same key sees and can revoke them. Revoking one ends its access at once; it has to ask for the key again to reconnect." }
                (rows(&key.rows, view.csrf, &back, false, "No application is connected with this key."))
            }
        }
        @if let Some(admin) = &view.admin { (admin_section(admin, view.csrf)) }
        (action(view.csrf, &back, &[("action", "sign_out")], "Sign out", false))
    };
    page(200, "Connected applications", None, body, &["'self'"])
}

/// The page before signing in: the company sign-in, or a Plausible key
/// entered again (its form bound to this browser by `form_csrf`).
pub fn signed_out_page(form_csrf: &str) -> Response {
    let body = html! {
        h1 { "Connected applications" }
        div.box {
            p { "See and revoke the applications (Claude, Claude Code, Cursor, …) you connected to this Plausible Analytics MCP server." }
            p { a.button href="/connections/login" { "Sign in" } }
        }
        div.box.key-entry {
            p { "Connected an application with your own Plausible API key (" code { "/mcp" } ")? Enter the key to see and revoke those connections. It is not stored and not sent to Plausible." }
            form method="post" action="/connections/key" autocomplete="off" {
                input type="hidden" name="csrf" value=(form_csrf);
                label { "Plausible API key " input type="password" name="api_key" required autocomplete="off" spellcheck="false"; }
                " " button type="submit" { "Show connections" }
            }
        }
    };
    page(200, "Connected applications", None, body, &["'self'"])
}

/// `/`: what this server is and how to connect to it.
pub fn landing_page(origin: &str) -> Response {
    let internal = format!("{origin}/internal");
    let byok = format!("{origin}/mcp");
    let body = html! {
        h1 { "Plausible Analytics MCP server" }
        p { "This is a remote " a href="https://modelcontextprotocol.io" { "Model Context Protocol" } " server: it lets AI assistants read Plausible Analytics statistics." }
        div.box {
            dl {
                dt { "For your organisation (sign in, no key needed)" }
                dd { code.url { (internal) } }
                dt { "With your own Plausible API key (a page asks for it once, or send it as the bearer token)" }
                dd { code.url { (byok) } }
            }
        }
        h2 { "Connecting" }
        dl {
            dt { "Claude.ai and Cowork" }
            dd { "Settings → Connectors → Add custom connector; paste either URL. For " code { (internal) } " sign in when asked; for " code { (byok) } " paste your Plausible API key and the sites it may read on this server's page." }
            dt { "Claude Code" }
            dd { code { "claude mcp add --transport http plausible " (internal) } ", then " code { "/mcp" } " in Claude Code to sign in; or with your own key, " code { "claude mcp add --transport http plausible " (byok) " --header \"Authorization: Bearer $PLAUSIBLE_API_KEY\"" } "." }
            dt { "MCP Inspector" }
            dd { code { "npx @modelcontextprotocol/inspector" } "; choose Streamable HTTP, enter either URL and connect." }
            dt { "Cursor" }
            dd { "Add to " code { "~/.cursor/mcp.json" } ": " code { "{\"mcpServers\":{\"plausible\":{\"url\":\"" (byok) "\",\"headers\":{\"Authorization\":\"Bearer ${env:PLAUSIBLE_API_KEY}\"}}}}" } " (Cursor's OAuth redirect is a " code { "cursor://" } " address, which this server does not register)." }
        }
        p { a href="/connections" { "See or revoke your connected applications" } }
    };
    page(200, "Plausible Analytics MCP server", None, body, &[])
}
