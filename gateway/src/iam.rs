//! The in-memory view of IAM: access keys, users and the policy engine with every attachment
//! linked. Rebuilt from the store after every change, so a disabled user or a deleted key is
//! refused from the very next request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use fsgate_policy::{Grant, GrantPolicy, GrantTarget, PolicyEngine, PolicyError, Principal};
use fsgate_store::Store;
use fsgate_store::model::{AttachTarget, AttachedPolicy, Attachment, UserRecord};

/// The bucket document holding a bucket policy as written (AWS JSON or Cedar).
pub const BUCKET_POLICY: &str = "policy";
/// The bucket document holding a bucket policy as Cedar (what the engine loads).
pub const BUCKET_POLICY_CEDAR: &str = "policy.cedar";

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
#[derive(Debug)]
pub struct IamSnapshot {
    /// access key → (user, secret).
    keys: HashMap<String, (String, String)>,
    /// user name → record.
    users: HashMap<String, UserRecord>,
    /// The policy engine with every attachment linked.
    pub engine: Arc<PolicyEngine>,
}

/// Who an access key belongs to.
#[derive(Debug, Clone)]
pub enum KeyOwner {
    /// The root credentials.
    Root,
    /// An enabled user.
    User(UserRecord),
}

/// The IAM cache.
#[derive(Debug)]
pub struct Iam {
    root: RootCredentials,
    base: Arc<PolicyEngine>,
    current: RwLock<Arc<IamSnapshot>>,
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
            AttachedPolicy::Cedar { text } => GrantPolicy::Cedar(text.clone()),
        },
    }
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
    /// Builds the cache from the store.
    pub fn load(
        store: &Store,
        root: RootCredentials,
        base: Arc<PolicyEngine>,
    ) -> Result<Self, IamError> {
        let snap = Self::snapshot(store, &base, None, None)?;
        Ok(Self {
            root,
            base,
            current: RwLock::new(Arc::new(snap)),
        })
    }

    fn snapshot(
        store: &Store,
        base: &PolicyEngine,
        extra: Option<&Attachment>,
        bucket_policy: Option<(&str, &str)>,
    ) -> Result<IamSnapshot, IamError> {
        let users: HashMap<String, UserRecord> = store
            .list_users()?
            .into_iter()
            .map(|u| (u.name.clone(), u))
            .collect();
        let keys = store
            .list_keys(None)?
            .into_iter()
            .map(|k| (k.access_key, (k.user, k.secret_key)))
            .collect();
        let mut grants: Vec<Grant> = store.list_attachments()?.iter().map(grant_of).collect();
        if let Some(a) = extra {
            grants.push(grant_of(a));
        }
        let mut docs: Vec<(String, String)> = store
            .bucket_configs(BUCKET_POLICY_CEDAR)?
            .into_iter()
            .filter(|(b, _)| bucket_policy.is_none_or(|(cand, _)| cand != b))
            .filter_map(|(b, d)| String::from_utf8(d).ok().map(|t| (b, t)))
            .collect();
        if let Some((b, text)) = bucket_policy {
            docs.push((b.to_owned(), text.to_owned()));
        }
        let engine = Arc::new(base.with_grants(&grants)?.with_bucket_policies(&docs)?);
        Ok(IamSnapshot {
            keys,
            users,
            engine,
        })
    }

    /// Checks that `candidate` would form a valid policy set with what is stored.
    pub fn check_attachment(&self, store: &Store, candidate: &Attachment) -> Result<(), IamError> {
        Self::snapshot(store, &self.base, Some(candidate), None).map(|_| ())
    }

    /// Checks that a bucket policy (Cedar text) would form a valid policy set with what is
    /// stored, replacing that bucket's current one.
    pub fn check_bucket_policy(
        &self,
        store: &Store,
        bucket: &str,
        cedar: &str,
    ) -> Result<(), IamError> {
        Self::snapshot(store, &self.base, None, Some((bucket, cedar))).map(|_| ())
    }

    /// Rebuilds the snapshot after a change.
    pub fn reload(&self, store: &Store) -> Result<(), IamError> {
        let snap = Arc::new(Self::snapshot(store, &self.base, None, None)?);
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

    /// The secret for an access key, only if the key exists and its owner is enabled.
    #[must_use]
    pub fn secret_for(&self, access_key: &str) -> Option<String> {
        if access_key == self.root.access_key {
            return Some(self.root.secret_key.clone());
        }
        let snap = self.snapshot_now();
        let (user, secret) = snap.keys.get(access_key)?;
        snap.users.get(user).filter(|u| u.enabled)?;
        Some(secret.clone())
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
        Some(Principal::User {
            name: u.name.clone(),
            groups: u.groups.clone(),
        })
    }

    /// Every user, for `who-can`.
    #[must_use]
    pub fn users(&self) -> Vec<UserRecord> {
        let mut v: Vec<UserRecord> = self.snapshot_now().users.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The principal an access key stands for, if it may still be used.
    #[must_use]
    pub fn principal_for(&self, access_key: &str) -> Option<Principal> {
        if access_key == self.root.access_key {
            return Some(Principal::Root(self.root.access_key.clone()));
        }
        let snap = self.snapshot_now();
        let (user, _) = snap.keys.get(access_key)?;
        let u = snap.users.get(user).filter(|u| u.enabled)?;
        Some(Principal::User {
            name: u.name.clone(),
            groups: u.groups.clone(),
        })
    }
}
