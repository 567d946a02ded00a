//! Store hot paths the load generator cannot isolate: a synced metadata commit (a 4 KiB
//! object written inline), an audit batch (encode + one synced commit of 64 records), a
//! listing page of 1,000 keys out of 1,000,000, and an audit query for one principal's last
//! 1,000 records among 10,000,000 (`FSGATE_BENCH_AUDIT_RECORDS` to change the count; the fill
//! takes minutes). Real RocksDB on a temporary directory.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    reason = "a benchmark fails loudly"
)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use fsgate_store::audit::request_id;
use fsgate_store::list::ListQuery;
use fsgate_store::model::AuditRecord;
use fsgate_store::objects::NewObject;
use fsgate_store::{Store, StoreOptions};

fn md5_of(_: &[u8]) -> [u8; 16] {
    [7; 16]
}

fn metadata_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    s.create_bucket("b", false).unwrap();
    let data = vec![1u8; 4096];
    let n = AtomicU64::new(0);
    c.bench_function("metadata commit: 4 KiB inline PUT, synced", |b| {
        b.iter(|| {
            let k = format!("k{}", n.fetch_add(1, Ordering::Relaxed));
            black_box(
                s.put_object_inline("b", &k, &data, md5_of(&data), NewObject::default())
                    .unwrap(),
            )
        });
    });
}

fn audit_batch(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
    let key = std::sync::Arc::new(fsgate_auditlog::SigningKey::generate().unwrap());
    let w = fsgate_store::audit::AuditWriter::start(s.clone(), 1024, key).unwrap();
    let seq = AtomicU64::new(0);
    c.bench_function(
        "audit: 64 records through the writer (encode, tree, synced commit)",
        |b| {
            b.iter(|| {
                let batch: Vec<AuditRecord> = (0..64)
                    .map(|_| {
                        let i = seq.fetch_add(1, Ordering::Relaxed);
                        let t = 1_790_000_000_000_000_000 + i;
                        AuditRecord {
                            time_ns: t,
                            request_id: request_id(t, u32::try_from(i % 1_000_000).unwrap()),
                            principal: "alice".into(),
                            access_key: "AKIAEXAMPLE".into(),
                            auth: "sigv4".into(),
                            source_ip: "10.0.0.1".into(),
                            user_agent: "aws-cli/2".into(),
                            action: "s3:GetObject".into(),
                            bucket: "team".into(),
                            key: "reports/q3.pdf".into(),
                            decision: "allow".into(),
                            policies: vec!["att-1".into()],
                            status: 200,
                            bytes_out: 4096,
                            duration_us: 900,
                            ..AuditRecord::default()
                        }
                    })
                    .collect();
                for r in black_box(&batch) {
                    w.send_blocking(r);
                }
                w.flush();
            });
        },
    );
}

fn listing(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    // Filling a million keys with synced commits would take minutes: the fill is unsynced.
    let s = Store::open(
        dir.path(),
        StoreOptions {
            sync: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    s.create_bucket("b", false).unwrap();
    for i in 0..1_000_000u32 {
        let k = format!("data/{:02}/{i:07}", i % 100);
        s.put_object_inline("b", &k, b"x", md5_of(b"x"), NewObject::default())
            .unwrap();
    }
    c.bench_function(
        "list 1,000 keys of 1,000,000 (prefix, from the middle)",
        |b| {
            b.iter(|| {
                let page = s
                    .list_objects(
                        "b",
                        &ListQuery {
                            prefix: "data/42/",
                            delimiter: None,
                            start_at: None,
                            start_after: Some("data/42/0500000"),
                            max: 1000,
                        },
                    )
                    .unwrap();
                black_box(page)
            });
        },
    );
}

fn audit_query(c: &mut Criterion) {
    let total: u64 = std::env::var("FSGATE_BENCH_AUDIT_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(
        Store::open(
            dir.path(),
            StoreOptions {
                sync: false,
                ..StoreOptions::default()
            },
        )
        .unwrap(),
    );
    let key = std::sync::Arc::new(fsgate_auditlog::SigningKey::generate().unwrap());
    let w = fsgate_store::audit::AuditWriter::start(s.clone(), 4096, key).unwrap();
    let started = std::time::Instant::now();
    // 1,000 principals over 100 buckets, interleaved as live traffic is.
    for i in 0..total {
        let t = 1_790_000_000_000_000_000 + i * 1000;
        w.send_blocking(&AuditRecord {
            time_ns: t,
            request_id: request_id(t, u32::try_from(i % 1_000_000).unwrap()),
            principal: format!("user{}", i % 1000),
            auth: "sigv4".into(),
            source_ip: "10.0.0.1".into(),
            action: "s3:GetObject".into(),
            bucket: format!("bucket{}", i % 100),
            key: format!("k/{}", i % 5000),
            decision: "allow".into(),
            status: 200,
            bytes_out: 4096,
            ..AuditRecord::default()
        });
    }
    w.flush();
    eprintln!(
        "audit query bench: {total} records written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let filter = fsgate_store::audit::AuditFilter {
        principal: Some("user417".into()),
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(
        s.query_audit(&filter).unwrap().len(),
        1000.min(total as usize / 1000)
    );
    c.bench_function(
        "audit query: one principal's last 1,000 records among all (index)",
        |b| b.iter(|| black_box(s.query_audit(&filter).unwrap())),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = metadata_commit, audit_batch, listing, audit_query
}
criterion_main!(benches);
