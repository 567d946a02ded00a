//! TLS termination with rustls (ring), TLS 1.2 and 1.3 only.
//!
//! The certificate chain and key come from `--certs-dir DIR` (`DIR/public.crt` and
//! `DIR/private.key`, MinIO's layout, so existing certificate mounts work) or from
//! `--tls-cert`/`--tls-key`. They are read again on SIGHUP and whenever either file changes
//! (checked every 2 s): new handshakes get the new certificate, connections already open keep
//! theirs. A pair that does not load (unreadable, not PEM, key not matching the certificate) is
//! logged and the one in use stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The command line names only one of the two files.
    #[error("give either --certs-dir, or both --tls-cert and --tls-key")]
    Arguments,
    /// A file is unreadable or not PEM.
    #[error("{}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What reading it met.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{}: no certificate", .0.display())]
    NoCertificate(PathBuf),
    /// The key does not go with the certificate, or is of a kind rustls cannot use.
    #[error("{} and {}: {source}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls found.
        source: rustls::Error,
    },
    /// rustls refused the protocol versions.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// How often the files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the certificate and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// From the command line: a certs directory, or both files, or neither (plain HTTP).
    pub fn from_args(
        certs_dir: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Option<Self>, TlsError> {
        match (certs_dir, cert, key) {
            (None, None, None) => Ok(None),
            (Some(d), None, None) => Ok(Some(Self {
                cert: d.join("public.crt"),
                key: d.join("private.key"),
            })),
            (None, Some(c), Some(k)) => Ok(Some(Self {
                cert: c.to_owned(),
                key: k.to_owned(),
            })),
            _ => Err(TlsError::Arguments),
        }
    }

    fn stamp(&self) -> Option<(SystemTime, SystemTime)> {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((m(&self.cert)?, m(&self.key)?))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a certificate chain and its key.
pub fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let pem = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Pem { path, source }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(pem(&files.cert))?
        .collect::<Result<_, _>>()
        .map_err(pem(&files.cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(pem(&files.key))?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|source| TlsError::Pair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })
}

/// Hands every handshake the certificate currently loaded.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The TLS side of the listener.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    resolver: Arc<Resolver>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate; fails (with the file and reason) when it cannot be used.
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let resolver = Arc::new(Resolver {
            current: RwLock::new(Arc::new(load(&files)?)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            files,
            resolver,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The acceptor for new connections.
    #[must_use]
    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again; on error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let next = load(&self.files)?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        Ok(())
    }

    fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => tracing::info!(why, "TLS certificate reloaded"),
            Err(e) => tracing::error!(
                why,
                error = %e,
                "TLS certificate not reloaded; the one in use stays"
            ),
        }
    }

    /// Reloads on SIGHUP and when the files change.
    pub fn spawn_watch(self) {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut seen = tls.files.stamp();
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                let now = tls.files.stamp();
                if now.is_some() && now != seen {
                    seen = now;
                    tls.reload_logged("files changed");
                }
            }
        });
        #[cfg(unix)]
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                self.reload_logged("SIGHUP");
            }
        });
    }
}
