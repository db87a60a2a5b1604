//! Route handlers: each extracts what it needs from the request, calls
//! one core function, and maps the result to a response. No protocol
//! rules live here, and the only JSON errors built here are in
//! [`reply::refusal`].

pub(crate) mod connections;
pub(crate) mod health;
pub(crate) mod mcp;
pub(crate) mod oauth;
pub(crate) mod reply;
