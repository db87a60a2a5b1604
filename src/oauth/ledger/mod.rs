//! The per-client ledger: every state transition of codes, grants,
//! refresh tokens, logins and consents for one client, applied one at a
//! time.
//!
//! It runs inside the client's Durable Object, whose storage is strongly
//! consistent and whose requests the glue serialises (including across the
//! KV write), so two redemptions of one code, or two uses of one refresh
//! token, cannot both succeed: the gap Workers KV alone leaves
//! (cloudflare/workers-oauth-provider#214).
//!
//! Token plaintexts never reach the ledger: the worker mints them and
//! sends only their SHA-256 hashes, and the PKCE check compares the
//! challenge the worker computed from the verifier.
//!
//! - [`records`]: what is stored, and the enum of storage keys;
//! - [`protocol`]: the messages and replies between worker and object,
//!   with [`reason`] the typed reason of a refusal;
//! - [`client`]: the worker's typed client, and the port it needs;
//! - [`store`]: the object's storage port;
//! - [`apply`]: the object's dispatch, one transition per operation in
//!   [`codes`], [`grants`], [`key_checked`], [`logins`], [`consents`] and [`revoke_all`]
//!   (a pair's step of a revocation spanning many objects); [`retire`]
//!   the best-effort deletes after a transition and the alarm's retries;
//!   [`sweep`] the daily clean-up.

pub(crate) mod apply;
pub(crate) mod client;
pub(crate) mod codes;
pub(crate) mod consents;
pub(crate) mod grants;
pub(crate) mod key_checked;
pub(crate) mod legacy_consents;
pub(crate) mod logins;
pub(crate) mod protocol;
pub(crate) mod reason;
pub(crate) mod records;
pub(crate) mod retire;
pub(crate) mod revoke_all;
pub(crate) mod store;
pub(crate) mod summary;
pub(crate) mod sweep;
#[cfg(test)]
pub(crate) mod test_world;
