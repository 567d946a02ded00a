//! CORS: the bucket's rules (PutBucketCors stores them as the `cors` document), preflight
//! `OPTIONS` answers, and the `Access-Control-*` headers added to actual requests whose
//! `Origin` a rule allows, as AWS S3 documents them.

mod bucket;

use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

pub use self::bucket::DOC;

/// Most rules in one configuration (AWS).
pub const MAX_RULES: usize = 100;

/// One CORS rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// Rule id, if given.
    pub id: Option<String>,
    /// Origins, each with at most one `*`.
    pub allowed_origins: Vec<String>,
    /// Methods: GET, PUT, POST, DELETE, HEAD.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for (each with at most one `*`).
    pub allowed_headers: Vec<String>,
    /// Response headers the browser may expose to scripts.
    pub expose_headers: Vec<String>,
    /// How long the browser may cache a preflight answer.
    pub max_age_seconds: Option<i32>,
}

impl From<s3s::dto::CORSRule> for CorsRule {
    fn from(r: s3s::dto::CORSRule) -> Self {
        Self {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: r.allowed_headers.unwrap_or_default(),
            expose_headers: r.expose_headers.unwrap_or_default(),
            max_age_seconds: r.max_age_seconds,
        }
    }
}

/// Why a CORS configuration is refused; the text is AWS's message for `InvalidRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsConfigError {
    /// No rules, or more than [`MAX_RULES`].
    #[error("a CORS configuration has 1 to {MAX_RULES} rules")]
    RuleCount,
    /// A rule without an origin or a method.
    #[error("each CORS rule needs an AllowedOrigin and an AllowedMethod")]
    Incomplete,
    /// A method S3 does not allow in CORS rules.
    #[error("Found unsupported HTTP method in CORS config. Unsupported method is {0}")]
    UnsupportedMethod(String),
    /// An origin or header pattern with several wildcards.
    #[error("'{0}' can not have more than one wildcard.")]
    Wildcards(String),
}

/// Checks a rule set.
pub fn validate(rules: &[CorsRule]) -> Result<(), CorsConfigError> {
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(CorsConfigError::RuleCount);
    }
    for r in rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(CorsConfigError::Incomplete);
        }
        for m in &r.allowed_methods {
            if !matches!(m.as_str(), "GET" | "PUT" | "POST" | "DELETE" | "HEAD") {
                return Err(CorsConfigError::UnsupportedMethod(m.clone()));
            }
        }
        for o in r.allowed_origins.iter().chain(&r.allowed_headers) {
            if o.matches('*').count() > 1 {
                return Err(CorsConfigError::Wildcards(o.clone()));
            }
        }
    }
    Ok(())
}

/// Matches a pattern with at most one `*` (case-insensitively for header names).
fn wildcard(pattern: &str, s: &str, ignore_case: bool) -> bool {
    let (p, s) = if ignore_case {
        (pattern.to_ascii_lowercase(), s.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), s.to_owned())
    };
    match p.split_once('*') {
        None => p == s,
        Some((pre, post)) => {
            s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post)
        }
    }
}

/// The first rule that allows `origin` to use `method` with `request_headers` (the rule
/// order decides, as in S3).
#[must_use]
pub fn find<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    request_headers: &[&str],
) -> Option<&'a CorsRule> {
    rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| wildcard(o, origin, false))
            && r.allowed_methods.iter().any(|m| m == method)
            && request_headers.iter().all(|h| {
                r.allowed_headers
                    .iter()
                    .any(|a| wildcard(a, h.trim(), true))
            })
    })
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// Adds the `Access-Control-*` headers for an allowed request. `preflight` adds the
/// allowed-headers and max-age answers too.
pub fn apply(
    h: &mut HeaderMap,
    rule: &CorsRule,
    origin: &str,
    request_headers: &[&str],
    preflight: bool,
) {
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    set(
        h,
        "access-control-allow-origin",
        if any_origin { "*" } else { origin },
    );
    if !any_origin {
        set(h, "access-control-allow-credentials", "true");
    }
    set(
        h,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        set(
            h,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if preflight {
        if !request_headers.is_empty() {
            set(
                h,
                "access-control-allow-headers",
                &request_headers.join(", "),
            );
        }
        if let Some(age) = rule.max_age_seconds {
            set(h, "access-control-max-age", &age.to_string());
        }
    }
    h.append(http::header::VARY, HeaderValue::from_static("Origin"));
}

/// The request headers a preflight asks for.
#[must_use]
pub fn requested_headers(h: &HeaderMap) -> Vec<String> {
    h.get("access-control-request-headers")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        CorsRule {
            id: None,
            allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            allowed_methods: methods.iter().map(|s| (*s).to_owned()).collect(),
            allowed_headers: headers.iter().map(|s| (*s).to_owned()).collect(),
            expose_headers: vec!["ETag".into()],
            max_age_seconds: Some(60),
        }
    }

    #[test]
    fn matching() {
        let rules = vec![
            rule(
                &["http://app.example"],
                &["GET", "PUT"],
                &["content-type", "x-amz-*"],
            ),
            rule(&["https://*.example.com"], &["GET"], &[]),
        ];
        assert!(
            find(
                &rules,
                "http://app.example",
                "PUT",
                &["content-type", "x-amz-date"]
            )
            .is_some()
        );
        assert!(find(&rules, "http://app.example", "DELETE", &[]).is_none());
        assert!(find(&rules, "http://app.example", "PUT", &["authorization"]).is_none());
        assert!(find(&rules, "https://a.example.com", "GET", &[]).is_some());
        assert!(find(&rules, "https://example.com", "GET", &[]).is_none());
        assert!(find(&rules, "http://evil.example", "GET", &[]).is_none());
        assert!(validate(&rules).is_ok());
        assert!(validate(&[rule(&["*.*"], &["GET"], &[])]).is_err());
        assert!(validate(&[rule(&["*"], &["PATCH"], &[])]).is_err());
        assert!(validate(&[]).is_err());
    }
}
