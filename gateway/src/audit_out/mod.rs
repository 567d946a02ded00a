//! Audit records out: each configured target gets every record, in log order, as it commits.
//!
//! The log is the targets' persistent queue: a target's position (the next record to send) is
//! stored with the log (`Store::audit_delivered`), so records made while a target is down, or
//! while fsgate is stopped, go out when it is back — nothing is dropped, and nothing queues in
//! memory. Delivery is at least once: a record is sent again when fsgate stops between sending
//! it and storing the position. Failures are retried with exponential backoff (0.1 s to 30 s).
//!
//! - `webhook.rs`: the targets and their client; MinIO's audit webhook (`POST` of one JSON
//!   entry per record, in MinIO's format, with `Authorization: Bearer` when a token is set), so
//!   existing receivers work;
//! - `otlp.rs`: the OpenTelemetry logs protocol (OTLP/HTTP JSON, batches of records) to a
//!   collector, the way into the log pipelines people run.
//!
//! Targets come from `--audit-webhook URL` (token in `FSGATE_AUDIT_WEBHOOK_AUTH_TOKEN`), from
//! MinIO's `MINIO_AUDIT_WEBHOOK_ENABLE[_ID]=on`, `MINIO_AUDIT_WEBHOOK_ENDPOINT[_ID]`,
//! `MINIO_AUDIT_WEBHOOK_AUTH_TOKEN[_ID]`, and from `--audit-otlp URL`. A target first
//! configured starts at the log's end.

mod otlp;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use fsgate_store::Store;

pub use self::webhook::{AuditTarget, Protocol};

/// Records read from the log per round.
const BATCH: u64 = 1000;
/// How often an idle target looks for new records.
const IDLE: Duration = Duration::from_millis(200);
/// Longest wait between two attempts at a failing target.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The webhook targets MinIO's environment names (`get` reads a variable, `names` lists them).
#[must_use]
pub fn webhooks_from_minio_env(
    get: impl Fn(&str) -> Option<String>,
    names: impl Iterator<Item = String>,
) -> Vec<AuditTarget> {
    const ENABLE: &str = "MINIO_AUDIT_WEBHOOK_ENABLE";
    let mut out = Vec::new();
    for name in names {
        let Some(id) = name.strip_prefix(ENABLE) else {
            continue;
        };
        let on = get(&name).is_some_and(|v| matches!(v.trim(), "on" | "true" | "1"));
        let suffix = id.to_owned();
        let Some(endpoint) = get(&format!("MINIO_AUDIT_WEBHOOK_ENDPOINT{suffix}")) else {
            continue;
        };
        if !on || endpoint.trim().is_empty() {
            continue;
        }
        let target = suffix.trim_start_matches('_');
        out.push(AuditTarget {
            protocol: Protocol::MinioWebhook,
            name: format!(
                "webhook:{}",
                if target.is_empty() { "default" } else { target }
            ),
            endpoint: endpoint.trim().to_owned(),
            auth_token: get(&format!("MINIO_AUDIT_WEBHOOK_AUTH_TOKEN{suffix}"))
                .filter(|t| !t.is_empty()),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The OTLP logs URL of a collector given by its base URL (`http://collector:4318`) or by its
/// full logs URL (`.../v1/logs`).
#[must_use]
pub fn otlp_logs_endpoint(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.ends_with("/v1/logs") {
        url.to_owned()
    } else {
        format!("{url}/v1/logs")
    }
}

/// Starts one delivery task per target.
pub fn spawn(store: Arc<Store>, targets: Vec<AuditTarget>) {
    for t in targets {
        let store = store.clone();
        tokio::spawn(async move { deliver(store, t).await });
    }
}

async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> fsgate_store::StoreResult<T> + Send + 'static,
) -> Option<T> {
    let s = store.clone();
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "audit delivery: store error");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "audit delivery: task failed");
            None
        }
    }
}

/// Sends target `t` every record from its position on, forever.
async fn deliver(store: Arc<Store>, t: AuditTarget) {
    let client = webhook::Client::new();
    let label = t.name.clone();
    // Where this target stands; a new target starts at the log's end.
    let mut next = loop {
        let name = t.name.clone();
        let found = blocking(&store, move |s| match s.audit_delivered(&name)? {
            Some(n) => Ok(n),
            None => {
                let end = s.audit_log_size()?;
                s.set_audit_delivered(&name, end)?;
                Ok(end)
            }
        })
        .await;
        if let Some(n) = found {
            break n;
        }
        tokio::time::sleep(IDLE).await;
    };
    tracing::info!(target = %t.name, endpoint = %t.endpoint, from = next, "audit delivery started");
    let mut backoff = Duration::from_millis(100);
    let mut stored = next;
    loop {
        let from = next;
        let lines = blocking(&store, move |s| s.audit_lines(from, BATCH))
            .await
            .unwrap_or_default();
        let size = blocking(&store, |s| s.audit_log_size())
            .await
            .unwrap_or(next);
        metrics::gauge!("fsgate_audit_delivery_lag_records", "target" => label.clone())
            .set(size.saturating_sub(next) as f64);
        if lines.is_empty() {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        for chunk in lines.chunks(t.batch()) {
            let (Some((first, _)), Some((last, _))) = (chunk.first(), chunk.last()) else {
                continue;
            };
            let (first, last) = (*first, *last);
            // Records are sent until the target takes them: delivery stays in log order.
            loop {
                match client.send(&t, chunk).await {
                    Ok(()) => {
                        metrics::counter!("fsgate_audit_delivered_total", "target" => label.clone())
                            .increment(chunk.len() as u64);
                        backoff = Duration::from_millis(100);
                        break;
                    }
                    Err(e) => {
                        metrics::counter!("fsgate_audit_delivery_failures_total", "target" => label.clone())
                            .increment(1);
                        if let Some(size) = blocking(&store, |s| s.audit_log_size()).await {
                            metrics::gauge!("fsgate_audit_delivery_lag_records", "target" => label.clone())
                                .set(size.saturating_sub(first) as f64);
                        }
                        // What went out before the failure is not sent again after a restart.
                        if next > stored {
                            let (name, at) = (t.name.clone(), next);
                            if blocking(&store, move |s| s.set_audit_delivered(&name, at))
                                .await
                                .is_some()
                            {
                                stored = at;
                            }
                        }
                        tracing::warn!(target = %t.name, error = %e, record = first, retry_in_ms = backoff.as_millis() as u64, "audit delivery failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            next = last + 1;
        }
        let (name, at) = (t.name.clone(), next);
        if blocking(&store, move |s| s.set_audit_delivered(&name, at))
            .await
            .is_some()
        {
            stored = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minio_environment_names_webhook_targets() {
        let env = [
            ("MINIO_AUDIT_WEBHOOK_ENABLE", "on"),
            ("MINIO_AUDIT_WEBHOOK_ENDPOINT", "http://a:8080/audit"),
            ("MINIO_AUDIT_WEBHOOK_ENABLE_SPLUNK", "on"),
            ("MINIO_AUDIT_WEBHOOK_ENDPOINT_SPLUNK", "https://s/x"),
            ("MINIO_AUDIT_WEBHOOK_AUTH_TOKEN_SPLUNK", "tok"),
            ("MINIO_AUDIT_WEBHOOK_ENABLE_OFF", "off"),
            ("MINIO_AUDIT_WEBHOOK_ENDPOINT_OFF", "http://off"),
            ("MINIO_AUDIT_WEBHOOK_ENABLE_NOURL", "on"),
        ];
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        };
        let t = webhooks_from_minio_env(get, env.iter().map(|(k, _)| (*k).to_owned()));
        assert_eq!(t.len(), 2);
        assert_eq!(
            (
                t[0].name.as_str(),
                t[0].endpoint.as_str(),
                t[0].auth_token.as_deref()
            ),
            ("webhook:SPLUNK", "https://s/x", Some("tok"))
        );
        assert_eq!(
            (t[1].name.as_str(), t[1].auth_token.as_deref()),
            ("webhook:default", None)
        );
    }
}
