//! The test build's clock and KV-delete hooks in the glue (cargo feature
//! `test-hooks`, logic in `crate::test_hooks`). In the release build
//! [`TestHooks`] is empty: the clock is the runtime's and no delete is
//! made to fail.

#[cfg(feature = "test-hooks")]
use std::cell::{Cell, RefCell};
#[cfg(feature = "test-hooks")]
use std::collections::HashMap;

#[cfg(feature = "test-hooks")]
use crate::config::names;
#[cfg(feature = "test-hooks")]
use crate::test_hooks::DeleteFaults;

#[cfg(feature = "test-hooks")]
std::thread_local! {
    /// Delete attempts per KV key in this isolate (`TEST_KV_FAIL_DELETES`).
    static DELETE_ATTEMPTS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
}

#[derive(Default)]
pub(super) struct TestHooks {
    /// Seconds this request's clock runs ahead (`X-Test-Clock-Offset`).
    #[cfg(feature = "test-hooks")]
    clock_ahead: Cell<u64>,
    #[cfg(feature = "test-hooks")]
    delete_faults: Option<DeleteFaults>,
}

impl TestHooks {
    pub(super) fn of(env: &worker::Env) -> Self {
        #[cfg(feature = "test-hooks")]
        return Self {
            clock_ahead: Cell::new(0),
            delete_faults: env
                .var(names::TEST_KV_FAIL_DELETES)
                .ok()
                .and_then(|v| DeleteFaults::parse(&v.to_string())),
        };
        #[cfg(not(feature = "test-hooks"))]
        {
            let _ = env;
            Self::default()
        }
    }

    /// The runtime's time in milliseconds, as this request sees it.
    pub(super) fn now_millis(&self, real: u64) -> u64 {
        #[cfg(feature = "test-hooks")]
        return real.saturating_add(self.clock_ahead.get().saturating_mul(1000));
        #[cfg(not(feature = "test-hooks"))]
        real
    }

    /// Whether this KV delete is made to fail.
    pub(super) fn delete_fails(&self, key: &str) -> bool {
        #[cfg(feature = "test-hooks")]
        return self
            .delete_faults
            .as_ref()
            .is_some_and(|faults| DELETE_ATTEMPTS.with_borrow_mut(|seen| faults.fails(key, seen)));
        #[cfg(not(feature = "test-hooks"))]
        {
            let _ = key;
            false
        }
    }

    #[cfg(feature = "test-hooks")]
    pub(super) fn run_clock_ahead(&self, secs: u64) {
        self.clock_ahead.set(secs);
    }
}
