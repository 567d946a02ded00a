//! Per-request state shared by the front layer, the access hook, the S3 handlers and the audit
//! record: the request id, who asked, what was decided.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use fsgate_policy::{Action, Decision, Principal};

/// Recorded as the deciding policy when nothing permitted a request.
pub const DEFAULT_DENY: &str = "default-deny";
/// Recorded when a policy failed to evaluate (which denies the request).
pub const EVALUATION_ERROR: &str = "evaluation-error";

/// What the audit record needs to know that only inner layers learn.
#[derive(Debug, Default, Clone)]
pub struct AuditFields {
    /// Principal name.
    pub principal: String,
    /// Access key used.
    pub access_key: String,
    /// Cedar action name, once resolved.
    pub action: String,
    /// Bucket named by the request.
    pub bucket: String,
    /// Key named by the request.
    pub key: String,
    /// `None` until a decision is made; then whether every decision allowed.
    pub allowed: Option<bool>,
    /// Deciding policy ids (all decisions of the request).
    pub policies: Vec<String>,
    /// Bytes received by the S3 handler (decoded body), when known.
    pub object_bytes_in: Option<u64>,
    /// The object version the request read, wrote or deleted, when any.
    pub version_id: String,
}

/// One request's shared state. Lives in the HTTP request's extensions as `Arc<RequestCtx>`.
#[derive(Debug)]
pub struct RequestCtx {
    /// Request id, also the audit record's key.
    pub request_id: String,
    /// Arrival time, ns since the Unix epoch.
    pub time_ns: u64,
    /// Arrival instant, for durations.
    pub started: Instant,
    /// Client address.
    pub source_ip: IpAddr,
    /// Whether the connection used TLS.
    pub secure: bool,
    /// User-Agent header.
    pub user_agent: String,
    /// How the request authenticated (`sigv4`, `presigned`, `sigv2`, `anonymous`).
    pub auth: String,
    /// The query string, decoded once as s3s decodes it (see `query.rs`).
    pub query: crate::identity::query::DecodedQuery,
    /// The OpenTelemetry trace id, once known (empty when tracing is off).
    pub trace_id: std::sync::OnceLock<String>,
    /// The request headers bucket-policy conditions read, as the access hook took them from
    /// the parsed request: later looks at the same request (`Gate::confirm_served`) decide
    /// with the same facts.
    pub condition_headers: std::sync::OnceLock<fsgate_policy::RequestHeaders>,
    /// The share link a request came through (`share/`), which the access hook takes as its
    /// principal. Set only by the share route, on the request it builds itself.
    pub share_link: std::sync::OnceLock<Principal>,
    fields: Mutex<AuditFields>,
    /// Set once an access hook decided the request: body bytes read from then on are no
    /// longer held against the pre-decision memory budget.
    decided: AtomicBool,
    /// What the request's undecided body bytes hold of the pre-decision budget, until the
    /// request is done.
    held: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    /// Why reading the body was stopped, if it was.
    body_refused: Mutex<Option<BodyRefused>>,
}

/// Why fsgate stopped reading a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyRefused {
    /// The pre-decision memory budget is spent (answered 503 SlowDown).
    #[error("the server holds too many undecided request bodies")]
    Memory,
    /// The body sent nothing for too long (answered 400 RequestTimeout).
    #[error("the request body sent nothing for too long")]
    Stalled,
}

impl RequestCtx {
    /// New state for a request that just arrived.
    #[must_use]
    pub fn new(
        request_id: String,
        time_ns: u64,
        source_ip: IpAddr,
        secure: bool,
        user_agent: String,
        auth: String,
        query: crate::identity::query::DecodedQuery,
    ) -> Arc<Self> {
        Arc::new(Self {
            request_id,
            time_ns,
            started: Instant::now(),
            source_ip,
            secure,
            user_agent,
            auth,
            query,
            trace_id: std::sync::OnceLock::new(),
            condition_headers: std::sync::OnceLock::new(),
            share_link: std::sync::OnceLock::new(),
            fields: Mutex::new(AuditFields::default()),
            decided: AtomicBool::new(false),
            held: Mutex::new(None),
            body_refused: Mutex::new(None),
        })
    }

    /// Marks the request decided by an access hook.
    pub fn mark_decided(&self) {
        self.decided.store(true, Ordering::Release);
    }

    /// Whether an access hook decided the request.
    #[must_use]
    pub fn is_decided(&self) -> bool {
        self.decided.load(Ordering::Acquire)
    }

    /// Holds `bytes` of the pre-decision budget until the request is done; false (and
    /// nothing held) when the budget has no room.
    pub fn hold_undecided(&self, budget: &Arc<tokio::sync::Semaphore>, bytes: usize) -> bool {
        let Ok(n) = u32::try_from(bytes) else {
            return false;
        };
        let Ok(permit) = budget.clone().try_acquire_many_owned(n) else {
            return false;
        };
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match held.as_mut() {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        true
    }

    /// Records why the body was refused (the front layer answers accordingly).
    pub fn refuse_body(&self, why: BodyRefused) {
        *self
            .body_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    /// Why the body was refused, if it was.
    #[must_use]
    pub fn body_refused(&self) -> Option<BodyRefused> {
        *self
            .body_refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The audit fields, for reading or updating.
    pub fn fields(&self) -> MutexGuard<'_, AuditFields> {
        self.fields.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records who is asking.
    pub fn set_principal(&self, p: &Principal, access_key: &str) {
        let mut f = self.fields();
        p.display_name().clone_into(&mut f.principal);
        access_key.clone_into(&mut f.access_key);
    }

    /// Records one decision. The request's decision is `allow` only if all of them allowed.
    pub fn record_decision(&self, action: Action, bucket: &str, key: &str, d: &Decision) {
        let mut f = self.fields();
        if f.action.is_empty() {
            action.cedar_name().clone_into(&mut f.action);
            bucket.clone_into(&mut f.bucket);
            key.clone_into(&mut f.key);
        }
        f.allowed = Some(f.allowed.unwrap_or(true) && d.allowed);
        let marker = if !d.errors.is_empty() {
            // A policy failed to evaluate (its id follows), which denies the request.
            Some(EVALUATION_ERROR)
        } else if !d.allowed && d.policies.is_empty() {
            // No policy permitted it: the default deny decided.
            Some(DEFAULT_DENY)
        } else {
            None
        };
        if let Some(m) = marker
            && !f.policies.iter().any(|p| p == m)
        {
            f.policies.push(m.to_owned());
        }
        for p in &d.policies {
            if !f.policies.contains(p) {
                f.policies.push(p.clone());
            }
        }
    }
}
