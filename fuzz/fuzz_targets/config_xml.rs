//! Bucket configuration bodies as fsgate reads them after s3s (`fsgate::fuzzing::config_xml`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fsgate::fuzzing::config_xml(data));
