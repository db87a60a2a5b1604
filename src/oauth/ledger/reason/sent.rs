//! Each reason the ledger sends, met through its real transition: the
//! typed value the worker's audit matches on comes from the place the
//! rule lives, not from a table of texts.

// Case tables name a case as a boxed closure.
#![allow(clippy::type_complexity)]

use super::super::codes;
use super::super::consents::consume_nonce;
use super::super::logins::{begin, finish, tests::login_record};
use super::super::protocol::{
    BeginLogin, ConsumeNonce, FinishLogin, IssueCode, LoginReply, NonceReply, TokensReply,
};
use super::super::records::{Home, StorageKey};
use super::super::test_world::*;
use super::Reason;
use crate::oauth::ids::{GrantId, LoginId, TicketId};
use crate::oauth::types::{ClientId, CodeChallenge, ScopeSet};
use crate::testing::block_on;

fn other_client() -> ClientId {
    ClientId::parse("pmcp_client_B").unwrap()
}

fn reason(reply: TokensReply) -> Option<Reason> {
    match reply {
        TokensReply::Refused(r) => Some(r.reason),
        TokensReply::Tokens(_) | TokensReply::Again(_) => None,
    }
}

/// A world whose grant `g1` is live (code `c1` redeemed: `rt1`, `at1`).
fn redeemed() -> World {
    let w = World::new();
    assert!(refusal(&w.redeem(|_| {})).is_none());
    w
}

fn bad_challenge() -> CodeChallenge {
    CodeChallenge::parse(&"x".repeat(43)).unwrap()
}

#[test]
fn each_token_refusal_carries_its_typed_reason() {
    let cases: Vec<(Reason, Box<dyn Fn() -> Option<Reason>>)> = vec![
        (
            Reason::CodeToAnotherLedger,
            Box::new(|| reason(World::new().redeem(|m| m.client_id = other_client()))),
        ),
        (
            Reason::UnknownCode,
            Box::new(|| reason(World::new().redeem(|m| m.code_hash = h("nope")))),
        ),
        (
            Reason::CodeOfAnotherClient,
            Box::new(|| {
                let w = World::new();
                let mut record = code_record(w.now(), "g2");
                record.client_id = Some(other_client());
                block_on(codes::issue(
                    &w.store,
                    Home::Client(&client()),
                    IssueCode {
                        code_hash: h("c2"),
                        record,
                        ask_listed: false,
                    },
                ))
                .unwrap();
                reason(w.redeem(|m| m.code_hash = h("c2")))
            }),
        ),
        (
            Reason::CodeReplayedWithoutVerifier,
            Box::new(|| {
                reason(redeemed().redeem(|m| {
                    m.tokens = tokens(2);
                    m.computed_challenge = bad_challenge();
                }))
            }),
        ),
        (
            Reason::CodeReplayed,
            Box::new(|| reason(redeemed().redeem(|m| m.tokens = tokens(2)))),
        ),
        (
            Reason::CodeExpired,
            Box::new(|| {
                let w = World::new();
                w.advance(600);
                reason(w.redeem(|_| {}))
            }),
        ),
        (
            Reason::RedirectUriMismatch,
            Box::new(|| {
                reason(World::new().redeem(|m| m.redirect_uri = Some("https://a.example/x".into())))
            }),
        ),
        (
            Reason::PkceFailed,
            Box::new(|| reason(World::new().redeem(|m| m.computed_challenge = bad_challenge()))),
        ),
        (
            Reason::CodeResourceMismatch,
            Box::new(|| {
                reason(
                    World::new()
                        .redeem(|m| m.resource = Some(resource("https://other.example/internal"))),
                )
            }),
        ),
        (
            Reason::RefreshToAnotherLedger,
            Box::new(|| reason(redeemed().refresh_with(|m| m.client_id = other_client()))),
        ),
        (
            Reason::UnknownRefreshToken,
            Box::new(|| reason(redeemed().refresh("nope", 2))),
        ),
        (
            Reason::GrantNotFound,
            Box::new(|| {
                let w = redeemed();
                let grant = StorageKey::Grant(GrantId::fixed("g1")).encode();
                w.store.entries.borrow_mut().remove(&grant);
                reason(w.refresh("rt1", 2))
            }),
        ),
        (
            Reason::RefreshOfAnotherClient,
            Box::new(|| {
                let w = redeemed();
                let key = StorageKey::Grant(GrantId::fixed("g1")).encode();
                let mut grant = w.grant("g1");
                grant.client_id = Some(other_client());
                w.store
                    .entries
                    .borrow_mut()
                    .insert(key, serde_json::to_value(grant).unwrap());
                reason(w.refresh("rt1", 2))
            }),
        ),
        (
            Reason::GrantRevoked,
            Box::new(|| {
                let w = redeemed();
                super::super::grants::tests::revoke_rt(&w, "rt1");
                reason(w.refresh("rt1", 2))
            }),
        ),
        (
            Reason::KillSwitch,
            Box::new(|| {
                let w = redeemed();
                let after = w.now() + 1;
                reason(w.refresh_with(|m| m.not_before = Some(after)))
            }),
        ),
        (
            Reason::RefreshReplayed,
            Box::new(|| {
                let w = redeemed();
                assert!(refusal(&w.refresh("rt1", 2)).is_none());
                reason(w.refresh("rt1", 3))
            }),
        ),
        (
            Reason::RefreshExpired,
            Box::new(|| {
                let w = redeemed();
                w.advance(86400);
                reason(w.refresh("rt1", 2))
            }),
        ),
        (
            Reason::ScopeExceedsGrant,
            Box::new(|| {
                // A scope the grant lacks (built past the parser, which
                // offers only what this server grants).
                let wider: ScopeSet =
                    serde_json::from_value(serde_json::json!(["mcp", "other"])).unwrap();
                reason(redeemed().refresh_with(|m| m.scope = Some(wider)))
            }),
        ),
        (
            Reason::GrantResourceMismatch,
            Box::new(|| {
                reason(redeemed().refresh_with(|m| {
                    m.resource = Some(resource("https://other.example/internal"))
                }))
            }),
        ),
    ];
    for (want, case) in &cases {
        assert_eq!(case(), Some(*want), "{want:?}");
    }
    let login = login_reasons();
    let every_sent: Vec<Reason> = cases
        .iter()
        .map(|(r, _)| *r)
        .chain(login)
        .chain([Reason::UnexpectedReply])
        .collect();
    for r in Reason::ALL {
        assert!(every_sent.contains(r), "{r:?} has no case");
    }
}

/// Logins and consent tickets: single use until they expire.
fn login_reasons() -> Vec<Reason> {
    let w = World::new();
    let finish_as = |id: &str| match block_on(finish(
        &w.store,
        FinishLogin {
            login_id: LoginId::fixed(id),
        },
        w.now(),
    ))
    .unwrap()
    {
        LoginReply::Refused(r) => Some(r.reason),
        LoginReply::Login { .. } => None,
    };
    let begin_as = |id: &str| {
        block_on(begin(
            &w.store,
            BeginLogin {
                login_id: LoginId::fixed(id),
                record: login_record(w.now()),
            },
        ))
        .unwrap()
    };
    let spend = |id: &str, expires_at: u64| match block_on(consume_nonce(
        &w.store,
        ConsumeNonce {
            nonce: TicketId::fixed(id),
            expires_at,
        },
        w.now(),
    ))
    .unwrap()
    {
        NonceReply::Refused(r) => Some(r.reason),
        NonceReply::Done => None,
    };
    assert_eq!(finish_as("nope"), Some(Reason::UnknownLogin));
    begin_as("l1");
    assert_eq!(finish_as("l1"), None);
    assert_eq!(finish_as("l1"), Some(Reason::LoginReplayed));
    assert_eq!(spend("t1", w.now() + 60), None);
    assert_eq!(spend("t1", w.now() + 60), Some(Reason::TicketReplayed));
    assert_eq!(spend("t2", w.now()), Some(Reason::TicketExpired));
    begin_as("l2");
    w.advance(600);
    assert_eq!(finish_as("l2"), Some(Reason::LoginExpired));
    vec![
        Reason::UnknownLogin,
        Reason::LoginReplayed,
        Reason::TicketReplayed,
        Reason::TicketExpired,
        Reason::LoginExpired,
    ]
}
