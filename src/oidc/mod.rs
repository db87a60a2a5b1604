//! The relying party of the upstream OpenID provider (Cloudflare Access
//! for SaaS, or the local provider in development): discovery, signing
//! keys, the code exchange, ID token and Access assertion verification.
//! It knows nothing of our own authorization server.

pub(crate) mod access;
pub(crate) mod provider;
pub(crate) mod verify;
// RS256 known-answer vectors: native tests and the test build's
// `/__test/kat` (run inside workerd through WebCrypto).
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) mod kat;
