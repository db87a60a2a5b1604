//! Results that are the same for every request of an isolate, serialised
//! once: `tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`, `server/discover` and `initialize`
//! (issue 12: nothing derived per request that could be derived once).
//!
//! What such a result depends on is its key: the method, the protocol
//! revision, the configured default site (which changes `site_id`'s
//! schema and the instructions) and whether the client offered the MCP
//! Apps extension (declared only to clients that did). The bytes are
//! built on the first request with a key and shared afterwards.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::Value;

use super::version::Revision;

/// Everything a shared result depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) method: &'static str,
    pub(super) revision: Revision,
    pub(super) default_site: Option<String>,
    pub(super) apps: bool,
}

/// Keys are few (6 methods, 4 revisions, 2 extension variants, the one
/// configured site); past this many something varies that should not,
/// and the table starts over rather than grow.
const MAX_ENTRIES: usize = 64;

thread_local! {
    static RESULTS: RefCell<Vec<(Key, Rc<str>)>> = const { RefCell::new(Vec::new()) };
    static BUILDS: Cell<u64> = const { Cell::new(0) };
}

/// The serialised result for `key`, built by `build` only the first time.
pub(super) fn result(key: Key, build: impl FnOnce() -> Value) -> Rc<str> {
    if let Some(found) = RESULTS.with_borrow(|r| {
        r.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, bytes)| Rc::clone(bytes))
    }) {
        return found;
    }
    let bytes: Rc<str> = build().to_string().into();
    BUILDS.set(BUILDS.get().saturating_add(1));
    RESULTS.with_borrow_mut(|r| {
        if r.len() >= MAX_ENTRIES {
            r.clear();
        }
        r.push((key, Rc::clone(&bytes)));
    });
    bytes
}

/// How many results this thread has built (tests: none per request).
#[cfg(test)]
pub(super) fn builds() -> u64 {
    BUILDS.get()
}
