//! The admin REST API under `/admin/v1/`: JSON in and out, authenticated by SigV4 (s3s checks
//! the signature before this route runs) and decided by Cedar like every S3 request.
//!
//! This file holds the dispatch table (method and path → Cedar action, and the resource it is
//! decided on), authentication and what every route shares; the routes themselves live by
//! family, each file with its table:
//! - `users.rs`: users, their access keys, group membership;
//! - `policies.rs`: policy attachments; `explain.rs`: `policy test`, `who-can`, `validate`;
//! - `identity.rs`: service accounts, revocation, identity providers;
//! - `audit.rs`: audit queries and the lifecycle run;
//! - `kms.rs`: the KMS key ring (create, list, enable, disable, rotate);
//! - `account.rs`: account-wide settings (the Public Access Block);
//! - `shares.rs`: share links (create, list, revoke);
//! - `aws_iam.rs`: AWS's IAM query API (`Action=CreateUser`, ... on `POST /`);
//! - `minio/`: MinIO's admin API under `/minio/admin/v3/`, a second protocol over the same
//!   records and Cedar actions.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode, Uri};
use http_body_util::BodyExt;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use serde_json::{Value, json};

use fsgate_policy::{Action, Changes, Resource};
use fsgate_store::audit::AuditWriter;
use fsgate_store::{Store, StoreError};

use crate::access::{AccessFacts, Gate};
use crate::context::RequestCtx;
use crate::identity::iam::{Iam, IamError};

mod account;
mod audit;
pub mod aws_iam;
mod explain;
mod identity;
mod kms;
pub mod minio;
mod policies;
mod shares;
mod users;

const PREFIX: &str = "/admin/v1/";
const MAX_BODY: usize = 1 << 20;

/// The admin route.
#[derive(Debug, Clone)]
pub struct AdminApi {
    store: Arc<Store>,
    iam: Arc<Iam>,
    gate: Gate,
    audit: Arc<AuditWriter>,
    /// The key the audit log's checkpoints verify with.
    audit_key: Option<fsgate_auditlog::PublicKey>,
    oidc: Arc<crate::identity::oidc::OidcVerifier>,
    scrape: crate::telemetry::Scrape,
    kms: Arc<crate::s3::KeyRing>,
    quotas: Arc<crate::s3::quota::BucketQuotas>,
    /// Bounds the MinIO admin bodies sealed or opened at once (`minio::SEALING_AT_ONCE`).
    sealing: Arc<tokio::sync::Semaphore>,
    /// Share links' default and longest lifetime.
    shares: crate::share::ShareSettings,
}

/// An admin outcome: status and JSON body.
struct Reply(StatusCode, Value);

/// What a route answers: JSON, or a page of the audit log's JSON Lines.
enum Answer {
    Json(Reply),
    /// Lines of the log, and the position the next page starts at.
    Lines {
        body: Bytes,
        next: Option<u64>,
    },
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Self {
        Self::Json(r)
    }
}

/// The admin API's error codes, and the one table of their HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdminError {
    /// A parameter or field is missing or out of range.
    InvalidArgument,
    /// A user or group name is not one fsgate accepts.
    InvalidName,
    /// The body is not the JSON the route takes.
    MalformedJSON,
    /// A Cedar policy does not parse or validate.
    MalformedPolicy,
    /// What the path names does not exist.
    NotFound,
    /// What the request creates exists already.
    AlreadyExists,
    /// No route has this method and path.
    NoSuchRoute,
    /// The caller's policies do not allow the action.
    AccessDenied,
    /// The external KMS refused or could not be reached.
    ExternalKms,
    /// fsgate failed; the cause is in its log.
    InternalError,
}

impl AdminError {
    fn status(self) -> StatusCode {
        match self {
            Self::InvalidArgument
            | Self::InvalidName
            | Self::MalformedJSON
            | Self::MalformedPolicy => StatusCode::BAD_REQUEST,
            Self::NotFound | Self::NoSuchRoute => StatusCode::NOT_FOUND,
            Self::AlreadyExists => StatusCode::CONFLICT,
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::ExternalKms => StatusCode::BAD_GATEWAY,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::InvalidArgument => "InvalidArgument",
            Self::InvalidName => "InvalidName",
            Self::MalformedJSON => "MalformedJSON",
            Self::MalformedPolicy => "MalformedPolicy",
            Self::NotFound => "NotFound",
            Self::AlreadyExists => "AlreadyExists",
            Self::NoSuchRoute => "NoSuchRoute",
            Self::AccessDenied => "AccessDenied",
            Self::ExternalKms => "ExternalKmsError",
            Self::InternalError => "InternalError",
        }
    }
}

/// An error reply: the code's status, and `{"code", "message"}`.
fn err(e: AdminError, msg: impl Into<String>) -> Reply {
    Reply(e.status(), json!({"code": e.code(), "message": msg.into()}))
}

fn store_err(e: StoreError, rc: &RequestCtx) -> Reply {
    match e {
        StoreError::NotFound(w) => err(AdminError::NotFound, format!("{w} not found")),
        StoreError::AlreadyExists(w) => {
            err(AdminError::AlreadyExists, format!("{w} already exists"))
        }
        other => {
            tracing::error!(request_id = %rc.request_id, error = %other, "admin store error");
            err(AdminError::InternalError, "internal error")
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
pub(crate) fn parse_time(s: &str) -> Option<u64> {
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

/// The dispatch table: the Cedar action of a method and path (its decoded segments after
/// `/admin/v1/`), or `None` for no route.
fn route(method: &Method, segs: &[&str]) -> Option<Action> {
    let action = match (method.clone(), segs) {
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
        (Method::POST, ["groups", _, "enable"]) => Action::AdminEnableGroup,
        (Method::POST, ["groups", _, "disable"]) => Action::AdminDisableGroup,
        (Method::GET, ["policies"]) => Action::AdminListPolicies,
        (Method::POST, ["policies"]) => Action::AdminAttachPolicy,
        // Replacing an attachment in place (same id) is attaching it anew.
        (Method::PUT, ["policies", _]) => Action::AdminAttachPolicy,
        (Method::DELETE, ["policies", _]) => Action::AdminDetachPolicy,
        (Method::GET, ["named-policies"]) => Action::AdminListPolicies,
        (Method::PUT, ["named-policies", _]) => Action::AdminCreatePolicy,
        (Method::DELETE, ["named-policies", _]) => Action::AdminDeletePolicy,
        // The log itself, its key, exports and proofs are reads of the audit log.
        (
            Method::GET,
            ["audit"]
            | [
                "audit",
                "pubkey" | "range" | "log" | "proof" | "consistency",
            ],
        ) => Action::AdminQueryAudit,
        (Method::POST, ["lifecycle", "run"]) => Action::AdminRunLifecycle,
        (Method::POST, ["scrub"]) => Action::AdminScrub,
        (Method::POST, ["backup"]) => Action::AdminBackup,
        (Method::POST, ["users", _, "revoke"] | ["keys", _, "revoke"]) => Action::AdminRevokeKeys,
        (Method::GET, ["idps"]) => Action::AdminListIdentityProviders,
        (Method::PUT, ["idps", _]) => Action::AdminAddIdentityProvider,
        (Method::DELETE, ["idps", _]) => Action::AdminRemoveIdentityProvider,
        (Method::GET, ["public-access-block"]) => Action::AdminGetPublicAccessBlock,
        (Method::PUT, ["public-access-block"]) => Action::AdminPutPublicAccessBlock,
        (Method::DELETE, ["public-access-block"]) => Action::AdminDeletePublicAccessBlock,
        (Method::GET, ["kms", "keys"]) => Action::AdminListKmsKeys,
        (Method::POST, ["kms", "keys"]) => Action::AdminCreateKmsKey,
        (Method::POST, ["kms", "keys", _, "enable" | "disable" | "rotate"]) => {
            Action::AdminUpdateKmsKey
        }
        (Method::GET, ["svcaccts"]) => Action::AdminListServiceAccounts,
        (Method::POST, ["svcaccts"]) => Action::AdminCreateServiceAccount,
        (Method::DELETE, ["svcaccts", _]) => Action::AdminDeleteServiceAccount,
        (Method::POST, ["shares"]) => Action::AdminCreateShareLink,
        (Method::GET, ["shares"]) => Action::AdminListShareLinks,
        (Method::DELETE, ["shares", _]) | (Method::POST, ["shares", "revoke"]) => {
            Action::AdminRevokeShareLink
        }
        // Explaining and checking policies reads them: decided as admin:ListPolicies.
        (Method::POST, ["policy", "test" | "who-can" | "validate"]) => Action::AdminListPolicies,
        _ => return None,
    };
    Some(action)
}

/// The path segment at `i`, or "".
fn seg(segs: &[&str], i: usize) -> String {
    segs.get(i).map(|s| (*s).to_owned()).unwrap_or_default()
}

/// The request body as JSON.
fn json_body(body: &Bytes) -> Result<Value, Reply> {
    serde_json::from_slice(body).map_err(|e| err(AdminError::MalformedJSON, e.to_string()))
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
        kms: Arc<crate::s3::KeyRing>,
    ) -> Self {
        Self {
            store,
            iam,
            gate,
            audit,
            audit_key: None,
            oidc,
            scrape,
            kms,
            quotas: Arc::default(),
            sealing: Arc::new(tokio::sync::Semaphore::new(minio::SEALING_AT_ONCE)),
            shares: crate::share::ShareSettings::default(),
        }
    }

    /// Share links' default and longest lifetime.
    #[must_use]
    pub fn with_share_settings(mut self, shares: crate::share::ShareSettings) -> Self {
        self.shares = shares;
        self
    }

    /// The bucket quotas the S3 side enforces (MinIO's `set-bucket-quota` changes them).
    #[must_use]
    pub fn with_quotas(mut self, quotas: Arc<crate::s3::quota::BucketQuotas>) -> Self {
        self.quotas = quotas;
        self
    }

    /// The key the audit log's checkpoints verify with (`GET /admin/v1/audit/pubkey`).
    #[must_use]
    pub fn with_audit_key(mut self, key: fsgate_auditlog::PublicKey) -> Self {
        self.audit_key = Some(key);
        self
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
            Ok(Err(IamError::Policy(p))) => Err(err(AdminError::MalformedPolicy, p.to_string())),
            Ok(Err(IamError::Store(e))) => Err(store_err(e, rc)),
            Err(_) => Err(err(AdminError::InternalError, "policy change failed")),
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
                Err(err(AdminError::InternalError, "IAM reload failed"))
            }
            Err(e) => {
                tracing::error!(request_id = %rc.request_id, error = %e, "IAM reload panicked");
                Err(err(AdminError::InternalError, "IAM reload failed"))
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
        base_url: &str,
    ) -> Answer {
        let rest = uri.path().strip_prefix(PREFIX).unwrap_or("");
        let segs: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let Some(action) = route(method, &segs) else {
            return err(
                AdminError::NoSuchRoute,
                format!("no admin route {method} {}", uri.path()),
            )
            .into();
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
                // A link is made for the caller; one link's revocation is its creator's.
                Action::AdminCreateShareLink => None,
                Action::AdminRevokeShareLink if *method == Method::DELETE => {
                    self.share_route_owner(&segs)
                }
                Action::AdminRevokeShareLink => None,
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
            return err(AdminError::AccessDenied, "Access Denied").into();
        }
        if let Some(r) = match self
            .run_shares(rc, (principal, base_url), action, &segs, &body, &resource)
            .await
        {
            Ok(r) => r,
            Err(r) => Some(r),
        } {
            return r.into();
        }
        match self.run(rc, action, &segs, uri, body, &resource).await {
            Ok(a) => a,
            Err(r) => r.into(),
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
    ) -> Result<Answer, Reply> {
        if let Some(r) = self.run_identity(rc, action, segs, &body, resource).await? {
            return Ok(r.into());
        }
        if let Some(r) = self.run_users(rc, action, segs, &body).await? {
            return Ok(r.into());
        }
        if let Some(r) = self.run_policies(rc, action, segs, &body).await? {
            return Ok(r.into());
        }
        if let Some(a) = self.run_audit(rc, action, segs, uri, &body).await? {
            return Ok(a);
        }
        if let Some(r) = self.run_kms(rc, action, segs, &body).await? {
            return Ok(r.into());
        }
        if let Some(r) = self.run_account(rc, action, &body).await? {
            return Ok(r.into());
        }
        Err(err(AdminError::NoSuchRoute, "no such admin route"))
    }
}

impl AdminApi {
    /// True for admin API paths.
    #[must_use]
    pub fn matches(uri: &Uri) -> bool {
        uri.path().starts_with(PREFIX) || uri.path().starts_with(minio::PREFIX)
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
            let rendered = self.scrape.render().await;
            let rendered = if req.uri.path() == "/minio/v2/metrics/cluster" {
                crate::telemetry::minio_view(&rendered)
            } else {
                rendered
            };
            let mut resp = S3Response::new(Body::from(rendered));
            resp.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return Ok(resp);
        }
        let body = match http_body_util::Limited::new(req.input, MAX_BODY)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) if req.uri.path().starts_with(minio::PREFIX) => {
                return Ok(minio::too_large(&rc, &req.uri));
            }
            Err(_) => {
                return Err(s3_error!(
                    IncompleteBody,
                    "admin request body unreadable or over 1 MiB"
                ));
            }
        };
        if req.uri.path().starts_with(minio::PREFIX) {
            return Ok(self
                .minio(
                    &rc,
                    &principal,
                    access_key.as_deref(),
                    &req.method,
                    &req.uri,
                    body,
                )
                .await);
        }
        let (status, body, content_type, next) = match self
            .dispatch(
                &rc,
                &principal,
                &req.method,
                &req.uri,
                body,
                &crate::share::base_url(&req.headers, rc.secure),
            )
            .await
        {
            Answer::Json(Reply(status, value)) => (
                status,
                Bytes::from(value.to_string()),
                "application/json",
                None,
            ),
            Answer::Lines { body, next } => (StatusCode::OK, body, "application/x-ndjson", next),
        };
        let mut resp = S3Response::with_status(Body::from(body), status);
        resp.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        if let Some(n) = next {
            resp.headers
                .insert(audit::NEXT_HEADER, http::HeaderValue::from(n));
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(method: Method, path: &str) -> Option<Action> {
        let segs: Vec<String> = path
            .strip_prefix(PREFIX)
            .unwrap_or("")
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        route(&method, &segs)
    }

    #[test]
    fn every_route_names_its_action() {
        let table = [
            (Method::GET, "/admin/v1/users", Action::AdminListUsers),
            (Method::POST, "/admin/v1/users", Action::AdminAddUser),
            (
                Method::DELETE,
                "/admin/v1/users/alice",
                Action::AdminRemoveUser,
            ),
            (
                Method::POST,
                "/admin/v1/users/alice/enable",
                Action::AdminEnableUser,
            ),
            (
                Method::POST,
                "/admin/v1/users/alice/disable",
                Action::AdminDisableUser,
            ),
            (
                Method::GET,
                "/admin/v1/users/alice/keys",
                Action::AdminListKeys,
            ),
            (
                Method::POST,
                "/admin/v1/users/alice/keys",
                Action::AdminCreateKey,
            ),
            (
                Method::DELETE,
                "/admin/v1/keys/AKIA",
                Action::AdminDeleteKey,
            ),
            (
                Method::PUT,
                "/admin/v1/groups/g/members/alice",
                Action::AdminAddGroupMember,
            ),
            (
                Method::DELETE,
                "/admin/v1/groups/g/members/alice",
                Action::AdminRemoveGroupMember,
            ),
            (Method::GET, "/admin/v1/policies", Action::AdminListPolicies),
            (
                Method::POST,
                "/admin/v1/policies",
                Action::AdminAttachPolicy,
            ),
            (
                Method::PUT,
                "/admin/v1/policies/abc",
                Action::AdminAttachPolicy,
            ),
            (
                Method::DELETE,
                "/admin/v1/policies/abc",
                Action::AdminDetachPolicy,
            ),
            (
                Method::POST,
                "/admin/v1/policy/test",
                Action::AdminListPolicies,
            ),
            (
                Method::POST,
                "/admin/v1/policy/who-can",
                Action::AdminListPolicies,
            ),
            (
                Method::POST,
                "/admin/v1/policy/validate",
                Action::AdminListPolicies,
            ),
            (Method::GET, "/admin/v1/audit", Action::AdminQueryAudit),
            (
                Method::POST,
                "/admin/v1/lifecycle/run",
                Action::AdminRunLifecycle,
            ),
            (Method::POST, "/admin/v1/scrub", Action::AdminScrub),
            (Method::POST, "/admin/v1/backup", Action::AdminBackup),
            (
                Method::POST,
                "/admin/v1/users/alice/revoke",
                Action::AdminRevokeKeys,
            ),
            (
                Method::POST,
                "/admin/v1/keys/AKIA/revoke",
                Action::AdminRevokeKeys,
            ),
            (
                Method::GET,
                "/admin/v1/idps",
                Action::AdminListIdentityProviders,
            ),
            (Method::GET, "/admin/v1/kms/keys", Action::AdminListKmsKeys),
            (
                Method::PUT,
                "/admin/v1/public-access-block",
                Action::AdminPutPublicAccessBlock,
            ),
            (
                Method::POST,
                "/admin/v1/kms/keys",
                Action::AdminCreateKmsKey,
            ),
            (
                Method::POST,
                "/admin/v1/kms/keys/app/rotate",
                Action::AdminUpdateKmsKey,
            ),
            (
                Method::PUT,
                "/admin/v1/idps/kc",
                Action::AdminAddIdentityProvider,
            ),
            (
                Method::DELETE,
                "/admin/v1/idps/kc",
                Action::AdminRemoveIdentityProvider,
            ),
            (
                Method::GET,
                "/admin/v1/svcaccts",
                Action::AdminListServiceAccounts,
            ),
            (
                Method::POST,
                "/admin/v1/svcaccts",
                Action::AdminCreateServiceAccount,
            ),
            (
                Method::DELETE,
                "/admin/v1/svcaccts/AKIA",
                Action::AdminDeleteServiceAccount,
            ),
        ];
        for (method, path, action) in table {
            assert_eq!(
                routed(method.clone(), path),
                Some(action),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn unknown_routes_have_no_action() {
        for (method, path) in [
            (Method::GET, "/admin/v1/"),
            (Method::GET, "/admin/v1/nothing"),
            (Method::PATCH, "/admin/v1/users"),
            (Method::GET, "/admin/v1/users/alice"),
            (Method::DELETE, "/admin/v1/users"),
            (Method::POST, "/admin/v1/users/alice/enable/again"),
            (Method::GET, "/admin/v1/policy/test"),
            (Method::POST, "/admin/v1/policy/explain"),
            (Method::DELETE, "/admin/v1/audit"),
        ] {
            assert_eq!(routed(method.clone(), path), None, "{method} {path}");
        }
    }

    /// Segments are decoded once, after splitting: an encoded slash stays inside its segment
    /// (a user cannot be smuggled into another route).
    #[test]
    fn segments_are_decoded_after_splitting() {
        assert_eq!(
            routed(Method::DELETE, "/admin/v1/users/a%2Fenable"),
            Some(Action::AdminRemoveUser)
        );
        assert_eq!(
            routed(Method::POST, "/admin/v1/users/a%2Fb/enable"),
            Some(Action::AdminEnableUser)
        );
        assert_eq!(decode("caf%C3%A9"), "café");
    }

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("99999999999999999999"), None);
        assert_eq!(
            ns_to_rfc3339(1_700_000_000_000_000_000),
            "2023-11-14T22:13:20Z"
        );
    }
}
