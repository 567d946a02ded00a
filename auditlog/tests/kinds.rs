//! Each kind of tampering with a log is found, named, and placed at the right record.

use fsgate_auditlog::record::Record;
use fsgate_auditlog::verify::{Kind, LeavesPart, verify_bytes};
use fsgate_auditlog::{Appender, Frontier, SigningKey};

const RECORDS: u64 = 60;
const PER_CHECKPOINT: u64 = 10;

/// A log of 60 records with a checkpoint every 10, as lines; with or without leaf hints.
fn log(key: &SigningKey, hints: bool) -> Vec<String> {
    let mut a = Appender::new(Frontier::new());
    let mut lines = Vec::new();
    let mut interval = Vec::new();
    let mut leaves = Vec::new();
    for i in 0..RECORDS {
        let id = format!("{:024x}", i + 1);
        let r: Record<&str, Vec<String>> = Record {
            time: "2026-12-07T04:38:57.000000001Z",
            request_id: &id,
            principal: "alice",
            action: "s3:GetObject",
            bucket: "b",
            key: "k",
            status: 200,
            ..Default::default()
        };
        let body = serde_json::to_vec(&r).unwrap_or_default();
        let appended = a.append(&[], &body, |_, _, _| {});
        leaves.push(appended.leaf);
        interval.push(String::from_utf8(appended.stored).unwrap_or_default());
        if (i + 1) % PER_CHECKPOINT == 0 {
            if hints {
                lines.push(LeavesPart::line(i + 1 - PER_CHECKPOINT, &leaves));
            }
            lines.append(&mut interval);
            lines.push(a.checkpoint(key, 1_800_000_000_000_000_000 + i).to_line());
            leaves.clear();
        }
    }
    lines
}

fn check(key: &SigningKey, lines: &[String]) -> Option<(Kind, Option<u64>)> {
    let text = lines.join("\n") + "\n";
    let r = verify_bytes(key.public().clone(), text.as_bytes());
    r.first_error.map(|f| (f.kind, f.record))
}

/// The index of record `seq`'s line.
fn at(lines: &[String], seq: u64) -> usize {
    let prefix = format!("{{\"seq\":{seq},");
    lines
        .iter()
        .position(|l| l.starts_with(&prefix))
        .unwrap_or(usize::MAX)
}

#[test]
fn each_kind_of_tampering_is_named() -> Result<(), Box<dyn std::error::Error>> {
    let key = SigningKey::generate()?;
    for hints in [true, false] {
        let good = log(&key, hints);
        assert_eq!(check(&key, &good), None, "the untouched log verifies");
        let r23 = at(&good, 23);

        let mut l = good.clone();
        l[r23] = l[r23].replace("alice", "mallory");
        let changed_at = if hints { 23 } else { 20 };
        assert_eq!(
            check(&key, &l),
            Some((Kind::Changed, Some(changed_at))),
            "hints {hints}"
        );

        let mut l = good.clone();
        l.remove(r23);
        assert_eq!(check(&key, &l), Some((Kind::Missing, Some(23))));

        let mut l = good.clone();
        l.insert(r23, good[r23].clone());
        assert_eq!(check(&key, &l), Some((Kind::Inserted, Some(23))));

        let mut l = good.clone();
        l.swap(r23, r23 + 1);
        assert_eq!(check(&key, &l), Some((Kind::Reordered, Some(23))));

        let mut l = good.clone();
        l.insert(r23 + 1, good[r23].replace("\"seq\":23,", "\"seq\":1000,"));
        assert_eq!(check(&key, &l), Some((Kind::Inserted, Some(1000))));

        // The last five records gone, the last checkpoint kept.
        let mut l = good.clone();
        let r55 = at(&good, 55);
        l.drain(r55..r55 + 5);
        assert_eq!(check(&key, &l), Some((Kind::Truncated, Some(55))));

        // Cut after record 57: no checkpoint covers 50..57.
        let mut l = good.clone();
        l.truncate(at(&good, 57) + 1);
        assert_eq!(check(&key, &l), Some((Kind::Truncated, Some(50))));

        // A checkpoint's signature altered, one signed by another key, and one moved early.
        let cp = at(&good, 29) + 1;
        let mut l = good.clone();
        l[cp] = l[cp].replace("\"signature\":\"", "\"signature\":\"AA");
        assert_eq!(check(&key, &l).map(|f| f.0), Some(Kind::BadSignature));
        let other = SigningKey::generate()?;
        let mut l = good.clone();
        let mut a = Appender::new(Frontier::new());
        a.append(&[], b"{\"x\":1}", |_, _, _| {});
        l[cp] = a.checkpoint(&other, 1_800_000_000_000_000_029).to_line();
        assert_eq!(check(&key, &l).map(|f| f.0), Some(Kind::BadSignature));
        let mut l = good.clone();
        let moved = l.remove(cp);
        l.insert(at(&good, 25), moved);
        assert_eq!(check(&key, &l), Some((Kind::Reordered, Some(25))));
    }
    Ok(())
}
