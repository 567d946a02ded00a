//! The in-memory view of IAM: access keys, users and the policy engine with every attachment
//! linked. Updated after every change, before the change is answered, so a disabled user or a
//! deleted key is refused from the very next request: identity changes re-read the identities
//! and keep the engine; policy changes are applied to the engine in place
//! (`PolicyEngine::with_changes`), so their cost does not grow with the number of users.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use fsgate_policy::{
    Changes, Grant, GrantPolicy, GrantTarget, Limit, PolicyEngine, PolicyError, Principal,
};
use fsgate_store::model::{
    AttachTarget, AttachedPolicy, Attachment, IdentityProvider, ServiceAccountRecord,
    SessionRecord, SessionSource, UserRecord,
};
use fsgate_store::{Store, StoreError, now_ns};

/// The bucket document holding a bucket policy as written (AWS JSON or Cedar).
pub const BUCKET_POLICY: &str = "policy";
/// The bucket document holding a bucket policy as Cedar (what the engine loads).
pub const BUCKET_POLICY_CEDAR: &str = "policy.cedar";

/// A name usable for a user, group or identity provider: 1-64 of A-Z a-z 0-9 . _ @ + = , -
/// (the admin API's rule, also applied to names that tokens and directories supply).
#[must_use]
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+=,-".contains(&b))
}

/// A name a grant or revocation may name: a local user (`valid_name`) or a federated one,
/// `PROVIDER:USER` (see `sts::federated_name`).
#[must_use]
pub fn valid_principal_name(n: &str) -> bool {
    valid_name(n)
        || n.split_once(':')
            .is_some_and(|(provider, user)| valid_name(provider) && valid_name(user))
}

/// The root credentials.
#[derive(Clone)]
pub struct RootCredentials {
    /// Access key (also the root principal's name).
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCredentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// One consistent IAM snapshot.
#[derive(Debug, Clone)]
pub struct IamSnapshot {
    /// access key → (user, secret).
    keys: HashMap<String, (String, String)>,
    /// user name → record.
    users: HashMap<String, UserRecord>,
    /// access key → service account, with its compiled limit (None when it has no policy).
    service_accounts: HashMap<String, (ServiceAccountRecord, Option<Limit>)>,
    /// user name → signatures and sessions made before this time (ns) are refused.
    revoked: HashMap<String, u64>,
    /// Revocation times of single access keys.
    revoked_keys: HashMap<String, u64>,
    /// Service accounts' expiry times (ns): their keys are refused after.
    expiring: HashMap<String, u64>,
    /// Keys switched off (IAM's Inactive, MinIO's service account status off): refused.
    disabled_keys: std::collections::HashSet<String>,
    /// Identity providers by name.
    pub providers: Vec<IdentityProvider>,
    /// The policy engine with every attachment linked.
    pub engine: Arc<PolicyEngine>,
}

/// A stored session with its compiled session policy.
#[derive(Debug)]
struct LiveSession {
    rec: SessionRecord,
    limit: Option<Limit>,
}

/// What a signed request presented besides its signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    /// The access key of the signature.
    pub access_key: &'a str,
    /// `x-amz-security-token` (header or query).
    pub token: Option<&'a str>,
    /// When the request (or presigned URL) was signed, ns; None when unknown (SigV2 presigned).
    pub signed_ns: Option<u64>,
}

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No such key (deleted, never existed) or its owner is disabled.
    UnknownKey,
    /// A session key without its token, or with another one.
    InvalidToken,
    /// The session has expired.
    ExpiredToken,
    /// Signed (or the session issued) before the owner's revocation time.
    Revoked,
}

/// The IAM cache.
#[derive(Debug)]
pub struct Iam {
    root: RootCredentials,
    /// The file policies (replaced on SIGHUP).
    base: RwLock<Arc<PolicyEngine>>,
    current: RwLock<Arc<IamSnapshot>>,
    /// STS sessions by temporary access key.
    sessions: RwLock<HashMap<String, Arc<LiveSession>>>,
    /// Held while a change is applied, so each one starts from the snapshot the previous one
    /// installed.
    change: std::sync::Mutex<()>,
}

/// Converts a stored attachment to the policy crate's grant.
#[must_use]
pub fn grant_of(a: &Attachment) -> Grant {
    Grant {
        id: a.id.clone(),
        target: match &a.target {
            AttachTarget::User(n) => GrantTarget::User(n.clone()),
            AttachTarget::Group(n) => GrantTarget::Group(n.clone()),
        },
        policy: match &a.policy {
            AttachedPolicy::Role {
                role,
                bucket,
                prefix,
            } => GrantPolicy::Role {
                role: role.clone(),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
            },
            AttachedPolicy::Cedar { text } | AttachedPolicy::Named { text, .. } => {
                GrantPolicy::Cedar(text.clone())
            }
        },
    }
}

/// The compiled limit of a service account's or session's policy (`kind-accesskey` names it
/// in decisions), or None when it has none.
fn optional_limit(
    engine: &PolicyEngine,
    kind: &str,
    access_key: &str,
    policy: Option<&str>,
) -> Result<Option<Limit>, PolicyError> {
    policy
        .map(|text| engine.limit(&format!("{kind}-{access_key}"), text))
        .transpose()
}

/// Why a reload failed.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] fsgate_store::StoreError),
    /// The attachments do not form a valid policy set.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

impl Iam {
    /// The user whose owner name (`user:NAME`) has this canonical id (ACL grants name users
    /// so), or root's.
    pub fn owner_by_canonical_id(&self, id: &str) -> Option<String> {
        let root = crate::ownership::ROOT_OWNER;
        if crate::ownership::canonical_id(root) == id {
            return Some(root.to_owned());
        }
        self.snapshot_now()
            .users
            .keys()
            .map(|n| format!("user:{n}"))
            .find(|o| crate::ownership::canonical_id(o) == id)
    }

    /// Builds the cache from the store.
    pub fn load(
        store: &Store,
        root: RootCredentials,
        base: Arc<PolicyEngine>,
    ) -> Result<Self, IamError> {
        let snap = Self::snapshot(store, &base)?;
        let iam = Self {
            root,
            base: RwLock::new(base),
            current: RwLock::new(Arc::new(snap)),
            sessions: RwLock::new(HashMap::new()),
            change: std::sync::Mutex::new(()),
        };
        let now = now_ns();
        for rec in store.list_sessions()? {
            if rec.expires_ns > now {
                iam.add_session(rec);
            }
        }
        Ok(iam)
    }

    /// A snapshot built from the store: every grant and bucket policy linked into `base`.
    fn snapshot(store: &Store, base: &PolicyEngine) -> Result<IamSnapshot, IamError> {
        let grants: Vec<Grant> = store.list_attachments()?.iter().map(grant_of).collect();
        let docs: Vec<(String, String)> = store
            .bucket_configs(BUCKET_POLICY_CEDAR)?
            .into_iter()
            .filter_map(|(b, d)| String::from_utf8(d).ok().map(|t| (b, t)))
            .collect();
        let acls = fsgate_policy::Changes {
            acls: crate::ownership::all_acl_changes(store)?,
            ..fsgate_policy::Changes::default()
        };
        let engine = Arc::new(
            base.with_grants(&grants)?
                .with_bucket_policies(&docs)?
                .with_changes(&acls)?,
        );
        Self::identities(store, engine)
    }

    /// Reads users, keys, service accounts, revocations and identity providers from the
    /// store, around an engine already built.
    fn identities(store: &Store, engine: Arc<PolicyEngine>) -> Result<IamSnapshot, IamError> {
        // A disabled group's grants do not count: its members are seen without it.
        let disabled: Vec<String> = store
            .list_groups()?
            .into_iter()
            .filter(|g| g.disabled)
            .map(|g| g.name)
            .collect();
        let users: HashMap<String, UserRecord> = store
            .list_users()?
            .into_iter()
            .map(|mut u| {
                u.groups.retain(|g| !disabled.contains(g));
                (u.name.clone(), u)
            })
            .collect();
        let mut keys: HashMap<String, (String, String)> = store
            .list_keys(None)?
            .into_iter()
            .map(|k| (k.access_key, (k.user, k.secret_key)))
            .collect();
        let mut service_accounts = HashMap::new();
        let mut expiring = HashMap::new();
        let mut disabled_keys = std::collections::HashSet::new();
        for (ak, settings) in store.list_key_settings()? {
            if settings.disabled {
                disabled_keys.insert(ak);
            } else if let Some(at) = settings.expires_ns {
                expiring.insert(ak, at);
            }
        }
        for sa in store.list_service_accounts()? {
            let limit = match optional_limit(
                &engine,
                "svcacct",
                &sa.access_key,
                sa.policy.as_deref(),
            ) {
                Ok(l) => l,
                Err(e) => {
                    // Unusable rather than unlimited: its key is refused until fixed.
                    tracing::error!(access_key = %sa.access_key, error = %e, "service account policy invalid; key refused");
                    keys.remove(&sa.access_key);
                    continue;
                }
            };
            service_accounts.insert(sa.access_key.clone(), (sa, limit));
        }
        Ok(IamSnapshot {
            keys,
            users,
            service_accounts,
            revoked: store.list_revocations()?.into_iter().collect(),
            revoked_keys: store.list_key_revocations()?.into_iter().collect(),
            expiring,
            disabled_keys,
            providers: store.list_identity_providers()?,
            engine,
        })
    }

    fn install(&self, snap: IamSnapshot) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(snap);
    }

    fn one_change_at_a_time(&self) -> std::sync::MutexGuard<'_, ()> {
        self.change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts a change of grants or bucket policies in force: checks it against the engine in
    /// force (validating only what it brings), runs `write` (the store change) and installs
    /// the changed engine. A change that does not validate writes nothing
    /// (`IamError::Policy`); a failed write installs nothing.
    pub fn change_policies<T>(
        &self,
        store: &Store,
        changes: &Changes,
        write: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, IamError> {
        let _one = self.one_change_at_a_time();
        let current = self.snapshot_now();
        let engine = Arc::new(current.engine.with_changes(changes)?);
        let out = write(store)?;
        let mut snap = (*current).clone();
        snap.engine = engine;
        self.install(snap);
        Ok(out)
    }

    /// As `change_policies`, with the change worked out from the store while no other change
    /// can run (`changes` also passes `write` what it read).
    pub fn change_policies_from<T, U>(
        &self,
        store: &Store,
        changes: impl FnOnce(&Store) -> Result<(Changes, U), StoreError>,
        write: impl FnOnce(&Store, U) -> Result<T, StoreError>,
    ) -> Result<T, IamError> {
        let _one = self.one_change_at_a_time();
        let current = self.snapshot_now();
        let (changes, passed) = changes(store)?;
        let engine = Arc::new(current.engine.with_changes(&changes)?);
        let out = write(store, passed)?;
        let mut snap = (*current).clone();
        snap.engine = engine;
        self.install(snap);
        Ok(out)
    }

    /// Checks a change of grants or bucket policies against the engine in force, changing
    /// nothing.
    pub fn check_policies(&self, changes: &Changes) -> Result<(), PolicyError> {
        self.snapshot_now().engine.with_changes(changes).map(|_| ())
    }

    /// Re-reads the identities (users, keys, groups, service accounts, revocations, identity
    /// providers) after a change to them; the policy engine stays as it is.
    pub fn reload_identities(&self, store: &Store) -> Result<(), IamError> {
        let _one = self.one_change_at_a_time();
        let engine = self.snapshot_now().engine.clone();
        self.install(Self::identities(store, engine)?);
        Ok(())
    }

    /// Rebuilds the whole snapshot from the store (after a change that touches both
    /// identities and grants, such as removing a user with its attachments).
    pub fn reload(&self, store: &Store) -> Result<(), IamError> {
        let _one = self.one_change_at_a_time();
        self.install(Self::snapshot(store, &self.base())?);
        Ok(())
    }

    fn base(&self) -> Arc<PolicyEngine> {
        self.base
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts new file policies in force (SIGHUP), with every attachment and bucket policy
    /// linked again. On error nothing changes: the running set stays in force.
    pub fn replace_base(&self, store: &Store, base: Arc<PolicyEngine>) -> Result<(), IamError> {
        let _one = self.one_change_at_a_time();
        let snap = Arc::new(Self::snapshot(store, &base)?);
        *self
            .base
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = base;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = snap;
        Ok(())
    }

    /// The current snapshot.
    pub fn snapshot_now(&self) -> Arc<IamSnapshot> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The root credentials.
    #[must_use]
    pub fn root(&self) -> &RootCredentials {
        &self.root
    }

    /// True when the access key exists but its owner is disabled.
    #[must_use]
    pub fn key_of_disabled_user(&self, access_key: &str) -> bool {
        let snap = self.snapshot_now();
        snap.keys
            .get(access_key)
            .and_then(|(user, _)| snap.users.get(user))
            .is_some_and(|u| !u.enabled)
    }

    /// The secret for an access key, only if the key exists and its owner is enabled, or
    /// the key is an STS session's (an expired one too, so that its requests verify and are
    /// then refused as `ExpiredToken`, as AWS answers).
    #[must_use]
    pub fn secret_for(&self, access_key: &str) -> Option<String> {
        if access_key == self.root.access_key {
            return Some(self.root.secret_key.clone());
        }
        let snap = self.snapshot_now();
        if let Some((user, secret)) = snap.keys.get(access_key) {
            snap.users.get(user).filter(|u| u.enabled)?;
            if snap.disabled_keys.contains(access_key)
                || snap
                    .expiring
                    .get(access_key)
                    .is_some_and(|at| *at <= now_ns())
            {
                return None;
            }
            return Some(secret.clone());
        }
        self.session(access_key)
            .map(|session| session.rec.secret_key.clone())
    }

    fn session(&self, access_key: &str) -> Option<Arc<LiveSession>> {
        self.sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(access_key)
            .cloned()
    }

    /// Makes a stored session usable (its policy was validated when it was issued; one that no
    /// longer validates leaves the session unusable).
    pub fn add_session(&self, rec: SessionRecord) {
        let engine = self.snapshot_now().engine.clone();
        let limit = match optional_limit(&engine, "session", &rec.access_key, rec.policy.as_deref())
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(access_key = %rec.access_key, error = %e, "session policy invalid; session refused");
                return;
            }
        };
        let mut map = self
            .sessions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = now_ns();
        map.retain(|_, s| s.rec.expires_ns > now);
        map.insert(rec.access_key.clone(), Arc::new(LiveSession { rec, limit }));
    }

    /// Checks that a session policy is valid Cedar for this schema.
    pub fn check_limit(&self, text: &str) -> Result<(), PolicyError> {
        self.snapshot_now()
            .engine
            .limit("session", text)
            .map(|_| ())
    }

    /// The principal named `name` for explanations (`fsctl policy test`): `root`/the root
    /// access key, `anonymous`, or a user (enabled or not).
    #[must_use]
    pub fn principal_named(&self, name: &str) -> Option<Principal> {
        if name == "anonymous" {
            return Some(Principal::Anonymous);
        }
        if name == "root" || name == self.root.access_key {
            return Some(Principal::Root(self.root.access_key.clone()));
        }
        let snap = self.snapshot_now();
        let u = snap.users.get(name)?;
        Some(Principal::user(u.name.clone(), u.groups.clone()))
    }

    /// Every user, for `who-can`.
    #[must_use]
    pub fn users(&self) -> Vec<UserRecord> {
        let mut v: Vec<UserRecord> = self.snapshot_now().users.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The user owning an access key (a user's own key or service account), if any.
    #[must_use]
    pub fn owner_of(&self, access_key: &str) -> Option<String> {
        self.snapshot_now()
            .keys
            .get(access_key)
            .map(|(u, _)| u.clone())
    }

    /// The service accounts, all or one owner's.
    #[must_use]
    pub fn service_accounts(&self, owner: Option<&str>) -> Vec<ServiceAccountRecord> {
        let mut v: Vec<ServiceAccountRecord> = self
            .snapshot_now()
            .service_accounts
            .values()
            .map(|(r, _)| r.clone())
            .filter(|r| owner.is_none_or(|o| r.owner == o))
            .collect();
        v.sort_by(|a, b| a.access_key.cmp(&b.access_key));
        v
    }

    /// The principal a long-lived key stands for (a user's key or a service account), checked
    /// against its owner's state and revocation time.
    fn key_principal(
        &self,
        snap: &IamSnapshot,
        access_key: &str,
        signed_ns: Option<u64>,
    ) -> Result<Principal, AuthFailure> {
        if access_key == self.root.access_key {
            return Ok(Principal::Root(self.root.access_key.clone()));
        }
        let (user, _) = snap.keys.get(access_key).ok_or(AuthFailure::UnknownKey)?;
        let u = snap
            .users
            .get(user)
            .filter(|u| u.enabled)
            .ok_or(AuthFailure::UnknownKey)?;
        check_revocation(snap, user, signed_ns)?;
        revocation_check(snap.revoked_keys.get(access_key), signed_ns)?;
        let limits = snap
            .service_accounts
            .get(access_key)
            .and_then(|(_, l)| l.clone())
            .into_iter()
            .collect();
        Ok(Principal::user(u.name.clone(), u.groups.clone()).limited(limits))
    }

    /// The principal of a federated identity (token or directory): its `PROVIDER:USER` name,
    /// groups and tags; refused when the credential was issued before a revocation of that
    /// name (a token without `iat` counts as issued before).
    pub fn federated_principal(
        &self,
        id: &crate::identity::federated::FederatedIdentity,
    ) -> Result<Principal, AuthFailure> {
        let snap = self.snapshot_now();
        check_revocation(&snap, &id.user, id.issued_ns)?;
        Ok(Principal::User {
            name: id.user.clone(),
            groups: id.groups.clone(),
            tags: id.tags.clone(),
        })
    }

    /// The principal a share link's creator is now, for one use of the link: the key it was
    /// made with (a user's key, a service account, an STS session) checked as if it signed
    /// at the link's creation time, so that a disabled or deleted creator, a deleted key, an
    /// expired session or a revocation after the link was made all stop the link.
    pub fn principal_for_link(
        &self,
        creator_key: &str,
        created_ns: u64,
    ) -> Result<Principal, AuthFailure> {
        let token = self.session(creator_key).map(|s| s.rec.token.clone());
        self.authenticate(Presented {
            access_key: creator_key,
            token: token.as_deref(),
            signed_ns: Some(created_ns),
        })
    }

    /// The principal for a signed request: root, a user's key, a service account or an STS
    /// session, each checked from scratch (owner enabled, key not deleted, session token and
    /// expiry, revocation time) so a change takes effect on the very next request.
    pub fn authenticate(&self, p: Presented<'_>) -> Result<Principal, AuthFailure> {
        let snap = self.snapshot_now();
        if p.access_key == self.root.access_key || snap.keys.contains_key(p.access_key) {
            return self.key_principal(&snap, p.access_key, p.signed_ns);
        }
        let session = self.session(p.access_key).ok_or(AuthFailure::UnknownKey)?;
        let rec = &session.rec;
        let token_ok = p.token.is_some_and(|t| {
            crate::identity::keys::constant_time_eq(t.as_bytes(), rec.token.as_bytes())
        });
        if !token_ok {
            return Err(AuthFailure::InvalidToken);
        }
        if rec.expires_ns <= now_ns() {
            return Err(AuthFailure::ExpiredToken);
        }
        check_revocation(&snap, &rec.user, p.signed_ns)?;
        check_revocation(&snap, &rec.user, Some(rec.created_ns))?;
        let base = match &rec.source {
            // Derived from a key: the key must still be valid, and its limits carry over.
            SessionSource::AssumeRole { parent_key } => {
                self.key_principal(&snap, parent_key, Some(rec.created_ns))?
            }
            // A federated identity (`PROVIDER:USER`, never a local user's name): its groups
            // and tags come from the token or directory; revocations were checked above.
            SessionSource::WebIdentity { .. } | SessionSource::Ldap { .. } => Principal::User {
                name: rec.user.clone(),
                groups: rec.groups.clone(),
                tags: rec.tags.clone(),
            },
        };
        Ok(base.limited(session.limit.clone().into_iter().collect()))
    }
}

fn check_revocation(
    snap: &IamSnapshot,
    user: &str,
    signed_ns: Option<u64>,
) -> Result<(), AuthFailure> {
    revocation_check(snap.revoked.get(user), signed_ns)
}

fn revocation_check(before: Option<&u64>, signed_ns: Option<u64>) -> Result<(), AuthFailure> {
    match (before, signed_ns) {
        (None, _) => Ok(()),
        (Some(before), Some(t)) if t >= *before => Ok(()),
        // Signed before the revocation time, or when it cannot be told (SigV2 presigned).
        _ => Err(AuthFailure::Revoked),
    }
}
