//! STS: temporary credentials. `AssumeRole` (signed by a user's key, a service account or
//! root), `AssumeRoleWithWebIdentity` (an OpenID Connect token, unsigned) and
//! `AssumeRoleWithLDAPIdentity` (a directory user name and password, unsigned), in the AWS
//! query protocol: `POST /` with a form body (or the parameters in the query string), answered
//! with the AWS XML that aws cli, boto3 and rclone parse.
//!
//! A session acts as its user (or federated identity with the groups the token or directory
//! gave it) and can do no more: an inline session policy (Cedar) only narrows it. The session
//! record is stored, so sessions survive a restart, and every request made with it is checked
//! again against its source (key deleted, user disabled, revocation time).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::BodyExt;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};

use fsgate_policy::{Action, Principal, Resource};
use fsgate_store::model::{SessionRecord, SessionSource};
use fsgate_store::{Store, now_ns};

use crate::access::{AccessFacts, Gate};
use crate::context::RequestCtx;
use crate::identity::federated::FederatedIdentity;
use crate::identity::iam::Iam;
use crate::identity::keys::random_string;

const MAX_BODY: usize = 64 << 10;
/// Session length bounds, seconds (AWS: 15 minutes to 12 hours).
pub const MIN_DURATION: u64 = 900;
/// See `MIN_DURATION`.
pub const MAX_DURATION: u64 = 43_200;
const DEFAULT_DURATION: u64 = 3600;
/// Longest inline session policy accepted, bytes.
const MAX_POLICY: usize = 16 << 10;
const NS: u64 = 1_000_000_000;

/// The STS error codes fsgate answers with, and the one table of their HTTP statuses (AWS
/// STS's, from its API reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsCode {
    /// The caller's policies do not allow it.
    AccessDenied,
    /// The identity provider could not be reached (details in the log).
    IDPCommunicationError,
    /// fsgate failed (details in the log).
    InternalFailure,
    /// No such STS action.
    InvalidAction,
    /// The signing key is unknown or its owner disabled.
    InvalidClientTokenId,
    /// The web identity token was refused.
    InvalidIdentityToken,
    /// The session policy is not a policy fsgate takes.
    MalformedPolicyDocument,
    /// AssumeRole without a signature.
    MissingAuthenticationToken,
    /// A required parameter is missing.
    MissingParameter,
    /// The session policy is too large.
    PackedPolicyTooLarge,
    /// A parameter is out of range.
    ValidationError,
}

impl StsCode {
    /// The HTTP status.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::AccessDenied | Self::InvalidClientTokenId | Self::MissingAuthenticationToken => {
                StatusCode::FORBIDDEN
            }
            Self::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
            Self::IDPCommunicationError
            | Self::InvalidAction
            | Self::InvalidIdentityToken
            | Self::MalformedPolicyDocument
            | Self::MissingParameter
            | Self::PackedPolicyTooLarge
            | Self::ValidationError => StatusCode::BAD_REQUEST,
        }
    }

    /// The code as AWS spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDenied",
            Self::IDPCommunicationError => "IDPCommunicationError",
            Self::InternalFailure => "InternalFailure",
            Self::InvalidAction => "InvalidAction",
            Self::InvalidClientTokenId => "InvalidClientTokenId",
            Self::InvalidIdentityToken => "InvalidIdentityToken",
            Self::MalformedPolicyDocument => "MalformedPolicyDocument",
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::MissingParameter => "MissingParameter",
            Self::PackedPolicyTooLarge => "PackedPolicyTooLarge",
            Self::ValidationError => "ValidationError",
        }
    }
}

/// An STS failure: its code and a message for the client.
#[derive(Debug)]
pub struct StsError {
    /// The code (and with it the status).
    pub code: StsCode,
    /// What the client is told.
    pub message: String,
}

impl StsError {
    fn new(code: StsCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The STS endpoint.
#[derive(Debug, Clone)]
pub struct Sts {
    store: Arc<Store>,
    iam: Arc<Iam>,
    gate: Gate,
    oidc: Arc<crate::identity::oidc::OidcVerifier>,
}

/// True for requests the STS endpoint answers: `POST /` with a form body, or `/` with an
/// `Action` query parameter (no S3 operation has either).
#[must_use]
pub fn is_sts_request(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    if uri.path() != "/" {
        return false;
    }
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let action_query = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("Action=")));
    (method == Method::POST && form)
        || ((method == Method::POST || method == Method::GET) && action_query)
}

/// Adds the pairs of `a=b&c=d` (form or query encoding); the first of a name wins.
pub(crate) fn parse_form(text: &str, into: &mut HashMap<String, String>) {
    for (k, v) in crate::identity::query::form_pairs(text) {
        into.entry(k).or_insert(v);
    }
}

pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn rfc3339(ns: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(ns / NS).unwrap_or(0))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The STS error document (query protocol).
fn error_response(e: &StsError, request_id: &str) -> S3Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        e.code.as_str(),
        xml_escape(&e.message),
        xml_escape(request_id)
    );
    xml_response(e.code.status(), body)
}

pub(crate) fn xml_response(status: StatusCode, body: String) -> S3Response<Body> {
    let mut resp = S3Response::with_status(Body::from(body), status);
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    resp
}

/// Validates `DurationSeconds`.
fn duration(params: &HashMap<String, String>) -> Result<u64, StsError> {
    let Some(d) = params.get("DurationSeconds") else {
        return Ok(DEFAULT_DURATION);
    };
    match d.parse::<u64>() {
        Ok(n) if (MIN_DURATION..=MAX_DURATION).contains(&n) => Ok(n),
        _ => Err(StsError::new(
            StsCode::ValidationError,
            format!(
                "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value between {MIN_DURATION} and {MAX_DURATION}"
            ),
        )),
    }
}

impl Sts {
    /// The endpoint over the store and IAM cache.
    #[must_use]
    pub fn new(
        store: Arc<Store>,
        iam: Arc<Iam>,
        gate: Gate,
        oidc: Arc<crate::identity::oidc::OidcVerifier>,
    ) -> Self {
        Self {
            store,
            iam,
            gate,
            oidc,
        }
    }

    /// Answers one STS request. STS errors are answered as STS XML, not S3 XML.
    pub async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let rc = req
            .extensions
            .get::<Arc<RequestCtx>>()
            .cloned()
            .ok_or_else(|| s3_error!(InternalError, "missing request context"))?;
        let body: Bytes = http_body_util::Limited::new(req.input, MAX_BODY)
            .collect()
            .await
            .map_err(|_| s3_error!(IncompleteBody, "STS request body unreadable or over 64 KiB"))?
            .to_bytes();
        let mut params = HashMap::new();
        parse_form(req.uri.query().unwrap_or(""), &mut params);
        parse_form(&String::from_utf8_lossy(&body), &mut params);
        let access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
        let action = params.get("Action").cloned().unwrap_or_default();
        let outcome = match action.as_str() {
            "AssumeRole" => {
                self.assume_role(
                    &rc,
                    access_key.as_deref(),
                    &req.method,
                    &req.headers,
                    &params,
                )
                .await
            }
            "AssumeRoleWithWebIdentity" => self.with_web_identity(&rc, &params).await,
            "AssumeRoleWithLDAPIdentity" => self.with_ldap(&rc, &params).await,
            other => Err(StsError::new(
                StsCode::InvalidAction,
                format!("Could not find operation {other} for version 2011-06-15"),
            )),
        };
        Ok(match outcome {
            Ok(xml) => xml_response(StatusCode::OK, xml),
            Err(e) => error_response(&e, &rc.request_id),
        })
    }

    async fn assume_role(
        &self,
        rc: &RequestCtx,
        access_key: Option<&str>,
        method: &http::Method,
        headers: &HeaderMap,
        params: &HashMap<String, String>,
    ) -> Result<String, StsError> {
        let Some(ak) = access_key else {
            return Err(StsError::new(
                StsCode::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            ));
        };
        let principal = self
            .gate
            .principal(Some(ak), method, headers, &rc.query)
            .map_err(|e| {
                StsError::new(
                    StsCode::InvalidClientTokenId,
                    e.message()
                        .unwrap_or("The security token included in the request is invalid")
                        .to_owned(),
                )
            })?;
        rc.set_principal(&principal, ak);
        if ak != self.iam.root().access_key && self.iam.owner_of(ak).is_none() {
            self.decide(rc, &principal, Action::StsAssumeRole, false);
            return Err(StsError::new(
                StsCode::AccessDenied,
                "Temporary credentials cannot assume a role; sign with a long-term key",
            ));
        }
        let duration = duration(params)?;
        let policy = self.session_policy(params)?;
        if !self.decide(rc, &principal, Action::StsAssumeRole, true) {
            return Err(StsError::new(
                StsCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole",
                    principal.display_name()
                ),
            ));
        }
        let session_name = params
            .get("RoleSessionName")
            .cloned()
            .unwrap_or_else(|| "fsgate".into());
        let rec = self.new_session(
            principal.display_name().to_owned(),
            Vec::new(),
            Vec::new(),
            policy,
            SessionSource::AssumeRole {
                parent_key: ak.to_owned(),
            },
            duration,
        );
        self.store_session(&rec).await?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>{}<AssumedRoleUser><Arn>arn:aws:sts::{}:assumed-role/{}/{}</Arn><AssumedRoleId>{}:{}</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></AssumeRoleResponse>",
            credentials_xml(&rec),
            crate::identity::ACCOUNT_ID,
            xml_escape(&rec.user),
            xml_escape(&session_name),
            rec.access_key,
            xml_escape(&session_name),
            xml_escape(&rc.request_id),
        ))
    }

    async fn with_web_identity(
        &self,
        rc: &RequestCtx,
        params: &HashMap<String, String>,
    ) -> Result<String, StsError> {
        let token = params
            .get("WebIdentityToken")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                StsError::new(StsCode::MissingParameter, "WebIdentityToken is required")
            })?;
        let duration = duration(params)?;
        let policy = self.session_policy(params)?;
        let id = self
            .oidc
            .verify(&self.iam.snapshot_now().providers, token)
            .await
            .map_err(|e| {
                tracing::info!(request_id = %rc.request_id, reason = %e, "web identity token refused");
                match e {
                    crate::identity::oidc::TokenError::Refused(why) => {
                        StsError::new(StsCode::InvalidIdentityToken, why)
                    }
                    // AWS: the provider could not be reached; the cause stays in the log.
                    crate::identity::oidc::TokenError::ProviderUnavailable(_) => StsError::new(StsCode::IDPCommunicationError, "The request could not be fulfilled because the identity provider could not be reached.",
                    ),
                }
            })?;
        let xml = self
            .federated(
                rc,
                id.clone(),
                Action::StsAssumeRoleWithWebIdentity,
                policy,
                duration,
            )
            .await?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult>{xml}<SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken><Audience>{}</Audience><Provider>{}</Provider></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
            xml_escape(&id.subject),
            xml_escape(&id.audience),
            xml_escape(&id.provider),
            xml_escape(&rc.request_id),
        ))
    }

    async fn with_ldap(
        &self,
        rc: &RequestCtx,
        params: &HashMap<String, String>,
    ) -> Result<String, StsError> {
        let user = params
            .get("LDAPUsername")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| StsError::new(StsCode::MissingParameter, "LDAPUsername is required"))?;
        let password = params
            .get("LDAPPassword")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| StsError::new(StsCode::MissingParameter, "LDAPPassword is required"))?;
        let duration = duration(params)?;
        let policy = self.session_policy(params)?;
        let id = crate::identity::ldap::authenticate(&self.iam.snapshot_now().providers, user, password)
            .await
            .map_err(|e| {
                tracing::info!(request_id = %rc.request_id, user = %user, reason = %e, "LDAP identity refused");
                // The directory's own errors (connection, search) stay in the log.
                StsError::new(StsCode::AccessDenied, "LDAP authentication failed: invalid user name or password, or the directory is unavailable")
            })?;
        let xml = self
            .federated(
                rc,
                id,
                Action::StsAssumeRoleWithLdapIdentity,
                policy,
                duration,
            )
            .await?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AssumeRoleWithLDAPIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithLDAPIdentityResult>{xml}</AssumeRoleWithLDAPIdentityResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></AssumeRoleWithLDAPIdentityResponse>",
            xml_escape(&rc.request_id),
        ))
    }

    /// Decides and issues a session for a federated identity; returns its credentials XML.
    async fn federated(
        &self,
        rc: &RequestCtx,
        id: FederatedIdentity,
        action: Action,
        policy: Option<String>,
        duration: u64,
    ) -> Result<String, StsError> {
        let principal = match self.iam.federated_principal(&id) {
            Ok(p) => p,
            Err(f) => {
                let p = Principal::user(id.user.clone(), Vec::new());
                rc.set_principal(&p, "");
                self.decide(rc, &p, action, false);
                return Err(StsError::new(
                    StsCode::AccessDenied,
                    crate::identity::signing::failure_error(f)
                        .message()
                        .unwrap_or("Access Denied")
                        .to_owned(),
                ));
            }
        };
        rc.set_principal(&principal, "");
        if !self.decide(rc, &principal, action, true) {
            return Err(StsError::new(
                StsCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: {}",
                    id.user,
                    action.cedar_name()
                ),
            ));
        }
        let rec = self.new_session(id.user, id.groups, id.tags, policy, id.source, duration);
        self.store_session(&rec).await?;
        rc.fields().access_key.clone_from(&rec.access_key);
        Ok(credentials_xml(&rec))
    }

    /// Decides an STS action (recorded in the audit fields); `ask == false` records a deny
    /// that was decided before Cedar (no policy consulted).
    fn decide(&self, rc: &RequestCtx, principal: &Principal, action: Action, ask: bool) -> bool {
        if ask {
            self.gate
                .decide(
                    rc,
                    principal,
                    action,
                    Resource::Service,
                    AccessFacts::default(),
                )
                .allowed
        } else {
            rc.record_decision(
                action,
                "",
                "",
                &fsgate_policy::Decision {
                    allowed: false,
                    policies: Vec::new(),
                    errors: Vec::new(),
                },
            );
            false
        }
    }

    fn session_policy(&self, params: &HashMap<String, String>) -> Result<Option<String>, StsError> {
        let Some(text) = params.get("Policy").filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        if text.len() > MAX_POLICY {
            return Err(StsError::new(
                StsCode::PackedPolicyTooLarge,
                format!("the session policy is over {MAX_POLICY} bytes"),
            ));
        }
        // Cedar text, or AWS IAM JSON (translated to Cedar by the policy layer).
        self.iam
            .check_limit(text)
            .map_err(|e| StsError::new(StsCode::MalformedPolicyDocument, e.to_string()))?;
        Ok(Some(text.clone()))
    }

    fn new_session(
        &self,
        user: String,
        groups: Vec<String>,
        tags: Vec<(String, String)>,
        policy: Option<String>,
        source: SessionSource,
        duration: u64,
    ) -> SessionRecord {
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const MIXED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let now = now_ns();
        SessionRecord {
            access_key: format!("ASIA{}", random_string(16, UPPER)),
            secret_key: random_string(40, MIXED),
            token: random_string(96, MIXED),
            user,
            groups,
            tags,
            policy,
            source,
            created_ns: now,
            expires_ns: now + duration * NS,
        }
    }

    async fn store_session(&self, rec: &SessionRecord) -> Result<(), StsError> {
        let (store, r) = (self.store.clone(), rec.clone());
        let stored = tokio::task::spawn_blocking(move || store.put_session(&r)).await;
        match stored {
            Ok(Ok(())) => {
                self.iam.add_session(rec.clone());
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "storing an STS session failed");
                Err(StsError::new(
                    StsCode::InternalFailure,
                    "could not store the session",
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "storing an STS session panicked");
                Err(StsError::new(
                    StsCode::InternalFailure,
                    "could not store the session",
                ))
            }
        }
    }
}

fn credentials_xml(rec: &SessionRecord) -> String {
    format!(
        "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>",
        rec.access_key,
        rec.secret_key,
        rec.token,
        rfc3339(rec.expires_ns)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_str(content_type).unwrap(),
        );
        h
    }

    #[test]
    fn sts_requests_are_told_from_s3_requests() {
        let form = headers("application/x-www-form-urlencoded; charset=utf-8");
        let none = HeaderMap::new();
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(is_sts_request(&Method::POST, &uri("/"), &form));
        assert!(is_sts_request(
            &Method::GET,
            &uri("/?Action=AssumeRole"),
            &none
        ));
        assert!(is_sts_request(
            &Method::POST,
            &uri("/?Version=x&Action=AssumeRole"),
            &none
        ));
        // S3: a bucket path, a form POST elsewhere (browser uploads), ListBuckets.
        assert!(!is_sts_request(&Method::POST, &uri("/bucket"), &form));
        assert!(!is_sts_request(&Method::GET, &uri("/"), &none));
        assert!(!is_sts_request(
            &Method::PUT,
            &uri("/?Action=AssumeRole"),
            &none
        ));
        assert!(!is_sts_request(&Method::GET, &uri("/?NoAction=1"), &none));
    }

    #[test]
    fn the_first_of_a_name_wins_and_values_are_decoded() {
        let mut params = HashMap::new();
        parse_form("Action=AssumeRole&DurationSeconds=900", &mut params);
        parse_form(
            "Action=AssumeRoleWithLDAPIdentity&LDAPUsername=a%2Bb&LDAPPassword=p+w",
            &mut params,
        );
        assert_eq!(params["Action"], "AssumeRole");
        assert_eq!(params["LDAPUsername"], "a+b");
        assert_eq!(params["LDAPPassword"], "p w");
    }

    #[test]
    fn durations_are_bounded_as_aws_bounds_them() {
        let with = |d: &str| HashMap::from([("DurationSeconds".to_owned(), d.to_owned())]);
        assert_eq!(duration(&HashMap::new()).unwrap(), DEFAULT_DURATION);
        assert_eq!(duration(&with("900")).unwrap(), 900);
        assert_eq!(
            duration(&with(&MAX_DURATION.to_string())).unwrap(),
            MAX_DURATION
        );
        for bad in ["899", "-1", "abc", "", &(MAX_DURATION + 1).to_string()] {
            let e = duration(&with(bad)).unwrap_err();
            assert_eq!(e.code, StsCode::ValidationError, "{bad}");
        }
    }

    #[test]
    fn errors_are_the_sts_document_with_escaped_text() {
        let e = StsError::new(StsCode::InvalidAction, "no <such> & \"thing\"");
        let resp = error_response(&e, "req-1");
        assert_eq!(resp.status, Some(StatusCode::BAD_REQUEST));
        assert_eq!(xml_escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
    }
}
