//! The lifecycle worker: one pass over every bucket's rules, run on a timer.
//!
//! The worker's clock is a parameter (`run_once(store, audit, now_ns)`), so a test (or an
//! operator, through `POST /admin/v1/lifecycle/run`) can apply the rules as of any time.
//! Every action it takes is an audit record with principal `lifecycle`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Serialize;

use fsgate_store::audit::{AuditWriter, request_id};
use fsgate_store::model::AuditRecord;
use fsgate_store::versions::{VersionListEntry, VersionQuery};
use fsgate_store::{Store, StoreError, StoreResult, now_ns};

use super::{DOC, Rule};

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Current versions expired (deleted, or hidden by a delete marker when versioned).
    pub expired: u64,
    /// Noncurrent versions removed.
    pub noncurrent_removed: u64,
    /// Expired delete markers removed.
    pub markers_removed: u64,
    /// Multipart uploads aborted.
    pub uploads_aborted: u64,
    /// Versions a rule matched but Object Lock protects.
    pub skipped_locked: u64,
}

static SEQ: AtomicU32 = AtomicU32::new(0x8000_0000);

fn audit(audit: &AuditWriter, action: &str, bucket: &str, key: &str, rule: &str, status: u16) {
    let time_ns = now_ns();
    audit.send_blocking(&AuditRecord {
        time_ns,
        request_id: request_id(time_ns, SEQ.fetch_add(1, Ordering::Relaxed)),
        principal: "lifecycle".into(),
        auth: "internal".into(),
        user_agent: "fsgate-lifecycle".into(),
        action: action.into(),
        bucket: bucket.into(),
        key: key.into(),
        decision: "allow".into(),
        policies: vec![format!("lifecycle:{rule}")],
        status,
        ..AuditRecord::default()
    });
}

/// Loads every bucket's rules.
fn all_rules(store: &Store) -> StoreResult<Vec<(String, Vec<Rule>)>> {
    let mut out = Vec::new();
    for (bucket, doc) in store.bucket_configs(DOC)? {
        match serde_json::from_slice::<Vec<Rule>>(&doc) {
            Ok(rules) => out.push((bucket, rules)),
            Err(e) => tracing::error!(bucket, error = %e, "unreadable lifecycle rules skipped"),
        }
    }
    Ok(out)
}

/// Applies every bucket's rules as of `now` (nanoseconds). Blocking.
pub fn run_once(store: &Store, log: &AuditWriter, now: u64) -> StoreResult<Report> {
    let mut report = Report::default();
    for (bucket, rules) in all_rules(store)? {
        let rules: Vec<Rule> = rules.into_iter().filter(|r| r.enabled).collect();
        if rules.is_empty() {
            continue;
        }
        apply_to_versions(store, log, &bucket, &rules, now, &mut report)?;
        abort_uploads(store, log, &bucket, &rules, now, &mut report)?;
    }
    Ok(report)
}

/// The outcome of a delete the worker attempted.
fn note(
    r: StoreResult<fsgate_store::objects::Deleted>,
    counter: &mut u64,
    report_locked: &mut u64,
) -> StoreResult<bool> {
    match r {
        Ok(_) => {
            *counter += 1;
            Ok(true)
        }
        Err(StoreError::ObjectLocked) => {
            *report_locked += 1;
            Ok(false)
        }
        Err(StoreError::NoSuchKey | StoreError::NoSuchVersion) => Ok(false),
        Err(e) => Err(e),
    }
}

fn apply_to_versions(
    store: &Store,
    log: &AuditWriter,
    bucket: &str,
    rules: &[Rule],
    now: u64,
    report: &mut Report,
) -> StoreResult<()> {
    let mut marker: Option<(String, String)> = None;
    // The newer neighbour of the next entry (its key and write time) and how many noncurrent
    // versions of that key were seen, across pages.
    let mut newer: Option<(String, u64)> = None;
    let mut noncurrent_seen = 0u32;
    loop {
        let page = store.list_object_versions(
            bucket,
            &VersionQuery {
                key_marker: marker.as_ref().map(|(k, _)| k.as_str()),
                version_id_marker: marker.as_ref().map(|(_, v)| v.as_str()),
                max: 1000,
                ..VersionQuery::default()
            },
        )?;
        for e in &page.entries {
            let VersionListEntry::Version(v) = e else {
                continue;
            };
            marker = Some((v.key.clone(), v.version_id.clone()));
            let m = &v.manifest;
            let became_noncurrent = match &newer {
                Some((k, t)) if *k == v.key && !v.is_latest => Some(*t),
                _ => None,
            };
            if v.is_latest {
                noncurrent_seen = 0;
            } else {
                noncurrent_seen += 1;
            }
            newer = Some((v.key.clone(), m.modified_ns));
            for rule in rules.iter().filter(|r| r.matches(&v.key, m)) {
                if v.is_latest && !m.delete_marker {
                    let due = rule
                        .expiration_days
                        .is_some_and(|d| m.modified_ns + u64::from(d) * DAY_NS <= now)
                        || rule.expiration_date_ns.is_some_and(|d| d <= now);
                    if due {
                        let r = store.delete_object(bucket, &v.key, None, false);
                        if note(r, &mut report.expired, &mut report.skipped_locked)? {
                            audit(log, "s3:LifecycleExpiration", bucket, &v.key, &rule.id, 204);
                        }
                        break;
                    }
                } else if v.is_latest
                    && m.delete_marker
                    && rule.expired_object_delete_marker
                    && store.noncurrent_versions(bucket, &v.key)?.is_empty()
                {
                    let r = store.delete_object(bucket, &v.key, Some(&v.version_id), false);
                    if note(r, &mut report.markers_removed, &mut report.skipped_locked)? {
                        audit(
                            log,
                            "s3:LifecycleDeleteMarkerExpiration",
                            bucket,
                            &v.key,
                            &rule.id,
                            204,
                        );
                    }
                    break;
                } else if let (Some(days), Some(since)) = (rule.noncurrent_days, became_noncurrent)
                    && since + u64::from(days) * DAY_NS <= now
                    && rule
                        .newer_noncurrent_versions
                        .is_none_or(|keep| noncurrent_seen > keep)
                {
                    let r = store.delete_object(bucket, &v.key, Some(&v.version_id), false);
                    if note(
                        r,
                        &mut report.noncurrent_removed,
                        &mut report.skipped_locked,
                    )? {
                        audit(
                            log,
                            "s3:LifecycleNoncurrentExpiration",
                            bucket,
                            &v.key,
                            &rule.id,
                            204,
                        );
                    }
                    break;
                }
            }
        }
        if !page.truncated {
            return Ok(());
        }
    }
}

fn abort_uploads(
    store: &Store,
    log: &AuditWriter,
    bucket: &str,
    rules: &[Rule],
    now: u64,
    report: &mut Report,
) -> StoreResult<()> {
    let mut key_marker: Option<String> = None;
    let mut id_marker: Option<String> = None;
    loop {
        let page = store.list_uploads(
            bucket,
            "",
            None,
            key_marker.as_deref(),
            id_marker.as_deref(),
            1000,
        )?;
        for u in &page.uploads {
            key_marker = Some(u.key.clone());
            id_marker = Some(u.upload_id.clone());
            let rule = rules.iter().find(|r| {
                u.key.starts_with(&r.prefix)
                    && r.abort_upload_days
                        .is_some_and(|d| u.record.initiated_ns + u64::from(d) * DAY_NS <= now)
            });
            if let Some(rule) = rule {
                match store.abort_upload(bucket, &u.key, &u.upload_id) {
                    Ok(()) => {
                        report.uploads_aborted += 1;
                        audit(
                            log,
                            "s3:LifecycleAbortMultipartUpload",
                            bucket,
                            &u.key,
                            &rule.id,
                            204,
                        );
                    }
                    Err(StoreError::NoSuchUpload) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if !page.truncated {
            return Ok(());
        }
    }
}

/// Runs the worker every `interval` until the process ends.
pub fn spawn(store: Arc<Store>, log: Arc<AuditWriter>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            let (s, l) = (store.clone(), log.clone());
            match tokio::task::spawn_blocking(move || run_once(&s, &l, now_ns())).await {
                Ok(Ok(r)) if r != Report::default() => tracing::info!(?r, "lifecycle pass"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "lifecycle pass failed"),
                Err(e) => tracing::error!(error = %e, "lifecycle pass panicked"),
            }
        }
    });
}
