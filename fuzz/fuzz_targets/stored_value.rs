//! Every decoder of a value in the data directory (`fsgate_store::fuzzing::stored_value`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fsgate_store::fuzzing::stored_value(data));
