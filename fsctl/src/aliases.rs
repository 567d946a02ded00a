//! Aliases: named servers with their credentials, saved in `~/.config/fsctl/aliases.json`
//! (mode 0600), and the `alias` command.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cli::AliasCmd;
use crate::output::{print_one, print_rows};

#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct Alias {
    pub(crate) url: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    /// Extra CA certificates for https (from `--ca-bundle`, not saved).
    #[serde(skip)]
    pub(crate) ca_bundle: Option<PathBuf>,
}

pub(crate) fn config_path() -> PathBuf {
    if let Ok(dir) = std::env::var("FSCTL_CONFIG_DIR") {
        return PathBuf::from(dir).join("aliases.json");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home)
        .join(".config")
        .join("fsctl")
        .join("aliases.json")
}

pub(crate) fn load_aliases() -> Result<BTreeMap<String, Alias>> {
    match std::fs::read_to_string(config_path()) {
        Ok(t) => Ok(serde_json::from_str(&t).context("reading aliases")?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn save_aliases(a: &BTreeMap<String, Alias>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = config_path();
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(serde_json::to_string_pretty(a)?.as_bytes())?;
    Ok(())
}

/// `fsctl alias set|ls|rm`.
pub(crate) fn command(a: &AliasCmd, j: bool) -> Result<()> {
    let mut all = load_aliases()?;
    match a {
        AliasCmd::Set {
            name,
            url,
            key,
            secret,
        } => {
            all.insert(
                name.clone(),
                Alias {
                    url: url.clone(),
                    access_key: key.clone(),
                    secret_key: secret.clone(),
                    ca_bundle: None,
                },
            );
            save_aliases(&all)?;
            print_one(j, &json!({"alias": name, "url": url}));
        }
        AliasCmd::Ls => {
            let rows: Vec<Value> = all
                .iter()
                .map(|(n, a)| json!({"alias": n, "url": a.url, "access_key": a.access_key}))
                .collect();
            print_rows(j, &rows, &["alias", "url", "access_key"]);
        }
        AliasCmd::Rm { name } => {
            all.remove(name)
                .ok_or_else(|| anyhow!("no alias '{name}'"))?;
            save_aliases(&all)?;
        }
    }
    Ok(())
}
