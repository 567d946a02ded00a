//! An external KMS behind the key ring's seam: HashiCorp Vault's transit engine (and OpenBao,
//! which speaks the same API). Each key of the ring is a transit key of the same name; the
//! ring's material for it is sealed by Vault (`POST /v1/{mount}/encrypt/{name}`) and kept in
//! the store as Vault's ciphertext (`vault:v1:...`), opened through Vault
//! (`POST /v1/{mount}/decrypt/{name}`) at start and again every refresh. So a request never
//! waits on Vault, and what Vault refuses — a key deleted, a token revoked, a policy narrowed —
//! makes the key unusable at the next refresh: its objects cannot be read, and the requests
//! fail with KMS.KMSInvalidStateException, recorded in the audit.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};

type HttpsClient = crate::http_client::HttpsClient<Full<bytes::Bytes>>;

/// The largest Vault answer read.
const MAX_ANSWER: usize = 1 << 20;
/// How long one Vault call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where Vault is and how fsgate authenticates to it.
#[derive(Clone)]
pub struct VaultSettings {
    /// `https://vault.example:8200`.
    pub endpoint: String,
    /// The transit engine's mount path (`transit`).
    pub mount: String,
    /// A token allowed to create, encrypt with and decrypt with the transit keys.
    pub token: String,
}

impl std::fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSettings")
            .field("endpoint", &self.endpoint)
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

/// Why a Vault call failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Vault could not be reached or did not answer in time.
    #[error("Vault at {0} is unreachable: {1}")]
    Unreachable(String, String),
    /// Vault answered with an error (status and its `errors`).
    #[error("Vault refused: HTTP {0}: {1}")]
    Refused(u16, String),
    /// Vault's answer is not what the transit API returns.
    #[error("Vault's answer is malformed: {0}")]
    Malformed(String),
}

/// A client of one Vault's transit engine.
#[derive(Clone)]
pub struct VaultTransit {
    settings: VaultSettings,
    client: HttpsClient,
}

impl std::fmt::Debug for VaultTransit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.settings.fmt(f)
    }
}

/// True for material Vault sealed (its ciphertext format).
#[must_use]
pub fn is_sealed_by_vault(sealed: &[u8]) -> bool {
    sealed.starts_with(b"vault:v")
}

impl VaultTransit {
    /// A client trusting the system's root certificates for an `https` Vault.
    #[must_use]
    pub fn new(settings: VaultSettings) -> Self {
        Self {
            settings,
            client: crate::http_client::https_client(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, VaultError> {
        let url = format!(
            "{}/v1/{}/{path}",
            self.settings.endpoint.trim_end_matches('/'),
            self.settings.mount.trim_matches('/')
        );
        let req = http::Request::post(&url)
            .header("X-Vault-Token", &self.settings.token)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes::Bytes::from(body.to_string())))
            .map_err(|e| VaultError::Malformed(e.to_string()))?;
        let unreachable = |e: String| VaultError::Unreachable(self.settings.endpoint.clone(), e);
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = resp.status();
            let bytes = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            let v: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).map_err(|e| VaultError::Malformed(e.to_string()))?
            };
            if !status.is_success() {
                let errors = v
                    .get("errors")
                    .map(Value::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
                return Err(VaultError::Refused(status.as_u16(), errors));
            }
            Ok(v)
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| unreachable("timed out".into()))?
    }

    /// Creates the transit key `name` (Vault answers success when it exists already).
    ///
    /// # Errors
    /// Vault unreachable or refusing.
    pub async fn create_key(&self, name: &str) -> Result<(), VaultError> {
        self.post(&format!("keys/{name}"), &json!({"type": "aes256-gcm96"}))
            .await
            .map(|_| ())
    }

    /// Seals 32 bytes of key material with the transit key `name`.
    ///
    /// # Errors
    /// Vault unreachable or refusing.
    pub async fn seal(&self, name: &str, material: &[u8; 32]) -> Result<Vec<u8>, VaultError> {
        let v = self
            .post(
                &format!("encrypt/{name}"),
                &json!({"plaintext": B64.encode(material)}),
            )
            .await?;
        let ct = v
            .pointer("/data/ciphertext")
            .and_then(Value::as_str)
            .filter(|c| is_sealed_by_vault(c.as_bytes()))
            .ok_or_else(|| VaultError::Malformed("no data.ciphertext".into()))?;
        Ok(ct.as_bytes().to_vec())
    }

    /// Opens material sealed by `seal`.
    ///
    /// # Errors
    /// Vault unreachable or refusing, or an answer that is not 32 bytes.
    pub async fn open(&self, name: &str, sealed: &[u8]) -> Result<[u8; 32], VaultError> {
        let ct = std::str::from_utf8(sealed).map_err(|e| VaultError::Malformed(e.to_string()))?;
        let v = self
            .post(&format!("decrypt/{name}"), &json!({"ciphertext": ct}))
            .await?;
        v.pointer("/data/plaintext")
            .and_then(Value::as_str)
            .and_then(|p| B64.decode(p).ok())
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| VaultError::Malformed("data.plaintext is not 32 bytes".into()))
    }
}
