//! `fsctl share`: make, list and revoke share links.

use anyhow::{Result, bail};
use base64::Engine as _;
use rand::RngCore as _;
use serde_json::{Value, json};

use crate::aliases::Alias;
use crate::cli::ShareCmd;
use crate::client::{call, enc};
use crate::output::{array, print_one, print_rows};

/// A generated password: 16 random bytes, URL-safe base64 (22 characters).
fn generated_password() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// `fsctl share ...`.
pub(crate) async fn share(c: &Alias, cmd: ShareCmd, j: bool) -> Result<()> {
    match cmd {
        ShareCmd::Create {
            target,
            ttl,
            max_downloads,
            password,
            upload_only,
            max_size,
            label,
        } => {
            let Some((bucket, key)) = target
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            else {
                bail!("the target is BUCKET/KEY, or BUCKET/PREFIX/ for a folder");
            };
            let generated = password.as_deref() == Some("");
            let password = if generated {
                Some(generated_password())
            } else {
                password
            };
            let body = json!({
                "bucket": bucket,
                "key": key,
                "ttl_seconds": ttl.map(|t| t.as_secs().max(1)),
                "max_uses": max_downloads,
                "password": password,
                "upload_only": upload_only,
                "max_size": max_size,
                "label": label.unwrap_or_default(),
            });
            let v = call(c, "POST", "/admin/v1/shares", Some(body)).await?;
            let field = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
            let mut out =
                json!({"id": field("id"), "url": field("url"), "expires": field("expires")});
            if generated && let Some(o) = out.as_object_mut() {
                o.insert("password".to_owned(), Value::from(password));
            }
            print_one(j, &out);
        }
        ShareCmd::Ls { user } => {
            let path = match user {
                Some(u) => format!("/admin/v1/shares?user={}", enc(&u)),
                None => "/admin/v1/shares".to_owned(),
            };
            let v = call(c, "GET", &path, None).await?;
            let rows = array(v.get("shares").cloned().unwrap_or_default());
            print_rows(
                j,
                &rows,
                &[
                    "id", "bucket", "key", "creator", "expires", "uses", "max_uses", "state",
                    "label",
                ],
            );
        }
        ShareCmd::Revoke { id, object, user } => {
            let v = match (id, object, user) {
                (Some(id), _, _) => {
                    call(c, "DELETE", &format!("/admin/v1/shares/{}", enc(&id)), None).await?
                }
                (None, Some(o), _) => {
                    call(
                        c,
                        "POST",
                        "/admin/v1/shares/revoke",
                        Some(json!({"object": o})),
                    )
                    .await?
                }
                (None, None, Some(u)) => {
                    call(
                        c,
                        "POST",
                        "/admin/v1/shares/revoke",
                        Some(json!({"user": u})),
                    )
                    .await?
                }
                _ => bail!("name a link id, --object or --user"),
            };
            print_one(j, &v);
            if v.get("denied")
                .and_then(Value::as_array)
                .is_some_and(|d| !d.is_empty())
            {
                bail!("some links could not be revoked: not allowed (see \"denied\")");
            }
        }
    }
    Ok(())
}
