//! PutBucketEncryption, GetBucketEncryption, DeleteBucketEncryption: the default encryption of
//! writes that ask for none (the `encryption` document): SSE-S3, or SSE-KMS with a key of the
//! ring (or the ring's default key) and `BucketKeyEnabled` kept as given.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::s3::{S3Api, ctx};

/// The bucket document whose presence turns default encryption on: `AES256`, or JSON
/// (`BucketDefault`).
pub const DOC: &str = "encryption";

/// A bucket's default encryption.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BucketDefault {
    /// SSE-KMS (else SSE-S3).
    pub kms: bool,
    /// The KMS key (the ring's default when none).
    pub key: Option<String>,
    /// `BucketKeyEnabled`, as given.
    pub bucket_key: bool,
}

impl BucketDefault {
    /// The default a stored document says (`AES256` as written before SSE-KMS).
    #[must_use]
    pub fn of(doc: &[u8]) -> Self {
        serde_json::from_slice(doc).unwrap_or_default()
    }
}

impl S3Api {
    pub(in crate::s3) async fn do_put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let rules = &i.server_side_encryption_configuration.rules;
        let [rule] = rules.as_slice() else {
            return Err(s3_error!(
                MalformedXML,
                "ServerSideEncryptionConfiguration needs exactly one rule"
            ));
        };
        let by_default = rule.apply_server_side_encryption_by_default.as_ref();
        let algo = by_default.map(|d| d.sse_algorithm.as_str().to_owned());
        let key = by_default
            .and_then(|d| d.kms_master_key_id.as_deref())
            .map(|k| super::kms_key_name(k).to_owned());
        let default = match algo.as_deref() {
            Some(ServerSideEncryption::AES256) if key.is_none() => BucketDefault::default(),
            Some(ServerSideEncryption::AES256) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "a KMSMasterKeyID is only valid with SSEAlgorithm aws:kms"
                ));
            }
            Some(ServerSideEncryption::AWS_KMS) => {
                if let Some(k) = &key
                    && !self.keys.contains(k)
                {
                    return Err(super::kms::KmsError::NotFound(k.clone()).s3());
                }
                BucketDefault {
                    kms: true,
                    key,
                    bucket_key: rule.bucket_key_enabled.unwrap_or(false),
                }
            }
            Some("aws:kms:dsse") => {
                return Err(s3_error!(
                    NotImplemented,
                    "Dual-layer SSE-KMS is not supported by fsgate; use aws:kms or AES256"
                ));
            }
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "ApplyServerSideEncryptionByDefault needs SSEAlgorithm AES256 or aws:kms"
                ));
            }
        };
        let doc = serde_json::to_vec(&default).map_err(|e| s3_error!(InternalError, "{e}"))?;
        let b = i.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, DOC, Some(&doc)))
            .await?;
        Ok(S3Response::new(PutBucketEncryptionOutput::default()))
    }

    pub(in crate::s3) async fn do_get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let Some(doc) = self.run(&rc, move |s| s.bucket_config(&b, DOC)).await? else {
            return Err(S3Error::with_message(
                S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
                "The server side encryption configuration was not found",
            ));
        };
        let d = BucketDefault::of(&doc);
        Ok(S3Response::new(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
                rules: vec![ServerSideEncryptionRule {
                    apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                        kms_master_key_id: d.key.clone(),
                        sse_algorithm: ServerSideEncryption::from_static(if d.kms {
                            ServerSideEncryption::AWS_KMS
                        } else {
                            ServerSideEncryption::AES256
                        }),
                    }),
                    bucket_key_enabled: Some(d.bucket_key),
                }],
            }),
        }))
    }

    pub(in crate::s3) async fn do_delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, DOC, None))
            .await?;
        Ok(S3Response::new(DeleteBucketEncryptionOutput::default()))
    }
}
