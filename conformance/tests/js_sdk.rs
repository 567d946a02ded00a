//! The AWS SDK for JavaScript v3 (npm `@aws-sdk/client-s3`, default checksums on).

use std::process::Command;

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok, run};

#[test]
fn js_sdk_v3_suite() {
    let s = Server::start();
    let dir = fsgate_conformance::crate_dir().join("js");
    assert!(
        dir.join("node_modules/@aws-sdk/client-s3").exists(),
        "run scripts/deps.sh (npm ci in conformance/js)"
    );
    let out = ok(&run(Command::new("node")
        .current_dir(&dir)
        .arg("suite.mjs")
        .arg(s.endpoint())
        .arg(ROOT_USER)
        .arg(ROOT_PASS)
        .env("AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE", "1")));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}
