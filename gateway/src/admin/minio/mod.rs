//! MinIO's admin API under `/minio/admin/v3/`, as `mc admin`, `madmin-go`, Terraform's MinIO
//! provider and the `minio` package's `MinioAdmin` call it: the same SigV4 signature as the
//! native admin API, bodies sealed with the caller's secret key where MinIO seals them
//! (`sealed.rs`), and MinIO's JSON answers and error codes.
//!
//! Each command is a Cedar action of the native admin API (or one MinIO's API adds), decided
//! and audited the same way, and changes the same records: a user made here is an fsgate user
//! whose name is its access key, a canned policy is a named policy whose IAM JSON is translated
//! to Cedar like any other, a built-in policy name is a role. This file holds the dispatch
//! table and the error table; the commands live by family:
//! - `iam.rs`: users, groups, canned policies and their attachments, service accounts;
//! - `server.rs`: server information, usage, bucket quotas, identity-provider configuration.

use bytes::Bytes;
use http::{Method, StatusCode, Uri};
use s3s::{Body, S3Response};
use serde_json::{Value, json};

use fsgate_policy::{Action, Principal, Resource};
use fsgate_store::StoreError;

use super::AdminApi;
use crate::access::AccessFacts;
use crate::context::RequestCtx;

mod iam;
pub mod sealed;
pub(crate) mod server;

/// Where MinIO's clients call the admin API.
pub const PREFIX: &str = "/minio/admin/v3/";

/// How many sealed bodies are opened or sealed at once: each key derivation takes 64 MiB.
pub const SEALING_AT_ONCE: usize = 2;

/// A command's answer.
enum Answer {
    /// JSON in clear, 200.
    Json(Value),
    /// JSON sealed with the caller's secret key, 200.
    Sealed(Value),
    /// Text sealed with the caller's secret key (configuration), 200.
    SealedText(String),
    /// No body, with this status (200 or 204, as MinIO answers the command).
    Empty(StatusCode),
}

/// MinIO's admin error codes: the one table of their codes and statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MinioError {
    NoSuchUser,
    NoSuchGroup,
    GroupNotEmpty,
    NoSuchPolicy,
    NoSuchServiceAccount,
    NoSuchQuota,
    PolicyChangeAlreadyApplied,
    InvalidArgument,
    InvalidAccessKey,
    InvalidSecretKey,
    BadBody,
    MalformedPolicy,
    NoSuchBucket,
    NoSuchKmsKey,
    AccessDenied,
    NotImplemented,
    Internal,
}

impl MinioError {
    fn code(self) -> &'static str {
        match self {
            Self::NoSuchUser => "XMinioAdminNoSuchUser",
            Self::NoSuchGroup => "XMinioAdminNoSuchGroup",
            Self::GroupNotEmpty => "XMinioAdminGroupNotEmpty",
            Self::NoSuchPolicy => "XMinioAdminNoSuchPolicy",
            Self::NoSuchServiceAccount => "XMinioAdminServiceAccountNotFound",
            Self::NoSuchQuota => "XMinioAdminNoSuchQuotaConfiguration",
            Self::PolicyChangeAlreadyApplied => "XMinioAdminPolicyChangeAlreadyApplied",
            Self::InvalidArgument => "XMinioAdminInvalidArgument",
            Self::InvalidAccessKey => "XMinioAdminInvalidAccessKey",
            Self::InvalidSecretKey => "XMinioAdminInvalidSecretKey",
            Self::BadBody => "XMinioAdminConfigBadJSON",
            Self::MalformedPolicy => "XMinioMalformedPolicy",
            Self::NoSuchBucket => "NoSuchBucket",
            Self::NoSuchKmsKey => "XMinioKMSKeyNotFound",
            Self::AccessDenied => "AccessDenied",
            Self::NotImplemented => "XMinioAdminNotImplemented",
            Self::Internal => "InternalError",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::NoSuchUser
            | Self::NoSuchGroup
            | Self::NoSuchPolicy
            | Self::NoSuchServiceAccount
            | Self::NoSuchQuota
            | Self::NoSuchBucket
            | Self::NoSuchKmsKey => StatusCode::NOT_FOUND,
            Self::GroupNotEmpty
            | Self::PolicyChangeAlreadyApplied
            | Self::InvalidArgument
            | Self::InvalidAccessKey
            | Self::InvalidSecretKey
            | Self::BadBody
            | Self::MalformedPolicy => StatusCode::BAD_REQUEST,
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A refused command: its code and a message that says what to change.
struct Refusal(MinioError, String);

fn refuse(e: MinioError, msg: impl Into<String>) -> Refusal {
    Refusal(e, msg.into())
}

type Outcome = Result<Answer, Refusal>;

/// One command as read: its name, the query's pairs, and the body (opened if it was sealed).
struct Command {
    name: String,
    query: Vec<(String, String)>,
    body: Bytes,
}

impl Command {
    /// The last value of a query parameter, or "".
    fn param(&self, key: &str) -> String {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Every value of a query parameter.
    fn params(&self, key: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The body as JSON.
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Refusal> {
        serde_json::from_slice(&self.body).map_err(|e| {
            refuse(
                MinioError::BadBody,
                format!("the body is not the JSON {} takes: {e}", self.name),
            )
        })
    }
}

/// The commands whose request bodies MinIO's clients seal.
fn sealed_request(name: &str) -> bool {
    matches!(
        name,
        "add-user"
            | "add-service-account"
            | "update-service-account"
            | "set-config-kv"
            | "del-config-kv"
            | "idp/builtin/policy/attach"
            | "idp/builtin/policy/detach"
    )
}

/// The dispatch table: the Cedar action of a method and command, or `None` for no command.
/// Where one MinIO command is several fsgate actions, its parameters choose.
fn route(method: &Method, c: &Command) -> Option<Action> {
    let action = match (method.clone(), c.name.as_str()) {
        (Method::GET, "info" | "datausageinfo") => Action::AdminServerInfo,
        (Method::GET, "list-users" | "user-info") => Action::AdminListUsers,
        (Method::PUT, "add-user") => Action::AdminAddUser,
        (Method::DELETE, "remove-user") => Action::AdminRemoveUser,
        (Method::PUT, "set-user-status") if c.param("status") == "enabled" => {
            Action::AdminEnableUser
        }
        (Method::PUT, "set-user-status") => Action::AdminDisableUser,
        (Method::GET, "groups" | "group") => Action::AdminListGroups,
        (Method::PUT, "update-group-members") => {
            let v: Value = serde_json::from_slice(&c.body).unwrap_or(Value::Null);
            let removing = v.get("isRemove").and_then(Value::as_bool) == Some(true);
            let no_members = iam::members_of(&v).is_empty();
            match (removing, no_members) {
                (true, true) => Action::AdminRemoveGroup,
                (true, false) => Action::AdminRemoveGroupMember,
                (false, _) => Action::AdminAddGroupMember,
            }
        }
        (Method::PUT, "set-group-status") if c.param("status") == "enabled" => {
            Action::AdminEnableGroup
        }
        (Method::PUT, "set-group-status") => Action::AdminDisableGroup,
        (Method::PUT, "add-canned-policy") => Action::AdminCreatePolicy,
        (Method::DELETE, "remove-canned-policy") => Action::AdminDeletePolicy,
        (
            Method::GET,
            "list-canned-policies" | "info-canned-policy" | "idp/builtin/policy-entities",
        ) => Action::AdminListPolicies,
        (Method::PUT, "set-user-or-group-policy") | (Method::POST, "idp/builtin/policy/attach") => {
            Action::AdminAttachPolicy
        }
        (Method::POST, "idp/builtin/policy/detach") => Action::AdminDetachPolicy,
        (Method::PUT, "add-service-account") => Action::AdminCreateServiceAccount,
        (Method::POST, "update-service-account") => Action::AdminUpdateServiceAccount,
        (Method::GET, "list-service-accounts" | "info-service-account") => {
            Action::AdminListServiceAccounts
        }
        (Method::DELETE, "delete-service-account") => Action::AdminDeleteServiceAccount,
        (Method::PUT, "set-bucket-quota") => Action::AdminSetBucketQuota,
        (Method::GET, "get-bucket-quota") => Action::AdminGetBucketQuota,
        (Method::GET, "get-config-kv" | "help-config-kv") => Action::AdminListIdentityProviders,
        (Method::PUT, "set-config-kv") => Action::AdminAddIdentityProvider,
        (Method::DELETE, "del-config-kv") => Action::AdminRemoveIdentityProvider,
        (Method::POST, "kms/key/create") => Action::AdminCreateKmsKey,
        (Method::GET, "kms/key/status") => Action::AdminListKmsKeys,
        _ => return None,
    };
    Some(action)
}

fn store_refusal(e: &StoreError, rc: &RequestCtx) -> Refusal {
    match e {
        StoreError::NoSuchBucket => refuse(
            MinioError::NoSuchBucket,
            "The specified bucket does not exist",
        ),
        StoreError::NotFound(w) => refuse(MinioError::InvalidArgument, format!("{w} not found")),
        StoreError::AlreadyExists(w) => {
            refuse(MinioError::InvalidArgument, format!("{w} already exists"))
        }
        other => {
            tracing::error!(request_id = %rc.request_id, error = %other, "MinIO admin store error");
            refuse(MinioError::Internal, "internal error")
        }
    }
}

/// The native admin API's refusals, in MinIO's terms.
fn from_native(r: super::Reply) -> Refusal {
    let super::Reply(status, v) = r;
    let msg = v
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("refused")
        .to_owned();
    let code = match status {
        StatusCode::FORBIDDEN => MinioError::AccessDenied,
        StatusCode::NOT_FOUND => MinioError::InvalidArgument,
        s if s.is_server_error() => MinioError::Internal,
        _ if v.get("code").and_then(Value::as_str) == Some("MalformedPolicy") => {
            MinioError::MalformedPolicy
        }
        _ => MinioError::InvalidArgument,
    };
    Refusal(code, msg)
}

/// MinIO's error document.
fn refusal_response(r: &Refusal, rc: &RequestCtx, uri: &Uri) -> S3Response<Body> {
    let Refusal(code, message) = r;
    let v = json!({
        "Code": code.code(), "Message": message, "Resource": uri.path(),
        "RequestId": rc.request_id, "HostId": "", "Region": "",
    });
    let mut resp = S3Response::with_status(Body::from(v.to_string()), code.status());
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The answer to a body over the admin API's limit (or unreadable).
pub(super) fn too_large(rc: &RequestCtx, uri: &Uri) -> S3Response<Body> {
    refusal_response(
        &refuse(
            MinioError::InvalidArgument,
            "the request body is unreadable or over the admin API's 1 MiB",
        ),
        rc,
        uri,
    )
}

impl AdminApi {
    /// Answers one request under `/minio/admin/v3/` for an authenticated principal.
    pub(super) async fn minio(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        access_key: Option<&str>,
        method: &Method,
        uri: &Uri,
        body: Bytes,
    ) -> S3Response<Body> {
        let secret = access_key.and_then(|ak| self.iam.secret_for(ak));
        let outcome = self
            .minio_command(rc, principal, secret.as_deref(), method, uri, body)
            .await;
        let (status, bytes, content_type) = match outcome {
            Ok(Answer::Json(v)) => (
                StatusCode::OK,
                Bytes::from(v.to_string()),
                "application/json",
            ),
            Ok(Answer::Empty(status)) => (status, Bytes::new(), "application/json"),
            Ok(Answer::Sealed(v)) => {
                self.sealed_answer(secret.as_deref(), v.to_string().into_bytes())
                    .await
            }
            Ok(Answer::SealedText(t)) => {
                self.sealed_answer(secret.as_deref(), t.into_bytes()).await
            }
            Err(r) => return refusal_response(&r, rc, uri),
        };
        let mut resp = S3Response::with_status(Body::from(bytes), status);
        resp.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        resp
    }

    async fn sealed_answer(
        &self,
        secret: Option<&str>,
        plain: Vec<u8>,
    ) -> (StatusCode, Bytes, &'static str) {
        let Some(secret) = secret else {
            let v = json!({"Code": "AccessDenied", "Message": "this answer is sealed with the caller's secret key: sign the request with an access key"});
            return (
                StatusCode::FORBIDDEN,
                Bytes::from(v.to_string()),
                "application/json",
            );
        };
        match self
            .seal_off_thread(secret.as_bytes().to_vec(), plain, true)
            .await
        {
            Ok(sealed) => (
                StatusCode::OK,
                Bytes::from(sealed),
                "application/octet-stream",
            ),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from(
                    json!({"Code": "InternalError", "Message": "sealing failed"}).to_string(),
                ),
                "application/json",
            ),
        }
    }

    /// Seals (or with `seal == false` opens) a body on a blocking thread, at most
    /// `SEALING_AT_ONCE` at a time.
    async fn seal_off_thread(
        &self,
        secret: Vec<u8>,
        data: Vec<u8>,
        seal: bool,
    ) -> Result<Vec<u8>, sealed::SealError> {
        let _permit = self.sealing.acquire().await;
        tokio::task::spawn_blocking(move || {
            if seal {
                Ok(sealed::seal(&secret, &data))
            } else {
                sealed::open(&secret, &data)
            }
        })
        .await
        .unwrap_or(Err(sealed::SealError::Mismatch))
    }

    async fn minio_command(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        secret: Option<&str>,
        method: &Method,
        uri: &Uri,
        body: Bytes,
    ) -> Outcome {
        let name = uri
            .path()
            .strip_prefix(PREFIX)
            .unwrap_or("")
            .trim_end_matches('/');
        let mut c = Command {
            name: name.to_owned(),
            query: super::form_pairs(uri.query().unwrap_or("")),
            body,
        };
        if sealed_request(&c.name) && !c.body.is_empty() {
            let secret = secret.ok_or_else(|| {
                refuse(
                    MinioError::AccessDenied,
                    "sealed bodies need a request signed with an access key",
                )
            })?;
            let opened = self
                .seal_off_thread(secret.as_bytes().to_vec(), c.body.to_vec(), false)
                .await
                .map_err(|e| refuse(MinioError::BadBody, e.to_string()))?;
            c.body = Bytes::from(opened);
        }
        let Some(action) = route(method, &c) else {
            return Err(refuse(
                MinioError::NotImplemented,
                format!(
                    "fsgate does not implement MinIO's admin command {method} {}",
                    c.name
                ),
            ));
        };
        let resource = self.minio_resource(action, &c, principal)?;
        let d = self.gate.decide(
            rc,
            principal,
            action,
            resource.clone(),
            AccessFacts::default(),
        );
        if !d.allowed {
            return Err(refuse(MinioError::AccessDenied, "Access Denied."));
        }
        if let Some(a) = self.minio_iam(rc, principal, action, &c, &resource).await? {
            return Ok(a);
        }
        self.minio_server(rc, action, &c).await
    }

    /// What a command is decided on: the bucket of a quota command, the owner of a service
    /// account, or the service.
    fn minio_resource(
        &self,
        action: Action,
        c: &Command,
        principal: &Principal,
    ) -> Result<Resource, Refusal> {
        Ok(match action.resource_kind() {
            fsgate_policy::ResourceKind::Bucket => {
                let bucket = c.param("bucket");
                if bucket.is_empty() {
                    return Err(refuse(
                        MinioError::InvalidArgument,
                        "the bucket parameter is missing",
                    ));
                }
                Resource::Bucket(bucket)
            }
            fsgate_policy::ResourceKind::User => {
                let caller = match principal.unlimited() {
                    Principal::User { name, .. } => name.clone(),
                    _ => String::new(),
                };
                let owner = match action {
                    Action::AdminCreateServiceAccount => {
                        let v: Value = c.json()?;
                        v.get("targetUser")
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                    }
                    Action::AdminListServiceAccounts if c.name == "list-service-accounts" => {
                        Some(c.param("user")).filter(|s| !s.is_empty())
                    }
                    _ => {
                        let ak = c.param("accessKey");
                        Some(self.iam.owner_of(&ak).ok_or_else(|| {
                            refuse(
                                MinioError::NoSuchServiceAccount,
                                format!("The specified service account is not found: {ak}"),
                            )
                        })?)
                    }
                };
                Resource::User(owner.unwrap_or(caller))
            }
            _ => Resource::Service,
        })
    }
}

/// RFC 3339 of ns since the Unix epoch.
fn rfc3339(ns: u64) -> String {
    super::ns_to_rfc3339(ns)
}
