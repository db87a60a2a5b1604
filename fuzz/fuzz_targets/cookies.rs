//! Fuzz target `cookies`: the input goes to `fuzz_entry::cookies` in the
//! plausible-mcp crate (src/fuzz_entry.rs says what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plausible_mcp::fuzz_run("cookies", data);
});
