//! Metrics beyond the per-request counters the front layer records: the Prometheus recorder
//! (with histogram buckets), and the gauges refreshed when `/metrics` is scraped — build and
//! process, audit pipeline, store capacity and dedup, RocksDB health, free space.
//!
//! Label cardinality is bounded: API names, statuses, S3 error codes and fixed reasons only —
//! never bucket, key or user names.
//!
//! Per-request metrics live in `requests`, trace export in `traces`.

pub(crate) mod requests;
pub mod traces;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::Mutex;

use fsgate_store::audit::AuditWriter;
use fsgate_store::{Store, now_ns};

/// Latency buckets, in seconds.
const LATENCY: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0,
];
/// How long store figures (a full metadata scan) are reused between scrapes.
const STORE_REFRESH: Duration = Duration::from_secs(15);

/// Installs the global recorder.
pub fn install() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY)?
        .install_recorder()
}

/// What the scrape-time refresh needs.
#[derive(Debug)]
pub struct Telemetry {
    store: Arc<Store>,
    audit: Arc<AuditWriter>,
    /// The free-space reserve (`--min-free-space`), for `fsgate_storage_full`.
    min_free: u64,
    started: Instant,
    last_store: Mutex<Option<Instant>>,
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(field)?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some((utime + stime) / 100.0)
}

#[expect(clippy::cast_precision_loss, reason = "metrics are f64")]
fn f(n: u64) -> f64 {
    n as f64
}

impl Telemetry {
    /// Gauges over `store` and `audit`, for a process started at `started`.
    #[must_use]
    pub fn new(store: Arc<Store>, audit: Arc<AuditWriter>, min_free: u64) -> Self {
        metrics::gauge!(
            "fsgate_build_info",
            "version" => env!("CARGO_PKG_VERSION"),
            "commit" => option_env!("FSGATE_COMMIT").unwrap_or("unknown")
        )
        .set(1.0);
        Self {
            store,
            audit,
            min_free,
            started: Instant::now(),
            last_store: Mutex::new(None),
        }
    }

    /// Seconds since the process started.
    #[must_use]
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Brings the gauges up to date (called before each scrape renders).
    pub async fn refresh(&self) {
        metrics::gauge!("fsgate_uptime_seconds").set(self.started.elapsed().as_secs_f64());
        if let Some(rss) = proc_status_kib("VmRSS:") {
            metrics::gauge!("fsgate_process_resident_memory_bytes").set(f(rss * 1024));
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            metrics::gauge!("fsgate_process_open_fds").set(f(fds.count() as u64));
        }
        if let Some(cpu) = cpu_seconds() {
            metrics::gauge!("fsgate_process_cpu_seconds_total").set(cpu);
        }
        if let Some(committed) = mimalloc_committed_bytes() {
            metrics::gauge!("fsgate_allocator_committed_bytes", "allocator" => "mimalloc")
                .set(f(committed));
        }
        let a = self.audit.stats();
        metrics::counter!("fsgate_audit_records_written_total")
            .absolute(a.written.load(Ordering::Relaxed));
        metrics::counter!("fsgate_audit_batches_total").absolute(a.batches.load(Ordering::Relaxed));
        metrics::gauge!("fsgate_audit_queue_depth").set(f(a.queued.load(Ordering::Relaxed)));
        metrics::gauge!("fsgate_audit_last_batch_size")
            .set(f(a.last_batch.load(Ordering::Relaxed)));
        metrics::gauge!("fsgate_audit_last_commit_seconds")
            .set(f(a.last_commit_ns.load(Ordering::Relaxed)) / 1e9);
        let oldest = a.oldest_pending_ns.load(Ordering::Relaxed);
        let age = if oldest == 0 {
            0.0
        } else {
            f(now_ns().saturating_sub(oldest)) / 1e9
        };
        metrics::gauge!("fsgate_audit_oldest_unwritten_age_seconds").set(age);
        metrics::counter!("fsgate_audit_checkpoints_total")
            .absolute(a.checkpoints.load(Ordering::Relaxed));
        metrics::gauge!("fsgate_audit_log_records").set(f(a.log_size.load(Ordering::Relaxed)));
        metrics::gauge!("fsgate_audit_log_inconsistent")
            .set(f(a.log_inconsistent.load(Ordering::Relaxed)));

        let mut last = self.last_store.lock().await;
        if last.is_some_and(|t| t.elapsed() < STORE_REFRESH) {
            return;
        }
        let store = self.store.clone();
        let figures = tokio::task::spawn_blocking(move || {
            let buckets = store.list_buckets()?.len() as u64;
            let (objects, logical) = store.usage()?;
            let physical = store.blobs().physical_bytes()?;
            engine_gauges(&store.metadata_stats()?);
            let free = store.free_space()?;
            Ok::<_, fsgate_store::StoreError>((buckets, objects, logical, physical, free))
        })
        .await;
        match figures {
            Ok(Ok((buckets, objects, logical, physical, free))) => {
                metrics::gauge!("fsgate_store_buckets").set(f(buckets));
                metrics::gauge!("fsgate_store_objects").set(f(objects));
                metrics::gauge!("fsgate_store_logical_bytes").set(f(logical));
                metrics::gauge!("fsgate_store_physical_bytes").set(f(physical));
                metrics::gauge!("fsgate_data_free_bytes").set(f(free));
                // Writes are refused while this is 1 (see `S3Api::admit_write`).
                metrics::gauge!("fsgate_storage_full").set(if free < self.min_free {
                    1.0
                } else {
                    0.0
                });
                *last = Some(Instant::now());
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "store metrics unavailable"),
            Err(e) => tracing::warn!(error = %e, "store metrics task failed"),
        }
    }
}

/// Memory mimalloc, the server's allocator for everything but RocksDB (`main.rs`), holds
/// committed: what fsgate's own allocations cost in resident memory, free blocks it keeps for
/// reuse included. With RocksDB's own gauges, it accounts for most of the resident memory.
fn mimalloc_committed_bytes() -> Option<u64> {
    let stats = mimalloc::MiMalloc::stats_json().ok()?;
    let v: serde_json::Value = serde_json::from_slice(stats.to_bytes()).ok()?;
    v.get("process")?.get("commit_current")?.as_u64()
}

/// The metadata engine's own gauges: RocksDB's files and memory, or PostgreSQL's table and
/// sessions (its round trips are timed as they happen, in the store).
fn engine_gauges(engine: &fsgate_store::meta::EngineStats) {
    match engine.engine {
        "rocksdb" => {
            metrics::gauge!("fsgate_rocksdb_live_sst_bytes").set(f(engine.live_bytes));
            metrics::gauge!("fsgate_rocksdb_pending_compaction_bytes")
                .set(f(engine.pending_compaction_bytes));
            metrics::gauge!("fsgate_rocksdb_write_stopped").set(if engine.writes_stopped {
                1.0
            } else {
                0.0
            });
            for (part, bytes) in [
                ("memtables", engine.memtable_bytes),
                ("block_cache", engine.block_cache_bytes),
                ("table_readers", engine.table_readers_bytes),
            ] {
                metrics::gauge!("fsgate_rocksdb_memory_bytes", "part" => part).set(f(bytes));
            }
        }
        "postgres" => {
            metrics::gauge!("fsgate_postgres_table_bytes").set(f(engine.live_bytes));
            metrics::gauge!("fsgate_postgres_connections").set(f(engine.connections));
        }
        _ => {}
    }
}

/// What `/metrics` renders: the recorder's output after a refresh of the scrape-time gauges.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The installed recorder.
    pub handle: PrometheusHandle,
    /// The scrape-time gauges.
    pub telemetry: Arc<Telemetry>,
}

impl Scrape {
    /// Refreshes the gauges and renders the Prometheus text format.
    pub async fn render(&self) -> String {
        self.telemetry.refresh().await;
        self.handle.render()
    }
}

/// Metric families that reveal what tenants stored (capacity, dedup, free space, RocksDB's
/// and PostgreSQL's sizes, per-bucket traffic): a tenant who may not see another's objects could otherwise
/// learn, from physical bytes or free space, whether a guess of another tenant's object
/// deduplicated against it. They are shown only to a scrape with the metrics token or an
/// admin's signature.
const TENANT_REVEALING: &[&str] = &[
    "fsgate_store_",
    "fsgate_data_free_bytes",
    "fsgate_rocksdb_",
    "fsgate_postgres_table_bytes",
    "fsgate_bucket_",
];

/// The exposition an unauthenticated scrape gets: everything but the families that reveal
/// what tenants stored (capacity, free space, RocksDB sizes, per-bucket counters).
#[must_use]
pub fn public_view(exposition: &str) -> String {
    let mut out = String::with_capacity(exposition.len());
    for line in exposition.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        if !TENANT_REVEALING.iter().any(|p| name.starts_with(p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// One sample of an exposition: name, labels (in order), value.
type Sample<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

/// The samples of an exposition.
fn samples(exposition: &str) -> Vec<Sample<'_>> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k, v.trim_matches('"')))
                })
                .collect();
            Some((name, labels, value))
        })
        .collect()
}

/// The exposition with MinIO's metric names added, for `/minio/v2/metrics/cluster`: the
/// series MinIO's Grafana dashboards query, derived from fsgate's own (requests by API and
/// their errors, traffic, requests in flight, usage, free capacity, process figures). Only
/// what `exposition` holds is derived, so the public view stays public.
#[must_use]
pub fn minio_view(exposition: &str) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;
    let mut by_api: BTreeMap<String, [f64; 4]> = BTreeMap::new();
    let mut out = String::from(exposition);
    let mut gauge = |name: &str, value: f64| {
        let _ = writeln!(out, "# TYPE {name} gauge\n{name} {value}");
    };
    for (name, labels, value) in samples(exposition) {
        let label = |k: &str| labels.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        match name {
            "fsgate_requests_total" => {
                let api = label("api").unwrap_or_default();
                let api = api.strip_prefix("s3:").unwrap_or(api).to_ascii_lowercase();
                let status: u16 = label("status").and_then(|s| s.parse().ok()).unwrap_or(0);
                let e = by_api.entry(api).or_default();
                e[0] += value;
                if status >= 400 {
                    e[1] += value;
                }
                if (400..500).contains(&status) {
                    e[2] += value;
                }
                if status >= 500 {
                    e[3] += value;
                }
            }
            "fsgate_received_bytes_total" => gauge("minio_s3_traffic_received_bytes", value),
            "fsgate_sent_bytes_total" => gauge("minio_s3_traffic_sent_bytes", value),
            "fsgate_requests_in_flight" => gauge("minio_s3_requests_inflight_total", value),
            "fsgate_uptime_seconds" => gauge("minio_node_process_uptime_seconds", value),
            "fsgate_process_resident_memory_bytes" => {
                gauge("minio_node_process_resident_memory_bytes", value);
            }
            "fsgate_process_open_fds" => gauge("minio_node_file_descriptor_open_total", value),
            "fsgate_store_logical_bytes" => gauge("minio_cluster_usage_total_bytes", value),
            "fsgate_store_objects" => gauge("minio_cluster_usage_object_total", value),
            "fsgate_store_buckets" => gauge("minio_cluster_bucket_total", value),
            "fsgate_data_free_bytes" => {
                gauge("minio_cluster_capacity_usable_free_bytes", value);
                gauge("minio_cluster_capacity_raw_free_bytes", value);
            }
            _ => {}
        }
    }
    // One node, one drive: always all of them online.
    gauge("minio_cluster_nodes_online_total", 1.0);
    gauge("minio_cluster_nodes_offline_total", 0.0);
    gauge("minio_cluster_drive_online_total", 1.0);
    gauge("minio_cluster_drive_offline_total", 0.0);
    for (metric, i) in [
        ("minio_s3_requests_total", 0),
        ("minio_s3_requests_errors_total", 1),
        ("minio_s3_requests_4xx_errors_total", 2),
        ("minio_s3_requests_5xx_errors_total", 3),
    ] {
        let _ = writeln!(out, "# TYPE {metric} counter");
        for (api, counts) in &by_api {
            let _ = writeln!(
                out,
                "{metric}{{api=\"{api}\"}} {}",
                counts.get(i).copied().unwrap_or(0.0)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn public_view_hides_what_tenants_stored() {
        let full = "# TYPE fsgate_store_physical_bytes gauge\nfsgate_store_physical_bytes 100\n\
                    fsgate_requests_total{api=\"s3:GetObject\"} 3\nfsgate_data_free_bytes 9\n\
                    fsgate_bucket_requests_total{bucket=\"b\"} 1\nfsgate_rocksdb_live_sst_bytes 4\n";
        let public = super::public_view(full);
        assert_eq!(public, "fsgate_requests_total{api=\"s3:GetObject\"} 3\n");
    }

    #[test]
    fn minio_view_adds_the_names_minio_dashboards_query() {
        let full = "fsgate_requests_total{api=\"s3:GetObject\",status=\"200\"} 5\n\
                    fsgate_requests_total{api=\"s3:GetObject\",status=\"404\"} 2\n\
                    fsgate_requests_total{api=\"s3:PutObject\",status=\"503\"} 1\n\
                    fsgate_received_bytes_total 10\nfsgate_store_logical_bytes 99\n";
        let view = super::minio_view(full);
        for line in [
            "minio_s3_requests_total{api=\"getobject\"} 7",
            "minio_s3_requests_errors_total{api=\"getobject\"} 2",
            "minio_s3_requests_4xx_errors_total{api=\"getobject\"} 2",
            "minio_s3_requests_5xx_errors_total{api=\"putobject\"} 1",
            "minio_s3_traffic_received_bytes 10",
            "minio_cluster_usage_total_bytes 99",
            "minio_cluster_nodes_online_total 1",
        ] {
            assert!(view.lines().any(|l| l == line), "{line} in\n{view}");
        }
        // From the public view, nothing it hid comes back under another name.
        let public = super::minio_view(&super::public_view(full));
        assert!(
            !public.contains("minio_cluster_usage_total_bytes"),
            "{public}"
        );
    }
}
