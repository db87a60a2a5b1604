//! Fuzz target `tool_arguments`: the input goes to `fuzz_entry::tool_arguments` in the
//! plausible-mcp crate (src/fuzz_entry.rs says what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plausible_mcp::fuzz_run("tool_arguments", data);
});
