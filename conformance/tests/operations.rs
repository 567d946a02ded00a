//! Operating fsgate: Prometheus metrics move with known traffic (request counts by API and
//! status, denials, authentication failures by reason, audit pipeline, store capacity and
//! dedup, process), `/metrics` behind a bearer token, and readiness that fails with a JSON
//! reason when free space is under the reserve.

use fsgate_conformance::{Server, add_user, fails, http_status, ok, raw};

fn scrape(s: &Server, auth: Option<&str>) -> String {
    let header = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    raw(
        s.port,
        &format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}Connection: close\r\n\r\n"),
    )
    .unwrap()
}

/// The value of the sample whose name and labels start with `prefix` (labels in the order the
/// exporter writes them).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.starts_with(prefix)
                && l.get(prefix.len()..)
                    .is_some_and(|r| r.starts_with(' ') || r.starts_with(',') || r.starts_with('{'))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_move_with_known_traffic() {
    let s = Server::start();
    ok(&s.aws(&["s3", "mb", "s3://met"]));
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, b"0123456789").unwrap();
    for i in 0..7 {
        ok(&s.aws(&[
            "s3api",
            "put-object",
            "--bucket",
            "met",
            "--key",
            &format!("k{i}"),
            "--body",
            small.to_str().unwrap(),
        ]));
    }
    // The same 100 KB twice: twice the logical bytes, one blob.
    let big = dir.path().join("big");
    std::fs::write(&big, vec![7u8; 100_000]).unwrap();
    for k in ["big1", "big2"] {
        ok(&s.aws(&["s3", "cp", big.to_str().unwrap(), &format!("s3://met/{k}")]));
    }
    // A denied anonymous read, a bad signature, an unknown key, a disabled user's key.
    let r = raw(
        s.port,
        "GET /met/k0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let (ak, sk) = add_user(&s, "eve");
    fails(&s.aws_as(&ak, &format!("{sk}x"), &["s3", "ls"]));
    fails(&s.aws_as("AKIDOESNOTEXIST00000", "secret", &["s3", "ls"]));
    ok(&s.fsctl(&["user", "disable", "eve"]));
    fails(&s.aws_as(&ak, &sk, &["s3", "ls"]));

    ok(&s.aws(&["s3", "cp", "s3://met/big1", "-"]));
    // Regression: an open /metrics showed physical bytes, a cross-tenant dedup oracle. The
    // open scrape leaves out what reveals tenants' data; an admin's signed scrape has it.
    let public = scrape(&s, None);
    assert!(public.starts_with("HTTP/1.1 200"), "{public}");
    assert!(
        sample(&public, "fsgate_requests_total").is_some(),
        "{public}"
    );
    for hidden in [
        "fsgate_store_physical_bytes",
        "fsgate_store_logical_bytes",
        "fsgate_data_free_bytes",
        "fsgate_rocksdb_live_sst_bytes",
    ] {
        assert!(
            !public.contains(hidden),
            "{hidden} in the open scrape:\n{public}"
        );
    }
    let m = ok(&s.python_as(
        "signed_get.py",
        fsgate_conformance::ROOT_USER,
        fsgate_conformance::ROOT_PASS,
        &["/metrics"],
    ));
    assert!(m.starts_with("200\n"), "{m}");
    let v = |p: &str| sample(&m, p).unwrap_or_else(|| panic!("no sample {p}:\n{m}"));
    assert_eq!(
        v(r#"fsgate_requests_total{api="s3:PutObject",status="200"}"#),
        9.0
    );
    assert!(v(r#"fsgate_policy_decisions_total{result="deny"}"#) >= 1.0);
    assert!(v(r#"fsgate_request_duration_seconds_bucket{api="s3:PutObject",le="0.5"}"#) >= 9.0);
    assert_eq!(
        v(r#"fsgate_auth_failures_total{reason="bad_signature"}"#),
        1.0
    );
    assert_eq!(
        v(r#"fsgate_auth_failures_total{reason="unknown_key"}"#),
        1.0
    );
    assert_eq!(v(r#"fsgate_auth_failures_total{reason="disabled"}"#), 1.0);
    assert_eq!(v("fsgate_store_buckets"), 1.0);
    assert_eq!(v("fsgate_store_objects"), 9.0);
    assert_eq!(v("fsgate_store_logical_bytes"), 70.0 + 200_000.0);
    assert_eq!(v("fsgate_store_physical_bytes"), 100_000.0);
    assert!(v("fsgate_audit_records_written_total") >= 9.0);
    assert!(v("fsgate_data_free_bytes") > 0.0);
    assert!(v("fsgate_process_resident_memory_bytes") > 1_000_000.0);
    assert!(v("fsgate_process_open_fds") > 3.0);
    assert!(v("fsgate_uptime_seconds") > 0.0);
    assert_eq!(v("fsgate_build_info"), 1.0);
    for name in [
        "fsgate_audit_queue_depth",
        "fsgate_audit_oldest_unwritten_age_seconds",
        "fsgate_rocksdb_live_sst_bytes",
        "fsgate_rocksdb_pending_compaction_bytes",
        "fsgate_rocksdb_write_stopped",
        "fsgate_requests_in_flight",
        "fsgate_received_bytes_total",
        "fsgate_sent_bytes_total",
    ] {
        assert!(sample(&m, name).is_some(), "{name} missing:\n{m}");
    }
    // Requests that failed before naming an action share one label, whatever their path.
    assert!(v(r#"fsgate_requests_total{api="unknown",status="403"}"#) >= 3.0);
    // No bucket, key or user names in labels.
    for l in m.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !l.contains("\"met\"") && !l.contains("eve") && !l.contains("k0"),
            "{l}"
        );
        let labels = l.split_once('{').map_or("", |(_, rest)| rest);
        assert!(!labels.contains('/'), "a path as a label: {l}");
    }
}

#[test]
fn metrics_token_and_readiness() {
    let s = Server::start_with(&["--metrics-token", "s3cr3t-token"]);
    assert!(scrape(&s, None).starts_with("HTTP/1.1 401"));
    assert!(scrape(&s, Some("wrong")).starts_with("HTTP/1.1 401"));
    assert!(scrape(&s, Some("s3cr3t-token")).starts_with("HTTP/1.1 200"));
    let job = ok(&s
        .cmd(fsgate_conformance::bin("fsctl"))
        .args(["admin", "prometheus-config", "--token", "s3cr3t-token"])
        .output()
        .unwrap());
    assert!(
        job.contains(&format!("targets: ['127.0.0.1:{}']", s.port)),
        "{job}"
    );
    assert!(job.contains("credentials: 's3cr3t-token'"), "{job}");
    // An admin's SigV4 signature is accepted instead of the token; another user's is not.
    let signed = ok(&s.python_as(
        "signed_get.py",
        fsgate_conformance::ROOT_USER,
        fsgate_conformance::ROOT_PASS,
        &["/metrics"],
    ));
    assert!(
        signed.starts_with("200\n") && signed.contains("fsgate_build_info"),
        "{signed}"
    );
    let (ak, sk) = add_user(&s, "scraper");
    let denied = ok(&s.python_as("signed_get.py", &ak, &sk, &["/metrics"]));
    assert!(denied.starts_with("403\n"), "{denied}");
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "scraper",
        "--cedar",
        scraper_policy().path().to_str().unwrap(),
    ]));
    let allowed = ok(&s.python_as("signed_get.py", &ak, &sk, &["/metrics"]));
    assert!(allowed.starts_with("200\n"), "{allowed}");
    assert_eq!(http_status(s.port, "/health/ready"), Some(200));
    assert_eq!(http_status(s.port, "/minio/health/ready"), Some(200));
    drop(s);
    // A reserve larger than any disk: not ready, with the reason; still live.
    let s = Server::start_with(&["--min-free-space", "4611686018427387904"]);
    let r = raw(
        s.port,
        "GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    assert!(
        r.contains(r#""ready":false"#) && r.contains("free space"),
        "{r}"
    );
    assert_eq!(http_status(s.port, "/health/live"), Some(200));
}

fn scraper_policy() -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        "permit(principal, action == Action::\"admin:ScrapeMetrics\", resource);",
    )
    .unwrap();
    f
}

/// `--metrics-per-bucket` adds per-bucket request and byte counters (off by default, so no
/// bucket name is a label); blob writes and their fsync latency are counted.
#[test]
fn per_bucket_metrics_only_when_asked() {
    let s = Server::start();
    ok(&s.aws(&["s3", "mb", "s3://quiet"]));
    let m = scrape(&s, None);
    assert!(!m.contains("quiet"), "bucket name leaked into metrics");
    drop(s);
    let s = Server::start_with(&["--metrics-per-bucket"]);
    ok(&s.aws(&["s3", "mb", "s3://loud"]));
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(big.path(), vec![7u8; 300 * 1024]).unwrap();
    for i in 0..3 {
        ok(&s.aws(&[
            "s3api",
            "put-object",
            "--bucket",
            "loud",
            "--key",
            &format!("k{i}"),
            "--body",
            big.path().to_str().unwrap(),
        ]));
    }
    // Per-bucket figures name buckets: only the metrics token or an admin sees them.
    assert!(!scrape(&s, None).contains("loud"));
    let m = ok(&s.python_as(
        "signed_get.py",
        fsgate_conformance::ROOT_USER,
        fsgate_conformance::ROOT_PASS,
        &["/metrics"],
    ));
    assert_eq!(
        sample(
            &m,
            "fsgate_bucket_requests_total{bucket=\"loud\",api=\"s3:PutObject\"}"
        ),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "fsgate_bucket_received_bytes_total{bucket=\"loud\"}"),
        Some(3.0 * 300.0 * 1024.0)
    );
    // Bodies over 64 KiB go to blob files: their writes and fsync latency are counted.
    assert!(
        sample(&m, "fsgate_blob_writes_total").unwrap_or(0.0) >= 1.0,
        "{m}"
    );
    assert!(
        sample(&m, "fsgate_blob_fsync_seconds_count").unwrap_or(0.0) >= 1.0,
        "{m}"
    );
    assert!(
        sample(&m, "fsgate_metadata_commit_seconds_count").unwrap_or(0.0) >= 4.0,
        "{m}"
    );
}

fn deploy_dir() -> std::path::PathBuf {
    fsgate_conformance::crate_dir().join("../deploy")
}

/// The alert rules pass `promtool check rules` and their unit tests (`promtool test rules`).
#[test]
fn alert_rules_check_and_pass_their_tests() {
    let dir = deploy_dir().join("prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts_test.yml"],
    ] {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool (Debian package prometheus; scripts/deps.sh installs it)");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every fsgate metric the Grafana dashboard and the alert rules query is exported by a
/// running fsgate once it has seen ordinary traffic.
#[test]
fn dashboard_and_alerts_query_only_exported_metrics() {
    // As deployed: Prometheus scrapes with the metrics token.
    let s = Server::start_with(&["--metrics-token", "dash-token"]);
    ok(&s.aws(&["s3", "mb", "s3://dash"]));
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), b"dashboard").unwrap();
    ok(&s.aws(&["s3", "cp", f.path().to_str().unwrap(), "s3://dash/k"]));
    ok(&s.aws(&["s3", "cp", "s3://dash/k", "-"]));
    fails(&s.aws(&["s3", "cp", "s3://dash/missing", "-"]));
    fails(&s.aws_as("AKIDOESNOTEXIST00000", "secret", &["s3", "ls"]));
    let m = scrape(&s, Some("dash-token"));
    let exported: std::collections::HashSet<String> = m
        .lines()
        .filter(|l| l.starts_with("fsgate_"))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| {
            n.trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count")
                .to_owned()
        })
        .collect();
    let mut queried = std::collections::BTreeSet::new();
    for file in ["grafana/fsgate.json", "prometheus/alerts.yml"] {
        let text = std::fs::read_to_string(deploy_dir().join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("fsgate_") {
            let tail = rest.get(i..).unwrap_or_default();
            let name: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = tail.get(name.len()..).unwrap_or_default();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count")
                .to_owned();
            queried.insert(base);
        }
    }
    assert!(queried.len() > 15, "{queried:?}");
    let missing: Vec<&String> = queried.iter().filter(|q| !exported.contains(*q)).collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\n{m}"
    );
}

/// The systemd unit passes `systemd-analyze verify` (with ExecStart pointed at the built
/// binary), and the compose, Kubernetes and Grafana files parse.
#[test]
fn deploy_files_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(deploy_dir().join("fsgate.service")).unwrap();
    for hardening in [
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "ReadWritePaths=",
        "LimitNOFILE=",
    ] {
        assert!(unit.contains(hardening), "{hardening}");
    }
    let local = dir.path().join("fsgate.service");
    std::fs::write(
        &local,
        unit.replace(
            "/usr/local/bin/fsgate",
            fsgate_conformance::bin("fsgate").to_str().unwrap(),
        ),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .expect("systemd-analyze");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("grafana/fsgate.json")).unwrap(),
    )
    .unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 15);
    let py = fsgate_conformance::python();
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg("import sys, yaml\nfor f in sys.argv[1:]: list(yaml.safe_load_all(open(f)))")
        .args([
            "compose.yaml",
            "kubernetes/fsgate.yaml",
            "prometheus/prometheus.yml",
        ])
        .current_dir(deploy_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With debug logging in JSON, a day's worth of request kinds (SigV4 header auth, streaming
/// uploads, presigned URLs, a bad signature, admin calls) leaves no secret key, signature or
/// presigned query string in the log, and every request line names its request id.
#[test]
fn logs_never_hold_secrets() {
    let s = Server::start_with(&["--log-level", "debug", "--log-format", "json"]);
    let (ak, sk) = add_user(&s, "logger");
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "logger",
        "--role",
        "readwrite",
    ]));
    ok(&s.aws(&["s3", "mb", "s3://logs"]));
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), vec![1u8; 200_000]).unwrap();
    ok(&s.aws_as(
        &ak,
        &sk,
        &["s3", "cp", f.path().to_str().unwrap(), "s3://logs/obj"],
    ));
    ok(&s.aws_as(&ak, &sk, &["s3", "cp", "s3://logs/obj", "/dev/null"]));
    let url = ok(&s.aws(&["s3", "presign", "s3://logs/obj"]))
        .trim()
        .to_owned();
    let path = url.get(url.find("/logs/").unwrap()..).unwrap();
    let r = raw(
        s.port,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            s.port
        ),
    )
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    fails(&s.aws_as(&ak, &format!("{sk}x"), &["s3", "ls", "s3://logs"]));
    // An STS session: its secret and token must not reach the log either, nor a bad token.
    let out = ok(&s.aws_as(
        &ak,
        &sk,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::fsgate:role/x",
            "--role-session-name",
            "logs",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cred = |k: &str| v["Credentials"][k].as_str().unwrap().to_owned();
    let (tak, tsk, tok) = (
        cred("AccessKeyId"),
        cred("SecretAccessKey"),
        cred("SessionToken"),
    );
    for token in [tok.clone(), format!("{tok}x")] {
        let _ = fsgate_conformance::run(
            s.cmd_as(fsgate_conformance::aws_bin(), &tak, &tsk)
                .env("AWS_SESSION_TOKEN", &token)
                .args(["--endpoint-url", &s.endpoint(), "s3", "ls", "s3://logs"]),
        );
    }
    let signature = url.split("X-Amz-Signature=").nth(1).unwrap().to_owned();
    let log = s.log();
    assert!(log.lines().count() > 5, "{log}");
    for secret in [
        fsgate_conformance::ROOT_PASS,
        sk.as_str(),
        tsk.as_str(),
        tok.as_str(),
        signature.as_str(),
        "X-Amz-Signature",
        "Signature=",
        "authorization",
    ] {
        assert!(
            !log.to_ascii_lowercase()
                .contains(&secret.to_ascii_lowercase()),
            "{secret} appears in the log:\n{log}"
        );
    }
    let request_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""message":"request""#))
        .collect();
    assert!(request_lines.len() >= 5, "{log}");
    assert!(
        request_lines.iter().all(|l| l.contains("request_id")),
        "{log}"
    );
}

/// The listener answers before the store is open: a second fsgate on a data directory another
/// one holds is live, not ready (saying the store is locked) and answers 503 to S3 requests,
/// then becomes ready by itself once the first one is gone.
#[test]
fn not_ready_while_the_store_is_locked() {
    let mut s = Server::start();
    ok(&s.aws(&["s3", "mb", "s3://held"]));
    let port = fsgate_conformance::free_port();
    let mut second = std::process::Command::new(fsgate_conformance::bin("fsgate"))
        .args(["serve", "--address", &format!("127.0.0.1:{port}"), "--data"])
        .arg(s.data())
        .env("FSGATE_ROOT_USER", fsgate_conformance::ROOT_USER)
        .env("FSGATE_ROOT_PASSWORD", fsgate_conformance::ROOT_PASS)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait("second live", &|| {
        http_status(port, "/health/live") == Some(200)
    });
    // Not ready while it opens the store, then (once it finds the lock) saying why.
    wait("second says the store is locked", &|| {
        let ready = raw(
            port,
            "GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        ready.contains("locked")
    });
    let s3 = raw(
        port,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(
        s3.starts_with("HTTP/1.1 503") && s3.contains("ServiceUnavailable"),
        "{s3}"
    );
    s.kill9();
    wait("second ready", &|| {
        http_status(port, "/health/ready") == Some(200)
    });
    let listed = ok(&std::process::Command::new(fsgate_conformance::python())
        .arg(fsgate_conformance::scripts().join("signed_get.py"))
        .arg(format!("http://127.0.0.1:{port}"))
        .args([
            fsgate_conformance::ROOT_USER,
            fsgate_conformance::ROOT_PASS,
            "/",
        ])
        .output()
        .unwrap());
    assert!(
        listed.starts_with("200") && listed.contains("held"),
        "{listed}"
    );
    let _ = second.kill();
    let _ = second.wait();
}

/// `--audit off` (for measuring what auditing costs, nothing else) writes no records.
#[test]
fn audit_off_writes_no_records() {
    let s = Server::start_with(&["--audit", "off"]);
    ok(&s.aws(&["s3", "mb", "s3://unaudited"]));
    ok(&s.aws(&["s3", "ls", "s3://unaudited"]));
    let recs = fsgate_conformance::json_lines(&ok(&s.fsctl(&["audit", "query"])));
    assert!(recs.is_empty(), "{recs:?}");
    drop(s);
    let s = Server::start();
    ok(&s.aws(&["s3", "mb", "s3://audited"]));
    let recs = fsgate_conformance::json_lines(&ok(&s.fsctl(&["audit", "query"])));
    assert!(!recs.is_empty());
}

/// Readiness flips to 503 while the data directory cannot take a write, and back. (The suite
/// runs as root, for whom permission bits do not stop writes: the staging directory is
/// swapped for a file instead, which fails every write under it the same way.)
#[test]
fn readiness_flips_when_the_data_directory_cannot_be_written() {
    let s = Server::start();
    let ready = |s: &Server| {
        raw(
            s.port,
            "GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
    };
    assert!(ready(&s).starts_with("HTTP/1.1 200"));
    let tmp = s.data().join("tmp");
    let moved = s.data().join("tmp.moved");
    std::fs::rename(&tmp, &moved).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let r = ready(&s);
    assert!(
        r.starts_with("HTTP/1.1 503") && r.contains("not writable"),
        "{r}"
    );
    assert_eq!(http_status(s.port, "/health/live"), Some(200));
    std::fs::remove_file(&tmp).unwrap();
    std::fs::rename(&moved, &tmp).unwrap();
    assert!(ready(&s).starts_with("HTTP/1.1 200"));
}
