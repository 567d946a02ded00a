//! Metadata on PostgreSQL (`fsgate serve --meta postgres://…`, issue 25): a real PostgreSQL
//! the test starts, a real fsgate and real clients. Objects small (inline) and large (blobs),
//! versions, multipart, IAM and the audit log live in PostgreSQL and survive restarts of
//! fsgate; PostgreSQL restarted under load costs failed requests (503, retried by SDKs), never
//! the server or an acknowledged write, and the `fsgate_postgres_*` metrics show it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, VersioningConfiguration,
};
use fsgate_conformance::{Postgres, ROOT_PASS, ROOT_USER, Server, add_user, http_status, ok};

use crate::rust_sdk::client;

fn body(tag: &str, len: usize) -> Vec<u8> {
    tag.bytes().cycle().take(len).collect()
}

/// The sum of every series of `/metrics` named `name` whose labels include `label`
/// (`kind="unavailable"`; "" for all), from an unauthenticated scrape (off the async workers).
async fn metric_sum(port: u16, name: &'static str, label: &'static str) -> f64 {
    let text = tokio::task::spawn_blocking(move || {
        fsgate_conformance::raw(
            port,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap()
    .expect("/metrics answered");
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
                && l.contains(label)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn get(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    c.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}: {e:?}"))
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_on_postgres_survives_restarts() {
    let pg = Postgres::start();
    let url = pg.url("fsgate");
    let mut s = Server::start_with(&["--meta", &url]);
    let c = client(&s, ROOT_USER, ROOT_PASS);
    c.create_bucket().bucket("pgb").send().await.unwrap();
    c.put_bucket_versioning()
        .bucket("pgb")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Small objects live in the metadata (inline), large ones in blobs.
    let mut first_versions = Vec::new();
    for (key, len) in [("small", 2_000), ("large", 400_000)] {
        let v1 = c
            .put_object()
            .bucket("pgb")
            .key(key)
            .body(ByteStream::from(body("one", len)))
            .send()
            .await
            .unwrap();
        first_versions.push(v1.version_id.unwrap());
        c.put_object()
            .bucket("pgb")
            .key(key)
            .body(ByteStream::from(body("two", len)))
            .send()
            .await
            .unwrap();
    }
    // A multipart upload of two parts.
    let up = c
        .create_multipart_upload()
        .bucket("pgb")
        .key("multi")
        .send()
        .await
        .unwrap();
    let id = up.upload_id.unwrap();
    let mut parts = Vec::new();
    for (n, len) in [(1, 5 << 20), (2, 1000)] {
        let p = c
            .upload_part()
            .bucket("pgb")
            .key("multi")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(body(&format!("p{n}"), len)))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag.unwrap())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket("pgb")
        .key("multi")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Listing walks PostgreSQL's order: 250 keys over three pages.
    for i in 0..250 {
        c.put_object()
            .bucket("pgb")
            .key(format!("many/{i:03}"))
            .body(ByteStream::from(vec![b'x'; 10]))
            .send()
            .await
            .unwrap();
    }
    let (ak, sk) = add_user(&s, "pguser");

    // The metadata is in PostgreSQL, not in a RocksDB under the data directory.
    assert!(!s.data().join("meta").exists(), "a RocksDB was created");
    let rows: u64 = pg
        .psql("fsgate", "SELECT count(*) FROM fsgate_kv")
        .trim()
        .parse()
        .unwrap();
    assert!(rows > 250, "{rows} rows in fsgate_kv");

    s.restart();
    let c = client(&s, ROOT_USER, ROOT_PASS);
    assert_eq!(get(&c, "pgb", "small").await, body("two", 2_000));
    assert_eq!(get(&c, "pgb", "large").await, body("two", 400_000));
    let mut joined = body("p1", 5 << 20);
    joined.extend(body("p2", 1000));
    assert_eq!(get(&c, "pgb", "multi").await, joined);
    for (key, v1) in ["small", "large"].iter().zip(&first_versions) {
        let old = c
            .get_object()
            .bucket("pgb")
            .key(*key)
            .version_id(v1)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .to_vec();
        let len = if *key == "small" { 2_000 } else { 400_000 };
        assert_eq!(old, body("one", len), "{key} version 1");
    }
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket("pgb")
            .prefix("many/")
            .max_keys(100)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        keys.extend(page.contents().iter().filter_map(|o| o.key.clone()));
        token = page.next_continuation_token;
        if token.is_none() {
            break;
        }
    }
    let want: Vec<String> = (0..250).map(|i| format!("many/{i:03}")).collect();
    assert_eq!(keys, want);
    // The user made before the restart is known after it (IAM in PostgreSQL): its key signs
    // (a user with no policy is denied, not unknown).
    let u = client(&s, &ak, &sk);
    let denied = u.list_buckets().send().await.unwrap_err();
    let code = denied.as_service_error().and_then(|e| e.meta().code());
    assert_eq!(code, Some("AccessDenied"), "{denied:?}");
    // The audit log is in PostgreSQL too, and verifies.
    let v: serde_json::Value =
        serde_json::from_str(ok(&s.fsctl(&["audit", "verify"])).trim()).unwrap();
    assert!(v["records"].as_u64().unwrap() > 250, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_nothing_acknowledged() {
    let pg = Postgres::start();
    let url = pg.url("fsgate");
    let mut s = Server::start_with(&["--meta", &url]);
    // Without the SDK's retries: each refusal is seen.
    let c = aws_sdk_s3::Client::from_conf(
        client(&s, ROOT_USER, ROOT_PASS)
            .config()
            .to_builder()
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    );
    c.create_bucket().bucket("load").send().await.unwrap();

    // Writers put numbered objects until told to stop, recording which were acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (c, stop, next) = (c.clone(), stop.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            let (mut acked, mut failed) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let len = if n % 2 == 0 { 1_000 } else { 200_000 };
                let r = c
                    .put_object()
                    .bucket("load")
                    .key(format!("k{n}"))
                    .body(ByteStream::from(body(&format!("{n}."), len)))
                    .send()
                    .await;
                match r {
                    Ok(_) => acked.push(n),
                    Err(e) => {
                        let status = e.raw_response().map(|r| r.status().as_u16());
                        failed.push((n, status));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (acked, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Round trips are timed by operation; the sessions are open.
    let port = s.port;
    assert!(metric_sum(port, "fsgate_postgres_seconds_count", "op=\"commit\"").await > 0.0);
    assert!(metric_sum(port, "fsgate_postgres_seconds_count", "op=\"get\"").await > 0.0);
    assert!(metric_sum(port, "fsgate_postgres_connections", "").await >= 1.0);
    assert_eq!(
        metric_sum(port, "fsgate_postgres_errors_total", "").await,
        0.0,
        "errors before the outage"
    );
    pg.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ready = tokio::task::spawn_blocking(move || http_status(port, "/health/ready"));
    assert_eq!(
        ready.await.unwrap(),
        Some(503),
        "ready while PostgreSQL is down"
    );
    // Longer than a request waits for a connection (3 s): requests fail meanwhile.
    tokio::time::sleep(Duration::from_secs(5)).await;
    pg.start_again();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ready = tokio::task::spawn_blocking(move || http_status(port, "/health/ready"));
    assert_eq!(
        ready.await.unwrap(),
        Some(200),
        "not ready after PostgreSQL came back"
    );
    stop.store(true, Ordering::SeqCst);
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    for w in writers {
        let (a, f) = w.await.unwrap();
        acked.extend(a);
        failed.extend(f);
    }
    // The server stayed up; the outage cost requests, each a clean 503.
    assert!(
        s.wait_exit(Duration::from_millis(10)).is_none(),
        "fsgate exited:\n{}",
        s.log()
    );
    assert!(
        !failed.is_empty(),
        "no request failed while PostgreSQL was down"
    );
    for (n, status) in &failed {
        assert_eq!(
            *status,
            Some(503),
            "k{n} failed without a 503:\n{}",
            s.log()
        );
    }
    // The metrics saw the outage: failures of kind `unavailable`, connections refused, and
    // sessions open again after it.
    let unavailable =
        metric_sum(port, "fsgate_postgres_errors_total", "kind=\"unavailable\"").await;
    assert!(
        unavailable >= failed.len() as f64,
        "{unavailable} unavailable errors counted for {} refused requests",
        failed.len()
    );
    assert!(metric_sum(port, "fsgate_postgres_connects_total", "result=\"failed\"").await >= 1.0);
    assert!(metric_sum(port, "fsgate_postgres_connections", "").await >= 1.0);
    // Writes succeed again after the restart.
    let after = acked
        .iter()
        .filter(|n| **n > failed.iter().map(|f| f.0).max().unwrap())
        .count();
    assert!(
        after > 0,
        "no write acknowledged after PostgreSQL came back"
    );
    // Every acknowledged write reads back whole, also after restarting fsgate.
    s.restart();
    let c = client(&s, ROOT_USER, ROOT_PASS);
    for n in &acked {
        let len = if n % 2 == 0 { 1_000 } else { 200_000 };
        assert_eq!(
            get(&c, "load", &format!("k{n}")).await,
            body(&format!("{n}."), len),
            "k{n}"
        );
    }
    let v: serde_json::Value =
        serde_json::from_str(ok(&s.fsctl(&["audit", "verify"])).trim()).unwrap();
    assert!(
        v["records"].as_u64().unwrap() as usize >= acked.len(),
        "{v}"
    );
    eprintln!(
        "postgres restart: {} writes acknowledged, {} refused with 503 during the outage",
        acked.len(),
        failed.len()
    );
}
