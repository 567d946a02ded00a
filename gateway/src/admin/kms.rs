//! Admin routes for the KMS key ring (`fsctl kms key ...`).
//!
//! | method | path | action |
//! |---|---|---|
//! | GET | /admin/v1/kms/keys | admin:ListKmsKeys |
//! | POST | /admin/v1/kms/keys `{"name"}` | admin:CreateKmsKey |
//! | POST | /admin/v1/kms/keys/{name}/enable, /disable, /rotate | admin:UpdateKmsKey |

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use fsgate_policy::Action;
use fsgate_store::StoreError;

use super::{AdminApi, AdminError, Reply, err, ns_to_rfc3339, seg, store_err};
use crate::context::RequestCtx;
use crate::s3::{KeyInfo, KmsError};

fn key_json(k: &KeyInfo) -> Value {
    json!({
        "name": k.name, "enabled": k.enabled, "version": k.version,
        "created": if k.from_env { String::new() } else { ns_to_rfc3339(k.created_ns) },
        "source": if k.from_env { "environment" } else { "store" },
        "sealed_by": if k.external { "vault" } else { "master key" },
        "unavailable": k.unavailable,
    })
}

fn kms_err(e: KmsError, rc: &RequestCtx) -> Reply {
    match e {
        KmsError::Store(s @ (StoreError::AlreadyExists(_) | StoreError::NotFound(_))) => {
            store_err(s, rc)
        }
        KmsError::NotFound(name) => err(AdminError::NotFound, format!("KMS key {name} not found")),
        e @ (KmsError::BadName(_) | KmsError::Static(_)) => {
            err(AdminError::InvalidArgument, e.to_string())
        }
        e @ (KmsError::Vault(_) | KmsError::Unavailable(..)) => {
            err(AdminError::ExternalKms, e.to_string())
        }
        other => {
            tracing::error!(request_id = %rc.request_id, error = %other, "KMS key ring");
            err(AdminError::InternalError, "internal error")
        }
    }
}

impl AdminApi {
    pub(super) async fn run_kms(
        &self,
        rc: &RequestCtx,
        action: Action,
        segs: &[&str],
        body: &Bytes,
    ) -> Result<Option<Reply>, Reply> {
        let ring = self.kms.clone();
        let store = self.store.clone();
        let changed = match action {
            Action::AdminListKmsKeys => {
                let keys: Vec<Value> = ring.list().iter().map(key_json).collect();
                return Ok(Some(Reply(StatusCode::OK, Value::Array(keys))));
            }
            Action::AdminCreateKmsKey => {
                let v = super::json_body(body)?;
                let name = v
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(AdminError::InvalidArgument, "name: the key id"))?
                    .to_owned();
                tokio::task::spawn_blocking(move || ring.create(&store, &name)).await
            }
            Action::AdminUpdateKmsKey => {
                let (name, what) = (seg(segs, 2), seg(segs, 3));
                tokio::task::spawn_blocking(move || match what.as_str() {
                    "rotate" => ring.rotate(&store, &name),
                    w => ring.set_enabled(&store, &name, w == "enable"),
                })
                .await
            }
            _ => return Ok(None),
        };
        let key = changed
            .map_err(|_| err(AdminError::InternalError, "KMS change failed"))?
            .map_err(|e| kms_err(e, rc))?;
        let status = if action == Action::AdminCreateKmsKey {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(Some(Reply(status, key_json(&key))))
    }
}
