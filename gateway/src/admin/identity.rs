//! Admin routes for identity: service accounts, revocation and identity providers.
//!
//! | method | path | action (resource) |
//! |---|---|---|
//! | GET | /admin/v1/svcaccts?user= | admin:ListServiceAccounts (the owner; the caller by default) |
//! | POST | /admin/v1/svcaccts `{"user"?, "policy"?, "description"?, "access_key"?, "secret_key"?, "name"?, "disabled"?, "expiration"?}` | admin:CreateServiceAccount (the owner) |
//! | DELETE | /admin/v1/svcaccts/{access_key} | admin:DeleteServiceAccount (its owner) |
//! | POST | /admin/v1/users/{name}/revoke `{"before": RFC 3339 or "now"}` | admin:RevokeKeys |
//! | POST | /admin/v1/keys/{access key}/revoke `{"before": ...}` (one key) | admin:RevokeKeys |
//! | GET | /admin/v1/idps | admin:ListIdentityProviders |
//! | PUT | /admin/v1/idps/{name} `{"type": "oidc" or "ldap", …}` | admin:AddIdentityProvider |
//! | DELETE | /admin/v1/idps/{name} | admin:RemoveIdentityProvider |

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use fsgate_policy::{Action, Resource};
use fsgate_store::model::{IdentityProvider, LdapProvider, OidcProvider, ServiceAccountRecord};
use fsgate_store::now_ns;

use super::{AdminApi, AdminError, Reply, err, ns_to_rfc3339, parse_time, store_err};
use crate::context::RequestCtx;
use crate::identity::iam::valid_name;

#[derive(Deserialize)]
struct NewServiceAccount {
    /// A key brought from elsewhere (with `secret_key`); a new one is made without.
    #[serde(default)]
    access_key: Option<String>,
    #[serde(default)]
    secret_key: Option<String>,
    policy: Option<String>,
    #[serde(default)]
    description: String,
    /// A display name (MinIO's).
    #[serde(default)]
    name: String,
    /// Made switched off (refused until enabled).
    #[serde(default)]
    disabled: bool,
    /// RFC 3339 or Unix seconds after which the key is refused.
    #[serde(default)]
    expiration: Option<String>,
}

#[derive(Deserialize)]
struct Revoke {
    before: String,
}

/// Settings an identity provider takes when the request leaves them out.
fn provider_defaults(kind: &str) -> Option<Vec<(&'static str, Value)>> {
    match kind {
        "oidc" => Some(vec![
            ("groups_claim", json!("groups")),
            ("user_claim", json!("preferred_username")),
            ("tag_claims", json!([])),
        ]),
        "ldap" => Some(vec![
            ("tls", json!("none")),
            ("tls_insecure", json!(false)),
            ("user_filter", json!("(uid=%s)")),
            ("group_filter", json!("(member=%d)")),
            ("group_attribute", json!("cn")),
        ]),
        _ => None,
    }
}

/// The stored provider for `PUT /idps/{name}`: the body's fields, the name from the path, and
/// the defaults for what it leaves out.
fn provider_of(name: &str, body: &Bytes) -> Result<IdentityProvider, Reply> {
    let mut v: Value = json_of(body)?;
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let obj = v
        .as_object_mut()
        .ok_or_else(|| bad("a JSON object with \"type\": \"oidc\" or \"ldap\""))?;
    obj.insert("name".into(), json!(name));
    let defaults = provider_defaults(&kind).ok_or_else(|| bad("type: oidc or ldap"))?;
    for (k, d) in defaults {
        obj.entry(k).or_insert(d);
    }
    let malformed = |e: serde_json::Error| err(AdminError::MalformedJSON, e.to_string());
    let p = if kind == "oidc" {
        let o: OidcProvider = serde_json::from_value(v).map_err(malformed)?;
        if !(o.issuer.starts_with("https://") || o.issuer.starts_with("http://")) {
            return Err(bad("issuer: an http(s) URL"));
        }
        if o.client_id.is_empty() {
            return Err(bad("client_id: the audience tokens carry"));
        }
        IdentityProvider::Oidc(o)
    } else {
        let l: LdapProvider = serde_json::from_value(v).map_err(malformed)?;
        if !["none", "tls", "starttls"].contains(&l.tls.as_str()) {
            return Err(bad("tls: none, tls or starttls"));
        }
        if !l.user_filter.contains("%s") {
            return Err(bad("user_filter: must contain %s (the user name)"));
        }
        IdentityProvider::Ldap(l)
    };
    Ok(p)
}

fn bad(msg: impl Into<String>) -> Reply {
    err(AdminError::InvalidArgument, msg)
}

fn json_of<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| err(AdminError::MalformedJSON, e.to_string()))
}

fn provider_json(p: &IdentityProvider) -> Value {
    match p {
        IdentityProvider::Oidc(o) => json!({
            "name": o.name, "type": "oidc", "issuer": o.issuer, "client_id": o.client_id,
            "groups_claim": o.groups_claim, "user_claim": o.user_claim, "tag_claims": o.tag_claims,
        }),
        // The bind password is never shown.
        IdentityProvider::Ldap(l) => json!({
            "name": l.name, "type": "ldap", "server": l.server, "tls": l.tls,
            "tls_insecure": l.tls_insecure, "bind_dn": l.bind_dn, "user_base": l.user_base,
            "user_filter": l.user_filter, "group_base": l.group_base,
            "group_filter": l.group_filter, "group_attribute": l.group_attribute,
        }),
    }
}

fn service_account_json(sa: &ServiceAccountRecord) -> Value {
    json!({
        "access_key": sa.access_key, "owner": sa.owner, "description": sa.description,
        "policy": sa.policy, "created": ns_to_rfc3339(sa.created_ns),
    })
}

impl AdminApi {
    /// The identity routes; `None` when `action` is not one of them.
    pub(super) async fn run_identity(
        &self,
        rc: &RequestCtx,
        action: Action,
        segs: &[&str],
        body: &Bytes,
        resource: &Resource,
    ) -> Result<Option<Reply>, Reply> {
        let owner = match resource {
            Resource::User(u) => u.clone(),
            _ => String::new(),
        };
        let reply = match action {
            Action::AdminListServiceAccounts => {
                let owner = (!owner.is_empty()).then_some(owner.as_str());
                let v: Vec<Value> = self
                    .iam
                    .service_accounts(owner)
                    .iter()
                    .map(service_account_json)
                    .collect();
                Reply(StatusCode::OK, Value::Array(v))
            }
            Action::AdminCreateServiceAccount => {
                let req: NewServiceAccount = json_of(body)?;
                if owner.is_empty() {
                    return Err(bad("user: the owner (root has no service accounts)"));
                }
                if let Some(p) = &req.policy {
                    self.iam
                        .check_limit(p)
                        .map_err(|e| err(AdminError::MalformedPolicy, e.to_string()))?;
                }
                if req.description.len() > 256 {
                    return Err(bad("description: at most 256 bytes"));
                }
                let (ak, sk) =
                    self.key_pair(req.access_key.as_deref(), req.secret_key.as_deref())?;
                let expires_ns = match req.expiration.as_deref() {
                    None | Some("") => None,
                    Some(t) => {
                        Some(parse_time(t).filter(|at| *at > now_ns()).ok_or_else(|| {
                            bad("expiration: a future RFC 3339 time or Unix seconds")
                        })?)
                    }
                };
                let settings = fsgate_store::model::KeySettings {
                    name: req.name,
                    disabled: req.disabled,
                    expires_ns,
                };
                let rec = ServiceAccountRecord {
                    access_key: ak.clone(),
                    owner: owner.clone(),
                    policy: req.policy,
                    description: req.description,
                    created_ns: now_ns(),
                };
                let (r, sk2) = (rec.clone(), sk.clone());
                self.blocking(move |s| s.create_service_account_with(&r, &sk2, Some(&settings)))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                let mut v = service_account_json(&rec);
                if let Some(o) = v.as_object_mut() {
                    o.insert("secret_key".into(), json!(sk));
                }
                Reply(StatusCode::CREATED, v)
            }
            Action::AdminDeleteServiceAccount => {
                let ak = segs.get(1).copied().unwrap_or_default().to_owned();
                let is_svc = self
                    .iam
                    .service_accounts(None)
                    .iter()
                    .any(|sa| sa.access_key == ak);
                if !is_svc {
                    return Err(err(
                        AdminError::NotFound,
                        format!("service account {ak} not found"),
                    ));
                }
                let ak2 = ak.clone();
                self.blocking(move |s| s.delete_key(&ak2))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Reply(StatusCode::OK, json!({"removed": ak}))
            }
            Action::AdminRevokeKeys => {
                // `users/NAME/revoke`: every key, presigned URL, session and token of a user
                // (a local one, or a federated `PROVIDER:USER`); `keys/AK/revoke`: one key.
                let per_key = segs.first() == Some(&"keys");
                let name = segs.get(1).copied().unwrap_or_default().to_owned();
                if per_key {
                    if self.iam.owner_of(&name).is_none() {
                        return Err(err(
                            AdminError::NotFound,
                            format!("access key {name} not found"),
                        ));
                    }
                } else if !crate::identity::iam::valid_principal_name(&name) {
                    return Err(bad("a user name"));
                }
                let req: Revoke = json_of(body)?;
                let before = if req.before == "now" {
                    now_ns()
                } else {
                    parse_time(&req.before)
                        .ok_or_else(|| bad("before: RFC 3339, Unix seconds or now"))?
                };
                let n = name.clone();
                self.blocking(move |s| {
                    if per_key {
                        s.set_key_revocation(&n, before)
                    } else {
                        s.set_revocation(&n, before)
                    }
                })
                .await
                .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                let what = if per_key { "access_key" } else { "user" };
                tracing::warn!(request_id = %rc.request_id, %what, name = %name, before = %ns_to_rfc3339(before), "credentials revoked");
                Reply(
                    StatusCode::OK,
                    json!({
                        what: name,
                        "before": ns_to_rfc3339(before),
                        // SigV2 presigned URLs name no signing time: fsgate refuses them for
                        // 7 days after a revocation (they may be that old), fresh ones too.
                        "sigv2_presigned_refused_until": ns_to_rfc3339(
                            before.saturating_add(crate::identity::signing::MAX_PRESIGNED_SECS * 1_000_000_000)
                        ),
                    }),
                )
            }
            Action::AdminListIdentityProviders => {
                let v: Vec<Value> = self
                    .iam
                    .snapshot_now()
                    .providers
                    .iter()
                    .map(provider_json)
                    .collect();
                Reply(StatusCode::OK, Value::Array(v))
            }
            Action::AdminAddIdentityProvider => {
                let name = segs.get(1).copied().unwrap_or_default().to_owned();
                if !valid_name(&name) {
                    return Err(bad("provider names are 1-64 of A-Z a-z 0-9 . _ @ + = , -"));
                }
                let p = provider_of(&name, body)?;
                let p2 = p.clone();
                self.blocking(move |s| s.put_identity_provider(&p2))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Reply(StatusCode::OK, provider_json(&p))
            }
            Action::AdminRemoveIdentityProvider => {
                let name = segs.get(1).copied().unwrap_or_default().to_owned();
                let n2 = name.clone();
                self.blocking(move |s| s.delete_identity_provider(&n2))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Reply(StatusCode::OK, json!({"removed": name}))
            }
            _ => return Ok(None),
        };
        Ok(Some(reply))
    }
}
