//! Admin routes for share links (`fsctl share`). A link is made by a user for itself and acts
//! for it; every route is decided on the link's creator, so users manage their own links and
//! an admin role manages everyone's.
//!
//! | method | path | action (resource) |
//! |---|---|---|
//! | POST | /admin/v1/shares `{"bucket", "key", "ttl_seconds"?, "max_uses"?, "password"?, "upload_only"?, "max_size"?, "label"?}` | admin:CreateShareLink (the caller) |
//! | GET | /admin/v1/shares?user= | admin:ListShareLinks (the user; the caller by default, every link for root) |
//! | DELETE | /admin/v1/shares/{id} | admin:RevokeShareLink (its creator) |
//! | POST | /admin/v1/shares/revoke `{"object": "bucket/key"}` or `{"user": U}` | admin:RevokeShareLink (each link's creator) |

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use fsgate_policy::{Action, Principal, Resource};
use fsgate_store::now_ns;
use fsgate_store::shares::ShareLinkRecord;

use super::{AdminApi, AdminError, Reply, err, ns_to_rfc3339, store_err};
use crate::access::AccessFacts;
use crate::context::RequestCtx;
use crate::share::{ShareSettings, link_principal, new_link_secret};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewShare {
    bucket: String,
    /// The object's key, or a folder's prefix ending in `/`.
    key: String,
    ttl_seconds: Option<u64>,
    max_uses: Option<u64>,
    password: Option<String>,
    #[serde(default)]
    upload_only: bool,
    max_size: Option<u64>,
    #[serde(default)]
    label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeShares {
    object: Option<String>,
    user: Option<String>,
}

/// A link as listings show it (never its secret or password hash).
fn shown(r: &ShareLinkRecord) -> Value {
    let now = now_ns();
    let state = match r.usable_at(now) {
        Ok(()) => "active",
        Err(why) => match why {
            fsgate_store::shares::ShareRefusal::Revoked => "revoked",
            fsgate_store::shares::ShareRefusal::Expired => "expired",
            fsgate_store::shares::ShareRefusal::Exhausted => "exhausted",
            fsgate_store::shares::ShareRefusal::Unknown => "unknown",
        },
    };
    json!({
        "id": r.id,
        "bucket": r.bucket,
        "key": r.key,
        "folder": r.folder,
        "creator": r.creator,
        "created": ns_to_rfc3339(r.created_ns),
        "expires": ns_to_rfc3339(r.expires_ns),
        "max_uses": r.max_uses,
        "uses": r.uses,
        "password": r.password_hash.is_some(),
        "upload_only": r.upload_only,
        "max_size": r.max_size,
        "label": r.label,
        "state": state,
        "revoked": r.revoked_ns.map(ns_to_rfc3339),
    })
}

/// The name a link records as its creator: the user, or `root`.
fn creator_name(p: &Principal) -> String {
    match p.unlimited() {
        Principal::User { name, .. } => name.clone(),
        _ => "root".to_owned(),
    }
}

impl AdminApi {
    /// The user a share route is decided on: a link's creator (revoking one link), or the
    /// caller.
    pub(super) fn share_route_owner(&self, segs: &[&str]) -> Option<String> {
        match segs {
            ["shares", id] => Some(
                self.store
                    .share(id)
                    .ok()
                    .flatten()
                    .map(|r| r.creator)
                    .unwrap_or_default(),
            ),
            _ => None,
        }
    }

    pub(super) async fn run_shares(
        &self,
        rc: &RequestCtx,
        (principal, base_url): (&Principal, &str),
        action: Action,
        segs: &[&str],
        body: &Bytes,
        resource: &Resource,
    ) -> Result<Option<Reply>, Reply> {
        let reply = match (action, segs) {
            (Action::AdminCreateShareLink, ["shares"]) => {
                let new: NewShare = serde_json::from_slice(body)
                    .map_err(|e| err(AdminError::MalformedJSON, e.to_string()))?;
                self.create_share(rc, principal, new, base_url).await?
            }
            (Action::AdminListShareLinks, ["shares"]) => {
                let Resource::User(user) = resource else {
                    return Err(err(AdminError::InvalidArgument, "no user"));
                };
                let all = user.is_empty();
                let user = user.clone();
                let links = self
                    .blocking(move |s| s.list_shares())
                    .await
                    .map_err(|e| store_err(e, rc))?;
                let shown: Vec<Value> = links
                    .iter()
                    .filter(|r| all || r.creator == user)
                    .map(shown)
                    .collect();
                Reply(StatusCode::OK, json!({ "shares": shown }))
            }
            (Action::AdminRevokeShareLink, ["shares", "revoke"]) => {
                let what: RevokeShares = serde_json::from_slice(body)
                    .map_err(|e| err(AdminError::MalformedJSON, e.to_string()))?;
                self.revoke_shares(rc, principal, what).await?
            }
            (Action::AdminRevokeShareLink, ["shares", id]) => {
                let named = (*id).to_owned();
                let revoked = self
                    .blocking(move |s| s.revoke_shares(|r| r.id == named))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                if revoked.is_empty() && self.store.share(id).ok().flatten().is_none() {
                    return Err(err(AdminError::NotFound, "share link not found"));
                }
                revoked_reply(&revoked, &[])
            }
            _ => return Ok(None),
        };
        Ok(Some(reply))
    }

    async fn create_share(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        new: NewShare,
        base_url: &str,
    ) -> Result<Reply, Reply> {
        let settings: ShareSettings = self.shares;
        let creator_key = rc.fields().access_key.clone();
        if creator_key.is_empty() {
            return Err(err(
                AdminError::InvalidArgument,
                "share links are made with an access key or STS session: a bearer token's identity cannot be checked again when the link is used",
            ));
        }
        if new.bucket.is_empty() || new.key.is_empty() {
            return Err(err(
                AdminError::InvalidArgument,
                "a share link names a bucket and an object key or a folder (prefix ending in /)",
            ));
        }
        let ttl = new.ttl_seconds.unwrap_or(settings.default_ttl.as_secs());
        if ttl == 0 || ttl > settings.max_ttl.as_secs() {
            return Err(err(
                AdminError::InvalidArgument,
                format!(
                    "the link's lifetime must be between 1 second and the server's maximum, {} seconds",
                    settings.max_ttl.as_secs()
                ),
            ));
        }
        if new.max_uses == Some(0) {
            return Err(err(
                AdminError::InvalidArgument,
                "max_uses must be at least 1",
            ));
        }
        if new.max_size.is_some() && !new.upload_only {
            return Err(err(
                AdminError::InvalidArgument,
                "max_size applies to upload-only links",
            ));
        }
        if new.password.as_deref().is_some_and(str::is_empty) {
            return Err(err(AdminError::InvalidArgument, "an empty password"));
        }
        let bucket = new.bucket.clone();
        match self.blocking(move |s| s.bucket(&bucket)).await {
            Ok(_) => {}
            Err(fsgate_store::StoreError::NoSuchBucket) => {
                return Err(err(AdminError::NotFound, "bucket not found"));
            }
            Err(e) => return Err(store_err(e, rc)),
        }
        let created_ns = now_ns();
        let (id, secret, secret_sha256) = new_link_secret();
        let password_hash = match new.password.clone() {
            Some(p) => Some(
                tokio::task::spawn_blocking(move || crate::share::hash_password(&p))
                    .await
                    .map_err(|_| err(AdminError::InternalError, "hashing failed"))?
                    .map_err(|_| err(AdminError::InternalError, "hashing failed"))?,
            ),
            None => None,
        };
        let rec = ShareLinkRecord {
            id: id.clone(),
            secret_sha256,
            bucket: new.bucket,
            folder: new.key.ends_with('/'),
            key: new.key,
            creator_key,
            creator: creator_name(principal),
            created_ns,
            expires_ns: created_ns.saturating_add(ttl.saturating_mul(1_000_000_000)),
            max_uses: new.max_uses,
            uses: 0,
            password_hash,
            upload_only: new.upload_only,
            max_size: new.max_size,
            label: new.label,
            revoked_ns: None,
        };
        // The link must be allowed what it is for, now: by the policies on links (an admin's
        // forbid of password-less links refuses it here) and for its creator.
        let link = link_principal(&rec, principal.clone());
        let action = if rec.upload_only {
            Action::PutObject
        } else {
            Action::GetObject
        };
        let resource = Resource::Object {
            bucket: rec.bucket.clone(),
            key: rec.key.clone(),
        };
        let d = self
            .gate
            .decide(rc, &link, action, resource, AccessFacts::default());
        if !d.allowed {
            return Err(err(
                AdminError::AccessDenied,
                format!(
                    "the link would not be allowed to {} {}/{} (decided by: {})",
                    action.cedar_name(),
                    rec.bucket,
                    rec.key,
                    d.policies.join(", ")
                ),
            ));
        }
        let stored = rec.clone();
        self.blocking(move |s| s.create_share(&stored))
            .await
            .map_err(|e| store_err(e, rc))?;
        let url = format!("{base_url}/-/share/{id}/{secret}");
        Ok(Reply(
            StatusCode::OK,
            json!({
                "id": id,
                "url": url,
                "expires": ns_to_rfc3339(rec.expires_ns),
                "link": shown(&rec),
            }),
        ))
    }

    async fn revoke_shares(
        &self,
        rc: &RequestCtx,
        principal: &Principal,
        what: RevokeShares,
    ) -> Result<Reply, Reply> {
        let (bucket, key) = match (&what.object, &what.user) {
            (Some(o), None) => match o.split_once('/') {
                Some((b, k)) if !b.is_empty() && !k.is_empty() => {
                    (Some(b.to_owned()), Some(k.to_owned()))
                }
                _ => {
                    return Err(err(AdminError::InvalidArgument, "object is bucket/key"));
                }
            },
            (None, Some(_)) => (None, None),
            _ => {
                return Err(err(
                    AdminError::InvalidArgument,
                    "name one of object or user",
                ));
            }
        };
        let links = self
            .blocking(|s| s.list_shares())
            .await
            .map_err(|e| store_err(e, rc))?;
        // Each link's revocation is decided on its creator.
        let mut allowed = std::collections::HashSet::new();
        let mut denied = Vec::new();
        for r in &links {
            let picked = match (&bucket, &key, &what.user) {
                (Some(b), Some(k), _) => r.bucket == *b && r.key == *k,
                (_, _, Some(u)) => r.creator == *u,
                _ => false,
            };
            if !picked || r.revoked_ns.is_some() {
                continue;
            }
            let d = self.gate.decide(
                rc,
                principal,
                Action::AdminRevokeShareLink,
                Resource::User(r.creator.clone()),
                AccessFacts::default(),
            );
            if d.allowed {
                allowed.insert(r.id.clone());
            } else {
                denied.push(r.id.clone());
            }
        }
        let revoked = self
            .blocking(move |s| s.revoke_shares(|r| allowed.contains(&r.id)))
            .await
            .map_err(|e| store_err(e, rc))?;
        Ok(revoked_reply(&revoked, &denied))
    }
}

fn revoked_reply(revoked: &[ShareLinkRecord], denied: &[String]) -> Reply {
    let ids: Vec<&str> = revoked.iter().map(|r| r.id.as_str()).collect();
    Reply(StatusCode::OK, json!({ "revoked": ids, "denied": denied }))
}
