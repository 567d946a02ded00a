//! MinIO admin commands for identities: users (a MinIO user is an fsgate user whose name is its
//! access key), groups, canned policies (named policies; MinIO's built-in names are fsgate
//! roles) and their attachments, and service accounts.
//!
//! | command | action |
//! |---|---|
//! | `add-user`, `remove-user`, `set-user-status`, `user-info`, `list-users` | admin:AddUser, admin:RemoveUser, admin:EnableUser / DisableUser, admin:ListUsers |
//! | `update-group-members`, `set-group-status`, `group`, `groups` | admin:AddGroupMember / RemoveGroupMember / RemoveGroup, admin:EnableGroup / DisableGroup, admin:ListGroups |
//! | `add-canned-policy`, `remove-canned-policy`, `info-canned-policy`, `list-canned-policies` | admin:CreatePolicy, admin:DeletePolicy, admin:ListPolicies |
//! | `set-user-or-group-policy`, `idp/builtin/policy/attach`, `/detach`, `/policy-entities` | admin:AttachPolicy, admin:DetachPolicy, admin:ListPolicies |
//! | `add-service-account`, `update-service-account`, `info-service-account`, `list-service-accounts`, `delete-service-account` | admin:CreateServiceAccount, admin:UpdateServiceAccount, admin:ListServiceAccounts, admin:DeleteServiceAccount (on the owner) |

use std::collections::{BTreeMap, BTreeSet};

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use fsgate_policy::{Action, Changes, Principal, Resource};
use fsgate_store::model::{
    AttachTarget, AttachedPolicy, Attachment, GroupRecord, KeySettings, ServiceAccountRecord,
};
use fsgate_store::{Store, StoreError, now_ns};

use super::{Answer, Command, MinioError, Outcome, Refusal, refuse, rfc3339, store_refusal};
use crate::admin::AdminApi;
use crate::context::RequestCtx;
use crate::identity::iam::{grant_of, valid_name};

/// MinIO's built-in policies: their names, the fsgate role each is, and the document MinIO
/// shows for it.
const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "readonly",
        "readonly",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetBucketLocation","s3:GetObject"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "readwrite",
        "readwrite",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "writeonly",
        "writeonly",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "diagnostics",
        "diagnostics",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:ServerInfo","admin:Prometheus"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "consoleAdmin",
        "admin",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:*"]},{"Effect":"Allow","Action":["kms:*"]},{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
];

fn built_in(name: &str) -> Option<(&'static str, &'static str)> {
    BUILT_IN
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, role, doc)| (*role, *doc))
}

/// The MinIO policy name an attachment is: a named policy's name, or a built-in's for a role
/// on every bucket. Other attachments (scoped roles, Cedar) have none.
fn policy_name(a: &Attachment) -> Option<String> {
    match &a.policy {
        AttachedPolicy::Named { name, .. } => Some(name.clone()),
        AttachedPolicy::Role {
            role,
            bucket: None,
            prefix: None,
        } => BUILT_IN
            .iter()
            .find(|(_, r, _)| r == role)
            .map(|(n, _, _)| (*n).to_owned()),
        _ => None,
    }
}

/// The members a `update-group-members` body names: a JSON list (madmin) or a comma-separated
/// string (`MinioAdmin`).
pub(super) fn members_of(v: &Value) -> Vec<String> {
    match v.get("members") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Splits a comma-separated list of policy names.
fn names(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Deserialize)]
struct NewUser {
    #[serde(rename = "secretKey")]
    secret_key: String,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
struct PolicyChange {
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    user: String,
    #[serde(default)]
    group: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NewServiceAccount {
    #[serde(default)]
    policy: Option<Value>,
    #[serde(default)]
    access_key: String,
    #[serde(default)]
    secret_key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    expiration: Option<String>,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ServiceAccountChange {
    #[serde(default)]
    new_policy: Option<Value>,
    #[serde(default)]
    new_secret_key: String,
    #[serde(default)]
    new_status: String,
    #[serde(default)]
    new_name: String,
    #[serde(default)]
    new_description: String,
    #[serde(default)]
    new_expiration: Option<String>,
}

/// A policy given as JSON (a document) or as a string holding one; `None` for none.
fn policy_text(v: Option<Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Object(o)) if o.is_empty() => None,
        Some(other) => Some(other.to_string()),
    }
}

fn expiry_of(s: Option<&str>) -> Result<Option<u64>, Refusal> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t) => {
            let at = crate::admin::parse_time(t).ok_or_else(|| {
                refuse(
                    MinioError::InvalidArgument,
                    format!("expiration {t:?} is not an RFC 3339 time"),
                )
            })?;
            if at <= now_ns() {
                return Err(refuse(
                    MinioError::InvalidArgument,
                    "the expiration is in the past",
                ));
            }
            Ok(Some(at))
        }
    }
}

fn status_of(s: &str) -> Result<Option<bool>, Refusal> {
    match s {
        "" => Ok(None),
        "on" | "enabled" => Ok(Some(false)),
        "off" | "disabled" => Ok(Some(true)),
        other => Err(refuse(
            MinioError::InvalidArgument,
            format!("status {other:?}: on, off, enabled or disabled"),
        )),
    }
}

impl AdminApi {
    /// The identity commands; `None` when `action` is not one of them.
    pub(super) async fn minio_iam(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        action: Action,
        c: &Command,
        resource: &Resource,
    ) -> Result<Option<Answer>, Refusal> {
        let answer = match action {
            Action::AdminListUsers if c.name == "user-info" => self.minio_user_info(rc, c).await,
            Action::AdminListUsers => self.minio_list_users(rc).await,
            Action::AdminAddUser => self.minio_add_user(rc, c).await,
            Action::AdminRemoveUser => {
                let name = c.param("accessKey");
                self.minio_user_exists(&name)?;
                let n = name.clone();
                self.store_op(rc, move |s| s.delete_user(&n)).await?;
                self.reload(rc).await.map_err(super::from_native)?;
                Ok(Answer::Empty(StatusCode::OK))
            }
            Action::AdminEnableUser | Action::AdminDisableUser => {
                let name = c.param("accessKey");
                self.minio_user_exists(&name)?;
                let enabled = action == Action::AdminEnableUser;
                self.store_op(rc, move |s| {
                    let mut u = s.user(&name)?;
                    u.enabled = enabled;
                    s.update_user(&u)
                })
                .await?;
                self.identities_changed(rc)
                    .await
                    .map_err(super::from_native)?;
                Ok(Answer::Empty(StatusCode::OK))
            }
            Action::AdminListGroups if c.name == "group" => self.minio_group_info(rc, c).await,
            Action::AdminListGroups => {
                let groups: Vec<String> = self.minio_groups(rc).await?.into_keys().collect();
                Ok(Answer::Json(json!(groups)))
            }
            Action::AdminAddGroupMember
            | Action::AdminRemoveGroupMember
            | Action::AdminRemoveGroup => self.minio_group_members(rc, action, c).await,
            Action::AdminEnableGroup | Action::AdminDisableGroup => {
                let group = c.param("group");
                if !self.minio_groups(rc).await?.contains_key(&group) {
                    return Err(no_such_group(&group));
                }
                let rec = GroupRecord {
                    name: group,
                    disabled: action == Action::AdminDisableGroup,
                };
                self.store_op(rc, move |s| s.put_group(&rec)).await?;
                self.identities_changed(rc)
                    .await
                    .map_err(super::from_native)?;
                Ok(Answer::Empty(StatusCode::OK))
            }
            Action::AdminCreatePolicy => self.minio_put_policy(rc, c).await,
            Action::AdminDeletePolicy => self.minio_delete_policy(rc, c).await,
            Action::AdminListPolicies if c.name == "idp/builtin/policy-entities" => {
                self.minio_policy_entities(rc, c).await
            }
            Action::AdminListPolicies => self.minio_read_policies(rc, c).await,
            Action::AdminAttachPolicy | Action::AdminDetachPolicy => {
                self.minio_attach(rc, action, c).await
            }
            Action::AdminCreateServiceAccount => self.minio_add_svc(rc, c, resource).await,
            Action::AdminUpdateServiceAccount => self.minio_update_svc(rc, c).await,
            Action::AdminListServiceAccounts if c.name == "info-service-account" => {
                self.minio_svc_info(rc, c).await
            }
            Action::AdminListServiceAccounts => {
                let owner = match resource {
                    Resource::User(u) if !u.is_empty() => u.clone(),
                    _ => {
                        return Err(refuse(
                            MinioError::InvalidArgument,
                            "the user parameter is missing",
                        ));
                    }
                };
                let settings = self.svc_settings(rc).await?;
                let accounts: Vec<Value> = self
                    .iam
                    .service_accounts(Some(&owner))
                    .iter()
                    .map(|sa| svc_json(sa, settings.get(&sa.access_key), true))
                    .collect();
                Ok(Answer::Sealed(json!({"accounts": accounts})))
            }
            Action::AdminDeleteServiceAccount => {
                let ak = c.param("accessKey");
                self.minio_svc(&ak)?;
                self.store_op(rc, move |s| s.delete_key(&ak)).await?;
                self.identities_changed(rc)
                    .await
                    .map_err(super::from_native)?;
                Ok(Answer::Empty(StatusCode::NO_CONTENT))
            }
            _ => return Ok(None),
        };
        let _ = principal;
        answer.map(Some)
    }

    async fn store_op<T: Send + 'static>(
        &self,
        rc: &RequestCtx,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Refusal> {
        self.blocking(f).await.map_err(|e| store_refusal(&e, rc))
    }

    fn minio_user_exists(&self, name: &str) -> Result<(), Refusal> {
        if self.iam.users().iter().any(|u| u.name == name) {
            Ok(())
        } else {
            Err(refuse(
                MinioError::NoSuchUser,
                format!("The specified user does not exist: {name}"),
            ))
        }
    }

    async fn attachments(&self, rc: &RequestCtx) -> Result<Vec<Attachment>, Refusal> {
        self.store_op(rc, |s| s.list_attachments()).await
    }

    /// The MinIO policy names attached to a target, comma-separated as MinIO shows them.
    fn policy_names_of(atts: &[Attachment], target: &AttachTarget) -> Vec<String> {
        let mut v: Vec<String> = atts
            .iter()
            .filter(|a| &a.target == target)
            .filter_map(policy_name)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    async fn minio_user_info(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let name = c.param("accessKey");
        let user = self
            .iam
            .users()
            .into_iter()
            .find(|u| u.name == name)
            .ok_or_else(|| {
                refuse(
                    MinioError::NoSuchUser,
                    format!("The specified user does not exist: {name}"),
                )
            })?;
        let stored = self.store_op(rc, move |s| s.user(&name)).await?;
        let atts = self.attachments(rc).await?;
        Ok(Answer::Json(user_json(&stored, &atts, user.enabled)))
    }

    async fn minio_list_users(&self, rc: &RequestCtx) -> Outcome {
        let users = self.store_op(rc, |s| s.list_users()).await?;
        let atts = self.attachments(rc).await?;
        let map: serde_json::Map<String, Value> = users
            .iter()
            .map(|u| (u.name.clone(), user_json(u, &atts, u.enabled)))
            .collect();
        Ok(Answer::Sealed(Value::Object(map)))
    }

    /// `add-user`: creates the user named by its access key with that key pair, or, as MinIO
    /// does, sets a user's secret key and status when it exists.
    async fn minio_add_user(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let ak = c.param("accessKey");
        let req: NewUser = c.json()?;
        if !valid_name(&ak) {
            return Err(refuse(
                MinioError::InvalidAccessKey,
                "an access key that is a user name: 3-64 of A-Z a-z 0-9 . _ @ + = , -",
            ));
        }
        match crate::identity::keys::given_key_pair(Some(&ak), Some(&req.secret_key)) {
            Err(crate::identity::keys::GivenKeyError::SecretKey) => {
                return Err(refuse(
                    MinioError::InvalidSecretKey,
                    "secret keys are 8-128 printable ASCII characters",
                ));
            }
            Err(e) => return Err(refuse(MinioError::InvalidAccessKey, e.to_string())),
            Ok(_) => {}
        }
        if ak == self.iam.root().access_key {
            return Err(refuse(
                MinioError::InvalidAccessKey,
                "the root user's access key cannot be a user",
            ));
        }
        let disabled = status_of(&req.status)?.unwrap_or(false);
        let sk = req.secret_key;
        self.store_op(rc, move |s| {
            match s.user(&ak) {
                Err(StoreError::NotFound(_)) => {
                    s.create_user_with_key(&ak, &ak, &sk)?;
                }
                Err(e) => return Err(e),
                Ok(_) => {
                    // An existing user: its key of the same name takes the new secret.
                    match s.key(&ak)? {
                        Some(k) if k.user != ak => {
                            return Err(StoreError::AlreadyExists(format!("access key {ak}")));
                        }
                        Some(_) => s.delete_key(&ak)?,
                        None => {}
                    }
                    s.create_key(&ak, &ak, &sk)?;
                }
            }
            let mut u = s.user(&ak)?;
            u.enabled = !disabled;
            s.update_user(&u)
        })
        .await?;
        self.identities_changed(rc)
            .await
            .map_err(super::from_native)?;
        Ok(Answer::Empty(StatusCode::OK))
    }

    /// Every group: those with members and those with a record; with their members.
    async fn minio_groups(
        &self,
        rc: &RequestCtx,
    ) -> Result<BTreeMap<String, (Vec<String>, bool)>, Refusal> {
        let (users, records) = self
            .store_op(rc, |s| Ok((s.list_users()?, s.list_groups()?)))
            .await?;
        let mut out: BTreeMap<String, (Vec<String>, bool)> = BTreeMap::new();
        for g in records {
            out.entry(g.name).or_default().1 = g.disabled;
        }
        for u in users {
            for g in u.groups {
                out.entry(g).or_default().0.push(u.name.clone());
            }
        }
        Ok(out)
    }

    async fn minio_group_info(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let group = c.param("group");
        let groups = self.minio_groups(rc).await?;
        let (members, disabled) = groups.get(&group).ok_or_else(|| no_such_group(&group))?;
        let atts = self.attachments(rc).await?;
        let policies = Self::policy_names_of(&atts, &AttachTarget::Group(group.clone()));
        Ok(Answer::Json(json!({
            "name": group,
            "status": if *disabled { "disabled" } else { "enabled" },
            "members": members,
            "policy": policies.join(","),
            "updatedAt": rfc3339(now_ns()),
        })))
    }

    async fn minio_group_members(&self, rc: &RequestCtx, action: Action, c: &Command) -> Outcome {
        let v: Value = c.json()?;
        let group = v
            .get("group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !valid_name(&group) {
            return Err(refuse(
                MinioError::InvalidArgument,
                "group names are 1-64 of A-Z a-z 0-9 . _ @ + = , -",
            ));
        }
        let members = members_of(&v);
        let groups = self.minio_groups(rc).await?;
        match action {
            Action::AdminRemoveGroup => {
                let (current, _) = groups.get(&group).ok_or_else(|| no_such_group(&group))?;
                if !current.is_empty() {
                    return Err(refuse(
                        MinioError::GroupNotEmpty,
                        format!(
                            "The specified group is not empty - cannot remove it: {group} has {} member(s)",
                            current.len()
                        ),
                    ));
                }
                let changes = Changes {
                    removed_grants: self
                        .attachments(rc)
                        .await?
                        .into_iter()
                        .filter(|a| a.target == AttachTarget::Group(group.clone()))
                        .map(|a| a.id)
                        .collect(),
                    ..Changes::default()
                };
                let g = group.clone();
                self.change_policies(rc, changes, move |s| s.delete_group(&g))
                    .await
                    .map_err(super::from_native)?;
            }
            _ => {
                let add = action == Action::AdminAddGroupMember;
                if !add && !groups.contains_key(&group) {
                    return Err(no_such_group(&group));
                }
                for m in &members {
                    self.minio_user_exists(m)?;
                }
                let g = group.clone();
                self.store_op(rc, move |s| {
                    for m in &members {
                        let mut u = s.user(m)?;
                        u.groups.retain(|x| x != &g);
                        if add {
                            u.groups.push(g.clone());
                            u.groups.sort();
                        }
                        s.update_user(&u)?;
                    }
                    // A group made with no members yet still exists (MinIO's `group add`).
                    if add && !s.list_groups()?.iter().any(|r| r.name == g) {
                        s.put_group(&GroupRecord {
                            name: g,
                            disabled: false,
                        })?;
                    }
                    Ok(())
                })
                .await?;
                self.identities_changed(rc)
                    .await
                    .map_err(super::from_native)?;
            }
        }
        Ok(Answer::Empty(StatusCode::OK))
    }

    /// `add-canned-policy?name=`: creates or replaces a named policy; every attachment of the
    /// name takes the new text in the same change.
    async fn minio_put_policy(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let name = c.param("name");
        if !valid_name(&name) {
            return Err(refuse(
                MinioError::InvalidArgument,
                "policy names are 1-64 of A-Z a-z 0-9 . _ @ + = , -",
            ));
        }
        if built_in(&name).is_some() {
            return Err(refuse(
                MinioError::InvalidArgument,
                format!("{name} is a built-in policy (an fsgate role) and cannot be replaced"),
            ));
        }
        let text = std::str::from_utf8(&c.body)
            .map_err(|_| refuse(MinioError::MalformedPolicy, "the policy is not UTF-8"))?
            .to_owned();
        if text.trim().is_empty() {
            return Err(refuse(
                MinioError::MalformedPolicy,
                "the policy document is empty",
            ));
        }
        self.put_named_policy(rc, name, text)
            .await
            .map_err(super::from_native)?;
        Ok(Answer::Empty(StatusCode::OK))
    }

    async fn minio_delete_policy(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let name = c.param("name");
        if built_in(&name).is_some() {
            return Err(refuse(
                MinioError::InvalidArgument,
                format!("{name} is a built-in policy (an fsgate role) and cannot be removed"),
            ));
        }
        let n = name.clone();
        if self
            .store_op(rc, move |s| s.named_policy(&n))
            .await?
            .is_none()
        {
            return Err(no_such_policy(&name));
        }
        self.delete_named_policy(rc, name)
            .await
            .map_err(super::from_native)?;
        Ok(Answer::Empty(StatusCode::OK))
    }

    /// `list-canned-policies` (every name with its document) and `info-canned-policy?name=`
    /// (the document; with `v=2`, MinIO's `PolicyInfo`).
    async fn minio_read_policies(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let named = self.store_op(rc, |s| s.list_named_policies()).await?;
        let document = |text: &str| -> Value {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        };
        if c.name == "list-canned-policies" {
            let mut map = serde_json::Map::new();
            for (n, _, doc) in BUILT_IN {
                map.insert((*n).to_owned(), document(doc));
            }
            for p in &named {
                map.insert(p.name.clone(), document(&p.text));
            }
            return Ok(Answer::Json(Value::Object(map)));
        }
        let name = c.param("name");
        let (doc, created, updated) = if let Some((_, doc)) = built_in(&name) {
            (document(doc), 0, 0)
        } else {
            let p = named
                .iter()
                .find(|p| p.name == name)
                .ok_or_else(|| no_such_policy(&name))?;
            (document(&p.text), p.created_ns, p.updated_ns)
        };
        if c.param("v") == "2" {
            return Ok(Answer::Json(json!({
                "PolicyName": name, "Policy": doc,
                "CreateDate": rfc3339(created), "UpdateDate": rfc3339(updated),
            })));
        }
        Ok(Answer::Json(doc))
    }

    /// The attachment of a policy name to a target: a role for a built-in name, the named
    /// policy's text otherwise.
    async fn attachment_for(
        &self,
        rc: &RequestCtx,
        name: &str,
        target: &AttachTarget,
    ) -> Result<Attachment, Refusal> {
        let policy = if let Some((role, _)) = built_in(name) {
            AttachedPolicy::Role {
                role: role.to_owned(),
                bucket: None,
                prefix: None,
            }
        } else {
            let n = name.to_owned();
            let p = self
                .store_op(rc, move |s| s.named_policy(&n))
                .await?
                .ok_or_else(|| no_such_policy(name))?;
            AttachedPolicy::Named {
                name: p.name,
                text: p.text,
            }
        };
        let r: [u8; 6] = rand::random();
        Ok(Attachment {
            id: hex::encode(r),
            target: target.clone(),
            policy,
            created_ns: now_ns(),
        })
    }

    async fn minio_target(
        &self,
        rc: &RequestCtx,
        user: &str,
        group: &str,
    ) -> Result<AttachTarget, Refusal> {
        match (user.is_empty(), group.is_empty()) {
            (false, true) => {
                // A federated user (`PROVIDER:USER`) has no record and can still be granted.
                if !user.contains(':') {
                    self.minio_user_exists(user)?;
                }
                Ok(AttachTarget::User(user.to_owned()))
            }
            (true, false) => {
                if !self.minio_groups(rc).await?.contains_key(group) {
                    return Err(no_such_group(group));
                }
                Ok(AttachTarget::Group(group.to_owned()))
            }
            _ => Err(refuse(
                MinioError::InvalidArgument,
                "give exactly one of user or group",
            )),
        }
    }

    /// `set-user-or-group-policy` (the target's policies become exactly the names given),
    /// `idp/builtin/policy/attach` and `/detach` (names added or taken away).
    async fn minio_attach(&self, rc: &RequestCtx, action: Action, c: &Command) -> Outcome {
        let (wanted, target, replace) = if c.name == "set-user-or-group-policy" {
            let who = c.param("userOrGroup");
            let (u, g) = if c.param("isGroup") == "true" {
                (String::new(), who)
            } else {
                (who, String::new())
            };
            (
                names(&c.param("policyName")),
                self.minio_target(rc, &u, &g).await?,
                true,
            )
        } else {
            let req: PolicyChange = c.json()?;
            let wanted: Vec<String> = req.policies.iter().flat_map(|p| names(p)).collect();
            if wanted.is_empty() {
                return Err(refuse(MinioError::InvalidArgument, "no policy named"));
            }
            (
                wanted,
                self.minio_target(rc, &req.user, &req.group).await?,
                false,
            )
        };
        let atts = self.attachments(rc).await?;
        let current: Vec<(String, String)> = atts
            .iter()
            .filter(|a| a.target == target)
            .filter_map(|a| policy_name(a).map(|n| (n, a.id.clone())))
            .collect();
        let has = |n: &str| current.iter().any(|(c, _)| c == n);
        let mut put = Vec::new();
        let mut removed = Vec::new();
        if action == Action::AdminDetachPolicy {
            for n in &wanted {
                removed.extend(
                    current
                        .iter()
                        .filter(|(c, _)| c == n)
                        .map(|(_, id)| id.clone()),
                );
            }
        } else {
            for n in &wanted {
                if !has(n) {
                    put.push(self.attachment_for(rc, n, &target).await?);
                }
            }
            if replace {
                removed.extend(
                    current
                        .iter()
                        .filter(|(c, _)| !wanted.contains(c))
                        .map(|(_, id)| id.clone()),
                );
            }
        }
        if put.is_empty() && removed.is_empty() && !replace {
            return Err(refuse(
                MinioError::PolicyChangeAlreadyApplied,
                "The specified policy change is already in effect.",
            ));
        }
        let changed: Vec<String> = if action == Action::AdminDetachPolicy {
            wanted.iter().filter(|n| has(n)).cloned().collect()
        } else {
            put.iter().filter_map(policy_name).collect()
        };
        let changes = Changes {
            grants: put.iter().map(grant_of).collect(),
            removed_grants: removed.clone(),
            ..Changes::default()
        };
        self.change_policies(rc, changes, move |s| s.replace_attachments(&put, &removed))
            .await
            .map_err(super::from_native)?;
        if replace {
            return Ok(Answer::Empty(StatusCode::OK));
        }
        let key = if action == Action::AdminDetachPolicy {
            "policiesDetached"
        } else {
            "policiesAttached"
        };
        let (kind, who) = match &target {
            AttachTarget::User(u) => ("user", u),
            AttachTarget::Group(g) => ("group", g),
        };
        Ok(Answer::Sealed(
            json!({key: changed, kind: who, "updatedAt": rfc3339(now_ns())}),
        ))
    }

    /// `idp/builtin/policy-entities`: which users and groups hold which policy names, for the
    /// users, groups and policies asked about (all when none is).
    async fn minio_policy_entities(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let (users, groups, policies) = (c.params("user"), c.params("group"), c.params("policy"));
        let all = users.is_empty() && groups.is_empty() && policies.is_empty();
        let atts = self.attachments(rc).await?;
        let mut by_user: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut by_group: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut by_policy: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for a in &atts {
            let Some(p) = policy_name(a) else { continue };
            match &a.target {
                AttachTarget::User(u) => {
                    by_user.entry(u.clone()).or_default().insert(p.clone());
                    by_policy.entry(p).or_default().0.insert(u.clone());
                }
                AttachTarget::Group(g) => {
                    by_group.entry(g.clone()).or_default().insert(p.clone());
                    by_policy.entry(p).or_default().1.insert(g.clone());
                }
            }
        }
        let user_mappings: Vec<Value> = by_user
            .iter()
            .filter(|(u, _)| all || users.contains(u))
            .map(|(u, p)| json!({"user": u, "policies": p}))
            .collect();
        let group_mappings: Vec<Value> = by_group
            .iter()
            .filter(|(g, _)| all || groups.contains(g))
            .map(|(g, p)| json!({"group": g, "policies": p}))
            .collect();
        let policy_mappings: Vec<Value> = by_policy
            .iter()
            .filter(|(p, _)| all || policies.contains(p))
            .map(|(p, (u, g))| json!({"policy": p, "users": u, "groups": g}))
            .collect();
        Ok(Answer::Sealed(json!({
            "timestamp": rfc3339(now_ns()),
            "userMappings": user_mappings,
            "groupMappings": group_mappings,
            "policyMappings": policy_mappings,
        })))
    }

    fn minio_svc(&self, ak: &str) -> Result<ServiceAccountRecord, Refusal> {
        self.iam
            .service_accounts(None)
            .into_iter()
            .find(|sa| sa.access_key == ak)
            .ok_or_else(|| {
                refuse(
                    MinioError::NoSuchServiceAccount,
                    format!("The specified service account is not found: {ak}"),
                )
            })
    }

    async fn svc_settings(
        &self,
        rc: &RequestCtx,
    ) -> Result<BTreeMap<String, KeySettings>, Refusal> {
        Ok(self
            .store_op(rc, |s| s.list_key_settings())
            .await?
            .into_iter()
            .collect())
    }

    async fn minio_add_svc(&self, rc: &RequestCtx, c: &Command, resource: &Resource) -> Outcome {
        let req: NewServiceAccount = c.json()?;
        let owner = match resource {
            Resource::User(u) if !u.is_empty() => u.clone(),
            _ => {
                return Err(refuse(
                    MinioError::InvalidArgument,
                    "root has no service accounts in fsgate: name the owner (targetUser)",
                ));
            }
        };
        self.minio_user_exists(&owner)?;
        let policy = policy_text(req.policy);
        if let Some(p) = &policy {
            self.iam
                .check_limit(p)
                .map_err(|e| refuse(MinioError::MalformedPolicy, e.to_string()))?;
        }
        if req.description.len() > 256 || req.name.len() > 32 {
            return Err(refuse(
                MinioError::InvalidArgument,
                "name: at most 32 bytes; description: at most 256",
            ));
        }
        let given = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let (ak, sk) = self
            .key_pair(
                given(&req.access_key).as_deref(),
                given(&req.secret_key).as_deref(),
            )
            .map_err(super::from_native)?;
        let settings = KeySettings {
            name: req.name,
            disabled: status_of(&req.status)?.unwrap_or(false),
            expires_ns: expiry_of(req.expiration.as_deref())?,
        };
        let rec = ServiceAccountRecord {
            access_key: ak.clone(),
            owner,
            policy,
            description: req.description,
            created_ns: now_ns(),
        };
        let sk2 = sk.clone();
        let expires = settings.expires_ns;
        self.store_op(rc, move |s| {
            s.create_service_account_with(&rec, &sk2, Some(&settings))
        })
        .await?;
        self.identities_changed(rc)
            .await
            .map_err(super::from_native)?;
        let mut creds = json!({"accessKey": ak, "secretKey": sk});
        if let (Some(at), Some(o)) = (expires, creds.as_object_mut()) {
            o.insert("expiration".into(), json!(rfc3339(at)));
        }
        Ok(Answer::Sealed(json!({"credentials": creds})))
    }

    async fn minio_update_svc(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let ak = c.param("accessKey");
        let mut rec = self.minio_svc(&ak)?;
        let req: ServiceAccountChange = c.json()?;
        let a = ak.clone();
        let mut settings = self.store_op(rc, move |s| s.key_settings(&a)).await?;
        if let Some(p) = req.new_policy {
            let text = policy_text(Some(p));
            if let Some(t) = &text {
                self.iam
                    .check_limit(t)
                    .map_err(|e| refuse(MinioError::MalformedPolicy, e.to_string()))?;
            }
            rec.policy = text;
        }
        let secret = if req.new_secret_key.is_empty() {
            None
        } else {
            crate::identity::keys::given_key_pair(Some(&ak), Some(&req.new_secret_key)).map_err(
                |_| {
                    refuse(
                        MinioError::InvalidSecretKey,
                        "secret keys are 8-128 printable ASCII characters",
                    )
                },
            )?;
            Some(req.new_secret_key)
        };
        if let Some(disabled) = status_of(&req.new_status)? {
            settings.disabled = disabled;
        }
        if !req.new_name.is_empty() {
            settings.name = req.new_name;
        }
        if !req.new_description.is_empty() {
            rec.description = req.new_description;
        }
        if req.new_expiration.is_some() {
            settings.expires_ns = expiry_of(req.new_expiration.as_deref())?;
        }
        self.store_op(rc, move |s| {
            s.update_service_account(&rec, &settings, secret.as_deref())
        })
        .await?;
        self.identities_changed(rc)
            .await
            .map_err(super::from_native)?;
        Ok(Answer::Empty(StatusCode::NO_CONTENT))
    }

    async fn minio_svc_info(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let ak = c.param("accessKey");
        let rec = self.minio_svc(&ak)?;
        let a = ak.clone();
        let settings = self.store_op(rc, move |s| s.key_settings(&a)).await?;
        let mut v = svc_json(&rec, Some(&settings), false);
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "policy".into(),
                json!(rec.policy.clone().unwrap_or_default()),
            );
        }
        Ok(Answer::Sealed(v))
    }
}

fn no_such_group(g: &str) -> Refusal {
    refuse(
        MinioError::NoSuchGroup,
        format!("The specified group does not exist: {g}"),
    )
}

fn no_such_policy(p: &str) -> Refusal {
    refuse(
        MinioError::NoSuchPolicy,
        format!("The canned policy does not exist: {p}"),
    )
}

/// MinIO's `UserInfo` of a user.
fn user_json(u: &fsgate_store::model::UserRecord, atts: &[Attachment], enabled: bool) -> Value {
    let policies = AdminApi::policy_names_of(atts, &AttachTarget::User(u.name.clone()));
    json!({
        "policyName": policies.join(","),
        "status": if enabled { "enabled" } else { "disabled" },
        "memberOf": u.groups,
        "updatedAt": rfc3339(u.created_ns),
    })
}

/// A service account as MinIO lists (`with_key`) or describes it.
fn svc_json(sa: &ServiceAccountRecord, settings: Option<&KeySettings>, with_key: bool) -> Value {
    let default = KeySettings::default();
    let st = settings.unwrap_or(&default);
    let mut v = json!({
        "parentUser": sa.owner,
        "accountStatus": if st.disabled { "off" } else { "on" },
        "impliedPolicy": sa.policy.is_none(),
        "name": st.name,
        "description": sa.description,
    });
    if let Some(o) = v.as_object_mut() {
        if with_key {
            o.insert("accessKey".into(), json!(sa.access_key));
        }
        if let Some(at) = st.expires_ns {
            o.insert("expiration".into(), json!(rfc3339(at)));
        }
    }
    v
}
