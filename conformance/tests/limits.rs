//! Limits against misbehaving clients (issue 26, item 4): request rates per client address and
//! per principal, requests in flight, request-line and header sizes. Each refuses the client
//! over it (503 `SlowDown` with `Retry-After`, or 431) while another client is served, and the
//! server serves everyone once the pressure stops.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, add_user, ok, raw, unique};

/// An unsigned GET of `path` from the client at `xff` (behind a trusted proxy): status line
/// and headers, lower-cased.
fn get_as(port: u16, path: &str, xff: &str) -> String {
    raw(
        port,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {xff}\r\nConnection: close\r\n\r\n"
        ),
    )
    .unwrap_or_default()
    .to_ascii_lowercase()
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_client_over_its_rate_slows_down_and_others_are_served() {
    let s = Server::start_with(&[
        "--trusted-proxies",
        "127.0.0.1",
        "--rate-limit-per-source",
        "20",
    ]);
    let started = Instant::now();
    let mut refused = 0;
    let mut served = 0;
    for _ in 0..200 {
        let r = get_as(s.port, "/some-bucket/key", "10.9.9.9");
        if status(&r) == 503 {
            assert!(r.contains("<code>slowdown</code>"), "{r}");
            assert!(r.contains("retry-after: 1"), "{r}");
            refused += 1;
        } else {
            served += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // A second's worth at once, then 20 a second.
    let allowed = 20.0 + 20.0 * secs + 2.0;
    eprintln!("{served} served, {refused} refused in {secs:.2} s (at most {allowed:.0} allowed)");
    assert!(f64::from(served) <= allowed, "{served} > {allowed}");
    assert!(refused >= 100, "{refused}");
    // Meanwhile, another address is served at once.
    for _ in 0..10 {
        assert_ne!(status(&get_as(s.port, "/some-bucket/key", "10.1.1.1")), 503);
    }
    // And the first is again, once it slows down.
    std::thread::sleep(Duration::from_millis(1100));
    assert_ne!(status(&get_as(s.port, "/some-bucket/key", "10.9.9.9")), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_over_its_rate_slows_down_and_others_are_served() {
    let s = Server::start_with(&["--rate-limit-per-principal", "10"]);
    let (ak, sk) = add_user(&s, &unique("busy"));
    let no_retries = |ak: &str, sk: &str| {
        let creds = aws_credential_types::Credentials::new(ak, sk, None, None, "test");
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .endpoint_url(s.endpoint())
                .credentials_provider(creds)
                .force_path_style(true)
                .retry_config(RetryConfig::disabled())
                .http_client(aws_smithy_http_client::Builder::new().build_http())
                .build(),
        )
    };
    let busy = no_retries(&ak, &sk);
    let root = no_retries(ROOT_USER, ROOT_PASS);
    let (mut slowed, mut answered) = (0, 0);
    for _ in 0..60 {
        match busy.list_buckets().send().await {
            Err(e) => {
                let code = e.raw_response().map(|r| {
                    (
                        r.status().as_u16(),
                        r.headers().get("retry-after").is_some(),
                    )
                });
                if code == Some((503, true)) {
                    slowed += 1;
                } else {
                    answered += 1;
                }
            }
            Ok(_) => answered += 1,
        }
    }
    eprintln!("busy principal: {answered} answered, {slowed} slowed down");
    assert!(slowed >= 40, "{slowed}");
    assert!(answered >= 10, "{answered}");
    // Another principal, from the same address, is served meanwhile.
    for _ in 0..10 {
        root.list_buckets().send().await.unwrap();
    }
}

/// An anonymous POST form upload that sends its headers and a little of its body, then waits:
/// s3s reads a form before any decision, so the request stays in flight.
fn hanging_post(port: u16, bucket: &str) -> TcpStream {
    let boundary = "fsgateboundary";
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "POST /{bucket} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 100000\r\n\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk"
    );
    c.write_all(req.as_bytes()).unwrap();
    c
}

#[test]
fn requests_past_the_in_flight_cap_slow_down_at_once() {
    let s = Server::start_with(&["--max-requests", "3"]);
    let bucket = unique("cap");
    ok(&s.aws(&["s3", "mb", &format!("s3://{bucket}")]));
    let held: Vec<TcpStream> = (0..3).map(|_| hanging_post(s.port, &bucket)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let r = raw(
        s.port,
        "GET /health-of-nothing/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap()
    .to_ascii_lowercase();
    assert_eq!(status(&r), 503, "{r}");
    assert!(
        r.contains("<code>slowdown</code>") && r.contains("retry-after: 1"),
        "{r}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // Health and metrics are not S3 requests: they answer while the cap is reached.
    assert_eq!(
        fsgate_conformance::http_status(s.port, "/health/live"),
        Some(200)
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    ok(&s.aws(&["s3", "ls", &format!("s3://{bucket}")]));
}

#[test]
fn oversized_request_heads_get_431_and_the_server_goes_on() {
    let s = Server::start_with(&["--max-header-bytes", "16384"]);
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let too_many = raw(
        s.port,
        &format!("GET /b/k HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n"),
    )
    .unwrap_or_default();
    assert_eq!(status(&too_many), 431, "{too_many}");
    let big = "a".repeat(20_000);
    let too_big = raw(
        s.port,
        &format!("GET /b/k HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
    )
    .unwrap_or_default();
    assert_eq!(status(&too_big), 431, "{too_big}");
    let long_line = raw(
        s.port,
        &format!("GET /b/{big} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .unwrap_or_default();
    assert_eq!(status(&long_line), 431, "{long_line}");
    // Within the limit, a presigned URL's long query is fine.
    let within = "q".repeat(8_000);
    let ok_line = raw(
        s.port,
        &format!("GET /b/k?x={within} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .unwrap_or_default();
    assert_ne!(status(&ok_line), 431, "{ok_line}");
    assert_eq!(
        fsgate_conformance::http_status(s.port, "/health/live"),
        Some(200)
    );
}

/// 500 connections that send headers a byte at a time never finish; a normal client's S3
/// requests beside them keep a p99 under 50 ms.
#[test]
fn slowloris_does_not_slow_a_normal_client() {
    let s = Server::start_with(&["--header-timeout", "5"]);
    let mut slow: Vec<TcpStream> = (0..500)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            c.write_all(b"GET /b/k HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            c
        })
        .collect();
    let mut times = Vec::new();
    for i in 0..200 {
        // Keep the slow ones dripping.
        if i % 20 == 0 {
            for c in &mut slow {
                let _ = c.write_all(b"a");
            }
        }
        let started = Instant::now();
        let r = raw(
            s.port,
            "GET /some-bucket/key HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        times.push(started.elapsed());
        assert!(matches!(status(&r), 403 | 404), "{r}");
    }
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    eprintln!(
        "normal client beside 500 slow connections: p50 {:?}, p99 {p99:?}",
        times[100]
    );
    assert!(p99 < Duration::from_millis(50), "{p99:?}");
    // The slow connections are closed by the header timeout.
    let mut buf = [0u8; 64];
    for c in &mut slow {
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// A PUT declaring more than 5 GiB is refused before a byte of its body is read: the client
/// sends none and gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_5_gib_is_refused_before_its_body() {
    use aws_sdk_s3::presigning::PresigningConfig;
    let s = Server::start();
    let bucket = unique("big");
    ok(&s.aws(&["s3", "mb", &format!("s3://{bucket}")]));
    let client = crate::rust_sdk::client(&s, ROOT_USER, ROOT_PASS);
    let presigned = client
        .put_object()
        .bucket(&bucket)
        .key("huge")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let url = presigned.uri().to_owned();
    let after_scheme = url.split_once("://").unwrap().1;
    let path = after_scheme[after_scheme.find('/').unwrap()..].to_owned();
    let port = s.port;
    let started = Instant::now();
    let response = tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
            (5u64 << 30) + 1
        );
        c.write_all(head.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    assert_eq!(status(&response), 400, "{response}");
    assert!(
        response.contains("<Code>EntityTooLarge</Code>"),
        "{response}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing was stored, and a normal upload goes on.
    assert!(s.get_object(&bucket, "huge", None).is_err());
    ok(&s.put_object(&bucket, "small", b"fine"));
}
