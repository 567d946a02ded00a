//! Plain HTTP: health, metrics, request ids tied to audit records, and the security seam that
//! unsigned requests never get past the policy layer.

use fsgate_conformance::{Server, fails, http_status, json_lines, ok, raw, unique};

#[test]
fn health_metrics_and_request_ids() {
    let s = Server::start();
    for p in [
        "/health/live",
        "/health/ready",
        "/minio/health/live",
        "/minio/health/ready",
    ] {
        assert_eq!(http_status(s.port, p), Some(200), "{p}");
    }
    let b = unique("raw");
    ok(&s.aws(&["s3", "mb", &format!("s3://{b}")]));
    let metrics = raw(
        s.port,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            s.port
        ),
    )
    .unwrap();
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("fsgate_requests_total"), "{metrics}");
    assert!(
        metrics.contains("fsgate_policy_decisions_total"),
        "{metrics}"
    );

    // Every response carries x-amz-request-id, and it is the id of the request's audit record.
    let resp = raw(
        s.port,
        &format!(
            "GET /{b}/nothing HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            s.port
        ),
    )
    .unwrap();
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("<Code>AccessDenied</Code>"), "{resp}");
    let id = resp
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-request-id: "))
        .unwrap_or_else(|| panic!("no request id:\n{resp}"))
        .trim()
        .to_owned();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let recs = json_lines(&ok(&s.fsctl(&[
        "audit",
        "query",
        "--principal",
        "anonymous",
        "--bucket",
        &b,
    ])));
    let rec = recs
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no audit record {id} in {recs:?}"));
    assert_eq!(rec["decision"], "deny");
    assert_eq!(rec["status"], 403);
    assert_eq!(rec["error_code"], "AccessDenied");
    assert_eq!(rec["action"], "s3:GetObject");
    assert_eq!(rec["key"], "nothing");
}

// Security seam: an unsigned request is denied for every kind of operation, even though s3s
// would skip the access check for want of credentials if no auth provider were set.
#[test]
fn unsigned_requests_are_denied_everywhere() {
    let s = Server::start();
    let b = unique("anon");
    ok(&s.aws(&["s3", "mb", &format!("s3://{b}")]));
    let h = format!("Host: 127.0.0.1:{}\r\nConnection: close\r\n", s.port);
    for req in [
        format!("GET / HTTP/1.1\r\n{h}\r\n"),
        format!("PUT /{b}/k HTTP/1.1\r\n{h}Content-Length: 3\r\n\r\nabc"),
        format!("GET /{b}?list-type=2 HTTP/1.1\r\n{h}\r\n"),
        format!("PUT /newbucket-anon HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n"),
        format!("DELETE /{b} HTTP/1.1\r\n{h}\r\n"),
        format!("POST /{b}/k?uploads HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n"),
        format!("GET /admin/v1/users HTTP/1.1\r\n{h}\r\n"),
        format!("GET /{b}?policy HTTP/1.1\r\n{h}\r\n"),
    ] {
        let resp = raw(s.port, &req).unwrap();
        assert!(resp.starts_with("HTTP/1.1 403"), "{req}\n->\n{resp}");
    }
    let body = "<Delete><Object><Key>k</Key></Object></Delete>";
    let resp = raw(
        s.port,
        &format!(
            "POST /{b}?delete HTTP/1.1\r\n{h}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap();
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(
        !s.aws(&["s3api", "head-object", "--bucket", &b, "--key", "k"])
            .status
            .success()
    );
    // Root reaches operations fsgate does not implement and learns so.
    let err = String::from_utf8_lossy(
        &s.aws(&[
            "s3api",
            "put-bucket-website",
            "--bucket",
            &b,
            "--website-configuration",
            r#"{"IndexDocument":{"Suffix":"index.html"}}"#,
        ])
        .stderr,
    )
    .into_owned();
    assert!(err.contains("NotImplemented"), "{err}");
}

// Regression (seen once in CI): the request after an UploadPart answered NoSuchUpload before
// its body was read failed SignatureDoesNotMatch on the same keep-alive connection. An error
// sent before the request body is read now closes the connection.
#[test]
fn early_errors_close_the_connection() {
    let s = Server::start();
    let h = format!("Host: 127.0.0.1:{}\r\n", s.port);
    let resp = raw(
        s.port,
        &format!("PUT /no-such-bucket-x/k HTTP/1.1\r\n{h}Content-Length: 5\r\n\r\n"),
    )
    .unwrap();
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("connection: close"),
        "{resp}"
    );
}

/// The Nagle stall guard (not a timing benchmark): 50 GETs of a 4 KiB object over one
/// warmed-up keep-alive connection must have a median under 30 ms. Without TCP_NODELAY on accepted
/// sockets each small response waits ~40 ms for the client's delayed ACK.
#[test]
fn small_gets_on_a_keep_alive_connection_do_not_stall() {
    use std::io::{BufRead, BufReader, Read, Write};
    let s = Server::start();
    ok(&s.aws(&["s3", "mb", "s3://nagle"]));
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy.path(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::nagle/*"}]}"#,
    )
    .unwrap();
    ok(&s.aws(&[
        "s3api",
        "put-bucket-policy",
        "--bucket",
        "nagle",
        "--policy",
        &format!("file://{}", policy.path().display()),
    ]));
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), vec![b'n'; 4096]).unwrap();
    ok(&s.aws(&[
        "s3",
        "cp",
        body.path().to_str().unwrap(),
        "s3://nagle/small",
    ]));
    let stream = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    stream.set_nodelay(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut times = Vec::new();
    // The first 100 warm the connection up (Linux ACKs at once early in a connection, which
    // hides the stall); the last 50 are measured.
    for i in 0..150 {
        let started = std::time::Instant::now();
        writer
            .write_all(b"GET /nagle/small HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(buf.len(), 4096);
        if i >= 100 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < std::time::Duration::from_millis(30),
        "median {median:?} over one keep-alive connection: {times:?}"
    );
}

/// Every error response names its code and says in words what went wrong, whether fsgate or
/// the S3 protocol layer under it refused the request (aws cli prints "Unknown" otherwise).
#[test]
fn every_error_response_carries_a_message() {
    let s = Server::start();
    let b = unique("msg");
    ok(&s.aws(&["s3", "mb", &format!("s3://{b}")]));
    let calls: &[&[&str]] = &[
        &["s3api", "create-bucket", "--bucket", "ab"],
        &["s3api", "create-bucket", "--bucket", "Not_Valid"],
        &["s3api", "list-objects-v2", "--bucket", "no-such-bucket-msg"],
        &[
            "s3api",
            "get-object",
            "--bucket",
            &b,
            "--key",
            "none",
            "/dev/null",
        ],
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            &b,
            "--max-keys",
            "-1",
        ],
        &[
            "s3api",
            "list-parts",
            "--bucket",
            &b,
            "--key",
            "k",
            "--upload-id",
            "nope",
        ],
        &["s3api", "get-bucket-website", "--bucket", &b],
        &["s3api", "get-bucket-policy", "--bucket", &b],
        &[
            "s3api",
            "get-bucket-lifecycle-configuration",
            "--bucket",
            &b,
        ],
        &["s3api", "get-object-lock-configuration", "--bucket", &b],
        &[
            "s3api",
            "put-bucket-policy",
            "--bucket",
            &b,
            "--policy",
            "{not json",
        ],
    ];
    for args in calls {
        let err = fails(&s.aws(args));
        let message = err.split_once("operation: ").map_or("", |(_, m)| m.trim());
        assert!(
            err.contains("An error occurred (") && !message.is_empty() && message != "Unknown",
            "{args:?}: {err}"
        );
    }
    // Unsigned and malformed requests too.
    for request in [
        format!("GET /{b}?list-type=2&max-keys=abc HTTP/1.1\r\n"),
        format!("PUT /{b}/k HTTP/1.1\r\nContent-Length: 0\r\n"),
        "GET /a HTTP/1.1\r\n".to_owned(),
    ] {
        let resp = raw(
            s.port,
            &format!(
                "{request}Host: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                s.port
            ),
        )
        .unwrap();
        let message = resp
            .split_once("<Message>")
            .and_then(|(_, r)| r.split_once("</Message>"))
            .map(|(m, _)| m);
        assert!(
            resp.contains("<Code>") && message.is_some_and(|m| !m.is_empty()),
            "{request}: {resp}"
        );
    }
}
