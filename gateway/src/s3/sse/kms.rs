//! SSE-KMS with the built-in key ring: named keys whose material (one per version) is sealed
//! by the SSE master key and kept in the store (`KmsKeyRecord`), plus at most one static key
//! given in the environment (`FSGATE_KMS_SECRET_KEY`, or MinIO's `MINIO_KMS_SECRET_KEY`, as
//! `name:base64-of-32-bytes`). An object's data key is sealed by the newest version of its KMS
//! key; the version is recorded with it, so rotation never strands an object. A disabled key
//! neither encrypts nor decrypts: its objects cannot be read until it is enabled again.
//!
//! The ring is held in memory (read at start-up, changed through the admin API, which writes
//! the store first); a request never waits on the store for a key. With an external KMS
//! (`vault.rs`), new material is sealed by Vault's transit engine instead of the master key,
//! and opened through Vault at start and every refresh; what Vault stops opening becomes
//! unusable (`KmsError::Unavailable`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use s3s::{S3Error, S3ErrorCode};

use fsgate_store::model::KmsKeyRecord;
use fsgate_store::{Store, StoreError};

use super::vault::{VaultError, VaultTransit, is_sealed_by_vault};
use super::{MasterKey, unwrap, wrap};

/// The key SSE-KMS uses when a request names none and its bucket has no default key: created
/// on first use (AWS's `aws/s3` managed key plays this part).
pub const DEFAULT_KEY: &str = "fsgate-default";

/// Why a KMS key cannot be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// No key has that id.
    #[error("Invalid keyId {0}")]
    NotFound(String),
    /// The key is disabled.
    #[error("{0} is disabled.")]
    Disabled(String),
    /// A key's material does not open (a different master key?).
    #[error("the material of KMS key {0} cannot be opened with this master key")]
    Sealed(String),
    /// Key ids are 1-256 characters of letters, digits and `-_./:`, not starting with `arn:`.
    #[error("invalid KMS key id {0:?}: 1-256 of letters, digits and - _ . / :")]
    BadName(String),
    /// The static key from the environment is not changed through the API.
    #[error("KMS key {0} is given in the environment and cannot be changed")]
    Static(String),
    /// The environment's static key is malformed.
    #[error("KMS secret key: expected NAME:BASE64 of 32 bytes")]
    BadSecret,
    /// The external KMS does not open the key (deleted, token revoked, unreachable).
    #[error("KMS key {0} is unavailable: {1}")]
    Unavailable(String, String),
    /// The external KMS refused a change.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KmsError {
    /// The S3 answer: AWS's KMS error codes (400), or an internal error.
    #[must_use]
    pub fn s3(&self) -> S3Error {
        let (code, status) = match self {
            KmsError::NotFound(_) | KmsError::BadName(_) => {
                ("KMS.NotFoundException", http::StatusCode::BAD_REQUEST)
            }
            KmsError::Disabled(_) => ("KMS.DisabledException", http::StatusCode::BAD_REQUEST),
            KmsError::Unavailable(..) => (
                "KMS.KMSInvalidStateException",
                http::StatusCode::BAD_REQUEST,
            ),
            _ => {
                return S3Error::with_message(S3ErrorCode::InternalError, self.to_string());
            }
        };
        let mut e = S3Error::with_message(S3ErrorCode::Custom(code.into()), self.to_string());
        e.set_status_code(status);
        e
    }
}

/// One key as held in memory: its versions' material, opened.
#[derive(Clone)]
struct OpenKey {
    created_ns: u64,
    enabled: bool,
    versions: Vec<[u8; 32]>,
    from_env: bool,
    /// The versions as stored, for the external KMS to open again at each refresh.
    sealed: Vec<Vec<u8>>,
    /// Why the external KMS does not open it now (`None`: usable).
    unavailable: Option<String>,
}

/// A key as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    /// Its id.
    pub name: String,
    /// Whether it encrypts and decrypts.
    pub enabled: bool,
    /// The newest version (what new objects use).
    pub version: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// Given in the environment (not stored, not changeable).
    pub from_env: bool,
    /// Why the external KMS does not open it now, if it does not.
    pub unavailable: Option<String>,
    /// Sealed by the external KMS (else by the master key).
    pub external: bool,
}

/// The key ring.
pub struct KeyRing {
    master: MasterKey,
    keys: RwLock<BTreeMap<String, OpenKey>>,
    /// The external KMS new material is sealed by, when configured.
    vault: Option<VaultTransit>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing(..)")
    }
}

fn check_name(name: &str) -> Result<(), KmsError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && !name.starts_with("arn:")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(KmsError::BadName(name.to_owned()))
    }
}

impl KeyRing {
    /// A ring with no keys yet.
    #[must_use]
    pub fn new(master: MasterKey) -> Self {
        Self {
            master,
            keys: RwLock::new(BTreeMap::new()),
            vault: None,
        }
    }

    /// The master key (SSE-S3's, and what seals the ring's material).
    #[must_use]
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The ring of the store's keys, with the environment's static key (`name:base64`).
    /// With `vault`, new material is sealed by it; call `refresh` before serving to open what
    /// it sealed.
    pub fn load(
        store: &Store,
        master: MasterKey,
        static_key: Option<&str>,
        vault: Option<VaultTransit>,
    ) -> Result<Arc<Self>, KmsError> {
        let mut ring = Self::new(master);
        ring.vault = vault;
        for rec in store.list_kms_keys()? {
            ring.hold(&rec)?;
        }
        if let Some(secret) = static_key {
            let (name, b64) = secret.split_once(':').ok_or(KmsError::BadSecret)?;
            check_name(name)?;
            let material = B64
                .decode(b64.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or(KmsError::BadSecret)?;
            ring.write().insert(
                name.to_owned(),
                OpenKey {
                    created_ns: 0,
                    enabled: true,
                    versions: vec![material],
                    from_env: true,
                    sealed: Vec::new(),
                    unavailable: None,
                },
            );
        }
        Ok(Arc::new(ring))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, OpenKey>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, OpenKey>> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a stored key and holds it: what the master key sealed at once; what the external
    /// KMS sealed is held unavailable until `refresh` opens it (or `opened` gives it).
    fn hold(&self, rec: &KmsKeyRecord) -> Result<(), KmsError> {
        self.hold_with(rec, None)
    }

    fn hold_with(&self, rec: &KmsKeyRecord, opened: Option<Vec<[u8; 32]>>) -> Result<(), KmsError> {
        let external = rec.versions.iter().any(|v| is_sealed_by_vault(v));
        let (versions, unavailable) = match opened {
            Some(v) => (v, None),
            None if external => (
                vec![[0u8; 32]; rec.versions.len()],
                Some("not opened by the external KMS yet".to_owned()),
            ),
            None => (
                rec.versions
                    .iter()
                    .map(|sealed| unwrap(&self.master.0, sealed))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| KmsError::Sealed(rec.name.clone()))?,
                None,
            ),
        };
        self.write().insert(
            rec.name.clone(),
            OpenKey {
                created_ns: rec.created_ns,
                enabled: rec.enabled,
                versions,
                from_env: false,
                sealed: rec.versions.clone(),
                unavailable,
            },
        );
        Ok(())
    }

    /// Opens again, through the external KMS, every key it sealed: a key it opens is usable,
    /// one it refuses (deleted, token revoked, unreachable) is not until it opens again.
    pub async fn refresh(&self) {
        let Some(vault) = &self.vault else {
            return;
        };
        let sealed: Vec<(String, Vec<Vec<u8>>)> = self
            .read()
            .iter()
            .filter(|(_, k)| k.sealed.iter().any(|v| is_sealed_by_vault(v)))
            .map(|(n, k)| (n.clone(), k.sealed.clone()))
            .collect();
        for (name, versions) in sealed {
            let mut opened = Vec::with_capacity(versions.len());
            let mut failure = None;
            for v in &versions {
                let r = if is_sealed_by_vault(v) {
                    vault.open(&name, v).await.map_err(|e| e.to_string())
                } else {
                    unwrap(&self.master.0, v)
                        .ok_or_else(|| "sealed by another master key".to_owned())
                };
                match r {
                    Ok(m) => opened.push(m),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            let mut keys = self.write();
            let Some(k) = keys.get_mut(&name) else {
                continue;
            };
            if k.sealed != versions {
                continue; // changed meanwhile: the change holds the newer state
            }
            match failure {
                None => {
                    if k.unavailable.is_some() {
                        tracing::info!(key = %name, "KMS key opened by the external KMS");
                    }
                    k.versions = opened;
                    k.unavailable = None;
                }
                Some(e) => {
                    if k.unavailable.as_deref() != Some(e.as_str()) {
                        tracing::warn!(key = %name, error = %e, "the external KMS does not open this key: its objects cannot be read");
                    }
                    k.versions.iter_mut().for_each(|m| *m = [0u8; 32]);
                    k.unavailable = Some(e);
                }
            }
        }
    }

    /// Seals new material: by the external KMS (creating its key first) when configured, else
    /// by the master key. Runs on a blocking thread (the admin API's).
    fn seal_new(&self, name: &str, material: &[u8; 32]) -> Result<Vec<u8>, KmsError> {
        let Some(vault) = &self.vault else {
            return Ok(wrap(&self.master.0, material));
        };
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| KmsError::Unavailable(name.to_owned(), e.to_string()))?;
        handle.block_on(async {
            vault.create_key(name).await?;
            Ok(vault.seal(name, material).await?)
        })
    }

    /// Every key.
    #[must_use]
    pub fn list(&self) -> Vec<KeyInfo> {
        self.read()
            .iter()
            .map(|(name, k)| KeyInfo {
                name: name.clone(),
                enabled: k.enabled,
                version: u32::try_from(k.versions.len()).unwrap_or(u32::MAX),
                created_ns: k.created_ns,
                from_env: k.from_env,
                unavailable: k.unavailable.clone(),
                external: k.sealed.iter().any(|v| is_sealed_by_vault(v)),
            })
            .collect()
    }

    /// Whether a key exists.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// Creates a key with fresh material (AlreadyExists when the id is taken).
    pub fn create(&self, store: &Store, name: &str) -> Result<KeyInfo, KmsError> {
        check_name(name)?;
        if self.read().get(name).is_some_and(|k| k.from_env) {
            return Err(KmsError::Static(name.to_owned()));
        }
        if self.contains(name) {
            return Err(KmsError::Store(StoreError::AlreadyExists(format!(
                "KMS key {name}"
            ))));
        }
        let material: [u8; 32] = rand::random();
        let rec = KmsKeyRecord {
            name: name.to_owned(),
            created_ns: fsgate_store::now_ns(),
            enabled: true,
            versions: vec![self.seal_new(name, &material)?],
        };
        store.create_kms_key(&rec)?;
        self.hold_with(&rec, Some(vec![material]))?;
        self.info(name)
    }

    /// The default key, created on first use.
    pub fn ensure_default(&self, store: &Store) -> Result<(), KmsError> {
        if self.contains(DEFAULT_KEY) {
            return Ok(());
        }
        match self.create(store, DEFAULT_KEY) {
            Ok(_) | Err(KmsError::Store(StoreError::AlreadyExists(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn info(&self, name: &str) -> Result<KeyInfo, KmsError> {
        self.list()
            .into_iter()
            .find(|k| k.name == name)
            .ok_or_else(|| KmsError::NotFound(name.to_owned()))
    }

    /// Changes a stored key (enable, disable, rotate) in the store, then in memory.
    fn change(
        &self,
        store: &Store,
        name: &str,
        added: Option<[u8; 32]>,
        f: impl FnOnce(&mut KmsKeyRecord),
    ) -> Result<KeyInfo, KmsError> {
        if self.read().get(name).is_some_and(|k| k.from_env) {
            return Err(KmsError::Static(name.to_owned()));
        }
        let mut rec = store
            .list_kms_keys()?
            .into_iter()
            .find(|k| k.name == name)
            .ok_or_else(|| KmsError::NotFound(name.to_owned()))?;
        f(&mut rec);
        store.put_kms_key(&rec)?;
        // The material held stays (a new version's comes with `added`); the rest as stored.
        let held = self
            .read()
            .get(name)
            .map(|k| (k.versions.clone(), k.unavailable.is_none()));
        match (held, added) {
            (Some((mut versions, true)), Some(m)) => {
                versions.push(m);
                self.hold_with(&rec, Some(versions))?;
            }
            (Some((versions, true)), None) => self.hold_with(&rec, Some(versions))?,
            _ => self.hold(&rec)?,
        }
        self.info(name)
    }

    /// Enables or disables a key.
    pub fn set_enabled(
        &self,
        store: &Store,
        name: &str,
        enabled: bool,
    ) -> Result<KeyInfo, KmsError> {
        self.change(store, name, None, |r| r.enabled = enabled)
    }

    /// Adds a new version: new objects use it, older ones keep theirs.
    pub fn rotate(&self, store: &Store, name: &str) -> Result<KeyInfo, KmsError> {
        if !self.contains(name) {
            return Err(KmsError::NotFound(name.to_owned()));
        }
        let material: [u8; 32] = rand::random();
        let sealed = self.seal_new(name, &material)?;
        self.change(store, name, Some(material), |r| r.versions.push(sealed))
    }

    /// The newest version of an enabled key and its material, for a new object.
    pub fn current(&self, name: &str) -> Result<(u32, [u8; 32]), KmsError> {
        let keys = self.read();
        let k = keys
            .get(name)
            .ok_or_else(|| KmsError::NotFound(name.to_owned()))?;
        if !k.enabled {
            return Err(KmsError::Disabled(name.to_owned()));
        }
        if let Some(why) = &k.unavailable {
            return Err(KmsError::Unavailable(name.to_owned(), why.clone()));
        }
        let material = k
            .versions
            .last()
            .ok_or_else(|| KmsError::NotFound(name.to_owned()))?;
        Ok((
            u32::try_from(k.versions.len()).unwrap_or(u32::MAX),
            *material,
        ))
    }

    /// The material of one version of an enabled key, to open an object's data key.
    pub fn material(&self, name: &str, version: u32) -> Result<[u8; 32], KmsError> {
        let keys = self.read();
        let k = keys
            .get(name)
            .ok_or_else(|| KmsError::NotFound(name.to_owned()))?;
        if !k.enabled {
            return Err(KmsError::Disabled(name.to_owned()));
        }
        if let Some(why) = &k.unavailable {
            return Err(KmsError::Unavailable(name.to_owned(), why.clone()));
        }
        let index = usize::try_from(version)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .ok_or_else(|| KmsError::NotFound(format!("{name} version {version}")))?;
        k.versions
            .get(index)
            .copied()
            .ok_or_else(|| KmsError::NotFound(format!("{name} version {version}")))
    }
}

/// How an object records its KMS key: `name#version` (in `SseInfo::key_md5`).
#[must_use]
pub fn key_ref(name: &str, version: u32) -> String {
    format!("{name}#{version}")
}

/// The KMS key and version an object records.
#[must_use]
pub fn parse_key_ref(r: &str) -> Option<(&str, u32)> {
    let (name, v) = r.rsplit_once('#')?;
    Some((name, v.parse().ok()?))
}
