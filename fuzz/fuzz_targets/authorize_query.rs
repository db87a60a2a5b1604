//! Fuzz target `authorize_query`: the input goes to `fuzz_entry::authorize_query` in the
//! plausible-mcp crate (src/fuzz_entry.rs says what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plausible_mcp::fuzz_run("authorize_query", data);
});
