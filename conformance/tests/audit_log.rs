//! The tamper-evident audit log (issue 22, item 1): every request's record is a leaf of an
//! RFC 6962 Merkle tree with Ed25519-signed checkpoints at least every second; `fsctl audit
//! export` / `verify` / `prove` / `pubkey` work end to end; tampering with the exported file
//! (10,000 seeded mutations of every kind, forged checkpoints and forged proofs) and with
//! RocksDB's rows directly (the server stopped) is found and named.

use std::path::Path;
use std::time::{Duration, Instant};

use fsgate_auditlog::proof::{ProofDoc, verify_consistency_doc, verify_proof};
use fsgate_auditlog::verify::{Kind, verify_bytes};
use fsgate_auditlog::{Appender, Checkpoint, Frontier, PublicKey, SigningKey};
use fsgate_conformance::{Server, fails, http_status, ok, unique};
use rand::{Rng, SeedableRng};

/// Requests spread over `secs` seconds: anonymous GETs (denied, audited), S3 calls by root,
/// admin calls.
fn traffic(s: &Server, bucket: &str, secs: f64) -> usize {
    let port = port_of(s);
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed().as_secs_f64() < secs {
        for i in 0..10 {
            let _ = http_status(port, &format!("/{bucket}/k{i}"));
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    ok(&s.aws(&["s3api", "put-object", "--bucket", bucket, "--key", "a.txt"]));
    ok(&s.fsctl(&["user", "ls"]));
    n + 2
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}"))
}

/// `fsctl audit verify` of `args`: the JSON report (whatever the exit status).
fn verify(s: &Server, args: &[&str]) -> (bool, serde_json::Value) {
    let mut a = vec!["audit", "verify"];
    a.extend_from_slice(args);
    let o = s.fsctl(&a);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    (o.status.success(), json(&out))
}

#[test]
fn the_log_verifies_and_every_tampering_is_found() {
    let mut s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique("audit");
    ok(&s.aws(&["s3", "mb", &format!("s3://{bucket}")]));
    let started = Instant::now();
    let made = traffic(&s, &bucket, 2.5);

    // The public key, from the server; the key file is private to fsgate's user.
    let pem = ok(&s
        .cmd(fsgate_conformance::bin("fsctl"))
        .args(["audit", "pubkey"])
        .output()
        .unwrap());
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let pubkey = dir.path().join("audit.pub");
    write(&pubkey, pem.as_bytes());
    let key = PublicKey::from_pem(&pem).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(s.data().join("audit-signing-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Export everything; the file verifies offline with the key alone.
    let log = dir.path().join("log.jsonl");
    // Small pages: the export is assembled from many requests, across checkpoints.
    let summary = json(&ok(&s.fsctl(&[
        "audit",
        "export",
        "--out",
        log.to_str().unwrap(),
        "--page-records",
        "97",
    ])));
    let records = summary["records"].as_u64().unwrap();
    assert!(records >= made as u64, "{summary} vs {made} requests");
    let (good, report) = verify(
        &s,
        &[
            "--file",
            log.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
    );
    assert!(good, "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["records"].as_u64(), Some(records));
    assert!(report["first_error"].is_null());
    let checkpoints = report["checkpoints"].as_u64().unwrap();
    assert!(checkpoints >= 2, "{report}");
    // The server's own log verifies too.
    let (good, report) = verify(&s, &[]);
    assert!(good, "{report}");

    // Signed at least every second while records arrive: no record waited over a second
    // (plus its own duration and the commit window) for a checkpoint to cover it.
    let text = std::fs::read(&log).unwrap();
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut pending: Vec<u64> = Vec::new();
    let mut worst = 0u64;
    for l in &lines {
        if let Ok(cp) = Checkpoint::from_line(l) {
            let t = fsgate_auditlog::checkpoint::parse_rfc3339_nanos(&cp.time).unwrap();
            for r in pending.drain(..) {
                worst = worst.max(t.saturating_sub(r));
            }
        } else if let Ok(r) = fsgate_auditlog::record::parse(l) {
            pending.push(
                fsgate_auditlog::checkpoint::parse_rfc3339_nanos(&r.time).unwrap()
                    + r.duration_us * 1000,
            );
        }
    }
    assert!(pending.is_empty(), "the export ends with a checkpoint");
    assert!(
        worst < 1_500_000_000,
        "a record waited {worst} ns for a checkpoint"
    );

    // A time range: fewer records, still verifiable on its own (it starts with a frontier).
    let mid =
        time::OffsetDateTime::now_utc() - (Instant::now() - started) + Duration::from_millis(1200);
    let since = mid
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let part = dir.path().join("part.jsonl");
    let psum = json(&ok(&s.fsctl(&[
        "audit",
        "export",
        "--since",
        &since,
        "--out",
        part.to_str().unwrap(),
    ])));
    assert!(psum["records"].as_u64().unwrap() < records, "{psum}");
    assert!(std::fs::read(&part).unwrap().starts_with(b"{\"frontier\":"));
    let (good, report) = verify(
        &s,
        &[
            "--file",
            part.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
    );
    assert!(good, "{report}");

    // CloudTrail's shape.
    let ct = dir.path().join("ct.json");
    let csum = json(&ok(&s.fsctl(&[
        "audit",
        "export",
        "--format",
        "cloudtrail",
        "--out",
        ct.to_str().unwrap(),
    ])));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&ct).unwrap()).unwrap();
    let events = v["Records"].as_array().unwrap();
    // (The log has grown since: the exports and verifications are audited too.)
    assert_eq!(Some(events.len() as u64), csum["records"].as_u64());
    assert!(events.len() as u64 > records);
    let put = events
        .iter()
        .find(|e| e["eventName"] == "PutObject")
        .unwrap();
    assert_eq!(put["eventSource"], "s3.amazonaws.com");
    assert_eq!(put["requestParameters"]["bucketName"], bucket.as_str());
    assert!(put["eventTime"].as_str().unwrap().ends_with('Z'));

    // A record's proof, from fsctl, verified offline; and every forgery of it refused.
    let put_line = lines
        .iter()
        .find(|l| std::str::from_utf8(l).unwrap().contains("\"s3:PutObject\""))
        .unwrap();
    let id = fsgate_auditlog::record::parse(put_line).unwrap().request_id;
    let proved = json(&ok(&s.fsctl(&["audit", "prove", "--request-id", &id])));
    assert_eq!(proved["verified"], true, "{proved}");
    let proof_file = dir.path().join("proof.json");
    write(&proof_file, proved.to_string().as_bytes());
    let (good, r) = verify(
        &s,
        &[
            "--proof",
            proof_file.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
    );
    assert!(good && r["proves"] == "inclusion", "{r}");
    let proof: ProofDoc = serde_json::from_value(proved["proof"].clone()).unwrap();
    assert_eq!(verify_proof(&proof, &key), Ok(()));
    let size0 = proof
        .consistency
        .as_ref()
        .map(|c| c.old.size)
        .unwrap_or(proof.checkpoint.size);
    let consistency = json(&ok(&s.fsctl(&[
        "audit",
        "prove",
        "--old-size",
        &size0.to_string(),
    ])));
    assert_eq!(consistency["verified"], true, "{consistency}");
    let mut forged_file = proved.clone();
    forged_file["proof"]["record"] =
        serde_json::Value::String(proof.record.replace(&id, &"0".repeat(24)));
    write(&proof_file, forged_file.to_string().as_bytes());
    let (good, r) = verify(
        &s,
        &[
            "--proof",
            proof_file.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
    );
    assert!(!good && r["ok"] == false, "{r}");

    // 10,000 seeded mutations of the export and of the proofs: every one is found.
    let detected = mutations(&text, &key, &proof, 10_000);
    assert_eq!(detected, 10_000);

    // Tampering with RocksDB directly, the server stopped: a changed record, a deleted one,
    // a cut end. Each is named by `fsctl audit verify` against the restarted server.
    s.stop();
    let meta = s.data().join("meta");
    let pristine = dir.path().join("meta.orig");
    copy_dir(&meta, &pristine);
    let victim = records / 2;
    let victim_id = edit_db(&meta, |db| change_record(db, victim));
    s.start_again();
    let (good, r) = verify(&s, &["--pubkey", pubkey.to_str().unwrap()]);
    assert!(!good, "{r}");
    assert_eq!(r["first_error"]["kind"], "changed", "{r}");
    assert_eq!(r["first_error"]["record"].as_u64(), Some(victim), "{r}");
    assert!(
        r["first_error"]["detail"]
            .as_str()
            .unwrap()
            .contains(&victim_id),
        "{r}"
    );

    for (tamper, kind) in [("delete", "missing"), ("truncate", "truncated")] {
        s.stop();
        std::fs::remove_dir_all(&meta).unwrap();
        copy_dir(&pristine, &meta);
        edit_db(&meta, |db| {
            if tamper == "delete" {
                delete_record(db, victim);
            } else {
                truncate_log(db, victim);
            }
            String::new()
        });
        s.start_again();
        // A log cut shorter than its latest checkpoint is reported at start, as a metric
        // (alert FsgateAuditLogTampered); a deleted row only a verification finds.
        let metrics = fsgate_conformance::raw(
            port_of(&s),
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let flagged = if tamper == "truncate" { 1 } else { 0 };
        assert!(
            metrics.contains(&format!("fsgate_audit_log_inconsistent {flagged}")),
            "{tamper}: {}",
            metrics
                .lines()
                .filter(|l| l.contains("audit"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let (good, r) = verify(&s, &["--pubkey", pubkey.to_str().unwrap()]);
        assert!(!good, "{tamper}: {r}");
        assert_eq!(r["first_error"]["kind"], kind, "{tamper}: {r}");
        // After a cut, the restarted server appends its new records (its own requests, signed)
        // where the log now ends: the first position not there is at most a few further.
        let at = r["first_error"]["record"].as_u64().unwrap();
        if tamper == "truncate" {
            assert!((victim..victim + 10).contains(&at), "{tamper}: {r}");
        } else {
            assert_eq!(at, victim, "{tamper}: {r}");
        }
    }

    // Another key's server: the pinned key refuses its checkpoints.
    let other = Server::start();
    ok(&other.fsctl(&["user", "ls"]));
    let (good, r) = verify(&other, &["--pubkey", pubkey.to_str().unwrap()]);
    assert!(!good && r["first_error"]["kind"] == "bad_signature", "{r}");
    // Bad arguments change nothing and say why.
    fails(&s.fsctl(&[
        "audit",
        "verify",
        "--file",
        "/nonexistent",
        "--pubkey",
        pubkey.to_str().unwrap(),
    ]));
    fails(&s.fsctl(&["audit", "prove", "--request-id", "00000000000000000000000f"]));
}

fn port_of(s: &Server) -> u16 {
    s.endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Opens the server's RocksDB (every column family) and runs `f` on it.
fn edit_db(path: &Path, f: impl FnOnce(&rocksdb::DB) -> String) -> String {
    let opts = rocksdb::Options::default();
    let cfs = rocksdb::DB::list_cf(&opts, path).unwrap();
    let db = rocksdb::DB::open_cf(&opts, path, &cfs).unwrap();
    let out = f(&db);
    db.flush().unwrap();
    out
}

/// Record `seq`'s table key (from its block row `B seq/64`: 12-byte key ‖ 32-byte leaf each).
fn table_key(db: &rocksdb::DB, seq: u64) -> Vec<u8> {
    let log = db.cf_handle("auditlog").unwrap();
    let mut k = vec![b'B'];
    k.extend_from_slice(&(seq / 64).to_be_bytes());
    let v = db.get_cf(log, &k).unwrap().unwrap();
    let at = 1 + (seq % 64) as usize * 44;
    v[at..at + 12].to_vec()
}

/// Rewrites record `seq`'s principal, as someone covering their tracks would; its request id.
fn change_record(db: &rocksdb::DB, seq: u64) -> String {
    let audit = db.cf_handle("audit").unwrap();
    let k = table_key(db, seq);
    let v = db.get_cf(audit, &k).unwrap().unwrap();
    assert_eq!(v[0], 3);
    let mut rec: serde_json::Value = serde_json::from_slice(&v[1..]).unwrap();
    rec["principal"] = "someone-else".into();
    let mut nv = vec![3u8];
    nv.extend_from_slice(rec.to_string().as_bytes());
    db.put_cf(audit, &k, nv).unwrap();
    rec["request_id"].as_str().unwrap().to_owned()
}

/// Deletes record `seq`'s row.
fn delete_record(db: &rocksdb::DB, seq: u64) {
    let audit = db.cf_handle("audit").unwrap();
    db.delete_cf(audit, table_key(db, seq)).unwrap();
}

/// Deletes every record from `seq` on, and their places in the tree (the checkpoints stay).
fn truncate_log(db: &rocksdb::DB, seq: u64) {
    let log = db.cf_handle("auditlog").unwrap();
    let audit = db.cf_handle("audit").unwrap();
    let mut block = seq / 64;
    loop {
        let mut k = vec![b'B'];
        k.extend_from_slice(&block.to_be_bytes());
        let Some(v) = db.get_cf(log, &k).unwrap() else {
            break;
        };
        let keep = if block == seq / 64 {
            (seq % 64) as usize
        } else {
            0
        };
        for e in v[1..].chunks(44).skip(keep) {
            db.delete_cf(audit, &e[..12]).unwrap();
        }
        if keep == 0 {
            db.delete_cf(log, &k).unwrap();
        } else {
            db.put_cf(log, &k, &v[..1 + keep * 44]).unwrap();
        }
        block += 1;
    }
    assert!(block > seq / 64);
}

/// Applies `cases` seeded mutations to the exported log and to a proof; returns how many were
/// found. Each kind of tampering must also be named as what it is.
fn mutations(text: &[u8], key: &PublicKey, proof: &ProofDoc, cases: usize) -> usize {
    let lines: Vec<Vec<u8>> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let is_record = |l: &[u8]| l.starts_with(b"{\"seq\":");
    let is_cp = |l: &[u8]| l.starts_with(b"{\"checkpoint\":");
    let records: Vec<usize> = (0..lines.len()).filter(|&i| is_record(&lines[i])).collect();
    let cps: Vec<usize> = (0..lines.len()).filter(|&i| is_cp(&lines[i])).collect();
    let seq_at = |i: usize| fsgate_auditlog::record::seq_of(&lines[i]).unwrap();
    let other = SigningKey::generate().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let mut detected = 0;
    for case in 0..cases {
        let mut l = lines.clone();
        let kind_no = case % 12;
        let (expect, record): (Kind, Option<u64>) = match kind_no {
            // A byte of a record changed (after its position).
            0 => {
                let i = records[rng.random_range(0..records.len())];
                let start = l[i].iter().position(|&b| b == b',').unwrap() + 1;
                let at = rng.random_range(start..l[i].len());
                let b = l[i][at];
                l[i][at] = if b == b'a' {
                    b'b'
                } else if b.is_ascii_graphic() && b != b'"' && b != b'\\' {
                    b'a'
                } else {
                    b'x'
                };
                (Kind::Changed, Some(seq_at(i)))
            }
            // A field rewritten as valid JSON (the principal).
            1 => {
                let i = records[rng.random_range(0..records.len())];
                let mut v: serde_json::Value = serde_json::from_slice(&l[i]).unwrap();
                v["principal"] = format!("mallory{case}").into();
                l[i] = serde_json::to_vec(&v).unwrap();
                (Kind::Changed, Some(seq_at(i)))
            }
            // A record removed.
            2 => {
                let j = rng.random_range(0..records.len() - 1);
                let i = records[j];
                let s = seq_at(i);
                l.remove(i);
                (Kind::Missing, Some(s))
            }
            // A record repeated.
            3 => {
                let i = records[rng.random_range(0..records.len())];
                let s = seq_at(i);
                let copy = l[i].clone();
                l.insert(i + 1, copy);
                (Kind::Inserted, Some(s))
            }
            // Two neighbouring records swapped.
            4 => {
                let pairs: Vec<usize> = records
                    .windows(2)
                    .filter(|w| w[1] == w[0] + 1)
                    .map(|w| w[0])
                    .collect();
                let i = pairs[rng.random_range(0..pairs.len())];
                let s = seq_at(i);
                l.swap(i, i + 1);
                (Kind::Reordered, Some(s))
            }
            // A forged record, with a position of its own, slipped in (before the last record:
            // after it, a record far ahead reads as the records in between missing, which is
            // just as true).
            5 => {
                let i = records[rng.random_range(0..records.len() - 1)];
                let forged = format!(
                    "{{\"seq\":{},\"time\":\"2026-01-01T00:00:00.000000000Z\",\"request_id\":\"forged\"}}",
                    1_000_000 + case
                );
                l.insert(i + 1, forged.into_bytes());
                (Kind::Inserted, Some(1_000_000 + case as u64))
            }
            // The end cut off, the last checkpoint kept.
            6 => {
                let last_cp = *cps.last().unwrap();
                let tail: Vec<usize> = records.iter().copied().filter(|&i| i < last_cp).collect();
                let from = tail[tail.len() - 1 - rng.random_range(0..tail.len().min(20))];
                let s = seq_at(from);
                let kept_cp = l[last_cp].clone();
                l.truncate(from);
                l.push(kept_cp);
                (Kind::Truncated, Some(s))
            }
            // A checkpoint's signature altered.
            7 => {
                let i = cps[rng.random_range(0..cps.len())];
                let mut cp = Checkpoint::from_line(&l[i]).unwrap();
                let mut sig = base64_decode(&cp.signature);
                let bit = rng.random_range(0..sig.len() * 8);
                sig[bit / 8] ^= 1 << (bit % 8);
                cp.signature = base64_encode(&sig);
                l[i] = cp.to_line().into_bytes();
                (Kind::BadSignature, None)
            }
            // A checkpoint's root, size or time changed without the key.
            8 => {
                let i = cps[rng.random_range(0..cps.len())];
                let mut cp = Checkpoint::from_line(&l[i]).unwrap();
                match case % 3 {
                    0 => cp.root = hex_flip(&cp.root, rng.random_range(0..64)),
                    1 => cp.size += 1,
                    _ => {
                        // One digit of the nanoseconds changed.
                        let mut t = cp.time.clone().into_bytes();
                        let at = t.len() - 2;
                        t[at] = if t[at] == b'0' { b'1' } else { b'0' };
                        cp.time = String::from_utf8(t).unwrap();
                    }
                }
                l[i] = cp.to_line().into_bytes();
                (Kind::BadSignature, None)
            }
            // A checkpoint forged with another key over the tampered records.
            9 => {
                let i = records[rng.random_range(0..records.len())];
                let s = seq_at(i);
                let mut v: serde_json::Value = serde_json::from_slice(&l[i]).unwrap();
                v["status"] = 200.into();
                v["decision"] = "allow-forged".into();
                l[i] = serde_json::to_vec(&v).unwrap();
                // Re-sign every checkpoint with the forger's key, over the tampered tree.
                let mut a = Appender::new(Frontier::new());
                for line in &mut l {
                    if is_record(line) {
                        let body = line[line.iter().position(|&b| b == b',').unwrap()..].to_vec();
                        let mut b = vec![b'{'];
                        b.extend_from_slice(&body[1..]);
                        a.append(&[], &b, |_, _, _| {});
                    } else if is_cp(line) {
                        *line = a
                            .checkpoint(&other, 1_800_000_000_000_000_000)
                            .to_line()
                            .into_bytes();
                    }
                }
                let _ = s;
                (Kind::BadSignature, None)
            }
            // Forged inclusion proofs.
            10 => {
                let mut p = proof.clone();
                match case % 5 {
                    0 if !p.inclusion.is_empty() => {
                        let j = rng.random_range(0..p.inclusion.len());
                        p.inclusion[j] = hex_flip(&p.inclusion[j], rng.random_range(0..64));
                    }
                    1 => p.seq += 1,
                    2 => p.record = p.record.replacen("\"status\":", "\"status\":1", 1),
                    3 => {
                        p.inclusion.pop();
                    }
                    _ => p.checkpoint.size += 1,
                }
                if verify_proof(&p, key).is_err() {
                    detected += 1;
                } else {
                    panic!("case {case}: a forged inclusion proof verified");
                }
                continue;
            }
            // Forged consistency proofs.
            _ => {
                let Some(c) = &proof.consistency else {
                    detected += 1;
                    continue;
                };
                let mut c = c.clone();
                match case % 4 {
                    0 if !c.proof.is_empty() => {
                        let j = rng.random_range(0..c.proof.len());
                        c.proof[j] = hex_flip(&c.proof[j], rng.random_range(0..64));
                    }
                    1 => std::mem::swap(&mut c.old, &mut c.new),
                    2 => c.old.size += 1,
                    _ => c.proof.push(c.new.root.clone()),
                }
                if verify_consistency_doc(&c, key).is_err() {
                    detected += 1;
                } else {
                    panic!("case {case}: a forged consistency proof verified");
                }
                continue;
            }
        };
        let mut bytes = l.join(&b'\n');
        bytes.push(b'\n');
        let r = verify_bytes(key.clone(), &bytes);
        let Some(f) = r.first_error else {
            panic!("case {case} (kind {kind_no}): tampering not found");
        };
        detected += 1;
        assert_eq!(f.kind, expect, "case {case}: {}", f.detail);
        if record.is_some() {
            assert_eq!(f.record, record, "case {case}: {}", f.detail);
        }
    }
    detected
}

fn hex_flip(h: &str, at: usize) -> String {
    let mut b = h.as_bytes().to_vec();
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).unwrap()
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A MinIO-style audit webhook receiver (`python/webhook_receiver.py`).
struct Receiver {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Receiver {
    fn start(port: u16, out: &Path) -> Self {
        let child = std::process::Command::new(fsgate_conformance::python())
            .arg(fsgate_conformance::scripts().join("webhook_receiver.py"))
            .arg(port.to_string())
            .arg(out)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            out: out.to_owned(),
        }
    }

    fn entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until an entry of `api` on `object` has come; returns it.
    fn wait_for(&self, api: &str, object: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self
                .entries()
                .into_iter()
                .find(|e| e["entry"]["api"]["name"] == api && e["entry"]["api"]["object"] == object)
            {
                return e;
            }
            assert!(Instant::now() < deadline, "no {api} of {object} delivered");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn metric(s: &Server, name: &str) -> f64 {
    fsgate_conformance::metric(port_of(s), name).unwrap_or(0.0)
}

#[test]
fn records_reach_a_minio_audit_webhook_and_survive_its_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let port = fsgate_conformance::free_port();
    let out = dir.path().join("received.jsonl");
    let receiver = Receiver::start(port, &out);
    let endpoint = format!("http://127.0.0.1:{port}/audit");
    let mut s = Server::start_with_env(
        &[],
        &[
            ("MINIO_AUDIT_WEBHOOK_ENABLE_TEST", "on"),
            ("MINIO_AUDIT_WEBHOOK_ENDPOINT_TEST", endpoint.as_str()),
            ("MINIO_AUDIT_WEBHOOK_AUTH_TOKEN_TEST", "receiver-token"),
        ],
    );
    let bucket = unique("hook");
    ok(&s.aws(&["s3", "mb", &format!("s3://{bucket}")]));
    ok(&s.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        &bucket,
        "--key",
        "w1.txt",
    ]));
    // MinIO's entry, with the bearer token, for the PutObject just made.
    let got = receiver.wait_for("PutObject", "w1.txt");
    assert_eq!(got["auth"], "Bearer receiver-token");
    assert_eq!(got["content_type"], "application/json");
    let e = &got["entry"];
    assert_eq!(e["version"], "1");
    assert_eq!(e["api"]["bucket"], bucket.as_str());
    assert_eq!(e["api"]["statusCode"], 200);
    assert_eq!(e["api"]["status"], "OK");
    assert_eq!(e["remotehost"], "127.0.0.1");
    assert!(e["userAgent"].as_str().unwrap().contains("aws-cli"), "{e}");
    assert_eq!(e["tags"]["decision"], "allow");
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    // The entry is the logged record: same request id as the log's PutObject.
    let proved = json(&ok(&s.fsctl(&[
        "audit",
        "prove",
        "--request-id",
        e["requestID"].as_str().unwrap(),
    ])));
    assert_eq!(proved["verified"], true);

    // The receiver goes down: records keep coming, delivery fails and is retried; fsgate
    // restarts meanwhile; when the receiver is back, every record arrives, in order.
    drop(receiver);
    for k in ["w2.txt", "w3.txt", "w4.txt"] {
        ok(&s.aws(&["s3api", "put-object", "--bucket", &bucket, "--key", k]));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&s, "fsgate_audit_delivery_failures_total") < 1.0 {
        assert!(Instant::now() < deadline, "no delivery failure counted");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(metric(&s, "fsgate_audit_delivery_lag_records") >= 3.0);
    s.stop();
    s.start_again();
    ok(&s.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        &bucket,
        "--key",
        "w5.txt",
    ]));
    let receiver = Receiver::start(port, &out);
    for k in ["w2.txt", "w3.txt", "w4.txt", "w5.txt"] {
        receiver.wait_for("PutObject", k);
    }
    let order: Vec<u64> = receiver
        .entries()
        .iter()
        .map(|e| e["entry"]["tags"]["logPosition"].as_u64().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&s, "fsgate_audit_delivery_lag_records") > 5.0 {
        assert!(Instant::now() < deadline, "the lag did not come down");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every audit record reaches an OpenTelemetry collector as an OTLP log record, in log order,
/// through the collector refusing the first requests; each record's body is its log line,
/// which the audit log proves. Queries by principal and request id answer from the indexes.
#[test]
fn records_reach_an_otlp_collector_and_queries_use_the_indexes() {
    let collector = fsgate_conformance::OtlpReceiver::start(3);
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    let s = Server::start_with(&["--audit-otlp", &endpoint]);
    let bucket = unique("otlp");
    ok(&s.aws(&["s3", "mb", &format!("s3://{bucket}")]));
    let keys: Vec<String> = (0..40).map(|i| format!("o{i}.txt")).collect();
    for k in &keys {
        ok(&s.aws(&["s3api", "put-object", "--bucket", &bucket, "--key", k]));
    }
    let (ak, sk) = fsgate_conformance::add_user(&s, "otto");
    assert!(
        !s.aws_as(&ak, &sk, &["s3", "ls", &format!("s3://{bucket}/")])
            .status
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let received = loop {
        let got = collector.lines();
        let puts = got
            .iter()
            .filter(|r| r["attributes"]["fsgate.action"] == "s3:PutObject")
            .count();
        if puts == keys.len()
            && got
                .iter()
                .any(|r| r["attributes"]["fsgate.principal"] == "otto")
        {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "the collector got {} records: {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        metric(&s, "fsgate_audit_delivery_failures_total") >= 3.0,
        "the collector's 503s were retried"
    );
    // In log order, no gaps, each one a log line of the audit log.
    let positions: Vec<u64> = received
        .iter()
        .map(|r| r["attributes"]["fsgate.log.position"].as_u64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[1] == w[0] + 1),
        "{positions:?}"
    );
    let put = received
        .iter()
        .find(|r| r["attributes"]["fsgate.key"] == "o7.txt")
        .unwrap();
    assert_eq!(put["service"], "fsgate");
    assert_eq!(put["scope"], "fsgate.audit");
    assert_eq!(put["severity"], "INFO");
    assert_eq!(put["attributes"]["fsgate.bucket"], bucket.as_str());
    assert_eq!(put["attributes"]["http.response.status_code"], 200);
    assert!(put["time_unix_nano"].as_u64().unwrap() > 1_700_000_000_000_000_000);
    let line = put["body"].as_str().unwrap();
    let rec: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(rec["key"], "o7.txt");
    let denied = received
        .iter()
        .find(|r| r["attributes"]["fsgate.principal"] == "otto")
        .unwrap();
    assert_eq!(denied["severity"], "WARN");
    assert_eq!(denied["attributes"]["fsgate.decision"], "deny");
    let proved = json(&ok(&s.fsctl(&[
        "audit",
        "prove",
        "--request-id",
        rec["request_id"].as_str().unwrap(),
    ])));
    assert_eq!(proved["verified"], true);

    // Queries by request id, principal and object (answered from the indexes).
    let by_id = fsgate_conformance::json_lines(&ok(&s.fsctl(&[
        "audit",
        "query",
        "--request-id",
        rec["request_id"].as_str().unwrap(),
    ])));
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0]["key"], "o7.txt");
    let otto =
        fsgate_conformance::json_lines(&ok(&s.fsctl(&["audit", "query", "--principal", "otto"])));
    assert!(
        !otto.is_empty() && otto.iter().all(|r| r["principal"] == "otto"),
        "{otto:?}"
    );
    let obj = fsgate_conformance::json_lines(&ok(
        &s.fsctl(&["audit", "query", "--bucket", &bucket, "--key", "o7.txt"])
    ));
    assert_eq!(obj.len(), 1, "{obj:?}");
    let last = fsgate_conformance::json_lines(&ok(
        &s.fsctl(&["audit", "query", "--bucket", &bucket, "--limit", "5"])
    ));
    assert_eq!(last.len(), 5);
    // The most recent, oldest first: the last PUT, then otto's refused listing.
    assert_eq!(last[3]["key"], "o39.txt", "{last:?}");
    assert_eq!(last[4]["principal"], "otto", "{last:?}");
}
