//! Blobs in an S3-compatible store (`fsgate serve --blobs s3://…`, issue 25). The store is a
//! second real fsgate (as the issue allows: "or another fsgate"); the gateway under test keeps
//! its metadata in RocksDB and every blob in the other's bucket, named by its SHA-256 as on
//! disk. Objects of every size read back whole, also in ranges across multipart-upload parts
//! and after a restart; identical content is stored once; a blob whose last reference goes is
//! removed from the bucket; bytes changed behind fsgate's back are never served (the blob is
//! quarantined); the store away costs 503s, never the server.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server};
use sha2::{Digest, Sha256};

use crate::rust_sdk::client;

/// `len` bytes that differ from block to block (so a range tells parts apart).
fn content(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).to_le_bytes()[(i % 7) % 8] ^ tag)
        .collect()
}

fn blob_key(data: &[u8]) -> String {
    let hex = hex::encode(Sha256::digest(data));
    format!("gw/blobs/{}/{hex}", &hex[..2])
}

async fn try_get(
    c: &aws_sdk_s3::Client,
    key: &str,
    range: Option<&str>,
) -> Result<Vec<u8>, String> {
    let out = c
        .get_object()
        .bucket("objects")
        .key(key)
        .set_range(range.map(str::to_owned))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(out
        .body
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_vec())
}

async fn put(c: &aws_sdk_s3::Client, key: &str, data: &[u8]) -> Result<(), String> {
    c.put_object()
        .bucket("objects")
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?}: {e:?}", e.raw_response().map(|r| r.status().as_u16())))
}

/// Keys in the backing bucket under `prefix`.
async fn stored(backing: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    let out = backing
        .list_objects_v2()
        .bucket("fsgate-blobs")
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_live_in_another_s3_store() {
    let mut backing = Server::start();
    let bc = client(&backing, ROOT_USER, ROOT_PASS);
    bc.create_bucket()
        .bucket("fsgate-blobs")
        .send()
        .await
        .unwrap();
    let url = format!(
        "s3://fsgate-blobs/gw?endpoint=http%3A%2F%2F127.0.0.1%3A{}",
        backing.port
    );
    let mut s = Server::start_with_env(
        &["--blobs", &url],
        &[
            ("FSGATE_BLOBS_ACCESS_KEY", ROOT_USER),
            ("FSGATE_BLOBS_SECRET_KEY", ROOT_PASS),
        ],
    );
    // Without the SDK's retries: each refusal is seen.
    let c = aws_sdk_s3::Client::from_conf(
        client(&s, ROOT_USER, ROOT_PASS)
            .config()
            .to_builder()
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    );
    c.create_bucket().bucket("objects").send().await.unwrap();

    // Inline (metadata only), one PutObject, and a multipart upload of 16 MiB parts.
    let small = content(1, 2_000);
    let medium = content(2, 400_000);
    let large = content(3, (40 << 20) + 12_345);
    for (key, data) in [("small", &small), ("medium", &medium), ("large", &large)] {
        put(&c, key, data).await.unwrap();
    }
    for (key, data) in [("small", &small), ("medium", &medium), ("large", &large)] {
        assert!(try_get(&c, key, None).await.unwrap() == *data, "{key}");
    }
    // A range across the first part boundary, and one at the end.
    let across = try_get(&c, "large", Some("bytes=16777000-16778999"))
        .await
        .unwrap();
    assert!(across == large[16_777_000..16_779_000]);
    let tail = try_get(&c, "large", Some("bytes=-100")).await.unwrap();
    assert!(tail == large[large.len() - 100..]);

    // The blobs are in the other store under their SHA-256, not on this one's disk.
    let blobs = stored(&bc, "gw/blobs/").await;
    assert_eq!(blobs.len(), 2, "{blobs:?}");
    assert!(blobs.contains(&blob_key(&medium)), "{blobs:?}");
    assert!(blobs.contains(&blob_key(&large)), "{blobs:?}");
    let local = s.data().join("blobs");
    assert!(
        !local.exists() || std::fs::read_dir(&local).unwrap().next().is_none(),
        "blob files under the data directory"
    );

    // The same content under another key is stored once; the last reference removes it.
    put(&c, "medium-again", &medium).await.unwrap();
    assert_eq!(stored(&bc, "gw/blobs/").await.len(), 2);
    c.delete_object()
        .bucket("objects")
        .key("medium")
        .send()
        .await
        .unwrap();
    assert!(stored(&bc, "gw/blobs/").await.contains(&blob_key(&medium)));
    c.delete_object()
        .bucket("objects")
        .key("medium-again")
        .send()
        .await
        .unwrap();
    assert_eq!(stored(&bc, "gw/blobs/").await, vec![blob_key(&large)]);

    // Everything survives a restart of the gateway.
    s.restart();
    let c2 = client(&s, ROOT_USER, ROOT_PASS);
    assert!(try_get(&c2, "large", None).await.unwrap() == large);
    assert!(try_get(&c2, "small", None).await.unwrap() == small);

    // Bytes changed in the bucket behind fsgate's back are never served; the blob is put
    // out of service (quarantined).
    let mut changed = large.clone();
    changed[30 << 20] ^= 0x40;
    bc.put_object()
        .bucket("fsgate-blobs")
        .key(blob_key(&large))
        .body(ByteStream::from(changed))
        .send()
        .await
        .unwrap();
    let served = try_get(&c, "large", None).await;
    assert!(
        served.as_ref().is_err() || served.as_ref().is_ok_and(|b| *b == large),
        "changed bytes were served"
    );
    assert!(served.is_err(), "the change went unnoticed");
    let quarantined = format!("gw/quarantine/{}", hex::encode(Sha256::digest(&large)));
    let mut moved = false;
    for _ in 0..50 {
        if stored(&bc, "gw/quarantine/").await.contains(&quarantined) {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moved, "the blob was not quarantined:\n{}", s.log());

    // The store away: requests that need it get 503 and nothing changes; the server stays
    // up and serves again when the store is back.
    backing.stop();
    let refused = put(&c, "while-away", &medium).await.unwrap_err();
    assert!(refused.starts_with("Some(503)"), "{refused}");
    assert!(try_get(&c, "small", None).await.unwrap() == small);
    assert!(
        try_get(&c, "while-away", None).await.is_err(),
        "a refused write is visible"
    );
    backing.start_again();
    put(&c, "after", &medium).await.unwrap();
    assert!(try_get(&c, "after", None).await.unwrap() == medium);
    assert!(
        s.wait_exit(Duration::from_millis(10)).is_none(),
        "fsgate exited:\n{}",
        s.log()
    );
}
