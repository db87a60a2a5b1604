//! The authorization request (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1), parsed
//! into a validated [`AuthorizationRequest`] or an error that says how it
//! may be reported.
//!
//! Until the client and its redirect URI are verified, an error is shown
//! on a page: redirecting to an unverified URI would make us an open
//! redirector (RFC 6749 §4.1.2.1). After that, errors go back to the
//! client with `error`, `state` and `iss` (RFC 9207).

use serde::{Deserialize, Serialize};

use super::clients::record::ClientRecord;
use super::types::{
    Audience, ClientId, CodeChallenge, Issuer, MAX_STATE, RedirectUri, Resource, SUPPORTED_SCOPES,
    ScopeError, ScopeSet, State,
};
use crate::http::Params;

/// Errors shown on a page, never redirected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageError {
    /// A parameter appears twice (RFC 6749 §3.1).
    DuplicateParameter(String),
    MissingClientId,
    /// No such client, or its registration expired.
    UnknownClient,
    /// The client's metadata document could not be used.
    ClientMetadata(String),
    /// `redirect_uri` is required when several are registered.
    MissingRedirectUri,
    /// Not registered for this client (exact match).
    UnregisteredRedirectUri,
    /// An admin blocked this client (`/connections`).
    BlockedClient,
}

impl PageError {
    /// The machine-readable code shown on the page.
    pub fn code(&self) -> &'static str {
        match self {
            PageError::DuplicateParameter(_) => "duplicate_parameter",
            PageError::MissingClientId => "missing_client_id",
            PageError::UnknownClient => "unknown_client",
            PageError::ClientMetadata(_) => "invalid_client_metadata",
            PageError::MissingRedirectUri => "missing_redirect_uri",
            PageError::UnregisteredRedirectUri => "unregistered_redirect_uri",
            PageError::BlockedClient => "client_blocked",
        }
    }

    pub fn message(&self) -> String {
        match self {
            PageError::DuplicateParameter(p) => format!("The parameter \"{p}\" appears more than once."),
            PageError::MissingClientId => "The request has no client_id.".into(),
            PageError::UnknownClient => "This application is not registered with this server (or its registration expired). Reconnect it to register again.".into(),
            PageError::ClientMetadata(reason) => format!("This application's metadata document could not be used: {reason}"),
            PageError::MissingRedirectUri => "The request has no redirect_uri and the application registered several.".into(),
            PageError::UnregisteredRedirectUri => "The redirect_uri is not one this application registered, so this server will not send you there.".into(),
            PageError::BlockedClient => "An administrator of this server has blocked this application. Ask them if you need it.".into(),
        }
    }
}

/// Error codes sent back to the client (RFC 6749 §4.1.2.1, RFC 8707 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectErrorCode {
    InvalidRequest,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
}

impl RedirectErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An error to report by redirecting to the verified redirect URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectError {
    pub redirect_uri: RedirectUri,
    pub state: Option<State>,
    pub code: RedirectErrorCode,
    pub description: String,
}

impl RedirectError {
    /// The `Location` for this error, with `iss` (RFC 9207 §2).
    pub fn location(&self, issuer: &Issuer) -> String {
        let mut params = vec![
            ("error", self.code.as_str()),
            ("error_description", self.description.as_str()),
        ];
        if let Some(state) = &self.state {
            params.push(("state", state.as_str()));
        }
        params.push(("iss", issuer.as_str()));
        self.redirect_uri.with_params(&params)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeError {
    Page(PageError),
    Redirect(Box<RedirectError>),
}

/// A validated authorization request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    /// False when the client omitted `redirect_uri` and its only
    /// registered one is used.
    #[serde(default)]
    pub redirect_uri_given: bool,
    pub state: Option<State>,
    pub scope: ScopeSet,
    pub code_challenge: CodeChallenge,
    /// The canonical URI of `/internal` or `/mcp` (RFC 8707).
    pub resource: Resource,
}

impl AuthorizationRequest {
    /// Where an error for this request is redirected.
    pub fn error(&self, code: RedirectErrorCode, description: &str) -> RedirectError {
        RedirectError {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            code,
            description: description.to_owned(),
        }
    }
}

/// The client id of a request, before anything else is checked.
pub fn client_id_of(params: &Params) -> Result<ClientId, PageError> {
    params
        .get("client_id")
        .and_then(|c| ClientId::parse(c))
        .ok_or(PageError::MissingClientId)
}

/// Validates the rest of a request for a known client.
pub fn validate(
    params: &Params,
    client: &ClientRecord,
    issuer: &Issuer,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let redirect_uri = match params.get("redirect_uri") {
        Some(raw) => RedirectUri::parse(raw)
            .ok()
            .filter(|r| r.matches_registered(&client.redirect_uris))
            .ok_or(AuthorizeError::Page(PageError::UnregisteredRedirectUri))?,
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => return Err(AuthorizeError::Page(PageError::MissingRedirectUri)),
        },
    };
    // From here on the redirect URI is trusted.
    let raw_state = params.get("state");
    let state = raw_state.and_then(|s| State::parse(s));
    let fail = |code, description: &str| {
        Err(AuthorizeError::Redirect(Box::new(RedirectError {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            code,
            description: description.to_owned(),
        })))
    };
    if raw_state.is_some_and(|s| s.len() > MAX_STATE) {
        return fail(
            RedirectErrorCode::InvalidRequest,
            "state is longer than 1024 characters",
        );
    }
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => {
            return fail(
                RedirectErrorCode::InvalidRequest,
                "response_type is required",
            );
        }
        Some(_) => {
            return fail(
                RedirectErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            );
        }
    }
    // RFC 7636 §4.3 defaults a missing method to "plain"; OAuth 2.1 and
    // MCP require S256, so a missing method is refused, not assumed.
    match params.get("code_challenge_method").map(String::as_str) {
        Some("S256") => {}
        None => {
            return fail(
                RedirectErrorCode::InvalidRequest,
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            );
        }
        Some(_) => {
            return fail(
                RedirectErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            );
        }
    }
    let Some(code_challenge) = params
        .get("code_challenge")
        .and_then(|c| CodeChallenge::parse(c))
    else {
        return fail(
            RedirectErrorCode::InvalidRequest,
            "code_challenge must be the 43-character BASE64URL(SHA256(code_verifier))",
        );
    };
    let scope = match ScopeSet::parse(params.get("scope").map(String::as_str)) {
        Ok(s) => s,
        Err(ScopeError::Syntax) => {
            return fail(
                RedirectErrorCode::InvalidScope,
                "scope is not a valid space-separated list",
            );
        }
        Err(ScopeError::Unsupported(s)) => {
            return fail(
                RedirectErrorCode::InvalidScope,
                &format!(
                    "scope \"{}\" is not offered; the scopes offered are {}",
                    s.escape_default(),
                    SUPPORTED_SCOPES.join(", ")
                ),
            );
        }
    };
    // RFC 8707 §2: the resource must name one of our protected
    // resources. An omitted resource means `/internal` (MCP clients send
    // it; older ones may not).
    let Some(audience) = Audience::of_param(issuer, params.get("resource").map(String::as_str))
    else {
        return fail(
            RedirectErrorCode::InvalidTarget,
            &format!(
                "resource must be {} or {}",
                Resource::for_audience(issuer, Audience::Internal),
                Resource::for_audience(issuer, Audience::Mcp)
            ),
        );
    };
    let resource = Resource::for_audience(issuer, audience);
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        redirect_uri_given: params.contains_key("redirect_uri"),
        state,
        scope,
        code_challenge,
        resource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::client_record;
    use std::collections::HashMap;

    const RESOURCE: &str = "https://mcp.example.com/internal";

    fn client() -> ClientRecord {
        client_record(
            "pmcp_client_A",
            &["https://app.example/cb", "http://127.0.0.1/callback"],
        )
    }

    fn base() -> Vec<(&'static str, String)> {
        vec![
            ("response_type", "code".into()),
            ("client_id", "pmcp_client_A".into()),
            ("redirect_uri", "https://app.example/cb".into()),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            ),
            ("code_challenge_method", "S256".into()),
            ("state", "xyz".into()),
            ("scope", "mcp".into()),
            ("resource", RESOURCE.into()),
        ]
    }

    fn run(params: Vec<(&'static str, String)>) -> Result<AuthorizationRequest, AuthorizeError> {
        let map: HashMap<String, String> =
            params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        validate(
            &map,
            &client(),
            &crate::testing::issuer("https://mcp.example.com"),
        )
    }

    fn with(change: &[(&'static str, Option<&str>)]) -> Vec<(&'static str, String)> {
        let mut p = base();
        for (k, v) in change {
            p.retain(|(name, _)| name != k);
            if let Some(v) = v {
                p.push((k, (*v).to_owned()));
            }
        }
        p
    }

    #[test]
    fn a_complete_request_validates() {
        let r = run(base()).unwrap();
        assert_eq!(r.redirect_uri.as_str(), "https://app.example/cb");
        assert_eq!(r.state.as_ref().map(State::as_str), Some("xyz"));
        assert_eq!(r.resource.as_str(), RESOURCE);
    }

    #[test]
    fn defaults() {
        let r = run(with(&[
            ("scope", None),
            ("resource", None),
            ("state", None),
        ]))
        .unwrap();
        assert_eq!(r.scope.to_param(), "mcp");
        assert_eq!(r.resource.as_str(), RESOURCE);
        assert_eq!(r.state, None);
        let r = run(with(&[(
            "redirect_uri",
            Some("http://127.0.0.1:49152/callback"),
        )]))
        .unwrap();
        assert_eq!(r.redirect_uri.as_str(), "http://127.0.0.1:49152/callback");
        assert!(
            run(with(&[(
                "resource",
                Some("https://mcp.example.com/internal/")
            )]))
            .is_ok()
        );
        // Issue 15: `/mcp` is a resource of this server too.
        for named in [
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp/",
        ] {
            let r = run(with(&[("resource", Some(named))])).unwrap();
            assert_eq!(r.resource.as_str(), "https://mcp.example.com/mcp");
        }
    }

    #[test]
    fn errors_before_the_redirect_uri_is_trusted_are_pages() {
        let cases = [
            (
                with(&[("redirect_uri", Some("https://evil.example/cb"))]),
                PageError::UnregisteredRedirectUri,
            ),
            (
                with(&[("redirect_uri", Some("https://app.example/cb/"))]),
                PageError::UnregisteredRedirectUri,
            ),
            (
                with(&[("redirect_uri", Some("not a url"))]),
                PageError::UnregisteredRedirectUri,
            ),
            (
                with(&[("redirect_uri", None)]),
                PageError::MissingRedirectUri,
            ),
            // A page error wins even when other parameters are also bad.
            (
                with(&[
                    ("redirect_uri", Some("https://evil.example/cb")),
                    ("response_type", Some("token")),
                ]),
                PageError::UnregisteredRedirectUri,
            ),
        ];
        for (params, expected) in cases {
            assert_eq!(
                run(params.clone()),
                Err(AuthorizeError::Page(expected)),
                "{params:?}"
            );
        }
    }

    #[test]
    fn errors_after_are_redirected_with_state() {
        use RedirectErrorCode::*;
        let cases = [
            (
                with(&[("response_type", Some("token"))]),
                UnsupportedResponseType,
            ),
            (with(&[("response_type", None)]), InvalidRequest),
            (with(&[("code_challenge_method", None)]), InvalidRequest),
            (
                with(&[("code_challenge_method", Some("plain"))]),
                InvalidRequest,
            ),
            (with(&[("code_challenge", None)]), InvalidRequest),
            (with(&[("code_challenge", Some("short"))]), InvalidRequest),
            (with(&[("scope", Some("admin"))]), InvalidScope),
            (with(&[("scope", Some("mcp\tx"))]), InvalidScope),
            (with(&[("scope", Some("mcp\t"))]), InvalidScope),
            (
                with(&[("resource", Some("https://other.example/internal"))]),
                InvalidTarget,
            ),
            (
                with(&[("resource", Some("https://mcp.example.com/mcpx"))]),
                InvalidTarget,
            ),
        ];
        for (params, expected) in cases {
            match run(params.clone()) {
                Err(AuthorizeError::Redirect(e)) => {
                    assert_eq!(e.code, expected, "{params:?}");
                    assert_eq!(e.state.as_ref().map(State::as_str), Some("xyz"));
                    assert_eq!(e.redirect_uri.as_str(), "https://app.example/cb");
                }
                other => panic!("{params:?}: {other:?}"),
            }
        }
        let long_state = "s".repeat(MAX_STATE + 1);
        match run(with(&[("state", Some(&long_state))])) {
            Err(AuthorizeError::Redirect(e)) => {
                assert_eq!((e.code, e.state), (InvalidRequest, None))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_locations_carry_state_and_iss() {
        let Err(AuthorizeError::Redirect(e)) = run(with(&[("scope", Some("admin"))])) else {
            panic!()
        };
        let location = e.location(&crate::testing::issuer("https://mcp.example.com"));
        let url = url::Url::parse(&location).unwrap();
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["error"], "invalid_scope");
        assert_eq!(
            q["error_description"],
            "scope \"admin\" is not offered; the scopes offered are mcp, sites:read, stats:read"
        );
        assert_eq!(q["state"], "xyz");
        assert_eq!(q["iss"], "https://mcp.example.com");
    }
}
