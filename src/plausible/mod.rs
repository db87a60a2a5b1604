//! The Plausible tools: argument validation, Stats API v2 queries, the HTTP
//! client, the text and structured results, and the server instructions;
//! and the prompts, resources and completions built on them.

pub(crate) mod args;
pub(crate) mod client;
pub(crate) mod completion;
pub(crate) mod context;
pub(crate) mod filters;
pub(crate) mod instructions;
pub(crate) mod prompts;
pub(crate) mod query;
pub(crate) mod render;
pub(crate) mod resources;
pub(crate) mod site_offer;
pub(crate) mod sites;
pub(crate) mod stats;
pub(crate) mod tools;
pub(crate) mod ui;
pub(crate) mod upstream;
pub(crate) mod vocabulary;
pub(crate) mod vocabulary_doc;
