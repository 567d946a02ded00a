//! Virtual-hosted-style addressing for `--domain`: `bucket.domain[:port]` names a bucket;
//! the bare domain and every other host are path-style. (s3s's own parsers would take an
//! unknown host whole as a bucket name.)

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// The configured base domain.
#[derive(Debug, Clone)]
pub struct DomainHost {
    domain: String,
}

impl DomainHost {
    /// Virtual hosts under `domain`.
    #[must_use]
    pub fn new(domain: &str) -> Self {
        Self {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| h);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl S3Host for DomainHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = strip_port(host);
        if let Some(bucket) = name
            .strip_suffix(self.domain.as_str())
            .and_then(|b| b.strip_suffix('.'))
            .filter(|b| !b.is_empty())
        {
            return Ok(VirtualHost::new(self.domain.as_str()).with_bucket(bucket));
        }
        Ok(VirtualHost::new(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_only_under_the_domain() {
        let h = DomainHost::new("s3.local");
        let v = h.parse_host_header("team.s3.local:9000").unwrap();
        assert_eq!(v.bucket(), Some("team"));
        let v = h.parse_host_header("s3.local:9000").unwrap();
        assert_eq!(v.bucket(), None);
        let v = h.parse_host_header("localhost:9000").unwrap();
        assert_eq!(v.bucket(), None);
        let v = h.parse_host_header("a.b.s3.local").unwrap();
        assert_eq!(v.bucket(), Some("a.b"));
        let v = h.parse_host_header("evils3.local").unwrap();
        assert_eq!(v.bucket(), None);
    }
}
