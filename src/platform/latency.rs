//! The test build's storage latency knob (cargo feature `test-hooks`).

#[cfg(feature = "test-hooks")]
use std::time::Duration;

#[cfg(feature = "test-hooks")]
use crate::config::names;

/// The test build's storage latency (`TEST_STORAGE_LATENCY_MS`, at most
/// 1 s): every KV operation and every Durable Object storage operation
/// (ledgers, listings, used-state shards) waits this long first, as at
/// the edge, so the scale benchmark sees objects queue. The Cache API and
/// isolate memory are not storage round trips and never wait. The release
/// build never waits.
#[derive(Clone, Copy)]
pub(super) struct StorageLatency(#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))] u64);

impl StorageLatency {
    pub(super) fn of(env: &worker::Env) -> Self {
        #[cfg(feature = "test-hooks")]
        if let Some(ms) = env
            .var(names::TEST_STORAGE_LATENCY_MS)
            .ok()
            .and_then(|v| v.to_string().trim().parse::<u64>().ok())
        {
            return Self(ms.min(1000));
        }
        let _ = env;
        Self(0)
    }

    pub(super) async fn wait(self) {
        #[cfg(feature = "test-hooks")]
        if self.0 > 0 {
            worker::Delay::from(Duration::from_millis(self.0)).await;
        }
    }
}
