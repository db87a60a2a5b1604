//! The rules a `client_id` URL must follow to name a client ID metadata
//! document (CIMD §3 "Client Identifier URL"), checked on the string as
//! given, before anything is fetched.

use url::Url;

use crate::http::is_loopback;
use crate::oauth::types::ClientId;
use crate::ssrf_guard::FetchPolicy;

/// Why a `client_id` is not a usable Client Identifier URL (CIMD §3
/// "Client Identifier URL").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIdUrlError {
    /// Not an absolute URL, or written in a way that parsers disagree on
    /// (backslashes).
    Malformed,
    /// A non-ASCII host (percent-encoded in the id): this build's URL
    /// parser has no Unicode IDNA tables, so the name must be Punycode.
    NonAsciiHost,
    /// "MUST use the https URL scheme" (plain http is accepted for a
    /// loopback host under the development policy only).
    Scheme,
    /// "MUST NOT contain a userinfo component".
    UserInfo,
    /// "MUST contain a path component"; `/` alone names the site root,
    /// which the draft calls NOT RECOMMENDED and we refuse.
    NoPath,
    /// "MUST NOT contain single-dot or double-dot path components",
    /// percent-encoded or not.
    DotSegment,
    /// "MUST NOT contain a fragment component".
    Fragment,
}

impl ClientIdUrlError {
    pub fn describe(self) -> &'static str {
        match self {
            ClientIdUrlError::Malformed => "it is not an absolute URL",
            ClientIdUrlError::NonAsciiHost => {
                "its host is not ASCII; write an internationalized domain name in Punycode (xn--…)"
            }
            ClientIdUrlError::Scheme => "it must use https",
            ClientIdUrlError::UserInfo => "it must not contain a username or password",
            ClientIdUrlError::NoPath => {
                "it must have a path, such as https://example.com/client.json"
            }
            ClientIdUrlError::DotSegment => "its path must not contain . or .. segments",
            ClientIdUrlError::Fragment => "it must not contain a fragment (#)",
        }
    }
}

/// CIMD §3 "Client Identifier URL" rules, checked on the string as given
/// because the URL parser would silently remove dot segments.
pub fn parse(client_id: &ClientId, policy: FetchPolicy) -> Result<Url, ClientIdUrlError> {
    let raw = client_id.as_str();
    // WHATWG URL parsing treats `\` as `/` in https URLs; other parsers do
    // not. A client_id must mean one thing.
    if raw.contains('\\') {
        return Err(ClientIdUrlError::Malformed);
    }
    let url = Url::parse(raw).map_err(|e| match e {
        url::ParseError::IdnaError => ClientIdUrlError::NonAsciiHost,
        _ => ClientIdUrlError::Malformed,
    })?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_loopback_http && is_loopback(&url) => {}
        _ => return Err(ClientIdUrlError::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ClientIdUrlError::UserInfo);
    }
    if url.fragment().is_some() || raw.contains('#') {
        return Err(ClientIdUrlError::Fragment);
    }
    if has_dot_segment(raw) {
        return Err(ClientIdUrlError::DotSegment);
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(ClientIdUrlError::NoPath);
    }
    Ok(url)
}

/// Whether the path of `raw` (an absolute URL with an authority) has a
/// `.` or `..` segment, including `%2e` spellings.
fn has_dot_segment(raw: &str) -> bool {
    let after_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let before_query = after_scheme.split(['?', '#']).next().unwrap_or("");
    let Some((_authority, path)) = before_query.split_once('/') else {
        return false;
    };
    path.split('/').any(|segment| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    })
}
