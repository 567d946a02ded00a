//! HTTPS (rustls): a CA and server certificates generated for the test, aws cli with
//! `--ca-bundle`, boto3 with `verify=`, plaintext refused on the TLS port, Cedar's
//! `context.secure_transport`, and certificate reload on file change and SIGHUP without
//! dropping an open connection (`python/tls.py`).

use fsgate_conformance::{Server, ok, python, run, scripts};

#[test]
fn https_with_a_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    ok(&run(std::process::Command::new(python())
        .arg(scripts().join("tls.py"))
        .args(["gen", d])));
    let certs = format!("{d}/certs");
    let ca = format!("{d}/ca.pem");
    let s = Server::start_with(&["--certs-dir", &certs]);
    assert!(s.endpoint().starts_with("https://"));
    // aws cli trusts the generated CA only when told to.
    ok(&s.aws(&["--ca-bundle", &ca, "s3", "mb", "s3://over-tls"]));
    let listed = ok(&s.aws(&["--ca-bundle", &ca, "s3", "ls"]));
    assert!(listed.contains("over-tls"), "{listed}");
    let refused = s.aws(&["s3", "ls"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("SSL"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // fsctl over https, trusting the CA through --ca-bundle (FSCTL_CA_BUNDLE).
    let users = ok(&run(s
        .cmd(fsgate_conformance::bin("fsctl"))
        .env("FSCTL_CA_BUNDLE", &ca)
        .args(["user", "add", "tls-fsctl"])));
    assert!(users.contains("tls-fsctl"), "{users}");
    assert!(
        !s.fsctl(&["user", "ls"]).status.success(),
        "untrusted CA accepted"
    );
    let pid = s.pid().unwrap().to_string();
    let out = ok(&run(s
        .cmd(python())
        .arg(scripts().join("tls.py"))
        .args(["check", &s.endpoint()])
        .args([
            fsgate_conformance::ROOT_USER,
            fsgate_conformance::ROOT_PASS,
            d,
            &pid,
        ])));
    assert!(out.contains("tls ok"), "{out}");
    assert!(
        s.log().contains("TLS certificate not reloaded"),
        "{}",
        s.log()
    );
}

/// A certificate that does not load stops start-up with the file and the reason.
#[test]
fn a_bad_certificate_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("public.crt"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("private.key"), "not a key").unwrap();
    let out = run(
        std::process::Command::new(fsgate_conformance::bin("fsgate"))
            .args(["serve", "--address", "127.0.0.1:0", "--certs-dir"])
            .arg(dir.path())
            .arg("--data")
            .arg(dir.path().join("data"))
            .env("FSGATE_ROOT_USER", "rootuser")
            .env("FSGATE_ROOT_PASSWORD", "rootpass123"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("public.crt"), "{err}");
}
