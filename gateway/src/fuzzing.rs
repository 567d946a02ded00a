//! Entry points for the fuzz targets (`fuzz/`): the parsers fsgate owns on the request path
//! and in the admin API, fed what a hostile client can send. Each must answer (a value or an
//! error), never panic, hang or allocate without bound. Parsing that s3s does (SigV4 and its
//! canonical request, `aws-chunked`, ranges, XML bodies, POST forms) is s3s's to fuzz; here is
//! what fsgate reads itself, mostly from the same headers and query after s3s.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use s3s::host::S3Host;

use crate::identity::query::DecodedQuery;
use crate::identity::signing::{SignedBy, SignedFacts};

/// Headers from `name: value` lines; lines that are not a valid header are skipped.
fn headers(text: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    for line in text.lines() {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            )
        {
            h.append(n, v);
        }
    }
    h
}

/// What fsgate reads from a request's line and headers: the query, the signature's kind and
/// facts, the IAM API's authorization, forwarded addresses, virtual hosts, bearer tokens, the
/// copy source range. The first byte picks a method; then one line of query, then headers.
pub fn request(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (query_text, header_text) = text.split_once('\n').unwrap_or((&text, ""));
    let method = match pick % 4 {
        0 => Method::GET,
        1 => Method::PUT,
        2 => Method::POST,
        _ => Method::DELETE,
    };
    let query = DecodedQuery::parse(query_text);
    let h = headers(header_text);
    let _ = SignedBy::of(&method, &h, &query);
    let _ = SignedFacts::of(&method, &h, &query);
    let _ = crate::identity::sigv4_iam::iam_authorization(&h);
    let _ = crate::identity::bearer::bearer_token(&h);
    if let Ok(proxies) = crate::server::proxy::TrustedProxies::parse(query_text) {
        let _ = proxies.client(IpAddr::V4(Ipv4Addr::LOCALHOST), &h);
    }
    let vhost = crate::server::host::DomainHost::new("s3.example.com");
    if let Some(host) = h.get("host").and_then(|v| v.to_str().ok()) {
        let _ = vhost.parse_host_header(host);
    }
    if let Some(range) = h
        .get("x-amz-copy-source-range")
        .and_then(|v| v.to_str().ok())
    {
        let _ = crate::s3::multipart::copy_range(Some(&range.to_owned()), 1 << 30);
    }
}

/// What fsgate reads from bodies and stored documents of its own formats: STS forms, MinIO
/// configuration lines, KMS key references, stored ACLs and tag sets, and times in admin API
/// queries (IAM policy documents have their own target). The first byte picks a parser.
pub fn document(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match pick % 6 {
        0 => {
            let mut form = std::collections::HashMap::new();
            crate::sts::parse_form(&text, &mut form);
        }
        1 => {
            let _ = crate::admin::minio::server::key_values(&text);
        }
        2 => {
            let _ = crate::s3::sse::kms::parse_key_ref(&text);
        }
        3 => {
            let _ = crate::ownership::StoredAcl::decode(rest);
        }
        4 => {
            let _ = crate::s3::tagging::decode(rest);
        }
        _ => {
            let _ = crate::admin::parse_time(&text);
        }
    }
}

/// Bucket configuration bodies: the XML is s3s's to parse (its restXml deserializer, run here
/// as the service runs it); what fsgate makes of the result is under test — lifecycle rules
/// and their checks, CORS rules, their checks and their matching of an origin and headers, tag
/// sets and the `x-amz-tagging` header. The first byte picks a document.
pub fn config_xml(data: &[u8]) {
    use s3s::dto::{BucketLifecycleConfiguration, CORSConfiguration, Tagging};
    use s3s::xml::{Deserialize, Deserializer};

    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 4 {
        0 => {
            let Ok(cfg) = BucketLifecycleConfiguration::deserialize(&mut Deserializer::new(rest))
            else {
                return;
            };
            let rules: Result<Vec<_>, _> = cfg
                .rules
                .into_iter()
                .map(crate::s3::lifecycle::bucket::rule_of)
                .collect();
            if let Ok(rules) = rules {
                let _ = crate::s3::lifecycle::validate(&rules);
            }
        }
        1 => {
            let Ok(cfg) = CORSConfiguration::deserialize(&mut Deserializer::new(rest)) else {
                return;
            };
            let rules: Vec<crate::s3::cors::CorsRule> = cfg
                .cors_rules
                .into_iter()
                .map(crate::s3::cors::CorsRule::from)
                .collect();
            if crate::s3::cors::validate(&rules).is_ok() {
                let origin = rules
                    .first()
                    .and_then(|r| r.allowed_origins.first())
                    .map_or("https://example.com", String::as_str);
                let _ =
                    crate::s3::cors::find(&rules, origin, "GET", &["x-amz-date", "content-type"]);
            }
        }
        2 => {
            if let Ok(t) = Tagging::deserialize(&mut Deserializer::new(rest)) {
                let _ = crate::tags::from_set(t.tag_set, 10);
            }
        }
        _ => {
            let _ = crate::tags::from_header(Some(&String::from_utf8_lossy(rest)));
        }
    }
}
