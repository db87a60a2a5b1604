//! The worker's side of the ledger: the port to the ledger objects
//! (defined here, by its consumer), the typed address of an object, and
//! a typed client with one method per operation, so no caller can meet a
//! reply its operation never gives.
#![allow(async_fn_in_trait)]

use serde_json::Value;

pub use super::protocol::PairSummary;
use super::protocol::{
    AccessReply, CodeIssued, ConsentReply, ConsumeNonce, Done, FinishLogin, GetConsent, IssueCode,
    Issued, KeyChecked, LegacyConsentUsers, LegacyConsentsReply, LoginReply, LookupAccess,
    MarkListed, Message, NonceReply, Operation, RecordConsent, RedeemCode, Refresh, Refused,
    RevokeAccess, RevokeAll, RevokeRefresh, RevokedAll, Summarize, TokensReply,
};
use super::records::{AccessRecord, CodeRecord, ConsentRecord, LoginRecord};
use crate::crypto;
use crate::oauth::ids::{LoginId, RoutingId, TicketId, TokenHash, UserKey};
use crate::oauth::types::ClientId;
use crate::ports::StorageError;

/// Which ledger object a message goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A client's `ClientLedger`: the state the previous release wrote
    /// (grants, logins, consent-ticket nonces), until it expires. It
    /// takes no new logins or nonces.
    Client(ClientId),
    /// A (client, user) pair's `GrantLedger`: its codes, grants, refresh
    /// chains and consent.
    Pair(RoutingId),
}

impl Address {
    /// The Durable Object name. Part of the stored layout: a new name
    /// would be a new, empty object.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub fn object_name(&self) -> String {
        match self {
            Address::Client(client) => object_name(client),
            Address::Pair(routing) => routing.object_name(),
        }
    }
}

/// The line to the ledger objects: messages to one object are applied
/// one at a time, in a strongly consistent store. The reply is the
/// object's JSON; [`Ledger`] gives it its type.
pub trait Coordinator {
    async fn ledger(&self, address: &Address, message: Message) -> Result<Value, StorageError>;
}

/// The Durable Object name of a client's ledger: a hash of its id (CIMD
/// ids are long URLs).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn object_name(client: &ClientId) -> String {
    crypto::short_hash(client.as_str())
}

/// One ledger object, typed.
pub struct Ledger<'a, C: ?Sized> {
    coordinator: &'a C,
    address: Address,
}

impl<'a, C: Coordinator + ?Sized> Ledger<'a, C> {
    /// A client's legacy ledger.
    pub fn of(coordinator: &'a C, client: &ClientId) -> Self {
        Self::at(coordinator, Address::Client(client.clone()))
    }

    /// A (client, user) pair's grant object.
    pub fn pair(coordinator: &'a C, routing: RoutingId) -> Self {
        Self::at(coordinator, Address::Pair(routing))
    }

    pub fn at(coordinator: &'a C, address: Address) -> Self {
        Self {
            coordinator,
            address,
        }
    }

    async fn send<O: Operation>(&self, op: O) -> Result<O::Reply, StorageError> {
        let reply = self.coordinator.ledger(&self.address, op.into()).await?;
        serde_json::from_value(reply).map_err(|e| StorageError(format!("ledger reply: {e}")))
    }

    /// Records a code; `true` when the pair is not listed yet in its
    /// user's directory and its client's index.
    pub async fn issue_code(
        &self,
        code_hash: TokenHash,
        record: CodeRecord,
    ) -> Result<bool, StorageError> {
        let reply = self
            .send(IssueCode {
                code_hash,
                record,
                ask_listed: true,
            })
            .await?;
        Ok(reply == CodeIssued::Unlisted)
    }

    /// The pair is listed now: codes stop asking.
    pub async fn mark_listed(&self, at: u64) -> Result<(), StorageError> {
        let Done::Done = self.send(MarkListed { at }).await?;
        Ok(())
    }

    /// Ends the grants created at or before `before` (one step of a
    /// revoke-all fan-out); how many ended.
    pub async fn revoke_all(&self, before: u64) -> Result<u64, StorageError> {
        let RevokedAll::Revoked { grants } = self.send(RevokeAll { before }).await?;
        Ok(grants)
    }

    /// The pair's live grants and consents.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub async fn summary(&self) -> Result<PairSummary, StorageError> {
        self.send(Summarize {}).await
    }

    pub async fn redeem_code(
        &self,
        request: RedeemCode,
    ) -> Result<Result<Issued, Refused>, StorageError> {
        Ok(tokens(self.send(request).await?))
    }

    /// A refresh's reply as it comes: new tokens, a lost response's
    /// pair again, or a refusal.
    pub async fn refresh(&self, request: Refresh) -> Result<TokensReply, StorageError> {
        self.send(request).await
    }

    /// Ends the grant of `refresh_hash`, if `client_id`'s; with
    /// `forget_consent` (a revocation at `/revoke`) the user's consent for
    /// the client goes too.
    pub async fn revoke_refresh(
        &self,
        refresh_hash: TokenHash,
        client_id: &ClientId,
        forget_consent: bool,
    ) -> Result<(), StorageError> {
        let Done::Done = self
            .send(RevokeRefresh {
                refresh_hash,
                client_id: Some(client_id.clone()),
                forget_consent,
            })
            .await?;
        Ok(())
    }

    /// Plausible accepted the key of the grant `refresh_hash` names at
    /// `at` (issue 15's hourly re-check).
    pub async fn key_checked(
        &self,
        refresh_hash: TokenHash,
        client_id: &ClientId,
        at: u64,
    ) -> Result<(), StorageError> {
        let Done::Done = self
            .send(KeyChecked {
                refresh_hash,
                client_id: client_id.clone(),
                at,
            })
            .await?;
        Ok(())
    }

    /// Ends one access token of this object, if `client_id`'s.
    pub async fn revoke_access(
        &self,
        access_hash: TokenHash,
        client_id: &ClientId,
    ) -> Result<(), StorageError> {
        let Done::Done = self
            .send(RevokeAccess {
                access_hash,
                client_id: client_id.clone(),
            })
            .await?;
        Ok(())
    }

    /// A live access token's record, for a KV miss right after issue.
    pub async fn lookup_access(
        &self,
        access_hash: TokenHash,
    ) -> Result<Option<AccessRecord>, StorageError> {
        let AccessReply::Access { record } = self.send(LookupAccess { access_hash }).await?;
        Ok(record)
    }

    pub async fn finish_login(
        &self,
        login_id: LoginId,
    ) -> Result<Result<LoginRecord, Refused>, StorageError> {
        Ok(match self.send(FinishLogin { login_id }).await? {
            LoginReply::Login { record } => Ok(*record),
            LoginReply::Refused(r) => Err(r),
        })
    }

    pub async fn consume_nonce(
        &self,
        nonce: TicketId,
        expires_at: u64,
    ) -> Result<Result<(), Refused>, StorageError> {
        Ok(match self.send(ConsumeNonce { nonce, expires_at }).await? {
            NonceReply::Done => Ok(()),
            NonceReply::Refused(r) => Err(r),
        })
    }

    pub async fn consent(&self, user_key: UserKey) -> Result<Option<ConsentRecord>, StorageError> {
        let ConsentReply::Consent { record } = self.send(GetConsent { user_key }).await?;
        Ok(record)
    }

    /// Which users hold a consent here (a client's legacy ledger), at
    /// most `limit` of them: the marks of their keys, and whether that is
    /// all of them.
    pub async fn legacy_consent_users(
        &self,
        limit: u32,
    ) -> Result<(Vec<String>, bool), StorageError> {
        let LegacyConsentsReply::Users { marks, complete } =
            self.send(LegacyConsentUsers { limit }).await?;
        Ok((marks, complete))
    }

    pub async fn record_consent(
        &self,
        user_key: UserKey,
        record: ConsentRecord,
    ) -> Result<(), StorageError> {
        let Done::Done = self.send(RecordConsent { user_key, record }).await?;
        Ok(())
    }
}

fn tokens(reply: TokensReply) -> Result<Issued, Refused> {
    match reply {
        TokensReply::Tokens(issued) => Ok(issued),
        TokensReply::Refused(r) => Err(r),
        // Only a refresh is answered so.
        TokensReply::Again(_) => Err(Refused::new(
            super::protocol::Refusal::InvalidGrant,
            super::protocol::Reason::UnexpectedReply,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, block_on};

    struct Answers(Value);

    impl Coordinator for Answers {
        async fn ledger(&self, _: &Address, _: Message) -> Result<Value, StorageError> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn a_reply_of_the_wrong_shape_is_a_storage_failure() {
        let client = ClientId::parse("pmcp_client_A").unwrap();
        let answers = Answers(serde_json::json!({"result": "done"}));
        let ledger = Ledger::of(&answers, &client);
        assert!(block_on(ledger.revoke_refresh(TokenHash::of("x"), &client, true)).is_ok());
        let err = block_on(ledger.finish_login(LoginId::mint(&FakePlatform::new()).unwrap()));
        assert!(err.is_err(), "{err:?}");
    }

    #[test]
    fn a_retry_answering_a_redemption_is_refused_as_unexpected() {
        use super::super::protocol::{Again, Issued, Reason};
        let again = TokensReply::Again(Again {
            sealed_pair: "sealed".into(),
            issued: Issued {
                scope: crate::oauth::types::ScopeSet::parse(None).unwrap(),
                resource: crate::testing::resource("https://mcp.example.com/internal"),
                access_expires_in: 1,
                subject: None,
                key_checked_at: None,
                sites: None,
                grant_id: None,
            },
        });
        assert_eq!(tokens(again).unwrap_err().reason, Reason::UnexpectedReply);
    }

    #[test]
    fn objects_are_named_by_a_hash_of_the_client_id() {
        let client = ClientId::parse("https://client.example.com/client.json").unwrap();
        assert_eq!(object_name(&client), "7e6172cc8a5837563d76e81b8d443eb2");
    }
}
