//! What fsgate reads from a request's query and headers (`fsgate::fuzzing::request`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fsgate::fuzzing::request(data));
