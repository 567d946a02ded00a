//! Crash test: kill -9 the server in the middle of single and multipart uploads, restart it,
//! and check that every acknowledged object reads back byte for byte, that no partial object
//! is visible, and that orphaned temporary data and unreferenced blobs are collected.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, unique};
use sha2::{Digest, Sha256};

use crate::rust_sdk::client;

/// Deterministic content for a key: any object visible under that key must be exactly this.
fn content_for(key: &str, len: usize) -> Vec<u8> {
    let seed = Sha256::digest(key.as_bytes());
    (0..len).map(|i| seed[i % 32] ^ (i / 32) as u8).collect()
}

fn count_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += count_files(&p);
            } else {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_during_uploads_loses_nothing_acknowledged() {
    kill9_during_uploads(&[]).await;
}

/// The same with multipart parts (5 MiB) written past the page cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_during_direct_writes_loses_nothing_acknowledged() {
    kill9_during_uploads(&["--direct-writes", "on"]).await;
}

async fn kill9_during_uploads(extra: &[&str]) {
    let mut s = Server::start_with(extra);
    let c = client(&s, ROOT_USER, ROOT_PASS);
    let b = unique("crash");
    c.create_bucket().bucket(&b).send().await.unwrap();
    let acked: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();

    let mut tasks = Vec::new();
    for w in 0..6 {
        let (c, b, acked) = (c.clone(), b.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("single/{w}/{i}");
                let len = 1000 + (i * 7919 + w * 104_729) % 300_000;
                let r = c
                    .put_object()
                    .bucket(&b)
                    .key(&key)
                    .body(ByteStream::from(content_for(&key, len)))
                    .send()
                    .await;
                if r.is_err() {
                    return;
                }
                acked.lock().unwrap().insert(key, len);
            }
        }));
    }
    for w in 0..2 {
        let (c, b, acked) = (c.clone(), b.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("multi/{w}/{i}");
                let part = 5 * 1024 * 1024;
                let len = part + 1000 + i * 13;
                let data = content_for(&key, len);
                let Ok(up) = c
                    .create_multipart_upload()
                    .bucket(&b)
                    .key(&key)
                    .send()
                    .await
                else {
                    return;
                };
                let uid = up.upload_id().unwrap_or_default().to_owned();
                let mut parts = Vec::new();
                for (n, chunk) in [(1, &data[..part]), (2, &data[part..])] {
                    let Ok(r) = c
                        .upload_part()
                        .bucket(&b)
                        .key(&key)
                        .upload_id(&uid)
                        .part_number(n)
                        .body(ByteStream::from(chunk.to_vec()))
                        .send()
                        .await
                    else {
                        return;
                    };
                    parts.push(
                        CompletedPart::builder()
                            .part_number(n)
                            .e_tag(r.e_tag().unwrap_or_default())
                            .build(),
                    );
                }
                let done = c
                    .complete_multipart_upload()
                    .bucket(&b)
                    .key(&key)
                    .upload_id(&uid)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await;
                if done.is_err() {
                    return;
                }
                acked.lock().unwrap().insert(key, len);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "too few uploads acknowledged before the kill: {}",
        acked.len()
    );

    // Leftovers a crash could leave: a staged file and a blob nothing refers to.
    std::fs::write(s.data().join("tmp").join("leftover"), b"partial upload").unwrap();
    let orphan = s.data().join("blobs/00/00");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join(format!("0000{}", "ab".repeat(30))), b"orphan").unwrap();

    s.restart();
    let c = client(&s, ROOT_USER, ROOT_PASS);
    for (key, len) in &acked {
        let got = c
            .get_object()
            .bucket(&b)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("acknowledged {key} lost: {e:?}"));
        let data = got.body.collect().await.unwrap().into_bytes();
        assert!(
            data.as_ref() == content_for(key, *len).as_slice(),
            "{key} corrupt after crash"
        );
    }
    // Nothing partial is visible: every listed object is whole (its content is a function of its key).
    let mut visible = 0usize;
    let mut blobs_expected = 0usize;
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket(&b)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        for o in page.contents() {
            let key = o.key().unwrap();
            let got = c.get_object().bucket(&b).key(key).send().await.unwrap();
            let data = got.body.collect().await.unwrap().into_bytes();
            assert_eq!(data.len() as i64, o.size().unwrap());
            assert!(
                data.as_ref() == content_for(key, data.len()).as_slice(),
                "partial or corrupt object {key}"
            );
            visible += 1;
            // Objects up to 64 KiB live inline in RocksDB (store/FORMAT.md): no blob file.
            blobs_expected += if key.starts_with("multi/") {
                2
            } else {
                usize::from(data.len() > 64 * 1024)
            };
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert!(visible >= acked.len());
    // Parts of uploads that never completed keep their blobs until aborted.
    let uploads = c.list_multipart_uploads().bucket(&b).send().await.unwrap();
    for u in uploads.uploads() {
        let parts = c
            .list_parts()
            .bucket(&b)
            .key(u.key().unwrap())
            .upload_id(u.upload_id().unwrap())
            .send()
            .await
            .unwrap();
        blobs_expected += parts.parts().len();
    }
    assert_eq!(
        count_files(&s.data().join("tmp")),
        0,
        "temporary files survived recovery"
    );
    assert_eq!(
        count_files(&s.data().join("blobs")),
        blobs_expected,
        "unreferenced blobs survived recovery"
    );
    assert!(
        s.log().contains("recovery collected leftovers"),
        "{}",
        s.log()
    );
}
