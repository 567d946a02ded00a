//! Bucket lifecycle: the rules PutBucketLifecycleConfiguration stores (the `lifecycle`
//! document) and the worker that applies them — Expiration (days or date; a delete marker in
//! versioned buckets), removal of expired delete markers, NoncurrentVersionExpiration and
//! AbortIncompleteMultipartUpload, filtered by prefix, tags and size. Object Lock is honoured:
//! a protected version is skipped, never forced.
//!
//! Here: the rules and their validation; `bucket.rs`: the Put/Get/Delete operations that
//! store them; `worker.rs`: the worker that applies them.

pub(crate) mod bucket;
pub mod worker;

use serde::{Deserialize, Serialize};

use fsgate_store::model::ObjectManifest;

/// The bucket document holding the rules.
pub const DOC: &str = "lifecycle";
/// Most rules in a configuration (AWS).
pub const MAX_RULES: usize = 1000;

/// One lifecycle rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Rule id.
    pub id: String,
    /// Only enabled rules run.
    pub enabled: bool,
    /// Key prefix filter.
    pub prefix: String,
    /// Tags every matching object must carry.
    pub tags: Vec<(String, String)>,
    /// Only objects larger than this many bytes.
    pub size_greater_than: Option<u64>,
    /// Only objects smaller than this many bytes.
    pub size_less_than: Option<u64>,
    /// Expire current versions this many days after they were written.
    pub expiration_days: Option<u32>,
    /// Expire current versions once this time (ns) has passed.
    pub expiration_date_ns: Option<u64>,
    /// Remove delete markers that no longer hide any version.
    pub expired_object_delete_marker: bool,
    /// Remove noncurrent versions this many days after they became noncurrent.
    pub noncurrent_days: Option<u32>,
    /// Keep this many newest noncurrent versions whatever their age.
    pub newer_noncurrent_versions: Option<u32>,
    /// Abort multipart uploads this many days after initiation.
    pub abort_upload_days: Option<u32>,
}

impl Rule {
    fn matches(&self, key: &str, m: &ObjectManifest) -> bool {
        key.starts_with(&self.prefix)
            && self.tags.iter().all(|t| m.extras.tags.contains(t))
            && self.size_greater_than.is_none_or(|n| m.size > n)
            && self.size_less_than.is_none_or(|n| m.size < n)
    }

    fn has_tag_or_size_filter(&self) -> bool {
        !self.tags.is_empty() || self.size_greater_than.is_some() || self.size_less_than.is_some()
    }
}

/// Why a lifecycle configuration is refused; the text is AWS's message for `InvalidArgument`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleConfigError {
    /// No rules, or more than [`MAX_RULES`].
    #[error("a lifecycle configuration has 1 to {MAX_RULES} rules")]
    RuleCount,
    /// A rule id longer than 255 bytes.
    #[error("ID length should not exceed allowed limit of 255")]
    IdTooLong,
    /// Two rules with one id.
    #[error("Rule ID must be unique. Found same ID for more than one rule: {0}")]
    DuplicateId(String),
    /// An expiration with more than one of its forms.
    #[error("Expiration takes one of Days, Date or ExpiredObjectDeleteMarker")]
    ExpirationForms,
    /// A rule that does nothing.
    #[error("At least one action needs to be specified in a rule")]
    NoAction,
    /// ExpiredObjectDeleteMarker with a tag or size filter.
    #[error("ExpiredObjectDeleteMarker cannot be specified with tags or size")]
    DeleteMarkerFiltered,
    /// AbortIncompleteMultipartUpload with a tag or size filter.
    #[error("AbortIncompleteMultipartUpload cannot be specified with tags or size")]
    AbortFiltered,
    /// An action after 0 days.
    #[error("'Days' for an action must be a positive integer")]
    ZeroDays,
}

/// Checks a rule set.
pub fn validate(rules: &[Rule]) -> Result<(), LifecycleConfigError> {
    use LifecycleConfigError as E;
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(E::RuleCount);
    }
    for (i, r) in rules.iter().enumerate() {
        if r.id.len() > 255 {
            return Err(E::IdTooLong);
        }
        if !r.id.is_empty() && rules.iter().take(i).any(|o| o.id == r.id) {
            return Err(E::DuplicateId(r.id.clone()));
        }
        let actions = usize::from(r.expiration_days.is_some())
            + usize::from(r.expiration_date_ns.is_some())
            + usize::from(r.expired_object_delete_marker);
        if actions > 1 {
            return Err(E::ExpirationForms);
        }
        if actions == 0 && r.noncurrent_days.is_none() && r.abort_upload_days.is_none() {
            return Err(E::NoAction);
        }
        if r.expired_object_delete_marker && r.has_tag_or_size_filter() {
            return Err(E::DeleteMarkerFiltered);
        }
        if r.abort_upload_days.is_some() && r.has_tag_or_size_filter() {
            return Err(E::AbortFiltered);
        }
        for d in [r.expiration_days, r.noncurrent_days, r.abort_upload_days]
            .into_iter()
            .flatten()
        {
            if d == 0 {
                return Err(E::ZeroDays);
            }
        }
    }
    Ok(())
}
