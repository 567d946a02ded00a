//! Admin routes for users, their access keys and group membership.
//!
//! | method | path | action |
//! |---|---|---|
//! | GET | /admin/v1/users | admin:ListUsers |
//! | POST | /admin/v1/users `{"name", "access_key"?, "secret_key"?}` | admin:AddUser (returns the first key: the one given, or a new one) |
//! | DELETE | /admin/v1/users/{name} | admin:RemoveUser |
//! | POST | /admin/v1/users/{name}/enable, /disable | admin:EnableUser, admin:DisableUser |
//! | GET, POST | /admin/v1/users/{name}/keys `{"access_key"?, "secret_key"?}` | admin:ListKeys, admin:CreateKey |
//! | DELETE | /admin/v1/keys/{access_key} | admin:DeleteKey |
//! | PUT, DELETE | /admin/v1/groups/{group}/members/{user} | admin:AddGroupMember, admin:RemoveGroupMember |
//! | POST | /admin/v1/groups/{group}/enable, /disable (a disabled group's grants stop counting) | admin:EnableGroup, admin:DisableGroup |

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use fsgate_policy::Action;

use super::{AdminApi, AdminError, Reply, err, new_key_pair, ns_to_rfc3339, store_err};
use crate::context::RequestCtx;
use crate::identity::iam::valid_name;

#[derive(Deserialize)]
struct NewUser {
    name: String,
    /// A key brought from elsewhere (with `secret_key`); a new one is made without.
    access_key: Option<String>,
    secret_key: Option<String>,
}

/// A key brought from elsewhere, for a new key.
#[derive(Deserialize, Default)]
struct GivenKey {
    access_key: Option<String>,
    secret_key: Option<String>,
}

impl AdminApi {
    /// The key pair to create: the one given (checked, and never root's), or a new one.
    pub(super) fn key_pair(
        &self,
        access_key: Option<&str>,
        secret_key: Option<&str>,
    ) -> Result<(String, String), Reply> {
        match crate::identity::keys::given_key_pair(access_key, secret_key) {
            Err(e) => Err(err(AdminError::InvalidArgument, e.to_string())),
            Ok(Some((ak, _))) if ak == self.iam.root().access_key => Err(err(
                AdminError::AlreadyExists,
                format!("access key {ak} already exists"),
            )),
            Ok(Some(pair)) => Ok(pair),
            Ok(None) => Ok(new_key_pair()),
        }
    }
}

impl AdminApi {
    pub(super) async fn run_users(
        &self,
        rc: &RequestCtx,
        action: Action,
        segs: &[&str],
        body: &Bytes,
    ) -> Result<Option<Reply>, Reply> {
        let seg = |i: usize| super::seg(segs, i);
        let parse = super::json_body;
        let reply = match action {
            Action::AdminListUsers => {
                let users = self
                    .blocking(|s| s.list_users())
                    .await
                    .map_err(|e| store_err(e, rc))?;
                let v: Vec<Value> = users
                    .into_iter()
                    .map(|u| json!({"name": u.name, "enabled": u.enabled, "groups": u.groups, "created": ns_to_rfc3339(u.created_ns)}))
                    .collect();
                Ok(Reply(StatusCode::OK, Value::Array(v)))
            }
            Action::AdminAddUser => {
                let req: NewUser = serde_json::from_value(parse(body)?)
                    .map_err(|e| err(AdminError::MalformedJSON, e.to_string()))?;
                if !valid_name(&req.name) || req.name == self.iam.root().access_key {
                    return Err(err(
                        AdminError::InvalidName,
                        "user names are 1-64 of A-Z a-z 0-9 . _ @ + = , -",
                    ));
                }
                let (ak, sk) =
                    self.key_pair(req.access_key.as_deref(), req.secret_key.as_deref())?;
                let (name, ak2, sk2) = (req.name.clone(), ak.clone(), sk.clone());
                self.blocking(move |s| s.create_user_with_key(&name, &ak2, &sk2))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(
                    StatusCode::CREATED,
                    json!({"user": req.name, "access_key": ak, "secret_key": sk}),
                ))
            }
            Action::AdminRemoveUser => {
                let name = seg(1);
                self.blocking(move |s| s.delete_user(&name))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.reload(rc).await?;
                Ok(Reply(StatusCode::OK, json!({"removed": seg(1)})))
            }
            Action::AdminEnableUser | Action::AdminDisableUser => {
                let enabled = action == Action::AdminEnableUser;
                let name = seg(1);
                self.blocking(move |s| {
                    let mut u = s.user(&name)?;
                    u.enabled = enabled;
                    s.update_user(&u)
                })
                .await
                .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(
                    StatusCode::OK,
                    json!({"user": seg(1), "enabled": enabled}),
                ))
            }
            Action::AdminListKeys => {
                let name = seg(1);
                let keys = self
                    .blocking(move |s| {
                        s.user(&name)?;
                        s.list_keys(Some(&name))
                    })
                    .await
                    .map_err(|e| store_err(e, rc))?;
                let v: Vec<Value> = keys
                    .into_iter()
                    .map(|k| json!({"access_key": k.access_key, "user": k.user, "created": ns_to_rfc3339(k.created_ns)}))
                    .collect();
                Ok(Reply(StatusCode::OK, Value::Array(v)))
            }
            Action::AdminCreateKey => {
                let name = seg(1);
                let given: GivenKey = if body.is_empty() {
                    GivenKey::default()
                } else {
                    serde_json::from_value(parse(body)?)
                        .map_err(|e| err(AdminError::MalformedJSON, e.to_string()))?
                };
                let (ak, sk) =
                    self.key_pair(given.access_key.as_deref(), given.secret_key.as_deref())?;
                let (ak2, sk2) = (ak.clone(), sk.clone());
                self.blocking(move |s| s.create_key(&name, &ak2, &sk2))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(
                    StatusCode::CREATED,
                    json!({"user": seg(1), "access_key": ak, "secret_key": sk}),
                ))
            }
            Action::AdminDeleteKey => {
                let ak = seg(1);
                self.blocking(move |s| s.delete_key(&ak))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(StatusCode::OK, json!({"deleted": seg(1)})))
            }
            Action::AdminAddGroupMember | Action::AdminRemoveGroupMember => {
                let add = action == Action::AdminAddGroupMember;
                let (group, user) = (seg(1), seg(3));
                if !valid_name(&group) {
                    return Err(err(AdminError::InvalidName, "invalid group name"));
                }
                let g = group.clone();
                self.blocking(move |s| {
                    let mut u = s.user(&user)?;
                    u.groups.retain(|x| x != &g);
                    if add {
                        u.groups.push(g);
                        u.groups.sort();
                    }
                    s.update_user(&u)
                })
                .await
                .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(
                    StatusCode::OK,
                    json!({"group": group, "user": seg(3), "member": add}),
                ))
            }
            Action::AdminEnableGroup | Action::AdminDisableGroup => {
                let group = seg(1);
                if !valid_name(&group) {
                    return Err(err(AdminError::InvalidName, "invalid group name"));
                }
                let rec = fsgate_store::model::GroupRecord {
                    name: group.clone(),
                    disabled: action == Action::AdminDisableGroup,
                };
                self.blocking(move |s| s.put_group(&rec))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                self.identities_changed(rc).await?;
                Ok(Reply(
                    StatusCode::OK,
                    json!({"group": group, "enabled": action == Action::AdminEnableGroup}),
                ))
            }
            _ => return Ok(None),
        };
        reply.map(Some)
    }
}
