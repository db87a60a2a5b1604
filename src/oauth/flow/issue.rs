//! The end of a successful authorization: a code for the client
//! (RFC 6749 §4.1.2), with `iss` (RFC 9207), issued only from a
//! [`Consented`] proof.

use serde_json::json;

use super::consent::{Consented, Who};
use crate::audit::{Event, Outcome, Record};
use crate::crypto::{Keyring, UserKeys};
use crate::identity::Identity;
use crate::oauth::ids::{GrantId, RoutingId, TokenHash, TokenKind, UserKey};
use crate::oauth::key_grant;
use crate::oauth::ledger::client::Ledger;
use crate::oauth::ledger::records::{CodeRecord, Subject, SubjectKind};
use crate::oauth::listing::client::list_pair;
use crate::oauth::listing::records::ListedPair;
use crate::oauth::server::{AuthServer, Platform};
use crate::oauth::types::Audience;
use crate::ports::{Entropy, EntropyError, StorageError};
use crate::secret::AuthorizationCode;

#[derive(Debug)]
pub enum IssueError {
    Entropy,
    Storage(StorageError),
    /// The approval's principal does not fit the requested resource: a
    /// person's for `/mcp`, or a key holder's for anything but `/mcp`.
    /// No path of the flow builds one; refused here all the same, so a
    /// future one cannot mint a cross-endpoint grant.
    WrongEndpoint,
}

impl IssueError {
    pub fn log_line(&self) -> String {
        match self {
            IssueError::Entropy => "could not issue a code: entropy failed".into(),
            IssueError::Storage(e) => format!("could not issue a code: storage failed: {}", e.0),
            IssueError::WrongEndpoint => {
                "refused to issue a code: the approval's principal does not fit the requested resource".into()
            }
        }
    }
}

/// The grant's subject: the user key (an HMAC of the email) in the
/// clear, the email sealed under the server key and bound to that key.
pub fn subject(
    identity: &Identity,
    keys: &Keyring,
    user_keys: &UserKeys,
    entropy: &dyn Entropy,
) -> Result<Subject, EntropyError> {
    let user_key = UserKey::of_email(user_keys, identity.email());
    let props = json!({ "email": identity.email() }).to_string();
    let sealed_props = keys.seal(
        entropy,
        props.as_bytes(),
        &format!("subject:{}", user_key.as_str()),
    )?;
    Ok(Subject {
        user_key,
        sealed_props,
        kind: Some(SubjectKind::Person),
    })
}

/// Records a code for an approved request in the pair's grant object and
/// returns the client's redirect `Location`. Each code starts a grant of
/// its own: a second device of the same person gets a second grant
/// beside the first, never in its place.
pub async fn issue_code<P: Platform>(
    platform: &P,
    server: &AuthServer<'_>,
    keys: &Keyring,
    user_keys: &UserKeys,
    consented: &Consented,
) -> Result<String, IssueError> {
    let request = consented.request();
    // A person signs in for /internal only, a key holder for /mcp only
    // (issue 15); checked before anything is minted or written.
    let fits = match consented.who() {
        Who::Person(_) => Audience::Internal,
        Who::Key(_) => Audience::Mcp,
    };
    if request.resource.audience(&server.issuer) != Some(fits) {
        return Err(IssueError::WrongEndpoint);
    }
    let subject = match consented.who() {
        Who::Person(identity) => subject(identity, keys, user_keys, platform),
        Who::Key(holder) => {
            key_grant::subject(&holder.key, &holder.sites, keys, user_keys, platform)
        }
    }
    .map_err(|_| IssueError::Entropy)?;
    let routing = RoutingId::of(user_keys, request.client_id.as_str(), &subject.user_key);
    let code = AuthorizationCode::new(
        TokenKind::AuthorizationCode
            .mint_routed(platform, user_keys, &routing, platform.now().as_secs())
            .map_err(|_| IssueError::Entropy)?,
    );
    let grant_id = GrantId::mint(platform).map_err(|_| IssueError::Entropy)?;
    let audited_grant = grant_id.clone();
    let record = CodeRecord {
        client_id: Some(request.client_id.clone()),
        grant_id,
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_given: request.redirect_uri_given,
        code_challenge: request.code_challenge.clone(),
        scope: request.scope.clone(),
        resource: request.resource.clone(),
        subject,
        expires_at: platform
            .now()
            .plus(server.settings.lifetimes.code)
            .as_secs(),
        redeemed: false,
        issued_at: Some(platform.now().as_secs()),
        // The key form asked Plausible moments ago.
        key_checked_at: match consented.who() {
            Who::Key(_) => Some(platform.now().as_secs()),
            Who::Person(_) => None,
        },
        sites: consented.sites().map(<[String]>::to_vec),
    };
    let user_key = record.subject.user_key.clone();
    let unlisted = Ledger::pair(platform, routing)
        .issue_code(TokenHash::of(code.secret()), record)
        .await
        .map_err(IssueError::Storage)?;
    // The test build's per-client layout shares one grant object among a
    // client's users, so that object's "listed" mark says nothing about
    // this user: list every code's pair (each step is idempotent), so
    // every user's directory holds it, as in the per-pair layout.
    #[cfg(feature = "test-hooks")]
    let unlisted = unlisted || user_keys.per_client_routing;
    // A pair's first code: list it in the user's directory and the
    // client's index before the code leaves, so no grant exists that a
    // revoke-all cannot find. A failure fails this authorization (the
    // code, never handed out, expires) and the next one lists again.
    if unlisted {
        let pair = ListedPair {
            client_id: request.client_id.clone(),
            routing,
            first_connected: platform.now().as_secs(),
        };
        list_pair(platform, &user_key, pair)
            .await
            .map_err(IssueError::Storage)?;
    }
    let mut audited = Record::new(Event::CodeIssued, Outcome::Success)
        .client(&request.client_id)
        .user(&user_key)
        .grant(&audited_grant);
    if let Some(identity) = consented.who().identity() {
        audited = audited.email(identity);
    }
    server.audit(platform, audited);
    let mut params = vec![("code", code.secret())];
    if let Some(state) = &request.state {
        params.push(("state", state.as_str()));
    }
    params.push(("iss", server.issuer.as_str()));
    Ok(request.redirect_uri.with_params(&params))
}

#[cfg(test)]
mod tests {
    use super::super::consent::{Consented, KeyHolder};
    use super::*;
    use crate::config::oauth::OAuthSettings;
    use crate::http::{Method, Request};
    use crate::identity::admit;
    use crate::oauth::authorize::AuthorizationRequest;
    use crate::oauth::types::{ClientId, CodeChallenge, RedirectUri, ScopeSet};
    use crate::secret::PlausibleKey;
    use crate::testing::{FakePlatform, block_on, keys, resource, user_keys};

    fn request(resource_uri: &str) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: ClientId::parse("pmcp_client_A").unwrap(),
            redirect_uri: RedirectUri::parse("http://127.0.0.1:4567/cb").unwrap(),
            redirect_uri_given: true,
            state: None,
            scope: ScopeSet::parse(None).unwrap(),
            code_challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
                .unwrap(),
            resource: resource(resource_uri),
        }
    }

    /// Issue 15: a key holder's approval yields a code for `/mcp` only,
    /// a person's for `/internal` only, whatever a ticket carried; a
    /// refusal writes nothing.
    #[test]
    fn a_principal_gets_a_code_for_its_own_endpoint_only() {
        let p = FakePlatform::new();
        let settings = OAuthSettings::load(&crate::testing::source(&[]));
        let http = Request::new(
            Method::Get,
            url::Url::parse("https://mcp.example.com/authorize").unwrap(),
        );
        let server = AuthServer::new(&settings, &http);
        let key = || {
            Who::Key(KeyHolder {
                key: PlausibleKey::new("good-plausible-key-0001"),
                sites: vec!["example.com".into()],
            })
        };
        let person =
            || Who::Person(admit("alice@example.com", None, &["example.com".to_owned()]).unwrap());
        let internal = "https://mcp.example.com/internal";
        let mcp = "https://mcp.example.com/mcp";
        let issue = |who: Who, at: &str| {
            let sites = Some(vec!["example.com".to_owned()]);
            let consented = Consented::for_tests(request(at), who, sites);
            block_on(issue_code(&p, &server, &keys(), &user_keys(), &consented))
        };
        for (who, at) in [
            (key(), internal),
            (person(), mcp),
            (key(), "https://other.example/mcp"),
        ] {
            let before = p.storage_writes();
            assert!(
                matches!(issue(who, at), Err(IssueError::WrongEndpoint)),
                "{at}"
            );
            assert_eq!(p.storage_writes(), before, "nothing written");
        }
        assert!(issue(key(), mcp).unwrap().contains("code="));
        assert!(issue(person(), internal).unwrap().contains("code="));
    }

    #[test]
    fn stored_forms_hide_the_email() {
        let id = admit("alice@example.com", None, &["example.com".to_owned()]).unwrap();
        let k = keys();
        let subject = subject(&id, &k, &user_keys(), &FakePlatform::new()).unwrap();
        assert!(
            !subject.user_key.as_str().contains("alice") && !subject.sealed_props.contains("alice")
        );
        let opened = k
            .open(
                &subject.sealed_props,
                &format!("subject:{}", subject.user_key.as_str()),
            )
            .unwrap();
        assert!(
            String::from_utf8(opened)
                .unwrap()
                .contains("alice@example.com")
        );
    }
}
