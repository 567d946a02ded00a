//! The policy scenario: root creates alice (readwrite on `team`) and bob (readonly on `team`);
//! bob's PUT is denied and audited as denied, alice's succeeds, anonymous is denied, a disabled
//! user (and their earlier presigned URL) is denied on the next request. Plus prefix roles,
//! groups, custom Cedar, an erroring forbid, and invalid policies refused with their reason.

use std::fs;
use std::process::Command;

use fsgate_conformance::{Server, add_user, bin, fails, json_lines, ok, raw, run};

fn audit(s: &Server, args: &[&str]) -> Vec<serde_json::Value> {
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut a = vec!["audit", "query"];
    a.extend_from_slice(args);
    json_lines(&ok(&s.fsctl(&a)))
}

#[test]
fn team_scenario_with_audit() {
    let s = Server::start();
    ok(&s.aws(&["s3", "mb", "s3://team"]));
    let (alice_ak, alice_sk) = add_user(&s, "alice");
    let (bob_ak, bob_sk) = add_user(&s, "bob");
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "alice",
        "--role",
        "readwrite",
        "--bucket",
        "team",
    ]));
    ok(&s.fsctl(&[
        "policy", "attach", "--user", "bob", "--role", "readonly", "--bucket", "team",
    ]));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.txt");
    fs::write(&f, b"team data").unwrap();
    let fp = f.to_str().unwrap();

    ok(&s.aws_as(
        &alice_ak,
        &alice_sk,
        &["s3", "cp", "--only-show-errors", fp, "s3://team/report.txt"],
    ));
    let err = fails(&s.aws_as(
        &bob_ak,
        &bob_sk,
        &["s3", "cp", "--only-show-errors", fp, "s3://team/bob.txt"],
    ));
    assert!(err.contains("AccessDenied"), "{err}");
    assert_eq!(
        ok(&s.aws_as(&bob_ak, &bob_sk, &["s3", "cp", "s3://team/report.txt", "-"])),
        "team data"
    );
    assert!(
        fails(&s.aws_as(&alice_ak, &alice_sk, &["s3", "mb", "s3://other-bucket"]))
            .contains("AccessDenied")
    );
    // ListBuckets shows a user the buckets a role gives them, and no others.
    ok(&s.aws(&["s3", "mb", "s3://private-bucket"]));
    let listed = ok(&s.aws_as(&alice_ak, &alice_sk, &["s3", "ls"]));
    assert!(
        listed.contains(" team") && !listed.contains("private-bucket"),
        "{listed}"
    );
    let resp = raw(
        s.port,
        &format!(
            "GET /team/report.txt HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            s.port
        ),
    )
    .unwrap();
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");

    let recs = audit(&s, &["--principal", "bob", "--decision", "deny"]);
    let put = recs
        .iter()
        .find(|r| r["action"] == "s3:PutObject")
        .unwrap_or_else(|| panic!("{recs:?}"));
    assert_eq!(put["bucket"], "team");
    assert_eq!(put["key"], "bob.txt");
    assert_eq!(put["status"], 403);
    assert_eq!(put["error_code"], "AccessDenied");
    assert_eq!(put["policies"], serde_json::json!(["default-deny"]));
    for field in [
        "time",
        "request_id",
        "principal",
        "action",
        "bucket",
        "key",
        "decision",
        "policies",
        "status",
        "error_code",
        "bytes_in",
        "bytes_out",
        "duration_ms",
    ] {
        assert!(put.get(field).is_some(), "{field} missing in {put}");
    }
    let recs = audit(&s, &["--principal", "alice", "--key", "report.txt"]);
    let put = recs
        .iter()
        .find(|r| r["action"] == "s3:PutObject")
        .unwrap_or_else(|| panic!("{recs:?}"));
    assert_eq!(put["decision"], "allow");
    assert!(
        put["policies"][0].as_str().unwrap().starts_with("att-"),
        "{put}"
    );
    assert!(put["bytes_in"].as_u64().unwrap() >= 9);
    let recs = audit(&s, &["--principal", "anonymous"]);
    assert!(
        recs.iter()
            .any(|r| r["decision"] == "deny" && r["key"] == "report.txt"),
        "{recs:?}"
    );

    // Disabling bob takes effect on the very next request, presigned URLs included.
    let presigned = ok(&s.aws_as(
        &bob_ak,
        &bob_sk,
        &[
            "s3",
            "presign",
            "s3://team/report.txt",
            "--expires-in",
            "600",
        ],
    ));
    let path = presigned
        .trim()
        .split_once(&format!("127.0.0.1:{}", s.port))
        .unwrap()
        .1
        .to_owned();
    let get = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        s.port
    );
    assert!(raw(s.port, &get).unwrap().starts_with("HTTP/1.1 200"));
    ok(&s.fsctl(&["user", "disable", "bob"]));
    // (aws cli reports the HEAD it starts with: 403, no body.)
    assert!(
        fails(&s.aws_as(&bob_ak, &bob_sk, &["s3", "cp", "s3://team/report.txt", "-"]))
            .contains("403")
    );
    assert!(
        fails(&s.aws_as(&bob_ak, &bob_sk, &["s3", "ls", "s3://team"]))
            .contains("InvalidAccessKeyId")
    );
    assert!(raw(s.port, &get).unwrap().starts_with("HTTP/1.1 403"));
    ok(&s.fsctl(&["user", "enable", "bob"]));
    assert_eq!(
        ok(&s.aws_as(&bob_ak, &bob_sk, &["s3", "cp", "s3://team/report.txt", "-"])),
        "team data"
    );
    // Deleting a key does the same.
    ok(&s.fsctl(&["key", "rm", &bob_ak]));
    assert!(
        fails(&s.aws_as(&bob_ak, &bob_sk, &["s3", "ls", "s3://team"]))
            .contains("InvalidAccessKeyId")
    );
    // The refused request is audited with the key it claimed.
    let recent = audit(&s, &["--limit", "5"]);
    assert!(
        recent.iter().any(|r| r["access_key"] == bob_ak.as_str()
            && r["error_code"] == "InvalidAccessKeyId"
            && r["status"] == 403),
        "{recent:?}"
    );
    let users = json_lines(&ok(&s.fsctl(&["user", "ls"])));
    assert_eq!(
        users
            .iter()
            .map(|u| u["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    // Non-admins cannot use the admin API.
    let o = run(s
        .cmd_as(bin("fsctl"), &alice_ak, &alice_sk)
        .args(["user", "ls"]));
    assert!(String::from_utf8_lossy(&o.stderr).contains("AccessDenied"));
}

#[test]
fn prefix_roles_groups_and_custom_cedar() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::write(&empty, b"").unwrap();
    ok(&s.aws(&["s3", "mb", "s3://team"]));
    ok(&s.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        "team",
        "--key",
        "shared.txt",
        "--body",
        empty.to_str().unwrap(),
    ]));
    let (carol_ak, carol_sk) = add_user(&s, "carol");
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "carol",
        "--role",
        "readwrite",
        "--bucket",
        "team",
        "--prefix",
        "home/carol/",
    ]));
    ok(&s.aws_as(
        &carol_ak,
        &carol_sk,
        &[
            "s3api",
            "put-object",
            "--bucket",
            "team",
            "--key",
            "home/carol/a.txt",
            "--body",
            empty.to_str().unwrap(),
        ],
    ));
    assert!(
        fails(&s.aws_as(
            &carol_ak,
            &carol_sk,
            &[
                "s3api",
                "put-object",
                "--bucket",
                "team",
                "--key",
                "home/carolyn/a.txt",
                "--body",
                empty.to_str().unwrap()
            ]
        ))
        .contains("AccessDenied")
    );
    assert!(
        fails(&s.aws_as(
            &carol_ak,
            &carol_sk,
            &[
                "s3api",
                "get-object",
                "--bucket",
                "team",
                "--key",
                "shared.txt",
                "/dev/null"
            ]
        ))
        .contains("AccessDenied")
    );
    let l = ok(&s.aws_as(
        &carol_ak,
        &carol_sk,
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            "team",
            "--prefix",
            "home/carol/",
        ],
    ));
    assert!(l.contains("home/carol/a.txt"), "{l}");
    assert!(
        fails(&s.aws_as(
            &carol_ak,
            &carol_sk,
            &["s3api", "list-objects-v2", "--bucket", "team"]
        ))
        .contains("AccessDenied")
    );
    // DeleteObjects decides every key: the allowed one goes, the denied one is reported.
    let out = ok(&s.aws_as(
        &carol_ak,
        &carol_sk,
        &[
            "s3api",
            "delete-objects",
            "--bucket",
            "team",
            "--delete",
            r#"{"Objects":[{"Key":"home/carol/a.txt"},{"Key":"shared.txt"}]}"#,
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Deleted"][0]["Key"], "home/carol/a.txt");
    assert_eq!(v["Errors"][0]["Key"], "shared.txt");
    assert_eq!(v["Errors"][0]["Code"], "AccessDenied");
    ok(&s.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "team",
        "--key",
        "shared.txt",
    ]));
    // CopyObject decides the source too.
    assert!(
        fails(&s.aws_as(
            &carol_ak,
            &carol_sk,
            &[
                "s3api",
                "copy-object",
                "--bucket",
                "team",
                "--key",
                "home/carol/stolen",
                "--copy-source",
                "team/shared.txt"
            ]
        ))
        .contains("AccessDenied")
    );

    // Groups.
    let (dave_ak, dave_sk) = add_user(&s, "dave");
    ok(&s.fsctl(&["policy", "attach", "--group", "ops", "--role", "readonly"]));
    assert!(
        fails(&s.aws_as(
            &dave_ak,
            &dave_sk,
            &[
                "s3api",
                "head-object",
                "--bucket",
                "team",
                "--key",
                "shared.txt"
            ]
        ))
        .contains("403")
    );
    ok(&s.fsctl(&["group", "add-member", "ops", "dave"]));
    ok(&s.aws_as(
        &dave_ak,
        &dave_sk,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "team",
            "--key",
            "shared.txt",
        ],
    ));

    // Custom Cedar, scoped to its user; an invalid one is refused with the reason.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.cedar");
    fs::write(
        &good,
        "permit(principal, action == Action::\"s3:GetObject\", resource in Bucket::\"team\");",
    )
    .unwrap();
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "carol",
        "--cedar",
        good.to_str().unwrap(),
    ]));
    ok(&s.aws_as(
        &carol_ak,
        &carol_sk,
        &[
            "s3api",
            "get-object",
            "--bucket",
            "team",
            "--key",
            "shared.txt",
            "/dev/null",
        ],
    ));
    let bad = dir.path().join("bad.cedar");
    fs::write(
        &bad,
        "permit(principal, action, resource)\nwhen { resource.no_such_attr == 1 };",
    )
    .unwrap();
    let err = fails(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "carol",
        "--cedar",
        bad.to_str().unwrap(),
    ]));
    assert!(
        err.contains("MalformedPolicy") && err.contains(":2:"),
        "{err}"
    );

    // Regression: an erroring forbid must deny, not be skipped (Cedar drops erroring policies).
    let overflow = dir.path().join("overflow.cedar");
    fs::write(
        &overflow,
        "forbid(principal, action, resource) when { context.now + 9223372036854775807 > 0 };",
    )
    .unwrap();
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "carol",
        "--cedar",
        overflow.to_str().unwrap(),
    ]));
    assert!(
        fails(&s.aws_as(
            &carol_ak,
            &carol_sk,
            &[
                "s3api",
                "get-object",
                "--bucket",
                "team",
                "--key",
                "shared.txt",
                "/dev/null"
            ]
        ))
        .contains("AccessDenied")
    );
    let recs = audit(
        &s,
        &[
            "--principal",
            "carol",
            "--key",
            "shared.txt",
            "--decision",
            "deny",
        ],
    );
    assert!(
        recs.iter().any(|r| r["policies"][0] == "evaluation-error"
            && r["policies"][1].as_str().unwrap_or("").starts_with("att-")),
        "{recs:?}"
    );
}

#[test]
fn invalid_policy_files_stop_startup_with_file_and_line() {
    let (dir, pol) = fsgate_conformance::policy_dir_copy();
    fs::write(
        pol.join("zz-bad.cedar"),
        "// comment\n\npermit(principal, action == Action::\"s3:NoSuchAction\", resource);\n",
    )
    .unwrap();
    let out = run(Command::new(bin("fsgate"))
        .args(["serve", "--address", "127.0.0.1:0", "--policies"])
        .arg(&pol)
        .arg("--data")
        .arg(dir.path().join("data"))
        .env("FSGATE_ROOT_USER", "rootuser")
        .env("FSGATE_ROOT_PASSWORD", "rootpass123"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zz-bad.cedar:3:"), "{err}");
    fs::remove_file(pol.join("zz-bad.cedar")).unwrap();
    let out = run(Command::new(bin("fsgate")).arg("check-policies").arg(&pol));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--policies` files are reloaded on SIGHUP; a bad file is refused with its name and line and
/// the running set stays in force.
#[test]
fn sighup_reloads_policy_files_and_keeps_them_when_bad() {
    let (_dir, pol) = fsgate_conformance::policy_dir_copy();
    let s = Server::start_with(&["--policies", pol.to_str().unwrap()]);
    let (ak, sk) = add_user(&s, "hupper");
    ok(&s.aws(&["s3", "mb", "s3://hup"]));
    let reads = |s: &Server| {
        s.aws_as(&ak, &sk, &["s3", "ls", "s3://hup/"])
            .status
            .success()
    };
    assert!(!reads(&s), "no policy yet");
    fs::write(
        pol.join("hupper.cedar"),
        "permit(principal == User::\"hupper\", action in [Action::\"List\"], resource in Bucket::\"hup\");\n",
    )
    .unwrap();
    s.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !reads(&s) {
        assert!(
            std::time::Instant::now() < deadline,
            "reload did not apply: {}",
            s.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    fs::write(
        pol.join("zz-bad.cedar"),
        "permit(principal, action == Action::\"s3:NoSuchAction\", resource);\n",
    )
    .unwrap();
    s.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !s.log().contains("policies not reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload error logged: {}",
            s.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(s.log().contains("zz-bad.cedar:1:"), "{}", s.log());
    assert!(reads(&s), "the running set must stay in force");
}

/// IAM changes are applied to the engine in force one at a time: many admins attaching roles,
/// adding users and setting bucket policies at once lose none of them, a detach takes effect,
/// and a deleted bucket's policy does not pass to a new bucket of the same name.
#[test]
fn concurrent_iam_changes_all_take_effect() {
    let s = Server::start();
    let n = 12;
    for i in 0..n {
        ok(&s.aws(&["s3", "mb", &format!("s3://conc{i}")]));
    }
    std::thread::scope(|scope| {
        for i in 0..n {
            let s = &s;
            scope.spawn(move || {
                let user = format!("conc{i}");
                let _keys = add_user(s, &user);
                ok(&s.fsctl(&[
                    "policy", "attach", "--user", &user, "--role", "readwrite", "--bucket", &user,
                ]));
                let doc = format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{user}/pub/*"}}]}}"#
                );
                ok(&s.aws(&["s3api", "put-bucket-policy", "--bucket", &user, "--policy", &doc]));
            });
        }
    });
    let decide = |p: &str, a: &str, r: &str| -> String {
        let out = ok(&s.fsctl(&[
            "policy",
            "test",
            "--principal",
            p,
            "--action",
            a,
            "--resource",
            r,
        ]));
        json_lines(&out)[0]["decision"].as_str().unwrap().to_owned()
    };
    for i in 0..n {
        let (user, other) = (format!("conc{i}"), format!("conc{}", (i + 1) % n));
        assert_eq!(
            decide(&user, "s3:PutObject", &format!("{user}/x")),
            "allow",
            "{user}"
        );
        assert_eq!(
            decide(&user, "s3:PutObject", &format!("{other}/x")),
            "deny",
            "{user}"
        );
    }
    // Every bucket policy is in force: anonymous reads under pub/ only.
    for i in 0..n {
        ok(&s.aws(&["s3", "cp", "-", &format!("s3://conc{i}/pub/a")]));
        let get =
            format!("GET /conc{i}/pub/a HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let resp = raw(s.port, &get).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "conc{i}: {resp}");
    }
    let atts = json_lines(&ok(&s.fsctl(&["policy", "ls"])));
    assert_eq!(atts.len(), n, "{atts:?}");
    // Detach one: its user loses the role at once.
    let id = atts
        .iter()
        .find(|a| a["user"] == "conc0")
        .and_then(|a| a["id"].as_str())
        .unwrap()
        .to_owned();
    ok(&s.fsctl(&["policy", "detach", &id]));
    assert_eq!(decide("conc0", "s3:PutObject", "conc0/x"), "deny");
    assert_eq!(decide("conc1", "s3:PutObject", "conc1/x"), "allow");
    // A deleted bucket's policy goes with it.
    ok(&s.aws(&["s3", "rb", "--force", "s3://conc3"]));
    ok(&s.aws(&["s3", "mb", "s3://conc3"]));
    ok(&s.aws(&["s3", "cp", "-", "s3://conc3/pub/a"]));
    let get = "GET /conc3/pub/a HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    assert!(raw(s.port, get).unwrap().starts_with("HTTP/1.1 403"));
    let err = fails(&s.aws(&["s3api", "get-bucket-policy", "--bucket", "conc3"]));
    assert!(err.contains("NoSuchBucketPolicy"), "{err}");
}
