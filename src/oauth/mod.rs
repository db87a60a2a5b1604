//! The OAuth 2.1 authorization server protecting `/internal`, and the
//! resource-server check of its tokens.

pub mod clients;
pub mod ledger;
pub mod types;
