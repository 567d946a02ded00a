//! Admin routes for policy attachments (grants of a role or Cedar text to a user or group),
//! and the way into `policy test`, `who-can` and `validate` (`explain.rs`).
//!
//! | method | path | action |
//! |---|---|---|
//! | GET, POST | /admin/v1/policies `{"user" or "group", "role" or "cedar" or "policy_name", ...}` | admin:ListPolicies, admin:AttachPolicy |
//! | PUT | /admin/v1/policies/{id} (replace in place) | admin:AttachPolicy |
//! | DELETE | /admin/v1/policies/{id} | admin:DetachPolicy |
//! | GET | /admin/v1/named-policies | admin:ListPolicies |
//! | PUT, DELETE | /admin/v1/named-policies/{name} `{"policy": IAM JSON or Cedar}` | admin:CreatePolicy, admin:DeletePolicy |
//! | POST | /admin/v1/policy/test, /who-can, /validate | admin:ListPolicies |

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use fsgate_policy::{Action, Changes};
use fsgate_store::model::{AttachTarget, AttachedPolicy, Attachment, NamedPolicyRecord};
use fsgate_store::now_ns;

use super::{AdminApi, AdminError, Reply, err, ns_to_rfc3339, store_err};
use crate::context::RequestCtx;
use crate::identity::iam::{grant_of, valid_name};

#[derive(Deserialize)]
struct NewAttachment {
    user: Option<String>,
    group: Option<String>,
    role: Option<String>,
    bucket: Option<String>,
    prefix: Option<String>,
    cedar: Option<String>,
    /// A named policy, attached by name (its later changes apply).
    policy_name: Option<String>,
}

#[derive(Deserialize)]
struct NamedPolicyBody {
    /// AWS IAM JSON or Cedar.
    policy: String,
}

impl AdminApi {
    pub(super) async fn run_policies(
        &self,
        rc: &RequestCtx,
        action: Action,
        segs: &[&str],
        body: &Bytes,
    ) -> Result<Option<Reply>, Reply> {
        let seg = |i: usize| super::seg(segs, i);
        let parse = super::json_body;
        let reply = match action {
            Action::AdminListPolicies if segs.first() == Some(&"policy") => {
                let req = parse(body)?;
                self.explain(segs.get(1).copied().unwrap_or(""), &req, rc)
                    .await
            }
            Action::AdminListPolicies if segs.first() == Some(&"named-policies") => {
                let named = self
                    .blocking(|s| s.list_named_policies())
                    .await
                    .map_err(|e| store_err(e, rc))?;
                Ok(Reply(
                    StatusCode::OK,
                    Value::Array(named.iter().map(named_json).collect()),
                ))
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
            Action::AdminCreatePolicy => {
                let name = seg(1);
                if !valid_name(&name) {
                    return Err(err(
                        AdminError::InvalidName,
                        "policy names are 1-64 of A-Z a-z 0-9 . _ @ + = , -",
                    ));
                }
                let req: NamedPolicyBody = serde_json::from_value(parse(body)?)
                    .map_err(|e| err(AdminError::MalformedJSON, e.to_string()))?;
                self.put_named_policy(rc, name.clone(), req.policy).await?;
                let n = name.clone();
                let rec = self
                    .blocking(move |s| s.named_policy(&n))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                Ok(Reply(
                    StatusCode::OK,
                    rec.as_ref().map_or(json!({"name": name}), named_json),
                ))
            }
            Action::AdminDeletePolicy => {
                let name = seg(1);
                let n = name.clone();
                if self
                    .blocking(move |s| s.named_policy(&n))
                    .await
                    .map_err(|e| store_err(e, rc))?
                    .is_none()
                {
                    return Err(err(
                        AdminError::NotFound,
                        format!("policy {name} not found"),
                    ));
                }
                self.delete_named_policy(rc, name.clone()).await?;
                Ok(Reply(StatusCode::OK, json!({"deleted": name})))
            }
            Action::AdminAttachPolicy => {
                let req: NewAttachment = serde_json::from_value(parse(body)?)
                    .map_err(|e| err(AdminError::MalformedJSON, e.to_string()))?;
                let named = match &req.policy_name {
                    Some(n) => Some(
                        self.blocking({
                            let n = n.clone();
                            move |s| s.named_policy(&n)
                        })
                        .await
                        .map_err(|e| store_err(e, rc))?
                        .ok_or_else(|| {
                            err(AdminError::NotFound, format!("policy {n} not found"))
                        })?,
                    ),
                    None => None,
                };
                let mut att = self.attachment_of(req, named)?;
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
                            AdminError::NotFound,
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
            _ => return Ok(None),
        };
        reply.map(Some)
    }

    fn attachment_of(
        &self,
        req: NewAttachment,
        named: Option<NamedPolicyRecord>,
    ) -> Result<Attachment, Reply> {
        let target = match (req.user, req.group) {
            (Some(u), None) if crate::identity::iam::valid_principal_name(&u) => {
                AttachTarget::User(u)
            }
            (None, Some(g)) if valid_name(&g) => AttachTarget::Group(g),
            _ => {
                return Err(err(
                    AdminError::InvalidArgument,
                    "give exactly one valid user or group",
                ));
            }
        };
        let policy = match (req.role, req.cedar) {
            (None, None) if named.is_some() => {
                let p = named.ok_or_else(|| err(AdminError::InvalidArgument, "no policy"))?;
                AttachedPolicy::Named {
                    name: p.name,
                    text: p.text,
                }
            }
            (Some(role), None) if named.is_none() => {
                if req.prefix.is_some() && req.bucket.is_none() {
                    return Err(err(AdminError::InvalidArgument, "a prefix needs a bucket"));
                }
                AttachedPolicy::Role {
                    role,
                    bucket: req.bucket,
                    prefix: req.prefix,
                }
            }
            (None, Some(text)) if named.is_none() => AttachedPolicy::Cedar { text },
            _ => {
                return Err(err(
                    AdminError::InvalidArgument,
                    "give exactly one of role, cedar or policy_name",
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

impl AdminApi {
    /// Creates or replaces a named policy: the text must translate and validate even when
    /// nothing holds it yet, and every attachment of the name takes the new text in the same
    /// change (the MinIO, IAM and native admin APIs all come here).
    pub(super) async fn put_named_policy(
        &self,
        rc: &RequestCtx,
        name: String,
        text: String,
    ) -> Result<(), Reply> {
        if text.trim().is_empty() {
            return Err(err(
                AdminError::MalformedPolicy,
                "the policy document is empty",
            ));
        }
        let atts: Vec<Attachment> = self
            .blocking(|s| s.list_attachments())
            .await
            .map_err(|e| store_err(e, rc))?
            .into_iter()
            .filter(|a| matches!(&a.policy, AttachedPolicy::Named { name: n, .. } if *n == name))
            .map(|mut a| {
                a.policy = AttachedPolicy::Named {
                    name: name.clone(),
                    text: text.clone(),
                };
                a
            })
            .collect();
        let probe = Attachment {
            id: format!("named-policy:{name}"),
            target: AttachTarget::User("policy-check".into()),
            policy: AttachedPolicy::Named {
                name: name.clone(),
                text: text.clone(),
            },
            created_ns: 0,
        };
        self.iam
            .check_policies(&Changes {
                grants: vec![grant_of(&probe)],
                ..Changes::default()
            })
            .map_err(|e| err(AdminError::MalformedPolicy, e.to_string()))?;
        let now = now_ns();
        let n = name.clone();
        let existing = self
            .blocking(move |s| s.named_policy(&n))
            .await
            .map_err(|e| store_err(e, rc))?;
        let rec = NamedPolicyRecord {
            name,
            text,
            created_ns: existing.map_or(now, |e| e.created_ns),
            updated_ns: now,
        };
        let changes = Changes {
            grants: atts.iter().map(grant_of).collect(),
            ..Changes::default()
        };
        self.change_policies(rc, changes, move |s| s.put_named_policy(&rec, &atts))
            .await
    }

    /// Deletes a named policy and detaches it everywhere, in one change.
    pub(super) async fn delete_named_policy(
        &self,
        rc: &RequestCtx,
        name: String,
    ) -> Result<(), Reply> {
        let ids: Vec<String> = self
            .blocking(|s| s.list_attachments())
            .await
            .map_err(|e| store_err(e, rc))?
            .into_iter()
            .filter(|a| matches!(&a.policy, AttachedPolicy::Named { name: n, .. } if *n == name))
            .map(|a| a.id)
            .collect();
        let changes = Changes {
            removed_grants: ids.clone(),
            ..Changes::default()
        };
        self.change_policies(rc, changes, move |s| s.delete_named_policy(&name, &ids))
            .await
    }
}

fn named_json(p: &NamedPolicyRecord) -> Value {
    let mut v = json!({
        "name": p.name, "policy": p.text,
        "created": ns_to_rfc3339(p.created_ns), "updated": ns_to_rfc3339(p.updated_ns),
    });
    if let (Ok(cedar), Some(o)) = (
        fsgate_policy::bucket_policy::translate_identity(&p.text),
        v.as_object_mut(),
    ) {
        o.insert("cedar_in_force".into(), json!(cedar));
    }
    v
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
            AttachedPolicy::Named { name, text } => {
                obj.insert("policy_name".into(), json!(name));
                obj.insert("cedar".into(), json!(text));
                if let Ok(cedar) = fsgate_policy::bucket_policy::translate_identity(text) {
                    obj.insert("cedar_in_force".into(), json!(cedar));
                }
            }
            AttachedPolicy::Cedar { text } => {
                obj.insert("cedar".into(), json!(text));
                // The Cedar an AWS IAM JSON policy became (the text itself for Cedar).
                if let Ok(cedar) = fsgate_policy::bucket_policy::translate_identity(text) {
                    obj.insert("cedar_in_force".into(), json!(cedar));
                }
            }
        }
    }
    v
}
