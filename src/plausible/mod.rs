//! The Plausible tools: argument validation, Stats API v2 queries, the HTTP
//! client, and the text and structured results.

pub mod args;
pub mod client;
pub mod query;
pub mod render;
pub mod tools;
pub mod vocabulary;
