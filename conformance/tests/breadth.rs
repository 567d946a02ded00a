//! The S3 surface beyond the core (issue 4), one test per feature group of
//! `python/breadth.py`, each against its own server so they run in parallel.

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, add_user, fails, ok};

fn group(tests: &[&str]) {
    group_on(&Server::start(), tests);
}

/// Runs groups of `python/breadth.py` on a server started for them.
fn group_on(s: &Server, tests: &[&str]) {
    let out = ok(&s.python_as("breadth.py", ROOT_USER, ROOT_PASS, tests));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn versioning() {
    group(&["versioning", "versioned_delete_objects_reports_markers"]);
}

#[test]
fn multipart_checksum_types() {
    group(&["multipart_checksum_types"]);
}

#[test]
fn sse_kms() {
    group(&["sse_kms"]);
}

/// `fsctl kms key ...` drives the key ring, and a static key given in MinIO's form
/// (`MINIO_KMS_SECRET_KEY=name:base64`) encrypts and is listed, unchangeable.
#[test]
fn kms_key_ring_cli_and_static_key() {
    let secret = "c3RhdGljLWtleS1vZi10aGlydHktdHdvLWJ5dGVzISE="; // 32 bytes
    let s = Server::start_with_env(
        &[],
        &[("MINIO_KMS_SECRET_KEY", &format!("minio-key:{secret}"))],
    );
    ok(&s.fsctl(&["kms", "key", "create", "cli-key"]));
    ok(&s.fsctl(&["kms", "key", "rotate", "cli-key"]));
    ok(&s.fsctl(&["kms", "key", "disable", "cli-key"]));
    let ls = ok(&s.fsctl(&["kms", "key", "ls"]));
    assert!(
        ls.contains(r#""name":"cli-key""#) && ls.contains(r#""version":2"#),
        "{ls}"
    );
    assert!(ls.contains(r#""enabled":false"#), "{ls}");
    assert!(
        ls.contains(r#""name":"minio-key""#) && ls.contains(r#""source":"environment""#),
        "{ls}"
    );
    fails(&s.fsctl(&["kms", "key", "rotate", "minio-key"]));
    fails(&s.fsctl(&["kms", "key", "create", "bad key"]));
    ok(&s.aws(&["s3", "mb", "s3://kms-static"]));
    let put = ok(&s.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        "kms-static",
        "--key",
        "k",
        "--body",
        "/etc/hostname",
        "--server-side-encryption",
        "aws:kms",
        "--ssekms-key-id",
        "minio-key",
    ]));
    assert!(put.contains("minio-key"), "{put}");
}

/// Keys brought from elsewhere (issue 21, item 4): users, extra keys and service accounts
/// created with a given access key and secret, which then sign requests; keys that break the
/// length rules, or are taken (root's included), are refused and create nothing.
#[test]
fn bring_your_own_keys() {
    let s = Server::start();
    let (ak, sk) = ("MINIOAPPKEY01", "s3cr3t-from-minio/+x");
    let out = ok(&s.fsctl(&[
        "user",
        "add",
        "app",
        "--with-access-key",
        ak,
        "--with-secret-key",
        sk,
    ]));
    assert!(out.contains(ak) && out.contains(sk), "{out}");
    ok(&s.fsctl(&["policy", "attach", "--user", "app", "--role", "readwrite"]));
    ok(&s.aws_as(ak, sk, &["s3", "mb", "s3://brought-keys"]));
    ok(&s.aws_as(
        ak,
        sk,
        &["s3", "cp", "/etc/hostname", "s3://brought-keys/h"],
    ));
    // A second key for the user, and a service account, each with its given key.
    ok(&s.fsctl(&[
        "key",
        "create",
        "app",
        "--with-access-key",
        "app-second.key",
        "--with-secret-key",
        "second-secret",
    ]));
    ok(&s.aws_as(
        "app-second.key",
        "second-secret",
        &["s3", "ls", "s3://brought-keys"],
    ));
    ok(&s.fsctl(&[
        "svcacct",
        "add",
        "--user",
        "app",
        "--with-access-key",
        "app-svc",
        "--with-secret-key",
        "svc-secret-1",
    ]));
    ok(&s.aws_as(
        "app-svc",
        "svc-secret-1",
        &["s3", "ls", "s3://brought-keys"],
    ));
    // Refused, creating nothing: taken keys (a user's, root's), bad lengths or characters,
    // half a pair.
    for args in [
        vec![
            "user",
            "add",
            "dup",
            "--with-access-key",
            ak,
            "--with-secret-key",
            "another-secret",
        ],
        vec![
            "user",
            "add",
            "dup",
            "--with-access-key",
            ROOT_USER,
            "--with-secret-key",
            "another-secret",
        ],
        vec![
            "user",
            "add",
            "dup",
            "--with-access-key",
            "ab",
            "--with-secret-key",
            "another-secret",
        ],
        vec![
            "user",
            "add",
            "dup",
            "--with-access-key",
            "has space",
            "--with-secret-key",
            "another-secret",
        ],
        vec![
            "user",
            "add",
            "dup",
            "--with-access-key",
            "GOODKEY1",
            "--with-secret-key",
            "short",
        ],
        vec!["user", "add", "dup", "--with-access-key", "GOODKEY1"],
    ] {
        fails(&s.fsctl(&args));
    }
    let users = ok(&s.fsctl(&["user", "ls"]));
    assert!(!users.contains("dup"), "{users}");
    // An IAM JSON policy attached from a file is listed with the Cedar it became.
    let doc = s.dir.path().join("app-policy.json");
    std::fs::write(
        &doc,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::brought-keys/*"}]}"#,
    )
    .unwrap();
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "app",
        "--cedar",
        doc.to_str().unwrap(),
    ]));
    let listed = ok(&s.fsctl(&["policy", "ls", "--cedar"]));
    assert!(
        listed.contains("cedar_in_force") && listed.contains("permit("),
        "{listed}"
    );
    // The secret never shows again.
    let keys = ok(&s.fsctl(&["key", "ls", "app"]));
    assert!(keys.contains(ak) && !keys.contains(sk), "{keys}");
}

/// The client's address behind a trusted proxy, and the same headers ignored without one.
#[test]
fn trusted_proxy_client_address() {
    let trusted = Server::start_with(&["--trusted-proxies", "127.0.0.1"]);
    group_on(&trusted, &["trusted_proxy_client_address"]);
    let untrusted = Server::start();
    group_on(&untrusted, &["untrusted_forwarding_headers_ignored"]);
}

#[test]
fn sigv2_dates_and_bad_headers() {
    group(&["sigv2_dates_and_bad_headers"]);
}

/// Server access logs, delivered every second for the test.
#[test]
fn server_access_logging() {
    let s = Server::start_with(&["--access-log-interval", "1"]);
    group_on(&s, &["server_access_logging"]);
}

#[test]
fn conditional_writes() {
    group(&["conditional_writes"]);
}

#[test]
fn conditional_deletes() {
    group(&["conditional_deletes"]);
}

#[test]
fn list_buckets_pages() {
    group(&["list_buckets_pages"]);
}

#[test]
fn unconfigured_bucket_settings() {
    group(&["unconfigured_bucket_settings"]);
}

#[test]
fn public_access_block() {
    group(&["public_access_block"]);
}

#[test]
fn acl_headers() {
    group(&["acl_headers"]);
}

#[test]
fn tagging() {
    group(&["tagging"]);
}

#[test]
fn object_lock() {
    group(&["object_lock"]);
}

/// Bypassing GOVERNANCE retention is its own permission: the readwrite role does not carry it
/// (it is in the Configure group), root does; and a version read needs s3:GetObjectVersion,
/// which the readonly role grants.
#[test]
fn governance_bypass_needs_its_permission() {
    let s = Server::start();
    let (ak, sk) = add_user(&s, "writer");
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "writer",
        "--role",
        "readwrite",
        "--bucket",
        "locked",
    ]));
    ok(&s.aws(&[
        "s3api",
        "create-bucket",
        "--bucket",
        "locked",
        "--object-lock-enabled-for-bucket",
    ]));
    let until = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), b"kept").unwrap();
    let out = ok(&s.aws_as(
        &ak,
        &sk,
        &[
            "s3api",
            "put-object",
            "--bucket",
            "locked",
            "--key",
            "k",
            "--body",
            body.path().to_str().unwrap(),
            "--object-lock-mode",
            "GOVERNANCE",
            "--object-lock-retain-until-date",
            &until,
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let version = v["VersionId"].as_str().unwrap().to_owned();
    let delete = [
        "s3api",
        "delete-object",
        "--bucket",
        "locked",
        "--key",
        "k",
        "--version-id",
        &version,
        "--bypass-governance-retention",
    ];
    let err = fails(&s.aws_as(&ak, &sk, &delete));
    assert!(err.contains("AccessDenied"), "{err}");
    let get = [
        "s3api",
        "head-object",
        "--bucket",
        "locked",
        "--key",
        "k",
        "--version-id",
        &version,
    ];
    ok(&s.aws_as(&ak, &sk, &get));
    ok(&s.aws(&delete));
    let err = fails(&s.aws(&get));
    assert!(err.contains("404") || err.contains("Not Found"), "{err}");
}

/// Object tags are Cedar entity tags: a policy that forbids reading `class=secret` objects
/// holds for GET, HEAD, copy sources and DeleteObjects alike, and follows retagging.
#[test]
fn object_tags_drive_cedar_policies() {
    let s = Server::start();
    let (ak, sk) = add_user(&s, "dana");
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "dana",
        "--role",
        "readwrite",
        "--bucket",
        "docs",
    ]));
    let dir = tempfile::tempdir().unwrap();
    let cedar = dir.path().join("secret.cedar");
    std::fs::write(
        &cedar,
        r#"forbid(principal, action in [Action::"Read", Action::"Write"], resource)
when { resource is Object && resource.hasTag("class") && resource.getTag("class") == "secret" };"#,
    )
    .unwrap();
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "dana",
        "--cedar",
        cedar.to_str().unwrap(),
    ]));
    ok(&s.aws(&["s3", "mb", "s3://docs"]));
    let f = dir.path().join("f");
    std::fs::write(&f, b"doc").unwrap();
    let fp = f.to_str().unwrap();
    for (key, tagging) in [("open", "class=public"), ("closed", "class=secret")] {
        ok(&s.aws(&[
            "s3api",
            "put-object",
            "--bucket",
            "docs",
            "--key",
            key,
            "--body",
            fp,
            "--tagging",
            tagging,
        ]));
    }
    let get = |key: &str| {
        s.aws_as(
            &ak,
            &sk,
            &[
                "s3api",
                "get-object",
                "--bucket",
                "docs",
                "--key",
                key,
                "/dev/null",
            ],
        )
    };
    ok(&get("open"));
    let err = fails(&get("closed"));
    assert!(err.contains("AccessDenied"), "{err}");
    let err = fails(&s.aws_as(
        &ak,
        &sk,
        &[
            "s3api",
            "copy-object",
            "--bucket",
            "docs",
            "--key",
            "leak",
            "--copy-source",
            "docs/closed",
        ],
    ));
    assert!(err.contains("AccessDenied"), "{err}");
    let out = ok(&s.aws_as(
        &ak,
        &sk,
        &[
            "s3api",
            "delete-objects",
            "--bucket",
            "docs",
            "--delete",
            r#"{"Objects":[{"Key":"closed"},{"Key":"open"}]}"#,
        ],
    ));
    assert!(
        out.contains("AccessDenied") && out.contains("\"closed\""),
        "{out}"
    );
    // Root retags it; the policy follows the tags.
    ok(&s.aws(&[
        "s3api",
        "put-object-tagging",
        "--bucket",
        "docs",
        "--key",
        "closed",
        "--tagging",
        r#"{"TagSet":[{"Key":"class","Value":"internal"}]}"#,
    ]));
    ok(&get("closed"));
}

#[test]
fn everyday_surface() {
    group(&["everyday_surface"]);
}

#[test]
fn lifecycle() {
    group(&["lifecycle"]);
}

#[test]
fn bucket_policies() {
    group(&["bucket_policies", "bucket_policy_conditions"]);
}

#[test]
fn post_uploads() {
    group(&["post_uploads"]);
}

/// Server-side encryption end to end (python group `encryption`), then on disk: no blob, no
/// RocksDB file (inline objects, WAL) and no other file holds the plaintext.
#[test]
fn encryption() {
    let s = Server::start();
    let out = ok(&s.python_as("breadth.py", ROOT_USER, ROOT_PASS, &["encryption"]));
    assert!(out.contains(" passed, 0 failed"), "{out}");
    let mut s = s;
    s.stop();
    let marker = b"FSGATE-PLAINTEXT-MARKER-";
    let mut files = 0;
    let mut stack = vec![s.data()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker),
                    "plaintext found in {p:?}"
                );
            }
        }
    }
    assert!(files > 5, "{files}");
}

/// A bucket has an owner, the principal that created it: CreateBucket of a taken name is
/// BucketAlreadyOwnedByYou for its owner and BucketAlreadyExists for anyone else,
/// even for a user whose role covers the name.
#[test]
fn bucket_names_are_owned() {
    let s = Server::start();
    let (ak, sk) = add_user(&s, "alice");
    for b in ["roots", "alices"] {
        ok(&s.fsctl(&[
            "policy",
            "attach",
            "--user",
            "alice",
            "--role",
            "readwrite",
            "--bucket",
            b,
        ]));
    }
    let create = |who: Option<(&str, &str)>, b: &str| {
        let args = ["s3api", "create-bucket", "--bucket", b];
        match who {
            Some((ak, sk)) => s.aws_as(ak, sk, &args),
            None => s.aws(&args),
        }
    };
    let alice = Some((ak.as_str(), sk.as_str()));
    ok(&create(None, "roots"));
    ok(&create(alice, "alices"));
    for (who, b, code) in [
        (None, "roots", "BucketAlreadyOwnedByYou"),
        (alice, "roots", "BucketAlreadyExists"),
        (alice, "alices", "BucketAlreadyOwnedByYou"),
        (None, "alices", "BucketAlreadyExists"),
    ] {
        let e = fails(&create(who, b));
        assert!(e.contains(code), "{b}: {e}");
    }
}
