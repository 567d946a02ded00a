//! Log delivery: on a timer, each bucket with logging gets the audit records since its last
//! delivery written as log objects into its target bucket (keys: the prefix, then
//! `YYYY-MM-DD-HH-MM-SS-` and 16 hex digits; at most `MAX_OBJECT` bytes each), then its
//! delivery mark moves on. Records are taken up to `SETTLE` before now, so the audit writer's
//! group commits are in; a crash between writing objects and moving the mark delivers those
//! records again (at least once, as AWS's best-effort delivery).

use std::sync::Arc;
use std::time::Duration;

use md5::Digest as _;

use fsgate_store::audit::AuditFilter;
use fsgate_store::objects::NewObject;
use fsgate_store::{Store, StoreResult, now_ns};

use super::{DELIVERED_DOC, DOC, Logging, log_line};

/// Largest log object.
const MAX_OBJECT: usize = 60 * 1024;
/// How far behind now delivery stays, so that every record up to it is written.
const SETTLE: u64 = 2_000_000_000;
/// Most records one bucket delivers per pass.
const MAX_RECORDS: usize = 100_000;

/// Delivers every bucket's new records once; returns how many log objects it wrote.
pub fn run_once(store: &Store, root_name: &str) -> StoreResult<usize> {
    let until = now_ns().saturating_sub(SETTLE);
    let mut written = 0;
    for (bucket, doc) in store.bucket_configs(DOC)? {
        let Ok(logging) = serde_json::from_slice::<Logging>(&doc) else {
            continue;
        };
        let since = store
            .bucket_config(&bucket, DELIVERED_DOC)?
            .and_then(|d| String::from_utf8(d).ok()?.parse::<u64>().ok())
            .unwrap_or(until);
        if since >= until {
            continue;
        }
        let mut records = store.query_audit(&AuditFilter {
            since_ns: Some(since + 1),
            until_ns: Some(until),
            bucket: Some(bucket.clone()),
            limit: MAX_RECORDS,
            ..AuditFilter::default()
        })?;
        records.sort_by_key(|r| r.time_ns);
        let owner = crate::ownership::bucket_owner(store, &bucket)?;
        let mut chunk = String::new();
        for r in &records {
            let line = log_line(r, &owner, root_name);
            if !chunk.is_empty() && chunk.len() + line.len() + 1 > MAX_OBJECT {
                deliver(store, &logging, &std::mem::take(&mut chunk))?;
                written += 1;
            }
            chunk.push_str(&line);
            chunk.push('\n');
        }
        if !chunk.is_empty() {
            deliver(store, &logging, &chunk)?;
            written += 1;
        }
        let mark = records.last().map_or(until, |r| r.time_ns.max(since));
        // Moving the mark to `until` when nothing came keeps the next query short.
        let mark = if records.len() < MAX_RECORDS {
            until
        } else {
            mark
        };
        store.set_bucket_config(&bucket, DELIVERED_DOC, Some(mark.to_string().as_bytes()))?;
    }
    Ok(written)
}

/// Writes one log object into the target bucket (a target that is gone drops the records, as
/// AWS does).
fn deliver(store: &Store, logging: &Logging, text: &str) -> StoreResult<()> {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year]-[month]-[day]-[hour]-[minute]-[second]"
        ))
        .unwrap_or_default();
    let unique: u64 = rand::random();
    let key = format!("{}{stamp}-{unique:016X}", logging.target_prefix);
    let md5: [u8; 16] = md5::Md5::digest(text.as_bytes()).into();
    let new = NewObject {
        headers: fsgate_store::model::ObjectHeaders {
            content_type: Some("text/plain".into()),
            ..Default::default()
        },
        checksums: Vec::new(),
        extras: fsgate_store::model::ObjectExtras::default(),
        cond: fsgate_store::objects::WriteCondition::default(),
        plaintext: None,
    };
    match store.put_object_inline(&logging.target_bucket, &key, text.as_bytes(), md5, new) {
        Ok(_) | Err(fsgate_store::StoreError::NoSuchBucket) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs `run_once` every `every` on a blocking thread.
pub fn spawn(store: Arc<Store>, root_name: String, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let (s, root) = (store.clone(), root_name.clone());
            match tokio::task::spawn_blocking(move || run_once(&s, &root)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "access log delivery failed"),
                Err(e) => tracing::warn!(error = %e, "access log delivery panicked"),
            }
        }
    });
}
