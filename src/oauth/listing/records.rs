//! What a listing object (a user's directory, a client's index) stores.

use serde::{Deserialize, Serialize};

use crate::oauth::ids::RoutingId;
use crate::oauth::types::ClientId;

/// Keys of listed pairs: `pair:<routing id hex>`, so a page of them is
/// one prefix listing in key order.
pub const PAIR_PREFIX: &str = "pair:";
/// The key of the revoke-all marker.
pub const MARKER_KEY: &str = "revoke_all";

pub fn pair_key(routing: &RoutingId) -> String {
    format!("{PAIR_PREFIX}{}", routing.to_hex())
}

/// One (client, user) pair: its client and the routing id naming its
/// grant object. The same record in the user's directory and the
/// client's index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedPair {
    pub client_id: ClientId,
    pub routing: RoutingId,
    /// When the pair got its first code (seconds). Last activity is not
    /// kept: it would cost a write on every refresh.
    pub first_connected: u64,
}

/// A revocation in progress: every grant created at or before `before`
/// in every listed pair ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeMarker {
    /// Seconds since the epoch.
    pub before: u64,
    /// The key of the last listed pair already sent its step; none yet
    /// when absent.
    pub cursor: Option<String>,
    /// Every listed pair has been sent its step once.
    pub scanned: bool,
    /// Pairs whose step failed, sent again first on the next run.
    pub retry: Vec<RoutingId>,
    /// The object's own grants are done (a client's legacy ledger holds
    /// the previous release's grants; a directory holds none).
    pub own_done: bool,
    /// Alarm runs so far.
    pub runs: u32,
}

/// Which kind of listing object.
#[cfg_attr(not(any(test, target_arch = "wasm32")), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A user's `UserDirectory`.
    Directory,
    /// A client's index, in its `ClientLedger` (which also holds that
    /// client's legacy grants, ended by a client-wide revocation too).
    Index,
}
