//! boto3 (current release, default CRC checksums and aws-chunked trailers, awscrt for CRC32C
//! and CRC64NVME): the suite in `python/boto3_suite.py`, path- and virtual-hosted-style.

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok};

#[test]
fn boto3_suite() {
    let s = Server::start_with(&["--domain", "fsgate.test"]);
    let out = ok(&s.python_as("boto3_suite.py", ROOT_USER, ROOT_PASS, &["fsgate.test"]));
    assert!(out.contains(" passed, 0 failed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}
