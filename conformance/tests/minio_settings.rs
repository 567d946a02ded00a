//! MinIO's command line and settings (issue 21, item 5): the `minio server DIR` form, the legacy
//! MINIO_ACCESS_KEY/MINIO_SECRET_KEY root, MINIO_DOMAIN, MINIO_REGION, MINIO_IDENTITY_LDAP_* configuring an
//! identity provider at start, and MINIO_VOLUMES that fsgate cannot follow refused with a
//! message saying what to do instead.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fsgate_conformance::{aws_bin, bin, fails, free_port, ok, run};

const AK: &str = "legacy-admin";
const SK: &str = "legacy-secret-123";

/// The environment of a MinIO deployment, without fsgate's own variables.
fn minio_env<'a>(c: &'a mut Command, home: &std::path::Path) -> &'a mut Command {
    c.env_remove("FSGATE_ROOT_USER")
        .env_remove("FSGATE_ROOT_PASSWORD")
        .env_remove("MINIO_ROOT_USER")
        .env_remove("MINIO_ROOT_PASSWORD")
        .env_remove("FSGATE_DATA")
        .env_remove("FSGATE_ADDRESS")
        .env("MINIO_ACCESS_KEY", AK)
        .env("MINIO_SECRET_KEY", SK)
        .env("HOME", home)
}

#[test]
fn minio_command_line_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let mut server = minio_env(&mut Command::new(bin("fsgate")), dir.path())
        .args(["server", dir.path().join("data").to_str().unwrap()])
        .args([
            "--address",
            &format!("127.0.0.1:{port}"),
            "--console-address",
            ":9001",
        ])
        .env("MINIO_DOMAIN", "s3.localhost")
        .env("MINIO_REGION", "eu-central-1")
        .env("MINIO_IDENTITY_LDAP_SERVER_ADDR", "ldap.example:389")
        .env("MINIO_IDENTITY_LDAP_SERVER_INSECURE", "on")
        .env(
            "MINIO_IDENTITY_LDAP_LOOKUP_BIND_DN",
            "cn=admin,dc=example,dc=org",
        )
        .env(
            "MINIO_IDENTITY_LDAP_USER_DN_SEARCH_BASE_DN",
            "ou=people,dc=example,dc=org",
        )
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(dir.path().join("log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let aws = |args: &[&str]| {
        run(minio_env(&mut Command::new(aws_bin()), dir.path())
            .env("AWS_ACCESS_KEY_ID", AK)
            .env("AWS_SECRET_ACCESS_KEY", SK)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .args(["--endpoint-url", &endpoint])
            .args(args))
    };
    ok(&aws(&["s3", "mb", "s3://moved-in"]));
    assert!(ok(&aws(&["s3", "ls"])).contains("moved-in"));
    // MINIO_REGION: the buckets' region, as GetBucketLocation and HeadBucket answer it.
    let location = ok(&aws(&[
        "s3api",
        "get-bucket-location",
        "--bucket",
        "moved-in",
    ]));
    assert!(location.contains("eu-central-1"), "{location}");
    // HeadBucket's x-amz-bucket-region (aws cli shows response headers with --debug).
    let head = aws(&["s3api", "head-bucket", "--bucket", "moved-in", "--debug"]);
    let debug = String::from_utf8_lossy(&head.stderr).to_ascii_lowercase();
    assert!(
        head.status.success() && debug.contains("'x-amz-bucket-region': 'eu-central-1'"),
        "{debug}"
    );
    // The data went where MinIO's command line said.
    assert!(dir.path().join("data").join("meta").is_dir());
    let fsctl = |args: &[&str]| {
        run(minio_env(&mut Command::new(bin("fsctl")), dir.path())
            .args([
                "--endpoint",
                &endpoint,
                "--access-key",
                AK,
                "--secret-key",
                SK,
                "--json",
            ])
            .args(args))
    };
    let idps = ok(&fsctl(&["idp", "ls"]));
    assert!(
        idps.contains(r#""name":"ldap""#) && idps.contains("ldap.example:389"),
        "{idps}"
    );
    // MINIO_DOMAIN: virtual-hosted-style requests for BUCKET.s3.localhost.
    let vhost = run(Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-H", "Host: moved-in.s3.localhost"])
        .arg(format!("{endpoint}/")));
    assert_eq!(
        ok(&vhost),
        "403",
        "an unsigned list of the bucket, found by its host name"
    );
    // MinIO's health and metrics paths, with the names MinIO's dashboards query.
    let curl = |path: &str| {
        ok(&run(Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .arg(format!("{endpoint}{path}"))))
    };
    assert!(curl("/minio/health/cluster").ends_with("200"));
    let metrics = curl("/minio/v2/metrics/cluster");
    for name in [
        "minio_s3_requests_total{api=\"createbucket\"} 1",
        "minio_s3_traffic_received_bytes",
        "minio_node_process_uptime_seconds",
        "minio_cluster_nodes_online_total 1",
    ] {
        assert!(metrics.contains(name), "{name} in\n{metrics}");
    }
    let _ = server.kill();
    let _ = server.wait();

    // What fsgate cannot follow is refused at start, saying why.
    for volumes in ["/data{1...4}", "/a /b"] {
        let err = fails(&run(minio_env(
            &mut Command::new(bin("fsgate")),
            dir.path(),
        )
        .arg("server")
        .env("MINIO_VOLUMES", volumes)));
        assert!(err.contains("one directory"), "{err}");
    }
}
