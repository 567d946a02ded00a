//! The HTTP targets and their client. MinIO's audit webhook: one `POST` per record, the body
//! MinIO's audit entry (`version` 1: `time`, `api{name, bucket, object, status, statusCode,
//! rx, tx, timeToResponse}`, `remotehost`, `requestID`, `userAgent`, `accessKey`, ...), so that
//! receivers written for MinIO (Splunk, Elastic, Loki, custom ones) take fsgate's unchanged;
//! fsgate's own fields ride in `tags`: the decision, the deciding policies, the log position.
//! OTLP logs: batches to a collector (`otlp.rs`).

use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};

use fsgate_auditlog::record::OwnedRecord;

type HttpsClient = crate::http_client::HttpsClient<Full<bytes::Bytes>>;

/// How long one delivery may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MinIO's audit webhook: one JSON entry per `POST`.
    MinioWebhook,
    /// OTLP/HTTP logs (JSON), in batches.
    OtlpLogs,
}

/// An HTTP endpoint that receives every audit record.
#[derive(Clone)]
pub struct AuditTarget {
    /// The target's name (`webhook:ID`, `otlp:default`): its delivery position is kept under it.
    pub name: String,
    /// Where entries are posted.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub auth_token: Option<String>,
    /// What it speaks.
    pub protocol: Protocol,
}

impl AuditTarget {
    /// Records per `POST`.
    pub(super) fn batch(&self) -> usize {
        match self.protocol {
            Protocol::MinioWebhook => 1,
            Protocol::OtlpLogs => super::otlp::BATCH,
        }
    }
}

impl std::fmt::Debug for AuditTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditTarget")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Why one delivery failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    /// The record line does not read (it is skipped: it can never be sent).
    #[error("record unreadable: {0}")]
    Record(String),
    /// The receiver could not be reached, or did not answer in time.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The receiver answered with an error status.
    #[error("refused: HTTP {0}")]
    Refused(u16),
}

/// The client posting entries.
pub(super) struct Client(HttpsClient);

impl Client {
    pub(super) fn new() -> Self {
        Self(crate::http_client::https_client())
    }

    /// Posts the records whose log lines are `lines` (one for a webhook, a batch for OTLP).
    pub(super) async fn send(
        &self,
        t: &AuditTarget,
        lines: &[(u64, Vec<u8>)],
    ) -> Result<(), SendError> {
        let body = match t.protocol {
            Protocol::MinioWebhook => {
                let Some((_, line)) = lines.first() else {
                    return Ok(());
                };
                match fsgate_auditlog::record::parse(line) {
                    Ok(rec) => minio_entry(&rec).to_string(),
                    Err(e) => {
                        // Nothing to retry: an unreadable line is logged and passed over.
                        tracing::error!(target = %t.name, error = %e, "audit record unreadable; not delivered");
                        return Ok(());
                    }
                }
            }
            Protocol::OtlpLogs => super::otlp::export_request(lines).to_string(),
        };
        let mut req = http::Request::post(&t.endpoint)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "fsgate");
        if let Some(tok) = &t.auth_token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {tok}"));
        }
        let req = req
            .body(Full::new(bytes::Bytes::from(body)))
            .map_err(|e| SendError::Record(e.to_string()))?;
        let call = async {
            let resp = self
                .0
                .request(req)
                .await
                .map_err(|e| SendError::Unreachable(e.to_string()))?;
            let status = resp.status();
            // The answer is read (and dropped) so the connection is reused.
            let _ = http_body_util::Limited::new(resp.into_body(), 64 << 10)
                .collect()
                .await;
            if status.is_success() {
                Ok(())
            } else {
                Err(SendError::Refused(status.as_u16()))
            }
        };
        tokio::time::timeout(SEND_TIMEOUT, call)
            .await
            .map_err(|_| SendError::Unreachable("timed out".into()))?
    }
}

/// The record as MinIO's audit entry.
pub(super) fn minio_entry(r: &OwnedRecord) -> Value {
    let api = r
        .action
        .split_once(':')
        .map_or(r.action.as_str(), |(_, op)| op);
    let status = http::StatusCode::from_u16(r.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    json!({
        "version": "1",
        "deploymentid": "",
        "time": r.time,
        "event": "",
        "trigger": "incoming",
        "api": {
            "name": api,
            "bucket": r.bucket,
            "object": r.key,
            "status": status,
            "statusCode": r.status,
            "rx": r.bytes_in,
            "tx": r.bytes_out,
            "timeToResponse": format!("{}ns", r.duration_us * 1000),
            "timeToResponseInNS": (r.duration_us * 1000).to_string(),
        },
        "remotehost": r.source_ip,
        "requestID": r.request_id,
        "userAgent": r.user_agent,
        "requestHeader": {},
        "responseHeader": {},
        "tags": {
            "principal": r.principal,
            "action": r.action,
            "auth": r.auth,
            "decision": r.decision,
            "policies": r.policies,
            "errorCode": r.error_code,
            "versionId": r.version_id,
            "traceId": r.trace_id,
            "logPosition": r.seq,
        },
        "accessKey": r.access_key,
        "parentUser": r.principal,
    })
}
