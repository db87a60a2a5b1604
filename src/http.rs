//! The HTTP request and response the core speaks, and the parsers of what
//! requests carry: query strings and forms (each parameter once), cookies,
//! media types, `Authorization` credentials.
//!
//! Handlers never see `worker::Request`: the Workers glue converts at the
//! edge, so every route can be driven by native tests with plain values.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;
use url::{Host, Url};

/// Request methods the product distinguishes; anything else is `Other`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Delete,
    Options,
    /// Methods we route nowhere (built by the Workers glue).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    Other(String),
}

impl Method {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub fn parse(raw: &str) -> Self {
        match raw.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        }
    }
}

/// An ordered header list with case-insensitive names (RFC 9110 §5.1).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order (for `Set-Cookie`, `Cookie`).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces any existing values of `name`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.0.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Adds a value, keeping existing ones (for `Set-Cookie`).
    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Sets `name` only when the handler did not already choose a value.
    pub fn set_default(&mut self, name: &str, value: &str) {
        if self.get(name).is_none() {
            self.append(name, value);
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The credentials of `Authorization: <scheme> <credentials>`, trimmed,
    /// when the scheme matches case-insensitively (RFC 9110 §11.6.2, §11.1).
    pub fn credentials(&self, scheme: &str) -> Option<&str> {
        let (given, value) = self.get("authorization")?.trim().split_once(' ')?;
        given.eq_ignore_ascii_case(scheme).then_some(value.trim())
    }
}

/// Query or form parameters, each present once.
pub type Params = HashMap<String, String>;

/// A parameter that appears more than once; OAuth refuses those
/// (RFC 6749 §3.1, §3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repeated(pub String);

/// `application/x-www-form-urlencoded` pairs (a query string or a form
/// body, WHATWG URL §5.1), refusing repeated names.
pub fn single_params(encoded: &[u8]) -> Result<Params, Repeated> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(encoded) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(Repeated(k.into_owned()));
        }
    }
    Ok(out)
}

/// Why a form body was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    /// Not `application/x-www-form-urlencoded`.
    MediaType,
    Repeated(String),
}

/// A form post's parameters, each given once.
pub fn form(headers: &Headers, body: &[u8]) -> Result<Params, FormError> {
    if headers.get("content-type").map(media_type).as_deref()
        != Some("application/x-www-form-urlencoded")
    {
        return Err(FormError::MediaType);
    }
    single_params(body).map_err(|Repeated(name)| FormError::Repeated(name))
}

/// A form post's parameters, each given once, except `list`, which may
/// repeat (checkboxes of one name, HTML §4.10.21.4) and is returned apart
/// in the order posted.
pub fn form_with_list(
    headers: &Headers,
    body: &[u8],
    list: &str,
) -> Result<(Params, Vec<String>), FormError> {
    if headers.get("content-type").map(media_type).as_deref()
        != Some("application/x-www-form-urlencoded")
    {
        return Err(FormError::MediaType);
    }
    let mut single = HashMap::new();
    let mut listed = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        if k == list {
            listed.push(v.into_owned());
        } else if single.insert(k.to_string(), v.to_string()).is_some() {
            return Err(FormError::Repeated(k.into_owned()));
        }
    }
    Ok((single, listed))
}

/// One form-urlencoded component decoded (`+` is a space), as client
/// credentials are in HTTP Basic (RFC 6749 §2.3.1).
pub fn form_decode(component: &str) -> Option<String> {
    form_urlencoded::parse(format!("x={component}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// The value of the cookie `name` in the request (RFC 6265 §5.4): the
/// first one of that exact name across every `Cookie` header.
pub fn cookie(headers: &Headers, name: &str) -> Option<String> {
    headers
        .get_all("cookie")
        .flat_map(cookie_pairs)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// The `name=value` pairs of one `Cookie` header (RFC 6265 §4.2.1,
/// `cookie-pair *( ";" SP cookie-pair )`), read exactly as the `cookie`
/// crate's `Cookie::split_parse` reads them (a test compares the two): split
/// at `;`, each piece trimmed, split at its first `=`, name and value
/// trimmed; a piece with no `=` or an empty name is skipped. The crate is not
/// linked for this: its parser also reads `Set-Cookie` attributes, and their
/// `Expires` dates pulled the `time` crate's format parser into the module
/// (~25 KB raw; BENCHMARKS.md, "Size").
fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|piece| {
        let (name, value) = piece.trim().split_once('=')?;
        let name = name.trim();
        (!name.is_empty()).then(|| (name, value.trim()))
    })
}

/// Whether a URL's host is loopback: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Header values can carry credentials (`Authorization`, `Cookie`), so
/// `Debug` prints only the names.
impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<T: IntoIterator<Item = (N, V)>>(iter: T) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.append(&name.into(), value);
        }
        headers
    }
}

/// An incoming request, already read into memory.
#[derive(Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The query string can hold codes and state; the body can hold
        // secrets. Neither belongs in a log line.
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.url.path())
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Request {
    /// A request with no headers or body (tests, and values the core
    /// builds).
    #[cfg(any(test, fuzzing))]
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    pub fn path(&self) -> &str {
        self.url.path()
    }

    /// The origin this deployment is reached at (`scheme://host[:port]`),
    /// used as the OAuth issuer and resource base.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

/// An outgoing response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A JSON body. Serialising our own types cannot fail for the shapes we
    /// use (string keys, no non-finite floats); if it ever did, the client
    /// gets a 500 with a fixed body rather than a panic.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::new(status)
                .with_header("content-type", "application/json")
                .with_body(body),
            Err(_) => Self::new(500)
                .with_header("content-type", "application/json")
                .with_body(br#"{"error":"server_error"}"#.to_vec()),
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Self::new(status)
            .with_header("content-type", "text/html; charset=utf-8")
            .with_body(body.into_bytes())
    }

    /// 302 Found with a `Location` (RFC 9110 §15.4.3).
    pub fn redirect(location: &str) -> Self {
        Self::new(302).with_header("location", location)
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.set(name, value);
        self
    }

    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The body as JSON, for tests.
    #[cfg(any(test, fuzzing))]
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The media type of a `Content-Type` or `Accept` entry, lowercased and
/// without parameters (RFC 9110 §8.3.1).
pub fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Headers every response carries, whatever produced it.
///
/// `Cache-Control: no-store` keeps tokens, metadata and tool results out of
/// shared caches (RFC 6749 §5.1 requires it on token responses; we apply it
/// everywhere so no route can forget). Handlers may set a stricter value
/// for a header; these only fill gaps.
pub fn apply_security_headers(response: &mut Response) {
    let h = &mut response.headers;
    h.set_default("x-content-type-options", "nosniff");
    h.set_default("x-frame-options", "DENY");
    h.set_default("referrer-policy", "no-referrer");
    h.set_default(
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    );
    h.set_default("cache-control", "no-store");
    // Nothing this worker serves is a page to index: OAuth endpoints,
    // consent and error pages, MCP (issue 10).
    h.set_default("x-robots-tag", "noindex, nofollow");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_may_repeat_only_its_list_field() {
        let mut h = Headers::new();
        h.set("content-type", "application/x-www-form-urlencoded");
        let (single, sites) = form_with_list(
            &h,
            b"ticket=T&site=a.example&decision=approve&site=b%2Eexample",
            "site",
        )
        .unwrap();
        assert_eq!(single.get("ticket").map(String::as_str), Some("T"));
        assert_eq!(sites, vec!["a.example", "b.example"]);
        assert_eq!(
            form_with_list(&h, b"ticket=T&ticket=U", "site").unwrap_err(),
            FormError::Repeated("ticket".into())
        );
        h.set("content-type", "text/plain");
        assert_eq!(
            form_with_list(&h, b"site=a", "site").unwrap_err(),
            FormError::MediaType
        );
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let mut h = Headers::new();
        h.append("Content-Type", "application/json");
        assert_eq!(h.get("content-type"), Some("application/json"));
        h.set("CONTENT-TYPE", "text/plain");
        assert_eq!(h.get_all("content-type").count(), 1);
        assert_eq!(h.get("Content-Type"), Some("text/plain"));
    }

    #[test]
    fn debug_never_prints_header_values_or_body() {
        let mut req = Request::new(
            Method::Post,
            Url::parse("https://x.test/token?code=SECRET1").unwrap(),
        );
        req.headers.append("authorization", "Bearer SECRET2");
        req.body = b"code_verifier=SECRET3".to_vec();
        let printed = format!("{req:?}");
        for secret in ["SECRET1", "SECRET2", "SECRET3"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("authorization"));
    }

    #[test]
    fn security_headers_fill_gaps_but_keep_handler_choices() {
        let mut resp = Response::new(200).with_header("x-frame-options", "SAMEORIGIN");
        apply_security_headers(&mut resp);
        assert_eq!(resp.headers.get("x-frame-options"), Some("SAMEORIGIN"));
        assert_eq!(resp.headers.get("cache-control"), Some("no-store"));
        assert_eq!(resp.headers.get("x-content-type-options"), Some("nosniff"));
        assert!(resp.headers.get("strict-transport-security").is_some());
        assert!(resp.headers.get("referrer-policy").is_some());
    }

    #[test]
    fn credentials_match_the_scheme_case_insensitively() {
        let with = |v: &str| -> Headers { [("authorization", v)].into_iter().collect() };
        assert_eq!(with("Bearer  abc ").credentials("bearer"), Some("abc"));
        assert_eq!(
            with("basic dXNlcg==").credentials("Basic"),
            Some("dXNlcg==")
        );
        assert_eq!(with("Basic abc").credentials("bearer"), None);
        assert_eq!(with("Bearer").credentials("bearer"), None);
        assert_eq!(Headers::new().credentials("bearer"), None);
    }

    #[test]
    fn loopback_hosts() {
        for (url, expected) in [
            ("http://localhost:8000/x", true),
            ("http://127.0.0.9/", true),
            ("http://[::1]:1/", true),
            ("http://10.0.0.1/", false),
            ("https://localhost.example/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(url).unwrap()), expected, "{url}");
        }
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(single_params(b"a=1&b=2&a=3"), Err(Repeated("a".into())));
        assert_eq!(single_params(b"a=1&b=2").unwrap().len(), 2);
        let form_headers: Headers = [(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )]
        .into_iter()
        .collect();
        assert_eq!(form(&form_headers, b"x=%20y").unwrap()["x"], " y");
        assert_eq!(
            form(&form_headers, b"x=1&x=2"),
            Err(FormError::Repeated("x".into()))
        );
        assert_eq!(form(&Headers::new(), b"x=1"), Err(FormError::MediaType));
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
    }

    /// `cookie_pairs` reads a `Cookie` header as the `cookie` crate does.
    #[test]
    fn cookie_pairs_match_the_cookie_crate() {
        let headers = [
            "a=1; b=2",
            "a=1;b=2;;  ; c = 3 ",
            " =x; y; =; z=; w==q; v=\"quoted\"; u=a=b",
            "n=\u{a0}v\u{a0}; \u{2003}m=1",
            "",
            ";;;",
            "solo",
            "k=v;",
            "é=ü; x=%20y",
        ];
        for header in headers {
            let ours: Vec<(&str, &str)> = cookie_pairs(header).collect();
            let crate_pairs: Vec<(String, String)> = cookie::Cookie::split_parse(header)
                .filter_map(Result::ok)
                .map(|c| (c.name().to_owned(), c.value().to_owned()))
                .collect();
            let crate_pairs: Vec<(&str, &str)> = crate_pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            assert_eq!(ours, crate_pairs, "{header:?}");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let name = "__Host-pmcp_login_abc";
        let mut h = Headers::new();
        h.append("cookie", format!("a=1; {name}=xyz; {name}x=no"));
        assert_eq!(cookie(&h, name).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "missing"), None);
        let mut h = Headers::new();
        h.append("cookie", format!("x{name}=evil"));
        assert_eq!(cookie(&h, name), None);
        let mut h = Headers::new();
        h.append("cookie", "a=1");
        h.append("cookie", format!("{name}=second-header"));
        assert_eq!(cookie(&h, name).as_deref(), Some("second-header"));
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        assert_eq!(
            media_type("Application/JSON; charset=utf-8"),
            "application/json"
        );
        assert_eq!(
            media_type("text/plain; note=application/json"),
            "text/plain"
        );
    }
}
