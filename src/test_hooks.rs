//! The test build's hooks on time and storage (cargo feature
//! `test-hooks`; the release build has no such module, which its smoke
//! test checks). They let the end-to-end suite show rules that depend on
//! things it cannot otherwise move:
//!
//! - [`clock_offset`]: a consent approved "91 days ago" (issue 11's
//!   `CONSENT_TTL_DAYS`) without waiting 91 days. One request's clock runs
//!   ahead by `X-Test-Clock-Offset` seconds, honoured only where the test
//!   identity hook is (`TEST_IDENTITY_HOOK` on a loopback host). Only the
//!   worker's clock moves: a Durable Object keeps the real time.
//! - [`DeleteFaults`]: KV deletes that fail, so a revocation can be shown
//!   to hold while its deletes fail and the object's alarm to finish them
//!   (Miniflare's KV never fails on its own).

// Used by the Workers glue (wasm32) and native tests.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::collections::HashMap;

use crate::config::oauth::OAuthSettings;
use crate::http::Request;
use crate::oauth::server::AuthServer;

/// The header that runs one request's clock ahead (seconds).
pub const CLOCK_HEADER: &str = "x-test-clock-offset";

/// The furthest ahead a request may run: past the longest consent
/// (365 days) and grant lifetimes, so every expiry can be reached.
pub const MAX_CLOCK_OFFSET_SECS: u64 = 400 * 86_400;

/// How far ahead this request's clock runs, if the hook applies: the
/// test identity hook is on (the test build, `TEST_IDENTITY_HOOK`, a
/// loopback host) and the header is a whole number of seconds within
/// [`MAX_CLOCK_OFFSET_SECS`]. Anything else leaves the clock alone.
pub fn clock_offset(settings: &OAuthSettings, request: &Request) -> Option<u64> {
    if !AuthServer::new(settings, request).test_identity_hook() {
        return None;
    }
    request
        .headers
        .get(CLOCK_HEADER)?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|secs| *secs > 0 && *secs <= MAX_CLOCK_OFFSET_SECS)
}

/// `TEST_KV_FAIL_DELETES=<prefix> <attempts>`: the first `attempts`
/// deletes of each KV key starting with `prefix` fail (e.g. `at: 1`:
/// every access record's first delete). Attempts are counted per key in
/// the isolate, so a retry by the same isolate (an object's alarm) gets
/// past them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFaults {
    prefix: String,
    attempts: u32,
}

impl DeleteFaults {
    /// The variable's value, or `None` (no faults) if it does not parse.
    pub fn parse(value: &str) -> Option<Self> {
        let (prefix, attempts) = value.trim().rsplit_once(' ')?;
        let prefix = prefix.trim();
        let attempts = attempts.parse::<u32>().ok().filter(|n| *n > 0)?;
        (!prefix.is_empty()).then(|| Self {
            prefix: prefix.to_owned(),
            attempts,
        })
    }

    /// Whether this delete of `key` fails, counting it in `seen`.
    pub fn fails(&self, key: &str, seen: &mut HashMap<String, u32>) -> bool {
        if !key.starts_with(&self.prefix) {
            return false;
        }
        let tried = seen.entry(key.to_owned()).or_insert(0);
        *tried = tried.saturating_add(1);
        *tried <= self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::names;
    use crate::http::Method;
    use crate::testing::source;

    fn request(url: &str, offset: Option<&str>) -> Request {
        let mut r = Request::new(Method::Get, url::Url::parse(url).unwrap());
        if let Some(o) = offset {
            r.headers.set(CLOCK_HEADER, o);
        }
        r
    }

    #[test]
    fn the_clock_moves_only_where_the_identity_hook_works() {
        let on = OAuthSettings::load(&source(&[(names::TEST_IDENTITY_HOOK, "enabled")]));
        let off = OAuthSettings::load(&source(&[]));
        let local = "http://127.0.0.1:8787/authorize";
        let day = Some("86400");
        assert_eq!(clock_offset(&on, &request(local, day)), Some(86_400));
        assert_eq!(clock_offset(&off, &request(local, day)), None);
        assert_eq!(
            clock_offset(&on, &request("https://mcp.example.com/authorize", day)),
            None
        );
        assert_eq!(clock_offset(&on, &request(local, None)), None);
        for bad in ["-5", "1.5", "soon", "0", "34560001"] {
            assert_eq!(clock_offset(&on, &request(local, Some(bad))), None, "{bad}");
        }
        assert_eq!(
            clock_offset(&on, &request(local, Some("34560000"))),
            Some(MAX_CLOCK_OFFSET_SECS)
        );
    }

    #[test]
    fn deletes_fail_for_their_first_attempts_by_prefix() {
        let faults = DeleteFaults::parse("at: 2").unwrap();
        let mut seen = HashMap::new();
        assert!(faults.fails("at:aa", &mut seen));
        assert!(faults.fails("at:aa", &mut seen));
        assert!(!faults.fails("at:aa", &mut seen), "past its attempts");
        assert!(faults.fails("at:bb", &mut seen), "each key counts alone");
        assert!(!faults.fails("client:x", &mut seen), "other prefixes never");
        for bad in ["", "at:", "at: 0", "at: x", " 3", "at: -1"] {
            assert_eq!(DeleteFaults::parse(bad), None, "{bad:?}");
        }
    }
}
