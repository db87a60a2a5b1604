//! OAuth protocol values a request carries, as newtypes built by a
//! fallible `parse`: client ids, redirect URIs, scopes, PKCE challenges,
//! `state`; and this server's own issuer and resource identifiers.
//!
//! URL-valued types keep the exact string they were given: OAuth compares
//! redirect URIs and resources by exact string (RFC 6749 §3.1.2.3,
//! OAuth 2.1 §2.3.1), never after normalisation.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::http::Request;

/// This authorization server's issuer identifier (RFC 8414 §2): the
/// origin the deployment is reached at, `https://host[:port]`, with no
/// path and no trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Issuer(String);

impl Issuer {
    /// The origin of the request (the same for every path of a host).
    pub fn of(request: &Request) -> Self {
        Self(request.origin())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of one of our endpoints, `path` starting with `/`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which of this deployment's two protected resources a grant or token
/// is for. Tokens of one are never accepted by the other (RFC 8707 §2;
/// MCP authorization: a server MUST refuse tokens issued for another
/// resource).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// `/internal`: the organisation's shared key, behind company sign-in.
    Internal,
    /// `/mcp`: the person's own Plausible key, pasted on the key form.
    Mcp,
}

impl Audience {
    /// The endpoint's path, which is also the resource URI's path.
    pub fn path(self) -> &'static str {
        match self {
            Audience::Internal => "/internal",
            Audience::Mcp => "/mcp",
        }
    }

    /// The audience a `resource` parameter names (RFC 8707 §2): absent
    /// means `/internal` (older clients omit it); either resource URI,
    /// with or without a trailing slash, names its endpoint; anything
    /// else is no resource of ours (`invalid_target`).
    pub fn of_param(issuer: &Issuer, requested: Option<&str>) -> Option<Self> {
        let Some(requested) = requested else {
            return Some(Audience::Internal);
        };
        [Audience::Internal, Audience::Mcp]
            .into_iter()
            .find(|a| Resource::for_audience(issuer, *a).is_named_by(requested))
    }
}

/// A protected resource's canonical URI (RFC 8707 §2, RFC 9728 §2):
/// `<issuer>/internal` or `<issuer>/mcp`, as stored in codes, grants and
/// access records (records of earlier releases all hold `/internal`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Resource(String);

impl Resource {
    /// `/internal` of this deployment.
    pub fn of(issuer: &Issuer) -> Self {
        Self::for_audience(issuer, Audience::Internal)
    }

    /// The resource URI of `audience` on this deployment.
    pub fn for_audience(issuer: &Issuer, audience: Audience) -> Self {
        Self(issuer.endpoint(audience.path()))
    }

    /// Which endpoint of this deployment the resource is, if any.
    pub fn audience(&self, issuer: &Issuer) -> Option<Audience> {
        [Audience::Internal, Audience::Mcp]
            .into_iter()
            .find(|a| Self::for_audience(issuer, *a) == *self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a `resource` parameter names this resource. The one place
    /// a trailing slash is forgiven: clients differ on writing it, and
    /// RFC 8707 §2 identifies the resource, not its spelling of the path's
    /// end.
    pub fn is_named_by(&self, requested: &str) -> bool {
        requested.trim_end_matches('/') == self.0
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client's `state` (RFC 6749 §4.1.1), returned unchanged. Opaque to
/// us; bounded so it cannot bloat what we store and redirect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct State(String);

/// Longest `state` we carry.
pub const MAX_STATE: usize = 1024;

impl State {
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() <= MAX_STATE).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client identifier (RFC 6749 §2.2): one we issued at registration, or
/// an https URL naming a client ID metadata document.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Any visible ASCII up to 2 KiB; its meaning is decided by lookup.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty() && raw.len() <= 2048 && raw.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Registered clients get `pmcp_` ids; anything starting with
    /// `https://` is a metadata document URL.
    pub fn is_metadata_document(&self) -> bool {
        self.0.starts_with("https://") || self.0.starts_with("http://")
    }
}

/// Why a redirect URI is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectUriError {
    NotAbsolute,
    /// Only https, or http on a loopback host (RFC 8252 §7.3, §8.3).
    Scheme,
    /// Fragments are forbidden (RFC 6749 §3.1.2).
    Fragment,
    /// Credentials in a redirect URI are a phishing vector.
    UserInfo,
    TooLong,
    /// A control character or whitespace anywhere in the string (a URL
    /// parser silently drops tabs and newlines, so `…\r\nSet-Cookie: …`
    /// would otherwise be accepted and kept).
    ControlOrSpace,
    /// The host is neither a DNS name (letters, digits and hyphens in
    /// dot-separated labels) nor an IP literal: `*` wildcards and other
    /// characters a URL parser lets through are refused.
    Host,
    /// A non-ASCII host: this build's URL parser has no Unicode IDNA
    /// tables (see Cargo.toml, `idna_adapter`), so an internationalized
    /// name must be written in Punycode (`xn--…`).
    NonAsciiHost,
}

/// The hosts an `http` redirect URI may name (RFC 8252 §7.3, §8.3): the
/// two loopback literals and `localhost`, which Claude Code, Claude
/// Desktop and MCP Inspector register. Not the rest of 127.0.0.0/8.
fn is_loopback_redirect_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// Whether a host the URL parser accepted as a domain is a DNS name
/// (RFC 1123 §2.1 LDH labels; IDNs arrive here as their A-labels).
fn is_dns_name(domain: &str) -> bool {
    domain.len() <= 253
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// A redirection endpoint (RFC 6749 §3.1.2), kept as given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri {
    raw: String,
    url: Url,
}

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, RedirectUriError> {
        if raw.len() > 2048 {
            return Err(RedirectUriError::TooLong);
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(RedirectUriError::ControlOrSpace);
        }
        let url = Url::parse(raw).map_err(|e| match e {
            url::ParseError::IdnaError => RedirectUriError::NonAsciiHost,
            _ => RedirectUriError::NotAbsolute,
        })?;
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if is_loopback_redirect_host(&url) => {}
            _ => return Err(RedirectUriError::Scheme),
        }
        match url.host() {
            Some(url::Host::Domain(d)) if !is_dns_name(d) => return Err(RedirectUriError::Host),
            _ => {}
        }
        if url.fragment().is_some() || raw.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::UserInfo);
        }
        Ok(Self {
            raw: raw.to_owned(),
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }

    /// The parsed URI, for rules that need its scheme, host or port.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `scheme://host[:port]`, for the consent page's CSP.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// Appends response parameters, keeping any query the client
    /// registered (RFC 6749 §4.1.2).
    pub fn with_params(&self, params: &[(&str, &str)]) -> String {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }

    /// Exact match against a registered list (OAuth 2.1 §2.3.1: simple
    /// string comparison). For loopback URIs the port may differ
    /// (RFC 8252 §7.3): native apps bind an ephemeral port.
    pub fn matches_registered(&self, registered: &[RedirectUri]) -> bool {
        registered.iter().any(|r| r.same_endpoint(self))
    }

    /// The same redirection endpoint: the exact string, or for an http
    /// loopback URI the same host (compared exactly: `localhost` is not
    /// `127.0.0.1`), path and query on any port (RFC 8252 §7.3). Consent
    /// uses it too, so a native client is not asked again for every
    /// ephemeral port it binds.
    pub fn same_endpoint(&self, other: &RedirectUri) -> bool {
        self.raw == other.raw
            || (self.url.scheme() == "http"
                && is_loopback_redirect_host(&self.url)
                && other.url.scheme() == "http"
                && self.url.host() == other.url.host()
                && self.url.path() == other.url.path()
                && self.url.query() == other.url.query())
    }
}

impl TryFrom<String> for RedirectUri {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).map_err(|e| format!("{e:?}"))
    }
}

impl From<RedirectUri> for String {
    fn from(r: RedirectUri) -> String {
        r.raw
    }
}

pub use super::scope::{DEFAULT_SCOPE, SUPPORTED_SCOPES, ScopeError, ScopeSet};

/// A PKCE S256 code challenge: BASE64URL(SHA256(verifier)), 43 characters
/// (RFC 7636 §4.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == 43
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// BASE64URL(SHA256(code_verifier)) (RFC 7636 §4.2).
pub fn s256(verifier: &crate::secret::PkceVerifier) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.secret().as_bytes()))
}

/// Whether a string is a valid PKCE code verifier: 43–128 characters of
/// `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
pub fn is_valid_verifier(raw: &str) -> bool {
    (43..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::PkceVerifier;

    #[test]
    fn redirect_uri_rules() {
        use RedirectUriError::*;
        let cases = [
            ("https://claude.ai/api/mcp/auth_callback", Ok(())),
            ("https://app.example.com/cb?x=1", Ok(())),
            ("http://127.0.0.1:33418/callback", Ok(())),
            ("http://localhost/callback", Ok(())),
            ("http://[::1]:9000/cb", Ok(())),
            ("http://example.com/cb", Err(Scheme)),
            ("http://127.0.0.1.evil.example/cb", Err(Scheme)),
            ("javascript:alert(1)", Err(Scheme)),
            ("data:text/html,hi", Err(Scheme)),
            ("file:///etc/passwd", Err(Scheme)),
            ("com.example.app:/cb", Err(Scheme)),
            ("https://a.example/cb#frag", Err(Fragment)),
            ("https://a.example/cb#", Err(Fragment)),
            ("https://user:pw@a.example/cb", Err(UserInfo)),
            ("/relative/cb", Err(NotAbsolute)),
            ("", Err(NotAbsolute)),
            // Issue 10: only the loopback literals and `localhost`.
            ("http://127.0.0.2/cb", Err(Scheme)),
            ("http://0.0.0.0/cb", Err(Scheme)),
            ("http://LOCALHOST:8080/cb", Ok(())),
            // Issue 10: hosts are DNS names or IP literals.
            ("https://*.example.com/cb", Err(Host)),
            ("https://*/cb", Err(Host)),
            ("https://a_b.example/cb", Err(Host)),
            ("https://-a.example/cb", Err(Host)),
            ("https://a.example./cb", Err(Host)),
            ("https://a..example/cb", Err(Host)),
            ("https://a$b.example/cb", Err(Host)),
            ("https://203.0.113.9/cb", Ok(())),
            ("https://[2001:db8::1]/cb", Ok(())),
            ("https://münchen.example/cb", Err(NonAsciiHost)),
            ("https://m%C3%BCnchen.example/cb", Err(NonAsciiHost)),
            ("https://xn--mnchen-3ya.example/cb", Ok(())),
            // Issue 10: no control characters or whitespace anywhere.
            (
                "https://a.example/cb\r\nSet-Cookie: x=1",
                Err(ControlOrSpace),
            ),
            ("https://a.example/c\tb", Err(ControlOrSpace)),
            (" https://a.example/cb", Err(ControlOrSpace)),
            ("https://a.example/cb ", Err(ControlOrSpace)),
            ("https://a.example/c b", Err(ControlOrSpace)),
            ("https://a.example/cb\u{0}", Err(ControlOrSpace)),
            ("https://a.example/cb\u{85}", Err(ControlOrSpace)),
            ("https://a.example/cb\u{3000}", Err(ControlOrSpace)),
        ];
        for (raw, expected) in cases {
            assert_eq!(RedirectUri::parse(raw).map(|_| ()), expected, "{raw}");
        }
        let long = format!("https://a.example/{}", "x".repeat(2100));
        assert_eq!(RedirectUri::parse(&long).map(|_| ()), Err(TooLong));
    }

    #[test]
    fn redirect_matching_is_exact_except_loopback_ports() {
        let reg = |s: &str| RedirectUri::parse(s).unwrap();
        let registered = vec![
            reg("https://a.example/cb"),
            reg("http://127.0.0.1/callback"),
        ];
        let cases = [
            ("https://a.example/cb", true),
            ("https://a.example/cb/", false),
            ("https://A.example/cb", false),
            ("https://a.example/cb?x=1", false),
            ("https://a.example:443/cb", false),
            ("http://127.0.0.1:51234/callback", true),
            ("http://127.0.0.1:51234/other", false),
            ("http://localhost:51234/callback", false),
            ("http://[::1]:51234/callback", false),
            ("http://127.0.0.1:51234/callback?x=1", false),
        ];
        for (raw, expected) in cases {
            assert_eq!(reg(raw).matches_registered(&registered), expected, "{raw}");
        }
    }

    #[test]
    fn resource_is_named_with_or_without_a_trailing_slash_only() {
        let request = Request::new(
            crate::http::Method::Get,
            Url::parse("https://mcp.example.com/token?x=1").unwrap(),
        );
        let issuer = Issuer::of(&request);
        assert_eq!(issuer.as_str(), "https://mcp.example.com");
        let resource = Resource::of(&issuer);
        assert_eq!(resource.as_str(), "https://mcp.example.com/internal");
        for (raw, named) in [
            ("https://mcp.example.com/internal", true),
            ("https://mcp.example.com/internal/", true),
            ("https://mcp.example.com/mcp", false),
            ("https://other.example/internal", false),
            ("https://mcp.example.com/internal/x", false),
        ] {
            assert_eq!(resource.is_named_by(raw), named, "{raw}");
        }
        let mcp = Resource::for_audience(&issuer, Audience::Mcp);
        assert_eq!(mcp.as_str(), "https://mcp.example.com/mcp");
        assert_eq!(mcp.audience(&issuer), Some(Audience::Mcp));
        assert_eq!(resource.audience(&issuer), Some(Audience::Internal));
        let elsewhere = Issuer::of(&Request::new(
            crate::http::Method::Get,
            Url::parse("https://other.example/").unwrap(),
        ));
        assert_eq!(mcp.audience(&elsewhere), None);
        for (raw, audience) in [
            (None, Some(Audience::Internal)),
            (
                Some("https://mcp.example.com/internal"),
                Some(Audience::Internal),
            ),
            (
                Some("https://mcp.example.com/internal/"),
                Some(Audience::Internal),
            ),
            (Some("https://mcp.example.com/mcp"), Some(Audience::Mcp)),
            (Some("https://mcp.example.com/mcp/"), Some(Audience::Mcp)),
            (Some("https://mcp.example.com/mcpx"), None),
            (Some("https://mcp.example.com/"), None),
            (Some("https://mcp.example.com"), None),
            (Some("https://other.example/mcp"), None),
            (Some(""), None),
        ] {
            assert_eq!(Audience::of_param(&issuer, raw), audience, "{raw:?}");
        }
        assert!(State::parse(&"s".repeat(MAX_STATE)).is_some());
        assert!(State::parse(&"s".repeat(MAX_STATE + 1)).is_none());
    }

    #[test]
    fn pkce_rfc7636_appendix_b_vector() {
        let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        assert_eq!(s256(&verifier), challenge.as_str());
        assert_ne!(
            s256(&PkceVerifier::new(
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"
            )),
            challenge.as_str()
        );
        assert!(CodeChallenge::parse("short").is_none());
        assert!(CodeChallenge::parse(&"=".repeat(43)).is_none());
        assert!(is_valid_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!is_valid_verifier("too-short"));
        assert!(!is_valid_verifier(&"a+".repeat(30)));
    }
}
