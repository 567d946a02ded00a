//! `policy test`, `policy who-can` and `policy validate`: decisions explained with the same
//! engine and entities as live requests.

use http::StatusCode;
use serde_json::{Value, json};

use fsgate_policy::{Action, Changes, Resource};

use fsgate_store::model::AttachTarget;

use super::{AdminApi, AdminError, Reply, err, store_err};
use crate::access::AccessFacts;
use crate::context::RequestCtx;

impl AdminApi {
    /// Answers `what` (`test`, `who-can` or `validate`) for the request body `req`.
    pub(super) async fn explain(
        &self,
        what: &str,
        req: &Value,
        rc: &RequestCtx,
    ) -> Result<Reply, Reply> {
        let field = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_owned);
        if what == "validate" {
            let text = field("cedar")
                .ok_or_else(|| err(AdminError::InvalidArgument, "cedar: the policy text"))?;
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
                Ok(Err(p)) => Err(err(AdminError::MalformedPolicy, p.to_string())),
                Err(_) => Err(err(AdminError::InternalError, "validation failed")),
            };
        }
        let action_name = field("action")
            .ok_or_else(|| err(AdminError::InvalidArgument, "action: e.g. s3:GetObject"))?;
        let action = Action::from_cedar_name(&action_name).ok_or_else(|| {
            err(
                AdminError::InvalidArgument,
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
                    return Err(err(AdminError::InvalidArgument, "resource: bucket/key"));
                }
            },
            fsgate_policy::ResourceKind::Bucket if !resource_text.is_empty() => {
                Resource::Bucket(resource_text.trim_end_matches('/').to_owned())
            }
            fsgate_policy::ResourceKind::Bucket => {
                return Err(err(AdminError::InvalidArgument, "resource: a bucket"));
            }
            fsgate_policy::ResourceKind::Service => Resource::Service,
            fsgate_policy::ResourceKind::User => Resource::User(resource_text.clone()),
        };
        let ctx = req.get("context").cloned().unwrap_or_default();
        let ip = ctx.get("ip").and_then(Value::as_str).unwrap_or("127.0.0.1");
        let source_ip = ip.parse().map_err(|_| {
            err(
                AdminError::InvalidArgument,
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
        let header = |k: &str| ctx.get(k).and_then(Value::as_str).map(str::to_owned);
        // The request headers conditions read, by their context names.
        let headers = fsgate_policy::RequestHeaders {
            sse_kms_key_id: header("sse_kms_key_id"),
            sse_customer_algorithm: header("sse_customer_algorithm"),
            acl: header("acl"),
            grant_read: header("grant_read"),
            grant_write: header("grant_write"),
            grant_read_acp: header("grant_read_acp"),
            grant_write_acp: header("grant_write_acp"),
            grant_full_control: header("grant_full_control"),
            copy_source: header("copy_source"),
            metadata_directive: header("metadata_directive"),
            user_agent: header("user_agent"),
            referer: header("referer"),
            request_tags: ctx.get("request_tags").and_then(Value::as_object).map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            }),
        };
        let listing = AccessFacts {
            prefix: ctx.get("prefix").and_then(Value::as_str),
            delimiter: ctx.get("delimiter").and_then(Value::as_str),
            max_keys: None,
            version: ctx.get("version").and_then(Value::as_str),
            server_side_encryption: ctx.get("server_side_encryption").and_then(Value::as_str),
            headers: Some(&headers),
        };
        let decide = |p: &fsgate_policy::Principal| {
            self.gate
                .explain(&probe, p, action, resource.clone(), listing)
        };
        if what == "test" {
            let name = field("principal").ok_or_else(|| {
                err(
                    AdminError::InvalidArgument,
                    "principal: a user, root or anonymous",
                )
            })?;
            let p = match name.strip_prefix("sharelink:") {
                Some(id) => self.share_link_named(id)?,
                None => self
                    .iam
                    .principal_named(&name)
                    .ok_or_else(|| err(AdminError::NotFound, format!("user {name} not found")))?,
            };
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
        // Anyone at all: what public ACLs and bucket policies open.
        let anonymous = decide(&fsgate_policy::Principal::Anonymous);
        let anonymous = anonymous
            .allowed
            .then(|| json!({"policies": anonymous.policies}));
        Ok(Reply(
            StatusCode::OK,
            json!({
                "action": action.cedar_name(), "resource": resource_text,
                "root": true, "users": allowed_users, "groups": allowed_groups,
                "anonymous": anonymous,
            }),
        ))
    }
}

impl AdminApi {
    /// A share link as a principal (`sharelink:ID`), with its creator as the creator is now.
    fn share_link_named(&self, id: &str) -> Result<fsgate_policy::Principal, Reply> {
        let rec = self
            .store
            .share(id)
            .ok()
            .flatten()
            .ok_or_else(|| err(AdminError::NotFound, format!("share link {id} not found")))?;
        let creator = self
            .iam
            .principal_for_link(&rec.creator_key, rec.created_ns)
            .map_err(|_| {
                err(
                    AdminError::NotFound,
                    format!(
                        "share link {id}: its creator {} can no longer act (disabled, deleted, revoked or expired)",
                        rec.creator
                    ),
                )
            })?;
        Ok(crate::share::link_principal(&rec, creator))
    }
}
