//! The worker's side of the listings: the port to the listing objects,
//! their typed clients (`Directory::list`, `Index::pairs`), listing a new
//! pair, and the two revocations that span many objects.
//!
//! The readers and the revocations serve the connections page
//! (`oauth::connections`) and the test build's probe.
#![allow(async_fn_in_trait)]

use serde_json::Value;

use super::protocol::{
    AddPair, Listed, ListingMessage, MarkRevokeAll, Operation, Pairs, PairsReply,
};
use super::records::ListedPair;
use crate::oauth::ids::UserKey;
use crate::oauth::ledger::client::{Coordinator, Ledger, object_name};
use crate::oauth::types::ClientId;
use crate::ports::StorageError;

/// The most pairs one page holds.
pub const MAX_PAGE: u32 = 100;

/// Which listing object a message goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    /// A user's `UserDirectory`, named `u:<user key>`.
    Directory(UserKey),
    /// A client's index: its `ClientLedger` (named as the ledger).
    Index(ClientId),
}

impl Listing {
    /// The Durable Object name. Part of the stored layout.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub fn object_name(&self) -> String {
        match self {
            Listing::Directory(user) => format!("u:{}", user.as_str()),
            Listing::Index(client) => object_name(client),
        }
    }
}

/// The line to the listing objects; each applies its messages one at a
/// time in strongly consistent storage.
pub trait Listings {
    async fn listing(&self, at: &Listing, message: ListingMessage) -> Result<Value, StorageError>;
}

async fn send<L: Listings + ?Sized, O: Operation>(
    listings: &L,
    at: &Listing,
    op: O,
) -> Result<O::Reply, StorageError> {
    let reply = listings.listing(at, op.into()).await?;
    serde_json::from_value(reply).map_err(|e| StorageError(format!("listing reply: {e}")))
}

/// A page of listed pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub pairs: Vec<ListedPair>,
    /// Pass as `after` for the next page; none at the end.
    pub next: Option<String>,
    /// The time of a revoke-all still fanning out from this object.
    pub revoking: Option<u64>,
}

async fn page<L: Listings + ?Sized>(
    listings: &L,
    at: &Listing,
    after: Option<String>,
    limit: u32,
) -> Result<Page, StorageError> {
    let PairsReply::Pairs {
        pairs,
        next,
        revoking,
    } = send(
        listings,
        at,
        Pairs {
            after,
            limit: limit.clamp(1, MAX_PAGE),
        },
    )
    .await?;
    Ok(Page {
        pairs,
        next,
        revoking,
    })
}

/// One user's directory: the clients the user connected.
pub struct Directory<'a, L: ?Sized> {
    listings: &'a L,
    at: Listing,
}

impl<'a, L: Listings + ?Sized> Directory<'a, L> {
    pub fn of(listings: &'a L, user: &UserKey) -> Self {
        Self {
            listings,
            at: Listing::Directory(user.clone()),
        }
    }

    /// Every pair of this user (a person connects a handful of clients;
    /// read page by page all the same).
    pub async fn list(&self) -> Result<Page, StorageError> {
        let mut all = page(self.listings, &self.at, None, MAX_PAGE).await?;
        let mut next = all.next.take();
        while let Some(after) = next {
            let more = page(self.listings, &self.at, Some(after), MAX_PAGE).await?;
            all.pairs.extend(more.pairs);
            all.revoking = more.revoking;
            next = more.next;
        }
        Ok(all)
    }
}

/// One client's index: the pairs of this client (one per user).
pub struct Index<'a, L: ?Sized> {
    listings: &'a L,
    at: Listing,
}

impl<'a, L: Listings + ?Sized> Index<'a, L> {
    pub fn of(listings: &'a L, client: &ClientId) -> Self {
        Self {
            listings,
            at: Listing::Index(client.clone()),
        }
    }

    /// A page of at most `limit` pairs after `after`.
    pub async fn pairs(&self, after: Option<String>, limit: u32) -> Result<Page, StorageError> {
        page(self.listings, &self.at, after, limit).await
    }
}

/// Lists a pair that just got its first code: in the user's directory,
/// in the client's index, then marked in the pair object so later codes
/// do not ask again. Each step is idempotent; if one fails the pair
/// object stays unmarked and the next code lists it again.
pub async fn list_pair<P: Listings + Coordinator + ?Sized>(
    platform: &P,
    user: &UserKey,
    pair: ListedPair,
) -> Result<(), StorageError> {
    let at = pair.first_connected;
    let routing = pair.routing;
    for listing in [
        Listing::Directory(user.clone()),
        Listing::Index(pair.client_id.clone()),
    ] {
        let Listed::Done = send(platform, &listing, AddPair { pair: pair.clone() }).await?;
    }
    Ledger::pair(platform, routing).mark_listed(at).await
}

/// Ends every grant of `user`, with every client, created at or before
/// `now` (seconds): one marker in the user's directory, whose alarm
/// fans out to the pairs. Returns once the marker is written.
pub async fn revoke_all_for_user<L: Listings + ?Sized>(
    listings: &L,
    user: &UserKey,
    now: u64,
) -> Result<(), StorageError> {
    let at = Listing::Directory(user.clone());
    let Listed::Done = send(listings, &at, MarkRevokeAll { at: now }).await?;
    Ok(())
}

/// Ends every grant of `client`, of every user, created at or before
/// `now` (seconds), the previous release's included: one marker in the
/// client's index, whose alarm fans out.
pub async fn revoke_all_for_client<L: Listings + ?Sized>(
    listings: &L,
    client: &ClientId,
    now: u64,
) -> Result<(), StorageError> {
    let at = Listing::Index(client.clone());
    let Listed::Done = send(listings, &at, MarkRevokeAll { at: now }).await?;
    Ok(())
}
