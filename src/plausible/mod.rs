//! The Plausible tools: argument validation, Stats API v2 queries, the HTTP
//! client, the text and structured results, and the server instructions.

pub(crate) mod args;
pub(crate) mod client;
pub(crate) mod context;
pub(crate) mod filters;
pub(crate) mod instructions;
pub(crate) mod query;
pub(crate) mod render;
pub(crate) mod sites;
pub(crate) mod stats;
pub(crate) mod tools;
pub(crate) mod upstream;
pub(crate) mod vocabulary;
