//! Admin routes for the audit log and the lifecycle run it records.
//!
//! | method | path | action |
//! |---|---|---|
//! | GET | /admin/v1/audit?principal&bucket&key&since&until&decision&limit | admin:QueryAudit |
//! | POST | /admin/v1/lifecycle/run `{"now"?: RFC 3339}` | admin:RunLifecycle |

use bytes::Bytes;
use http::{StatusCode, Uri};
use serde_json::{Value, json};

use fsgate_policy::Action;
use fsgate_store::audit::AuditFilter;
use fsgate_store::now_ns;

use super::{AdminApi, AdminError, Reply, err, ns_to_rfc3339, parse_time, query_map, store_err};
use crate::context::RequestCtx;

impl AdminApi {
    pub(super) async fn run_audit(
        &self,
        rc: &RequestCtx,
        action: Action,
        uri: &Uri,
        body: &Bytes,
    ) -> Result<Option<Reply>, Reply> {
        let parse = super::json_body;
        let reply = match action {
            Action::AdminRunLifecycle => {
                // `{"now": "RFC 3339"}` applies the rules as of that time (tests, catch-up).
                let now = if body.is_empty() {
                    now_ns()
                } else {
                    let v = parse(body)?;
                    match v.get("now").and_then(Value::as_str) {
                        None => now_ns(),
                        Some(t) => parse_time(t).ok_or_else(|| {
                            err(AdminError::InvalidArgument, "now: RFC 3339 or Unix seconds")
                        })?,
                    }
                };
                let log = self.audit.clone();
                let report = self
                    .blocking(move |s| {
                        let report = crate::s3::lifecycle::worker::run_once(s, &log, now);
                        // The report answers only once every action it counts is on record.
                        log.flush();
                        report
                    })
                    .await
                    .map_err(|e| store_err(e, rc))?;
                Ok(Reply(StatusCode::OK, json!(report)))
            }
            Action::AdminQueryAudit => {
                let mut f = AuditFilter {
                    limit: 1000,
                    ..Default::default()
                };
                for (k, v) in query_map(uri) {
                    match k.as_str() {
                        "principal" => f.principal = Some(v),
                        "bucket" => f.bucket = Some(v),
                        "key" => f.key = Some(v),
                        "decision" => f.decision = Some(v),
                        "since" => {
                            f.since_ns = Some(parse_time(&v).ok_or_else(|| {
                                err(
                                    AdminError::InvalidArgument,
                                    "since: RFC 3339 or Unix seconds",
                                )
                            })?)
                        }
                        "until" => {
                            f.until_ns = Some(parse_time(&v).ok_or_else(|| {
                                err(
                                    AdminError::InvalidArgument,
                                    "until: RFC 3339 or Unix seconds",
                                )
                            })?)
                        }
                        "limit" => {
                            f.limit = v
                                .parse()
                                .map_err(|_| err(AdminError::InvalidArgument, "limit: a number"))?
                        }
                        _ => {}
                    }
                }
                // Read-your-writes: what was queued before this query is committed first.
                let log = self.audit.clone();
                let recs = self
                    .blocking(move |s| {
                        log.flush();
                        s.query_audit(&f)
                    })
                    .await
                    .map_err(|e| store_err(e, rc))?;
                let v: Vec<Value> = recs
                    .into_iter()
                    .map(|r| {
                        json!({
                            "time": ns_to_rfc3339(r.time_ns), "request_id": r.request_id, "principal": r.principal,
                            "access_key": r.access_key, "auth": r.auth, "source_ip": r.source_ip, "user_agent": r.user_agent,
                            "action": r.action, "bucket": r.bucket, "key": r.key, "decision": r.decision,
                            "policies": r.policies, "status": r.status, "error_code": r.error_code,
                            "bytes_in": r.bytes_in, "bytes_out": r.bytes_out, "duration_ms": r.duration_us as f64 / 1000.0,
                            "version_id": r.version_id, "trace_id": r.trace_id,
                        })
                    })
                    .collect();
                Ok(Reply(StatusCode::OK, Value::Array(v)))
            }
            _ => return Ok(None),
        };
        reply.map(Some)
    }
}
