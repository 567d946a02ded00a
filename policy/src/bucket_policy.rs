//! Bucket policies: AWS IAM policy documents (JSON) translated to Cedar when they are written,
//! or native Cedar text, both then scoped to their bucket by the engine
//! (`PolicyEngine::with_bucket_policies`).
//!
//! The translation is all or nothing: anything it cannot express faithfully (NotAction,
//! NotPrincipal, `?` wildcards, unknown condition keys or operators, an action that applies to
//! none of the statement's resources) is an error naming the statement, never dropped. Names
//! and values enter the Cedar text only through `lit`, which escapes them as Cedar string
//! literals.

use serde_json::Value;

use crate::actions::{Action, ResourceKind};

/// A bucket policy as Cedar, with what GetBucketPolicyStatus reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// Cedar policies (not yet scoped to the bucket).
    pub cedar: String,
    /// Some statement allows anyone, unconditionally.
    pub public: bool,
}

/// Why a bucket policy document cannot be used, worded for whoever wrote it: S3 sends it as
/// the message of `MalformedPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPolicy(String);

impl From<String> for MalformedPolicy {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

impl From<&str> for MalformedPolicy {
    fn from(reason: &str) -> Self {
        Self(reason.to_owned())
    }
}

/// IAM action names and the fsgate actions each one covers.
const IAM_ACTIONS: &[(&str, &[Action])] = &[
    (
        "s3:GetObject",
        &[
            Action::GetObject,
            Action::HeadObject,
            Action::GetObjectAttributes,
        ],
    ),
    (
        "s3:GetObjectVersion",
        &[Action::GetObjectVersion, Action::GetObjectAttributes],
    ),
    ("s3:GetObjectAttributes", &[Action::GetObjectAttributes]),
    ("s3:GetObjectTagging", &[Action::GetObjectTagging]),
    ("s3:GetObjectVersionTagging", &[Action::GetObjectTagging]),
    ("s3:GetObjectRetention", &[Action::GetObjectRetention]),
    ("s3:GetObjectLegalHold", &[Action::GetObjectLegalHold]),
    ("s3:GetObjectAcl", &[Action::GetObjectAcl]),
    ("s3:GetObjectVersionAcl", &[Action::GetObjectAcl]),
    (
        "s3:PutObject",
        &[
            Action::PutObject,
            Action::CopyObject,
            Action::CreateMultipartUpload,
            Action::UploadPart,
            Action::UploadPartCopy,
            Action::CompleteMultipartUpload,
        ],
    ),
    ("s3:DeleteObject", &[Action::DeleteObject]),
    ("s3:DeleteObjectVersion", &[Action::DeleteObjectVersion]),
    ("s3:PutObjectTagging", &[Action::PutObjectTagging]),
    ("s3:PutObjectVersionTagging", &[Action::PutObjectTagging]),
    ("s3:DeleteObjectTagging", &[Action::DeleteObjectTagging]),
    (
        "s3:DeleteObjectVersionTagging",
        &[Action::DeleteObjectTagging],
    ),
    ("s3:PutObjectRetention", &[Action::PutObjectRetention]),
    ("s3:PutObjectLegalHold", &[Action::PutObjectLegalHold]),
    (
        "s3:BypassGovernanceRetention",
        &[Action::BypassGovernanceRetention],
    ),
    ("s3:PutObjectAcl", &[Action::PutObjectAcl]),
    ("s3:PutObjectVersionAcl", &[Action::PutObjectAcl]),
    ("s3:AbortMultipartUpload", &[Action::AbortMultipartUpload]),
    ("s3:ListMultipartUploadParts", &[Action::ListParts]),
    (
        "s3:ListBucket",
        &[
            Action::ListObjects,
            Action::ListObjectsV2,
            Action::HeadBucket,
        ],
    ),
    ("s3:ListBucketVersions", &[Action::ListObjectVersions]),
    (
        "s3:ListBucketMultipartUploads",
        &[Action::ListMultipartUploads],
    ),
    ("s3:GetBucketLocation", &[Action::GetBucketLocation]),
    ("s3:GetBucketVersioning", &[Action::GetBucketVersioning]),
    ("s3:PutBucketVersioning", &[Action::PutBucketVersioning]),
    ("s3:GetBucketTagging", &[Action::GetBucketTagging]),
    (
        "s3:PutBucketTagging",
        &[Action::PutBucketTagging, Action::DeleteBucketTagging],
    ),
    ("s3:GetBucketCORS", &[Action::GetBucketCors]),
    (
        "s3:PutBucketCORS",
        &[Action::PutBucketCors, Action::DeleteBucketCors],
    ),
    (
        "s3:GetLifecycleConfiguration",
        &[Action::GetBucketLifecycleConfiguration],
    ),
    (
        "s3:PutLifecycleConfiguration",
        &[
            Action::PutBucketLifecycleConfiguration,
            Action::DeleteBucketLifecycle,
        ],
    ),
    (
        "s3:GetEncryptionConfiguration",
        &[Action::GetBucketEncryption],
    ),
    (
        "s3:PutEncryptionConfiguration",
        &[Action::PutBucketEncryption, Action::DeleteBucketEncryption],
    ),
    (
        "s3:GetBucketObjectLockConfiguration",
        &[Action::GetObjectLockConfiguration],
    ),
    (
        "s3:PutBucketObjectLockConfiguration",
        &[Action::PutObjectLockConfiguration],
    ),
    ("s3:GetBucketPolicy", &[Action::GetBucketPolicy]),
    ("s3:PutBucketPolicy", &[Action::PutBucketPolicy]),
    ("s3:DeleteBucketPolicy", &[Action::DeleteBucketPolicy]),
    ("s3:GetBucketPolicyStatus", &[Action::GetBucketPolicyStatus]),
    ("s3:GetBucketAcl", &[Action::GetBucketAcl]),
    ("s3:PutBucketAcl", &[Action::PutBucketAcl]),
    (
        "s3:GetBucketOwnershipControls",
        &[Action::GetBucketOwnershipControls],
    ),
    (
        "s3:PutBucketOwnershipControls",
        &[
            Action::PutBucketOwnershipControls,
            Action::DeleteBucketOwnershipControls,
        ],
    ),
    ("s3:DeleteBucket", &[Action::DeleteBucket]),
    ("s3:GetBucketWebsite", &[Action::GetBucketWebsite]),
    ("s3:DeleteBucketWebsite", &[Action::DeleteBucketWebsite]),
    (
        "s3:GetAccelerateConfiguration",
        &[Action::GetBucketAccelerateConfiguration],
    ),
    (
        "s3:GetBucketRequestPayment",
        &[Action::GetBucketRequestPayment],
    ),
    (
        "s3:GetReplicationConfiguration",
        &[Action::GetBucketReplication],
    ),
    (
        "s3:PutReplicationConfiguration",
        &[Action::DeleteBucketReplication],
    ),
    ("s3:GetBucketLogging", &[Action::GetBucketLogging]),
    ("s3:PutBucketLogging", &[Action::PutBucketLogging]),
    (
        "s3:GetBucketNotification",
        &[Action::GetBucketNotificationConfiguration],
    ),
    (
        "s3:GetBucketPublicAccessBlock",
        &[Action::GetPublicAccessBlock],
    ),
    (
        "s3:PutBucketPublicAccessBlock",
        &[
            Action::PutPublicAccessBlock,
            Action::DeletePublicAccessBlock,
        ],
    ),
    (
        "s3:GetAnalyticsConfiguration",
        &[
            Action::GetBucketAnalyticsConfiguration,
            Action::ListBucketAnalyticsConfigurations,
        ],
    ),
    (
        "s3:PutAnalyticsConfiguration",
        &[Action::DeleteBucketAnalyticsConfiguration],
    ),
    (
        "s3:GetIntelligentTieringConfiguration",
        &[
            Action::GetBucketIntelligentTieringConfiguration,
            Action::ListBucketIntelligentTieringConfigurations,
        ],
    ),
    (
        "s3:PutIntelligentTieringConfiguration",
        &[Action::DeleteBucketIntelligentTieringConfiguration],
    ),
    (
        "s3:GetInventoryConfiguration",
        &[
            Action::GetBucketInventoryConfiguration,
            Action::ListBucketInventoryConfigurations,
        ],
    ),
    (
        "s3:PutInventoryConfiguration",
        &[Action::DeleteBucketInventoryConfiguration],
    ),
    (
        "s3:GetMetricsConfiguration",
        &[
            Action::GetBucketMetricsConfiguration,
            Action::ListBucketMetricsConfigurations,
        ],
    ),
    (
        "s3:PutMetricsConfiguration",
        &[Action::DeleteBucketMetricsConfiguration],
    ),
];

/// A Cedar string literal: every name and value goes through here.
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// A Cedar `like` pattern from an IAM pattern (`*` wildcards; `?` cannot be expressed).
fn like(pattern: &str) -> Result<String, MalformedPolicy> {
    if pattern.contains('?') {
        return Err(format!(
            "'{pattern}': the '?' wildcard cannot be translated to Cedar; use '*'"
        )
        .into());
    }
    let parts: Vec<String> = pattern
        .split('*')
        .map(|p| {
            let l = lit(p);
            l.get(1..l.len() - 1).unwrap_or_default().to_owned()
        })
        .collect();
    Ok(format!("\"{}\"", parts.join("*")))
}

/// IAM wildcard match (`*` any run, `?` one character), case-insensitive as IAM actions are.
fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let s: Vec<char> = s.to_ascii_lowercase().chars().collect();
    let (mut pi, mut si, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while si < s.len() {
        match p.get(pi) {
            Some('?') => {
                pi += 1;
                si += 1;
            }
            Some('*') => {
                star = Some(pi);
                mark = si;
                pi += 1;
            }
            Some(c) if Some(c) == s.get(si) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some(st) => {
                    pi = st + 1;
                    mark += 1;
                    si = mark;
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, MalformedPolicy> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(format!("{what} must be a string or a list of strings").into()),
    };
    match v {
        Value::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
        Value::Array(_) => Err(format!("{what} must not be empty").into()),
        x => Ok(vec![one(x)?]),
    }
}

fn actions_of(v: &Value) -> Result<Vec<Action>, MalformedPolicy> {
    let mut out: Vec<Action> = Vec::new();
    for pat in strings(v, "Action")? {
        let matched: Vec<&(&str, &[Action])> = IAM_ACTIONS
            .iter()
            .filter(|(name, _)| glob(&pat, name))
            .collect();
        if matched.is_empty() {
            return Err(format!("Policy has an invalid action: {pat}").into());
        }
        for (_, acts) in matched {
            for a in *acts {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
    }
    Ok(out)
}

/// The principals a statement names, as a Cedar condition (`None`: anyone). `deny`: the
/// statement's effect is Deny.
fn principal_of(v: &Value, deny: bool) -> Result<Option<String>, MalformedPolicy> {
    let list = match v {
        Value::String(s) if s == "*" => return Ok(None),
        Value::Object(m) => {
            if m.keys().any(|k| k != "AWS") {
                return Err(
                    "only AWS principals (users, the account root, or *) are supported".into(),
                );
            }
            let Some(aws) = m.get("AWS") else {
                return Err("Principal needs AWS".into());
            };
            strings(aws, "Principal")?
        }
        _ => return Err("Principal must be \"*\" or {\"AWS\": ...}".into()),
    };
    if list.iter().any(|p| p == "*") {
        return Ok(None);
    }
    let mut users = Vec::new();
    let mut root = false;
    for p in &list {
        if let Some(rest) = p.strip_prefix("arn:aws:iam::") {
            match rest.split_once(':') {
                Some((_, "root")) => root = true,
                Some((_, r)) if r.starts_with("user/") => {
                    let name = r.rsplit('/').next().unwrap_or_default();
                    users.push(format!("User::{}", lit(name)));
                }
                _ => return Err(format!("Invalid principal in policy: {p}").into()),
            }
        } else if p.is_empty() || p.contains(':') || p.contains('/') {
            return Err(format!("Invalid principal in policy: {p}").into());
        } else {
            users.push(format!("User::{}", lit(p)));
        }
    }
    let mut alts = Vec::new();
    if !users.is_empty() {
        alts.push(format!("principal in [{}]", users.join(", ")));
    }
    if root {
        // AWS: the account principal stands for the account. In a Deny it covers every
        // principal of the account (fsgate has one account: root and every user, local or
        // federated); in an Allow it delegates to the account's own grants, which is root's
        // access and nobody else's.
        alts.push(if deny {
            "(principal is Root || principal is User)".into()
        } else {
            "principal is Root".into()
        });
    }
    Ok(Some(format!("({})", alts.join(" || "))))
}

/// What a Resource names. In a bucket policy every resource is of its own bucket
/// (`bucket` None); an identity policy names buckets (`Some(name)`, or every bucket: `*`).
enum ResourceSpec {
    /// A bucket.
    Bucket(Option<String>),
    /// Objects of a bucket (`None`: the policy's own, or for `*`, any), by key pattern.
    Objects(Option<String>, String),
}

fn resources_of(v: &Value, bucket: Option<&str>) -> Result<Vec<ResourceSpec>, MalformedPolicy> {
    let mut out = Vec::new();
    for r in strings(v, "Resource")? {
        let Some(rest) = r.strip_prefix("arn:aws:s3:::") else {
            return Err(format!("Policy has invalid resource: {r}").into());
        };
        match (bucket, rest.split_once('/')) {
            (Some(b), None) if rest == b => out.push(ResourceSpec::Bucket(None)),
            (Some(b), Some((rb, key))) if rb == b => {
                out.push(ResourceSpec::Objects(None, key.to_owned()));
            }
            (Some(b), _) => {
                return Err(format!(
                    "Policy has invalid resource: {r} (a bucket policy covers only arn:aws:s3:::{b} and arn:aws:s3:::{b}/...)"
                ).into());
            }
            // Identity policies: `*` is everything, buckets by exact name (Cedar cannot
            // match a bucket's name against a pattern).
            (None, None) if rest == "*" => {
                out.push(ResourceSpec::Bucket(None));
                out.push(ResourceSpec::Objects(None, "*".into()));
            }
            (None, None) if !rest.contains(['*', '?']) && !rest.is_empty() => {
                out.push(ResourceSpec::Bucket(Some(rest.to_owned())));
            }
            (None, Some((rb, key))) if !rb.contains(['*', '?']) && !rb.is_empty() => {
                out.push(ResourceSpec::Objects(Some(rb.to_owned()), key.to_owned()));
            }
            (None, Some(("*", key))) => out.push(ResourceSpec::Objects(None, key.to_owned())),
            (None, _) => {
                return Err(format!(
                    "Policy has invalid resource: {r} (bucket names with wildcards other than arn:aws:s3:::* cannot be translated)"
                ).into());
            }
        }
    }
    Ok(out)
}

fn parse_cidr(s: &str) -> Result<(), MalformedPolicy> {
    let (addr, bits) = s.split_once('/').unwrap_or((s, ""));
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid IP address or CIDR: {s}"))?;
    if !bits.is_empty() {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match bits.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => return Err(format!("invalid CIDR prefix length: {s}").into()),
        }
    }
    Ok(())
}

fn epoch_of(s: &str) -> Result<i64, MalformedPolicy> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| format!("invalid date: {s} (RFC 3339 or Unix seconds)").into())
}

/// One condition block (operator → key → values) as a Cedar expression.
fn conditions_of(v: &Value) -> Result<Vec<String>, MalformedPolicy> {
    let Value::Object(ops) = v else {
        return Err("Condition must be an object".into());
    };
    let mut out = Vec::new();
    for (op, keys) in ops {
        let Value::Object(keys) = keys else {
            return Err(format!("Condition {op} must map keys to values").into());
        };
        for (key, values) in keys {
            let values = strings(values, key)?;
            out.push(condition(op, key, &values)?);
        }
    }
    Ok(out)
}

/// The string condition keys read from the request's context, and the context attribute
/// each is in (absent when the request does not carry it).
const CONTEXT_STRINGS: &[(&str, &str)] = &[
    ("s3:prefix", "prefix"),
    ("s3:delimiter", "delimiter"),
    ("s3:versionid", "version_id"),
    ("s3:x-amz-server-side-encryption", "server_side_encryption"),
    (
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "sse_kms_key_id",
    ),
    (
        "s3:x-amz-server-side-encryption-customer-algorithm",
        "sse_customer_algorithm",
    ),
    ("s3:x-amz-acl", "acl"),
    ("s3:x-amz-grant-read", "grant_read"),
    ("s3:x-amz-grant-write", "grant_write"),
    ("s3:x-amz-grant-read-acp", "grant_read_acp"),
    ("s3:x-amz-grant-write-acp", "grant_write_acp"),
    ("s3:x-amz-grant-full-control", "grant_full_control"),
    ("s3:x-amz-copy-source", "copy_source"),
    ("s3:x-amz-metadata-directive", "metadata_directive"),
    ("aws:useragent", "user_agent"),
    ("aws:referer", "referer"),
];

/// The context attribute of a string condition key (lower-cased).
fn context_string(k: &str) -> Option<&'static str> {
    CONTEXT_STRINGS
        .iter()
        .find(|(key, _)| *key == k)
        .map(|(_, attr)| *attr)
}

/// The Cedar test for whether a condition key is present in a request, for keys that can be
/// absent (`None` for keys every request carries: source IP, transport, time).
fn presence(key: &str) -> Option<String> {
    let k = key.to_ascii_lowercase();
    if let Some(attr) = context_string(&k) {
        Some(format!("context has {attr}"))
    } else if k == "s3:max-keys" {
        Some("context has max_keys".into())
    } else if let Some(tag) = k.strip_prefix("s3:existingobjecttag/") {
        let tag = key.get(key.len() - tag.len()..).unwrap_or(tag);
        Some(format!(
            "resource is Object && resource.hasTag({})",
            lit(tag)
        ))
    } else if let Some(tag) = k.strip_prefix("aws:principaltag/") {
        let tag = key.get(key.len() - tag.len()..).unwrap_or(tag);
        Some(format!(
            "principal is User && principal.hasTag({})",
            lit(tag)
        ))
    } else if let Some(tag) = k.strip_prefix("s3:requestobjecttag/") {
        let tag = key.get(key.len() - tag.len()..).unwrap_or(tag);
        Some(format!(
            "context has request_tags && context.request_tags.hasTag({})",
            lit(tag)
        ))
    } else if k == "s3:requestobjecttagkeys" {
        Some("context has request_tag_keys".into())
    } else {
        None
    }
}

/// Whether an operator is a negated one (true when the key is absent, as AWS evaluates them).
fn negated_operator(op: &str) -> bool {
    op.contains("Not")
}

/// `Null`: whether the key is absent ("true") or present ("false"). Keys every request
/// carries are never absent.
fn any_null(values: &[String], key: &str) -> Result<String, MalformedPolicy> {
    let parts = values
        .iter()
        .map(|v| match (v.to_ascii_lowercase().as_str(), presence(key)) {
            ("true", Some(guard)) => Ok(format!("!({guard})")),
            ("false", Some(guard)) => Ok(format!("({guard})")),
            ("true", None) => Ok("false".into()),
            ("false", None) => Ok("true".into()),
            _ => Err(format!("Null needs true or false, not {v}").into()),
        })
        .collect::<Result<Vec<String>, MalformedPolicy>>()?;
    Ok(format!("({})", parts.join(" || ")))
}

fn condition(op: &str, key: &str, values: &[String]) -> Result<String, MalformedPolicy> {
    // `...IfExists`: true when the key is absent, else the operator itself. Negated operators
    // are already true for an absent key; keys every request carries are never absent.
    if let Some(base) = op.strip_suffix("IfExists") {
        let inner = condition(base, key, values)?;
        return Ok(match presence(key) {
            Some(guard) if !negated_operator(base) => format!("(!({guard}) || {inner})"),
            _ => inner,
        });
    }
    let k = key.to_ascii_lowercase();
    // The one multivalued key: the tag keys a write asks for, compared as a set.
    if k == "s3:requestobjecttagkeys" {
        let list = format!(
            "[{}]",
            values.iter().map(|v| lit(v)).collect::<Vec<_>>().join(", ")
        );
        return match op {
            // At least one requested key is listed (false without tags).
            "ForAnyValue:StringEquals" => Ok(format!(
                "(context has request_tag_keys && context.request_tag_keys.containsAny({list}))"
            )),
            // Every requested key is listed (true without tags, as AWS evaluates it).
            "ForAllValues:StringEquals" => Ok(format!(
                "(if context has request_tag_keys then {list}.containsAll(context.request_tag_keys) else true)"
            )),
            "Null" => any_null(values, key),
            _ => Err(format!(
                "Policy has an invalid condition key or operator: {op} {key} (s3:RequestObjectTagKeys takes ForAnyValue:StringEquals, ForAllValues:StringEquals or Null)"
            )
            .into()),
        };
    }
    let any =
        |f: &dyn Fn(&str) -> Result<String, MalformedPolicy>| -> Result<String, MalformedPolicy> {
            let parts: Vec<String> = values.iter().map(|v| f(v)).collect::<Result<_, _>>()?;
            Ok(format!("({})", parts.join(" || ")))
        };
    let negated = |e: String| format!("!{e}");
    // Null: whether the key is absent ("true") or present ("false"). Keys every request
    // carries are never absent.
    if op == "Null" {
        return any_null(values, key);
    }
    // String-valued keys: the expression that reads the key (with its presence guard).
    // The tag key keeps its original case.
    let tag_of = |prefix: &str| {
        let tag = k.strip_prefix(prefix)?;
        Some(key.get(key.len() - tag.len()..).unwrap_or(tag).to_owned())
    };
    let read = if let Some(attr) = context_string(&k) {
        Some(format!("context.{attr}"))
    } else if let Some(tag) = tag_of("s3:existingobjecttag/") {
        Some(format!("resource.getTag({})", lit(&tag)))
    } else if let Some(tag) = tag_of("s3:requestobjecttag/") {
        Some(format!("context.request_tags.getTag({})", lit(&tag)))
    } else {
        tag_of("aws:principaltag/").map(|tag| format!("principal.getTag({})", lit(&tag)))
    };
    let string_key: Option<(String, String)> = read.and_then(|r| Some((presence(key)?, r)));
    match (op, k.as_str(), string_key) {
        (
            "StringEquals" | "StringNotEquals" | "StringLike" | "StringNotLike",
            _,
            Some((guard, expr)),
        ) => {
            let is_like = op.ends_with("Like");
            let e = any(&|v| {
                Ok(if is_like {
                    format!("({guard} && {expr} like {})", like(v)?)
                } else {
                    format!("({guard} && {expr} == {})", lit(v))
                })
            })?;
            Ok(if op.contains("Not") { negated(e) } else { e })
        }
        ("IpAddress" | "NotIpAddress", "aws:sourceip", _) => {
            let e = any(&|v| {
                parse_cidr(v)?;
                Ok(format!("context.source_ip.isInRange(ip({}))", lit(v)))
            })?;
            Ok(if op == "NotIpAddress" { negated(e) } else { e })
        }
        ("Bool", "aws:securetransport", _) => any(&|v| match v.to_ascii_lowercase().as_str() {
            "true" => Ok("context.secure_transport".into()),
            "false" => Ok("!context.secure_transport".into()),
            _ => Err(format!("Bool needs true or false, not {v}").into()),
        }),
        (op, "aws:currenttime" | "aws:epochtime", _) if op.starts_with("Date") => {
            // AWS: a negated operator with several values holds when the key matches none
            // of them (AND of the negations), so DateNotEquals is NOT(any DateEquals).
            let cmp = match op {
                "DateEquals" | "DateNotEquals" => "==",
                "DateLessThan" => "<",
                "DateLessThanEquals" => "<=",
                "DateGreaterThan" => ">",
                "DateGreaterThanEquals" => ">=",
                _ => return Err(format!("unsupported condition operator {op}").into()),
            };
            let e = any(&|v| Ok(format!("context.now {cmp} {}", epoch_of(v)?)))?;
            Ok(if op == "DateNotEquals" { negated(e) } else { e })
        }
        (op, "s3:max-keys", _) if op.starts_with("Numeric") => {
            let cmp = match op {
                "NumericEquals" => "==",
                "NumericNotEquals" => "!=",
                "NumericLessThan" => "<",
                "NumericLessThanEquals" => "<=",
                "NumericGreaterThan" => ">",
                "NumericGreaterThanEquals" => ">=",
                _ => return Err(format!("unsupported condition operator {op}").into()),
            };
            let e = any(&|v| {
                let n: i64 = v
                    .parse()
                    .map_err(|_| format!("{key} needs a number, not {v}"))?;
                Ok(format!(
                    "(context has max_keys && context.max_keys {} {n})",
                    if cmp == "!=" { "==" } else { cmp }
                ))
            })?;
            Ok(if cmp == "!=" { negated(e) } else { e })
        }
        _ => Err(format!(
            "Policy has an invalid condition key or operator: {op} {key} (supported: StringEquals/StringNotEquals/StringLike/StringNotLike on s3:prefix, s3:delimiter, s3:VersionId, s3:x-amz-server-side-encryption, s3:x-amz-server-side-encryption-aws-kms-key-id, s3:x-amz-server-side-encryption-customer-algorithm, s3:x-amz-acl, s3:x-amz-grant-read/-write/-read-acp/-write-acp/-full-control, s3:x-amz-copy-source, s3:x-amz-metadata-directive, aws:UserAgent, aws:Referer, s3:ExistingObjectTag/<key>, s3:RequestObjectTag/<key>, aws:PrincipalTag/<key>; Null on those; ForAnyValue:StringEquals and ForAllValues:StringEquals on s3:RequestObjectTagKeys; IpAddress/NotIpAddress on aws:SourceIp; Bool on aws:SecureTransport; Date* on aws:CurrentTime and aws:EpochTime; Numeric* on s3:max-keys; each with ...IfExists)"
        ).into()),
    }
}

/// One statement as Cedar policies, and whether it makes its bucket public. `bucket`: the
/// bucket policy's bucket, or `None` for an identity policy (no Principal: the policy is
/// scoped to whom it is attached to).
fn statement(
    bucket: Option<&str>,
    i: usize,
    st: &Value,
) -> Result<(Vec<String>, bool), MalformedPolicy> {
    let Value::Object(m) = st else {
        return Err("each Statement must be an object".into());
    };
    let sid = m.get("Sid").and_then(Value::as_str).map_or_else(
        || format!("statement {}", i + 1),
        |s| format!("statement '{s}'"),
    );
    let err = |e: MalformedPolicy| MalformedPolicy(format!("{sid}: {e}"));
    for k in m.keys() {
        match k.as_str() {
            "Sid" | "Effect" | "Principal" | "Action" | "Resource" | "Condition" => {}
            other => return Err(err(format!("{other} is not supported").into())),
        }
    }
    let effect = match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") => "permit",
        Some("Deny") => "forbid",
        _ => return Err(err("Effect must be Allow or Deny".into())),
    };
    let principal = match (bucket, m.get("Principal")) {
        (Some(_), Some(p)) => principal_of(p, effect == "forbid").map_err(err)?,
        (Some(_), None) => return Err(err("missing Principal".into())),
        (None, Some(_)) => {
            return Err(err(
                "Principal is not allowed in an identity policy (it applies to whom it is attached to)".into(),
            ));
        }
        (None, None) => None,
    };
    let actions = actions_of(
        m.get("Action")
            .ok_or_else(|| err("missing Action".into()))?,
    )
    .map_err(err)?;
    let resources = resources_of(
        m.get("Resource")
            .ok_or_else(|| err("missing Resource".into()))?,
        bucket,
    )
    .map_err(err)?;
    let conditions = match m.get("Condition") {
        Some(c) => conditions_of(c).map_err(err)?,
        None => Vec::new(),
    };
    let objects: Vec<String> = resources
        .iter()
        .filter_map(|r| match r {
            ResourceSpec::Objects(None, p) => {
                Some(like(p).map(|l| format!("resource.key like {l}")))
            }
            ResourceSpec::Objects(Some(b), p) => Some(
                like(p)
                    .map(|l| format!("(resource.bucket == {} && resource.key like {l})", lit(b))),
            ),
            ResourceSpec::Bucket(_) => None,
        })
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let buckets: Vec<String> = resources
        .iter()
        .filter_map(|r| match r {
            ResourceSpec::Bucket(None) => Some("true".to_owned()),
            ResourceSpec::Bucket(Some(b)) => Some(format!("resource in Bucket::{}", lit(b))),
            ResourceSpec::Objects(..) => None,
        })
        .collect();
    let has_bucket = !buckets.is_empty();
    let of_kind = |k: ResourceKind| -> Vec<String> {
        actions
            .iter()
            .filter(|a| a.resource_kind() == k)
            .map(|a| format!("Action::{}", lit(a.cedar_name())))
            .collect()
    };
    let mut policies = Vec::new();
    let mut emit = |acts: Vec<String>, resource: String| {
        let mut when = vec![resource];
        when.extend(principal.iter().cloned());
        when.extend(conditions.iter().cloned());
        policies.push(format!(
            "@id({})\n{effect}(principal, action in [{}], resource)\nwhen {{ {} }};",
            lit(&format!("{}: {sid}", bucket.unwrap_or("identity"))),
            acts.join(", "),
            when.join(" && ")
        ));
    };
    let (obj_actions, bucket_actions) =
        (of_kind(ResourceKind::Object), of_kind(ResourceKind::Bucket));
    if !obj_actions.is_empty() && !objects.is_empty() {
        emit(
            obj_actions,
            format!("resource is Object && ({})", objects.join(" || ")),
        );
    }
    if !bucket_actions.is_empty() && has_bucket {
        emit(
            bucket_actions,
            format!("resource is Bucket && ({})", buckets.join(" || ")),
        );
    }
    if policies.is_empty() {
        return Err(err(
            "Action does not apply to any resource(s) in statement".into()
        ));
    }
    let public =
        bucket.is_some() && effect == "permit" && principal.is_none() && conditions.is_empty();
    Ok((policies, public))
}

/// Translates a bucket policy: an IAM JSON document, or Cedar text (kept as written).
pub fn translate(bucket: &str, doc: &str) -> Result<Translated, MalformedPolicy> {
    if !doc.trim_start().starts_with('{') {
        return Ok(Translated {
            cedar: doc.to_owned(),
            public: cedar_is_public(doc),
        });
    }
    translate_document(Some(bucket), doc)
}

/// Translates an identity policy (attached to a user or group, or limiting a session or
/// service account) when it is AWS IAM JSON: statements without Principal, over any bucket's
/// resources. Cedar text is returned as written.
pub fn translate_identity(doc: &str) -> Result<String, MalformedPolicy> {
    if !doc.trim_start().starts_with('{') {
        return Ok(doc.to_owned());
    }
    translate_document(None, doc).map(|t| t.cedar)
}

fn translate_document(bucket: Option<&str>, doc: &str) -> Result<Translated, MalformedPolicy> {
    let v: Value =
        serde_json::from_str(doc).map_err(|e| format!("Policies must be valid JSON: {e}"))?;
    let Value::Object(m) = &v else {
        return Err("a policy document is a JSON object".into());
    };
    for k in m.keys() {
        if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
            return Err(format!("{k} is not supported in a policy document").into());
        }
    }
    if let Some(ver) = m.get("Version").and_then(Value::as_str)
        && ver != "2012-10-17"
        && ver != "2008-10-17"
    {
        return Err(format!("The policy Version {ver} is not supported").into());
    }
    let statements = match m.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Err("Missing required field Statement".into()),
    };
    let mut cedar = Vec::new();
    let mut public = false;
    for (i, st) in statements.iter().enumerate() {
        let (ps, p) = statement(bucket, i, st)?;
        cedar.extend(ps);
        public |= p;
    }
    Ok(Translated {
        cedar: cedar.join("\n\n"),
        public,
    })
}

/// A Cedar bucket policy is public when a `permit` leaves the principal unconstrained and
/// has no conditions.
fn cedar_is_public(text: &str) -> bool {
    let Ok(set) = text.parse::<cedar_policy::PolicySet>() else {
        return false;
    };
    set.policies().any(|p| {
        p.effect() == cedar_policy::Effect::Permit
            && matches!(
                p.principal_constraint(),
                cedar_policy::PrincipalConstraint::Any
            )
            && p.to_json()
                .ok()
                .and_then(|j| {
                    j.get("conditions")
                        .and_then(Value::as_array)
                        .map(Vec::is_empty)
                })
                .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing_and_literals() {
        assert!(glob("s3:Get*", "s3:GetObject"));
        assert!(glob("s3:*", "s3:ListBucket"));
        assert!(glob("s3:getobject", "s3:GetObject"));
        assert!(glob("s3:Get?bject", "s3:GetObject"));
        assert!(!glob("s3:Put*", "s3:GetObject"));
        assert_eq!(lit("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(lit("é\n"), r#""\u{e9}\u{a}""#);
        assert_eq!(like("logs/*.txt").unwrap(), r#""logs/*.txt""#);
        assert!(like("a?b").is_err());
    }

    #[test]
    fn public_read_translates() {
        let t = translate(
            "pub",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::pub/*"]}]}"#,
        )
        .unwrap();
        assert!(t.public);
        assert!(
            t.cedar
                .contains("permit(principal, action in [Action::\"s3:GetObject\""),
            "{}",
            t.cedar
        );
    }

    #[test]
    fn unfaithful_documents_are_refused() {
        let bad = [
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:Fly","Resource":"arn:aws:s3:::b/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/a?c"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringEquals":{"s3:RequestObjectTagKeys":"x"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/99"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"CanonicalUser":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            r#"{not json"#,
        ];
        for doc in bad {
            assert!(translate("b", doc).is_err(), "{doc}");
        }
    }
}
