//! Fuzz target `registration`: the input goes to `fuzz_entry::registration` in the
//! plausible-mcp crate (src/fuzz_entry.rs says what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plausible_mcp::fuzz_run("registration", data);
});
