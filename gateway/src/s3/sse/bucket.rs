//! PutBucketEncryption, GetBucketEncryption, DeleteBucketEncryption: default SSE-S3 for
//! writes that ask for no encryption (the `encryption` document; SSE-KMS is not supported).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::s3::{S3Api, ctx};

/// The bucket document whose presence turns default SSE-S3 on.
pub const DOC: &str = "encryption";

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
        let algo = rule
            .apply_server_side_encryption_by_default
            .as_ref()
            .map(|d| d.sse_algorithm.as_str().to_owned());
        match algo.as_deref() {
            Some(ServerSideEncryption::AES256) => {}
            Some(ServerSideEncryption::AWS_KMS | "aws:kms:dsse") => {
                return Err(s3_error!(
                    NotImplemented,
                    "SSE-KMS is not supported by fsgate; use AES256"
                ));
            }
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "ApplyServerSideEncryptionByDefault needs SSEAlgorithm AES256"
                ));
            }
        }
        let b = i.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, DOC, Some(b"AES256")))
            .await?;
        Ok(S3Response::new(PutBucketEncryptionOutput::default()))
    }

    pub(in crate::s3) async fn do_get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        if self
            .run(&rc, move |s| s.bucket_config(&b, DOC))
            .await?
            .is_none()
        {
            return Err(S3Error::with_message(
                S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
                "The server side encryption configuration was not found",
            ));
        }
        Ok(S3Response::new(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
                rules: vec![ServerSideEncryptionRule {
                    apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                        kms_master_key_id: None,
                        sse_algorithm: ServerSideEncryption::from_static(
                            ServerSideEncryption::AES256,
                        ),
                    }),
                    bucket_key_enabled: None,
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
