//! Objects stream through: a 1 GiB upload (one PutObject, streamed from a file) and its
//! download keep the server's peak resident memory far below the object's size.

use aws_sdk_s3::primitives::ByteStream;
use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, unique};

use crate::rust_sdk::client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_streams_through_in_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    let s = Server::start();
    let c = client(&s, ROOT_USER, ROOT_PASS);
    let b = unique("mem");
    c.create_bucket().bucket(&b).send().await.unwrap();
    let before = s.proc_status_kib("VmRSS").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(SIZE).unwrap(); // sparse: the client reads zeros without holding them
    drop(f);
    c.put_object()
        .bucket(&b)
        .key("big")
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    let got = c.get_object().bucket(&b).key("big").send().await.unwrap();
    assert_eq!(got.content_length(), Some(SIZE as i64));
    let mut body = got.body;
    let mut n = 0u64;
    while let Some(chunk) = body.try_next().await.unwrap() {
        assert!(chunk.iter().all(|x| *x == 0));
        n += chunk.len() as u64;
    }
    assert_eq!(n, SIZE);
    let peak = s.proc_status_kib("VmHWM").unwrap();
    eprintln!("server RSS before {before} KiB, peak {peak} KiB over a 1 GiB PUT and GET");
    assert!(
        peak < before + 64 * 1024,
        "peak RSS grew by {} KiB",
        peak - before
    );
}
