//! `fsgate`: the server binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc rather than glibc malloc: request handling allocates on one worker thread and
/// frees on another (audit records go to the writer thread; bodies move between tasks), which
/// glibc serialises on its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fsgate",
    version,
    about = "S3-compatible storage gateway with Cedar policies and audit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "FSGATE_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// Log level (or RUST_LOG).
    #[arg(long, global = true, default_value = "info", env = "FSGATE_LOG_LEVEL")]
    log_level: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `fsgate serve` options.
#[derive(clap::Args)]
struct ServeArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9000", env = "FSGATE_ADDRESS")]
    address: SocketAddr,
    /// Data directory.
    #[arg(long, default_value = "./data", env = "FSGATE_DATA")]
    data: PathBuf,
    /// Metadata on PostgreSQL (`postgres://USER@HOST:PORT/DB`, or libpq's `key=value` form)
    /// instead of the embedded RocksDB under --data; blobs stay under --data.
    #[arg(long, env = "FSGATE_META")]
    meta: Option<String>,
    /// Blobs in a bucket of an S3-compatible store (`s3://BUCKET/PREFIX?endpoint=URL&region=R`;
    /// Ceph RGW, Garage, SeaweedFS, AWS S3, another fsgate) instead of files under --data.
    #[arg(long, env = "FSGATE_BLOBS")]
    blobs: Option<String>,
    /// Access key for --blobs.
    #[arg(long, env = "FSGATE_BLOBS_ACCESS_KEY", requires = "blobs")]
    blobs_access_key: Option<String>,
    /// Secret key for --blobs.
    #[arg(
        long,
        env = "FSGATE_BLOBS_SECRET_KEY",
        hide_env_values = true,
        requires = "blobs"
    )]
    blobs_secret_key: Option<String>,
    /// Directory of Cedar policies (default: the built-in copy of policies/).
    #[arg(long, env = "FSGATE_POLICIES")]
    policies: Option<PathBuf>,
    /// Base domain for virtual-hosted-style requests (bucket.DOMAIN).
    #[arg(long, env = "FSGATE_DOMAIN")]
    domain: Option<String>,
    /// Seconds SIGTERM/SIGINT waits for in-flight requests before closing connections.
    #[arg(long, default_value_t = 30, env = "FSGATE_SHUTDOWN_TIMEOUT")]
    shutdown_timeout: u64,
    /// Seconds between lifecycle passes (bucket expiration rules); 0 turns the worker off.
    #[arg(long, default_value_t = 3600, env = "FSGATE_LIFECYCLE_INTERVAL")]
    lifecycle_interval: u64,
    /// Seconds between scrubs (every blob and inline object re-read and checked against what
    /// was written); 0 turns them off. `fsctl admin scrub` runs one now.
    #[arg(long, default_value_t = 7 * 24 * 3600, env = "FSGATE_SCRUB_INTERVAL")]
    scrub_interval: u64,
    /// MiB per second a scheduled scrub reads at most.
    #[arg(long, default_value_t = 32.0, env = "FSGATE_SCRUB_RATE")]
    scrub_rate: f64,
    /// Seconds a share link lives when `fsctl share create` gives no --ttl.
    #[arg(long, default_value_t = 24 * 3600, env = "FSGATE_SHARE_DEFAULT_TTL")]
    share_default_ttl: u64,
    /// The longest lifetime a share link may have, in seconds.
    #[arg(long, default_value_t = 7 * 24 * 3600, env = "FSGATE_SHARE_MAX_TTL")]
    share_max_ttl: u64,
    /// Seconds between server access log deliveries (PutBucketLogging); 0 turns them off.
    #[arg(long, default_value_t = 60, env = "FSGATE_ACCESS_LOG_INTERVAL")]
    access_log_interval: u64,
    /// An external KMS for SSE-KMS keys: HashiCorp Vault's (or OpenBao's) address; its token
    /// comes from FSGATE_KMS_VAULT_TOKEN or VAULT_TOKEN.
    #[arg(long, env = "FSGATE_KMS_VAULT")]
    kms_vault: Option<String>,
    /// The mount path of Vault's transit engine.
    #[arg(long, default_value = "transit", env = "FSGATE_KMS_VAULT_MOUNT")]
    kms_vault_mount: String,
    /// Seconds between openings of the keys Vault seals (a key Vault stops opening becomes
    /// unusable at the next one).
    #[arg(long, default_value_t = 60, env = "FSGATE_KMS_VAULT_REFRESH")]
    kms_vault_refresh: u64,
    /// Proxies (addresses or networks, comma-separated) whose X-Forwarded-For / Forwarded
    /// headers name the client; from anyone else those headers are ignored.
    #[arg(long, default_value = "", env = "FSGATE_TRUSTED_PROXIES")]
    trusted_proxies: String,
    /// The region the buckets are in (GetBucketLocation, HeadBucket, ListBuckets).
    #[arg(long, default_value = "us-east-1", env = "FSGATE_REGION")]
    region: String,
    /// Bearer token required by /metrics (open while unset).
    #[arg(long, env = "FSGATE_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// /health/ready fails while free space in the data directory is below this (bytes).
    #[arg(long, default_value_t = 256 << 20, env = "FSGATE_MIN_FREE_SPACE")]
    min_free_space: u64,
    /// The Ed25519 key (PKCS#8 PEM) that signs the audit log's checkpoints; by default
    /// DATA/audit-signing-key.pem, created (0600) the first time. `fsctl audit pubkey` prints
    /// its public half.
    #[arg(long, env = "FSGATE_AUDIT_SIGNING_KEY")]
    audit_signing_key: Option<PathBuf>,
    /// A webhook that receives every audit record as it commits, in MinIO's audit format
    /// (token, if any, in FSGATE_AUDIT_WEBHOOK_AUTH_TOKEN); MINIO_AUDIT_WEBHOOK_* work too.
    #[arg(long, env = "FSGATE_AUDIT_WEBHOOK")]
    audit_webhook: Option<String>,
    /// An OpenTelemetry collector (OTLP/HTTP, e.g. http://collector:4318) that receives every
    /// audit record, as it commits, as an OTLP log record (bearer token, if any, in
    /// FSGATE_AUDIT_OTLP_TOKEN).
    #[arg(long, env = "FSGATE_AUDIT_OTLP")]
    audit_otlp: Option<String>,
    /// `off` stops writing audit records. It exists only to measure what auditing costs
    /// (benchmarks); never run without an audit trail otherwise.
    #[arg(long, default_value = "on", value_parser = ["on", "off"], env = "FSGATE_AUDIT")]
    audit: String,
    /// `on`: plain-HTTP downloads go from the page cache to the socket with sendfile, never
    /// through user space; `off` reads them into buffers as HTTPS connections always do.
    #[arg(long, default_value = "on", value_parser = ["on", "off"], env = "FSGATE_ZERO_COPY")]
    zero_copy: String,
    /// `on`: uploads of 1 MiB and more are written past the page cache (`O_DIRECT`, where the
    /// file system allows it): large uploads use less CPU, but the first read of a new object
    /// comes from the disk. For write-mostly use such as backups.
    #[arg(long, default_value = "off", value_parser = ["on", "off"], env = "FSGATE_DIRECT_WRITES")]
    direct_writes: String,
    /// Also count requests and bytes per bucket (bucket names become metric labels).
    #[arg(long, env = "FSGATE_METRICS_PER_BUCKET")]
    metrics_per_bucket: bool,
    /// Serve HTTPS with DIR/public.crt and DIR/private.key (MinIO's layout).
    #[arg(long, env = "FSGATE_CERTS_DIR", conflicts_with_all = ["tls_cert", "tls_key"])]
    certs_dir: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "FSGATE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "FSGATE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds a connection may take to send a request's headers, and stay idle between
    /// requests, before it is closed.
    #[arg(long, default_value_t = 30, env = "FSGATE_HEADER_TIMEOUT")]
    header_timeout: u64,
    /// Seconds a request body may send nothing before the request fails (RequestTimeout).
    #[arg(long, default_value_t = 60, env = "FSGATE_BODY_TIMEOUT")]
    body_timeout: u64,
    /// Most connections open at once; one more is closed as soon as it is accepted.
    #[arg(long, default_value_t = 4096, env = "FSGATE_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Bytes of request bodies all requests together may hold in memory before they are
    /// decided (POST form uploads, XML bodies); past it, a request gets 503 SlowDown.
    #[arg(long, default_value_t = 256 << 20, env = "FSGATE_PRE_DECISION_MEMORY")]
    pre_decision_memory: usize,
    /// S3 requests in flight at once; past it a request gets 503 SlowDown with Retry-After
    /// before any work (0: no cap).
    #[arg(long, default_value_t = 1024, env = "FSGATE_MAX_REQUESTS")]
    max_requests: usize,
    /// Requests a second one client address may send (a second's worth at once, then at this
    /// rate); past it, 503 SlowDown with Retry-After (0: no limit).
    #[arg(long, default_value_t = 0, env = "FSGATE_RATE_LIMIT_PER_SOURCE")]
    rate_limit_per_source: u32,
    /// Requests a second one authenticated principal may send; past it, 503 SlowDown with
    /// Retry-After (0: no limit).
    #[arg(long, default_value_t = 0, env = "FSGATE_RATE_LIMIT_PER_PRINCIPAL")]
    rate_limit_per_principal: u32,
    /// Bytes a request's line and headers may take together (at least 8192); past it, 431.
    #[arg(long, default_value_t = 64 << 10, env = "FSGATE_MAX_HEADER_BYTES")]
    max_header_bytes: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Serve S3 and the admin API.
    Serve(Box<ServeArgs>),
    /// Validate a policy directory and exit.
    CheckPolicies {
        /// Directory of Cedar policies.
        dir: PathBuf,
    },
    /// Make a new data directory from a backup (`fsctl admin backup DIR`), then check it
    /// opens; start `fsgate serve --data DATA_DIR` on it.
    Restore {
        /// The backup directory.
        dir: PathBuf,
        /// The data directory to create (it must not exist, or be empty).
        #[arg(long)]
        data: PathBuf,
    },
    /// Check a stopped server's data directory: reference counts against manifests and parts,
    /// blobs on disk against references, inline bytes against their versions. Prints a JSON
    /// report; exits 1 when anything is wrong. Opening collects what a crash left behind
    /// (temporary files, unreferenced blobs), as a start does, and the check flushes the
    /// metadata's memtables to table files before it reads them: it writes, so run it on a
    /// copy to keep a data directory byte for byte.
    Check {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    // MinIO's command line (`fsgate server DIR`) and settings (MINIO_VOLUMES, MINIO_DOMAIN).
    let args = match fsgate::config::minio::command_line(std::env::args_os().collect(), |k| {
        std::env::var(k).ok()
    }) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fsgate: {e}");
            std::process::exit(2);
        }
    };
    let cli = Cli::parse_from(args);
    // s3s logs whole requests at debug (Authorization headers, presigned query strings): those
    // targets stay quiet whatever RUST_LOG or --log-level ask, so secrets never reach the logs.
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log_level.clone());
    let filter = || {
        tracing_subscriber::EnvFilter::try_new(format!(
            "{base},s3s::service=info,s3s::ops=off,s3s::auth=info,s3s::sig_v4=info,s3s::sig_v2=info"
        ))
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,s3s::service=info,s3s::ops=off")
        })
    };
    // Traces go to an OTLP collector only when one is named.
    let otlp = fsgate::telemetry::traces::endpoint_from_env(|k| std::env::var(k).ok());
    let (otel_layer, provider) = match otlp.as_deref().map(fsgate::telemetry::traces::provider) {
        Some(Ok(p)) => (Some(fsgate::telemetry::traces::layer(&p)), Some(p)),
        Some(Err(e)) => {
            eprintln!("fsgate: OTLP exporter: {e}");
            std::process::exit(1);
        }
        None => (None, None),
    };
    if otel_layer.is_some() {
        fsgate::telemetry::traces::set_exporting();
    }
    {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::filter::FilterExt as _;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        // Each layer has its own filter, so a span no layer wants is never built: without a
        // collector the inner spans (authenticate, policy, store, audit_enqueue), which only
        // traces use, cost nothing. Log lines show the request span (its request id) around
        // them; formatting the inner spans' fields for every request cost the log layer more
        // than the lines it writes.
        let request_spans_only =
            tracing_subscriber::filter::filter_fn(|m| !m.is_span() || m.name() == "request");
        let logs = filter().and(request_spans_only);
        let registry =
            tracing_subscriber::registry().with(otel_layer.map(|l| l.with_filter(filter())));
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        match cli.log_format {
            LogFormat::Text => registry.with(fmt.with_filter(logs)).init(),
            LogFormat::Json => registry.with(fmt.json().with_filter(logs)).init(),
        }
    }
    if let Some(url) = &otlp {
        tracing::info!(endpoint = %url, "exporting traces over OTLP/HTTP");
    }
    let code = run(cli.command);
    // Flush the spans still queued (the exporter gives up on a dead collector by itself).
    if let Some(p) = provider {
        let _ = p.shutdown();
    }
    code
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let ServeArgs {
                address,
                data,
                policies,
                domain,
                shutdown_timeout,
                lifecycle_interval,
                scrub_interval,
                scrub_rate,
                access_log_interval,
                share_default_ttl,
                share_max_ttl,
                kms_vault,
                kms_vault_mount,
                kms_vault_refresh,
                trusted_proxies,
                region,
                metrics_token,
                min_free_space,
                certs_dir,
                tls_cert,
                tls_key,
                metrics_per_bucket,
                audit,
                audit_signing_key,
                audit_webhook,
                audit_otlp,
                zero_copy,
                direct_writes,
                meta,
                blobs,
                blobs_access_key,
                blobs_secret_key,
                header_timeout,
                body_timeout,
                max_connections,
                pre_decision_memory,
                max_requests,
                rate_limit_per_source,
                rate_limit_per_principal,
                max_header_bytes,
            } = *args;
            let tls = fsgate::server::tls::TlsFiles::from_args(
                certs_dir.as_deref(),
                tls_cert.as_deref(),
                tls_key.as_deref(),
            )?;
            let root_from_env = fsgate::config::root_from_env(|k| std::env::var(k).ok())?;
            let blobs = match (blobs, blobs_access_key, blobs_secret_key) {
                (None, ..) => None,
                (Some(url), Some(access_key), Some(secret_key)) => {
                    Some(fsgate::config::BlobsConfig {
                        url,
                        access_key,
                        secret_key,
                    })
                }
                (Some(_), ..) => anyhow::bail!(
                    "--blobs needs the store's keys: --blobs-access-key and --blobs-secret-key \
                     (FSGATE_BLOBS_ACCESS_KEY, FSGATE_BLOBS_SECRET_KEY)"
                ),
            };
            let cfg = fsgate::Config {
                address,
                data,
                policies,
                domain,
                root_from_env,
                shutdown_timeout: std::time::Duration::from_secs(shutdown_timeout),
                lifecycle_interval: std::time::Duration::from_secs(lifecycle_interval),
                scrub_interval: std::time::Duration::from_secs(scrub_interval),
                scrub_rate: if scrub_rate.is_finite() && scrub_rate > 0.0 {
                    scrub_rate
                } else {
                    anyhow::bail!("--scrub-rate: MiB per second, above 0")
                },
                access_log_interval: std::time::Duration::from_secs(access_log_interval),
                kms_vault: match kms_vault {
                    Some(endpoint) => Some(fsgate::VaultSettings {
                        endpoint,
                        mount: kms_vault_mount,
                        token: std::env::var("FSGATE_KMS_VAULT_TOKEN")
                            .or_else(|_| std::env::var("VAULT_TOKEN"))
                            .map_err(|_| {
                                anyhow::anyhow!(
                                    "--kms-vault needs a token in FSGATE_KMS_VAULT_TOKEN or VAULT_TOKEN"
                                )
                            })?,
                    }),
                    None => None,
                },
                kms_vault_refresh: std::time::Duration::from_secs(kms_vault_refresh.max(1)),
                trusted_proxies: fsgate::server::proxy::TrustedProxies::parse(&trusted_proxies)?,
                region,
                metrics_token,
                min_free_bytes: min_free_space,
                tls,
                metrics_per_bucket,
                audit: audit == "on",
                audit_signing_key,
                audit_webhook,
                audit_otlp,
                zero_copy: zero_copy == "on",
                direct_writes: direct_writes == "on",
                meta,
                blobs,
                limits: fsgate::server::limits::Limits {
                    header_timeout: std::time::Duration::from_secs(header_timeout.max(1)),
                    body_timeout: std::time::Duration::from_secs(body_timeout.max(1)),
                    max_connections: max_connections.max(1),
                    pre_decision_memory,
                    max_requests,
                    per_source_rate: rate_limit_per_source,
                    per_principal_rate: rate_limit_per_principal,
                    max_header_bytes: max_header_bytes.max(8192),
                },
                shares: fsgate::config::share_settings(share_default_ttl, share_max_ttl)?,
            };
            // Everything fsgate creates (data directory, RocksDB files with user secrets,
            // blobs, keys) is private to its user.
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            if let Err(e) = rt.block_on(fsgate::serve(cfg)) {
                eprintln!("fsgate: {e}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::CheckPolicies { dir } => match fsgate::load_policies(Some(&dir)) {
            Ok(e) => {
                println!("ok: {} policies", e.policy_ids().len());
                Ok(())
            }
            Err(e) => {
                eprintln!("fsgate: {e}");
                std::process::exit(1);
            }
        },
        Command::Restore { dir, data } => {
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            match fsgate_store::backup::restore(&dir, &data) {
                Ok(report) => {
                    println!("{}", serde_json::to_string(&report)?);
                    Ok(())
                }
                Err(e) => {
                    eprintln!(
                        "fsgate: restore {} into {}: {e}",
                        dir.display(),
                        data.display()
                    );
                    std::process::exit(1);
                }
            }
        }
        Command::Check { data } => {
            if !data.join("FORMAT").is_file() {
                eprintln!(
                    "fsgate: check {}: not an fsgate data directory",
                    data.display()
                );
                std::process::exit(2);
            }
            let report = fsgate_store::Store::open(&data, fsgate_store::StoreOptions::default())
                .and_then(|store| store.check());
            match report {
                Ok(report) => {
                    println!("{}", serde_json::to_string(&report)?);
                    if !report.is_clean() {
                        std::process::exit(1);
                    }
                    Ok(())
                }
                Err(e) => {
                    eprintln!("fsgate: check {}: {e}", data.display());
                    std::process::exit(2);
                }
            }
        }
    }
}
