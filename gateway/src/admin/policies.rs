//! Admin routes for policy attachments (grants of a role or Cedar text to a user or group),
//! and the way into `policy test`, `who-can` and `validate` (`explain.rs`).
//!
//! | method | path | action |
//! |---|---|---|
//! | GET, POST | /admin/v1/policies | admin:ListPolicies, admin:AttachPolicy |
//! | PUT | /admin/v1/policies/{id} (replace in place) | admin:AttachPolicy |
//! | DELETE | /admin/v1/policies/{id} | admin:DetachPolicy |
//! | POST | /admin/v1/policy/test, /who-can, /validate | admin:ListPolicies |

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use fsgate_policy::{Action, Changes};
use fsgate_store::model::{AttachTarget, AttachedPolicy, Attachment};
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
                let req: NewAttachment = serde_json::from_value(parse(body)?)
                    .map_err(|e| err(AdminError::MalformedJSON, e.to_string()))?;
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

    fn attachment_of(&self, req: NewAttachment) -> Result<Attachment, Reply> {
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
            (Some(role), None) => {
                if req.prefix.is_some() && req.bucket.is_none() {
                    return Err(err(AdminError::InvalidArgument, "a prefix needs a bucket"));
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
                    AdminError::InvalidArgument,
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
