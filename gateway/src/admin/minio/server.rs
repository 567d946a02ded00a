//! MinIO admin commands about the server: `info`, `datausageinfo`, bucket quotas, and the
//! `config` key-values of the identity providers fsgate has (`identity_openid`,
//! `identity_ldap`).
//!
//! | command | action |
//! |---|---|
//! | `info`, `datausageinfo` | admin:ServerInfo |
//! | `set-bucket-quota?bucket=`, `get-bucket-quota?bucket=` | admin:SetBucketQuota, admin:GetBucketQuota (on the bucket) |
//! | `get-config-kv?key=`, `help-config-kv`, `set-config-kv`, `del-config-kv` | admin:ListIdentityProviders, admin:AddIdentityProvider, admin:RemoveIdentityProvider |
//! | `kms/key/create?key-id=`, `kms/key/status?key-id=` | admin:CreateKmsKey, admin:ListKmsKeys |

use std::collections::HashMap;

use http::StatusCode;
use serde_json::{Value, json};

use fsgate_policy::Action;
use fsgate_store::model::IdentityProvider;
use fsgate_store::now_ns;

use super::{Answer, Command, MinioError, Outcome, refuse, rfc3339};
use crate::admin::AdminApi;
use crate::context::RequestCtx;
use crate::s3::quota::{QUOTA_DOC, QuotaConfig};

/// The subsystems `get-config-kv` and `set-config-kv` take, and the fsgate provider each is.
const SUBSYSTEMS: &[(&str, &str, &str)] = &[
    ("identity_openid", "openid", "MINIO_IDENTITY_OPENID_"),
    ("identity_ldap", "ldap", "MINIO_IDENTITY_LDAP_"),
];

/// MinIO's key-value line of a provider (`identity_openid config_url=... client_id=...`); the
/// LDAP bind password is never shown.
fn config_line(p: &IdentityProvider) -> String {
    match p {
        IdentityProvider::Oidc(o) => format!(
            "identity_openid config_url={}/.well-known/openid-configuration client_id={} claim_name={} claim_username={}",
            o.issuer, o.client_id, o.groups_claim, o.user_claim
        ),
        IdentityProvider::Ldap(l) => {
            let on = |b: bool| if b { "on" } else { "off" };
            format!(
                "identity_ldap server_addr={} lookup_bind_dn=\"{}\" user_dn_search_base_dn=\"{}\" user_dn_search_filter=\"{}\" group_search_base_dn=\"{}\" group_search_filter=\"{}\" server_insecure={} server_starttls={} tls_skip_verify={}",
                l.server,
                l.bind_dn,
                l.user_base,
                l.user_filter,
                l.group_base,
                l.group_filter,
                on(l.tls == "none"),
                on(l.tls == "starttls"),
                on(l.tls_insecure)
            )
        }
    }
}

/// Splits `key=value key2="a value"` into pairs (values may be double-quoted).
pub(crate) fn key_values(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v, n),
                None => (q, ""),
            }
        } else {
            match after.split_once(char::is_whitespace) {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        out.push((k.trim().to_owned(), v.to_owned()));
        rest = next.trim_start();
    }
    out
}

impl AdminApi {
    /// The server commands; a refusal for any other.
    pub(super) async fn minio_server(
        &self,
        rc: &RequestCtx,
        action: Action,
        c: &Command,
    ) -> Outcome {
        match action {
            Action::AdminServerInfo if c.name == "datausageinfo" => self.minio_usage(rc).await,
            Action::AdminServerInfo => self.minio_info(rc).await,
            Action::AdminSetBucketQuota => {
                let bucket = c.param("bucket");
                let q: QuotaConfig = c.json()?;
                if !q.kind.is_empty() && q.kind != "hard" {
                    return Err(refuse(
                        MinioError::InvalidArgument,
                        format!("quota type {:?}: only hard quotas are enforced", q.kind),
                    ));
                }
                let limit = q.limit();
                let doc = (limit > 0).then(|| {
                    json!({"quota": limit, "size": limit, "quotatype": "hard"})
                        .to_string()
                        .into_bytes()
                });
                let b = bucket.clone();
                self.store_op_server(rc, move |s| {
                    s.set_bucket_config(&b, QUOTA_DOC, doc.as_deref())
                })
                .await?;
                self.quotas.set(&bucket, limit);
                Ok(Answer::Empty(StatusCode::OK))
            }
            Action::AdminGetBucketQuota => {
                let bucket = c.param("bucket");
                let doc = self
                    .store_op_server(rc, move |s| s.bucket_config(&bucket, QUOTA_DOC))
                    .await?
                    .ok_or_else(|| {
                        refuse(
                            MinioError::NoSuchQuota,
                            "The quota configuration does not exist",
                        )
                    })?;
                let v: Value = serde_json::from_slice(&doc).unwrap_or(Value::Null);
                Ok(Answer::Json(v))
            }
            Action::AdminListIdentityProviders => {
                if c.name == "help-config-kv" {
                    return Ok(Answer::Json(json!({
                        "subSys": c.param("subSys"),
                        "description": "fsgate configures identity_openid and identity_ldap; other subsystems are its own flags",
                        "multipleTargets": false,
                        "keysHelp": [],
                    })));
                }
                let key = c.param("key");
                let sub = key.split(':').next().unwrap_or("").to_owned();
                let providers = self.iam.snapshot_now().providers.clone();
                let lines: Vec<String> = providers
                    .iter()
                    .filter(|p| {
                        let line = config_line(p);
                        sub.is_empty() || line.starts_with(&format!("{sub} "))
                    })
                    .map(config_line)
                    .collect();
                if !sub.is_empty() && !SUBSYSTEMS.iter().any(|(s, _, _)| *s == sub) {
                    return Err(refuse(
                        MinioError::InvalidArgument,
                        format!(
                            "fsgate has no configuration subsystem {sub}: identity_openid and identity_ldap are configured here"
                        ),
                    ));
                }
                Ok(Answer::SealedText(lines.join("\n")))
            }
            Action::AdminAddIdentityProvider => self.minio_set_config(rc, c).await,
            Action::AdminRemoveIdentityProvider => {
                let text = String::from_utf8_lossy(&c.body).trim().to_owned();
                let sub = text.split([':', ' ']).next().unwrap_or("");
                let Some((_, name, _)) = SUBSYSTEMS.iter().find(|(s, _, _)| *s == sub) else {
                    return Err(refuse(
                        MinioError::InvalidArgument,
                        format!("fsgate has no configuration subsystem {sub}"),
                    ));
                };
                let n = (*name).to_owned();
                self.store_op_server(rc, move |s| match s.delete_identity_provider(&n) {
                    Err(fsgate_store::StoreError::NotFound(_)) => Ok(()),
                    other => other,
                })
                .await?;
                self.identities_changed(rc)
                    .await
                    .map_err(super::from_native)?;
                Ok(Answer::Empty(StatusCode::OK))
            }
            Action::AdminCreateKmsKey => {
                let name = c.param("key-id");
                let (ring, store) = (self.kms.clone(), self.store.clone());
                let created = tokio::task::spawn_blocking(move || ring.create(&store, &name))
                    .await
                    .map_err(|_| refuse(MinioError::Internal, "KMS change failed"))?;
                created.map_err(|e| refuse(MinioError::InvalidArgument, e.to_string()))?;
                Ok(Answer::Empty(StatusCode::OK))
            }
            Action::AdminListKmsKeys => {
                let name = Some(c.param("key-id"))
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| crate::s3::sse::kms::DEFAULT_KEY.to_owned());
                let key = self
                    .kms
                    .list()
                    .into_iter()
                    .find(|k| k.name == name)
                    .ok_or_else(|| {
                        refuse(
                            MinioError::NoSuchKmsKey,
                            format!("KMS key {name} not found"),
                        )
                    })?;
                let error = if key.enabled {
                    ""
                } else {
                    "the key is disabled"
                };
                Ok(Answer::Json(json!({
                    "key-id": key.name, "encryption-error": error, "decryption-error": error,
                })))
            }
            _ => Err(refuse(
                MinioError::NotImplemented,
                format!("fsgate does not implement {}", c.name),
            )),
        }
    }

    async fn store_op_server<T: Send + 'static>(
        &self,
        rc: &RequestCtx,
        f: impl FnOnce(&fsgate_store::Store) -> Result<T, fsgate_store::StoreError> + Send + 'static,
    ) -> Result<T, super::Refusal> {
        self.blocking(f)
            .await
            .map_err(|e| super::store_refusal(&e, rc))
    }

    /// `set-config-kv`: `identity_openid k=v ...` or `identity_ldap k=v ...` configures the
    /// provider `openid` or `ldap` as MinIO's environment variables of the same names do.
    async fn minio_set_config(&self, rc: &RequestCtx, c: &Command) -> Outcome {
        let text = String::from_utf8_lossy(&c.body).into_owned();
        let (head, rest) = text
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((text.trim(), ""));
        let sub = head.split(':').next().unwrap_or("");
        let Some((_, _, env_prefix)) = SUBSYSTEMS.iter().find(|(s, _, _)| *s == sub) else {
            return Err(refuse(
                MinioError::InvalidArgument,
                format!(
                    "fsgate has no configuration subsystem {sub}: identity_openid and identity_ldap are configured here, the rest by fsgate's flags"
                ),
            ));
        };
        let vars: HashMap<String, String> = key_values(rest)
            .into_iter()
            .map(|(k, v)| (format!("{env_prefix}{}", k.to_ascii_uppercase()), v))
            .collect();
        let providers =
            crate::identity::minio_providers::identity_providers(|k| vars.get(k).cloned());
        let Some(p) = providers.into_iter().next() else {
            return Err(refuse(
                MinioError::InvalidArgument,
                format!("{sub}: config_url (OpenID) or server_addr (LDAP) is required"),
            ));
        };
        if let IdentityProvider::Oidc(o) = &p
            && o.client_id.is_empty()
        {
            return Err(refuse(
                MinioError::InvalidArgument,
                "identity_openid: client_id is required",
            ));
        }
        self.store_op_server(rc, move |s| s.put_identity_provider(&p))
            .await?;
        self.identities_changed(rc)
            .await
            .map_err(super::from_native)?;
        Ok(Answer::Empty(StatusCode::OK))
    }

    async fn minio_info(&self, rc: &RequestCtx) -> Outcome {
        let (buckets, (objects, bytes)) = self
            .store_op_server(rc, |s| Ok((s.list_buckets()?.len(), s.usage()?)))
            .await?;
        let uptime = self.scrape.telemetry.uptime_seconds();
        Ok(Answer::Json(json!({
            "mode": "online",
            "region": "",
            "deploymentID": "",
            "buckets": {"count": buckets},
            "objects": {"count": objects},
            "usage": {"size": bytes},
            "backend": {"backendType": "FS", "onlineDisks": 1, "offlineDisks": 0},
            "servers": [{
                "state": "online",
                "endpoint": "fsgate",
                "uptime": uptime,
                "version": concat!("fsgate-", env!("CARGO_PKG_VERSION")),
                "drives": [{"state": "ok", "endpoint": "data"}],
            }],
        })))
    }

    async fn minio_usage(&self, rc: &RequestCtx) -> Outcome {
        let per_bucket = self
            .store_op_server(rc, |s| {
                let mut out = Vec::new();
                for (b, _) in s.list_buckets()? {
                    let (n, bytes) = s.bucket_usage(&b)?;
                    out.push((b, n, bytes));
                }
                Ok(out)
            })
            .await?;
        let objects: u64 = per_bucket.iter().map(|(_, n, _)| n).sum();
        let bytes: u64 = per_bucket.iter().map(|(_, _, b)| b).sum();
        let usage: serde_json::Map<String, Value> = per_bucket
            .iter()
            .map(|(b, n, size)| (b.clone(), json!({"size": size, "objectsCount": n})))
            .collect();
        Ok(Answer::Json(json!({
            "lastUpdate": rfc3339(now_ns()),
            "objectsCount": objects,
            "objectsTotalSize": bytes,
            "bucketsCount": per_bucket.len(),
            "bucketsUsageInfo": usage,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_take_quoted_and_bare_values() {
        assert_eq!(
            key_values(r#"server_addr=ldap:389 lookup_bind_dn="cn=admin,dc=x" tls_skip_verify=on"#),
            vec![
                ("server_addr".to_owned(), "ldap:389".to_owned()),
                ("lookup_bind_dn".to_owned(), "cn=admin,dc=x".to_owned()),
                ("tls_skip_verify".to_owned(), "on".to_owned()),
            ]
        );
    }
}
