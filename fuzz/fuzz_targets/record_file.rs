#![no_main]
//! Coverage-guided fuzzing of the record_file decoder(s); the property is in
//! fuzz/checks.rs (also replayed by `cargo test --test fuzz_regressions`).

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::record_file(data));
