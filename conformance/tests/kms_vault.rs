//! SSE-KMS with an external KMS (issue 20, item 1): fsgate with `--kms-vault` against a stand-in
//! of Vault's transit engine (`python/vault_transit.py`; Vault itself does not install here).
//! Keys made through fsgate are transit keys; their material is sealed by Vault, opened through
//! it at start and every refresh; what Vault stops opening makes its objects unreadable, with
//! AWS's KMS error, recorded in the audit; a Vault that is down does not keep fsgate from
//! starting.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fsgate_conformance::{Server, fails, free_port, json_lines, ok, python, raw, scripts, unique};

const TOKEN: &str = "s.test-vault-token";

struct Vault {
    child: Child,
    port: u16,
}

impl Vault {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new(python())
            .arg(scripts().join("vault_transit.py"))
            .arg(port.to_string())
            .arg(TOKEN)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the Vault stand-in did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stats(&self) -> serde_json::Value {
        let r = raw(
            self.port,
            "GET /stats HTTP/1.1\r\nHost: vault\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        serde_json::from_str(r.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    }

    fn delete_key(&self, name: &str) {
        let r = raw(
            self.port,
            &format!("DELETE /v1/transit/keys/{name} HTTP/1.1\r\nHost: vault\r\nX-Vault-Token: {TOKEN}\r\nConnection: close\r\n\r\n"),
        )
        .unwrap();
        assert!(
            r.starts_with("HTTP/1.0 204") || r.starts_with("HTTP/1.1 204"),
            "{r}"
        );
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vault_server(vault: &Vault, token: &str) -> Server {
    let url = vault.url();
    Server::start_with_env(
        &["--kms-vault", &url, "--kms-vault-refresh", "1"],
        &[("FSGATE_KMS_VAULT_TOKEN", token)],
    )
}

#[test]
fn keys_sealed_by_vault_and_taken_back_by_it() {
    let vault = Vault::start();
    let mut s = vault_server(&vault, TOKEN);
    let key = json_lines(&ok(&s.fsctl(&["kms", "key", "create", "app-data"])));
    assert_eq!(key[0]["sealed_by"], "vault", "{key:?}");
    assert_eq!(vault.stats()["encrypt"], 1);
    let b = unique("vault");
    ok(&s.aws(&["s3api", "create-bucket", "--bucket", &b]));
    let src = s.dir.path().join("plain.txt");
    std::fs::write(&src, b"kept by vault").unwrap();
    let put = ok(&s.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        &b,
        "--key",
        "k",
        "--body",
        src.to_str().unwrap(),
        "--server-side-encryption",
        "aws:kms",
        "--ssekms-key-id",
        "app-data",
    ]));
    assert!(put.contains("app-data"), "{put}");
    let out = s.dir.path().join("out.txt");
    ok(&s.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        &b,
        "--key",
        "k",
        out.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), b"kept by vault");

    // After a restart the material is opened through Vault again.
    let before = vault.stats()["decrypt"].as_u64().unwrap();
    s.restart();
    ok(&s.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        &b,
        "--key",
        "k",
        out.to_str().unwrap(),
    ]));
    assert!(vault.stats()["decrypt"].as_u64().unwrap() > before);
    // A rotation's new version is sealed by Vault too, and old objects still read.
    ok(&s.fsctl(&["kms", "key", "rotate", "app-data"]));
    assert_eq!(vault.stats()["encrypt"], 2);
    ok(&s.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        &b,
        "--key",
        "k",
        out.to_str().unwrap(),
    ]));

    // Vault takes the key back: within a refresh its objects cannot be read, with AWS's
    // error, and the audit records it.
    vault.delete_key("app-data");
    let deadline = Instant::now() + Duration::from_secs(15);
    let err = loop {
        let o = s.aws(&[
            "s3api",
            "get-object",
            "--bucket",
            &b,
            "--key",
            "k",
            out.to_str().unwrap(),
        ]);
        if !o.status.success() {
            break String::from_utf8_lossy(&o.stderr).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the key stayed usable after Vault deleted it"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(err.contains("KMS.KMSInvalidStateException"), "{err}");
    let keys = json_lines(&ok(&s.fsctl(&["kms", "key", "ls"])));
    let k = keys.iter().find(|k| k["name"] == "app-data").unwrap();
    assert!(
        k["unavailable"]
            .as_str()
            .unwrap()
            .contains("encryption key not found"),
        "{k}"
    );
    let audit = ok(&s.fsctl(&["audit", "query", "--bucket", &b, "--key", "k"]));
    assert!(audit.contains("KMS.KMSInvalidStateException"), "{audit}");
    // New objects under it are refused as well; SSE-S3 is untouched.
    let e = fails(&s.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        &b,
        "--key",
        "k2",
        "--body",
        src.to_str().unwrap(),
        "--server-side-encryption",
        "aws:kms",
        "--ssekms-key-id",
        "app-data",
    ]));
    assert!(e.contains("KMS.KMSInvalidStateException"), "{e}");
    ok(&s.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        &b,
        "--key",
        "k3",
        "--body",
        src.to_str().unwrap(),
        "--server-side-encryption",
        "AES256",
    ]));
}

#[test]
fn a_vault_that_refuses_or_is_down() {
    let vault = Vault::start();
    // A wrong token: creating a key fails with Vault's reason, and nothing is stored.
    let s = vault_server(&vault, "not-the-token");
    let e = fails(&s.fsctl(&["kms", "key", "create", "nope"]));
    assert!(
        e.contains("ExternalKmsError") && e.contains("permission denied"),
        "{e}"
    );
    let keys = ok(&s.fsctl(&["kms", "key", "ls"]));
    assert!(!keys.contains("\"nope\""), "{keys}");
    drop(s);

    // Vault down at start: fsgate serves; the keys Vault sealed are unusable until it is back.
    let mut s = vault_server(&vault, TOKEN);
    ok(&s.fsctl(&["kms", "key", "create", "later"]));
    drop(vault);
    s.restart();
    let keys = json_lines(&ok(&s.fsctl(&["kms", "key", "ls"])));
    let k = keys.iter().find(|k| k["name"] == "later").unwrap();
    assert!(
        k["unavailable"].as_str().unwrap().contains("unreachable"),
        "{k}"
    );
}
