//! Deployment configuration: every variable and binding name, where
//! values come from, and the typed settings of each side of the worker
//! (the authorization server, the MCP endpoints). Settings are built from
//! a [`source::Source`] alone, so they can be built once; what depends on
//! the request (the issuer, from its origin) is built per request
//! elsewhere (`oauth::server`).

pub(crate) mod deployment;
pub(crate) mod mcp;
pub(crate) mod names;
pub(crate) mod oauth;
pub(crate) mod source;
