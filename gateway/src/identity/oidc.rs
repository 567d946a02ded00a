//! OpenID Connect: verifies the JWTs of the configured providers (for
//! `AssumeRoleWithWebIdentity` and `Authorization: Bearer` on the admin API).
//!
//! A token is matched to a provider by its `iss`; the provider's signing keys come from its
//! discovery document (`<issuer>/.well-known/openid-configuration` → `jwks_uri`) and are
//! cached. A token whose `kid` is not in the cache triggers one refetch (at most one per
//! second per provider, so a flood of bogus tokens cannot hammer the issuer); a `kid` still
//! unknown after it is refused. Only RS256 and ES256 are accepted (never `none`, never HMAC,
//! and the key's type must match the algorithm); `exp` is required, and `exp`, `nbf`, `iss`
//! and the audience (`aud` or `azp` = the provider's client id) are checked with 60 s of
//! clock skew allowed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use fsgate_store::model::{IdentityProvider, OidcProvider, SessionSource};

use crate::identity::federated::FederatedIdentity;
use crate::identity::iam::valid_name;

/// Clock skew allowed on `exp` and `nbf`, seconds.
pub const LEEWAY_SECS: u64 = 60;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_REFETCH: Duration = Duration::from_secs(1);
/// Cached keys older than this are fetched again (so a key the issuer withdrew stops being
/// trusted); if the issuer cannot be reached, the old keys keep serving.
const MAX_KEY_AGE: Duration = Duration::from_secs(15 * 60);
const MAX_DOC: usize = 1 << 20;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

#[derive(Debug, Clone)]
struct CachedKeys {
    jwks: JwkSet,
    fetched: Instant,
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token itself is wrong (expired, bad signature, wrong audience...): the reason is
    /// about what the client sent, and is told to it.
    #[error("{0}")]
    Refused(String),
    /// The provider could not be asked (unreachable, bad discovery document): logged, never
    /// sent to the client.
    #[error("identity provider unavailable: {0}")]
    ProviderUnavailable(String),
}

/// Verifies provider tokens, caching each provider's keys.
pub struct OidcVerifier {
    client: HttpsClient,
    keys: Mutex<HashMap<String, CachedKeys>>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier").finish_non_exhaustive()
    }
}

impl Default for OidcVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl OidcVerifier {
    /// A verifier trusting the system's root certificates for `https` issuers.
    #[must_use]
    pub fn new() -> Self {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no system root certificates; https issuers will fail");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            keys: Mutex::new(HashMap::new()),
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value, TokenError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| TokenError::ProviderUnavailable(format!("bad URL {url}: {e}")))?;
        let fetch = async {
            let resp = self
                .client
                .get(uri)
                .await
                .map_err(|e| TokenError::ProviderUnavailable(format!("fetching {url}: {e}")))?;
            if !resp.status().is_success() {
                return Err(TokenError::ProviderUnavailable(format!(
                    "fetching {url}: HTTP {}",
                    resp.status()
                )));
            }
            let body = http_body_util::Limited::new(resp.into_body(), MAX_DOC)
                .collect()
                .await
                .map_err(|e| TokenError::ProviderUnavailable(format!("reading {url}: {e}")))?
                .to_bytes();
            serde_json::from_slice(&body)
                .map_err(|e| TokenError::ProviderUnavailable(format!("{url} is not JSON: {e}")))
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| TokenError::ProviderUnavailable(format!("fetching {url}: timed out")))?
    }

    async fn fetch_keys(&self, p: &OidcProvider) -> Result<JwkSet, TokenError> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            p.issuer.trim_end_matches('/')
        );
        let doc = self.get_json(&discovery).await?;
        if doc.get("issuer").and_then(Value::as_str) != Some(p.issuer.as_str()) {
            return Err(TokenError::ProviderUnavailable(format!(
                "discovery document of {} names another issuer",
                p.issuer
            )));
        }
        let jwks_uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| {
            TokenError::ProviderUnavailable(format!(
                "discovery document of {} has no jwks_uri",
                p.issuer
            ))
        })?;
        let jwks = self.get_json(jwks_uri).await?;
        serde_json::from_value(jwks)
            .map_err(|e| TokenError::ProviderUnavailable(format!("JWKS of {}: {e}", p.issuer)))
    }

    /// The cached keys of a provider, fetched when absent or when `refresh` and the last
    /// fetch is old enough.
    async fn keys_of(&self, p: &OidcProvider, refresh: bool) -> Result<JwkSet, TokenError> {
        let cached = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&p.name)
            .cloned();
        match cached {
            Some(c) if c.fetched.elapsed() < MIN_REFETCH => Ok(c.jwks),
            Some(c) if !refresh && c.fetched.elapsed() < MAX_KEY_AGE => Ok(c.jwks),
            _ => {
                let jwks = match (self.fetch_keys(p).await, cached) {
                    (Ok(j), _) => j,
                    (Err(e), Some(old)) if !refresh => {
                        tracing::warn!(provider = %p.name, error = %e, "refreshing signing keys failed; using the cached ones");
                        return Ok(old.jwks);
                    }
                    (Err(e), _) => return Err(e),
                };
                self.keys
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(
                        p.name.clone(),
                        CachedKeys {
                            jwks: jwks.clone(),
                            fetched: Instant::now(),
                        },
                    );
                Ok(jwks)
            }
        }
    }

    /// Verifies a token against the provider that issued it. The error says why it was
    /// refused (for logs and the STS error message; it never echoes the token).
    pub async fn verify(
        &self,
        providers: &[IdentityProvider],
        token: &str,
    ) -> Result<FederatedIdentity, TokenError> {
        self.verify_token(providers, token).await
    }

    async fn verify_token(
        &self,
        providers: &[IdentityProvider],
        token: &str,
    ) -> Result<FederatedIdentity, TokenError> {
        use TokenError::{ProviderUnavailable, Refused};
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Refused(format!("not a signed JWT ({e})")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(Refused(format!(
                "algorithm {:?} is not accepted (RS256, ES256)",
                header.alg
            )));
        }
        let issuer = unverified_issuer(token)?;
        let p = providers
            .iter()
            .find_map(|p| match p {
                IdentityProvider::Oidc(o) if o.issuer == issuer => Some(o),
                _ => None,
            })
            .ok_or_else(|| {
                Refused(format!(
                    "no identity provider is configured for issuer {issuer}"
                ))
            })?;
        let kid = header.kid.clone().unwrap_or_default();
        let find = |set: &JwkSet| {
            set.keys
                .iter()
                .find(|k| k.common.key_id.as_deref().unwrap_or("") == kid)
                .cloned()
        };
        let jwk = match find(&self.keys_of(p, false).await?) {
            Some(k) => k,
            // Maybe the issuer rotated its keys: look once more.
            None => find(&self.keys_of(p, true).await?)
                .ok_or_else(|| Refused(format!("unknown signing key id '{kid}'")))?,
        };
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| ProviderUnavailable(format!("signing key '{kid}': {e}")))?;
        let mut v = Validation::new(header.alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.validate_aud = false;
        v.set_issuer(&[p.issuer.as_str()]);
        v.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &v)
            .map_err(|e| Refused(format!("token refused: {e}")))?;
        let claims = data.claims;
        check_audience(&claims, &p.client_id)?;
        identity(p, &claims)
    }
}

/// The `iss` of a token, before verification (only to pick the provider whose keys verify it).
fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| TokenError::Refused("not a JWT".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TokenError::Refused("JWT payload is not base64url".into()))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Refused("JWT payload is not JSON".into()))?;
    v.get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| TokenError::Refused("token has no issuer".into()))
}

fn check_audience(claims: &Value, client_id: &str) -> Result<(), TokenError> {
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    let azp_ok = claims.get("azp").and_then(Value::as_str) == Some(client_id);
    if aud_ok || azp_ok {
        Ok(())
    } else {
        Err(TokenError::Refused(format!(
            "token audience is not {client_id}"
        )))
    }
}

fn claim_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn identity(p: &OidcProvider, claims: &Value) -> Result<FederatedIdentity, TokenError> {
    let user = claims
        .get(&p.user_claim)
        .and_then(claim_text)
        .ok_or_else(|| TokenError::Refused(format!("token has no '{}' claim", p.user_claim)))?;
    if !valid_name(&user) {
        return Err(TokenError::Refused(format!(
            "'{}' is not a valid user name",
            p.user_claim
        )));
    }
    // A token without `iat` cannot show it was issued after a revocation: it counts as
    // issued before any (fail closed).
    let issued_ns = claims
        .get("iat")
        .and_then(Value::as_u64)
        .map(|s| s.saturating_mul(1_000_000_000));
    // Keycloak's group claim carries paths ("/admins"); a role list is flat.
    let mut groups: Vec<String> = match claims.get(&p.groups_claim) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|g| g.trim_start_matches('/').into())
            .collect(),
        Some(Value::String(g)) => vec![g.trim_start_matches('/').to_owned()],
        _ => Vec::new(),
    };
    groups.retain(|g| valid_name(g));
    groups.sort();
    groups.dedup();
    let tags = p
        .tag_claims
        .iter()
        .filter_map(|c| claims.get(c).and_then(claim_text).map(|v| (c.clone(), v)))
        .collect();
    let audience = match claims.get("aud") {
        Some(Value::String(a)) => a.clone(),
        _ => p.client_id.clone(),
    };
    Ok(FederatedIdentity {
        provider: p.name.clone(),
        user: crate::identity::federated::federated_name(&p.name, &user),
        issued_ns,
        groups,
        tags,
        subject: claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        audience,
        source: SessionSource::WebIdentity {
            provider: p.name.clone(),
        },
    })
}
