//! The one validator of client metadata (RFC 7591 §2), for dynamic
//! registration and for client ID metadata documents alike. Where the two
//! differ, the [`Profile`] says so; each refusal is a [`MetadataError`]
//! variant, so tests can say which rule fired.

use serde_json::{Map, Value};

use super::record::AuthMethod;
use crate::oauth::types::{RedirectUri, RedirectUriError};

/// Bounds shared by both profiles.
pub const MAX_REDIRECT_URIS: usize = 10;
pub const MAX_NAME: usize = 200;
pub const MAX_CLIENT_URI: usize = 512;

/// Where the metadata comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `POST /register` (RFC 7591): the client asks us alone, so what we
    /// cannot honour is refused rather than ignored, the default
    /// authentication is `client_secret_basic` (§2), and a refused
    /// redirect URI may be quoted back to its sender.
    Registration,
    /// A client ID metadata document (CIMD §4): shared with every server
    /// the client uses, so other grant and response types are tolerated as
    /// long as ours are declared; public clients only (§4.1: a document
    /// cannot carry a secret; `private_key_jwt` is not supported here);
    /// and errors never quote the fetched document.
    Document,
}

/// Validated metadata, before an id is assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMetadata {
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub auth_method: AuthMethod,
}

/// Why metadata is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataError {
    /// Not a JSON object.
    NotAnObject,
    /// `redirect_uris` absent, empty or not an array.
    NoRedirectUris,
    TooManyRedirectUris,
    /// `redirect_uris[index]` is not a string.
    RedirectUriNotString {
        index: usize,
    },
    /// `redirect_uris[index]` breaks a rule of RFC 6749 §3.1.2 / RFC 8252
    /// §7.3. `quoted` holds the value under [`Profile::Registration`].
    RedirectUri {
        index: usize,
        quoted: Option<String>,
        rule: RedirectUriError,
    },
    /// `token_endpoint_auth_method` is not a string.
    AuthMethodNotString,
    /// A method we do not support (quoted under registration).
    AuthMethodUnsupported {
        quoted: Option<String>,
    },
    /// A shared-secret method in a document (CIMD §4.1).
    AuthMethodSharedSecret,
    /// `private_key_jwt` in a document: allowed by CIMD, not supported.
    AuthMethodPrivateKeyJwt,
    GrantTypesNotArray,
    /// Registration: a grant type other than ours (quoted).
    GrantTypeUnsupported(String),
    /// Document: `grant_types` does not include `authorization_code`.
    GrantTypesWithoutCode,
    /// Registration: a response type other than `code`; document:
    /// `response_types` does not include `code`.
    ResponseTypes,
    /// A display field that is too long or has control characters.
    DisplayText {
        field: &'static str,
        max: usize,
    },
    /// A display field with a bidirectional control or an invisible
    /// (zero-width) character, which could make the consent page show a
    /// name other than the one stored (Unicode TR #36 §2.1, §2.4).
    DisplayInvisible {
        field: &'static str,
    },
    /// A display field that is not a string.
    DisplayNotString {
        field: &'static str,
    },
    ClientUriNotHttps,
}

impl MetadataError {
    /// The RFC 7591 §3.2.2 error code.
    pub fn code(&self) -> &'static str {
        match self {
            MetadataError::NoRedirectUris
            | MetadataError::TooManyRedirectUris
            | MetadataError::RedirectUriNotString { .. }
            | MetadataError::RedirectUri { .. } => "invalid_redirect_uri",
            _ => "invalid_client_metadata",
        }
    }

    /// A sentence for the developer; quotes only what the profile allows.
    pub fn description(&self) -> String {
        match self {
            MetadataError::NotAnObject => "the body must be a JSON object of client metadata".into(),
            MetadataError::NoRedirectUris => {
                "redirect_uris is required: a non-empty array of https (or loopback http) URLs".into()
            }
            MetadataError::TooManyRedirectUris => {
                format!("at most {MAX_REDIRECT_URIS} redirect_uris are accepted")
            }
            MetadataError::RedirectUriNotString { index } => {
                format!("redirect_uris[{index}] must be a string")
            }
            MetadataError::RedirectUri {
                index,
                quoted,
                rule,
            } => {
                let why = match rule {
                    RedirectUriError::NotAbsolute => "is not an absolute URL",
                    RedirectUriError::Scheme => {
                        "must be https, or http on 127.0.0.1, [::1] or localhost"
                    }
                    RedirectUriError::Fragment => "must not contain a fragment",
                    RedirectUriError::UserInfo => "must not contain credentials",
                    RedirectUriError::TooLong => "is longer than 2048 characters",
                    RedirectUriError::ControlOrSpace => {
                        "must not contain control characters or whitespace"
                    }
                    RedirectUriError::Host => {
                        "must name a DNS host name or an IP literal (no wildcards)"
                    }
                    RedirectUriError::NonAsciiHost => {
                        "has a non-ASCII host; write an internationalized domain name in Punycode (xn--…)"
                    }
                };
                match quoted {
                    Some(raw) => format!("{}: {why}", raw.escape_default()),
                    None => format!("redirect_uris[{index}] {why}"),
                }
            }
            MetadataError::AuthMethodNotString => {
                "token_endpoint_auth_method must be a string".into()
            }
            MetadataError::AuthMethodUnsupported { quoted: Some(m) } => format!(
                "token_endpoint_auth_method \"{}\" is not supported; use none, client_secret_basic or client_secret_post",
                m.escape_default()
            ),
            MetadataError::AuthMethodUnsupported { quoted: None } => {
                "token_endpoint_auth_method is not supported; only \"none\" (public client with PKCE) is".into()
            }
            MetadataError::AuthMethodSharedSecret => "token_endpoint_auth_method must not be a shared-secret method: a metadata document cannot carry a secret; use \"none\" with PKCE".into(),
            MetadataError::AuthMethodPrivateKeyJwt => "token_endpoint_auth_method private_key_jwt is not supported by this server; only public clients (\"none\", with PKCE) are".into(),
            MetadataError::GrantTypesNotArray => "grant_types must be an array".into(),
            MetadataError::GrantTypeUnsupported(g) => format!(
                "grant_types may contain only authorization_code and refresh_token, not {}",
                g.escape_default()
            ),
            MetadataError::GrantTypesWithoutCode => {
                "grant_types must be an array that includes \"authorization_code\"".into()
            }
            MetadataError::ResponseTypes => {
                "response_types must be an array that includes \"code\", and (when registering) only \"code\"".into()
            }
            MetadataError::DisplayText { field, max } => {
                format!("{field} must be at most {max} printable characters")
            }
            MetadataError::DisplayInvisible { field } => format!(
                "{field} must not contain bidirectional controls or zero-width characters"
            ),
            MetadataError::DisplayNotString { field } => format!("{field} must be a string"),
            MetadataError::ClientUriNotHttps => "client_uri must be an https URL".into(),
        }
    }
}

/// Checks metadata under `profile` (RFC 7591 §2; CIMD §4).
pub fn validate(
    meta: &Map<String, Value>,
    profile: Profile,
) -> Result<ClientMetadata, MetadataError> {
    validate_with(meta, profile, false)
}

/// [`validate`] for a metadata document fetched under the development
/// policy (`DEV_ALLOW_LOOPBACK` on a loopback host): a document that may
/// itself live on plain-http loopback may also name a loopback
/// `client_uri`, as its redirect URIs already may (RFC 8252 §7.3).
pub fn validate_document(
    meta: &Map<String, Value>,
    allow_loopback_client_uri: bool,
) -> Result<ClientMetadata, MetadataError> {
    validate_with(meta, Profile::Document, allow_loopback_client_uri)
}

fn validate_with(
    meta: &Map<String, Value>,
    profile: Profile,
    allow_loopback_client_uri: bool,
) -> Result<ClientMetadata, MetadataError> {
    let redirect_uris = redirect_uris(meta.get("redirect_uris"), profile)?;
    let auth_method = auth_method(meta.get("token_endpoint_auth_method"), profile)?;
    grant_and_response_types(meta, profile)?;
    let client_uri = display_text("client_uri", meta.get("client_uri"), MAX_CLIENT_URI)?;
    let client_uri_ok = |u: &url::Url| match u.scheme() {
        "https" => true,
        "http" => allow_loopback_client_uri && crate::http::is_loopback(u),
        _ => false,
    };
    if client_uri
        .as_ref()
        .is_some_and(|u| !url::Url::parse(u).is_ok_and(|u| client_uri_ok(&u)))
    {
        return Err(MetadataError::ClientUriNotHttps);
    }
    Ok(ClientMetadata {
        client_name: display_text("client_name", meta.get("client_name"), MAX_NAME)?,
        client_uri,
        redirect_uris,
        auth_method,
    })
}

/// Required: the registered redirect URIs (RFC 6749 §3.1.2, RFC 8252
/// §7.3), deduplicated.
fn redirect_uris(
    value: Option<&Value>,
    profile: Profile,
) -> Result<Vec<RedirectUri>, MetadataError> {
    let list = match value {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(MetadataError::NoRedirectUris),
    };
    if list.len() > MAX_REDIRECT_URIS {
        return Err(MetadataError::TooManyRedirectUris);
    }
    let mut out: Vec<RedirectUri> = Vec::with_capacity(list.len());
    for (index, v) in list.iter().enumerate() {
        let raw = v
            .as_str()
            .ok_or(MetadataError::RedirectUriNotString { index })?;
        let uri = RedirectUri::parse(raw).map_err(|rule| MetadataError::RedirectUri {
            index,
            quoted: (profile == Profile::Registration).then(|| raw.to_owned()),
            rule,
        })?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

fn auth_method(value: Option<&Value>, profile: Profile) -> Result<AuthMethod, MetadataError> {
    let name = match value {
        None | Some(Value::Null) => {
            return Ok(match profile {
                // RFC 7591 §2: the default is client_secret_basic.
                Profile::Registration => AuthMethod::ClientSecretBasic,
                Profile::Document => AuthMethod::None,
            });
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(MetadataError::AuthMethodNotString),
    };
    match (profile, name) {
        (Profile::Registration, _) => {
            AuthMethod::parse(name).ok_or_else(|| MetadataError::AuthMethodUnsupported {
                quoted: Some(name.to_owned()),
            })
        }
        (Profile::Document, "none") => Ok(AuthMethod::None),
        (Profile::Document, "client_secret_basic" | "client_secret_post" | "client_secret_jwt") => {
            Err(MetadataError::AuthMethodSharedSecret)
        }
        (Profile::Document, "private_key_jwt") => Err(MetadataError::AuthMethodPrivateKeyJwt),
        (Profile::Document, _) => Err(MetadataError::AuthMethodUnsupported { quoted: None }),
    }
}

fn grant_and_response_types(
    meta: &Map<String, Value>,
    profile: Profile,
) -> Result<(), MetadataError> {
    match profile {
        Profile::Registration => {
            if let Some(grants) = meta.get("grant_types") {
                let list = grants.as_array().ok_or(MetadataError::GrantTypesNotArray)?;
                for g in list {
                    match g.as_str() {
                        Some("authorization_code" | "refresh_token") => {}
                        _ => return Err(MetadataError::GrantTypeUnsupported(g.to_string())),
                    }
                }
            }
            if let Some(types) = meta.get("response_types") {
                let ok = types
                    .as_array()
                    .is_some_and(|l| l.iter().all(|t| t.as_str() == Some("code")));
                if !ok {
                    return Err(MetadataError::ResponseTypes);
                }
            }
        }
        Profile::Document => {
            // Shared with other servers: it may list more, but must
            // declare what we use.
            let declares = |field: &str, wanted: &str| match meta.get(field) {
                None | Some(Value::Null) => true,
                Some(Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(wanted)),
                Some(_) => false,
            };
            if !declares("grant_types", "authorization_code") {
                return Err(MetadataError::GrantTypesWithoutCode);
            }
            if !declares("response_types", "code") {
                return Err(MetadataError::ResponseTypes);
            }
        }
    }
    Ok(())
}

/// Human-readable metadata (shown on the consent page): printable and
/// bounded; blank counts as absent.
fn display_text(
    field: &'static str,
    v: Option<&Value>,
    max: usize,
) -> Result<Option<String>, MetadataError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if s.chars().count() > max || s.chars().any(char::is_control) {
                Err(MetadataError::DisplayText { field, max })
            } else if s.chars().any(is_invisible) {
                Err(MetadataError::DisplayInvisible { field })
            } else {
                Ok(Some(s.to_owned()))
            }
        }
        Some(_) => Err(MetadataError::DisplayNotString { field }),
    }
}

/// Bidirectional controls (Unicode UAX #9 §2: embeddings, overrides,
/// isolates and marks) and zero-width or invisible format characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value, profile: Profile) -> Result<ClientMetadata, MetadataError> {
        validate(v.as_object().unwrap(), profile)
    }

    const CB: &str = "https://a.example/cb";

    #[test]
    #[allow(clippy::type_complexity)]
    fn the_profiles_differ_only_where_they_say() {
        use MetadataError::*;
        use Profile::{Document, Registration};
        // (metadata, registration's answer, document's answer)
        let cases: Vec<(
            Value,
            Result<AuthMethod, MetadataError>,
            Result<AuthMethod, MetadataError>,
        )> = vec![
            (
                json!({"redirect_uris": [CB]}),
                Ok(AuthMethod::ClientSecretBasic),
                Ok(AuthMethod::None),
            ),
            (
                json!({"redirect_uris": [CB], "token_endpoint_auth_method": "client_secret_post"}),
                Ok(AuthMethod::ClientSecretPost),
                Err(AuthMethodSharedSecret),
            ),
            (
                json!({"redirect_uris": [CB], "token_endpoint_auth_method": "private_key_jwt"}),
                Err(AuthMethodUnsupported {
                    quoted: Some("private_key_jwt".into()),
                }),
                Err(AuthMethodPrivateKeyJwt),
            ),
            (
                json!({"redirect_uris": [CB], "grant_types": ["authorization_code", "urn:x"]}),
                Err(GrantTypeUnsupported("\"urn:x\"".into())),
                Ok(AuthMethod::None),
            ),
            (
                json!({"redirect_uris": [CB], "grant_types": ["refresh_token"]}),
                Ok(AuthMethod::ClientSecretBasic),
                Err(GrantTypesWithoutCode),
            ),
            (
                json!({"redirect_uris": [CB], "response_types": ["code", "id_token"]}),
                Err(ResponseTypes),
                Ok(AuthMethod::None),
            ),
            (
                json!({"redirect_uris": ["http://a.example/cb"]}),
                Err(RedirectUri {
                    index: 0,
                    quoted: Some("http://a.example/cb".into()),
                    rule: RedirectUriError::Scheme,
                }),
                Err(RedirectUri {
                    index: 0,
                    quoted: None,
                    rule: RedirectUriError::Scheme,
                }),
            ),
        ];
        for (meta, registration, document) in cases {
            assert_eq!(
                check(meta.clone(), Registration).map(|m| m.auth_method),
                registration,
                "{meta}"
            );
            assert_eq!(
                check(meta.clone(), Document).map(|m| m.auth_method),
                document,
                "{meta}"
            );
        }
    }

    #[test]
    fn shared_rules_fire_in_both_profiles() {
        use MetadataError::*;
        let many: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
        let cases = [
            (json!({}), NoRedirectUris),
            (json!({"redirect_uris": []}), NoRedirectUris),
            (json!({"redirect_uris": CB}), NoRedirectUris),
            (json!({"redirect_uris": many}), TooManyRedirectUris),
            (
                json!({"redirect_uris": [5]}),
                RedirectUriNotString { index: 0 },
            ),
            (
                json!({"redirect_uris": [CB], "client_name": "x".repeat(201)}),
                DisplayText {
                    field: "client_name",
                    max: MAX_NAME,
                },
            ),
            (
                json!({"redirect_uris": [CB], "client_name": "a\u{0007}b"}),
                DisplayText {
                    field: "client_name",
                    max: MAX_NAME,
                },
            ),
            (
                json!({"redirect_uris": [CB], "client_name": "Claude\u{202E}tiah"}),
                DisplayInvisible {
                    field: "client_name",
                },
            ),
            (
                json!({"redirect_uris": [CB], "client_name": "Cla\u{200B}ude"}),
                DisplayInvisible {
                    field: "client_name",
                },
            ),
            (
                json!({"redirect_uris": [CB], "client_name": "\u{2067}x\u{2069}"}),
                DisplayInvisible {
                    field: "client_name",
                },
            ),
            (
                json!({"redirect_uris": [CB], "client_name": "Cla\u{FEFF}ude"}),
                DisplayInvisible {
                    field: "client_name",
                },
            ),
            (
                json!({"redirect_uris": [CB], "client_name": {"en": "x"}}),
                DisplayNotString {
                    field: "client_name",
                },
            ),
            (
                json!({"redirect_uris": [CB], "client_uri": "javascript:alert(1)"}),
                ClientUriNotHttps,
            ),
            (
                json!({"redirect_uris": [CB], "token_endpoint_auth_method": ["none"]}),
                AuthMethodNotString,
            ),
        ];
        for (meta, expected) in cases {
            for profile in [Profile::Registration, Profile::Document] {
                assert_eq!(
                    check(meta.clone(), profile).unwrap_err(),
                    expected,
                    "{meta} {profile:?}"
                );
            }
        }
    }

    #[test]
    fn documents_are_never_quoted() {
        let marker = "BODY-MARKER-7f3a";
        let metas = [
            json!({"redirect_uris": [format!("http://{marker}.example/cb")]}),
            json!({"redirect_uris": [CB], "token_endpoint_auth_method": marker}),
            json!({"redirect_uris": [CB], "client_uri": format!("http://{marker}")}),
            json!({"redirect_uris": [CB], "client_name": format!("{marker}{}", "x".repeat(300))}),
        ];
        for meta in metas {
            let err = check(meta.clone(), Profile::Document).unwrap_err();
            assert!(
                !err.description().contains(marker),
                "{meta}: {}",
                err.description()
            );
            assert!(!format!("{err:?}").contains(marker), "{meta}: {err:?}");
        }
    }
}
