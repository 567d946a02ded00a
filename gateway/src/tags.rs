//! S3 tag sets: AWS's limits, and the two forms requests carry them in (the `x-amz-tagging`
//! header and the XML tag set). Below `access` (the tags a write asks for are a condition
//! key) and `s3` (which stores them).

use percent_encoding::percent_decode_str;
use s3s::dto::{Tag, TagSet};
use s3s::{S3Error, S3ErrorCode, S3Result};

/// Most tags on one object (AWS).
pub const MAX_OBJECT_TAGS: usize = 10;
/// Most tags on one bucket (AWS).
pub const MAX_BUCKET_TAGS: usize = 50;

fn invalid_tag(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, msg.into())
}

/// Checks AWS's limits: count, key 1–128 and value 0–256 Unicode characters, distinct keys,
/// no `aws:` prefix.
pub fn validate(tags: &[(String, String)], max: usize) -> S3Result<()> {
    if tags.len() > max {
        return Err(invalid_tag(format!(
            "Object tags cannot be greater than {max}"
        )));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        let klen = k.chars().count();
        if klen == 0 || klen > 128 {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(invalid_tag("The TagValue you have provided is invalid"));
        }
        if k.starts_with("aws:") {
            return Err(invalid_tag("Your TagKey cannot be prefixed with aws:"));
        }
        if tags.iter().take(i).any(|(other, _)| other == k) {
            return Err(invalid_tag(
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    Ok(())
}

/// Parses an `x-amz-tagging` header (`k1=v1&k2=v2`, form-URL-encoded) and checks it.
pub fn from_header(h: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Ok(Vec::new());
    };
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| invalid_tag("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
    };
    let mut tags = Vec::new();
    for pair in h.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((decode(k)?, decode(v)?));
    }
    validate(&tags, MAX_OBJECT_TAGS)?;
    Ok(tags)
}

/// Tags from an XML tag set, checked.
pub fn from_set(set: TagSet, max: usize) -> S3Result<Vec<(String, String)>> {
    let tags: Vec<(String, String)> = set
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    validate(&tags, max)?;
    Ok(tags)
}

/// An XML tag set.
pub fn to_set(tags: &[(String, String)]) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}
