//! The OpenTelemetry logs protocol (OTLP/HTTP, JSON encoding): audit records posted in
//! batches to a collector's `/v1/logs`, one log record per audit record, so they enter any
//! pipeline an OpenTelemetry Collector feeds (Loki, Elasticsearch, Kafka, S3, ...).
//!
//! Each log record's body is the record's log line (the bytes the audit log hashed, so a
//! receiver can verify it against a checkpoint); its attributes are the fields pipelines
//! filter on (`fsgate.principal`, `fsgate.action`, `fsgate.bucket`, `fsgate.decision`,
//! `http.response.status_code`, ...); its trace id is the request's, when traced.

use serde_json::{Value, json};

use fsgate_auditlog::record::OwnedRecord;

/// Records per request to the collector.
pub(super) const BATCH: usize = 200;

fn attr(key: &str, value: Value) -> Value {
    let v = match value {
        Value::Number(n) => json!({ "intValue": n.to_string() }),
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(items) => json!({ "arrayValue": { "values": items
            .into_iter()
            .map(|i| json!({ "stringValue": i.as_str().unwrap_or_default() }))
            .collect::<Vec<_>>() } }),
        other => json!({ "stringValue": other.to_string() }),
    };
    json!({ "key": key, "value": v })
}

/// One audit record as an OTLP log record.
fn log_record(r: &OwnedRecord, line: &[u8]) -> Value {
    let time_ns = fsgate_auditlog::checkpoint::parse_rfc3339_nanos(&r.time).unwrap_or(0);
    // INFO for allowed requests, WARN for refusals.
    let (severity, text) = if r.decision == "deny" {
        (13, "WARN")
    } else {
        (9, "INFO")
    };
    let mut attributes = vec![
        attr("fsgate.log.position", json!(r.seq)),
        attr("fsgate.request_id", json!(r.request_id)),
        attr("fsgate.principal", json!(r.principal)),
        attr("fsgate.auth", json!(r.auth)),
        attr("fsgate.action", json!(r.action)),
        attr("fsgate.decision", json!(r.decision)),
        attr("fsgate.policies", json!(r.policies)),
        attr("client.address", json!(r.source_ip)),
        attr("user_agent.original", json!(r.user_agent)),
        attr("http.response.status_code", json!(r.status)),
        attr("fsgate.bytes_in", json!(r.bytes_in)),
        attr("fsgate.bytes_out", json!(r.bytes_out)),
        attr("fsgate.duration_us", json!(r.duration_us)),
    ];
    for (k, v) in [
        ("fsgate.access_key", &r.access_key),
        ("fsgate.bucket", &r.bucket),
        ("fsgate.key", &r.key),
        ("fsgate.version_id", &r.version_id),
        ("fsgate.error_code", &r.error_code),
    ] {
        if !v.is_empty() {
            attributes.push(attr(k, json!(v)));
        }
    }
    let mut rec = json!({
        "timeUnixNano": time_ns.to_string(),
        "observedTimeUnixNano": time_ns.to_string(),
        "severityNumber": severity,
        "severityText": text,
        "body": { "stringValue": String::from_utf8_lossy(line) },
        "attributes": attributes,
    });
    if r.trace_id.len() == 32
        && let Some(o) = rec.as_object_mut()
    {
        o.insert("traceId".into(), json!(r.trace_id));
    }
    rec
}

/// An `ExportLogsServiceRequest` (JSON) carrying `lines`; unreadable lines are left out (and
/// logged): they can never be sent.
pub(super) fn export_request(lines: &[(u64, Vec<u8>)]) -> Value {
    let records: Vec<Value> = lines
        .iter()
        .filter_map(|(seq, line)| match fsgate_auditlog::record::parse(line) {
            Ok(r) => Some(log_record(&r, line)),
            Err(e) => {
                tracing::error!(record = seq, error = %e, "audit record unreadable; not delivered");
                None
            }
        })
        .collect();
    json!({
        "resourceLogs": [{
            "resource": { "attributes": [
                attr("service.name", json!("fsgate")),
                attr("service.version", json!(env!("CARGO_PKG_VERSION"))),
            ] },
            "scopeLogs": [{
                "scope": { "name": "fsgate.audit" },
                "logRecords": records,
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_otlp_log_records() {
        let line = br#"{"seq":7,"time":"2026-12-07T10:00:00.000000001Z","request_id":"r1","principal":"alice","auth":"sigv4","source_ip":"10.0.0.1","user_agent":"curl","action":"s3:GetObject","bucket":"b","key":"k","decision":"deny","policies":["p"],"status":403,"bytes_out":0,"duration_us":5}"#;
        let req = export_request(&[(7, line.to_vec()), (8, b"not a record".to_vec())]);
        let records = &req["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
        assert_eq!(records.as_array().map(Vec::len), Some(1));
        let r = &records[0];
        assert_eq!(r["severityText"], "WARN");
        assert_eq!(r["timeUnixNano"], "1796637600000000001");
        assert_eq!(
            r["body"]["stringValue"],
            String::from_utf8_lossy(line).as_ref()
        );
        let attrs = r["attributes"].to_string();
        assert!(
            attrs.contains(r#"{"key":"fsgate.principal","value":{"stringValue":"alice"}}"#),
            "{attrs}"
        );
        assert!(
            attrs.contains(r#"{"key":"http.response.status_code","value":{"intValue":"403"}}"#),
            "{attrs}"
        );
    }
}
