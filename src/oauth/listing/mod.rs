//! Where a person's and a client's grants are, without scanning: a
//! `UserDirectory` object per user (the clients the user connected) and
//! an index in each client's `ClientLedger` (the pairs of that client
//! holding grants). Both list pairs ([`records::ListedPair`]); a pair is
//! listed once, when it gets its first code (`flow::issue`), never on a
//! refresh.
//!
//! A revocation that spans many objects (all of a user's grants, all of
//! a client's) writes one marker in the listing object and returns; the
//! object's alarm then fans out to every listed pair object, a bounded
//! number per run, retrying on the next run the pairs that failed
//! ([`object::fan_out`]). Its lag: the alarm runs (a few hundred pair
//! calls a second at the edge) plus KV's up-to-60-second propagation of
//! the deleted access records to other locations.
//!
//! - [`records`]: what the listing objects store;
//! - [`protocol`]: their messages and replies;
//! - [`client`]: the port, the typed clients and the revoke-all calls;
//! - [`object`]: inside the objects: the messages and the fan-out;
//! - [`probe`]: the end-to-end tests' loopback-only view of them (the
//!   test build only, cargo feature `test-hooks`).

pub(crate) mod client;
pub(crate) mod object;
#[cfg(feature = "test-hooks")]
pub(crate) mod probe;
pub(crate) mod protocol;
pub(crate) mod records;

#[cfg(test)]
mod tests;
