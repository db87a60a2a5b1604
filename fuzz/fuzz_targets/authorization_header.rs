//! Fuzz target `authorization_header`: the input goes to `fuzz_entry::authorization_header` in the
//! plausible-mcp crate (src/fuzz_entry.rs says what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plausible_mcp::fuzz_run("authorization_header", data);
});
