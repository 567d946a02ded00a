//! Share links: a link to one object or a folder (a key prefix) with a lifetime, an optional
//! use limit and password, revocable at any time. The store keeps the records and makes every
//! use of a link one atomic step ([`Store::claim_share_use`]): the check that it is live and
//! the count of its uses are committed together, under one lock, so that a use limit is exact
//! under concurrent requests and a revocation is seen by every use that starts after it
//! returned. What a link may do is decided by the gateway (Cedar), not here.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};
use crate::meta::Cf;
use crate::{Store, now_ns};

/// One share link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLinkRecord {
    /// The link's public id (shown in listings and audit records; not a credential).
    pub id: String,
    /// SHA-256 (hex) of the secret the link's URL carries.
    pub secret_sha256: String,
    /// The bucket.
    pub bucket: String,
    /// The object's key, or the folder's prefix (ending in `/`) when `folder`.
    pub key: String,
    /// Whether the link names a folder (every object under `key`).
    pub folder: bool,
    /// The access key that created the link: the link's rights are at most its owner's.
    pub creator_key: String,
    /// The user behind that key (`root` for the root credentials).
    pub creator: String,
    /// Creation time, ns since the Unix epoch.
    pub created_ns: u64,
    /// Expiry, ns since the Unix epoch.
    pub expires_ns: u64,
    /// How many uses (downloads, or uploads for an upload-only link) are allowed.
    pub max_uses: Option<u64>,
    /// Uses so far.
    pub uses: u64,
    /// The password's Argon2 hash (PHC string), if the link has one.
    pub password_hash: Option<String>,
    /// The link accepts uploads and serves nothing.
    pub upload_only: bool,
    /// Largest upload an upload-only link accepts, in bytes.
    pub max_size: Option<u64>,
    /// A label for the creator's own listings.
    pub label: String,
    /// When the link was revoked, if it was.
    pub revoked_ns: Option<u64>,
}

/// Why a link cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShareRefusal {
    /// No link has this id.
    #[error("no such link")]
    Unknown,
    /// Revoked.
    #[error("the link was revoked")]
    Revoked,
    /// Past its expiry.
    #[error("the link has expired")]
    Expired,
    /// Its uses are spent.
    #[error("the link's uses are spent")]
    Exhausted,
}

impl ShareLinkRecord {
    /// Whether the link can be used at `now_ns`, ignoring its use count.
    pub fn live_at(&self, now_ns: u64) -> Result<(), ShareRefusal> {
        if self.revoked_ns.is_some() {
            return Err(ShareRefusal::Revoked);
        }
        if now_ns >= self.expires_ns {
            return Err(ShareRefusal::Expired);
        }
        Ok(())
    }

    /// Whether the link can be used once more at `now_ns`.
    pub fn usable_at(&self, now_ns: u64) -> Result<(), ShareRefusal> {
        self.live_at(now_ns)?;
        if self.max_uses.is_some_and(|m| self.uses >= m) {
            return Err(ShareRefusal::Exhausted);
        }
        Ok(())
    }
}

fn share_key(id: &str) -> Vec<u8> {
    format!("share/{id}").into_bytes()
}

/// Serializes every change of a share link (creation, use, revocation).
#[derive(Debug, Default)]
pub struct ShareLocks(Mutex<()>);

impl ShareLocks {
    fn hold(&self) -> std::sync::MutexGuard<'_, ()> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store {
    /// Stores a new link.
    pub fn create_share(&self, rec: &ShareLinkRecord) -> StoreResult<()> {
        let _held = self.share_locks.hold();
        if self.meta().contains(Cf::Iam, &share_key(&rec.id))? {
            return Err(StoreError::AlreadyExists(format!("share link {}", rec.id)));
        }
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &share_key(&rec.id), rec)?;
        self.commit(batch)
    }

    /// Reads a link.
    pub fn share(&self, id: &str) -> StoreResult<Option<ShareLinkRecord>> {
        self.meta().get(Cf::Iam, &share_key(id))
    }

    /// Every link, by id.
    pub fn list_shares(&self) -> StoreResult<Vec<ShareLinkRecord>> {
        Ok(self
            .meta()
            .scan_prefix::<ShareLinkRecord>(Cf::Iam, b"share/")?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Counts one use of a link if it is usable now, atomically with the check: of any number
    /// of concurrent claims, exactly as many succeed as the link has uses left, and none
    /// succeeds once a revocation has returned. Returns the record as claimed.
    pub fn claim_share_use(&self, id: &str) -> StoreResult<Result<ShareLinkRecord, ShareRefusal>> {
        let _held = self.share_locks.hold();
        let Some(mut rec) = self.share(id)? else {
            return Ok(Err(ShareRefusal::Unknown));
        };
        if let Err(why) = rec.usable_at(now_ns()) {
            return Ok(Err(why));
        }
        rec.uses += 1;
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &share_key(id), &rec)?;
        self.commit(batch)?;
        Ok(Ok(rec))
    }

    /// Gives back a use claimed for a request that then failed (refused, or nothing to serve).
    pub fn release_share_use(&self, id: &str) -> StoreResult<()> {
        let _held = self.share_locks.hold();
        let Some(mut rec) = self.share(id)? else {
            return Ok(());
        };
        rec.uses = rec.uses.saturating_sub(1);
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &share_key(id), &rec)?;
        self.commit(batch)
    }

    /// Revokes every live link `select` picks; returns those it revoked. Committed before it
    /// returns, so the next use of any of them is refused.
    pub fn revoke_shares(
        &self,
        select: impl Fn(&ShareLinkRecord) -> bool,
    ) -> StoreResult<Vec<ShareLinkRecord>> {
        let _held = self.share_locks.hold();
        let now = now_ns();
        let mut batch = self.meta().batch();
        let mut revoked = Vec::new();
        for mut rec in self.list_shares()? {
            if rec.revoked_ns.is_some() || !select(&rec) {
                continue;
            }
            rec.revoked_ns = Some(now);
            batch.put(Cf::Iam, &share_key(&rec.id), &rec)?;
            revoked.push(rec);
        }
        if !revoked.is_empty() {
            self.commit(batch)?;
        }
        Ok(revoked)
    }
}
