//! `fsctl`: the operator's command-line client for fsgate. It speaks HTTP only: the admin API
//! under `/admin/v1/`, signed with SigV4 like any S3 request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod bench;

#[derive(Parser)]
#[command(
    name = "fsctl",
    version,
    about = "Operate an fsgate server: users, keys, groups, policies, audit"
)]
struct Cli {
    #[command(flatten)]
    conn: Conn,
    /// Machine-readable output: JSON (one object per line for lists).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Conn {
    /// A saved alias (see `fsctl alias set`).
    #[arg(long, global = true, env = "FSCTL_ALIAS")]
    alias: Option<String>,
    /// Server URL.
    #[arg(long, global = true, env = "FSCTL_ENDPOINT")]
    endpoint: Option<String>,
    /// Access key.
    #[arg(long, global = true, env = "FSCTL_ACCESS_KEY")]
    access_key: Option<String>,
    /// Secret key.
    #[arg(long, global = true, env = "FSCTL_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// PEM file of extra CA certificates to trust for https endpoints (besides the system's).
    #[arg(long, global = true, env = "FSCTL_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Saved connections.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// Access keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Groups.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Roles and Cedar policies attached to users and groups.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Bucket lifecycle rules.
    #[command(subcommand)]
    Lifecycle(LifecycleCmd),
    /// Operator helpers.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Identity providers (OpenID Connect, LDAP) that STS trusts.
    #[command(subcommand)]
    Idp(IdpCmd),
    /// Service accounts: keys owned by a user, optionally narrowed by a Cedar policy.
    #[command(subcommand)]
    Svcacct(SvcacctCmd),
    /// Load generator: put, get, delete or mixed workloads against any S3 endpoint.
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Print a Prometheus scrape job for this server (with the metrics token, when given).
    PrometheusConfig {
        /// The server's `--metrics-token`.
        #[arg(long, env = "FSGATE_METRICS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Scrape interval.
        #[arg(long, default_value = "15s")]
        interval: String,
    },
}

#[derive(Subcommand)]
enum LifecycleCmd {
    /// Apply every bucket's lifecycle rules now (the server also runs them periodically).
    Run {
        /// Apply them as of this time (RFC 3339 or Unix seconds), e.g. to catch up or test.
        #[arg(long)]
        now: Option<String>,
    },
}

#[derive(Subcommand)]
enum AliasCmd {
    /// Save NAME → URL with credentials.
    Set {
        name: String,
        url: String,
        #[arg(value_name = "ACCESS_KEY")]
        key: String,
        #[arg(value_name = "SECRET_KEY")]
        secret: String,
    },
    /// List aliases.
    Ls,
    /// Remove an alias.
    Rm { name: String },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user with one access key (printed once).
    Add { name: String },
    /// List users.
    Ls,
    /// Disable a user: every key, presigned URL and request of theirs is refused from now on.
    Disable { name: String },
    /// Enable a user again.
    Enable { name: String },
    /// Remove a user, its keys and its attachments.
    Rm { name: String },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Create another access key for a user.
    Create { user: String },
    /// List a user's access keys.
    Ls { user: String },
    /// Delete an access key.
    Rm {
        #[arg(value_name = "ACCESS_KEY")]
        key: String,
    },
    /// Refuse every signature, presigned URL and STS session made before TIME with USER's
    /// keys (and, for a federated `PROVIDER:USER`, tokens issued before it), or with one
    /// ACCESS_KEY only; signatures made after it still work. Delete the key too if it leaked.
    ///
    /// SigV2 presigned URLs carry no signing time, only an expiry up to 7 days ahead: for 7
    /// days after TIME every SigV2 presigned URL of what was revoked is refused, fresh ones
    /// included. Revoke one --access-key to spare the user's other keys, and presign with
    /// SigV4 (see the README) so that new links keep working.
    Revoke {
        #[arg(
            long,
            required_unless_present = "access_key",
            conflicts_with = "access_key"
        )]
        user: Option<String>,
        /// Revoke one access key instead of all of a user's.
        #[arg(long)]
        access_key: Option<String>,
        /// RFC 3339, Unix seconds, or `now`.
        #[arg(long)]
        before: String,
    },
}

#[derive(Subcommand)]
enum IdpCmd {
    /// Add (or replace) an identity provider.
    #[command(subcommand)]
    Add(IdpAdd),
    /// List identity providers.
    Ls,
    /// Remove an identity provider.
    Rm { name: String },
}

#[derive(Subcommand)]
enum IdpAdd {
    /// An OpenID Connect issuer (Keycloak, Dex, Entra ID, ...).
    Oidc {
        name: String,
        /// Issuer URL, exactly as in the tokens' `iss`.
        #[arg(long)]
        issuer: String,
        /// The client id tokens are issued to (`aud` or `azp`).
        #[arg(long)]
        client_id: String,
        /// Claim listing the user's groups (or roles).
        #[arg(long, default_value = "groups")]
        groups_claim: String,
        /// Claim naming the fsgate user.
        #[arg(long, default_value = "preferred_username")]
        user_claim: String,
        /// A claim copied to the principal's tags (`principal.getTag("…")`); repeatable.
        #[arg(long = "tag-claim")]
        tag_claims: Vec<String>,
    },
    /// An LDAP directory (OpenLDAP, Active Directory).
    Ldap {
        name: String,
        /// host:port.
        #[arg(long)]
        server: String,
        /// LDAPS (TLS from the first byte).
        #[arg(long, conflicts_with = "starttls")]
        tls: bool,
        /// StartTLS on the plain port.
        #[arg(long)]
        starttls: bool,
        /// Do not verify the server certificate (testing only).
        #[arg(long)]
        tls_insecure: bool,
        /// Service account that searches for users.
        #[arg(long)]
        bind_dn: String,
        #[arg(long, env = "FSCTL_LDAP_BIND_PASSWORD", hide_env_values = true)]
        bind_password: String,
        /// Where users are searched.
        #[arg(long)]
        user_base: String,
        /// `%s` is the (escaped) user name.
        #[arg(long, default_value = "(uid=%s)")]
        user_filter: String,
        /// Where groups are searched.
        #[arg(long)]
        group_base: String,
        /// `%d` is the user's (escaped) DN, `%s` the user name.
        #[arg(long, default_value = "(member=%d)")]
        group_filter: String,
        /// Attribute holding a group's name.
        #[arg(long, default_value = "cn")]
        group_attribute: String,
    },
}

#[derive(Subcommand)]
enum SvcacctCmd {
    /// Create a service account (the secret is printed once).
    Add {
        /// Owner (default: the caller).
        #[arg(long)]
        user: Option<String>,
        /// A Cedar policy file the account is limited to (within its owner's rights).
        #[arg(long)]
        policy: Option<PathBuf>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List service accounts (the caller's, or USER's).
    Ls {
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a service account: its key and every session made with it stop working.
    Rm {
        #[arg(value_name = "ACCESS_KEY")]
        key: String,
    },
}

#[derive(Subcommand)]
enum GroupCmd {
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Remove a user from a group.
    RmMember { group: String, user: String },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Attach a role (readonly, readwrite, writeonly, admin) or a Cedar policy file.
    Attach(AttachSpec),
    /// List attachments.
    Ls,
    /// Detach by id.
    Detach { id: String },
    /// Replace an attachment in place (same id): a new role scope or Cedar file. A bad policy
    /// is refused with the reason and the old one stays in force.
    Replace {
        id: String,
        #[command(flatten)]
        spec: AttachSpec,
    },
    /// Check a Cedar policy file against the server's schema (strict validation).
    Validate { file: PathBuf },
    /// May PRINCIPAL do ACTION on RESOURCE? Prints the decision and the deciding policies.
    Test {
        /// A user name, `root` or `anonymous`.
        #[arg(long)]
        principal: String,
        /// e.g. s3:GetObject.
        #[arg(long)]
        action: String,
        /// `bucket/key` for object actions, `bucket` for bucket actions.
        #[arg(long, default_value = "")]
        resource: String,
        /// Request context: ip=10.1.2.3, prefix=reports/, secure=true.
        #[arg(long, value_name = "KEY=VALUE")]
        context: Vec<String>,
    },
    /// Which users and groups may do ACTION on RESOURCE (root always may).
    WhoCan {
        #[arg(long)]
        action: String,
        #[arg(long, default_value = "")]
        resource: String,
    },
}

/// What `policy attach` and `policy replace` attach: a role or a Cedar file, to a user or group.
#[derive(Args)]
struct AttachSpec {
    #[arg(long, conflicts_with = "group", required_unless_present = "group")]
    user: Option<String>,
    #[arg(long)]
    group: Option<String>,
    #[arg(long, conflicts_with = "cedar", required_unless_present = "cedar")]
    role: Option<String>,
    /// A Cedar policy file (its principal is scoped to the user or group).
    #[arg(long)]
    cedar: Option<PathBuf>,
    /// Limit the role to one bucket.
    #[arg(long)]
    bucket: Option<String>,
    /// Limit the role to one prefix of that bucket.
    #[arg(long, requires = "bucket")]
    prefix: Option<String>,
}

impl AttachSpec {
    /// The admin API's JSON for it (the Cedar file read).
    fn body(self) -> Result<Value> {
        Ok(
            json!({"user": self.user, "group": self.group, "role": self.role,
                  "cedar": read_optional(self.cedar.as_deref())?,
                  "bucket": self.bucket, "prefix": self.prefix}),
        )
    }
}

/// The contents of a file, when one is named.
fn read_optional(path: Option<&std::path::Path>) -> Result<Option<String>> {
    path.map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
        .transpose()
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Query audit records (oldest first; the most recent LIMIT).
    Query {
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        bucket: Option<String>,
        #[arg(long)]
        key: Option<String>,
        /// RFC 3339 time or Unix seconds.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time or Unix seconds.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_parser = ["allow", "deny"])]
        decision: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Serialize, Deserialize, Clone)]
struct Alias {
    url: String,
    access_key: String,
    secret_key: String,
    /// Extra CA certificates for https (from `--ca-bundle`, not saved).
    #[serde(skip)]
    ca_bundle: Option<PathBuf>,
}

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// An http(s) client trusting the system's roots and the CA bundle, if any.
fn https_client(ca_bundle: Option<&std::path::Path>) -> Result<HttpsClient> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    // The system's roots (none when they cannot be read).
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_bundle {
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading {}", path.display()))?
        {
            roots
                .add(cert.with_context(|| format!("reading {}", path.display()))?)
                .with_context(|| format!("{}: bad certificate", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

fn config_path() -> PathBuf {
    if let Ok(dir) = std::env::var("FSCTL_CONFIG_DIR") {
        return PathBuf::from(dir).join("aliases.json");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home)
        .join(".config")
        .join("fsctl")
        .join("aliases.json")
}

fn load_aliases() -> Result<BTreeMap<String, Alias>> {
    match std::fs::read_to_string(config_path()) {
        Ok(t) => Ok(serde_json::from_str(&t).context("reading aliases")?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

fn save_aliases(a: &BTreeMap<String, Alias>) -> Result<()> {
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

impl Conn {
    fn resolve(&self) -> Result<Alias> {
        let base = match &self.alias {
            Some(name) => Some(
                load_aliases()?
                    .remove(name)
                    .ok_or_else(|| anyhow!("no alias '{name}'"))?,
            ),
            None => None,
        };
        let pick = |flag: &Option<String>, from: Option<String>, what: &str| -> Result<String> {
            flag.clone().or(from).ok_or_else(|| {
                anyhow!(
                    "no {what}: use --alias, --{what} or FSCTL_{}",
                    what.to_uppercase().replace('-', "_")
                )
            })
        };
        Ok(Alias {
            url: pick(
                &self.endpoint,
                base.as_ref().map(|b| b.url.clone()),
                "endpoint",
            )?,
            access_key: pick(
                &self.access_key,
                base.as_ref().map(|b| b.access_key.clone()),
                "access-key",
            )?,
            secret_key: pick(&self.secret_key, base.map(|b| b.secret_key), "secret-key")?,
            ca_bundle: self.ca_bundle.clone(),
        })
    }
}

/// What SigV4 (and S3) leave unencoded: letters, digits and `-_.~`. Encoding anything else
/// differently from the server's canonical form breaks the signature.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Signs a request with SigV4 as S3 expects it (single-encoded path, no normalization), after
/// setting its Host header from the URI.
pub(crate) fn sign_request<B>(
    conn: &Alias,
    req: &mut http::Request<B>,
    body: SignableBody<'_>,
) -> Result<()> {
    let url = req.uri().to_string();
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| anyhow!("bad endpoint {url}"))?;
    req.headers_mut().insert("host", host.parse()?);
    let identity = Credentials::new(&conn.access_key, &conn.secret_key, None, None, "fsctl").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    settings.uri_path_normalization_mode =
        aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        url.clone(),
        headers.into_iter(),
        body,
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

/// A Prometheus `scrape_configs` entry for the server at `url`.
fn prometheus_job(url: &str, token: Option<&str>, interval: &str) -> Result<String> {
    let u: http::Uri = url.parse().map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let scheme = u.scheme_str().unwrap_or("http");
    let host = u
        .authority()
        .map(ToString::to_string)
        .ok_or_else(|| anyhow::anyhow!("{url}: no host"))?;
    let mut out = format!(
        "scrape_configs:\n  - job_name: fsgate\n    scrape_interval: {interval}\n    metrics_path: /metrics\n    scheme: {scheme}\n    static_configs:\n      - targets: ['{host}']\n"
    );
    if let Some(t) = token {
        out.push_str(&format!(
            "    authorization:\n      type: Bearer\n      credentials: '{}'\n",
            t.replace('\'', "''")
        ));
    }
    Ok(out)
}

async fn call(
    conn: &Alias,
    method: &str,
    path_and_query: &str,
    body: Option<Value>,
) -> Result<Value> {
    let url = format!("{}{}", conn.url.trim_end_matches('/'), path_and_query);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("content-type", "application/json")
        .header("x-amz-content-sha256", sha256_hex(body.as_bytes()))
        .body(Full::new(Bytes::from(body.clone())))?;
    sign_request(conn, &mut req, SignableBody::Bytes(body.as_bytes()))?;
    let client = https_client(conn.ca_bundle.as_deref())?;
    let resp = client
        .request(req)
        .await
        .with_context(|| format!("connecting to {}", conn.url))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    if !status.is_success() {
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                Some(format!(
                    "{}: {}",
                    v.get("code")?.as_str()?,
                    v.get("message")?.as_str()?
                ))
            })
            .or_else(|| {
                let code = text
                    .split_once("<Code>")?
                    .1
                    .split_once("</Code>")?
                    .0
                    .to_owned();
                let msg = text
                    .split_once("<Message>")
                    .and_then(|(_, r)| r.split_once("</Message>"))
                    .map(|(m, _)| m)
                    .unwrap_or("");
                Some(format!("{code}: {msg}"))
            })
            .unwrap_or(text);
        bail!("{status}: {msg}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn sha256_hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(b);
    digest.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn print_rows(json_out: bool, rows: &[Value], cols: &[&str]) {
    if json_out {
        for r in rows {
            println!("{r}");
        }
        return;
    }
    let cell = |r: &Value, c: &str| -> String {
        match r.get(c) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "-".into(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            Some(v) => v.to_string(),
        }
    };
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: Vec<String>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(cols.iter().map(|c| c.to_uppercase()).collect()));
    for r in rows {
        println!("{}", line(cols.iter().map(|c| cell(r, c)).collect()));
    }
}

fn print_one(json_out: bool, v: &Value) {
    if json_out {
        println!("{v}");
    } else if let Some(o) = v.as_object() {
        for (k, val) in o {
            let s = val.as_str().map_or_else(|| val.to_string(), str::to_owned);
            println!("{k}: {s}");
        }
    } else {
        println!("{v}");
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => vec![other],
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("fsctl: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let j = cli.json;
    if let Cmd::Alias(a) = &cli.cmd {
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
        return Ok(());
    }
    let c = cli.conn.resolve()?;
    match cli.cmd {
        Cmd::Alias(_) => {}
        Cmd::User(u) => match u {
            UserCmd::Add { name } => print_one(
                j,
                &call(&c, "POST", "/admin/v1/users", Some(json!({"name": name}))).await?,
            ),
            UserCmd::Ls => print_rows(
                j,
                &array(call(&c, "GET", "/admin/v1/users", None).await?),
                &["name", "enabled", "groups", "created"],
            ),
            UserCmd::Disable { name } => print_one(
                j,
                &call(
                    &c,
                    "POST",
                    &format!("/admin/v1/users/{}/disable", enc(&name)),
                    None,
                )
                .await?,
            ),
            UserCmd::Enable { name } => print_one(
                j,
                &call(
                    &c,
                    "POST",
                    &format!("/admin/v1/users/{}/enable", enc(&name)),
                    None,
                )
                .await?,
            ),
            UserCmd::Rm { name } => print_one(
                j,
                &call(
                    &c,
                    "DELETE",
                    &format!("/admin/v1/users/{}", enc(&name)),
                    None,
                )
                .await?,
            ),
        },
        Cmd::Key(k) => match k {
            KeyCmd::Create { user } => print_one(
                j,
                &call(
                    &c,
                    "POST",
                    &format!("/admin/v1/users/{}/keys", enc(&user)),
                    None,
                )
                .await?,
            ),
            KeyCmd::Ls { user } => print_rows(
                j,
                &array(
                    call(
                        &c,
                        "GET",
                        &format!("/admin/v1/users/{}/keys", enc(&user)),
                        None,
                    )
                    .await?,
                ),
                &["access_key", "user", "created"],
            ),
            KeyCmd::Rm { key } => print_one(
                j,
                &call(&c, "DELETE", &format!("/admin/v1/keys/{}", enc(&key)), None).await?,
            ),
            KeyCmd::Revoke {
                user,
                access_key,
                before,
            } => {
                let path = match (user, access_key) {
                    (Some(u), _) => format!("/admin/v1/users/{}/revoke", enc(&u)),
                    (None, Some(ak)) => format!("/admin/v1/keys/{}/revoke", enc(&ak)),
                    (None, None) => anyhow::bail!("give --user or --access-key"),
                };
                let out = call(&c, "POST", &path, Some(json!({"before": before}))).await?;
                if !j && let Some(until) = out.get("sigv2_presigned_refused_until") {
                    eprintln!(
                        "note: SigV2 presigned URLs of what was revoked are refused until {} (they carry no signing time); SigV4 ones signed from now on work.",
                        until.as_str().unwrap_or_default()
                    );
                }
                print_one(j, &out)
            }
        },
        Cmd::Idp(i) => match i {
            IdpCmd::Add(a) => {
                let (name, body) = match a {
                    IdpAdd::Oidc {
                        name,
                        issuer,
                        client_id,
                        groups_claim,
                        user_claim,
                        tag_claims,
                    } => (
                        name,
                        json!({"type": "oidc", "issuer": issuer, "client_id": client_id,
                               "groups_claim": groups_claim, "user_claim": user_claim,
                               "tag_claims": tag_claims}),
                    ),
                    IdpAdd::Ldap {
                        name,
                        server,
                        tls,
                        starttls,
                        tls_insecure,
                        bind_dn,
                        bind_password,
                        user_base,
                        user_filter,
                        group_base,
                        group_filter,
                        group_attribute,
                    } => {
                        let mode = if tls {
                            "tls"
                        } else if starttls {
                            "starttls"
                        } else {
                            "none"
                        };
                        (
                            name,
                            json!({"type": "ldap", "server": server, "tls": mode,
                                   "tls_insecure": tls_insecure, "bind_dn": bind_dn,
                                   "bind_password": bind_password, "user_base": user_base,
                                   "user_filter": user_filter, "group_base": group_base,
                                   "group_filter": group_filter, "group_attribute": group_attribute}),
                        )
                    }
                };
                print_one(
                    j,
                    &call(
                        &c,
                        "PUT",
                        &format!("/admin/v1/idps/{}", enc(&name)),
                        Some(body),
                    )
                    .await?,
                );
            }
            IdpCmd::Ls => print_rows(
                j,
                &array(call(&c, "GET", "/admin/v1/idps", None).await?),
                &["name", "type", "issuer", "client_id", "server", "user_base"],
            ),
            IdpCmd::Rm { name } => print_one(
                j,
                &call(
                    &c,
                    "DELETE",
                    &format!("/admin/v1/idps/{}", enc(&name)),
                    None,
                )
                .await?,
            ),
        },
        Cmd::Svcacct(sa) => match sa {
            SvcacctCmd::Add {
                user,
                policy,
                description,
            } => {
                let policy = read_optional(policy.as_deref())?;
                let mut body = json!({"policy": policy, "description": description});
                if let (Some(u), Some(o)) = (user, body.as_object_mut()) {
                    o.insert("user".into(), json!(u));
                }
                print_one(
                    j,
                    &call(&c, "POST", "/admin/v1/svcaccts", Some(body)).await?,
                );
            }
            SvcacctCmd::Ls { user } => {
                let path = match user {
                    Some(u) => format!("/admin/v1/svcaccts?user={}", enc(&u)),
                    None => "/admin/v1/svcaccts".into(),
                };
                print_rows(
                    j,
                    &array(call(&c, "GET", &path, None).await?),
                    &["access_key", "owner", "description", "created"],
                );
            }
            SvcacctCmd::Rm { key } => print_one(
                j,
                &call(
                    &c,
                    "DELETE",
                    &format!("/admin/v1/svcaccts/{}", enc(&key)),
                    None,
                )
                .await?,
            ),
        },
        Cmd::Group(g) => match g {
            GroupCmd::AddMember { group, user } => print_one(
                j,
                &call(
                    &c,
                    "PUT",
                    &format!("/admin/v1/groups/{}/members/{}", enc(&group), enc(&user)),
                    None,
                )
                .await?,
            ),
            GroupCmd::RmMember { group, user } => print_one(
                j,
                &call(
                    &c,
                    "DELETE",
                    &format!("/admin/v1/groups/{}/members/{}", enc(&group), enc(&user)),
                    None,
                )
                .await?,
            ),
        },
        Cmd::Policy(p) => match p {
            PolicyCmd::Attach(spec) => print_one(
                j,
                &call(&c, "POST", "/admin/v1/policies", Some(spec.body()?)).await?,
            ),
            PolicyCmd::Replace { id, spec } => print_one(
                j,
                &call(
                    &c,
                    "PUT",
                    &format!("/admin/v1/policies/{}", enc(&id)),
                    Some(spec.body()?),
                )
                .await?,
            ),
            PolicyCmd::Ls => print_rows(
                j,
                &array(call(&c, "GET", "/admin/v1/policies", None).await?),
                &["id", "user", "group", "role", "bucket", "prefix", "cedar"],
            ),
            PolicyCmd::Detach { id } => print_one(
                j,
                &call(
                    &c,
                    "DELETE",
                    &format!("/admin/v1/policies/{}", enc(&id)),
                    None,
                )
                .await?,
            ),
            PolicyCmd::Validate { file } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                print_one(
                    j,
                    &call(
                        &c,
                        "POST",
                        "/admin/v1/policy/validate",
                        Some(json!({"cedar": text})),
                    )
                    .await?,
                );
            }
            PolicyCmd::Test {
                principal,
                action,
                resource,
                context,
            } => {
                let mut ctx = serde_json::Map::new();
                for kv in context {
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| anyhow!("--context takes KEY=VALUE, not {kv}"))?;
                    let v = if k == "secure" {
                        json!(v == "true")
                    } else {
                        json!(v)
                    };
                    ctx.insert(k.to_owned(), v);
                }
                let body = json!({"principal": principal, "action": action, "resource": resource, "context": ctx});
                let r = call(&c, "POST", "/admin/v1/policy/test", Some(body)).await?;
                if j {
                    println!("{r}");
                } else {
                    let list = |k: &str| {
                        r.get(k)
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default()
                    };
                    println!(
                        "{}: {} {} {}",
                        r.get("decision")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_uppercase(),
                        principal,
                        action,
                        resource
                    );
                    println!("  deciding policies: {}", list("policies"));
                    let errors = list("errors");
                    if !errors.is_empty() {
                        println!("  errors: {errors}");
                    }
                }
            }
            PolicyCmd::WhoCan { action, resource } => {
                let r = call(
                    &c,
                    "POST",
                    "/admin/v1/policy/who-can",
                    Some(json!({"action": action, "resource": resource})),
                )
                .await?;
                if j {
                    println!("{r}");
                } else {
                    let mut rows = vec![
                        json!({"principal": "root", "kind": "root", "policies": ["root-all"]}),
                    ];
                    for u in r
                        .get("users")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                    {
                        rows.push(json!({"principal": u.get("user"), "kind": "user", "policies": u.get("policies")}));
                    }
                    for g in r
                        .get("groups")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                    {
                        rows.push(json!({"principal": g.get("group"), "kind": "group", "policies": g.get("policies")}));
                    }
                    print_rows(false, &rows, &["principal", "kind", "policies"]);
                }
            }
        },
        Cmd::Bench(args) => bench::run(&c, args, j).await?,
        Cmd::Admin(AdminCmd::PrometheusConfig { token, interval }) => {
            print!("{}", prometheus_job(&c.url, token.as_deref(), &interval)?);
        }
        Cmd::Lifecycle(LifecycleCmd::Run { now }) => {
            let body = now.map(|t| serde_json::json!({ "now": t }));
            let v = call(&c, "POST", "/admin/v1/lifecycle/run", body).await?;
            print_one(j, &v);
        }
        Cmd::Audit(AuditCmd::Query {
            principal,
            bucket,
            key,
            since,
            until,
            decision,
            limit,
        }) => {
            let mut q = vec![format!("limit={limit}")];
            for (k, v) in [
                ("principal", principal),
                ("bucket", bucket),
                ("key", key),
                ("since", since),
                ("until", until),
                ("decision", decision),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", enc(&v)));
                }
            }
            let rows =
                array(call(&c, "GET", &format!("/admin/v1/audit?{}", q.join("&")), None).await?);
            print_rows(
                j,
                &rows,
                &[
                    "time",
                    "principal",
                    "action",
                    "bucket",
                    "key",
                    "decision",
                    "status",
                    "error_code",
                    "policies",
                ],
            );
        }
    }
    Ok(())
}
