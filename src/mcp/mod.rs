//! The MCP server over Streamable HTTP: stateless, POST only, JSON
//! responses, serving the handshake revisions (2025-03-26, 2025-06-18,
//! 2025-11-25) and the stateless 2026-07-28 revision on one endpoint.
//!
//! - [`transport`]: HTTP status, media types, headers, batches, and which
//!   revision ("era") a request is made under;
//! - [`dispatch`]: the methods, answered under that revision;
//!   [`method`]: the closed set of methods it answers;
//! - [`scopes`]: which OAuth scope each message needs, and the 403
//!   step-up challenge for a token without it;
//! - [`catalog`]: prompts, resources and completions; [`caching`]: the
//!   `ttlMs`/`cacheScope` hints; [`shared`]: results built once per
//!   isolate;
//! - [`jsonrpc`]: the JSON-RPC 2.0 wire types; [`version`]: the revisions.

mod caching;
mod catalog;
mod dispatch;
mod jsonrpc;
mod method;
pub(crate) mod scopes;
mod shared;
mod transport;
mod version;

pub(crate) use scopes::Authority;
pub(crate) use transport::{MAX_BODY_BYTES, body_too_large, rate_limited, serve};

#[cfg(test)]
mod tests;
