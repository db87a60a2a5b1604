//! Ledger transitions: one named change per case.

// Case tables name a change as a boxed closure.
#![allow(clippy::type_complexity, clippy::result_large_err)]

use super::*;
use crate::testing::{FakePlatform, MemoryLedgerStore, block_on};

fn client() -> ClientId {
    ClientId::parse("pmcp_client_A").unwrap()
}

fn subject() -> Subject {
    Subject {
        user_key: "u1".into(),
        sealed_props: "sealed".into(),
    }
}

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const RESOURCE: &str = "https://mcp.example.com/internal";

fn tokens(n: u32) -> NewTokens {
    NewTokens {
        access_hash: format!("at{n}"),
        refresh_hash: format!("rt{n}"),
        access_ttl_secs: 3600,
        refresh_ttl_secs: 86400,
    }
}

struct World {
    p: FakePlatform,
    store: MemoryLedgerStore,
}

impl World {
    fn new() -> Self {
        let w = Self {
            p: FakePlatform::new(),
            store: MemoryLedgerStore::default(),
        };
        let now = w.p.now().as_secs();
        w.apply(LedgerOp::IssueCode {
            code_hash: "c1".into(),
            record: CodeRecord {
                grant_id: "g1".into(),
                redirect_uri: "https://a.example/cb".into(),
                redirect_uri_given: true,
                code_challenge: CHALLENGE.into(),
                scope: ScopeSet::parse(Some("mcp")).unwrap(),
                resource: RESOURCE.into(),
                subject: subject(),
                expires_at: now + 600,
                redeemed: false,
            },
        });
        w
    }

    fn apply(&self, op: LedgerOp) -> LedgerReply {
        block_on(apply(&self.store, &self.p, &client(), op)).unwrap()
    }

    fn redeem(&self, change: impl FnOnce(&mut LedgerOp)) -> LedgerReply {
        let mut op = LedgerOp::RedeemCode {
            client_id: client(),
            code_hash: "c1".into(),
            redirect_uri: Some("https://a.example/cb".into()),
            computed_challenge: CHALLENGE.into(),
            resource: Some(RESOURCE.into()),
            grant_lifetime_secs: 7 * 86400,
            tokens: tokens(1),
        };
        change(&mut op);
        self.apply(op)
    }

    fn refresh(&self, presented: &str, new: u32) -> LedgerReply {
        self.apply(LedgerOp::Refresh {
            client_id: client(),
            refresh_hash: presented.into(),
            scope: None,
            resource: None,
            tokens: tokens(new),
        })
    }

    fn has_access(&self, hash: &str) -> bool {
        self.p.kv.borrow().contains_key(&access_key(hash))
    }

    fn grant(&self) -> GrantRecord {
        serde_json::from_value(self.store.entries.borrow()["grant:g1"].clone()).unwrap()
    }
}

fn refusal(reply: &LedgerReply) -> Option<Refusal> {
    match reply {
        LedgerReply::Refused { refusal, .. } => Some(*refusal),
        _ => None,
    }
}

#[test]
fn redemption_issues_tokens_and_writes_one_access_record() {
    let w = World::new();
    let reply = w.redeem(|_| {});
    assert_eq!(
        reply,
        LedgerReply::Tokens {
            scope: ScopeSet::parse(Some("mcp")).unwrap(),
            resource: RESOURCE.into(),
            access_expires_in: 3600
        }
    );
    assert!(w.has_access("at1"));
    let record: AccessRecord =
        serde_json::from_slice(&w.p.kv.borrow()[&access_key("at1")].0).unwrap();
    assert_eq!(record.client_id, client());
    assert_eq!(record.resource, RESOURCE);
    assert_eq!(record.subject, subject());
}

#[test]
fn redemption_refusals() {
    let cases: Vec<(&str, Box<dyn FnOnce(&mut LedgerOp)>, Refusal)> = vec![
        (
            "unknown code",
            Box::new(|op| {
                if let LedgerOp::RedeemCode { code_hash, .. } = op {
                    *code_hash = "nope".into()
                }
            }),
            Refusal::InvalidGrant,
        ),
        (
            "other client",
            Box::new(|op| {
                if let LedgerOp::RedeemCode { client_id, .. } = op {
                    *client_id = ClientId::parse("pmcp_client_B").unwrap()
                }
            }),
            Refusal::InvalidGrant,
        ),
        (
            "redirect differs",
            Box::new(|op| {
                if let LedgerOp::RedeemCode { redirect_uri, .. } = op {
                    *redirect_uri = Some("https://a.example/cb2".into())
                }
            }),
            Refusal::InvalidGrant,
        ),
        (
            "pkce mismatch",
            Box::new(|op| {
                if let LedgerOp::RedeemCode {
                    computed_challenge, ..
                } = op
                {
                    *computed_challenge = "x".repeat(43)
                }
            }),
            Refusal::InvalidGrant,
        ),
        (
            "resource differs",
            Box::new(|op| {
                if let LedgerOp::RedeemCode { resource, .. } = op {
                    *resource = Some("https://other.example/internal".into())
                }
            }),
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
    let reply = w.redeem(|op| {
        if let LedgerOp::RedeemCode { resource, .. } = op {
            *resource = None
        }
    });
    assert!(matches!(reply, LedgerReply::Tokens { ref resource, .. } if resource == RESOURCE));
}

#[test]
fn expired_codes_are_refused() {
    let w = World::new();
    w.p.advance(Duration::from_secs(600));
    assert_eq!(refusal(&w.redeem(|_| {})), Some(Refusal::InvalidGrant));
}

#[test]
fn a_replayed_code_revokes_the_grant_and_its_tokens() {
    let w = World::new();
    assert!(refusal(&w.redeem(|_| {})).is_none());
    assert!(w.has_access("at1"));
    let replay = w.redeem(|op| {
        if let LedgerOp::RedeemCode { tokens: t, .. } = op {
            *t = tokens(2)
        }
    });
    assert_eq!(refusal(&replay), Some(Refusal::InvalidGrant));
    assert!(!w.has_access("at1"), "first access token deleted");
    assert!(!w.has_access("at2"), "no token for the replay");
    assert!(w.grant().revoked);
    assert_eq!(refusal(&w.refresh("rt1", 3)), Some(Refusal::InvalidGrant));
}

#[test]
fn refresh_rotates_and_reuse_of_a_rotated_token_ends_the_grant() {
    let w = World::new();
    w.redeem(|_| {});
    assert!(refusal(&w.refresh("rt1", 2)).is_none());
    assert!(w.has_access("at2"));
    assert_eq!(w.grant().refresh_hash, "rt2");
    assert!(refusal(&w.refresh("rt2", 3)).is_none());
    // rt1 was rotated out: presenting it revokes everything.
    assert_eq!(refusal(&w.refresh("rt1", 4)), Some(Refusal::InvalidGrant));
    assert!(w.grant().revoked);
    for at in ["at1", "at2", "at3", "at4"] {
        assert!(!w.has_access(at), "{at}");
    }
    assert_eq!(refusal(&w.refresh("rt3", 5)), Some(Refusal::InvalidGrant));
}

#[test]
fn refresh_checks_scope_resource_and_expiry() {
    let w = World::new();
    w.redeem(|_| {});
    let narrowed = w.apply(LedgerOp::Refresh {
        client_id: client(),
        refresh_hash: "rt1".into(),
        scope: Some(ScopeSet::parse(Some("mcp")).unwrap()),
        resource: Some("https://other.example/internal".into()),
        tokens: tokens(2),
    });
    assert_eq!(refusal(&narrowed), Some(Refusal::InvalidTarget));
    assert_eq!(
        refusal(&w.refresh("unknown", 2)),
        Some(Refusal::InvalidGrant)
    );
    w.p.advance(Duration::from_secs(86400));
    assert_eq!(refusal(&w.refresh("rt1", 2)), Some(Refusal::InvalidGrant));
}

#[test]
fn access_tokens_never_outlive_the_grant() {
    let w = World::new();
    w.redeem(|op| {
        if let LedgerOp::RedeemCode {
            grant_lifetime_secs,
            ..
        } = op
        {
            *grant_lifetime_secs = 1800
        }
    });
    let record: AccessRecord =
        serde_json::from_slice(&w.p.kv.borrow()[&access_key("at1")].0).unwrap();
    assert_eq!(record.expires_at, w.p.now().as_secs() + 1800);
    assert_eq!(w.grant().refresh_expires_at, w.p.now().as_secs() + 1800);
}

#[test]
fn revoking_a_refresh_token_ends_the_grant() {
    let w = World::new();
    w.redeem(|_| {});
    assert_eq!(
        w.apply(LedgerOp::RevokeRefresh {
            refresh_hash: "rt1".into()
        }),
        LedgerReply::Done
    );
    assert!(w.grant().revoked);
    assert!(!w.has_access("at1"));
    assert_eq!(
        w.apply(LedgerOp::RevokeRefresh {
            refresh_hash: "unknown".into()
        }),
        LedgerReply::Done
    );
}

#[test]
fn a_failed_commit_leaves_the_code_unredeemed() {
    let w = World::new();
    w.store.fail_commit.set(true);
    assert!(
        block_on(apply(
            &w.store,
            &w.p,
            &client(),
            LedgerOp::RedeemCode {
                client_id: client(),
                code_hash: "c1".into(),
                redirect_uri: Some("https://a.example/cb".into()),
                computed_challenge: CHALLENGE.into(),
                resource: None,
                grant_lifetime_secs: 86400,
                tokens: tokens(1),
            }
        ))
        .is_err()
    );
    w.store.fail_commit.set(false);
    assert!(
        refusal(
            &w.redeem(|op| if let LedgerOp::RedeemCode { tokens: t, .. } = op {
                *t = tokens(2)
            })
        )
        .is_none()
    );
}

#[test]
fn ops_round_trip_as_json() {
    let op = LedgerOp::RevokeRefresh {
        refresh_hash: "h".into(),
    };
    let text = serde_json::to_string(&op).unwrap();
    assert_eq!(text, r#"{"op":"revoke_refresh","refresh_hash":"h"}"#);
    assert_eq!(serde_json::from_str::<LedgerOp>(&text).unwrap(), op);
}

fn login_record(p: &FakePlatform) -> LoginRecord {
    LoginRecord {
        request: crate::oauth::authorize::AuthorizationRequest {
            client_id: client(),
            redirect_uri: crate::oauth::types::RedirectUri::parse("https://a.example/cb").unwrap(),
            redirect_uri_given: true,
            state: Some("s".into()),
            scope: ScopeSet::parse(None).unwrap(),
            code_challenge: crate::oauth::types::CodeChallenge::parse(CHALLENGE).unwrap(),
            resource: RESOURCE.into(),
        },
        upstream_verifier: "v".into(),
        nonce: "n".into(),
        expires_at: p.now().as_secs() + 600,
        used: false,
    }
}

#[test]
fn logins_finish_once_and_expire() {
    let w = World::new();
    let record = login_record(&w.p);
    w.apply(LedgerOp::BeginLogin {
        login_id: "l1".into(),
        record: record.clone(),
    });
    assert_eq!(
        w.apply(LedgerOp::FinishLogin {
            login_id: "l1".into()
        }),
        LedgerReply::Login {
            record: Box::new(LoginRecord {
                used: true,
                ..record.clone()
            })
        }
    );
    assert_eq!(
        refusal(&w.apply(LedgerOp::FinishLogin {
            login_id: "l1".into()
        })),
        Some(Refusal::InvalidGrant)
    );
    assert_eq!(
        refusal(&w.apply(LedgerOp::FinishLogin {
            login_id: "nope".into()
        })),
        Some(Refusal::InvalidGrant)
    );
    w.apply(LedgerOp::BeginLogin {
        login_id: "l2".into(),
        record,
    });
    w.p.advance(Duration::from_secs(600));
    assert_eq!(
        refusal(&w.apply(LedgerOp::FinishLogin {
            login_id: "l2".into()
        })),
        Some(Refusal::InvalidGrant)
    );
}

#[test]
fn nonces_are_single_use() {
    let w = World::new();
    let exp = w.p.now().as_secs() + 60;
    assert_eq!(
        w.apply(LedgerOp::ConsumeNonce {
            nonce: "t1".into(),
            expires_at: exp
        }),
        LedgerReply::Done
    );
    assert_eq!(
        refusal(&w.apply(LedgerOp::ConsumeNonce {
            nonce: "t1".into(),
            expires_at: exp
        })),
        Some(Refusal::InvalidGrant)
    );
    let past = w.p.now().as_secs();
    assert_eq!(
        refusal(&w.apply(LedgerOp::ConsumeNonce {
            nonce: "t2".into(),
            expires_at: past
        })),
        Some(Refusal::InvalidGrant)
    );
}

#[test]
fn consent_covers_only_the_same_redirect_and_scopes() {
    let w = World::new();
    assert_eq!(
        w.apply(LedgerOp::GetConsent {
            user_key: "u1".into()
        }),
        LedgerReply::Consent { record: None }
    );
    let record = ConsentRecord {
        redirect_uri: "https://a.example/cb".into(),
        scope: ScopeSet::parse(None).unwrap(),
        approved_at: 1,
    };
    w.apply(LedgerOp::RecordConsent {
        user_key: "u1".into(),
        record: record.clone(),
    });
    assert_eq!(
        w.apply(LedgerOp::GetConsent {
            user_key: "u1".into()
        }),
        LedgerReply::Consent {
            record: Some(record.clone())
        }
    );
    let request = login_record(&w.p).request;
    assert!(record.covers(&request));
    let mut moved = request.clone();
    moved.redirect_uri =
        crate::oauth::types::RedirectUri::parse("https://a.example/other").unwrap();
    assert!(!record.covers(&moved));
}

#[test]
fn an_omitted_redirect_uri_need_not_be_repeated() {
    let w = World::new();
    let now = w.p.now().as_secs();
    w.apply(LedgerOp::IssueCode {
        code_hash: "c2".into(),
        record: CodeRecord {
            grant_id: "g2".into(),
            redirect_uri: "https://a.example/cb".into(),
            redirect_uri_given: false,
            code_challenge: CHALLENGE.into(),
            scope: ScopeSet::parse(Some("mcp")).unwrap(),
            resource: RESOURCE.into(),
            subject: subject(),
            expires_at: now + 600,
            redeemed: false,
        },
    });
    let with_uri = |uri: Option<&str>, n: u32| {
        w.redeem(|op| {
            if let LedgerOp::RedeemCode {
                code_hash,
                redirect_uri,
                tokens: t,
                ..
            } = op
            {
                *code_hash = "c2".into();
                *redirect_uri = uri.map(str::to_owned);
                *t = tokens(n);
            }
        })
    };
    assert_eq!(
        refusal(&with_uri(Some("https://a.example/other"), 2)),
        Some(Refusal::InvalidGrant)
    );
    assert!(refusal(&with_uri(None, 3)).is_none());
}

#[test]
fn purge_removes_only_what_can_no_longer_matter() {
    let w = World::new();
    w.redeem(|_| {});
    w.apply(LedgerOp::BeginLogin {
        login_id: "l1".into(),
        record: login_record(&w.p),
    });
    let soon = w.p.now().as_secs() + 60;
    w.apply(LedgerOp::ConsumeNonce {
        nonce: "t1".into(),
        expires_at: soon,
    });
    let consent = ConsentRecord {
        redirect_uri: "https://a.example/cb".into(),
        scope: ScopeSet::parse(None).unwrap(),
        approved_at: 1,
    };
    w.apply(LedgerOp::RecordConsent {
        user_key: "u1".into(),
        record: consent,
    });
    let keys = |w: &World| {
        let mut k: Vec<String> = w.store.entries.borrow().keys().cloned().collect();
        k.sort();
        k
    };
    // Nothing is due yet.
    assert_eq!(block_on(purge(&w.store, w.p.now().as_secs())).unwrap(), 0);
    let before = keys(&w);
    // After ten minutes: the login and the nonce; the code is still
    // remembered for replay detection, the grant lives on.
    w.p.advance(Duration::from_secs(600));
    assert_eq!(block_on(purge(&w.store, w.p.now().as_secs())).unwrap(), 2);
    assert!(
        !keys(&w).contains(&"login:l1".to_owned()) && !keys(&w).contains(&"nonce:t1".to_owned())
    );
    assert!(keys(&w).contains(&"code:c1".to_owned()) && keys(&w).contains(&"grant:g1".to_owned()));
    // A replay a day later still revokes the grant.
    let replay = w.redeem(|op| {
        if let LedgerOp::RedeemCode { tokens: t, .. } = op {
            *t = tokens(9)
        }
    });
    assert_eq!(refusal(&replay), Some(Refusal::InvalidGrant));
    // After the grant's end (7 days): the code, the grant and its refresh
    // index go; the consent stays.
    w.p.advance(Duration::from_secs(7 * 86400));
    block_on(purge(&w.store, w.p.now().as_secs())).unwrap();
    assert_eq!(
        keys(&w),
        vec!["consent:u1".to_owned()],
        "before: {before:?}"
    );
}
