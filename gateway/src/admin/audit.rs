//! Admin routes for the audit log and the maintenance runs it records (lifecycle, scrub,
//! backup).
//!
//! | method | path | action |
//! |---|---|---|
//! | GET | /admin/v1/audit?principal&bucket&key&request_id&since&until&decision&limit (from the indexes by principal, bucket, object or request id) | admin:QueryAudit |
//! | GET | /admin/v1/audit/pubkey — the checkpoints' Ed25519 key (PEM) and id | admin:QueryAudit |
//! | GET | /admin/v1/audit/range?since&until — the log positions `{from, to}` covering a time range | admin:QueryAudit |
//! | GET | /admin/v1/audit/log?from&to&max[&next=1] — a page of the log as JSON Lines; `x-fsgate-next-from` names where the next page (`next=1`) starts | admin:QueryAudit |
//! | GET | /admin/v1/audit/proof?request_id — a record's inclusion and consistency proofs | admin:QueryAudit |
//! | GET | /admin/v1/audit/consistency?old&new — a consistency proof between two checkpoints | admin:QueryAudit |
//! | POST | /admin/v1/lifecycle/run `{"now"?: RFC 3339}` | admin:RunLifecycle |
//! | POST | /admin/v1/scrub?rate=MIB_PER_S — re-read and check every blob and inline object | admin:Scrub |
//! | POST | /admin/v1/backup `{"dir"}` — an online backup into a directory on the server | admin:Backup |
//!
//! The range, proof and consistency routes first have everything queued committed and signed,
//! so what a caller just did is in what it gets back.

use bytes::Bytes;
use http::{StatusCode, Uri};
use serde_json::{Value, json};

use fsgate_policy::Action;
use fsgate_store::audit::AuditFilter;
use fsgate_store::now_ns;

use super::{
    AdminApi, AdminError, Answer, Reply, err, ns_to_rfc3339, parse_time, query_map, store_err,
};
use crate::context::RequestCtx;

/// The header of a log page that goes on: the position the next page starts at.
pub(super) const NEXT_HEADER: &str = "x-fsgate-next-from";

/// Most records in a log page (~20 MiB).
const PAGE_RECORDS: u64 = 50_000;

fn number(q: &[(String, String)], name: &str) -> Result<Option<u64>, Reply> {
    q.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| {
            v.parse::<u64>()
                .map_err(|_| err(AdminError::InvalidArgument, format!("{name}: a number")))
        })
        .transpose()
}

fn time_arg(q: &[(String, String)], name: &str) -> Result<Option<u64>, Reply> {
    q.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| {
            parse_time(v).ok_or_else(|| {
                err(
                    AdminError::InvalidArgument,
                    format!("{name}: RFC 3339 or Unix seconds"),
                )
            })
        })
        .transpose()
}

impl AdminApi {
    /// Runs `f` on the store once everything queued is committed and signed, so that what a
    /// caller just did is in the log it reads.
    async fn signed<T: Send + 'static>(
        &self,
        f: impl FnOnce(&fsgate_store::Store) -> Result<T, fsgate_store::StoreError> + Send + 'static,
    ) -> Result<T, fsgate_store::StoreError> {
        let log = self.audit.clone();
        self.blocking(move |s| {
            log.checkpoint();
            f(s)
        })
        .await
    }

    /// The routes of the tamper-evident log: its key, exports and proofs.
    async fn run_audit_log(
        &self,
        rc: &RequestCtx,
        segs: &[&str],
        uri: &Uri,
    ) -> Result<Option<Answer>, Reply> {
        let q = query_map(uri);
        let answer = match segs {
            ["audit", "pubkey"] => {
                let key = self
                    .audit_key
                    .as_ref()
                    .ok_or_else(|| err(AdminError::NotFound, "no audit signing key"))?;
                let pem = key
                    .to_pem()
                    .map_err(|e| err(AdminError::InternalError, e.to_string()))?;
                Reply(
                    StatusCode::OK,
                    json!({"algorithm": "Ed25519", "key_id": key.key_id(), "public_key": pem}),
                )
                .into()
            }
            ["audit", "range"] => {
                let (since, until) = (time_arg(&q, "since")?, time_arg(&q, "until")?);
                let range = self
                    .signed(move |s| s.audit_log_range(since, until))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                Reply(StatusCode::OK, json!({"from": range.from, "to": range.to})).into()
            }
            ["audit", "log"] => {
                let (Some(from), Some(to)) = (number(&q, "from")?, number(&q, "to")?) else {
                    return Err(err(
                        AdminError::InvalidArgument,
                        "from and to: log positions (see /admin/v1/audit/range)",
                    ));
                };
                let max = number(&q, "max")?
                    .unwrap_or(PAGE_RECORDS)
                    .clamp(1, PAGE_RECORDS);
                // The first page of an export starts at a checkpoint (its frontier is signed
                // there); the next ones go on where the last stopped.
                let first = !q.iter().any(|(k, v)| k == "next" && v == "1");
                let page = self
                    .blocking(move |s| {
                        // An export ends at a checkpoint, and starts at one.
                        let ends = if first { vec![from, to] } else { vec![to] };
                        for at in ends {
                            if at > 0 && s.audit_checkpoint(at)?.is_none() {
                                return Ok(None);
                            }
                        }
                        s.audit_log_page(from, to.max(from), max, first).map(Some)
                    })
                    .await
                    .map_err(|e| store_err(e, rc))?
                    .ok_or_else(|| {
                        err(
                            AdminError::InvalidArgument,
                            "from and to must be sizes of checkpoints (see /admin/v1/audit/range)",
                        )
                    })?;
                Answer::Lines {
                    body: Bytes::from(page.text),
                    next: page.next,
                }
            }
            ["audit", "proof"] => {
                let id = q
                    .iter()
                    .find(|(k, _)| k == "request_id")
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| err(AdminError::InvalidArgument, "request_id: required"))?;
                let proof = self
                    .signed(move |s| s.audit_proof(&id))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                Reply(StatusCode::OK, json!(proof)).into()
            }
            ["audit", "consistency"] => {
                let old = number(&q, "old")?
                    .ok_or_else(|| err(AdminError::InvalidArgument, "old: a checkpoint's size"))?;
                let new = number(&q, "new")?;
                let doc = self
                    .signed(move |s| s.audit_consistency(old, new))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                Reply(StatusCode::OK, json!(doc)).into()
            }
            _ => return Ok(None),
        };
        Ok(Some(answer))
    }

    pub(super) async fn run_audit(
        &self,
        rc: &RequestCtx,
        action: Action,
        segs: &[&str],
        uri: &Uri,
        body: &Bytes,
    ) -> Result<Option<Answer>, Reply> {
        if action == Action::AdminQueryAudit
            && let Some(a) = self.run_audit_log(rc, segs, uri).await?
        {
            return Ok(Some(a));
        }
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
            Action::AdminScrub => {
                let q = query_map(uri);
                let rate = match q.iter().find(|(k, _)| k == "rate") {
                    None => None,
                    Some((_, v)) => Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|r| r.is_finite() && *r > 0.0)
                            .ok_or_else(|| {
                                err(AdminError::InvalidArgument, "rate: MiB per second, above 0")
                            })?,
                    ),
                };
                let report = crate::integrity::scrub(&self.store, &self.audit, rate)
                    .await
                    .map_err(|e| store_err(e, rc))?;
                Ok(Reply(StatusCode::OK, json!(report)))
            }
            Action::AdminBackup => {
                let v = parse(body)?;
                let dir = v
                    .get("dir")
                    .and_then(Value::as_str)
                    .filter(|d| std::path::Path::new(d).is_absolute())
                    .ok_or_else(|| {
                        err(
                            AdminError::InvalidArgument,
                            "dir: an absolute path on the server",
                        )
                    })?
                    .to_owned();
                let log = self.audit.clone();
                let report = self
                    .blocking(move |s| {
                        // What was done before the backup is in it, audit records included.
                        log.flush();
                        s.backup(std::path::Path::new(&dir))
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
                        "request_id" => f.request_id = Some(v),
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
        reply.map(|r| Some(r.into()))
    }
}
