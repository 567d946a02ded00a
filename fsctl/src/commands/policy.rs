//! `fsctl policy`: attachments, and `test`, `who-can`, `validate`.

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};

use crate::aliases::Alias;
use crate::cli::PolicyCmd;
use crate::client::{call, enc};
use crate::output::{array, print_one, print_rows};

/// `fsctl policy`.
pub(crate) async fn policy(c: &Alias, cmd: PolicyCmd, j: bool) -> Result<()> {
    match cmd {
        PolicyCmd::Attach(spec) => print_one(
            j,
            &call(c, "POST", "/admin/v1/policies", Some(spec.body()?)).await?,
        ),
        PolicyCmd::Replace { id, spec } => print_one(
            j,
            &call(
                c,
                "PUT",
                &format!("/admin/v1/policies/{}", enc(&id)),
                Some(spec.body()?),
            )
            .await?,
        ),
        PolicyCmd::Ls { cedar } => {
            let cols: &[&str] = if cedar {
                &["id", "user", "group", "cedar_in_force"]
            } else {
                &["id", "user", "group", "role", "bucket", "prefix", "cedar"]
            };
            print_rows(
                j,
                &array(call(c, "GET", "/admin/v1/policies", None).await?),
                cols,
            );
        }
        PolicyCmd::Create { name, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            print_one(
                j,
                &call(
                    c,
                    "PUT",
                    &format!("/admin/v1/named-policies/{}", enc(&name)),
                    Some(serde_json::json!({"policy": text})),
                )
                .await?,
            );
        }
        PolicyCmd::Named => print_rows(
            j,
            &array(call(c, "GET", "/admin/v1/named-policies", None).await?),
            &["name", "updated", "cedar_in_force"],
        ),
        PolicyCmd::Rm { name } => print_one(
            j,
            &call(
                c,
                "DELETE",
                &format!("/admin/v1/named-policies/{}", enc(&name)),
                None,
            )
            .await?,
        ),
        PolicyCmd::Detach { id } => print_one(
            j,
            &call(
                c,
                "DELETE",
                &format!("/admin/v1/policies/{}", enc(&id)),
                None,
            )
            .await?,
        ),
        PolicyCmd::Validate { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            print_one(
                j,
                &call(
                    c,
                    "POST",
                    "/admin/v1/policy/validate",
                    Some(json!({"cedar": text})),
                )
                .await?,
            );
        }
        PolicyCmd::Test {
            principal,
            action,
            resource,
            context,
        } => {
            let mut ctx = serde_json::Map::new();
            for kv in context {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--context takes KEY=VALUE, not {kv}"))?;
                let v = if k == "secure" {
                    json!(v == "true")
                } else {
                    json!(v)
                };
                ctx.insert(k.to_owned(), v);
            }
            let body = json!({"principal": principal, "action": action, "resource": resource, "context": ctx});
            let r = call(c, "POST", "/admin/v1/policy/test", Some(body)).await?;
            if j {
                println!("{r}");
            } else {
                let list = |k: &str| {
                    r.get(k)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default()
                };
                println!(
                    "{}: {} {} {}",
                    r.get("decision")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_uppercase(),
                    principal,
                    action,
                    resource
                );
                println!("  deciding policies: {}", list("policies"));
                let errors = list("errors");
                if !errors.is_empty() {
                    println!("  errors: {errors}");
                }
            }
        }
        PolicyCmd::WhoCan { action, resource } => {
            let r = call(
                c,
                "POST",
                "/admin/v1/policy/who-can",
                Some(json!({"action": action, "resource": resource})),
            )
            .await?;
            if j {
                println!("{r}");
            } else {
                let mut rows =
                    vec![json!({"principal": "root", "kind": "root", "policies": ["root-all"]})];
                for u in r
                    .get("users")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    rows.push(json!({"principal": u.get("user"), "kind": "user", "policies": u.get("policies")}));
                }
                for g in r
                    .get("groups")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    rows.push(json!({"principal": g.get("group"), "kind": "group", "policies": g.get("policies")}));
                }
                if let Some(a) = r.get("anonymous").filter(|a| !a.is_null()) {
                    rows.push(json!({"principal": "anonymous", "kind": "anyone", "policies": a.get("policies")}));
                }
                print_rows(false, &rows, &["principal", "kind", "policies"]);
            }
        }
    }
    Ok(())
}
