//! The OAuth 2.1 authorization server protecting `/internal`: its
//! protocol values, clients, the authorization request, the browser flow
//! (login, consent, code), the ledger of grants and the listings that
//! find them (a user's directory, a client's index), the token and revocation
//! endpoints, the connections page (connected apps, for users and
//! admins), and the resource server's check of its tokens.

pub(crate) mod authorize;
pub(crate) mod clients;
pub(crate) mod connections;
pub(crate) mod flow;
pub(crate) mod ids;
pub(crate) mod key_grant;
pub(crate) mod ledger;
pub(crate) mod listing;
pub(crate) mod resource;
pub(crate) mod revoke;
pub(crate) mod routing;
pub(crate) mod scope;
pub(crate) mod server;
pub(crate) mod token;
pub(crate) mod token_cache;
pub(crate) mod types;
pub(crate) mod used;
