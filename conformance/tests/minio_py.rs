//! The MinIO Python SDK: what many MinIO users' code calls.

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok};

#[test]
fn minio_sdk_suite() {
    let s = Server::start();
    let out = ok(&s.python_as("minio_suite.py", ROOT_USER, ROOT_PASS, &[]));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}
