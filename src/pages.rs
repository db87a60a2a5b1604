//! The server's HTML pages: the error page and the consent page. Built
//! with `maud`, whose templates are checked at compile time and escape
//! every interpolation, so markup cannot come from data. The CSP allows no
//! script at all and only our one stylesheet, by hash. Every error page
//! names its machine-readable code in `<meta name="error">`.

use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

use crate::http::Response;

mod connections;
pub use connections::{
    AdminView, ClientSection, ConnectionsView, KeySection, PersonSection, UserSection,
    connections_page, landing_page, signed_out_page,
};

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2937}h1{font-size:1.35rem}.box{border:1px solid #e5e7eb;border-radius:.5rem;padding:1rem 1.25rem}dt{font-weight:600}dd{margin:0 0 .75rem}code{background:#f3f4f6;padding:0 .25rem;border-radius:.25rem}.actions{display:flex;gap:.75rem;margin-top:1.25rem}button{font:inherit;padding:.5rem 1.25rem;border-radius:.375rem;border:1px solid #d1d5db;background:#fff;cursor:pointer}button.primary{background:#4f46e5;border-color:#4f46e5;color:#fff}.muted{color:#6b7280;font-size:.9rem}a.button{display:inline-block;padding:.5rem 1.25rem;border-radius:.375rem;background:#4f46e5;color:#fff;text-decoration:none}.connection{margin:1rem 0}.notice{background:#fef3c7;padding:.5rem .75rem;border-radius:.375rem}fieldset.sites{border:1px solid #e5e7eb;border-radius:.5rem;padding:.5rem 1.25rem 1rem;margin:1rem 0 0}fieldset.sites legend{font-weight:600;padding:0 .25rem}.sites .under{margin-left:1.5rem}";

/// The CSP. `form_targets` are the origins a form on the page may end up
/// at: browsers apply `form-action` to the redirects after a post too, so
/// the consent form must allow the client's redirect origin.
fn csp(form_targets: &[&str]) -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let form_action = if form_targets.is_empty() {
        "'none'".to_owned()
    } else {
        form_targets.join(" ")
    };
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A whole page. Pages with forms send their origin with the post
/// (browsers send `Origin: null` under no-referrer, which the consent
/// check refuses); nothing ever goes to another origin.
fn page(
    status: u16,
    title: &str,
    error: Option<&str>,
    body: Markup,
    form_targets: &[&str],
) -> Response {
    let referrer = if form_targets.is_empty() {
        "no-referrer"
    } else {
        "same-origin"
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta name="referrer" content=(referrer);
                @if let Some(code) = error {
                    meta name="error" content=(code);
                }
                title { (title) }
                // The stylesheet is a constant, allowed by its hash.
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    };
    Response::html(status, markup.into_string())
        .with_header("content-security-policy", csp(form_targets))
        .with_header("x-frame-options", "DENY")
        .with_header("referrer-policy", referrer)
}

/// A page explaining why a sign-in cannot continue; `code` is the
/// machine-readable reason.
pub fn error_page(status: u16, heading: &str, message: &str, code: &str) -> Response {
    page(
        status,
        heading,
        Some(code),
        html! {
            h1 { (heading) }
            div.box { p { (message) } }
            p.muted { "Plausible Analytics MCP server. You can close this tab and try connecting again." }
        },
        &[],
    )
}

/// What a page that stops a verified client's flow shows: who asked,
/// where the link goes, and the link itself.
pub struct BackToClientView<'a> {
    pub status: u16,
    pub heading: &'a str,
    pub message: &'a str,
    /// The machine-readable reason for `<meta name="error">`.
    pub code: &'a str,
    pub client_name: &'a str,
    pub redirect_host: &'a str,
    /// The client's redirect URI carrying `error`, `state` and `iss`.
    pub link: &'a str,
}

/// An error page for a client whose redirect URI is verified: instead of
/// redirecting at once (which would make `/authorize` an open redirector
/// to any URI anyone can register, RFC 9700 §4.11.2), it names the
/// application and where the link goes, and offers a plain link carrying
/// the error response (RFC 6749 §4.1.2.1, RFC 9207 `iss`), so a client
/// waiting on its callback still learns the outcome when the person
/// follows it. No meta refresh and no script: only the person navigates.
pub fn back_to_client_page(view: &BackToClientView<'_>) -> Response {
    page(
        view.status,
        view.heading,
        Some(view.code),
        html! {
            h1 { (view.heading) }
            div.box {
                p { (view.message) }
                dl {
                    dt { "Application" }
                    dd { bdi { (view.client_name) } }
                    dt { "The link below goes to" }
                    dd { code { (view.redirect_host) } }
                }
            }
            p { a href=(view.link) rel="noreferrer" { "Return to " bdi { (view.client_name) } } }
            p.muted { "Plausible Analytics MCP server. Follow the link only if you started connecting this application yourself." }
        },
        &[],
    )
}

/// What the consent page shows and carries. Every field is text; the
/// template escapes all of it.
pub struct ConsentView<'a> {
    pub client_name: &'a str,
    pub client_id: &'a str,
    /// How the client is known to us, as a clause ("registered itself …").
    pub client_source: &'a str,
    pub redirect_host: &'a str,
    /// The redirect URI's origin, allowed as a form target.
    pub redirect_origin: &'a str,
    /// Each scope asked for and what it lets the client do.
    pub scopes: Vec<(&'a str, &'a str)>,
    /// Scopes of the request this person already allowed this client
    /// (incremental consent): shown apart, not asked again.
    pub already_allowed: Vec<(&'a str, &'a str)>,
    pub email: &'a str,
    /// A key grant of `/mcp`: shown instead of the email.
    pub key: Option<KeyView<'a>>,
    pub ticket: &'a str,
    pub csrf: &'a str,
    /// The site chooser (issue 15).
    pub sites: SiteChooser<'a>,
}

/// The consent page's site choices: "all sites" (preselected) when
/// offered, and the sites to check from.
pub struct SiteChooser<'a> {
    pub all_offered: bool,
    pub listed: &'a [String],
    /// Sites left off the list (too many to show).
    pub cut: usize,
}

/// The chooser's fields, inside the consent form: a radio `all_sites`
/// (`1`, preselected; `0`: only the checked sites) and one `site`
/// checkbox per offered site. Without "all sites" (a key grant) the
/// boxes are all there is, every one checked to start with: the person
/// named them a moment ago.
fn site_chooser(c: &SiteChooser<'_>) -> Markup {
    html! {
        fieldset.sites {
            legend { "Sites it may read" }
            @if c.all_offered {
                div { label { input type="radio" name="all_sites" value="1" checked; " All sites (including sites added later)" } }
                @if !c.listed.is_empty() {
                    div { label { input type="radio" name="all_sites" value="0"; " Only the sites checked below (at most 20)" } }
                }
            } @else {
                input type="hidden" name="all_sites" value="0";
                p { "Check the sites this connection may read (at most 20)." }
            }
            @for site in c.listed {
                div.under[c.all_offered] { label { input type="checkbox" name="site" value=(site) checked[!c.all_offered]; " " code { (site) } } }
            }
            @if c.cut > 0 {
                p.muted { (c.cut) " more sites are not listed; choose all sites to include them." }
            }
        }
    }
}

/// How the consent page names a Plausible key: never the key, at most
/// its last four characters (the sites are the chooser's).
pub struct KeyView<'a> {
    pub tail: &'a str,
}

/// The consent page: who is asking, where it will send you, what it may
/// do, and as whom.
pub fn consent_page(view: &ConsentView<'_>) -> Response {
    let body = html! {
        h1 { "Allow " bdi { (view.client_name) } " to access Plausible Analytics?" }
        div.box {
            dl {
                dt { "Application" }
                dd {
                    bdi { (view.client_name) } " "
                    span.muted { "(client id " code { (view.client_id) } "; it " (view.client_source) ")" }
                }
                dt { "After approval you will be sent to" }
                dd { code { (view.redirect_host) } }
                @if !view.scopes.is_empty() {
                    dt { @if view.already_allowed.is_empty() { "It will be able to" } @else { "It asks to also" } }
                    dd {
                        ul #scopes-asked {
                            @for (scope, meaning) in &view.scopes {
                                li { code { (scope) } " — " (meaning) }
                            }
                        }
                    }
                }
                @if !view.already_allowed.is_empty() {
                    dt { "Already allowed" }
                    dd {
                        ul #scopes-allowed {
                            @for (scope, meaning) in &view.already_allowed {
                                li { code { (scope) } " — " (meaning) }
                            }
                        }
                    }
                }
                @if let Some(key) = &view.key {
                    dt { "With" }
                    dd.key { "your Plausible API key ending in " code { "…" (key.tail) } }
                } @else {
                    dt { "Signed in as" }
                    dd { (view.email) }
                }
            }
        }
        form method="post" action="/consent" {
            input type="hidden" name="ticket" value=(view.ticket);
            input type="hidden" name="csrf" value=(view.csrf);
            (site_chooser(&view.sites))
            div.actions {
                button.primary type="submit" name="decision" value="approve" { "Approve" }
                button type="submit" name="decision" value="deny" { "Deny" }
            }
        }
        p.muted { "Only approve applications you are connecting yourself. You can see and revoke the applications connected to your account at " a href="/connections" { "Connected applications" } "." }
    };
    page(
        200,
        "Approve access",
        None,
        body,
        &["'self'", view.redirect_origin],
    )
}

/// What the `/mcp` key form shows and carries. Every field is text; the
/// template escapes all of it.
pub struct KeyFormView<'a> {
    pub status: u16,
    /// The machine-readable reason when the form comes back with a
    /// problem, as `<meta name="error">`.
    pub code: Option<&'a str>,
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub redirect_host: &'a str,
    /// What to fix, when the form comes back.
    pub problem: Option<&'a str>,
    /// The sites as the person typed them (never the key).
    pub sites: &'a str,
    pub max_sites: usize,
    pub ticket: &'a str,
    pub csrf: &'a str,
}

/// The key form of a `/mcp` authorization: which application asks, the
/// key field (never pre-filled, `autocomplete="off"`), the sites, and
/// what happens to the key. It posts only to this server.
pub fn key_form_page(view: &KeyFormView<'_>) -> Response {
    let body = html! {
        h1 { "Connect " bdi { (view.client_name) } " with your Plausible API key" }
        div.box {
            dl {
                dt { "Application" }
                dd {
                    bdi { (view.client_name) } " "
                    span.muted { "(client id " code { (view.client_id) } ")" }
                }
                dt { "After approval you will be sent to" }
                dd { code { (view.redirect_host) } }
            }
        }
        @if let Some(problem) = view.problem {
            p.notice role="alert" { (problem) }
        }
        form method="post" action="/authorize/key" autocomplete="off" {
            input type="hidden" name="ticket" value=(view.ticket);
            input type="hidden" name="csrf" value=(view.csrf);
            p {
                label for="api_key" { "Plausible API key" } br;
                input #api_key type="password" name="api_key" required autocomplete="off" spellcheck="false" autocapitalize="off" size="48";
                br;
                span.muted { "Create one in Plausible under Account settings → API keys (a Stats API key)." }
            }
            p {
                label for="sites" { "Sites this connection may read" } br;
                textarea #sites name="sites" rows="4" cols="48" required spellcheck="false" autocapitalize="off" { (view.sites) }
                br;
                span.muted { "Each site's domain as Plausible shows it, one per line or separated by commas; at most " (view.max_sites) ". Each is checked with one query." }
            }
            div.actions {
                button.primary type="submit" { "Continue" }
            }
        }
        p.muted { "Your key is checked with Plausible, then kept encrypted on this server for this connection only. It is never shown again. You can revoke the connection at " a href="/connections" { "Connected applications" } ", or delete the key in Plausible." }
    };
    page(
        view.status,
        "Connect with your Plausible API key",
        view.code,
        body,
        &["'self'"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(name: &'a str, email: &'a str) -> ConsentView<'a> {
        ConsentView {
            client_name: name,
            client_id: "pmcp_client_A",
            client_source: "registered itself with this server",
            redirect_host: "app.example",
            redirect_origin: "https://app.example",
            scopes: vec![("mcp", "read statistics")],
            already_allowed: vec![],
            email,
            key: None,
            ticket: "T\"><script>",
            csrf: "C",
            sites: SiteChooser {
                all_offered: true,
                listed: &[],
                cut: 0,
            },
        }
    }

    #[test]
    fn interpolations_are_escaped_in_text_and_attributes() {
        let r = consent_page(&view(
            "<script>alert('x')</script> Evil & Co",
            "a@example.com",
        ));
        let html = String::from_utf8(r.body).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert('x')&lt;/script&gt; Evil &amp; Co"));
        assert!(
            html.contains("name=\"ticket\" value=\"T&quot;&gt;&lt;script&gt;\""),
            "{html}"
        );
        let r = error_page(400, "Bad <request>", "client \"<b>\"", "x\"y");
        let html = String::from_utf8(r.body).unwrap();
        assert!(html.contains("Bad &lt;request&gt;") && !html.contains("<b>"));
        assert!(
            html.contains("<meta name=\"error\" content=\"x&quot;y\">"),
            "{html}"
        );
    }

    #[test]
    fn the_back_to_client_page_links_without_navigating_by_itself() {
        let r = back_to_client_page(&BackToClientView {
            status: 400,
            heading: "Cannot continue",
            message: "scope \"admin\" is not offered",
            code: "invalid_scope",
            client_name: "Evil \u{202e}<b>",
            redirect_host: "app.example",
            link: "https://app.example/cb?error=invalid_scope&state=a%22b&iss=https%3A%2F%2Fmcp.example.com",
        });
        assert_eq!(r.status, 400);
        let html = String::from_utf8(r.body).unwrap();
        assert!(html.contains("<meta name=\"error\" content=\"invalid_scope\">"));
        assert!(html.contains("<bdi>Evil \u{202e}&lt;b&gt;</bdi>"), "{html}");
        assert!(html.contains(
            "href=\"https://app.example/cb?error=invalid_scope&amp;state=a%22b&amp;iss=https%3A%2F%2Fmcp.example.com\""
        ));
        assert!(!html.contains("http-equiv") && !html.contains("<script"));
        assert!(r.headers.get("location").is_none());
        let csp = r.headers.get("content-security-policy").unwrap();
        assert!(!csp.contains("script-src") && csp.contains("default-src 'none'"));
    }

    /// Issue 15: "all sites" preselected beside the offered sites; for a
    /// grant that must name its sites, the boxes alone, all checked.
    #[test]
    fn the_site_chooser_in_both_modes() {
        let listed = ["a.example".to_owned(), "<b>.example".to_owned()];
        let mut v = view("App", "a@example.com");
        v.sites = SiteChooser {
            all_offered: true,
            listed: &listed,
            cut: 3,
        };
        let html = String::from_utf8(consent_page(&v).body).unwrap();
        assert!(html.contains(r#"<input type="radio" name="all_sites" value="1" checked>"#));
        assert!(html.contains(r#"<input type="radio" name="all_sites" value="0">"#));
        assert!(html.contains(r#"<input type="checkbox" name="site" value="a.example">"#));
        assert!(html.contains(r#"value="&lt;b&gt;.example""#) && !html.contains("<b>"));
        assert!(html.contains("3 more sites are not listed"));
        let form = &html[html.find("<form").unwrap()..html.find("</form>").unwrap()];
        assert!(form.contains("name=\"site\""), "inside the form");
        v.sites = SiteChooser {
            all_offered: false,
            listed: &listed,
            cut: 0,
        };
        let html = String::from_utf8(consent_page(&v).body).unwrap();
        assert!(!html.contains(r#"type="radio""#), "{html}");
        assert!(html.contains(r#"<input type="hidden" name="all_sites" value="0">"#));
        assert!(html.contains(r#"<input type="checkbox" name="site" value="a.example" checked>"#));
        // Only "all sites" when nothing can be listed.
        v.sites = SiteChooser {
            all_offered: true,
            listed: &[],
            cut: 0,
        };
        let html = String::from_utf8(consent_page(&v).body).unwrap();
        assert!(html.contains(r#"value="1" checked"#) && !html.contains(r#"value="0""#));
    }

    #[test]
    fn the_consent_page_isolates_the_name() {
        let html =
            String::from_utf8(consent_page(&view("App\u{202e}", "a@example.com")).body).unwrap();
        assert!(
            html.contains("Allow <bdi>App\u{202e}</bdi> to access"),
            "{html}"
        );
    }

    #[test]
    fn pages_carry_a_strict_csp_matching_the_style() {
        let r = error_page(400, "Bad <request>", "client \"<b>\"", "bad_request");
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(body.starts_with("<!DOCTYPE html>"));
        assert!(body.contains("<meta name=\"error\" content=\"bad_request\">"));
        let csp = r.headers.get("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
        assert!(csp.contains("form-action 'none'"));
        let with_form = consent_page(&view("App", "a@example.com"));
        let csp = with_form.headers.get("content-security-policy").unwrap();
        assert!(
            csp.contains("form-action 'self' https://app.example;"),
            "{csp}"
        );
        assert!(
            !String::from_utf8(with_form.body)
                .unwrap()
                .contains("name=\"error\"")
        );
        assert_eq!(r.status, 400);
    }
}
