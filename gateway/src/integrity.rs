//! What the store finds wrong with its disk, on the gateway's side: the audit record of every
//! corruption (on a read or a scrub), scrubs on demand (`POST /admin/v1/scrub`) and on a
//! schedule (`--scrub-interval`), and fail-stop when a metadata write fails with an I/O
//! error. Detection and quarantine are the store's (`fsgate_store::integrity`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fsgate_store::audit::{AuditWriter, request_id};
use fsgate_store::integrity::{Corruption, ScrubReport};
use fsgate_store::model::AuditRecord;
use fsgate_store::{Store, StoreError, StoreResult, now_ns};

static SEQ: AtomicU32 = AtomicU32::new(0xc000_0000);

/// The audit record of a corruption: principal `integrity`, action
/// `fsgate:IntegrityCheckFailed`, the object (when a read found it) and the blob.
fn record(c: &Corruption) -> AuditRecord {
    let time_ns = now_ns();
    AuditRecord {
        time_ns,
        request_id: request_id(time_ns, SEQ.fetch_add(1, Ordering::Relaxed)),
        principal: "integrity".into(),
        auth: "internal".into(),
        user_agent: "fsgate-integrity".into(),
        action: "fsgate:IntegrityCheckFailed".into(),
        bucket: c.bucket.clone(),
        key: c.key.clone(),
        decision: "deny".into(),
        policies: vec![if c.blob.is_empty() {
            format!("integrity:{}", c.kind)
        } else {
            format!("integrity:blob:{}", c.blob)
        }],
        status: 500,
        error_code: "InternalError".into(),
        ..AuditRecord::default()
    }
}

/// Has every corruption the store finds written to the audit log.
pub fn audit_corruptions(store: &Store, audit: Arc<AuditWriter>) {
    // Every series exists from the start, at 0, so that alerts on it work before a failure.
    for kind in ["blob", "inline", "metadata"] {
        metrics::counter!("fsgate_integrity_failures_total", "kind" => kind).increment(0);
    }
    store.on_corruption(Box::new(move |c| audit.send_blocking(&record(c))));
}

/// The exit status of a fail-stop (EX_TEMPFAIL): restart me.
pub const FAIL_STOP_STATUS: i32 = 75;

/// Fail-stop: a metadata write that stops RocksDB (an I/O error on its log; it cannot be
/// resumed, and it cannot be reopened while requests hold it) ends the process with status 75
/// so that its supervisor (systemd's `Restart=on-failure`, the container runtime, Kubernetes)
/// starts it again, and the start replays the log. What was acknowledged is durable; the write
/// that failed got a 500 and left nothing. A full disk is not this: RocksDB resumes by itself.
pub fn stop_on_write_failure(store: &Store) {
    store.on_write_failure(Box::new(|e| {
        static STOPPING: std::sync::Once = std::sync::Once::new();
        STOPPING.call_once(|| {
            tracing::error!(
                error = %e,
                "the metadata store takes no more writes after an I/O error: exiting with status {FAIL_STOP_STATUS} to be restarted"
            );
            // A moment for the failing request's answer to go out.
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                std::process::exit(FAIL_STOP_STATUS);
            });
        });
    }));
}

/// Runs a scrub at `rate_mib` MiB/s (`None`: unthrottled) off the runtime; the report comes
/// back once every corruption it found is on record.
pub async fn scrub(
    store: &Arc<Store>,
    audit: &Arc<AuditWriter>,
    rate_mib: Option<f64>,
) -> StoreResult<ScrubReport> {
    let rate = rate_mib.map(|r| (r * 1_048_576.0) as u64);
    let (store, audit) = (store.clone(), audit.clone());
    tokio::task::spawn_blocking(move || {
        let report = store.scrub(rate);
        audit.flush();
        report
    })
    .await
    .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
}

/// Scrubs every `interval` at `rate_mib` MiB/s until the process ends.
pub fn spawn_schedule(
    store: Arc<Store>,
    audit: Arc<AuditWriter>,
    interval: Duration,
    rate_mib: f64,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            match scrub(&store, &audit, Some(rate_mib)).await {
                Ok(r) if r.corrupt.is_empty() => {
                    tracing::info!(
                        blobs = r.blobs,
                        bytes = r.bytes,
                        "scrub found nothing wrong"
                    );
                }
                Ok(r) => tracing::error!(corrupt = r.corrupt.len(), "scrub found corruption"),
                Err(e) => tracing::error!(error = %e, "scrub failed"),
            }
        }
    });
}
