//! Security review regressions (issue 18): decisions read only what was authenticated (the
//! boto3 and raw-HTTP groups of `python/security.py`, and the encoding differential of
//! `python/encodings.py`), everything fsgate writes is private, and unauthenticated or
//! undecided requests cost bounded memory and time while a normal client is served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok, unique};

fn group(s: &Server, script: &str, tests: &[&str]) {
    let out = ok(&s.python_as(script, ROOT_USER, ROOT_PASS, tests));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn decisions_read_the_request_that_runs() {
    let s = Server::start();
    group(
        &s,
        "security.py",
        &[
            "version_permissions_hold_under_encoded_query_keys",
            "tags_are_read_from_the_version_addressed",
            "a_tag_forbid_holds_while_the_object_changes_under_the_read",
            "presigned_urls_obey_revocation_and_the_cap_however_encoded",
            "per_key_revocation_spares_the_other_keys",
            "anonymous_response_overrides_are_refused",
        ],
    );
}

/// Regression: `POST /b?%64elete` skipped the Content-MD5 check and the 2 MiB body cap (an
/// anonymous 18 MiB body was parsed before any decision: RSS 90 → 264 MiB).
#[test]
fn delete_objects_checks_hold_however_encoded() {
    let s = Server::start();
    let before = s.proc_status_kib("VmRSS").unwrap();
    group(
        &s,
        "security.py",
        &["delete_objects_is_found_however_encoded"],
    );
    let peak = s.proc_status_kib("VmHWM").unwrap();
    eprintln!("RSS before {before} KiB, peak {peak} KiB");
    assert!(
        peak < before + 48 * 1024,
        "peak RSS grew by {} KiB",
        peak - before
    );
}

/// Every operation, with its query keys and signed headers in other encodings, is refused or
/// decided and executed exactly as its canonical form.
#[test]
fn encoding_differential_over_every_operation() {
    let s = Server::start();
    group(&s, "encodings.py", &[]);
}

/// Regression: a data directory made by fsgate was 0755 and RocksDB's files 0644, so every
/// user secret in the WAL was readable by other local users.
#[test]
fn everything_fsgate_writes_is_private() {
    let s = Server::start();
    let b = unique("priv");
    ok(&s.aws(&["s3", "mb", &format!("s3://{b}")]));
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(big.path(), vec![1u8; 200_000]).unwrap();
    ok(&s.aws(&[
        "s3",
        "cp",
        big.path().to_str().unwrap(),
        &format!("s3://{b}/k"),
    ]));
    ok(&s.fsctl(&["user", "add", "someone"]));
    let mut seen = 0;
    let mut stack = vec![s.data()];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", dir.display());
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                let mode = meta.permissions().mode();
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", e.path().display());
                seen += 1;
            }
        }
    }
    assert!(seen > 5, "only {seen} files under the data directory");
}

fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

/// Whether the server closed the connection (read returns end of stream or a reset).
fn closed_by_server(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            // A 408 or similar before closing is fine.
            Ok(_) => {}
        }
    }
}

fn timed_get(s: &Server) -> Duration {
    let started = Instant::now();
    let r = fsgate_conformance::http_status(s.port, "/health/live");
    assert_eq!(r, Some(200));
    started.elapsed()
}

/// Regression: no header-read or idle timeout (a connection with unfinished headers stayed open
/// for minutes). 300 slow connections are closed after the header timeout while a normal
/// client is served.
#[test]
fn slow_and_idle_connections_are_closed() {
    let s = Server::start_with(&["--header-timeout", "2"]);
    let mut slow: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut c = connect(s.port);
            c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            c
        })
        .collect();
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        worst = worst.max(timed_get(&s));
    }
    eprintln!("normal client's slowest of 20 requests beside 300 slow connections: {worst:?}");
    assert!(worst < Duration::from_secs(2), "{worst:?}");
    // After the header timeout every slow connection is gone, and the server serves.
    let started = Instant::now();
    for c in &mut slow {
        assert!(closed_by_server(c));
    }
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    timed_get(&s);
}

/// Regression: no connection cap. Past it, a connection is closed at once; the server keeps
/// serving once connections leave.
#[test]
fn connections_are_capped() {
    let s = Server::start_with(&["--max-connections", "40"]);
    let held: Vec<TcpStream> = (0..40).map(|_| connect(s.port)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut over = connect(s.port);
    let started = Instant::now();
    assert!(closed_by_server(&mut over));
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    timed_get(&s);
}

/// Regression: anonymous POST form uploads were buffered (64 MiB each) before any decision:
/// six concurrent 60 MiB posts took RSS from 62 to 358 MiB. Undecided bodies now share a
/// budget; past it, requests get 503 SlowDown, and a normal client is served meanwhile.
#[test]
fn undecided_bodies_share_a_bounded_budget() {
    let s = Server::start_with(&["--pre-decision-memory", "33554432"]);
    let b = unique("post");
    ok(&s.aws(&["s3", "mb", &format!("s3://{b}")]));
    let before = s.proc_status_kib("VmRSS").unwrap();
    let port = s.port;
    let posts: Vec<_> = (0..6)
        .map(|i| {
            let b = b.clone();
            std::thread::spawn(move || {
                let boundary = "fsgateboundary";
                let head = format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk{i}\r\n\
                     --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                );
                let tail = format!("\r\n--{boundary}--\r\n");
                let size = 60usize << 20;
                let len = head.len() + size + tail.len();
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let req = format!(
                    "POST /{b} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                );
                c.write_all(req.as_bytes()).unwrap();
                c.write_all(head.as_bytes()).unwrap();
                let chunk = vec![b'x'; 1 << 20];
                for _ in 0..60 {
                    if c.write_all(&chunk).is_err() {
                        break;
                    }
                }
                let _ = c.write_all(tail.as_bytes());
                let mut out = String::new();
                let _ = c.read_to_string(&mut out);
                out.lines().next().unwrap_or_default().to_owned()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        assert!(timed_get(&s) < Duration::from_secs(2));
    }
    let statuses: Vec<String> = posts.into_iter().map(|t| t.join().unwrap()).collect();
    let peak = s.proc_status_kib("VmHWM").unwrap();
    eprintln!("RSS before {before} KiB, peak {peak} KiB; answers {statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|l| !l.contains(" 200") && !l.contains(" 204")),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|l| l.contains(" 503")),
        "no request was held to the budget: {statuses:?}"
    );
    assert!(
        peak < before + 160 * 1024,
        "peak RSS grew by {} KiB",
        peak - before
    );
}
