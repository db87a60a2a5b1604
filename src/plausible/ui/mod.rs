//! The chart view offered through the MCP Apps extension
//! (`io.modelcontextprotocol/ui`, SEP-1865, stable revision 2026-01-26).
//!
//! One self-contained HTML document ([`CHART_HTML`]) draws the
//! `structuredContent` of `get_timeseries`, `compare_periods` and
//! `find_anomalies` as an SVG line chart. It loads nothing: its own CSP
//! allows only its one inline script and style, by hash. The host hands it
//! the tool result over the JSON-RPC `postMessage` bridge
//! (`ui/initialize`, `ui/notifications/tool-result`). Hosts without the
//! extension ignore the tools' `_meta.ui` and keep the text and structured
//! results.

use serde_json::{Value, json};

/// The extension's identifier (MCP Apps, "Extension Identifier").
pub(crate) const EXTENSION_ID: &str = "io.modelcontextprotocol/ui";

/// The chart's resource URI: UI resources use the `ui://` scheme
/// (MCP Apps, "UI Resource Format").
pub(crate) const CHART_URI: &str = "ui://plausible/chart";

/// The only MIME type MCP Apps defines for views (MCP Apps, "Content
/// Requirements": `mimeType` MUST be `text/html;profile=mcp-app`).
pub(crate) const MIME_TYPE: &str = "text/html;profile=mcp-app";

/// The view itself, embedded at build time.
pub(crate) const CHART_HTML: &str = include_str!("chart.html");

/// Whether the client offered MCP Apps with our MIME type: its
/// `capabilities.extensions["io.modelcontextprotocol/ui"].mimeTypes`
/// lists `text/html;profile=mcp-app` (MCP Apps, "Client (Host)
/// Capabilities"; `mimeTypes` is required there). `capabilities` is the
/// `initialize` request's `capabilities`, or the 2026-07-28 request's
/// `_meta["io.modelcontextprotocol/clientCapabilities"]`.
pub(crate) fn offered(capabilities: Option<&Value>) -> bool {
    capabilities
        .and_then(|c| c.get("extensions"))
        .and_then(|e| e.get(EXTENSION_ID))
        .and_then(|u| u.get("mimeTypes"))
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t.as_str() == Some(MIME_TYPE)))
}

/// The server's side of the negotiation: the entry under
/// `capabilities.extensions` (SEP-2133: a settings object per extension),
/// naming the MIME type this server's views use.
pub(crate) fn declaration() -> Value {
    json!({ "mimeTypes": [MIME_TYPE] })
}

/// A tool definition's `_meta` that links it to the chart (MCP Apps,
/// "Resource Discovery": `_meta.ui.resourceUri`). The default visibility
/// (model and app) stands: the model still reads every result. Written
/// into the static tool definitions by their generator.
#[cfg(test)]
pub(crate) fn tool_meta() -> Value {
    json!({ "ui": { "resourceUri": CHART_URI } })
}

/// The chart content's `_meta` in `resources/read`. No `csp` in
/// `_meta.ui`: the view connects nowhere, so the host's restrictive
/// default applies (MCP Apps, "Host Behavior"); a border is asked for
/// explicitly because hosts' defaults differ.
pub(crate) fn content_meta() -> Value {
    json!({ "ui": { "prefersBorder": true } })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use sha2::{Digest, Sha256};

    use super::*;

    /// The text between `<tag>` and `</tag>`: the document has one of each
    /// (asserted), so this is no general HTML parsing.
    fn element(tag: &str) -> &'static str {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        assert_eq!(CHART_HTML.matches(&open).count(), 1, "{tag}");
        let start = CHART_HTML.find(&open).unwrap() + open.len();
        let end = CHART_HTML.find(&close).unwrap();
        &CHART_HTML[start..end]
    }

    fn hash(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    }

    /// The CSP allows exactly the inline script and style by hash (CSP 3
    /// §8.3 hash-source): editing either without its hash would stop it.
    #[test]
    fn csp_hashes_match_the_inline_script_and_style() {
        let csp = format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'",
            hash(element("script")),
            hash(element("style")),
        );
        assert!(
            CHART_HTML.contains(&format!("content=\"{csp}\"")),
            "the CSP meta should read: {csp}"
        );
    }

    /// Self-contained: no URL-bearing attribute, nothing built from markup.
    #[test]
    fn the_view_loads_nothing_and_writes_no_markup() {
        for needle in [
            " src=",
            " href=",
            "url(",
            "@import",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "Function(",
            "fetch(",
            "XMLHttpRequest",
            "WebSocket",
        ] {
            assert!(!CHART_HTML.contains(needle), "{needle}");
        }
    }

    #[test]
    fn offered_only_with_our_mime_type() {
        let ui = |settings: Value| json!({"extensions": {EXTENSION_ID: settings}});
        let cases = [
            (json!({}), false),
            (json!({"extensions": {}}), false),
            (ui(json!({})), false),
            (ui(json!({"mimeTypes": "text/html;profile=mcp-app"})), false),
            (ui(json!({"mimeTypes": ["text/html"]})), false),
            (ui(json!({"mimeTypes": [MIME_TYPE]})), true),
            (ui(json!({"mimeTypes": ["text/uri-list", MIME_TYPE]})), true),
        ];
        for (caps, expected) in cases {
            assert_eq!(offered(Some(&caps)), expected, "{caps}");
        }
        assert!(!offered(None));
    }
}
