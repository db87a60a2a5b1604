//! Caching hints on cacheable results (MCP 2026-07-28, server utilities
//! "Caching"): `ttlMs` and `cacheScope`, sent only under revisions that
//! define them.

use serde_json::{Value, json};

use crate::plausible::resources::CacheScope;

/// How long clients may cache `server/discover` and the lists
/// (`tools/list`, `prompts/list`, `resources/list`,
/// `resources/templates/list`): they change only on deploy.
pub(super) const LIST_TTL_MS: u64 = 3_600_000;

/// Adds `ttlMs` and `cacheScope` to `result` when `modern`.
pub(super) fn hint(mut result: Value, modern: bool, ttl_ms: u64, scope: CacheScope) -> Value {
    if modern && let Value::Object(obj) = &mut result {
        obj.insert("ttlMs".into(), json!(ttl_ms));
        obj.insert("cacheScope".into(), json!(scope.as_str()));
    }
    result
}
