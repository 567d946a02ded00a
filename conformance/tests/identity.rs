//! Identity and access (issue 5): STS sessions, service accounts, revocation, OpenID Connect
//! and LDAP. The boto3 groups of `python/identity.py` (which runs its own OIDC issuer and its
//! own `slapd`) each get a server; the fsctl and aws cli forms are driven from here.

use fsgate_conformance::{Server, add_user, fails, json_lines, ok, raw, run};

fn group(tests: &[&str]) {
    let s = Server::start();
    let out = ok(&s.python_as(
        "identity.py",
        fsgate_conformance::ROOT_USER,
        fsgate_conformance::ROOT_PASS,
        tests,
    ));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn sts_assume_role() {
    group(&["assume_role_sessions", "disabling_a_user_cuts_its_sessions"]);
}

#[test]
fn service_accounts() {
    group(&[
        "service_accounts",
        "service_account_sessions_keep_the_limit",
    ]);
}

#[test]
fn revocation() {
    group(&["revocation_reaches_presigned_urls_and_sessions"]);
}

#[test]
fn oidc_web_identity_and_bearer() {
    group(&[
        "web_identity_sessions",
        "web_identity_refuses_bad_tokens",
        "admin_api_accepts_bearer_tokens",
        "federated_names_never_take_local_grants",
        "bearer_tokens_issued_before_a_revocation_are_refused",
        "unreachable_provider_details_stay_in_the_log",
    ]);
}

#[test]
fn ldap_identity() {
    group(&["ldap_sessions"]);
}

fn field(v: &serde_json::Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = cur.get(p).unwrap_or_else(|| panic!("no {p} in {v}"));
    }
    cur.as_str().unwrap_or_default().to_owned()
}

/// Path and query of a URL on this server.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..]).to_owned()
}

fn get_status(s: &Server, url: &str) -> String {
    let port: u16 = s.endpoint().rsplit(':').next().unwrap().parse().unwrap();
    let resp = raw(
        port,
        &format!(
            "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n",
            path_of(url)
        ),
    )
    .unwrap_or_default();
    resp.lines().next().unwrap_or_default().to_owned()
}

/// The fsctl commands and aws cli: `aws sts assume-role` credentials used by `aws s3`,
/// sessions surviving a restart, service accounts managed by their owner with fsctl, and
/// `fsctl key revoke` cutting an earlier presigned URL while a later one works.
#[test]
fn fsctl_and_aws_cli() {
    let mut s = Server::start();
    let (ak, sk) = add_user(&s, "alice");
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
    ok(&s.aws(&["s3", "mb", "s3://team"]));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"hello").unwrap();
    ok(&s.aws(&["s3", "cp", file.path().to_str().unwrap(), "s3://team/a.txt"]));

    // aws sts assume-role, then aws s3 with the session's three values.
    let out = ok(&s.aws_as(
        &ak,
        &sk,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::fsgate:role/any",
            "--role-session-name",
            "cli",
            "--duration-seconds",
            "1800",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (tak, tsk, tok) = (
        field(&v, &["Credentials", "AccessKeyId"]),
        field(&v, &["Credentials", "SecretAccessKey"]),
        field(&v, &["Credentials", "SessionToken"]),
    );
    let with_session = |s: &Server, args: &[&str]| {
        run(s
            .cmd_as(fsgate_conformance::aws_bin(), &tak, &tsk)
            .env("AWS_SESSION_TOKEN", &tok)
            .arg("--endpoint-url")
            .arg(s.endpoint())
            .args(args))
    };
    let listed = ok(&with_session(&s, &["s3", "ls", "s3://team/"]));
    assert!(listed.contains("a.txt"), "{listed}");
    // rclone with the same three values.
    let rclone = fsgate_conformance::python()
        .parent()
        .map(|d| d.join("rclone"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "rclone".into());
    let listed = ok(&run(s
        .cmd(rclone)
        .env("RCLONE_CONFIG", "/dev/null")
        .args(["lsf", ":s3:team"])
        .args(["--s3-provider", "Other", "--s3-endpoint", &s.endpoint()])
        .args(["--s3-access-key-id", &tak, "--s3-secret-access-key", &tsk])
        .args([
            "--s3-session-token",
            &tok,
            "--s3-force-path-style",
            "--s3-region",
            "us-east-1",
        ])));
    assert!(listed.contains("a.txt"), "{listed}");
    // Sessions are stored: they outlive a restart.
    s.restart();
    let listed = ok(&with_session(&s, &["s3", "ls", "s3://team/"]));
    assert!(listed.contains("a.txt"), "{listed}");
    let err = fails(&with_session(&s, &["s3", "ls", "s3://elsewhere/"]));
    assert!(
        err.contains("AccessDenied") || err.contains("NoSuchBucket"),
        "{err}"
    );

    // Service accounts, as their owner.
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy.path(),
        "permit(principal, action in [Action::\"s3:GetObject\", Action::\"s3:ListObjectsV2\"], resource);",
    )
    .unwrap();
    let as_alice = |args: &[&str]| {
        run(s
            .cmd_as(fsgate_conformance::bin("fsctl"), &ak, &sk)
            .arg("--json")
            .args(args))
    };
    let sa: serde_json::Value = serde_json::from_str(&ok(&as_alice(&[
        "svcacct",
        "add",
        "--policy",
        policy.path().to_str().unwrap(),
        "--description",
        "reader",
    ])))
    .unwrap();
    let (sak, ssk) = (field(&sa, &["access_key"]), field(&sa, &["secret_key"]));
    let rows = json_lines(&ok(&as_alice(&["svcacct", "ls"])));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(field(&rows[0], &["owner"]), "alice");
    let table = ok(&run(s
        .cmd_as(fsgate_conformance::bin("fsctl"), &ak, &sk)
        .args(["svcacct", "ls"])));
    assert!(
        table.starts_with("ACCESS_KEY") && table.contains("reader"),
        "{table}"
    );
    ok(&s.aws_as(&sak, &ssk, &["s3", "ls", "s3://team/"]));
    let denied = fails(&s.aws_as(
        &sak,
        &ssk,
        &["s3", "cp", file.path().to_str().unwrap(), "s3://team/b.txt"],
    ));
    assert!(denied.contains("AccessDenied"), "{denied}");
    ok(&as_alice(&["svcacct", "rm", &sak]));
    fails(&s.aws_as(&sak, &ssk, &["s3", "ls", "s3://team/"]));

    // Revocation: a presigned URL signed before `fsctl key revoke` fails, one after works.
    let url = ok(&s.aws_as(&ak, &sk, &["s3", "presign", "s3://team/a.txt"]));
    assert!(
        get_status(&s, url.trim()).contains("200"),
        "before revoking"
    );
    let revoked = ok(&s.fsctl(&["key", "revoke", "--user", "alice", "--before", "now"]));
    assert!(revoked.contains("alice"), "{revoked}");
    assert!(
        get_status(&s, url.trim()).contains("403"),
        "old URL still works"
    );
    let err = fails(&with_session(&s, &["s3", "ls", "s3://team/"]));
    assert!(err.contains("AccessDenied"), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let fresh = ok(&s.aws_as(&ak, &sk, &["s3", "presign", "s3://team/a.txt"]));
    assert!(
        get_status(&s, fresh.trim()).contains("200"),
        "new URL refused"
    );

    // Replacing an attachment in place: readwrite becomes readonly; a bad replacement is
    // refused with the reason and the old one stays in force.
    let atts = json_lines(&ok(&s.fsctl(&["policy", "ls"])));
    let id = atts
        .iter()
        .find(|a| field(a, &["user"]) == "alice")
        .map(|a| field(a, &["id"]))
        .unwrap();
    ok(&s.fsctl(&[
        "policy", "replace", &id, "--user", "alice", "--role", "readonly", "--bucket", "team",
    ]));
    let denied = fails(&s.aws_as(
        &ak,
        &sk,
        &["s3", "cp", file.path().to_str().unwrap(), "s3://team/c.txt"],
    ));
    assert!(denied.contains("AccessDenied"), "{denied}");
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad.path(),
        "permit(principal, action == Action::\"s3:Nope\", resource);",
    )
    .unwrap();
    let refused = fails(&s.fsctl(&[
        "policy",
        "replace",
        &id,
        "--user",
        "alice",
        "--cedar",
        bad.path().to_str().unwrap(),
    ]));
    assert!(refused.contains("MalformedPolicy"), "{refused}");
    ok(&s.aws_as(&ak, &sk, &["s3", "ls", "s3://team/"]));
    assert_eq!(
        json_lines(&ok(&s.fsctl(&["policy", "ls"]))).len(),
        atts.len()
    );

    // Identity providers: added, listed (no password), removed.
    ok(&s.fsctl(&[
        "idp",
        "add",
        "oidc",
        "kc",
        "--issuer",
        "https://keycloak.example.org/realms/main",
        "--client-id",
        "fsgate",
        "--tag-claim",
        "department",
    ]));
    ok(&s.fsctl(&[
        "idp",
        "add",
        "ldap",
        "corp",
        "--server",
        "127.0.0.1:1",
        "--starttls",
        "--bind-dn",
        "cn=svc,dc=example,dc=org",
        "--bind-password",
        "hunter2",
        "--user-base",
        "ou=people,dc=example,dc=org",
        "--group-base",
        "ou=groups,dc=example,dc=org",
    ]));
    let listed = ok(&s.fsctl(&["idp", "ls"]));
    assert!(
        listed.contains("keycloak.example.org") && listed.contains("corp"),
        "{listed}"
    );
    assert!(!listed.contains("hunter2"), "{listed}");
    ok(&s.fsctl(&["idp", "rm", "kc"]));
    let listed = ok(&s.fsctl(&["idp", "ls"]));
    assert!(!listed.contains("keycloak.example.org"), "{listed}");
    // An unreachable directory is a clean STS error, and the server stays up.
    let port: u16 = s.endpoint().rsplit(':').next().unwrap().parse().unwrap();
    let body = "Action=AssumeRoleWithLDAPIdentity&Version=2011-06-15&LDAPUsername=a&LDAPPassword=b";
    let resp = raw(
        port,
        &format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap_or_default();
    assert!(
        resp.starts_with("HTTP/1.1 403") && resp.contains("AccessDenied"),
        "{resp}"
    );
    ok(&s.aws(&["s3", "ls", "s3://team/"]));
}
