//! Admin routes for account-wide settings: the Public Access Block that applies to every
//! bucket with the bucket's own (each setting on when either is).
//!
//! | method | path | action |
//! |---|---|---|
//! | GET | /admin/v1/public-access-block | admin:GetPublicAccessBlock |
//! | PUT | /admin/v1/public-access-block `{"BlockPublicAcls"?, "IgnorePublicAcls"?, "BlockPublicPolicy"?, "RestrictPublicBuckets"?}` | admin:PutPublicAccessBlock |
//! | DELETE | /admin/v1/public-access-block | admin:DeletePublicAccessBlock |
//!
//! A change puts every bucket's policy and ACL grants in force again with the new settings,
//! in the same step as it is stored.

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use fsgate_policy::Action;

use super::{AdminApi, AdminError, Reply, err, store_err};
use crate::context::RequestCtx;
use crate::identity::iam::{BUCKET_POLICY_CEDAR, IamError};
use crate::ownership::{PUBLIC_ACCESS_BLOCK_DOC, PublicAccessBlock};

fn block_json(b: PublicAccessBlock) -> Value {
    json!({
        "BlockPublicAcls": b.block_public_acls,
        "IgnorePublicAcls": b.ignore_public_acls,
        "BlockPublicPolicy": b.block_public_policy,
        "RestrictPublicBuckets": b.restrict_public_buckets,
    })
}

fn block_of(v: &Value) -> Result<PublicAccessBlock, Reply> {
    let Some(o) = v.as_object() else {
        return Err(err(
            AdminError::MalformedJSON,
            "expected an object of four booleans",
        ));
    };
    let names = [
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    ];
    if let Some(k) = o.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(err(
            AdminError::InvalidArgument,
            format!("unknown setting {k}"),
        ));
    }
    let flag = |k: &str| -> Result<bool, Reply> {
        match o.get(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(err(
                AdminError::InvalidArgument,
                format!("{k} must be a boolean"),
            )),
        }
    };
    Ok(PublicAccessBlock {
        block_public_acls: flag("BlockPublicAcls")?,
        ignore_public_acls: flag("IgnorePublicAcls")?,
        block_public_policy: flag("BlockPublicPolicy")?,
        restrict_public_buckets: flag("RestrictPublicBuckets")?,
    })
}

impl AdminApi {
    pub(super) async fn run_account(
        &self,
        rc: &RequestCtx,
        action: Action,
        body: &Bytes,
    ) -> Result<Option<Reply>, Reply> {
        let new = match action {
            Action::AdminGetPublicAccessBlock => {
                let doc = self
                    .blocking(|s| s.account_setting(PUBLIC_ACCESS_BLOCK_DOC))
                    .await
                    .map_err(|e| store_err(e, rc))?;
                return match doc {
                    None => Err(err(
                        AdminError::NotFound,
                        "the account has no public access block",
                    )),
                    Some(d) => Ok(Some(Reply(
                        StatusCode::OK,
                        block_json(PublicAccessBlock::of(Some(&d))),
                    ))),
                };
            }
            Action::AdminPutPublicAccessBlock => Some(block_of(&super::json_body(body)?)?),
            Action::AdminDeletePublicAccessBlock => None,
            _ => return Ok(None),
        };
        let doc = new
            .map(|b| serde_json::to_vec(&b))
            .transpose()
            .map_err(|e| err(AdminError::InternalError, e.to_string()))?;
        let (store, iam) = (self.store.clone(), self.iam.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            iam.change_policies_from(
                &store,
                |s| crate::s3::account_block_changes(s, new.unwrap_or_default()),
                |s, docs| {
                    let bucket_docs: Vec<(&str, &str, Option<&[u8]>)> = docs
                        .iter()
                        .map(|(b, cedar)| {
                            (
                                b.as_str(),
                                BUCKET_POLICY_CEDAR,
                                cedar.as_deref().map(str::as_bytes),
                            )
                        })
                        .collect();
                    s.set_account_setting(PUBLIC_ACCESS_BLOCK_DOC, doc.as_deref(), &bucket_docs)
                },
            )
        })
        .await
        .map_err(|_| {
            err(
                AdminError::InternalError,
                "public access block change failed",
            )
        })?;
        match outcome {
            Ok(()) => Ok(Some(Reply(
                StatusCode::OK,
                block_json(new.unwrap_or_default()),
            ))),
            Err(IamError::Store(e)) => Err(store_err(e, rc)),
            Err(IamError::Policy(p)) => Err(err(AdminError::InternalError, p.to_string())),
        }
    }
}
