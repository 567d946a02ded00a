//! Identity commands: users, access keys, groups, service accounts, identity providers.

use anyhow::Result;
use serde_json::json;

use crate::aliases::Alias;
use crate::cli::{GroupCmd, IdpAdd, IdpCmd, KeyCmd, KmsKeyCmd, SvcacctCmd, UserCmd, read_optional};
use crate::client::{call, enc};
use crate::output::{array, print_one, print_rows};

/// `fsctl user`: add, list, enable, disable, remove, revoke.
pub(crate) async fn user(c: &Alias, cmd: UserCmd, j: bool) -> Result<()> {
    match cmd {
        UserCmd::Add { name, key } => {
            let mut body = json!({ "name": name });
            key.add_to(&mut body);
            print_one(j, &call(c, "POST", "/admin/v1/users", Some(body)).await?);
        }
        UserCmd::Ls => print_rows(
            j,
            &array(call(c, "GET", "/admin/v1/users", None).await?),
            &["name", "enabled", "groups", "created"],
        ),
        UserCmd::Disable { name } => print_one(
            j,
            &call(
                c,
                "POST",
                &format!("/admin/v1/users/{}/disable", enc(&name)),
                None,
            )
            .await?,
        ),
        UserCmd::Enable { name } => print_one(
            j,
            &call(
                c,
                "POST",
                &format!("/admin/v1/users/{}/enable", enc(&name)),
                None,
            )
            .await?,
        ),
        UserCmd::Rm { name } => print_one(
            j,
            &call(
                c,
                "DELETE",
                &format!("/admin/v1/users/{}", enc(&name)),
                None,
            )
            .await?,
        ),
    }
    Ok(())
}

/// `fsctl key`: create, list, delete, revoke.
pub(crate) async fn key(c: &Alias, cmd: KeyCmd, j: bool) -> Result<()> {
    match cmd {
        KeyCmd::Create { user, key } => {
            let mut body = json!({});
            key.add_to(&mut body);
            let path = format!("/admin/v1/users/{}/keys", enc(&user));
            print_one(j, &call(c, "POST", &path, Some(body)).await?);
        }
        KeyCmd::Ls { user } => print_rows(
            j,
            &array(
                call(
                    c,
                    "GET",
                    &format!("/admin/v1/users/{}/keys", enc(&user)),
                    None,
                )
                .await?,
            ),
            &["access_key", "user", "created"],
        ),
        KeyCmd::Rm { key } => print_one(
            j,
            &call(c, "DELETE", &format!("/admin/v1/keys/{}", enc(&key)), None).await?,
        ),
        KeyCmd::Revoke {
            user,
            access_key,
            before,
        } => {
            let path = match (user, access_key) {
                (Some(u), _) => format!("/admin/v1/users/{}/revoke", enc(&u)),
                (None, Some(ak)) => format!("/admin/v1/keys/{}/revoke", enc(&ak)),
                (None, None) => anyhow::bail!("give --user or --access-key"),
            };
            let out = call(c, "POST", &path, Some(json!({"before": before}))).await?;
            if !j && let Some(until) = out.get("sigv2_presigned_refused_until") {
                eprintln!(
                    "note: SigV2 presigned URLs of what was revoked are refused until {} (they carry no signing time); SigV4 ones signed from now on work.",
                    until.as_str().unwrap_or_default()
                );
            }
            print_one(j, &out)
        }
    }
    Ok(())
}

/// `fsctl idp`: add, list, remove identity providers.
pub(crate) async fn idp(c: &Alias, cmd: IdpCmd, j: bool) -> Result<()> {
    match cmd {
        IdpCmd::Add(a) => {
            let (name, body) = match a {
                IdpAdd::Oidc {
                    name,
                    issuer,
                    client_id,
                    groups_claim,
                    user_claim,
                    tag_claims,
                } => (
                    name,
                    json!({"type": "oidc", "issuer": issuer, "client_id": client_id,
                           "groups_claim": groups_claim, "user_claim": user_claim,
                           "tag_claims": tag_claims}),
                ),
                IdpAdd::Ldap {
                    name,
                    server,
                    tls,
                    starttls,
                    tls_insecure,
                    bind_dn,
                    bind_password,
                    user_base,
                    user_filter,
                    group_base,
                    group_filter,
                    group_attribute,
                } => {
                    let mode = if tls {
                        "tls"
                    } else if starttls {
                        "starttls"
                    } else {
                        "none"
                    };
                    (
                        name,
                        json!({"type": "ldap", "server": server, "tls": mode,
                               "tls_insecure": tls_insecure, "bind_dn": bind_dn,
                               "bind_password": bind_password, "user_base": user_base,
                               "user_filter": user_filter, "group_base": group_base,
                               "group_filter": group_filter, "group_attribute": group_attribute}),
                    )
                }
            };
            print_one(
                j,
                &call(
                    c,
                    "PUT",
                    &format!("/admin/v1/idps/{}", enc(&name)),
                    Some(body),
                )
                .await?,
            );
        }
        IdpCmd::Ls => print_rows(
            j,
            &array(call(c, "GET", "/admin/v1/idps", None).await?),
            &["name", "type", "issuer", "client_id", "server", "user_base"],
        ),
        IdpCmd::Rm { name } => print_one(
            j,
            &call(c, "DELETE", &format!("/admin/v1/idps/{}", enc(&name)), None).await?,
        ),
    }
    Ok(())
}

/// `fsctl svcacct`: service accounts.
pub(crate) async fn svcacct(c: &Alias, cmd: SvcacctCmd, j: bool) -> Result<()> {
    match cmd {
        SvcacctCmd::Add {
            user,
            policy,
            description,
            key,
        } => {
            let policy = read_optional(policy.as_deref())?;
            let mut body = json!({"policy": policy, "description": description});
            key.add_to(&mut body);
            if let (Some(u), Some(o)) = (user, body.as_object_mut()) {
                o.insert("user".into(), json!(u));
            }
            print_one(j, &call(c, "POST", "/admin/v1/svcaccts", Some(body)).await?);
        }
        SvcacctCmd::Ls { user } => {
            let path = match user {
                Some(u) => format!("/admin/v1/svcaccts?user={}", enc(&u)),
                None => "/admin/v1/svcaccts".into(),
            };
            print_rows(
                j,
                &array(call(c, "GET", &path, None).await?),
                &["access_key", "owner", "description", "created"],
            );
        }
        SvcacctCmd::Rm { key } => print_one(
            j,
            &call(
                c,
                "DELETE",
                &format!("/admin/v1/svcaccts/{}", enc(&key)),
                None,
            )
            .await?,
        ),
    }
    Ok(())
}

/// `fsctl group`: membership.
pub(crate) async fn group(c: &Alias, cmd: GroupCmd, j: bool) -> Result<()> {
    match cmd {
        GroupCmd::AddMember { group, user } => print_one(
            j,
            &call(
                c,
                "PUT",
                &format!("/admin/v1/groups/{}/members/{}", enc(&group), enc(&user)),
                None,
            )
            .await?,
        ),
        GroupCmd::RmMember { group, user } => print_one(
            j,
            &call(
                c,
                "DELETE",
                &format!("/admin/v1/groups/{}/members/{}", enc(&group), enc(&user)),
                None,
            )
            .await?,
        ),
    }
    Ok(())
}

/// `fsctl kms key ...`: the key ring.
pub(crate) async fn kms_key(c: &Alias, cmd: KmsKeyCmd, j: bool) -> Result<()> {
    let change = |name: &str, what: &str| format!("/admin/v1/kms/keys/{}/{what}", enc(name));
    let one = match cmd {
        KmsKeyCmd::Ls => {
            print_rows(
                j,
                &array(call(c, "GET", "/admin/v1/kms/keys", None).await?),
                &["name", "enabled", "version", "created", "source"],
            );
            return Ok(());
        }
        KmsKeyCmd::Create { name } => {
            call(
                c,
                "POST",
                "/admin/v1/kms/keys",
                Some(json!({ "name": name })),
            )
            .await?
        }
        KmsKeyCmd::Disable { name } => call(c, "POST", &change(&name, "disable"), None).await?,
        KmsKeyCmd::Enable { name } => call(c, "POST", &change(&name, "enable"), None).await?,
        KmsKeyCmd::Rotate { name } => call(c, "POST", &change(&name, "rotate"), None).await?,
    };
    print_one(j, &one);
    Ok(())
}
