//! Scenario YAML of any shape must compile or give diagnostics, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sipwright::scenario::compile_str("fuzz.yaml", text, &[]);
    }
});
