//! `fsctl import iam --from-zip FILE`: reads the zip `mc admin cluster iam export` writes
//! (`iam-assets/policies.json`, `users.json`, `groups.json`, `svcaccts.json`,
//! `user_mappings.json`, `group_mappings.json`, and the STS mappings) and creates what it
//! describes through the admin API: canned policies as named policies (translated to Cedar by
//! the server; one it refuses is listed with the reason, never dropped silently), users and
//! service accounts with their keys, groups with their members and status, and each user's and
//! group's policies. Entities that exist already are left as they are and reported as skipped,
//! so a second run changes nothing.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::aliases::Alias;
use crate::client::{call, enc};

/// What `fsctl import iam` was asked.
#[derive(clap::Args)]
pub(crate) struct ImportIamArgs {
    /// The zip `mc admin cluster iam export` wrote.
    #[arg(long)]
    from_zip: PathBuf,
}

/// MinIO's built-in policy names and the fsgate role each is.
const BUILT_IN: &[(&str, &str)] = &[
    ("readonly", "readonly"),
    ("readwrite", "readwrite"),
    ("writeonly", "writeonly"),
    ("diagnostics", "diagnostics"),
    ("consoleAdmin", "admin"),
];

#[derive(Deserialize)]
struct User {
    #[serde(rename = "secretKey", default)]
    secret_key: String,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
struct Group {
    #[serde(default)]
    members: Option<Vec<String>>,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceAccount {
    #[serde(default)]
    parent: String,
    #[serde(default)]
    secret_key: String,
    #[serde(default)]
    session_policy: Option<Value>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    expiration: Option<String>,
}

#[derive(Deserialize)]
struct Mapping {
    #[serde(default)]
    policy: String,
}

/// What happened to each kind of entity.
#[derive(Default)]
struct Outcome {
    created: Vec<String>,
    skipped: Vec<String>,
    refused: Vec<Value>,
}

impl Outcome {
    fn json(&self) -> Value {
        json!({"created": self.created, "skipped": self.skipped, "refused": self.refused})
    }

    fn refuse(&mut self, name: &str, reason: impl std::fmt::Display) {
        self.refused
            .push(json!({"name": name, "reason": reason.to_string()}));
    }

    /// Files the result of a create call: created, skipped (it exists), or refused.
    fn record(&mut self, name: &str, r: Result<Value>) {
        match r {
            Ok(_) => self.created.push(name.to_owned()),
            Err(e) if e.to_string().starts_with("409") => self.skipped.push(name.to_owned()),
            Err(e) => self.refuse(name, format!("{e:#}")),
        }
    }
}

/// One file of the export, parsed, or `None` when the zip does not have it.
fn part<T: for<'de> Deserialize<'de>>(
    zip: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
) -> Result<Option<BTreeMap<String, T>>> {
    let path = format!("iam-assets/{name}");
    let mut f = match zip.by_name(&path) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(anyhow!("{path}: {e}")),
    };
    // The export is small; a hostile one is bounded.
    let mut text = String::new();
    (&mut f)
        .take(64 << 20)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {path}"))?;
    if text.trim().is_empty() || text.trim() == "null" {
        return Ok(Some(BTreeMap::new()));
    }
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{path} is not the JSON MinIO's export writes"))
}

/// Runs `fsctl import iam`.
pub(crate) async fn import_iam(c: &Alias, a: ImportIamArgs, json_out: bool) -> Result<()> {
    let file = std::fs::File::open(&a.from_zip)
        .with_context(|| format!("opening {}", a.from_zip.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a zip", a.from_zip.display()))?;
    let policies: BTreeMap<String, Value> = part(&mut zip, "policies.json")?.unwrap_or_default();
    let users: BTreeMap<String, User> = part(&mut zip, "users.json")?.unwrap_or_default();
    let groups: BTreeMap<String, Group> = part(&mut zip, "groups.json")?.unwrap_or_default();
    let svcaccts: BTreeMap<String, ServiceAccount> =
        part(&mut zip, "svcaccts.json")?.unwrap_or_default();
    let user_maps: BTreeMap<String, Mapping> =
        part(&mut zip, "user_mappings.json")?.unwrap_or_default();
    let group_maps: BTreeMap<String, Mapping> =
        part(&mut zip, "group_mappings.json")?.unwrap_or_default();
    let mut sts_maps: BTreeMap<String, Mapping> =
        part(&mut zip, "stsuser_mappings.json")?.unwrap_or_default();
    sts_maps.extend(part::<Mapping>(&mut zip, "stsgroup_mappings.json")?.unwrap_or_default());

    // Policies first: mappings refer to them.
    let mut pol = Outcome::default();
    let existing: Vec<String> = call(c, "GET", "/admin/v1/named-policies", None)
        .await?
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for (name, doc) in &policies {
        if BUILT_IN.iter().any(|(n, _)| n == name) {
            pol.skipped.push(name.clone());
            continue;
        }
        if existing.contains(name) {
            pol.skipped.push(name.clone());
            continue;
        }
        let text = match doc {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let r = call(
            c,
            "PUT",
            &format!("/admin/v1/named-policies/{}", enc(name)),
            Some(json!({"policy": text})),
        )
        .await;
        pol.record(name, r);
    }

    let mut usr = Outcome::default();
    for (ak, u) in &users {
        let r = call(
            c,
            "POST",
            "/admin/v1/users",
            Some(json!({"name": ak, "access_key": ak, "secret_key": u.secret_key})),
        )
        .await;
        let created = r.is_ok();
        usr.record(ak, r);
        if created && u.status == "disabled" {
            let path = format!("/admin/v1/users/{}/disable", enc(ak));
            if let Err(e) = call(c, "POST", &path, None).await {
                usr.refuse(ak, format!("created, but not disabled: {e:#}"));
            }
        }
    }

    let mut grp = Outcome::default();
    for (g, info) in &groups {
        let mut failed = None;
        for m in info.members.iter().flatten() {
            let path = format!("/admin/v1/groups/{}/members/{}", enc(g), enc(m));
            if let Err(e) = call(c, "PUT", &path, None).await {
                failed = Some(format!("member {m}: {e:#}"));
            }
        }
        let status = if info.status == "disabled" {
            "disable"
        } else {
            "enable"
        };
        let path = format!("/admin/v1/groups/{}/{status}", enc(g));
        if let Err(e) = call(c, "POST", &path, None).await {
            failed.get_or_insert(format!("{e:#}"));
        }
        match failed {
            Some(reason) => grp.refuse(g, reason),
            None => grp.created.push(g.clone()),
        }
    }

    // Policy mappings: a built-in name is its role, any other a named policy.
    let mut maps = Outcome::default();
    let current = call(c, "GET", "/admin/v1/policies", None).await?;
    let held = |kind: &str, who: &str, name: &str| {
        current.as_array().is_some_and(|atts| {
            atts.iter().any(|a| {
                a.get(kind).and_then(Value::as_str) == Some(who)
                    && (a.get("policy_name").and_then(Value::as_str) == Some(name)
                        || (a.get("role").and_then(Value::as_str)
                            == BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
                            && a.get("bucket").is_none_or(Value::is_null)))
            })
        })
    };
    for (kind, table) in [("user", &user_maps), ("group", &group_maps)] {
        for (who, m) in table {
            for name in m.policy.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let label = format!("{kind} {who}: {name}");
                if held(kind, who, name) {
                    maps.skipped.push(label);
                    continue;
                }
                let body = match BUILT_IN.iter().find(|(n, _)| *n == name) {
                    Some((_, role)) => json!({kind: who, "role": role}),
                    None => json!({kind: who, "policy_name": name}),
                };
                let r = call(c, "POST", "/admin/v1/policies", Some(body)).await;
                maps.record(&label, r);
            }
        }
    }
    for (who, m) in &sts_maps {
        maps.refuse(
            &format!("sts {who}: {}", m.policy),
            "a mapping of an LDAP or OpenID identity: attach it to the federated user or group (PROVIDER:NAME) with `fsctl policy attach`",
        );
    }

    let mut svc = Outcome::default();
    for (ak, sa) in &svcaccts {
        if sa.parent.is_empty() || sa.parent.contains('=') {
            svc.refuse(
                ak,
                format!("its owner {:?} is not a local user (root or a directory identity): create a user for it", sa.parent),
            );
            continue;
        }
        let policy = match &sa.session_policy {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => Some(v.to_string()),
        };
        let expiration = sa
            .expiration
            .clone()
            // MinIO writes the zero time for "never".
            .filter(|e| !e.starts_with("0001-01-01") && !e.starts_with("1970-01-01"));
        let body = json!({
            "user": sa.parent, "access_key": ak, "secret_key": sa.secret_key,
            "policy": policy, "description": sa.description, "name": sa.name,
            "disabled": sa.status == "off", "expiration": expiration,
        });
        let r = call(c, "POST", "/admin/v1/svcaccts", Some(body)).await;
        svc.record(ak, r);
    }

    let refused = pol.refused.len()
        + usr.refused.len()
        + grp.refused.len()
        + maps.refused.len()
        + svc.refused.len();
    let report = json!({
        "from": a.from_zip.display().to_string(),
        "policies": pol.json(),
        "users": usr.json(),
        "groups": grp.json(),
        "mappings": maps.json(),
        "service_accounts": svc.json(),
        "refused": refused,
    });
    if json_out {
        println!("{report}");
    } else {
        for (what, o) in [
            ("policies", &pol),
            ("users", &usr),
            ("groups", &grp),
            ("policy mappings", &maps),
            ("service accounts", &svc),
        ] {
            println!(
                "{what}: {} created, {} already there, {} refused",
                o.created.len(),
                o.skipped.len(),
                o.refused.len()
            );
            for r in &o.refused {
                println!(
                    "  refused {}: {}",
                    r.get("name").and_then(Value::as_str).unwrap_or(""),
                    r.get("reason").and_then(Value::as_str).unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
