//! fsgate's own body and document formats (`fsgate::fuzzing::document`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fsgate::fuzzing::document(data));
