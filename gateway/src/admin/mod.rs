//! The admin REST API under `/admin/v1/`: JSON in and out, authenticated by SigV4 (s3s checks
//! the signature before this route runs) and decided by Cedar like every S3 request.
//!
//! | method | path | action |
//! |---|---|---|
//! | GET | /admin/v1/users | admin:ListUsers |
//! | POST | /admin/v1/users `{"name"}` | admin:AddUser (returns the first key) |
//! | DELETE | /admin/v1/users/{name} | admin:RemoveUser |
//! | POST | /admin/v1/users/{name}/enable, /disable | admin:EnableUser, admin:DisableUser |
//! | GET, POST | /admin/v1/users/{name}/keys | admin:ListKeys, admin:CreateKey |
//! | DELETE | /admin/v1/keys/{access_key} | admin:DeleteKey |
//! | PUT, DELETE | /admin/v1/groups/{group}/members/{user} | admin:AddGroupMember, admin:RemoveGroupMember |
//! | GET, POST | /admin/v1/policies | admin:ListPolicies, admin:AttachPolicy |
//! | PUT | /admin/v1/policies/{id} (replace in place) | admin:AttachPolicy |
//! | DELETE | /admin/v1/policies/{id} | admin:DetachPolicy |
//! | POST | /admin/v1/policy/test, /who-can, /validate | admin:ListPolicies |
//! | GET | /admin/v1/audit?principal&bucket&key&since&until&decision&limit | admin:QueryAudit |

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode, Uri};
use http_body_util::BodyExt;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use serde::Deserialize;
use serde_json::{Value, json};

use fsgate_policy::{Action, Changes, Resource};
use fsgate_store::audit::{AuditFilter, AuditWriter};
use fsgate_store::model::{AttachTarget, AttachedPolicy, Attachment};
use fsgate_store::{Store, StoreError, now_ns};

use crate::access::{AccessFacts, Gate};
use crate::context::RequestCtx;
use crate::identity::iam::{Iam, IamError, grant_of, valid_name};

mod identity;

const PREFIX: &str = "/admin/v1/";
const MAX_BODY: usize = 1 << 20;

/// The admin route.
#[derive(Debug, Clone)]
pub struct AdminApi {
    store: Arc<Store>,
    iam: Arc<Iam>,
    gate: Gate,
    audit: Arc<AuditWriter>,
    oidc: Arc<crate::identity::oidc::OidcVerifier>,
    scrape: crate::telemetry::Scrape,
}

/// An admin outcome: status and JSON body.
struct Reply(StatusCode, Value);

fn err(status: StatusCode, code: &str, msg: impl Into<String>) -> Reply {
    Reply(status, json!({"code": code, "message": msg.into()}))
}

fn store_err(e: StoreError, rc: &RequestCtx) -> Reply {
    match e {
        StoreError::NotFound(w) => err(StatusCode::NOT_FOUND, "NotFound", format!("{w} not found")),
        StoreError::AlreadyExists(w) => err(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{w} already exists"),
        ),
        other => {
            tracing::error!(request_id = %rc.request_id, error = %other, "admin store error");
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "internal error",
            )
        }
    }
}

pub use crate::identity::keys::new_key_pair;

fn ns_to_rfc3339(ns: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Parses RFC 3339 or Unix seconds into ns.
fn parse_time(s: &str) -> Option<u64> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1_000_000_000);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

/// The pairs of `a=b&c=d` in form (or query) encoding, decoded, in order.
pub(crate) fn form_pairs(text: &str) -> Vec<(String, String)> {
    crate::identity::query::form_pairs(text)
}

fn query_map(uri: &Uri) -> Vec<(String, String)> {
    form_pairs(uri.query().unwrap_or(""))
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
}

#[derive(Deserialize)]
struct NewAttachment {
    user: Option<String>,
    group: Option<String>,
    role: Option<String>,
    bucket: Option<String>,
    prefix: Option<String>,
    cedar: Option<String>,
}

impl AdminApi {
    /// The admin route over the store and IAM cache.
    #[must_use]
    pub fn new(
        store: Arc<Store>,
        iam: Arc<Iam>,
        gate: Gate,
        audit: Arc<AuditWriter>,
        oidc: Arc<crate::identity::oidc::OidcVerifier>,
        scrape: crate::telemetry::Scrape,
    ) -> Self {
        Self {
            store,
            iam,
            gate,
            audit,
            oidc,
            scrape,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let s = self.store.clone();
        tokio::task::spawn_blocking(move || f(&s))
            .await
            .unwrap_or_else(|e| Err(StoreError::Io(std::io::Error::other(e.to_string()))))
    }

    /// After a change to users, keys, groups, service accounts, revocations or identity
    /// providers: the identities are read again, the policy engine stays.
    async fn identities_changed(&self, rc: &RequestCtx) -> Result<(), Reply> {
        self.refresh(rc, |iam, s| iam.reload_identities(s)).await
    }

    /// Puts a change of grants in force with its store write (`Iam::change_policies`): a
    /// policy that does not validate is a 400 MalformedPolicy and nothing is written.
    async fn change_policies(
        &self,
        rc: &RequestCtx,
        changes: Changes,
        write: impl FnOnce(&Store) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), Reply> {
        let (s, iam) = (self.store.clone(), self.iam.clone());
        match tokio::task::spawn_blocking(move || iam.change_policies(&s, &changes, write)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(IamError::Policy(p))) => Err(err(
                StatusCode::BAD_REQUEST,
                "MalformedPolicy",
                p.to_string(),
            )),
            Ok(Err(IamError::Store(e))) => Err(store_err(e, rc)),
            Err(_) => Err(err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "policy change failed",
            )),
        }
    }

    /// After a change to identities and grants at once: the whole snapshot is rebuilt.
    async fn reload(&self, rc: &RequestCtx) -> Result<(), Reply> {
        self.refresh(rc, |iam, s| iam.reload(s)).await
    }

    async fn refresh(
        &self,
        rc: &RequestCtx,
        f: impl FnOnce(&Iam, &Store) -> Result<(), IamError> + Send + 'static,
    ) -> Result<(), Reply> {
        let (s, iam) = (self.store.clone(), self.iam.clone());
        match tokio::task::spawn_blocking(move || f(&iam, &s)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(request_id = %rc.request_id, error = %e, "IAM reload failed");
                Err(err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "IAM reload failed",
                ))
            }
            Err(e) => {
                tracing::error!(request_id = %rc.request_id, error = %e, "IAM reload panicked");
                Err(err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "IAM reload failed",
                ))
            }
        }
    }

    async fn dispatch(
        &self,
        rc: &RequestCtx,
        principal: &fsgate_policy::Principal,
        method: &Method,
        uri: &Uri,
        body: Bytes,
    ) -> Reply {
        let rest = uri.path().strip_prefix(PREFIX).unwrap_or("");
        let segs: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let action = match (method.clone(), segs.as_slice()) {
            (Method::GET, ["users"]) => Action::AdminListUsers,
            (Method::POST, ["users"]) => Action::AdminAddUser,
            (Method::DELETE, ["users", _]) => Action::AdminRemoveUser,
            (Method::POST, ["users", _, "enable"]) => Action::AdminEnableUser,
            (Method::POST, ["users", _, "disable"]) => Action::AdminDisableUser,
            (Method::GET, ["users", _, "keys"]) => Action::AdminListKeys,
            (Method::POST, ["users", _, "keys"]) => Action::AdminCreateKey,
            (Method::DELETE, ["keys", _]) => Action::AdminDeleteKey,
            (Method::PUT, ["groups", _, "members", _]) => Action::AdminAddGroupMember,
            (Method::DELETE, ["groups", _, "members", _]) => Action::AdminRemoveGroupMember,
            (Method::GET, ["policies"]) => Action::AdminListPolicies,
            (Method::POST, ["policies"]) => Action::AdminAttachPolicy,
            // Replacing an attachment in place (same id) is attaching it anew.
            (Method::PUT, ["policies", _]) => Action::AdminAttachPolicy,
            (Method::DELETE, ["policies", _]) => Action::AdminDetachPolicy,
            (Method::GET, ["audit"]) => Action::AdminQueryAudit,
            (Method::POST, ["lifecycle", "run"]) => Action::AdminRunLifecycle,
            (Method::POST, ["users", _, "revoke"] | ["keys", _, "revoke"]) => {
                Action::AdminRevokeKeys
            }
            (Method::GET, ["idps"]) => Action::AdminListIdentityProviders,
            (Method::PUT, ["idps", _]) => Action::AdminAddIdentityProvider,
            (Method::DELETE, ["idps", _]) => Action::AdminRemoveIdentityProvider,
            (Method::GET, ["svcaccts"]) => Action::AdminListServiceAccounts,
            (Method::POST, ["svcaccts"]) => Action::AdminCreateServiceAccount,
            (Method::DELETE, ["svcaccts", _]) => Action::AdminDeleteServiceAccount,
            // Explaining and checking policies reads them: decided as admin:ListPolicies.
            (Method::POST, ["policy", "test" | "who-can" | "validate"]) => {
                Action::AdminListPolicies
            }
            _ => {
                return err(
                    StatusCode::NOT_FOUND,
                    "NoSuchRoute",
                    format!("no admin route {method} {}", uri.path()),
                );
            }
        };
        // Service accounts are decided on their owner: named, or the caller itself.
        let resource = if action.resource_kind() == fsgate_policy::ResourceKind::User {
            let caller = match principal.unlimited() {
                fsgate_policy::Principal::User { name, .. } => name.clone(),
                _ => String::new(),
            };
            let named = match action {
                Action::AdminDeleteServiceAccount => Some(
                    segs.get(1)
                        .and_then(|ak| self.iam.owner_of(ak))
                        .unwrap_or_default(),
                ),
                Action::AdminCreateServiceAccount => serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("user").and_then(Value::as_str).map(str::to_owned)),
                _ => query_map(uri)
                    .into_iter()
                    .find(|(k, _)| k == "user")
                    .map(|(_, v)| v),
            };
            Resource::User(named.unwrap_or(caller))
        } else {
            Resource::Service
        };
        let d = self.gate.decide(
            rc,
            principal,
            action,
            resource.clone(),
            AccessFacts::default(),
        );
        if !d.allowed {
            return err(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied");
        }
        match self.run(rc, action, &segs, uri, body, &resource).await {
            Ok(r) | Err(r) => r,
        }
    }

    async fn run(
        &self,
        rc: &RequestCtx,
        action: Action,
        segs: &[&str],
        uri: &Uri,
        body: Bytes,
        resource: &Resource,
    ) -> Result<Reply, Reply> {
        if let Some(r) = self.run_identity(rc, action, segs, &body, resource).await? {
            return Ok(r);
        }
        let seg = |i: usize| segs.get(i).map(|s| (*s).to_owned()).unwrap_or_default();
        let parse = |b: &Bytes| -> Result<Value, Reply> {
            serde_json::from_slice(b)
                .map_err(|e| err(StatusCode::BAD_REQUEST, "MalformedJSON", e.to_string()))
        };
        match action {
            Action::AdminListUsers => {
                let users = self
                    .blocking(|s| s.list_users())
                    .await
                    .map_err(|e| store_err(e, rc))?;
                let v: Vec<Value> = users
                    .into_iter()
                    .map(|u| json!({"name": u.name, "enabled": u.enabled, "groups": u.groups, "created": ns_to_rfc3339(u.created_ns)}))
                    .collect();
                Ok(Reply(StatusCode::OK, Value::Array(v)))
            }
            Action::AdminAddUser => {
                let req: NewUser = serde_json::from_value(parse(&body)?)
                    .map_err(|e| err(StatusCode::BAD_REQUEST, "MalformedJSON", e.to_string()))?;
                if !valid_name(&req.name) || req.name == self.iam.root().access_key {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "InvalidName",
                        "user names are 1-64 of A-Z a-z 0-9 . _ @ + = , -",
                    ));
                }
                let (ak, sk) = new_key_pair();
                let (name, ak2, sk2) = (req.name.clone(), ak.clone(), sk.clone());
                self.blocking(move |s| {
                    s.create_user(&name)?;
                    s.create_key(&name, &ak2, &sk2)
                })
                .await
                .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(
                    StatusCode::CREATED,
                    json!({"user": req.name, "access_key": ak, "secret_key": sk}),
                ))
            }
            Action::AdminRemoveUser => {
                let name = seg(1);
                self.blocking(move |s| s.delete_user(&name))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.reload(rc).await?;
                Ok(Reply(StatusCode::OK, json!({"removed": seg(1)})))
            }
            Action::AdminEnableUser | Action::AdminDisableUser => {
                let enabled = action == Action::AdminEnableUser;
                let name = seg(1);
                self.blocking(move |s| {
                    let mut u = s.user(&name)?;
                    u.enabled = enabled;
                    s.update_user(&u)
                })
                .await
                .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(
                    StatusCode::OK,
                    json!({"user": seg(1), "enabled": enabled}),
                ))
            }
            Action::AdminListKeys => {
                let name = seg(1);
                let keys = self
                    .blocking(move |s| {
                        s.user(&name)?;
                        s.list_keys(Some(&name))
                    })
                    .await
                    .map_err(|e| store_err(e, rc))?;
                let v: Vec<Value> = keys
                    .into_iter()
                    .map(|k| json!({"access_key": k.access_key, "user": k.user, "created": ns_to_rfc3339(k.created_ns)}))
                    .collect();
                Ok(Reply(StatusCode::OK, Value::Array(v)))
            }
            Action::AdminCreateKey => {
                let name = seg(1);
                let (ak, sk) = new_key_pair();
                let (ak2, sk2) = (ak.clone(), sk.clone());
                self.blocking(move |s| s.create_key(&name, &ak2, &sk2))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(
                    StatusCode::CREATED,
                    json!({"user": seg(1), "access_key": ak, "secret_key": sk}),
                ))
            }
            Action::AdminDeleteKey => {
                let ak = seg(1);
                self.blocking(move |s| s.delete_key(&ak))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(StatusCode::OK, json!({"deleted": seg(1)})))
            }
            Action::AdminAddGroupMember | Action::AdminRemoveGroupMember => {
                let add = action == Action::AdminAddGroupMember;
                let (group, user) = (seg(1), seg(3));
                if !valid_name(&group) {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "InvalidName",
                        "invalid group name",
                    ));
                }
                let g = group.clone();
                self.blocking(move |s| {
                    let mut u = s.user(&user)?;
                    u.groups.retain(|x| x != &g);
                    if add {
                        u.groups.push(g);
                        u.groups.sort();
                    }
                    s.update_user(&u)
                })
                .await
                .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(
                    StatusCode::OK,
                    json!({"group": group, "user": seg(3), "member": add}),
                ))
            }
            Action::AdminListPolicies if segs.first() == Some(&"policy") => {
                let req = parse(&body)?;
                self.explain(segs.get(1).copied().unwrap_or(""), &req, rc)
                    .await
            }
            Action::AdminListPolicies => {
                let atts = self
                    .blocking(|s| s.list_attachments())
                    .await
                    .map_err(|e| store_err(e, rc))?;
                Ok(Reply(
                    StatusCode::OK,
                    Value::Array(atts.iter().map(attachment_json).collect()),
                ))
            }
            Action::AdminAttachPolicy => {
                let req: NewAttachment = serde_json::from_value(parse(&body)?)
                    .map_err(|e| err(StatusCode::BAD_REQUEST, "MalformedJSON", e.to_string()))?;
                let mut att = self.attachment_of(req)?;
                let replacing = segs.len() == 2;
                if replacing {
                    let id = seg(1);
                    let exists = self
                        .blocking(|s| s.list_attachments())
                        .await
                        .map_err(|e| store_err(e, rc))?
                        .iter()
                        .any(|a| a.id == id);
                    if !exists {
                        return Err(err(
                            StatusCode::NOT_FOUND,
                            "NotFound",
                            format!("attachment {id} not found"),
                        ));
                    }
                    att.id = id;
                }
                let changes = Changes {
                    grants: vec![grant_of(&att)],
                    ..Changes::default()
                };
                let a = att.clone();
                self.change_policies(rc, changes, move |s| s.add_attachment(&a))
                    .await?;
                let status = if replacing {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                Ok(Reply(status, attachment_json(&att)))
            }
            Action::AdminDetachPolicy => {
                let id = seg(1);
                let changes = Changes {
                    removed_grants: vec![id.clone()],
                    ..Changes::default()
                };
                self.change_policies(rc, changes, move |s| s.delete_attachment(&id))
                    .await?;
                Ok(Reply(StatusCode::OK, json!({"detached": seg(1)})))
            }
            Action::AdminRunLifecycle => {
                // `{"now": "RFC 3339"}` applies the rules as of that time (tests, catch-up).
                let now = if body.is_empty() {
                    now_ns()
                } else {
                    let v = parse(&body)?;
                    match v.get("now").and_then(Value::as_str) {
                        None => now_ns(),
                        Some(t) => parse_time(t).ok_or_else(|| {
                            err(
                                StatusCode::BAD_REQUEST,
                                "InvalidArgument",
                                "now: RFC 3339 or Unix seconds",
                            )
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
                                    StatusCode::BAD_REQUEST,
                                    "InvalidArgument",
                                    "since: RFC 3339 or Unix seconds",
                                )
                            })?)
                        }
                        "until" => {
                            f.until_ns = Some(parse_time(&v).ok_or_else(|| {
                                err(
                                    StatusCode::BAD_REQUEST,
                                    "InvalidArgument",
                                    "until: RFC 3339 or Unix seconds",
                                )
                            })?)
                        }
                        "limit" => {
                            f.limit = v.parse().map_err(|_| {
                                err(
                                    StatusCode::BAD_REQUEST,
                                    "InvalidArgument",
                                    "limit: a number",
                                )
                            })?
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
            _ => Err(err(
                StatusCode::NOT_FOUND,
                "NoSuchRoute",
                "no such admin route",
            )),
        }
    }

    /// `policy test`, `policy who-can` and `policy validate`: the same engine and entities as
    /// live requests.
    async fn explain(&self, what: &str, req: &Value, rc: &RequestCtx) -> Result<Reply, Reply> {
        let field = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_owned);
        if what == "validate" {
            let text = field("cedar").ok_or_else(|| {
                err(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "cedar: the policy text",
                )
            })?;
            let candidate = Changes {
                grants: vec![fsgate_policy::Grant {
                    id: "validate".into(),
                    target: fsgate_policy::GrantTarget::User("policy-validate".into()),
                    policy: fsgate_policy::GrantPolicy::Cedar(text),
                }],
                ..Changes::default()
            };
            let iam = self.iam.clone();
            return match tokio::task::spawn_blocking(move || iam.check_policies(&candidate)).await {
                Ok(Ok(())) => Ok(Reply(StatusCode::OK, json!({"valid": true}))),
                Ok(Err(p)) => Err(err(
                    StatusCode::BAD_REQUEST,
                    "MalformedPolicy",
                    p.to_string(),
                )),
                Err(_) => Err(err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "validation failed",
                )),
            };
        }
        let action_name = field("action").ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "action: e.g. s3:GetObject",
            )
        })?;
        let action = Action::from_cedar_name(&action_name).ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                format!("unknown action {action_name}"),
            )
        })?;
        let resource_text = field("resource").unwrap_or_default();
        let resource = match action.resource_kind() {
            fsgate_policy::ResourceKind::Object => match resource_text.split_once('/') {
                Some((b, k)) if !b.is_empty() && !k.is_empty() => Resource::Object {
                    bucket: b.into(),
                    key: k.into(),
                },
                _ => {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "InvalidArgument",
                        "resource: bucket/key",
                    ));
                }
            },
            fsgate_policy::ResourceKind::Bucket if !resource_text.is_empty() => {
                Resource::Bucket(resource_text.trim_end_matches('/').to_owned())
            }
            fsgate_policy::ResourceKind::Bucket => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "resource: a bucket",
                ));
            }
            fsgate_policy::ResourceKind::Service => Resource::Service,
            fsgate_policy::ResourceKind::User => Resource::User(resource_text.clone()),
        };
        let ctx = req.get("context").cloned().unwrap_or_default();
        let ip = ctx.get("ip").and_then(Value::as_str).unwrap_or("127.0.0.1");
        let source_ip = ip.parse().map_err(|_| {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                format!("context ip {ip} is not an address"),
            )
        })?;
        let probe = RequestCtx::new(
            rc.request_id.clone(),
            rc.time_ns,
            source_ip,
            ctx.get("secure").and_then(Value::as_bool).unwrap_or(false),
            String::new(),
            "explain".into(),
            crate::identity::query::DecodedQuery::default(),
        );
        let listing = AccessFacts {
            prefix: ctx.get("prefix").and_then(Value::as_str),
            delimiter: ctx.get("delimiter").and_then(Value::as_str),
            max_keys: None,
            version: ctx.get("version").and_then(Value::as_str),
        };
        let decide = |p: &fsgate_policy::Principal| {
            self.gate
                .explain(&probe, p, action, resource.clone(), listing)
        };
        if what == "test" {
            let name = field("principal").ok_or_else(|| {
                err(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "principal: a user, root or anonymous",
                )
            })?;
            let p = self.iam.principal_named(&name).ok_or_else(|| {
                err(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("user {name} not found"),
                )
            })?;
            let d = decide(&p);
            let mut policies = d.policies.clone();
            if policies.is_empty() && !d.allowed {
                policies.push(crate::context::DEFAULT_DENY.into());
            }
            return Ok(Reply(
                StatusCode::OK,
                json!({
                    "principal": name, "action": action.cedar_name(), "resource": resource_text,
                    "decision": if d.allowed { "allow" } else { "deny" }, "policies": policies, "errors": d.errors,
                }),
            ));
        }
        // who-can: every user, and every group a member of which (holding no other grant) would be allowed.
        let users = self.iam.users();
        let mut allowed_users = Vec::new();
        let mut groups: Vec<String> = users.iter().flat_map(|u| u.groups.clone()).collect();
        for a in self
            .blocking(|s| s.list_attachments())
            .await
            .map_err(|e| store_err(e, rc))?
        {
            if let AttachTarget::Group(g) = a.target {
                groups.push(g);
            }
        }
        groups.sort();
        groups.dedup();
        for u in &users {
            let d = decide(&fsgate_policy::Principal::user(
                u.name.clone(),
                u.groups.clone(),
            ));
            if d.allowed {
                allowed_users
                    .push(json!({"user": u.name, "enabled": u.enabled, "policies": d.policies}));
            }
        }
        let mut allowed_groups = Vec::new();
        for g in groups {
            let member = fsgate_policy::Principal::user("\u{0}who-can-probe", vec![g.clone()]);
            let d = decide(&member);
            if d.allowed {
                allowed_groups.push(json!({"group": g, "policies": d.policies}));
            }
        }
        Ok(Reply(
            StatusCode::OK,
            json!({
                "action": action.cedar_name(), "resource": resource_text,
                "root": true, "users": allowed_users, "groups": allowed_groups,
            }),
        ))
    }

    fn attachment_of(&self, req: NewAttachment) -> Result<Attachment, Reply> {
        let target = match (req.user, req.group) {
            (Some(u), None) if crate::identity::iam::valid_principal_name(&u) => {
                AttachTarget::User(u)
            }
            (None, Some(g)) if valid_name(&g) => AttachTarget::Group(g),
            _ => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "give exactly one valid user or group",
                ));
            }
        };
        let policy = match (req.role, req.cedar) {
            (Some(role), None) => {
                if req.prefix.is_some() && req.bucket.is_none() {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "InvalidArgument",
                        "a prefix needs a bucket",
                    ));
                }
                AttachedPolicy::Role {
                    role,
                    bucket: req.bucket,
                    prefix: req.prefix,
                }
            }
            (None, Some(text)) => AttachedPolicy::Cedar { text },
            _ => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "give exactly one of role or cedar",
                ));
            }
        };
        let r: [u8; 6] = rand::random();
        Ok(Attachment {
            id: hex::encode(r),
            target,
            policy,
            created_ns: now_ns(),
        })
    }
}

fn attachment_json(a: &Attachment) -> Value {
    let (kind, name) = match &a.target {
        AttachTarget::User(n) => ("user", n),
        AttachTarget::Group(n) => ("group", n),
    };
    let mut v = json!({"id": a.id, kind: name, "created": ns_to_rfc3339(a.created_ns)});
    if let Some(obj) = v.as_object_mut() {
        match &a.policy {
            AttachedPolicy::Role {
                role,
                bucket,
                prefix,
            } => {
                obj.insert("role".into(), json!(role));
                obj.insert("bucket".into(), json!(bucket));
                obj.insert("prefix".into(), json!(prefix));
            }
            AttachedPolicy::Cedar { text } => {
                obj.insert("cedar".into(), json!(text));
            }
        }
    }
    v
}

impl AdminApi {
    /// True for admin API paths.
    #[must_use]
    pub fn matches(uri: &Uri) -> bool {
        uri.path().starts_with(PREFIX)
    }

    /// `GET /metrics` with a signature (the front layer answers every other scrape).
    #[must_use]
    pub fn is_metrics(method: &Method, uri: &Uri) -> bool {
        method == Method::GET && matches!(uri.path(), "/metrics" | "/minio/v2/metrics/cluster")
    }

    /// Answers one admin request.
    pub async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let rc = req
            .extensions
            .get::<Arc<RequestCtx>>()
            .cloned()
            .ok_or_else(|| s3_error!(InternalError, "missing request context"))?;
        let access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
        let bearer = crate::identity::bearer::bearer_token(&req.headers);
        let principal = match (access_key.as_deref(), bearer) {
            // An OIDC token of a configured provider stands for its user and groups.
            (None, Some(token)) => {
                let providers = self.iam.snapshot_now().providers.clone();
                let id = self.oidc.verify(&providers, token).await.map_err(|e| {
                    tracing::info!(request_id = %rc.request_id, reason = %e, "bearer token refused");
                    s3_error!(AccessDenied, "The bearer token was refused")
                })?;
                self.iam
                    .federated_principal(&id)
                    .map_err(crate::identity::signing::failure_error)?
            }
            (ak, _) => self
                .gate
                .principal(ak, &req.method, &req.headers, &rc.query)?,
        };
        rc.set_principal(&principal, access_key.as_deref().unwrap_or(""));
        if Self::is_metrics(&req.method, &req.uri) {
            let allowed = self
                .gate
                .decide(
                    &rc,
                    &principal,
                    Action::AdminScrapeMetrics,
                    Resource::Service,
                    AccessFacts::default(),
                )
                .allowed;
            if !allowed {
                return Err(s3_error!(AccessDenied, "Access Denied"));
            }
            let mut resp = S3Response::new(Body::from(self.scrape.render().await));
            resp.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return Ok(resp);
        }
        let body = http_body_util::Limited::new(req.input, MAX_BODY)
            .collect()
            .await
            .map_err(|_| {
                s3_error!(
                    IncompleteBody,
                    "admin request body unreadable or over 1 MiB"
                )
            })?
            .to_bytes();
        let Reply(status, value) = self
            .dispatch(&rc, &principal, &req.method, &req.uri, body)
            .await;
        let mut resp = S3Response::with_status(Body::from(value.to_string()), status);
        resp.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }
}
