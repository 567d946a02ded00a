//! The command line: every command, subcommand and flag (clap).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::bench;

#[derive(Parser)]
#[command(
    name = "fsctl",
    version,
    about = "Operate an fsgate server: users, keys, groups, policies, audit"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) conn: Conn,
    /// Machine-readable output: JSON (one object per line for lists).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Args, Clone)]
pub(crate) struct Conn {
    /// A saved alias (see `fsctl alias set`).
    #[arg(long, global = true, env = "FSCTL_ALIAS")]
    pub(crate) alias: Option<String>,
    /// Server URL.
    #[arg(long, global = true, env = "FSCTL_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// Access key.
    #[arg(long, global = true, env = "FSCTL_ACCESS_KEY")]
    pub(crate) access_key: Option<String>,
    /// Secret key.
    #[arg(long, global = true, env = "FSCTL_SECRET_KEY", hide_env_values = true)]
    pub(crate) secret_key: Option<String>,
    /// PEM file of extra CA certificates to trust for https endpoints (besides the system's).
    #[arg(long, global = true, env = "FSCTL_CA_BUNDLE")]
    pub(crate) ca_bundle: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
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
    /// Share links: a URL to one file or folder with a lifetime, a use limit and a password,
    /// that anyone can open without an S3 client, until it is revoked.
    #[command(subcommand)]
    Share(ShareCmd),
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
    /// The KMS key ring SSE-KMS encrypts with.
    #[command(subcommand)]
    Kms(KmsCmd),
    /// Copy from another S3 server (a MinIO being replaced): buckets, versions, settings.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Load generator: put, get, delete or mixed workloads against any S3 endpoint.
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
pub(crate) enum ImportCmd {
    /// Copy buckets, every object version and their settings from any S3 endpoint; resumable,
    /// verified at the end.
    S3(crate::commands::import::ImportS3Args),
    /// Create the users, groups, policies and service accounts (with their keys) of MinIO's
    /// IAM export (`mc admin cluster iam export`); what cannot be translated is listed.
    Iam(crate::commands::import_iam::ImportIamArgs),
}

#[derive(Subcommand)]
pub(crate) enum AdminCmd {
    /// Print a Prometheus scrape job for this server (with the metrics token, when given).
    PrometheusConfig {
        /// The server's `--metrics-token`.
        #[arg(long, env = "FSGATE_METRICS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Scrape interval.
        #[arg(long, default_value = "15s")]
        interval: String,
    },
    /// Re-read every stored blob and inline object and check it against what was written
    /// (SHA-256 and chunk sums); what fails is quarantined, counted and audited. Prints
    /// `{"blobs", "bytes", "inline", "sums_added", "corrupt": [..], "seconds"}` with --json.
    Scrub {
        /// Read at most this many MiB per second (default: as fast as the disk goes).
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Have the server write an online, consistent backup of its store into DIR (a directory
    /// on the server's machine, outside its data directory); run again into the same DIR, it
    /// copies only new blobs. `fsgate restore DIR --data NEW_DATA_DIR` restores it.
    Backup {
        /// The backup directory (made absolute here, so give it as the server sees it).
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum LifecycleCmd {
    /// Apply every bucket's lifecycle rules now (the server also runs them periodically).
    Run {
        /// Apply them as of this time (RFC 3339 or Unix seconds), e.g. to catch up or test.
        #[arg(long)]
        now: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum AliasCmd {
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
pub(crate) enum UserCmd {
    /// Create a user with one access key (printed once): a new one, or one brought from
    /// elsewhere (an application's existing MinIO or AWS key).
    Add {
        name: String,
        #[command(flatten)]
        key: GivenKey,
    },
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
pub(crate) enum KeyCmd {
    /// Create another access key for a user (a new one, or one brought from elsewhere).
    Create {
        user: String,
        #[command(flatten)]
        key: GivenKey,
    },
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
pub(crate) enum KmsCmd {
    /// KMS keys: their material is sealed by the SSE master key.
    #[command(subcommand)]
    Key(KmsKeyCmd),
}

#[derive(Subcommand)]
pub(crate) enum KmsKeyCmd {
    /// Create a key (its id is what clients name in x-amz-server-side-encryption-aws-kms-key-id).
    Create { name: String },
    /// List keys.
    Ls,
    /// Disable a key: it encrypts nothing, and its objects cannot be read until enabled.
    Disable { name: String },
    /// Enable a disabled key.
    Enable { name: String },
    /// Give a key new material: new objects use it, existing ones keep theirs.
    Rotate { name: String },
}

#[derive(Subcommand)]
pub(crate) enum IdpCmd {
    /// Add (or replace) an identity provider.
    #[command(subcommand)]
    Add(IdpAdd),
    /// List identity providers.
    Ls,
    /// Remove an identity provider.
    Rm { name: String },
}

#[derive(Subcommand)]
pub(crate) enum IdpAdd {
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
pub(crate) enum SvcacctCmd {
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
        #[command(flatten)]
        key: GivenKey,
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
pub(crate) enum GroupCmd {
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Remove a user from a group.
    RmMember { group: String, user: String },
}

#[derive(Subcommand)]
pub(crate) enum PolicyCmd {
    /// Attach a role (readonly, readwrite, writeonly, admin, owner, diagnostics) or a Cedar policy file.
    Attach(AttachSpec),
    /// List attachments.
    Ls {
        /// Show the Cedar each custom policy is in force as (what an AWS IAM JSON policy
        /// became).
        #[arg(long)]
        cedar: bool,
    },
    /// Detach by id.
    Detach { id: String },
    /// Create or replace a named policy from a file (AWS IAM JSON or Cedar); every user and
    /// group holding it gets the new text at once.
    Create { name: String, file: PathBuf },
    /// List named policies (with the Cedar each is in force as).
    Named,
    /// Delete a named policy (detached everywhere).
    Rm { name: String },
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

/// An access key brought from elsewhere (both flags, or neither: a new key is made). The
/// global `--access-key`/`--secret-key` stay the caller's own credentials.
#[derive(Args)]
pub(crate) struct GivenKey {
    /// The access key to create (3-128 of A-Z a-z 0-9 . _ - + = @).
    #[arg(long, requires = "with_secret_key")]
    pub(crate) with_access_key: Option<String>,
    /// Its secret key (8-128 printable characters).
    #[arg(long, requires = "with_access_key")]
    pub(crate) with_secret_key: Option<String>,
}

impl GivenKey {
    /// Adds `access_key` and `secret_key` to a request body when given.
    pub(crate) fn add_to(self, body: &mut Value) {
        if let (Some(ak), Some(sk), Some(o)) = (
            self.with_access_key,
            self.with_secret_key,
            body.as_object_mut(),
        ) {
            o.insert("access_key".into(), json!(ak));
            o.insert("secret_key".into(), json!(sk));
        }
    }
}

/// What `policy attach` and `policy replace` attach: a role or a Cedar file, to a user or group.
#[derive(Args)]
pub(crate) struct AttachSpec {
    #[arg(long, conflicts_with = "group", required_unless_present = "group")]
    pub(crate) user: Option<String>,
    #[arg(long)]
    pub(crate) group: Option<String>,
    #[arg(
        long,
        conflicts_with_all = ["cedar", "named"],
        required_unless_present_any = ["cedar", "named"]
    )]
    pub(crate) role: Option<String>,
    /// A Cedar policy file (its principal is scoped to the user or group).
    #[arg(long, conflicts_with = "named")]
    pub(crate) cedar: Option<PathBuf>,
    /// A named policy (`fsctl policy create`), attached by name: its later changes apply.
    #[arg(long)]
    pub(crate) named: Option<String>,
    /// Limit the role to one bucket.
    #[arg(long)]
    pub(crate) bucket: Option<String>,
    /// Limit the role to one prefix of that bucket.
    #[arg(long, requires = "bucket")]
    pub(crate) prefix: Option<String>,
}

impl AttachSpec {
    /// The admin API's JSON for it (the Cedar file read).
    pub(crate) fn body(self) -> Result<Value> {
        Ok(
            json!({"user": self.user, "group": self.group, "role": self.role,
                  "cedar": read_optional(self.cedar.as_deref())?,
                  "policy_name": self.named,
                  "bucket": self.bucket, "prefix": self.prefix}),
        )
    }
}

/// The contents of a file, when one is named.
pub(crate) fn read_optional(path: Option<&std::path::Path>) -> Result<Option<String>> {
    path.map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
        .transpose()
}

#[derive(Subcommand)]
pub(crate) enum AuditCmd {
    /// Query audit records (oldest first; the most recent LIMIT).
    Query {
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        bucket: Option<String>,
        #[arg(long)]
        key: Option<String>,
        /// One request's record (its `x-amz-request-id`).
        #[arg(long)]
        request_id: Option<String>,
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
    /// Export the records of a time range as JSON Lines (or CloudTrail-shaped JSON), with the
    /// signed checkpoints that cover them: what `fsctl audit verify --file` checks.
    Export {
        /// RFC 3339 time or Unix seconds (default: the log's start).
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time or Unix seconds (default: now).
        #[arg(long)]
        until: Option<String>,
        /// The file to write (`-`: standard output).
        #[arg(long)]
        out: std::path::PathBuf,
        /// `jsonl`: the log's own lines (verifiable); `cloudtrail`: `{"Records": [...]}`.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "cloudtrail"])]
        format: String,
        /// Records asked for per request (tests use small pages).
        #[arg(long, hide = true, default_value_t = 50_000)]
        page_records: u64,
    },
    /// Check that the log was not changed: every record against the signed checkpoints.
    /// Without --file, the server's log (or its time range); exits non-zero when not ok.
    Verify {
        /// An exported log (JSON Lines) to check offline.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The public key (PEM, from `fsctl audit pubkey`); default: the server's.
        #[arg(long)]
        pubkey: Option<std::path::PathBuf>,
        /// A proof (from `fsctl audit prove --json`) to check instead of a log.
        #[arg(long, conflicts_with = "file")]
        proof: Option<std::path::PathBuf>,
        /// RFC 3339 time or Unix seconds (the server's log only).
        #[arg(long, conflicts_with_all = ["file", "proof"])]
        since: Option<String>,
        /// RFC 3339 time or Unix seconds (the server's log only).
        #[arg(long, conflicts_with_all = ["file", "proof"])]
        until: Option<String>,
    },
    /// Prove that a request's record is in the log (inclusion against the latest checkpoint,
    /// consistency from the first checkpoint that covered it), or that the log of an earlier
    /// checkpoint is a prefix of a later one's (--old-size).
    Prove {
        /// The request (its x-amz-request-id).
        #[arg(long, required_unless_present = "old_size")]
        request_id: Option<String>,
        /// The size of an earlier checkpoint: prove the log then is a prefix of the log now.
        #[arg(long, conflicts_with = "request_id")]
        old_size: Option<u64>,
        /// With --old-size: the later checkpoint's size (default: the latest).
        #[arg(long, requires = "old_size")]
        new_size: Option<u64>,
        /// The public key to check the proof with (default: the server's).
        #[arg(long)]
        pubkey: Option<std::path::PathBuf>,
    },
    /// Print the public key (PEM) that verifies the log's checkpoints.
    Pubkey,
}

#[derive(Subcommand)]
pub(crate) enum ShareCmd {
    /// Make a link to BUCKET/KEY, or to a folder (BUCKET/PREFIX/), and print its URL.
    Create {
        /// BUCKET/KEY, or BUCKET/PREFIX/ for a folder.
        target: String,
        /// How long the link works, e.g. 30m, 24h, 7d (default: the server's, 24h).
        #[arg(long, value_parser = crate::bench::parse_duration)]
        ttl: Option<std::time::Duration>,
        /// How many downloads (uploads, for --upload-only) the link allows.
        #[arg(long)]
        max_downloads: Option<u64>,
        /// A password the recipient must give; without a value, one is generated and printed.
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        password: Option<String>,
        /// The link only accepts uploads (into the folder, or as the named key) and shows
        /// nothing; an upload never replaces an existing object.
        #[arg(long)]
        upload_only: bool,
        /// The largest upload the link accepts, e.g. 100MiB.
        #[arg(long, requires = "upload_only", value_parser = crate::bench::parse_size)]
        max_size: Option<usize>,
        /// A label for your own listings.
        #[arg(long)]
        label: Option<String>,
    },
    /// List share links: yours, or one user's (--user); root sees every link.
    Ls {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a link by id, every link to an object (--object), or every link of a user (--user).
    Revoke {
        /// The link's id.
        #[arg(required_unless_present_any = ["object", "user"], conflicts_with_all = ["object", "user"])]
        id: Option<String>,
        /// BUCKET/KEY (or BUCKET/PREFIX/ for folder links).
        #[arg(long, conflicts_with = "user")]
        object: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
}
