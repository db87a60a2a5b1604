//! Authorization codes: issued once, redeemed once (RFC 6749 §4.1.2,
//! §4.1.3), a replay revokes what the first redemption gave.

use super::grants::{revoke_grant, write_access};
use super::protocol::{
    CodeIssued, IssueCode, Issued, Reason, RedeemCode, Refusal, Refused, TokensReply,
};
use super::records::{CodeRecord, GrantRecord, Home, Listed, StorageKey};
use super::store::{LedgerStore, load, put};
use crate::ports::{Clock, KeyValue, StorageError};

/// Records the code; answers whether the pair still has to be listed
/// in its user's directory and its client's index (only when asked, and
/// only in a pair object: a legacy ledger takes no new codes).
pub async fn issue<S: LedgerStore>(
    store: &S,
    home: Home<'_>,
    m: IssueCode,
) -> Result<CodeIssued, StorageError> {
    store
        .commit(vec![put(&StorageKey::Code(m.code_hash), &m.record)?])
        .await?;
    let unlisted = m.ask_listed
        && home == Home::Pair
        && load::<Listed, _>(store, &StorageKey::Listed)
            .await?
            .is_none();
    Ok(if unlisted {
        CodeIssued::Unlisted
    } else {
        CodeIssued::Done
    })
}

fn refused(refusal: Refusal, reason: Reason) -> TokensReply {
    TokensReply::Refused(Refused::new(refusal, reason))
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.6 (PKCE) and RFC 8707 §2.2.
pub async fn redeem<S: LedgerStore, K: KeyValue + Clock>(
    store: &S,
    kv: &K,
    home: Home<'_>,
    m: RedeemCode,
    now: u64,
) -> Result<TokensReply, StorageError> {
    if let Home::Client(own) = home
        && &m.client_id != own
    {
        return Ok(refused(Refusal::InvalidGrant, Reason::CodeToAnotherLedger));
    }
    let key = StorageKey::Code(m.code_hash);
    let Some(mut code) = load::<CodeRecord, _>(store, &key).await? else {
        return Ok(refused(Refusal::InvalidGrant, Reason::UnknownCode));
    };
    if !home.admits(&m.client_id, code.client_id.as_ref()) {
        // Not the client it was issued to: refused without touching the
        // grant, as an unknown code would be (RFC 6749 §4.1.3).
        return Ok(refused(Refusal::InvalidGrant, Reason::CodeOfAnotherClient));
    }
    let pkce_ok = crate::secret::ct_eq(
        code.code_challenge.as_str().as_bytes(),
        m.computed_challenge.as_str().as_bytes(),
    );
    if code.redeemed {
        // RFC 6749 §4.1.2 / §10.5: a replayed code revokes every token
        // issued from it, but only when the replay proves possession of
        // the PKCE verifier (RFC 9700 §4.5.3.1 ties the code to it).
        // Otherwise a used code that leaked (logs, history, a referrer)
        // would let anyone end its owner's session; refused either way.
        if !pkce_ok {
            return Ok(refused(
                Refusal::InvalidGrant,
                Reason::CodeReplayedWithoutVerifier,
            ));
        }
        revoke_grant(store, kv, &code.grant_id, now).await?;
        return Ok(TokensReply::Refused(
            Refused::new(Refusal::InvalidGrant, Reason::CodeReplayed)
                .of_grant(&code.grant_id, &code.subject.user_key),
        ));
    }
    if now >= code.expires_at {
        return Ok(refused(Refusal::InvalidGrant, Reason::CodeExpired));
    }
    let redirect_ok = match &m.redirect_uri {
        Some(r) => r == code.redirect_uri.as_str(),
        None => !code.redirect_uri_given,
    };
    if !redirect_ok {
        return Ok(refused(Refusal::InvalidGrant, Reason::RedirectUriMismatch));
    }
    if !pkce_ok {
        return Ok(refused(Refusal::InvalidGrant, Reason::PkceFailed));
    }
    if m.resource.as_ref().is_some_and(|r| r != &code.resource) {
        return Ok(refused(
            Refusal::InvalidTarget,
            Reason::CodeResourceMismatch,
        ));
    }
    let grant = GrantRecord {
        client_id: code.client_id.clone(),
        grant_id: code.grant_id.clone(),
        scope: code.scope.clone(),
        resource: code.resource.clone(),
        subject: code.subject.clone(),
        created_at: now,
        expires_at: now.saturating_add(m.grant_lifetime_secs),
        refresh_hash: m.tokens.refresh_hash.clone(),
        refresh_expires_at: now
            .saturating_add(m.tokens.refresh_ttl_secs)
            .min(now.saturating_add(m.grant_lifetime_secs)),
        access: Vec::new(),
        revoked: false,
        rotation: None,
        key_checked_at: code.key_checked_at,
        sites: code.sites.clone(),
    };
    code.redeemed = true;
    let (grant, expires_in, access) = write_access(kv, &m.client_id, grant, &m.tokens, now).await?;
    store
        .commit(vec![
            access,
            put(&key, &code)?,
            put(
                &StorageKey::RefreshIndex(m.tokens.refresh_hash.clone()),
                &grant.grant_id,
            )?,
            put(&StorageKey::Grant(grant.grant_id.clone()), &grant)?,
        ])
        .await?;
    Ok(TokensReply::Tokens(Issued {
        scope: grant.scope,
        resource: grant.resource,
        access_expires_in: expires_in,
        subject: None,
        key_checked_at: None,
        sites: None,
        grant_id: Some(grant.grant_id),
    }))
}

#[cfg(test)]
mod tests {
    // Case tables name a change as a boxed closure.
    #![allow(clippy::type_complexity)]

    use super::super::test_world::*;
    use super::*;
    use crate::oauth::ids::GrantId;
    use crate::oauth::types::{CodeChallenge, ScopeSet};
    use crate::testing::block_on;

    #[test]
    fn redemption_issues_tokens_and_writes_one_access_record() {
        let w = World::new();
        let reply = w.redeem(|_| {});
        assert_eq!(
            reply,
            TokensReply::Tokens(Issued {
                scope: ScopeSet::parse(Some("mcp")).unwrap(),
                resource: resource(RESOURCE),
                access_expires_in: 3600,
                subject: None,
                key_checked_at: None,
                sites: None,
                grant_id: Some(GrantId::fixed("g1")),
            })
        );
        assert!(w.has_access("at1"));
        let record = w.access_record("at1");
        assert_eq!(record.client_id, client());
        assert_eq!(record.resource, resource(RESOURCE));
        assert_eq!(record.subject, subject());
    }

    #[test]
    fn redemption_refusals() {
        let cases: Vec<(&str, Box<dyn FnOnce(&mut RedeemCode)>, Refusal)> = vec![
            (
                "unknown code",
                Box::new(|m| m.code_hash = h("nope")),
                Refusal::InvalidGrant,
            ),
            (
                "other client",
                Box::new(|m| {
                    m.client_id = crate::oauth::types::ClientId::parse("pmcp_client_B").unwrap()
                }),
                Refusal::InvalidGrant,
            ),
            (
                "redirect differs",
                Box::new(|m| m.redirect_uri = Some("https://a.example/cb2".into())),
                Refusal::InvalidGrant,
            ),
            (
                "pkce mismatch",
                Box::new(|m| m.computed_challenge = CodeChallenge::parse(&"x".repeat(43)).unwrap()),
                Refusal::InvalidGrant,
            ),
            (
                "resource differs",
                Box::new(|m| m.resource = Some(resource("https://other.example/internal"))),
                Refusal::InvalidTarget,
            ),
        ];
        for (name, change, expected) in cases {
            let w = World::new();
            assert_eq!(refusal(&w.redeem(change)), Some(expected), "{name}");
            assert!(!w.has_access("at1"), "{name}: nothing written");
            // A refused redemption does not consume the code.
            assert!(
                refusal(&w.redeem(|_| {})).is_none(),
                "{name}: code still usable"
            );
        }
    }

    #[test]
    fn omitted_resource_inherits_the_authorization_requests() {
        let w = World::new();
        let reply = w.redeem(|m| m.resource = None);
        assert!(matches!(reply, TokensReply::Tokens(ref i) if i.resource == resource(RESOURCE)));
    }

    #[test]
    fn expired_codes_are_refused() {
        let w = World::new();
        w.advance(600);
        assert_eq!(refusal(&w.redeem(|_| {})), Some(Refusal::InvalidGrant));
    }

    #[test]
    fn a_replayed_code_revokes_the_grant_and_its_tokens() {
        let w = World::new();
        assert!(refusal(&w.redeem(|_| {})).is_none());
        assert!(w.has_access("at1"));
        let replay = w.redeem(|m| m.tokens = tokens(2));
        assert_eq!(refusal(&replay), Some(Refusal::InvalidGrant));
        assert!(!w.has_access("at1"), "first access token deleted");
        assert!(!w.has_access("at2"), "no token for the replay");
        assert!(w.grant("g1").revoked);
        assert_eq!(refusal(&w.refresh("rt1", 3)), Some(Refusal::InvalidGrant));
    }

    /// Issue 10 finding: a leaked, already used code must not let a
    /// stranger (who lacks the verifier) end its owner's session.
    #[test]
    fn a_replay_without_the_verifier_is_refused_and_keeps_the_grant() {
        let w = World::new();
        assert!(refusal(&w.redeem(|_| {})).is_none());
        let replay = w.redeem(|m| {
            m.tokens = tokens(2);
            m.computed_challenge = CodeChallenge::parse(&"x".repeat(43)).unwrap();
        });
        assert_eq!(refusal(&replay), Some(Refusal::InvalidGrant));
        assert!(w.has_access("at1"), "the owner's token lives on");
        assert!(!w.has_access("at2"), "no token for the replay");
        assert!(!w.grant("g1").revoked);
        assert!(
            refusal(&w.refresh("rt1", 3)).is_none(),
            "refresh still works"
        );
    }

    #[test]
    fn access_tokens_never_outlive_the_grant() {
        let w = World::new();
        w.redeem(|m| m.grant_lifetime_secs = 1800);
        assert_eq!(w.access_record("at1").expires_at, w.now() + 1800);
        assert_eq!(w.grant("g1").refresh_expires_at, w.now() + 1800);
    }

    #[test]
    fn a_failed_commit_leaves_the_code_unredeemed() {
        let w = World::new();
        w.store.fail_commit.set(true);
        let mut m = World::redeem_request();
        m.resource = None;
        m.grant_lifetime_secs = 86400;
        assert!(block_on(redeem(&w.store, &w.p, Home::Client(&client()), m, w.now())).is_err());
        w.store.fail_commit.set(false);
        assert!(refusal(&w.redeem(|m| m.tokens = tokens(2))).is_none());
    }

    #[test]
    fn an_omitted_redirect_uri_need_not_be_repeated() {
        let w = World::new();
        let mut record = code_record(w.now(), "g2");
        record.redirect_uri_given = false;
        block_on(issue(
            &w.store,
            Home::Client(&client()),
            IssueCode {
                code_hash: h("c2"),
                record,
                ask_listed: false,
            },
        ))
        .unwrap();
        let with_uri = |uri: Option<&str>, n: u32| {
            w.redeem(|m| {
                m.code_hash = h("c2");
                m.redirect_uri = uri.map(str::to_owned);
                m.tokens = tokens(n);
            })
        };
        assert_eq!(
            refusal(&with_uri(Some("https://a.example/other"), 2)),
            Some(Refusal::InvalidGrant)
        );
        assert!(refusal(&with_uri(None, 3)).is_none());
        assert_eq!(w.grant("g2").grant_id, GrantId::fixed("g2"));
    }
}
