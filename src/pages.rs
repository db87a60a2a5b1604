//! Server-rendered HTML pages: the authorization error page and the
//! consent page. Everything interpolated is escaped; the CSP allows no
//! script at all and only our one stylesheet, by hash.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::http::Response;

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2937}h1{font-size:1.35rem}.box{border:1px solid #e5e7eb;border-radius:.5rem;padding:1rem 1.25rem}dt{font-weight:600}dd{margin:0 0 .75rem}code{background:#f3f4f6;padding:0 .25rem;border-radius:.25rem}.actions{display:flex;gap:.75rem;margin-top:1.25rem}button{font:inherit;padding:.5rem 1.25rem;border-radius:.375rem;border:1px solid #d1d5db;background:#fff;cursor:pointer}button.primary{background:#4f46e5;border-color:#4f46e5;color:#fff}.muted{color:#6b7280;font-size:.9rem}";

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

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

/// A complete page without forms. `body` must already be escaped HTML.
pub fn page(status: u16, title: &str, body: &str) -> Response {
    page_with_forms(status, title, body, &[])
}

/// A page whose forms may submit to (and be redirected to) `form_targets`.
pub fn page_with_forms(status: u16, title: &str, body: &str, form_targets: &[&str]) -> Response {
    // Pages with forms send their origin with the post (browsers send
    // `Origin: null` under no-referrer, which the consent check refuses);
    // nothing ever goes to another origin.
    let referrer = if form_targets.is_empty() {
        "no-referrer"
    } else {
        "same-origin"
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"referrer\" content=\"{referrer}\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    Response::html(status, html)
        .with_header("content-security-policy", csp(form_targets))
        .with_header("x-frame-options", "DENY")
        .with_header("referrer-policy", referrer)
}

/// A page explaining why a sign-in cannot continue.
pub fn error_page(status: u16, heading: &str, message: &str) -> Response {
    page(
        status,
        heading,
        &format!(
            "<h1>{}</h1><div class=\"box\"><p>{}</p></div><p class=\"muted\">Plausible Analytics MCP server. You can close this tab and try connecting again.</p>",
            escape(heading),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn pages_carry_a_strict_csp_matching_the_style() {
        let r = error_page(400, "Bad <request>", "client \"<b>\"");
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(body.contains("Bad &lt;request&gt;") && !body.contains("<b>"));
        let csp = r.headers.get("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
        assert!(csp.contains("form-action 'none'"));
        let with_form = page_with_forms(200, "t", "", &["'self'", "https://app.example"]);
        let csp = with_form.headers.get("content-security-policy").unwrap();
        assert!(
            csp.contains("form-action 'self' https://app.example;"),
            "{csp}"
        );
        assert_eq!(r.status, 400);
    }
}
