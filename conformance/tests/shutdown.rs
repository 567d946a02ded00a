//! Graceful shutdown: SIGTERM during an upload lets the upload finish and be acknowledged,
//! flushes its audit record, and exits 0; after a restart both are there.

use std::io::{Read, Write};
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, json_lines, ok, unique};

use crate::rust_sdk::client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_uploads_and_flushes_audit() {
    let mut s = Server::start();
    let c = client(&s, ROOT_USER, ROOT_PASS);
    let b = unique("term");
    c.create_bucket().bucket(&b).send().await.unwrap();
    let presigned = c
        .put_object()
        .bucket(&b)
        .key("in-flight")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let url = presigned.uri().to_string();
    let path = url
        .split_once(&format!("127.0.0.1:{}", s.port))
        .unwrap()
        .1
        .to_owned();
    let body: Vec<u8> = (0..4u32 << 20).map(|i| (i % 253) as u8).collect();
    let port = s.port;
    let (half, rest) = body.split_at(body.len() / 2);
    let (half, rest) = (half.to_vec(), rest.to_vec());
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&half).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.signal_term();
    std::thread::sleep(Duration::from_millis(300));
    conn.write_all(&rest).unwrap();
    let mut resp = Vec::new();
    let _ = conn.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "in-flight upload not acknowledged:\n{resp}\n{}",
        s.log()
    );
    let status = s
        .wait_exit(Duration::from_secs(20))
        .expect("fsgate did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}:\n{}", s.log());
    assert!(s.log().contains("audit flushed"), "{}", s.log());

    s.restart();
    let c = client(&s, ROOT_USER, ROOT_PASS);
    let got = c
        .get_object()
        .bucket(&b)
        .key("in-flight")
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == body.as_slice());
    let recs = json_lines(&ok(&s.fsctl(&[
        "audit",
        "query",
        "--bucket",
        &b,
        "--key",
        "in-flight",
    ])));
    assert!(
        recs.iter().any(|r| r["action"] == "s3:PutObject"
            && r["status"] == 200
            && r["bytes_in"].as_u64() >= Some(4 << 20)),
        "{recs:?}"
    );
}
