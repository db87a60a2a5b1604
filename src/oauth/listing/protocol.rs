//! The messages a listing object takes, tagged by `op`, and its replies,
//! tagged by `result` (as the ledger's).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::records::ListedPair;

/// Lists a pair; a pair listed already is left as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPair {
    pub pair: ListedPair,
}

/// A page of listed pairs, in routing-id order, after `after` (a routing
/// id in hex, exclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairs {
    pub after: Option<String>,
    pub limit: u32,
}

/// Starts (or restarts, with a later time) a revocation of every grant
/// created at or before `at` in every listed pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRevokeAll {
    pub at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ListingMessage {
    AddPair(AddPair),
    Pairs(Pairs),
    MarkRevokeAll(MarkRevokeAll),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Listed {
    Done,
}

/// A page of pairs; `next` continues it. `revoking` is the time of a
/// revocation still fanning out, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PairsReply {
    Pairs {
        pairs: Vec<ListedPair>,
        next: Option<String>,
        revoking: Option<u64>,
    },
}

/// An operation and the reply it gets.
pub trait Operation: Into<ListingMessage> {
    type Reply: Serialize + DeserializeOwned;
}

macro_rules! operations {
    ($($op:ident => $reply:ty),* $(,)?) => {
        $(
            impl From<$op> for ListingMessage {
                fn from(op: $op) -> Self {
                    ListingMessage::$op(op)
                }
            }
            impl Operation for $op {
                type Reply = $reply;
            }
        )*
    };
}

operations! {
    AddPair => Listed,
    Pairs => PairsReply,
    MarkRevokeAll => Listed,
}
