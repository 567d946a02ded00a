//! fsgate: an S3-compatible storage gateway with a Cedar policy layer.
//!
//! This crate owns the HTTP side, one folder or file per responsibility:
//! - `server/`: connections, TLS, virtual hosts, the front layer every request passes
//!   (`front.rs`), split by concern: health and `/metrics` (`health.rs`), what a client may
//!   cost (`limits.rs`), CORS preflight (`preflight.rs`), the audit record (`audit.rs`); and
//!   the route s3s hands admin and STS requests to;
//! - `identity/`: who is asking — the IAM cache and authentication, signing facts, the one
//!   decoding of the query, OpenID Connect and LDAP, bearer tokens, credential generation;
//! - `ownership.rs`: who owns buckets and objects, their ACL documents and the Cedar grants
//!   those become (below `identity`, which loads them into the engine);
//! - `access.rs`: every decision, through fsgate-policy (read its module doc first);
//! - `s3/`: the S3 front-end on s3s, one file per operation family (with zero-copy downloads),
//!   and one folder for each bucket configuration that does more than store a document:
//!   `s3/cors/` (rules applied by the front layer), `s3/lifecycle/` (rules and the worker),
//!   `s3/sse/` (encryption at rest and the bucket default);
//! - `admin/` and `sts.rs`: the admin API (dispatch in `admin/mod.rs`, routes by family) and STS;
//! - `telemetry/`: scrape-time gauges, per-request metrics, trace export;
//! - `share/`: share links' own route (`/-/share/…`): pages, passwords, use counts; each use
//!   handed to the S3 service with the link as its principal;
//! - `audit_out/`: audit records pushed to targets (MinIO's audit webhook, OTLP logs) as they
//!   commit;
//! - `integrity.rs`: bitrot the store finds, on the record; scrubs on demand and on a schedule;
//! - `rate.rs`: request rates per client address (checked by the front layer) and per
//!   principal (by the gate, once authenticated), requests in flight;
//! - request state (`context.rs`), the S3 error table (`error.rs`), S3 tag sets (`tags.rs`),
//!   the client for calls out (`http_client.rs`), configuration.
//!
//! Modules are private except what `main.rs` uses (`config`, `server::{limits, tls}`,
//! `telemetry::traces`) and `fuzzing` (the entry points of the fuzz targets in `fuzz/`), so
//! the dead-code lint sees every item.
//!
//! No module imports another that imports it back (`scripts/module-cycles.py`, run by CI):
//! `ownership` sits below `identity`, which sits below `access`, which sits below `s3`, `share`,
//! `admin` and `sts`, below `server`.
//! It depends on `fsgate-policy` and `fsgate-store`; neither depends on it or on each other.
//!
//! The one thing a newcomer must not break: every S3 and admin request is decided by Cedar
//! before any data is read or written, and produces exactly one audit record.

mod access;
mod admin;
mod audit_out;
pub mod config;
mod context;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod http_client;
mod identity;
mod integrity;
mod ownership;
mod rate;
mod s3;
pub mod server;
mod share;
mod sts;
mod tags;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::S3ServiceBuilder;

use fsgate_policy::{PolicyEngine, PolicyError, PolicyFile};
use fsgate_store::audit::AuditWriter;
use fsgate_store::{Store, StoreError, StoreOptions};

pub use self::config::Config;
use self::config::RootSource;
pub use self::s3::sse::vault::VaultSettings;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A policy file or the schema is invalid.
    #[error("invalid policies:\n{0}")]
    Policy(#[from] PolicyError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// IAM state could not be loaded.
    #[error("iam: {0}")]
    Iam(#[from] identity::iam::IamError),
    /// Socket or file error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error("tls: {0}")]
    Tls(#[from] server::tls::TlsError),
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The SSE master key cannot be used.
    #[error("sse: {0}")]
    MasterKey(#[from] s3::sse::MasterKeyError),
    /// The KMS key ring cannot be loaded.
    #[error("kms: {0}")]
    Kms(#[from] s3::KmsError),
    /// The audit log's signing key cannot be used.
    #[error("audit signing key: {0}")]
    AuditKey(#[from] config::AuditKeyError),
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
}

/// Reads every `*.cedar` and `*.cedarschema` file of a policy directory, sorted by name.
pub fn read_policy_dir(dir: &std::path::Path) -> Result<Vec<PolicyFile>, ServeError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_policy = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "cedar" || e == "cedarschema");
        if is_policy {
            files.push(PolicyFile {
                name: path.display().to_string(),
                text: std::fs::read_to_string(&path)?,
            });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Loads the policies: the directory given, or the built-in copy.
pub fn load_policies(dir: Option<&std::path::Path>) -> Result<PolicyEngine, ServeError> {
    Ok(match dir {
        Some(d) => PolicyEngine::load(&read_policy_dir(d)?)?,
        None => PolicyEngine::builtin()?,
    })
}

/// What the listener serves: health answers while the store opens, then everything.
#[derive(Clone)]
enum Phase {
    /// Opening the metadata store: live, not ready (the reason says why).
    Opening(String),
    /// Serving S3, the admin API and STS.
    Serving(Arc<server::front::Front>),
}

type SharedPhase = Arc<std::sync::RwLock<Phase>>;

fn set_phase(phase: &SharedPhase, next: Phase) {
    *phase
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
}

/// What shutdown needs of a server that finished opening.
struct Running {
    audit: Arc<AuditWriter>,
}

/// Opens the store. While another process holds the metadata store's lock (an old instance
/// still shutting down), or the metadata engine cannot be reached (PostgreSQL not up yet), it
/// keeps trying, and readiness says so; any other failure stops.
async fn open_store(
    data: &std::path::Path,
    opts: StoreOptions,
    phase: &SharedPhase,
) -> Result<Arc<Store>, ServeError> {
    let mut warned = false;
    loop {
        let dir = data.to_owned();
        let opts = opts.clone();
        let opened = tokio::task::spawn_blocking(move || Store::open(&dir, opts))
            .await
            .map_err(|e| ServeError::Config(e.to_string()))?;
        match opened {
            Ok(store) => return Ok(Arc::new(store)),
            Err(
                e @ (fsgate_store::StoreError::Locked(_)
                | fsgate_store::StoreError::Unavailable(_)
                | fsgate_store::StoreError::Metadata {
                    kind: fsgate_store::MetaFailure::Unavailable,
                    ..
                }),
            ) => {
                let reason = e.to_string();
                if !warned {
                    tracing::warn!(error = %e, "metadata store not open; retrying every second");
                    warned = true;
                }
                set_phase(phase, Phase::Opening(reason));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Connects to the blob store of `--blobs s3://…`, spooling uploads under `data`; while it
/// cannot be reached, keeps trying every second, and readiness says so.
#[cfg(feature = "s3-blobs")]
async fn open_blob_store(
    cfg: &config::BlobsConfig,
    data: &std::path::Path,
    phase: &SharedPhase,
) -> Result<Arc<dyn fsgate_store::blob::BlobStore>, ServeError> {
    let location = fsgate_blobs_s3::S3Location::parse(&cfg.url)?;
    let credentials = fsgate_blobs_s3::S3Credentials {
        access_key: cfg.access_key.clone(),
        secret_key: cfg.secret_key.clone(),
    };
    let mut warned = false;
    loop {
        let (location, credentials) = (location.clone(), credentials.clone());
        let spool = data.join("spool");
        let opened = tokio::task::spawn_blocking(move || {
            fsgate_blobs_s3::S3BlobStore::open(&location, &credentials, &spool)
        })
        .await
        .map_err(|e| ServeError::Config(e.to_string()))?;
        match opened {
            Ok(blobs) => return Ok(Arc::new(blobs)),
            Err(e @ StoreError::Unavailable(_)) => {
                if !warned {
                    tracing::warn!(error = %e, "blob store not reachable; retrying every second");
                    warned = true;
                }
                set_phase(phase, Phase::Opening(e.to_string()));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(not(feature = "s3-blobs"))]
async fn open_blob_store(
    _cfg: &config::BlobsConfig,
    _data: &std::path::Path,
    _phase: &SharedPhase,
) -> Result<Arc<dyn fsgate_store::blob::BlobStore>, ServeError> {
    Err(ServeError::Config(
        "this build has no S3 blob backend (the `s3-blobs` feature is off)".into(),
    ))
}

/// Opens the store and builds everything behind the listener; then serves.
async fn open_and_build(
    cfg: Config,
    engine: Arc<PolicyEngine>,
    secure: bool,
    local: SocketAddr,
    phase: SharedPhase,
) -> Result<Running, ServeError> {
    let phase = &phase;
    let blobs = match &cfg.blobs {
        Some(b) => Some(open_blob_store(b, &cfg.data, phase).await?),
        None => None,
    };
    let opts = StoreOptions {
        direct_writes: cfg.direct_writes,
        meta_url: cfg.meta.clone(),
        blobs,
        ..StoreOptions::default()
    };
    let store = open_store(&cfg.data, opts, phase).await?;
    make_private(&cfg.data)?;
    let rec = store.recovery();
    if rec.staged_removed + rec.unreferenced_removed > 0 {
        tracing::info!(
            staged = rec.staged_removed,
            unreferenced = rec.unreferenced_removed,
            "recovery collected leftovers"
        );
    }
    let (root, source) = config::resolve_root(&cfg)?;
    // Identity providers MinIO's settings name (MINIO_IDENTITY_OPENID_*, _LDAP_*) are put in
    // place (replacing those of the same name) before IAM is read.
    for p in identity::minio_providers::identity_providers(|k| std::env::var(k).ok()) {
        store.put_identity_provider(&p)?;
    }
    let iam = Arc::new(identity::iam::Iam::load(&store, root.clone(), engine)?);
    let metrics = telemetry::install()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let audit_key = Arc::new(config::audit_signing_key(&cfg)?);
    let audit = Arc::new(AuditWriter::start(
        store.clone(),
        16_384,
        audit_key.clone(),
    )?);

    let rates = Arc::new(rate::Rates::new(
        cfg.limits.per_source_rate,
        cfg.limits.per_principal_rate,
        cfg.limits.max_requests,
    ));
    let gate = access::Gate::new(iam.clone(), store.clone()).with_rates(rates.clone());
    let master = s3::MasterKey::load(
        &cfg.data,
        std::env::var("FSGATE_SSE_MASTER_KEY").ok().as_deref(),
    )?;
    // One static KMS key may come from the environment, in MinIO's form too.
    let static_kms = std::env::var("FSGATE_KMS_SECRET_KEY")
        .or_else(|_| std::env::var("MINIO_KMS_SECRET_KEY"))
        .ok();
    let vault = cfg.kms_vault.clone().map(s3::sse::vault::VaultTransit::new);
    let keys = s3::KeyRing::load(&store, master, static_kms.as_deref(), vault.clone())?;
    if vault.is_some() {
        // The keys Vault sealed are opened before the first request, then every refresh.
        keys.refresh().await;
        let (ring, every) = (keys.clone(), cfg.kms_vault_refresh);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                ring.refresh().await;
            }
        });
    }
    let quotas = s3::quota::BucketQuotas::load(&store)?;
    let mut builder = S3ServiceBuilder::new(s3::S3Api::new(
        store.clone(),
        gate.clone(),
        keys.clone(),
        cfg.region.clone(),
        quotas.clone(),
        cfg.min_free_bytes,
    ));
    builder.set_auth(identity::signing::IamAuth::new(iam.clone()));
    builder.set_access(gate.clone());
    let oidc = Arc::new(identity::oidc::OidcVerifier::new());
    let scrape = telemetry::Scrape {
        handle: metrics.clone(),
        telemetry: Arc::new(telemetry::Telemetry::new(
            store.clone(),
            audit.clone(),
            cfg.min_free_bytes,
        )),
    };
    let admin = admin::AdminApi::new(
        store.clone(),
        iam.clone(),
        gate.clone(),
        audit.clone(),
        oidc.clone(),
        scrape.clone(),
        keys,
    )
    .with_quotas(quotas)
    .with_audit_key(audit_key.public().clone())
    .with_share_settings(cfg.shares);
    builder.set_route(server::routes::Routes::new(
        admin.clone(),
        sts::Sts::new(store.clone(), iam.clone(), gate.clone(), oidc),
    ));
    spawn_policy_reload(cfg.policies.clone(), store.clone(), iam.clone());
    // Audit targets: fsgate's flag, and MinIO's settings.
    let mut webhooks = audit_out::webhooks_from_minio_env(
        |k| std::env::var(k).ok(),
        std::env::vars().map(|(k, _)| k),
    );
    if let Some(url) = &cfg.audit_webhook {
        webhooks.push(audit_out::AuditTarget {
            name: "webhook:fsgate".into(),
            endpoint: url.clone(),
            auth_token: std::env::var("FSGATE_AUDIT_WEBHOOK_AUTH_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            protocol: audit_out::Protocol::MinioWebhook,
        });
    }
    if let Some(url) = &cfg.audit_otlp {
        webhooks.push(audit_out::AuditTarget {
            name: "otlp:default".into(),
            endpoint: audit_out::otlp_logs_endpoint(url),
            auth_token: std::env::var("FSGATE_AUDIT_OTLP_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            protocol: audit_out::Protocol::OtlpLogs,
        });
    }
    audit_out::spawn(store.clone(), webhooks);
    integrity::audit_corruptions(&store, audit.clone());
    integrity::stop_on_write_failure(&store);
    if !cfg.scrub_interval.is_zero() {
        integrity::spawn_schedule(
            store.clone(),
            audit.clone(),
            cfg.scrub_interval,
            cfg.scrub_rate,
        );
    }
    if !cfg.lifecycle_interval.is_zero() {
        s3::lifecycle::worker::spawn(store.clone(), audit.clone(), cfg.lifecycle_interval);
    }
    if !cfg.access_log_interval.is_zero() {
        s3::logging::worker::spawn(
            store.clone(),
            root.access_key.clone(),
            cfg.access_log_interval,
        );
    }
    let domain = cfg.domain.as_deref().map(server::host::DomainHost::new);
    if let Some(d) = &domain {
        builder.set_host(d.clone());
    }
    let mut s3cfg = S3Config::default();
    // What s3s buffers before the access hook decides: POST-policy uploads (the file is read
    // before any decision), their form fields, and XML bodies (CompleteMultipartUpload with
    // 10,000 parts is ~1.5 MiB). All of it also counts against --pre-decision-memory.
    s3cfg.post_object_max_file_size = 64 << 20;
    s3cfg.form_max_field_size = 256 << 10;
    s3cfg.form_max_fields_size = 1 << 20;
    s3cfg.xml_max_body_size = 4 << 20;
    builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(s3cfg))));
    let front = Arc::new(
        server::front::Front::new(builder.build(), store.clone(), audit.clone(), metrics)
            .with_domain(domain)
            .with_secure(secure)
            .with_trusted_proxies(cfg.trusted_proxies.clone())
            .with_iam_api(admin)
            .with_shares(share::Shares::new(store.clone(), iam.clone(), gate.clone()))
            .with_limits(&cfg.limits)
            .with_rates(rates)
            .with_operations(server::front::Operations {
                telemetry: scrape.telemetry.clone(),
                metrics_token: cfg.metrics_token.clone(),
                min_free_bytes: cfg.min_free_bytes,
                iam: iam.clone(),
                per_bucket: cfg.metrics_per_bucket,
                audit: cfg.audit,
            }),
    );

    print_banner(&cfg, local, &root, source);
    set_phase(phase, Phase::Serving(front));
    Ok(Running { audit })
}

/// Makes the data directory private to fsgate's user: it holds every user's secret (one made
/// by an older version was 0755; closing the top closes everything below it). A directory
/// fsgate does not own (a volume mounted for a group, say) is left as it is, with a warning
/// when others can read it.
fn make_private(data: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = std::fs::metadata(data)?;
    let open = meta.mode() & 0o077 != 0;
    if open && meta.uid() == rustix::process::geteuid().as_raw() {
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))?;
    } else if open {
        tracing::warn!(
            data = %data.display(),
            mode = format!("{:o}", meta.mode() & 0o777),
            "the data directory belongs to another user and others may read it; make it private to fsgate's user"
        );
    }
    Ok(())
}

/// An accepted connection, before TLS: plain, or plain with a zero-copy writer.
enum Connection {
    Plain(tokio::net::TcpStream),
    ZeroCopy(s3::zero_copy::SendfileIo),
}

/// Runs the server until SIGINT or SIGTERM. The listener is up first: `/health/live` answers
/// at once and `/health/ready` says why it is not ready until the store is open.
pub async fn serve(cfg: Config) -> Result<(), ServeError> {
    let engine = Arc::new(load_policies(cfg.policies.as_deref())?);
    let tls = match &cfg.tls {
        None => None,
        Some(files) => Some(server::tls::Tls::new(files.clone())?),
    };
    if let Some(t) = &tls {
        t.clone().spawn_watch();
    }
    let listener = tokio::net::TcpListener::bind(cfg.address).await?;
    let local = listener.local_addr()?;
    let phase: SharedPhase = Arc::new(std::sync::RwLock::new(Phase::Opening(
        "opening the metadata store".into(),
    )));
    let mut opening = tokio::spawn(open_and_build(
        cfg.clone(),
        engine,
        tls.is_some(),
        local,
        phase.clone(),
    ));
    let mut running: Option<Running> = None;

    // sendfile needs blobs as local files: blobs in an S3-compatible store have none.
    let zero_copy_on = cfg.zero_copy && cfg.blobs.is_none();
    let limits = cfg.limits;
    // One permit per open connection: past the cap a connection is closed at once, so no
    // client can hold every file descriptor.
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = Box::pin(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let Ok(connection_permit) = connections.clone().try_acquire_owned() else {
                    metrics::counter!("fsgate_connections_refused_total").increment(1);
                    drop(stream);
                    continue;
                };
                // Without TCP_NODELAY every small response waits ~40 ms for a delayed ACK.
                let _ = stream.set_nodelay(true);
                // Plain TCP: downloads go out with sendfile through the connection's writer.
                let zero_copy = if tls.is_none() && zero_copy_on {
                    s3::zero_copy::ZeroCopy::for_socket(&stream)
                        .inspect_err(|e| tracing::warn!(error = %e, "zero-copy unavailable on a connection"))
                        .ok()
                } else {
                    None
                };
                let stream = match &zero_copy {
                    Some(zc) => Connection::ZeroCopy(zc.io(stream)),
                    None => Connection::Plain(stream),
                };
                let phase = phase.clone();
                let clock = server::connection::ConnectionClock::new();
                let request_clock = clock.clone();
                let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    if let Some(zc) = &zero_copy {
                        zc.reset();
                        req.extensions_mut().insert(zc.clone());
                    }
                    let in_flight = server::connection::InFlight::start(&request_clock);
                    let now = phase.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                    async move {
                        let resp = match now {
                            Phase::Serving(front) => front.handle(req, remote).await,
                            Phase::Opening(reason) => Ok(server::starting_response(&req, &reason)),
                        };
                        resp.map(|r| r.map(|body| body.in_flight(in_flight)))
                    }
                });
                // Watched: on shutdown, idle connections close and busy ones finish their request.
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _connection_permit = connection_permit;
                    let http = http1::Builder::new()
                        .keep_alive(true)
                        // A request line and headers past this get 431 (at most 100 headers:
                        // hyper's own cap, kept where it is cheapest).
                        .max_header_size(limits.max_header_bytes)
                        // A client that half-closes after its request still gets the response.
                        .half_close(true)
                        .clone();
                    // Headers must arrive in time, and an idle keep-alive connection is
                    // closed after the same time (slowloris): dropping the connection closes it.
                    let idle = clock.idle_past(limits.header_timeout);
                    let served = match (tls, stream) {
                        (_, Connection::ZeroCopy(io)) => tokio::select! {
                            r = watcher.watch(http.serve_connection(TokioIo::new(io), svc)) => r,
                            () = idle => Ok(()),
                        },
                        (None, Connection::Plain(stream)) => tokio::select! {
                            r = watcher.watch(http.serve_connection(TokioIo::new(stream), svc)) => r,
                            () = idle => Ok(()),
                        },
                        (Some(tls), Connection::Plain(stream)) => {
                            let handshake = tokio::time::timeout(
                                server::tls::HANDSHAKE_TIMEOUT,
                                tls.acceptor().accept(stream),
                            )
                            .await;
                            match handshake {
                                Ok(Ok(s)) => tokio::select! {
                                    r = watcher.watch(http.serve_connection(TokioIo::new(s), svc)) => r,
                                    () = idle => Ok(()),
                                },
                                Ok(Err(e)) => {
                                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%remote, "TLS handshake timed out");
                                    return;
                                }
                            }
                        }
                    };
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection closed with error");
                    }
                });
            }
            opened = &mut opening, if running.is_none() => match opened {
                Ok(Ok(r)) => running = Some(r),
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(ServeError::Config(format!("start-up failed: {e}"))),
            },
            () = &mut shutdown => break,
        }
    }
    // Stop accepting, let in-flight requests finish (up to the timeout), then commit and sign
    // every audit record and close RocksDB.
    drop(listener);
    if running.is_none() {
        opening.abort();
    }
    tracing::info!(
        timeout_s = cfg.shutdown_timeout.as_secs(),
        "shutting down: draining requests"
    );
    if tokio::time::timeout(cfg.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout: closing the remaining connections");
    }
    set_phase(&phase, Phase::Opening("shutting down".into()));
    if let Some(r) = running {
        let a = r.audit.clone();
        // Every record committed and covered by a signed checkpoint.
        let _ = tokio::task::spawn_blocking(move || a.checkpoint()).await;
        drop(r);
        tracing::info!("audit flushed and signed; stopped");
    }
    Ok(())
}

/// On SIGHUP, reads the `--policies` directory again and puts it in force; a directory that
/// does not load (bad policy, bad schema) is logged with file, line and reason, and the running
/// set stays in force.
fn spawn_policy_reload(
    dir: Option<std::path::PathBuf>,
    store: Arc<Store>,
    iam: Arc<identity::iam::Iam>,
) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let Some(dir) = dir.clone() else {
                tracing::info!("SIGHUP: the built-in policies are in use; nothing to reload");
                continue;
            };
            let (store, iam) = (store.clone(), iam.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                let engine = load_policies(Some(&dir)).map_err(|e| e.to_string())?;
                iam.replace_base(&store, Arc::new(engine))
                    .map_err(|e| e.to_string())
            })
            .await;
            match outcome {
                Ok(Ok(())) => tracing::info!("SIGHUP: policies reloaded"),
                Ok(Err(e)) => tracing::error!(
                    error = %e,
                    "SIGHUP: policies not reloaded; the running set stays in force"
                ),
                Err(e) => tracing::error!(error = %e, "SIGHUP: policy reload panicked"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (dir, store, iam);
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_banner(
    cfg: &Config,
    local: SocketAddr,
    root: &identity::iam::RootCredentials,
    source: RootSource,
) {
    let mut out = format!(
        "fsgate {}\n  Endpoint:  {}://{local}\n  Data:      {}\n  RootUser:  {}\n",
        env!("CARGO_PKG_VERSION"),
        if cfg.tls.is_some() { "https" } else { "http" },
        cfg.data.display(),
        root.access_key
    );
    match source {
        RootSource::Generated => out.push_str(&format!(
            "  RootPass:  {}\n             (generated now and saved in {} with mode 0600; it is not printed again)\n",
            root.secret_key,
            cfg.data.join("root-credentials").display()
        )),
        RootSource::Saved => out.push_str(&format!(
            "  RootPass:  (saved in {})\n",
            cfg.data.join("root-credentials").display()
        )),
        RootSource::Environment => out.push_str("  RootPass:  (from the environment)\n"),
    }
    out.push_str(&format!(
        "  Try:       aws --endpoint-url http://{local} s3 ls\n"
    ));
    println!("{out}");
}
