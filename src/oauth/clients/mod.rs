//! OAuth clients: the stored record, the one validator of client
//! metadata (with the differences between registration and metadata
//! documents as an explicit profile), dynamic registration (RFC 7591),
//! client ID metadata documents (URL rules, fetch and cache, document
//! rules), and the lookup that finds either.

pub(crate) mod cimd_document;
pub(crate) mod cimd_fetch;
pub(crate) mod cimd_url;
pub(crate) mod metadata;
pub(crate) mod record;
pub(crate) mod register;
pub(crate) mod registry;
