//! One client's ledger with a code issued, for the transition tests.

use std::time::Duration;

use super::codes;
use super::protocol::{IssueCode, NewTokens, RedeemCode, Refresh, TokensReply};
use super::records::{AccessRecord, CodeRecord, GrantRecord, StorageKey, Subject, access_key};
use crate::oauth::ids::{GrantId, TokenHash, UserKey};
use crate::oauth::types::{ClientId, CodeChallenge, RedirectUri, ScopeSet};
use crate::ports::Clock;
pub use crate::testing::resource;
use crate::testing::{FakePlatform, MemoryLedgerStore, block_on};

pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const RESOURCE: &str = "https://mcp.example.com/internal";

pub fn client() -> ClientId {
    ClientId::parse("pmcp_client_A").unwrap()
}

pub fn subject() -> Subject {
    Subject {
        user_key: UserKey::legacy_of_email("u1@example.com"),
        sealed_props: "sealed".into(),
        kind: None,
    }
}

/// The hash standing for token `name` in these tests.
pub fn h(name: &str) -> TokenHash {
    TokenHash::of(name)
}

pub fn tokens(n: u32) -> NewTokens {
    NewTokens {
        access_hash: h(&format!("at{n}")),
        refresh_hash: h(&format!("rt{n}")),
        access_ttl_secs: 3600,
        refresh_ttl_secs: 86400,
    }
}

pub fn code_record(now: u64, grant: &str) -> CodeRecord {
    CodeRecord {
        sites: None,
        client_id: None,
        grant_id: GrantId::fixed(grant),
        redirect_uri: RedirectUri::parse("https://a.example/cb").unwrap(),
        redirect_uri_given: true,
        code_challenge: CodeChallenge::parse(CHALLENGE).unwrap(),
        scope: ScopeSet::parse(Some("mcp")).unwrap(),
        resource: resource(RESOURCE),
        subject: subject(),
        expires_at: now + 600,
        redeemed: false,
        issued_at: Some(now),
        key_checked_at: None,
    }
}

pub struct World {
    pub p: FakePlatform,
    pub store: MemoryLedgerStore,
}

impl World {
    /// Code `c1` issued for grant `g1`.
    pub fn new() -> Self {
        let w = Self {
            p: FakePlatform::new(),
            store: MemoryLedgerStore::default(),
        };
        let now = w.p.now().as_secs();
        block_on(codes::issue(
            &w.store,
            super::records::Home::Client(&client()),
            IssueCode {
                code_hash: h("c1"),
                record: code_record(now, "g1"),
                ask_listed: false,
            },
        ))
        .unwrap();
        w
    }

    pub fn now(&self) -> u64 {
        self.p.now().as_secs()
    }

    pub fn advance(&self, secs: u64) {
        self.p.advance(Duration::from_secs(secs));
    }

    pub fn redeem_request() -> RedeemCode {
        RedeemCode {
            client_id: client(),
            code_hash: h("c1"),
            redirect_uri: Some("https://a.example/cb".into()),
            computed_challenge: CodeChallenge::parse(CHALLENGE).unwrap(),
            resource: Some(resource(RESOURCE)),
            grant_lifetime_secs: 7 * 86400,
            tokens: tokens(1),
        }
    }

    pub fn redeem(&self, change: impl FnOnce(&mut RedeemCode)) -> TokensReply {
        let mut m = Self::redeem_request();
        change(&mut m);
        block_on(codes::redeem(
            &self.store,
            &self.p,
            super::records::Home::Client(&client()),
            m,
            self.now(),
        ))
        .unwrap()
    }

    pub fn refresh_with(&self, change: impl FnOnce(&mut Refresh)) -> TokensReply {
        let mut m = Refresh {
            client_id: client(),
            refresh_hash: h("rt1"),
            scope: None,
            resource: None,
            tokens: tokens(2),
            sealed_pair: None,
            not_before: None,
        };
        change(&mut m);
        block_on(super::grants::refresh(
            &self.store,
            &self.p,
            super::records::Home::Client(&client()),
            m,
            self.now(),
        ))
        .unwrap()
    }

    pub fn refresh(&self, presented: &str, new: u32) -> TokensReply {
        self.refresh_with(|m| {
            m.refresh_hash = h(presented);
            m.tokens = tokens(new);
        })
    }

    pub fn has_access(&self, token: &str) -> bool {
        self.p.kv.borrow().contains_key(&access_key(&h(token)))
    }

    pub fn access_record(&self, token: &str) -> AccessRecord {
        serde_json::from_slice(&self.p.kv.borrow()[&access_key(&h(token))].0).unwrap()
    }

    pub fn grant(&self, id: &str) -> GrantRecord {
        let key = StorageKey::Grant(GrantId::fixed(id)).encode();
        serde_json::from_value(self.store.entries.borrow()[&key].clone()).unwrap()
    }

    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.store.entries.borrow().keys().cloned().collect();
        k.sort();
        k
    }
}

/// The refusal of a reply, if it is one.
pub fn refusal(reply: &TokensReply) -> Option<super::protocol::Refusal> {
    match reply {
        TokensReply::Refused(r) => Some(r.refusal),
        TokensReply::Tokens(_) | TokensReply::Again(_) => None,
    }
}
