//! AWS's IAM query API on fsgate's endpoint (`POST /` with `Action=CreateUser&...`, SigV4
//! service `iam`), for `aws iam --endpoint-url`, boto3's IAM client and Terraform: users,
//! access keys, groups, inline policies (`Put/Get/List/DeleteUserPolicy`, the group
//! equivalents) and managed policies (`CreatePolicy`, `Attach/Detach/ListAttached...`).
//!
//! Each call is a Cedar action of the native admin API, decided and audited the same way; the
//! records are fsgate's: an IAM user is an fsgate user, a managed policy is a named policy (the
//! same ones MinIO's canned policies are), an inline policy an attachment whose id names it.
//! Answers and errors are AWS's XML (`NoSuchEntity`, `EntityAlreadyExists`,
//! `MalformedPolicyDocument`, `DeleteConflict`, `LimitExceeded`, `ValidationError`).

use std::collections::HashMap;
use std::fmt::Write as _;

use http::StatusCode;
use s3s::{Body, S3Response};

use fsgate_policy::{Action, Changes, Principal, Resource};
use fsgate_store::model::{AttachTarget, AttachedPolicy, Attachment, GroupRecord, KeySettings};
use fsgate_store::{StoreError, now_ns};

use super::AdminApi;
use crate::access::AccessFacts;
use crate::context::RequestCtx;
use crate::identity::iam::{grant_of, valid_name};
use crate::sts::{xml_escape, xml_response};

/// The account id IAM ARNs carry (fsgate has one account).
pub const ACCOUNT: &str = "000000000000";
/// Access keys a user may hold through this API (AWS's quota).
const KEYS_PER_USER: usize = 2;
const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// AWS's managed policies fsgate answers for, and the role each is.
const MANAGED: &[(&str, &str)] = &[
    ("AmazonS3ReadOnlyAccess", "readonly"),
    ("AmazonS3FullAccess", "readwrite"),
    ("AdministratorAccess", "admin"),
    ("readonly", "readonly"),
    ("readwrite", "readwrite"),
    ("writeonly", "writeonly"),
    ("diagnostics", "diagnostics"),
    ("consoleAdmin", "admin"),
];

/// IAM's error codes: the one table of their statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IamCode {
    NoSuchEntity,
    EntityAlreadyExists,
    MalformedPolicyDocument,
    DeleteConflict,
    LimitExceeded,
    ValidationError,
    InvalidAction,
    AccessDenied,
    InvalidClientTokenId,
    SignatureDoesNotMatch,
    ServiceFailure,
}

impl IamCode {
    fn status(self) -> StatusCode {
        match self {
            Self::NoSuchEntity => StatusCode::NOT_FOUND,
            Self::EntityAlreadyExists | Self::DeleteConflict | Self::LimitExceeded => {
                StatusCode::CONFLICT
            }
            Self::MalformedPolicyDocument | Self::ValidationError | Self::InvalidAction => {
                StatusCode::BAD_REQUEST
            }
            Self::AccessDenied | Self::InvalidClientTokenId | Self::SignatureDoesNotMatch => {
                StatusCode::FORBIDDEN
            }
            Self::ServiceFailure => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::NoSuchEntity => "NoSuchEntity",
            Self::EntityAlreadyExists => "EntityAlreadyExists",
            Self::MalformedPolicyDocument => "MalformedPolicyDocument",
            Self::DeleteConflict => "DeleteConflict",
            Self::LimitExceeded => "LimitExceeded",
            Self::ValidationError => "ValidationError",
            Self::InvalidAction => "InvalidAction",
            Self::AccessDenied => "AccessDenied",
            Self::InvalidClientTokenId => "InvalidClientTokenId",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::ServiceFailure => "ServiceFailure",
        }
    }
}

struct IamError(IamCode, String);

fn fail(code: IamCode, msg: impl Into<String>) -> IamError {
    IamError(code, msg.into())
}

type IamResult<T> = Result<T, IamError>;

/// The Cedar action each IAM action this API answers is decided as.
fn cedar_action(action: &str) -> Option<Action> {
    Some(match action {
        "CreateUser" => Action::AdminAddUser,
        "GetUser" | "ListUsers" => Action::AdminListUsers,
        "DeleteUser" => Action::AdminRemoveUser,
        "CreateAccessKey" => Action::AdminCreateKey,
        "ListAccessKeys" => Action::AdminListKeys,
        "UpdateAccessKey" => Action::AdminUpdateKey,
        "DeleteAccessKey" => Action::AdminDeleteKey,
        "PutUserPolicy" | "PutGroupPolicy" | "AttachUserPolicy" | "AttachGroupPolicy" => {
            Action::AdminAttachPolicy
        }
        "DeleteUserPolicy" | "DeleteGroupPolicy" | "DetachUserPolicy" | "DetachGroupPolicy" => {
            Action::AdminDetachPolicy
        }
        "GetUserPolicy"
        | "ListUserPolicies"
        | "GetGroupPolicy"
        | "ListGroupPolicies"
        | "ListAttachedUserPolicies"
        | "ListAttachedGroupPolicies"
        | "GetPolicy"
        | "ListPolicies" => Action::AdminListPolicies,
        "CreatePolicy" => Action::AdminCreatePolicy,
        "DeletePolicy" => Action::AdminDeletePolicy,
        "CreateGroup" | "AddUserToGroup" => Action::AdminAddGroupMember,
        "RemoveUserFromGroup" => Action::AdminRemoveGroupMember,
        "DeleteGroup" => Action::AdminRemoveGroup,
        "GetGroup" | "ListGroups" | "ListGroupsForUser" => Action::AdminListGroups,
        _ => return None,
    })
}

fn iso(ns: u64) -> String {
    super::ns_to_rfc3339(ns)
}

fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

fn group_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:group/{name}")
}

fn policy_arn(name: &str) -> String {
    if MANAGED.iter().any(|(n, _)| *n == name) {
        format!("arn:aws:iam::aws:policy/{name}")
    } else {
        format!("arn:aws:iam::{ACCOUNT}:policy/{name}")
    }
}

/// A stable id for an entity (AWS's `AIDA...`, `AGPA...`, `ANPA...` ids).
fn entity_id(prefix: &str, name: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(name.as_bytes());
    let mut s = prefix.to_owned();
    for b in d.iter().take(8) {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// The id of an inline policy's attachment.
fn inline_id(target: &AttachTarget, policy: &str) -> String {
    match target {
        AttachTarget::User(u) => format!("iam-inline:user:{u}:{policy}"),
        AttachTarget::Group(g) => format!("iam-inline:group:{g}:{policy}"),
    }
}

/// The policy name an ARN names (managed or fsgate's own), if it is a policy ARN.
fn policy_of_arn(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (_, r) = rest.split_once(':')?;
    let path = r.strip_prefix("policy/")?;
    Some(path.rsplit('/').next().unwrap_or(path).to_owned())
}

struct Params(HashMap<String, String>);

impl Params {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// A required name parameter, checked as IAM checks names (1-64, or 128 for policies,
    /// of `\w+=,.@-`).
    fn name(&self, k: &str) -> IamResult<String> {
        let v = self.get(k).ok_or_else(|| {
            fail(IamCode::ValidationError, format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(k)))
        })?;
        let max = if k == "PolicyName" { 128 } else { 64 };
        let ok = v.len() <= max
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
        if !ok {
            return Err(fail(
                IamCode::ValidationError,
                format!(
                    "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length at most {max}",
                    lower_first(k)
                ),
            ));
        }
        Ok(v.to_owned())
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// An IAM answer: `<ActionResponse><ActionResult>inner</ActionResult>...`.
fn answer(action: &str, inner: &str, rc: &RequestCtx) -> S3Response<Body> {
    let result = if inner.is_empty() {
        String::new()
    } else {
        format!("<{action}Result>{inner}</{action}Result>")
    };
    xml_response(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NS}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            xml_escape(&rc.request_id)
        ),
    )
}

fn error(e: &IamError, rc: &RequestCtx) -> S3Response<Body> {
    xml_response(
        e.0.status(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            e.0.as_str(),
            xml_escape(&e.1),
            xml_escape(&rc.request_id)
        ),
    )
}

fn el(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", xml_escape(value))
}

fn user_xml(name: &str, created_ns: u64) -> String {
    format!(
        "<Path>/</Path>{}{}{}{}",
        el("UserName", name),
        el("UserId", &entity_id("AIDA", name)),
        el("Arn", &user_arn(name)),
        el("CreateDate", &iso(created_ns))
    )
}

fn group_xml(name: &str) -> String {
    format!(
        "<Path>/</Path>{}{}{}{}",
        el("GroupName", name),
        el("GroupId", &entity_id("AGPA", name)),
        el("Arn", &group_arn(name)),
        el("CreateDate", &iso(0))
    )
}

fn policy_xml(name: &str, created: u64, updated: u64, attachments: usize) -> String {
    format!(
        "{}{}{}<Path>/</Path><DefaultVersionId>v1</DefaultVersionId>{}<IsAttachable>true</IsAttachable>{}{}",
        el("PolicyName", name),
        el("PolicyId", &entity_id("ANPA", name)),
        el("Arn", &policy_arn(name)),
        el("AttachmentCount", &attachments.to_string()),
        el("CreateDate", &iso(created)),
        el("UpdateDate", &iso(updated))
    )
}

fn members(tag: &str, items: impl IntoIterator<Item = String>) -> String {
    let body: String = items
        .into_iter()
        .map(|i| format!("<member>{i}</member>"))
        .collect();
    format!("<{tag}>{body}</{tag}><IsTruncated>false</IsTruncated>")
}

fn store_fail(e: &StoreError, rc: &RequestCtx) -> IamError {
    match e {
        StoreError::NotFound(w) => fail(IamCode::NoSuchEntity, format!("The {w} cannot be found.")),
        StoreError::AlreadyExists(w) => {
            fail(IamCode::EntityAlreadyExists, format!("{w} already exists."))
        }
        other => {
            tracing::error!(request_id = %rc.request_id, error = %other, "IAM API store error");
            fail(IamCode::ServiceFailure, "internal error")
        }
    }
}

fn from_native(r: super::Reply) -> IamError {
    let super::Reply(status, v) = r;
    let msg = v
        .get("message")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("refused")
        .to_owned();
    if v.get("code").and_then(serde_json::Value::as_str) == Some("MalformedPolicy") {
        return fail(IamCode::MalformedPolicyDocument, msg);
    }
    match status {
        StatusCode::NOT_FOUND => fail(IamCode::NoSuchEntity, msg),
        StatusCode::CONFLICT => fail(IamCode::EntityAlreadyExists, msg),
        s if s.is_server_error() => fail(IamCode::ServiceFailure, msg),
        _ => fail(IamCode::ValidationError, msg),
    }
}

/// The largest IAM request body read (policy documents are at most 10 KiB).
const MAX_BODY: usize = 1 << 20;

impl AdminApi {
    /// Answers one request signed for IAM (`sigv4_iam::iam_authorization` found its
    /// authorization): the body is read (at most 1 MiB), the signature verified, and the
    /// `Action` of the query or form body answered.
    pub async fn iam_signed(
        &self,
        req: http::Request<Body>,
        rc: &RequestCtx,
        auth: crate::identity::sigv4_iam::IamAuthorization,
    ) -> http::Response<Body> {
        use http_body_util::BodyExt as _;
        let (parts, body) = req.into_parts();
        // An unknown key is refused before its body is read.
        let resp = if self.iam.secret_for(&auth.access_key).is_none() {
            error(
                &fail(
                    IamCode::InvalidClientTokenId,
                    "The security token included in the request is invalid.",
                ),
                rc,
            )
        } else {
            match http_body_util::Limited::new(body, MAX_BODY).collect().await {
                Err(_) => error(
                    &fail(
                        IamCode::ValidationError,
                        "the request body is unreadable or over 1 MiB",
                    ),
                    rc,
                ),
                Ok(b) => {
                    let body = b.to_bytes();
                    match self.iam_authenticate(&parts, &body, &auth, rc) {
                        Err(e) => error(&e, rc),
                        Ok(principal) => {
                            let mut params = HashMap::new();
                            let query = super::form_pairs(parts.uri.query().unwrap_or(""));
                            for (k, v) in query
                                .into_iter()
                                .chain(super::form_pairs(&String::from_utf8_lossy(&body)))
                            {
                                params.entry(k).or_insert(v);
                            }
                            self.iam_query(rc, &principal, params).await
                        }
                    }
                }
            }
        };
        let mut out = http::Response::new(resp.output);
        *out.status_mut() = resp.status.unwrap_or(StatusCode::OK);
        *out.headers_mut() = resp.headers;
        out
    }

    fn iam_authenticate(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        auth: &crate::identity::sigv4_iam::IamAuthorization,
        rc: &RequestCtx,
    ) -> IamResult<Principal> {
        let secret = self.iam.secret_for(&auth.access_key).ok_or_else(|| {
            fail(
                IamCode::InvalidClientTokenId,
                "The security token included in the request is invalid.",
            )
        })?;
        crate::identity::sigv4_iam::verify(
            auth,
            &secret,
            &parts.method,
            &parts.uri,
            &parts.headers,
            body,
        )
        .map_err(|e| fail(IamCode::SignatureDoesNotMatch, e.to_string()))?;
        let principal = self
            .gate
            .principal(
                Some(&auth.access_key),
                &parts.method,
                &parts.headers,
                &rc.query,
            )
            .map_err(|e| {
                fail(
                    IamCode::InvalidClientTokenId,
                    e.message()
                        .unwrap_or("The security token included in the request is invalid."),
                )
            })?;
        rc.set_principal(&principal, &auth.access_key);
        Ok(principal)
    }

    /// Answers one IAM query-API request whose parameters (query and form body) are `params`.
    async fn iam_query(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        params: HashMap<String, String>,
    ) -> S3Response<Body> {
        let p = Params(params);
        let action = p.get("Action").unwrap_or_default().to_owned();
        let Some(cedar) = cedar_action(&action) else {
            return error(
                &fail(
                    IamCode::InvalidAction,
                    format!("Could not find operation {action} for version 2010-05-08"),
                ),
                rc,
            );
        };
        let d = self.gate.decide(
            rc,
            principal,
            cedar,
            Resource::Service,
            AccessFacts::default(),
        );
        if !d.allowed {
            let who = match principal.unlimited() {
                Principal::User { name, .. } => user_arn(name),
                _ => format!("arn:aws:iam::{ACCOUNT}:root"),
            };
            return error(
                &fail(
                    IamCode::AccessDenied,
                    format!("User: {who} is not authorized to perform: iam:{action}"),
                ),
                rc,
            );
        }
        match self.iam_call(rc, principal, &action, &p).await {
            Ok(inner) => answer(&action, &inner, rc),
            Err(e) => error(&e, rc),
        }
    }

    async fn iam_store<T: Send + 'static>(
        &self,
        rc: &RequestCtx,
        f: impl FnOnce(&fsgate_store::Store) -> Result<T, StoreError> + Send + 'static,
    ) -> IamResult<T> {
        self.blocking(f).await.map_err(|e| store_fail(&e, rc))
    }

    /// The user a call names, or the caller when it names none (`GetUser`, `CreateAccessKey`).
    fn user_param(&self, p: &Params, principal: &Principal) -> IamResult<String> {
        if p.get("UserName").is_some() {
            return p.name("UserName");
        }
        match principal.unlimited() {
            Principal::User { name, .. } => Ok(name.clone()),
            _ => Err(fail(
                IamCode::ValidationError,
                "root has no IAM user: name one with UserName",
            )),
        }
    }

    fn user_record(&self, name: &str) -> IamResult<fsgate_store::model::UserRecord> {
        self.iam
            .users()
            .into_iter()
            .find(|u| u.name == name)
            .ok_or_else(|| {
                fail(
                    IamCode::NoSuchEntity,
                    format!("The user with name {name} cannot be found."),
                )
            })
    }

    async fn group_exists(&self, rc: &RequestCtx, name: &str) -> IamResult<Vec<String>> {
        let n = name.to_owned();
        let (users, records) = self
            .iam_store(rc, |s| Ok((s.list_users()?, s.list_groups()?)))
            .await?;
        let members: Vec<String> = users
            .into_iter()
            .filter(|u| u.groups.contains(&n))
            .map(|u| u.name)
            .collect();
        if members.is_empty() && !records.iter().any(|g| g.name == n) {
            return Err(fail(
                IamCode::NoSuchEntity,
                format!("The group with name {name} cannot be found."),
            ));
        }
        Ok(members)
    }

    async fn iam_call(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        action: &str,
        p: &Params,
    ) -> IamResult<String> {
        match action {
            "CreateUser" => {
                let name = p.name("UserName")?;
                if name == self.iam.root().access_key || !valid_name(&name) {
                    return Err(fail(
                        IamCode::ValidationError,
                        format!("{name} cannot be a user name"),
                    ));
                }
                let n = name.clone();
                let rec = self.iam_store(rc, move |s| s.create_user(&n)).await?;
                self.identities_changed(rc).await.map_err(from_native)?;
                Ok(format!("<User>{}</User>", user_xml(&name, rec.created_ns)))
            }
            "GetUser" => {
                let name = self.user_param(p, principal)?;
                let u = self.user_record(&name)?;
                Ok(format!("<User>{}</User>", user_xml(&u.name, u.created_ns)))
            }
            "ListUsers" => Ok(members(
                "Users",
                self.iam
                    .users()
                    .iter()
                    .map(|u| user_xml(&u.name, u.created_ns)),
            )),
            "DeleteUser" => {
                let name = p.name("UserName")?;
                let u = self.user_record(&name)?;
                let n = name.clone();
                let keys = self.iam_store(rc, move |s| s.list_keys(Some(&n))).await?;
                if !keys.is_empty() {
                    return Err(fail(
                        IamCode::DeleteConflict,
                        "Cannot delete entity, must delete access keys first.",
                    ));
                }
                if !u.groups.is_empty() {
                    return Err(fail(
                        IamCode::DeleteConflict,
                        "Cannot delete entity, must remove users from group first.",
                    ));
                }
                self.no_policies_held(rc, AttachTarget::User(name.clone()))
                    .await?;
                self.iam_store(rc, move |s| s.delete_user(&name)).await?;
                self.reload(rc).await.map_err(from_native)?;
                Ok(String::new())
            }
            "CreateAccessKey" => {
                let name = self.user_param(p, principal)?;
                self.user_record(&name)?;
                let svc: Vec<String> = self
                    .iam
                    .service_accounts(Some(&name))
                    .into_iter()
                    .map(|s| s.access_key)
                    .collect();
                let n = name.clone();
                let held = self
                    .iam_store(rc, move |s| s.list_keys(Some(&n)))
                    .await?
                    .into_iter()
                    .filter(|k| !svc.contains(&k.access_key))
                    .count();
                if held >= KEYS_PER_USER {
                    return Err(fail(
                        IamCode::LimitExceeded,
                        format!("Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"),
                    ));
                }
                // fsgate's extension for keys brought from elsewhere: `AccessKeyId` and
                // `SecretAccessKey` on the request (AWS makes every key itself).
                let (ak, sk) = self
                    .key_pair(p.get("AccessKeyId"), p.get("SecretAccessKey"))
                    .map_err(from_native)?;
                let (n, a, s2) = (name.clone(), ak.clone(), sk.clone());
                self.iam_store(rc, move |s| s.create_key(&n, &a, &s2).map(|_| ()))
                    .await?;
                self.identities_changed(rc).await.map_err(from_native)?;
                Ok(format!(
                    "<AccessKey>{}{}<Status>Active</Status>{}{}</AccessKey>",
                    el("UserName", &name),
                    el("AccessKeyId", &ak),
                    el("SecretAccessKey", &sk),
                    el("CreateDate", &iso(now_ns()))
                ))
            }
            "ListAccessKeys" => {
                let name = self.user_param(p, principal)?;
                self.user_record(&name)?;
                let svc: Vec<String> = self
                    .iam
                    .service_accounts(Some(&name))
                    .into_iter()
                    .map(|s| s.access_key)
                    .collect();
                let n = name.clone();
                let (keys, settings) = self
                    .iam_store(rc, move |s| {
                        Ok((s.list_keys(Some(&n))?, s.list_key_settings()?))
                    })
                    .await?;
                let settings: HashMap<String, KeySettings> = settings.into_iter().collect();
                Ok(members(
                    "AccessKeyMetadata",
                    keys.into_iter()
                        .filter(|k| !svc.contains(&k.access_key))
                        .map(|k| {
                            let active = !settings.get(&k.access_key).is_some_and(|s| s.disabled);
                            format!(
                                "{}{}{}{}",
                                el("UserName", &k.user),
                                el("AccessKeyId", &k.access_key),
                                el("Status", if active { "Active" } else { "Inactive" }),
                                el("CreateDate", &iso(k.created_ns))
                            )
                        }),
                ))
            }
            "UpdateAccessKey" | "DeleteAccessKey" => {
                let ak = p.get("AccessKeyId").unwrap_or_default().to_owned();
                let name = self.user_param(p, principal)?;
                if self.iam.owner_of(&ak).as_deref() != Some(name.as_str()) {
                    return Err(fail(
                        IamCode::NoSuchEntity,
                        format!("The Access Key with id {ak} cannot be found."),
                    ));
                }
                if action == "DeleteAccessKey" {
                    self.iam_store(rc, move |s| s.delete_key(&ak)).await?;
                } else {
                    let disabled = match p.get("Status") {
                        Some("Active") => false,
                        Some("Inactive") => true,
                        other => {
                            return Err(fail(
                                IamCode::ValidationError,
                                format!(
                                    "1 validation error detected: Value '{}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]",
                                    other.unwrap_or("null")
                                ),
                            ));
                        }
                    };
                    self.iam_store(rc, move |s| {
                        let mut st = s.key_settings(&ak)?;
                        st.disabled = disabled;
                        s.set_key_settings(&ak, &st)
                    })
                    .await?;
                }
                self.identities_changed(rc).await.map_err(from_native)?;
                Ok(String::new())
            }
            "CreateGroup" => {
                let name = p.name("GroupName")?;
                if self.group_exists(rc, &name).await.is_ok() {
                    return Err(fail(
                        IamCode::EntityAlreadyExists,
                        format!("Group with name {name} already exists."),
                    ));
                }
                let rec = GroupRecord {
                    name: name.clone(),
                    disabled: false,
                };
                self.iam_store(rc, move |s| s.put_group(&rec)).await?;
                Ok(format!("<Group>{}</Group>", group_xml(&name)))
            }
            "GetGroup" => {
                let name = p.name("GroupName")?;
                let members_of = self.group_exists(rc, &name).await?;
                let users = self.iam.users();
                Ok(format!(
                    "<Group>{}</Group>{}",
                    group_xml(&name),
                    members(
                        "Users",
                        users
                            .iter()
                            .filter(|u| members_of.contains(&u.name))
                            .map(|u| user_xml(&u.name, u.created_ns))
                    )
                ))
            }
            "ListGroups" | "ListGroupsForUser" => {
                let (users, records) = self
                    .iam_store(rc, |s| Ok((s.list_users()?, s.list_groups()?)))
                    .await?;
                let mut names: Vec<String> = if action == "ListGroupsForUser" {
                    let name = p.name("UserName")?;
                    self.user_record(&name)?;
                    users
                        .into_iter()
                        .find(|u| u.name == name)
                        .map(|u| u.groups)
                        .unwrap_or_default()
                } else {
                    records
                        .into_iter()
                        .map(|g| g.name)
                        .chain(users.into_iter().flat_map(|u| u.groups))
                        .collect()
                };
                names.sort();
                names.dedup();
                Ok(members("Groups", names.iter().map(|g| group_xml(g))))
            }
            "AddUserToGroup" | "RemoveUserFromGroup" => {
                let (group, user) = (p.name("GroupName")?, p.name("UserName")?);
                self.group_exists(rc, &group).await?;
                self.user_record(&user)?;
                let add = action == "AddUserToGroup";
                self.iam_store(rc, move |s| {
                    let mut u = s.user(&user)?;
                    u.groups.retain(|g| g != &group);
                    if add {
                        u.groups.push(group.clone());
                        u.groups.sort();
                    }
                    s.update_user(&u)?;
                    // The group outlives its last member, as in AWS.
                    if !s.list_groups()?.iter().any(|r| r.name == group) {
                        s.put_group(&GroupRecord {
                            name: group,
                            disabled: false,
                        })?;
                    }
                    Ok(())
                })
                .await?;
                self.identities_changed(rc).await.map_err(from_native)?;
                Ok(String::new())
            }
            "DeleteGroup" => {
                let name = p.name("GroupName")?;
                if !self.group_exists(rc, &name).await?.is_empty() {
                    return Err(fail(
                        IamCode::DeleteConflict,
                        "Cannot delete entity, must remove users from group first.",
                    ));
                }
                self.no_policies_held(rc, AttachTarget::Group(name.clone()))
                    .await?;
                self.iam_store(rc, move |s| s.delete_group(&name)).await?;
                self.identities_changed(rc).await.map_err(from_native)?;
                Ok(String::new())
            }
            _ => self.iam_policies(rc, action, p).await,
        }
    }

    /// AWS's DeleteConflict while a user or group still holds a policy.
    async fn no_policies_held(&self, rc: &RequestCtx, target: AttachTarget) -> IamResult<()> {
        let atts = self.iam_store(rc, |s| s.list_attachments()).await?;
        if atts.iter().any(|a| a.target == target) {
            return Err(fail(
                IamCode::DeleteConflict,
                "Cannot delete entity, must delete policies first.",
            ));
        }
        Ok(())
    }

    /// The target of a policy call: `UserName` for the user forms, `GroupName` for the group
    /// forms; it must exist.
    async fn policy_target(
        &self,
        rc: &RequestCtx,
        action: &str,
        p: &Params,
    ) -> IamResult<AttachTarget> {
        if action.contains("Group") {
            let g = p.name("GroupName")?;
            self.group_exists(rc, &g).await?;
            Ok(AttachTarget::Group(g))
        } else {
            let u = p.name("UserName")?;
            self.user_record(&u)?;
            Ok(AttachTarget::User(u))
        }
    }

    async fn put_attachments(
        &self,
        rc: &RequestCtx,
        put: Vec<Attachment>,
        removed: Vec<String>,
    ) -> IamResult<()> {
        let changes = Changes {
            grants: put.iter().map(grant_of).collect(),
            removed_grants: removed.clone(),
            ..Changes::default()
        };
        self.change_policies(rc, changes, move |s| s.replace_attachments(&put, &removed))
            .await
            .map_err(from_native)
    }

    async fn iam_policies(&self, rc: &RequestCtx, action: &str, p: &Params) -> IamResult<String> {
        let atts = self.iam_store(rc, |s| s.list_attachments()).await?;
        match action {
            "PutUserPolicy" | "PutGroupPolicy" => {
                let target = self.policy_target(rc, action, p).await?;
                let policy = p.name("PolicyName")?;
                let doc = p
                    .get("PolicyDocument")
                    .ok_or_else(|| fail(IamCode::ValidationError, "PolicyDocument is required"))?;
                if !doc.trim_start().starts_with('{') {
                    return Err(fail(
                        IamCode::MalformedPolicyDocument,
                        "The policy document is not JSON.",
                    ));
                }
                let att = Attachment {
                    id: inline_id(&target, &policy),
                    target,
                    policy: AttachedPolicy::Cedar {
                        text: doc.to_owned(),
                    },
                    created_ns: now_ns(),
                };
                self.put_attachments(rc, vec![att], Vec::new()).await?;
                Ok(String::new())
            }
            "GetUserPolicy" | "GetGroupPolicy" => {
                let target = self.policy_target(rc, action, p).await?;
                let policy = p.name("PolicyName")?;
                let id = inline_id(&target, &policy);
                let a = atts.iter().find(|a| a.id == id).ok_or_else(|| {
                    fail(
                        IamCode::NoSuchEntity,
                        format!("The policy with name {policy} cannot be found."),
                    )
                })?;
                let text = match &a.policy {
                    AttachedPolicy::Cedar { text } => text.clone(),
                    _ => String::new(),
                };
                let (kind, who) = match &target {
                    AttachTarget::User(u) => ("UserName", u),
                    AttachTarget::Group(g) => ("GroupName", g),
                };
                let encoded: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
                // AWS answers the document URL-encoded (spaces as %20).
                let encoded = encoded.replace('+', "%20");
                Ok(format!(
                    "{}{}{}",
                    el(kind, who),
                    el("PolicyName", &policy),
                    el("PolicyDocument", &encoded)
                ))
            }
            "ListUserPolicies" | "ListGroupPolicies" => {
                let target = self.policy_target(rc, action, p).await?;
                let prefix = inline_id(&target, "");
                let mut names: Vec<String> = atts
                    .iter()
                    .filter_map(|a| a.id.strip_prefix(&prefix).map(str::to_owned))
                    .collect();
                names.sort();
                Ok(members("PolicyNames", names.iter().map(|n| xml_escape(n))))
            }
            "DeleteUserPolicy" | "DeleteGroupPolicy" => {
                let target = self.policy_target(rc, action, p).await?;
                let policy = p.name("PolicyName")?;
                let id = inline_id(&target, &policy);
                if !atts.iter().any(|a| a.id == id) {
                    return Err(fail(
                        IamCode::NoSuchEntity,
                        format!("The user policy with name {policy} cannot be found."),
                    ));
                }
                self.put_attachments(rc, Vec::new(), vec![id]).await?;
                Ok(String::new())
            }
            "CreatePolicy" => {
                let name = p.name("PolicyName")?;
                let doc = p
                    .get("PolicyDocument")
                    .ok_or_else(|| fail(IamCode::ValidationError, "PolicyDocument is required"))?
                    .to_owned();
                if MANAGED.iter().any(|(n, _)| *n == name) {
                    return Err(fail(
                        IamCode::EntityAlreadyExists,
                        format!("A policy called {name} already exists."),
                    ));
                }
                let n = name.clone();
                if self
                    .iam_store(rc, move |s| s.named_policy(&n))
                    .await?
                    .is_some()
                {
                    return Err(fail(
                        IamCode::EntityAlreadyExists,
                        format!(
                            "A policy called {name} already exists. Duplicate names are not allowed."
                        ),
                    ));
                }
                self.put_named_policy(rc, name.clone(), doc)
                    .await
                    .map_err(from_native)?;
                let now = now_ns();
                Ok(format!(
                    "<Policy>{}</Policy>",
                    policy_xml(&name, now, now, 0)
                ))
            }
            "GetPolicy" | "DeletePolicy" => {
                let arn = p.get("PolicyArn").unwrap_or_default();
                let name = policy_of_arn(arn).ok_or_else(|| {
                    fail(IamCode::ValidationError, format!("ARN {arn} is not valid."))
                })?;
                let count = atts.iter().filter(|a| is_policy(a, &name)).count();
                if MANAGED.iter().any(|(n, _)| *n == name) {
                    if action == "DeletePolicy" {
                        return Err(fail(
                            IamCode::ValidationError,
                            "AWS managed policies cannot be deleted.",
                        ));
                    }
                    return Ok(format!(
                        "<Policy>{}</Policy>",
                        policy_xml(&name, 0, 0, count)
                    ));
                }
                let n = name.clone();
                let rec = self
                    .iam_store(rc, move |s| s.named_policy(&n))
                    .await?
                    .ok_or_else(|| {
                        fail(
                            IamCode::NoSuchEntity,
                            format!("Policy {arn} does not exist or is not attachable."),
                        )
                    })?;
                if action == "GetPolicy" {
                    return Ok(format!(
                        "<Policy>{}</Policy>",
                        policy_xml(&name, rec.created_ns, rec.updated_ns, count)
                    ));
                }
                if count > 0 {
                    return Err(fail(
                        IamCode::DeleteConflict,
                        "Cannot delete a policy attached to entities.",
                    ));
                }
                self.delete_named_policy(rc, name)
                    .await
                    .map_err(from_native)?;
                Ok(String::new())
            }
            "ListPolicies" => {
                let named = self.iam_store(rc, |s| s.list_named_policies()).await?;
                let scope = p.get("Scope").unwrap_or("All");
                let mut out = Vec::new();
                if scope != "Local" {
                    for (n, _) in MANAGED {
                        let count = atts.iter().filter(|a| is_policy(a, n)).count();
                        out.push(policy_xml(n, 0, 0, count));
                    }
                }
                if scope != "AWS" {
                    for r in &named {
                        let count = atts.iter().filter(|a| is_policy(a, &r.name)).count();
                        out.push(policy_xml(&r.name, r.created_ns, r.updated_ns, count));
                    }
                }
                Ok(members("Policies", out))
            }
            "AttachUserPolicy" | "AttachGroupPolicy" | "DetachUserPolicy" | "DetachGroupPolicy" => {
                let target = self.policy_target(rc, action, p).await?;
                let arn = p.get("PolicyArn").unwrap_or_default();
                let name = policy_of_arn(arn).ok_or_else(|| {
                    fail(IamCode::ValidationError, format!("ARN {arn} is not valid."))
                })?;
                let current: Vec<&Attachment> = atts
                    .iter()
                    .filter(|a| a.target == target && is_policy(a, &name))
                    .collect();
                if action.starts_with("Detach") {
                    if current.is_empty() {
                        return Err(fail(
                            IamCode::NoSuchEntity,
                            format!("Policy {arn} was not found."),
                        ));
                    }
                    let ids = current.iter().map(|a| a.id.clone()).collect();
                    self.put_attachments(rc, Vec::new(), ids).await?;
                    return Ok(String::new());
                }
                if !current.is_empty() {
                    return Ok(String::new());
                }
                let policy = if let Some((_, role)) = MANAGED.iter().find(|(n, _)| *n == name) {
                    AttachedPolicy::Role {
                        role: (*role).to_owned(),
                        bucket: None,
                        prefix: None,
                    }
                } else {
                    let n = name.clone();
                    let rec = self
                        .iam_store(rc, move |s| s.named_policy(&n))
                        .await?
                        .ok_or_else(|| {
                            fail(
                                IamCode::NoSuchEntity,
                                format!("Policy {arn} does not exist or is not attachable."),
                            )
                        })?;
                    AttachedPolicy::Named {
                        name: rec.name,
                        text: rec.text,
                    }
                };
                let r: [u8; 6] = rand::random();
                let att = Attachment {
                    id: hex::encode(r),
                    target,
                    policy,
                    created_ns: now_ns(),
                };
                self.put_attachments(rc, vec![att], Vec::new()).await?;
                Ok(String::new())
            }
            "ListAttachedUserPolicies" | "ListAttachedGroupPolicies" => {
                let target = self.policy_target(rc, action, p).await?;
                let mut names: Vec<String> = atts
                    .iter()
                    .filter(|a| a.target == target)
                    .filter_map(attached_name)
                    .collect();
                names.sort();
                names.dedup();
                Ok(members(
                    "AttachedPolicies",
                    names.iter().map(|n| {
                        format!("{}{}", el("PolicyName", n), el("PolicyArn", &policy_arn(n)))
                    }),
                ))
            }
            other => Err(fail(
                IamCode::InvalidAction,
                format!("Could not find operation {other} for version 2010-05-08"),
            )),
        }
    }
}

/// True when an attachment is the policy `name`: a named policy of that name, or for a
/// managed name, its role on every bucket.
fn is_policy(a: &Attachment, name: &str) -> bool {
    match (&a.policy, MANAGED.iter().find(|(n, _)| *n == name)) {
        (
            AttachedPolicy::Role {
                role,
                bucket: None,
                prefix: None,
            },
            Some((_, r)),
        ) => role == r,
        (AttachedPolicy::Named { name: n, .. }, None) => n == name,
        _ => false,
    }
}

/// The managed-policy name an attachment is: a named policy's, or the managed name of a role
/// on every bucket (AWS's name where there is one).
fn attached_name(a: &Attachment) -> Option<String> {
    match &a.policy {
        AttachedPolicy::Named { name, .. } => Some(name.clone()),
        AttachedPolicy::Role {
            role,
            bucket: None,
            prefix: None,
        } => MANAGED
            .iter()
            .find(|(_, r)| r == role)
            .map(|(n, _)| (*n).to_owned()),
        _ => None,
    }
}
