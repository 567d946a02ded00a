//! The request's query string, decoded once — the same way s3s decodes it — for everything
//! fsgate reads from it: signing facts (`signing.rs`), limits and the audit (`server/front.rs`), the
//! admin API and STS forms.
//!
//! The rule this module exists for: a decision reads only what was authenticated. s3s routes,
//! verifies and executes a request from its *decoded* query (`versio%6EId` is `versionId`),
//! so a check that reads the raw text can be shown a different request than the one that runs.
//! Nothing in fsgate splits `uri.query()` by hand; it asks a [`DecodedQuery`].

/// A query string decoded as `application/x-www-form-urlencoded` (s3s: `serde_urlencoded`,
/// itself this decoder), pairs sorted stably by name as s3s keeps them.
#[derive(Debug, Clone, Default)]
pub struct DecodedQuery {
    pairs: Vec<(String, String)>,
}

impl DecodedQuery {
    /// Decodes a raw query (without the `?`).
    #[must_use]
    pub fn parse(raw: &str) -> Self {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Self { pairs }
    }

    /// Decodes a request's query. Bytes that are not UTF-8 once decoded become U+FFFD, as in
    /// s3s, so both readings see the same names and values.
    #[must_use]
    pub fn of(uri: &http::Uri) -> Self {
        Self::parse(uri.query().unwrap_or(""))
    }

    /// Whether a parameter is present (with or without a value).
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// The value of a parameter given exactly once; `None` when absent or repeated (s3s's
    /// `get_unique`: a repeated signing parameter never verifies).
    #[must_use]
    pub fn unique(&self, name: &str) -> Option<&str> {
        let mut found = self.pairs.iter().filter(|(k, _)| k == name);
        let first = found.next()?;
        found.next().is_none().then_some(first.1.as_str())
    }
}

/// The pairs of a form body (`a=b&c=d`), decoded, in their order (STS and admin forms).
#[must_use]
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_as_s3s_does() {
        let q = DecodedQuery::parse("versio%6EId=v1&X-Amz-%44ate=20260101T000000Z&a+b=c+d&e");
        assert_eq!(q.unique("versionId"), Some("v1"));
        assert_eq!(q.unique("X-Amz-Date"), Some("20260101T000000Z"));
        assert_eq!(q.unique("a b"), Some("c d"));
        assert!(q.has("e"));
        assert_eq!(q.unique("e"), Some(""));
        // Repeated: never one value.
        let q = DecodedQuery::parse("X-Amz-Expires=1&X-Amz-%45xpires=999999");
        assert!(q.has("X-Amz-Expires"));
        assert_eq!(q.unique("X-Amz-Expires"), None);
        // Names are case-sensitive, as in S3.
        assert_eq!(DecodedQuery::parse("versionid=x").unique("versionId"), None);
    }
}
