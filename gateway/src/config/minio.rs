//! MinIO's command line and settings, so that replacing the `minio` binary keeps a deployment's
//! scripts: `fsgate server DIR [--address :9000] [--console-address ..]` is `fsgate serve`,
//! `MINIO_VOLUMES` and `MINIO_DOMAIN` fill in `--data` and `--domain` when fsgate's own are
//! not given (and `MINIO_REGION` / `MINIO_SITE_REGION` fill in `--region`), and
//! `MINIO_IDENTITY_OPENID_*` / `MINIO_IDENTITY_LDAP_*` configure identity providers at start
//! (read by `identity::minio_providers`). (Root credentials, including the legacy `MINIO_ACCESS_KEY` pair, are
//! read in `config.rs`; `MINIO_KMS_SECRET_KEY` by the key ring.)

use std::ffi::OsString;

/// Why MinIO's settings cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MinioSettingsError {
    /// fsgate serves one data directory.
    #[error(
        "{0}: fsgate keeps its data in one directory and cannot spread it over several drives or \
         nodes ({1}); give one path (on a RAID, ZFS or LVM volume for more capacity or \
         redundancy), or run fsgate as stateless gateways over PostgreSQL and an S3 blob store"
    )]
    Volumes(&'static str, String),
    /// `fsgate server` without a directory.
    #[error("fsgate server needs a data directory (or MINIO_VOLUMES)")]
    NoVolume,
    /// A flag without its value.
    #[error("{0} needs a value")]
    MissingValue(String),
}

/// The one local directory MinIO's volume argument (`what`) names, or why it names none.
fn single_volume<'a>(what: &'static str, v: &'a str) -> Result<&'a str, MinioSettingsError> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let why = match parts.as_slice() {
        [one] if one.contains("...") || one.contains('{') => {
            format!("{one} is an ellipsis expansion")
        }
        [one] if one.starts_with("http://") || one.starts_with("https://") => {
            format!("{one} names a node")
        }
        [one] => return Ok(one),
        many => format!("{} volumes given", many.len()),
    };
    Err(MinioSettingsError::Volumes(what, why))
}

/// MinIO's `:PORT` address (every interface) as a socket address.
fn address(a: &str) -> String {
    match a.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => a.to_owned(),
    }
}

/// The command line fsgate runs for `args` (program name first): MinIO's `server` form is
/// rewritten to `serve`, and MinIO's settings fill in what fsgate's own leave out.
pub fn command_line(
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<OsString>, MinioSettingsError> {
    let is = |i: usize, s: &str| args.get(i).is_some_and(|a| a == s);
    let has = |flag: &str, rest: &[OsString]| {
        rest.iter().any(|a| {
            a.to_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        })
    };
    let minio_server = is(1, "server");
    if !minio_server && !is(1, "serve") {
        return Ok(args);
    }
    let mut out: Vec<OsString> = args.iter().take(1).cloned().collect();
    out.push("serve".into());
    let mut rest: Vec<OsString> = Vec::new();
    let mut volumes: Vec<String> = Vec::new();
    let mut it = args.into_iter().skip(2);
    while let Some(a) = it.next() {
        let text = a.to_str().map(str::to_owned);
        match text.as_deref() {
            Some("--address") if minio_server => {
                let v = it
                    .next()
                    .ok_or_else(|| MinioSettingsError::MissingValue("--address".into()))?;
                rest.push("--address".into());
                rest.push(address(&v.to_string_lossy()).into());
            }
            // MinIO's console is gone; fsgate has no console port to give it.
            Some("--console-address") if minio_server => {
                it.next();
            }
            Some("-S") if minio_server => rest.push("--certs-dir".into()),
            Some(t) if minio_server && !t.starts_with('-') && !rest_expects_value(&rest) => {
                volumes.push(t.to_owned());
            }
            _ => rest.push(a),
        }
    }
    if minio_server {
        let v = if volumes.is_empty() {
            env("MINIO_VOLUMES").ok_or(MinioSettingsError::NoVolume)?
        } else {
            volumes.join(" ")
        };
        let dir = single_volume("volumes", &v)?;
        out.push("--data".into());
        out.push(dir.into());
        if !has("--address", &rest) && env("FSGATE_ADDRESS").is_none() {
            // MinIO listens on every interface by default; so does its replacement.
            out.push("--address".into());
            out.push("0.0.0.0:9000".into());
        }
    } else if !has("--data", &rest)
        && env("FSGATE_DATA").is_none()
        && let Some(v) = env("MINIO_VOLUMES")
    {
        let dir = single_volume("MINIO_VOLUMES", &v)?;
        out.push("--data".into());
        out.push(dir.into());
    }
    if !has("--domain", &rest)
        && env("FSGATE_DOMAIN").is_none()
        && let Some(d) = env("MINIO_DOMAIN")
    {
        // MinIO takes a comma-separated list; fsgate serves one domain.
        out.push("--domain".into());
        out.push(d.split(',').next().unwrap_or_default().trim().into());
    }
    if !has("--region", &rest)
        && env("FSGATE_REGION").is_none()
        && let Some(r) = env("MINIO_REGION").or_else(|| env("MINIO_SITE_REGION"))
    {
        out.push("--region".into());
        out.push(r.into());
    }
    out.extend(rest);
    Ok(out)
}

/// Whether the last argument collected is a flag still waiting for its value (so the next
/// word is that value, not a volume).
fn rest_expects_value(rest: &[OsString]) -> bool {
    rest.last()
        .and_then(|a| a.to_str())
        .is_some_and(|a| a.starts_with("--") && !a.contains('='))
        && !rest
            .last()
            .and_then(|a| a.to_str())
            .is_some_and(|a| SWITCHES.contains(&a))
}

/// `serve` flags that take no value.
const SWITCHES: &[&str] = &["--help", "-h"];

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str], env: &[(&str, &str)]) -> Result<Vec<String>, MinioSettingsError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        command_line(args.iter().map(OsString::from).collect(), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .map(|v| {
            v.into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn minio_command_lines_become_serve() {
        assert_eq!(
            line(
                &[
                    "fsgate",
                    "server",
                    "/data",
                    "--address",
                    ":9000",
                    "--console-address",
                    ":9001"
                ],
                &[]
            )
            .unwrap(),
            [
                "fsgate",
                "serve",
                "--data",
                "/data",
                "--address",
                "0.0.0.0:9000"
            ]
        );
        assert_eq!(
            line(
                &["fsgate", "server", "--address", "127.0.0.1:7000"],
                &[("MINIO_VOLUMES", "/srv/minio")]
            )
            .unwrap(),
            [
                "fsgate",
                "serve",
                "--data",
                "/srv/minio",
                "--address",
                "127.0.0.1:7000"
            ]
        );
        assert_eq!(
            line(
                &["fsgate", "server", "/data"],
                &[("MINIO_DOMAIN", "s3.example.com,s3.other")]
            )
            .unwrap(),
            [
                "fsgate",
                "serve",
                "--data",
                "/data",
                "--address",
                "0.0.0.0:9000",
                "--domain",
                "s3.example.com"
            ]
        );
        // fsgate's own settings win.
        assert_eq!(
            line(
                &["fsgate", "serve", "--data", "/mine"],
                &[("MINIO_VOLUMES", "/theirs")]
            )
            .unwrap(),
            ["fsgate", "serve", "--data", "/mine"]
        );
        assert_eq!(
            line(&["fsgate", "serve"], &[("MINIO_VOLUMES", "/theirs")]).unwrap(),
            ["fsgate", "serve", "--data", "/theirs"]
        );
        assert_eq!(
            line(&["fsgate", "check-policies", "d"], &[]).unwrap(),
            ["fsgate", "check-policies", "d"]
        );
        for bad in ["/data{1...4}", "/a /b", "http://node{1...4}/data"] {
            assert!(
                matches!(
                    line(&["fsgate", "server"], &[("MINIO_VOLUMES", bad)]),
                    Err(MinioSettingsError::Volumes(..))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            line(&["fsgate", "server"], &[]),
            Err(MinioSettingsError::NoVolume)
        );
    }
}
