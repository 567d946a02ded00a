//! Server configuration and the root credentials.

pub mod minio;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::identity::iam::RootCredentials;

/// What `fsgate serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub address: SocketAddr,
    /// Data directory.
    pub data: PathBuf,
    /// Policy directory (`None`: the built-in copy of `policies/`).
    pub policies: Option<PathBuf>,
    /// Base domain for virtual-hosted-style requests.
    pub domain: Option<String>,
    /// Root credentials given by the environment, if any.
    pub root_from_env: Option<RootCredentials>,
    /// How long SIGTERM/SIGINT waits for in-flight requests.
    pub shutdown_timeout: std::time::Duration,
    /// Time between lifecycle passes (zero: no worker).
    pub lifecycle_interval: std::time::Duration,
    /// Time between scrubs (zero: none but those asked for).
    pub scrub_interval: std::time::Duration,
    /// MiB per second a scheduled scrub reads at most.
    pub scrub_rate: f64,
    /// Time between server access log deliveries (zero: no delivery).
    pub access_log_interval: std::time::Duration,
    /// The external KMS (Vault's transit engine) SSE-KMS keys are sealed by, if any.
    pub kms_vault: Option<crate::s3::sse::vault::VaultSettings>,
    /// Time between openings of the external KMS's keys (what it stops opening is unusable).
    pub kms_vault_refresh: std::time::Duration,
    /// Proxies whose forwarding headers name the client.
    pub trusted_proxies: crate::server::proxy::TrustedProxies,
    /// The region the buckets are in.
    pub region: String,
    /// Bearer token `/metrics` requires, when set.
    pub metrics_token: Option<String>,
    /// `/health/ready` fails while the data directory has less free space than this.
    pub min_free_bytes: u64,
    /// Serve HTTPS with this certificate and key (plain HTTP when `None`).
    pub tls: Option<crate::server::tls::TlsFiles>,
    /// Count requests and bytes per bucket as well.
    pub metrics_per_bucket: bool,
    /// Write audit records (off only for benchmarking what auditing costs).
    pub audit: bool,
    /// The audit log's signing key file (`None`: `audit-signing-key.pem` in the data
    /// directory, created the first time).
    pub audit_signing_key: Option<PathBuf>,
    /// A webhook that receives every audit record in MinIO's format.
    pub audit_webhook: Option<String>,
    /// An OpenTelemetry collector that receives every audit record as OTLP logs.
    pub audit_otlp: Option<String>,
    /// Send object bytes with `sendfile` on plain-HTTP connections.
    pub zero_copy: bool,
    /// Write large blobs past the page cache (`O_DIRECT`).
    pub direct_writes: bool,
    /// Metadata on PostgreSQL at this URL (`None`: RocksDB under the data directory).
    pub meta: Option<String>,
    /// Blobs in a bucket of an S3-compatible store (`None`: files under the data directory).
    pub blobs: Option<BlobsConfig>,
    /// What a client may cost before it is decided.
    pub limits: crate::server::limits::Limits,
    /// Share links' default and longest lifetime.
    pub shares: crate::share::ShareSettings,
}

/// `--blobs s3://BUCKET/PREFIX?endpoint=URL` and the keys to sign requests to it with.
#[derive(Clone)]
pub struct BlobsConfig {
    /// The location (`fsgate_blobs_s3::S3Location::parse` reads it).
    pub url: String,
    /// Access key id for the store.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
}

impl std::fmt::Debug for BlobsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobsConfig")
            .field("url", &self.url)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Why the audit log's signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditKeyError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    File {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no Ed25519 private key.
    #[error("{path}: {source}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: fsgate_auditlog::checkpoint::KeyError,
    },
}

/// The key that signs the audit log's checkpoints: the file given, or the data directory's,
/// created (0600, durably) with a new key the first time.
pub fn audit_signing_key(cfg: &Config) -> Result<fsgate_auditlog::SigningKey, AuditKeyError> {
    let (path, given) = match &cfg.audit_signing_key {
        Some(p) => (p.clone(), true),
        None => (cfg.data.join("audit-signing-key.pem"), false),
    };
    let file = |source| AuditKeyError::File {
        path: path.clone(),
        source,
    };
    let key = |source| AuditKeyError::Key {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => fsgate_auditlog::SigningKey::from_pem(&text).map_err(key),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !given => {
            let new = fsgate_auditlog::SigningKey::generate().map_err(key)?;
            let pem = new.to_pem().map_err(key)?;
            fsgate_store::private_file::write_private(&path, pem.as_bytes()).map_err(file)?;
            tracing::info!(path = %path.display(), key_id = new.public().key_id(), "audit signing key created");
            Ok(new)
        }
        Err(e) => Err(file(e)),
    }
}

/// Where the root credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    /// `FSGATE_ROOT_USER`/`FSGATE_ROOT_PASSWORD` or `MINIO_ROOT_USER`/`MINIO_ROOT_PASSWORD`.
    Environment,
    /// Generated now and saved in the data directory.
    Generated,
    /// Generated earlier, read back from the data directory.
    Saved,
}

#[derive(Serialize, Deserialize)]
struct SavedRoot {
    access_key: String,
    secret_key: String,
}

/// Why the root credentials in the environment cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootEnvError {
    /// A user name under 3 characters or a password under 8.
    #[error("{user_var} must be at least 3 characters and {password_var} at least 8")]
    TooShort {
        /// The user variable's name.
        user_var: &'static str,
        /// The password variable's name.
        password_var: &'static str,
    },
    /// Only one of the pair is set.
    #[error("set both {user_var} and {password_var}, or neither")]
    HalfPair {
        /// The user variable's name.
        user_var: &'static str,
        /// The password variable's name.
        password_var: &'static str,
    },
}

/// Reads root credentials from the environment (fsgate's names first, then MinIO's).
pub fn root_from_env(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<RootCredentials>, RootEnvError> {
    for (u, p) in [
        ("FSGATE_ROOT_USER", "FSGATE_ROOT_PASSWORD"),
        ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"),
        // MinIO's legacy names.
        ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"),
    ] {
        match (
            get(u).filter(|s| !s.is_empty()),
            get(p).filter(|s| !s.is_empty()),
        ) {
            (Some(user), Some(pass)) => {
                if user.len() < 3 || pass.len() < 8 {
                    return Err(RootEnvError::TooShort {
                        user_var: u,
                        password_var: p,
                    });
                }
                return Ok(Some(RootCredentials {
                    access_key: user,
                    secret_key: pass,
                }));
            }
            (None, None) => {}
            _ => {
                return Err(RootEnvError::HalfPair {
                    user_var: u,
                    password_var: p,
                });
            }
        }
    }
    Ok(None)
}

/// Resolves the root credentials: environment, else the saved file, else new ones saved with
/// mode 0600.
pub fn resolve_root(cfg: &Config) -> std::io::Result<(RootCredentials, RootSource)> {
    if let Some(r) = &cfg.root_from_env {
        return Ok((r.clone(), RootSource::Environment));
    }
    let path = cfg.data.join("root-credentials");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let saved: SavedRoot = serde_json::from_str(&text)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        return Ok((
            RootCredentials {
                access_key: saved.access_key,
                secret_key: saved.secret_key,
            },
            RootSource::Saved,
        ));
    }
    let (ak, sk) = crate::identity::keys::new_key_pair();
    fsgate_store::private_file::write_private(
        &path,
        serde_json::to_string_pretty(&SavedRoot {
            access_key: ak.clone(),
            secret_key: sk.clone(),
        })?
        .as_bytes(),
    )?;
    Ok((
        RootCredentials {
            access_key: ak,
            secret_key: sk,
        },
        RootSource::Generated,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_precedence_and_validation() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let r = root_from_env(env(&[
            ("MINIO_ROOT_USER", "minio"),
            ("MINIO_ROOT_PASSWORD", "minio123"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.access_key, "minio");
        let r = root_from_env(env(&[
            ("FSGATE_ROOT_USER", "fsg"),
            ("FSGATE_ROOT_PASSWORD", "secret123"),
            ("MINIO_ROOT_USER", "minio"),
            ("MINIO_ROOT_PASSWORD", "minio123"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.access_key, "fsg");
        assert!(root_from_env(env(&[("FSGATE_ROOT_USER", "fsg")])).is_err());
        assert!(
            root_from_env(env(&[
                ("FSGATE_ROOT_USER", "fsg"),
                ("FSGATE_ROOT_PASSWORD", "short")
            ]))
            .is_err()
        );
        assert!(root_from_env(env(&[])).unwrap().is_none());
        let r = root_from_env(env(&[
            ("MINIO_ACCESS_KEY", "legacy"),
            ("MINIO_SECRET_KEY", "legacy123"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.access_key, "legacy");
    }
}

/// Share-link lifetimes that cannot be used together.
#[derive(Debug, thiserror::Error)]
#[error(
    "--share-default-ttl ({default}s) must be at least 1 second and at most --share-max-ttl ({max}s)"
)]
pub struct ShareTtlError {
    default: u64,
    max: u64,
}

/// Share links' lifetimes from `--share-default-ttl` and `--share-max-ttl` (seconds).
pub fn share_settings(
    default: u64,
    max: u64,
) -> Result<crate::share::ShareSettings, ShareTtlError> {
    if default == 0 || default > max {
        return Err(ShareTtlError { default, max });
    }
    Ok(crate::share::ShareSettings {
        default_ttl: std::time::Duration::from_secs(default),
        max_ttl: std::time::Duration::from_secs(max),
    })
}
