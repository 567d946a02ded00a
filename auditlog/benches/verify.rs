//! How fast a log verifies: records per second through `verify_bytes` (hash every line, rebuild
//! the tree, check each checkpoint's signature and root), on records the size the server writes.
//! Target: at least 1 million records per second on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fsgate_auditlog::record::Record;
use fsgate_auditlog::verify::LeavesPart;
use fsgate_auditlog::{Appender, Frontier, SigningKey};

const RECORDS: u64 = 200_000;
/// Records per checkpoint: the server signs about once a second, ~7,000 requests at load.
const PER_CHECKPOINT: u64 = 7_000;

fn log(key: &SigningKey) -> Vec<u8> {
    let mut a = Appender::new(Frontier::new());
    let mut out = Vec::new();
    let mut interval = Vec::new();
    let mut leaves = Vec::new();
    let policies = ["default-readwrite".to_owned()];
    for i in 0..RECORDS {
        let request_id = format!("{:016x}{:08x}", 1_800_000_000_000_000_000u64 + i * 1000, i);
        let key_name = format!("photos/2026/12/{i:08}.jpg");
        let r: Record<&str, &[String]> = Record {
            time: "2026-12-07T04:38:57.123456789Z",
            request_id: &request_id,
            principal: "alice",
            access_key: "AKIAIOSFODNN7EXAMPLE",
            auth: "sigv4",
            source_ip: "10.1.2.3",
            user_agent: "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 botocore/2.4.5",
            action: "s3:GetObject",
            bucket: "photos",
            key: &key_name,
            decision: "allow",
            policies: &policies,
            status: 200,
            bytes_out: 4096,
            duration_us: 180,
            ..Default::default()
        };
        let body = serde_json::to_vec(&r).unwrap_or_default();
        let appended = a.append(&[], &body, |_, _, _| {});
        leaves.push(appended.leaf);
        interval.extend_from_slice(&appended.stored);
        interval.push(b'\n');
        if (i + 1) % PER_CHECKPOINT == 0 || i + 1 == RECORDS {
            // As the server exports it: the interval's leaf hashes, its records, its checkpoint.
            let from = i + 1 - leaves.len() as u64;
            out.extend_from_slice(LeavesPart::line(from, &leaves).as_bytes());
            out.push(b'\n');
            out.append(&mut interval);
            leaves.clear();
            out.extend_from_slice(
                a.checkpoint(key, 1_800_000_000_000_000_000 + i)
                    .to_line()
                    .as_bytes(),
            );
            out.push(b'\n');
        }
    }
    out
}

fn verify(c: &mut Criterion) {
    let Ok(key) = SigningKey::generate() else {
        return;
    };
    let log = log(&key);
    let mut g = c.benchmark_group("audit_log");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RECORDS));
    g.bench_function("verify_200k_records", |b| {
        b.iter(|| {
            let report = fsgate_auditlog::verify::verify_bytes(key.public().clone(), &log);
            assert!(report.ok, "{report:?}");
        });
    });
    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
