//! The OAuth 2.1 authorization server protecting `/internal`, and the
//! resource-server check of its tokens.

pub mod authorize;
pub mod cimd;
pub mod clients;
pub mod consent;
pub mod identity;
pub mod issue;
pub mod ledger;
pub mod registry;
pub mod resource;
pub mod revoke;
pub mod settings;
pub mod target;
pub mod token;
pub mod types;
