//! PutBucketCors, GetBucketCors, DeleteBucketCors (the rules are applied by `super` in
//! the front layer).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::{CorsRule, validate};
use crate::s3::{S3Api, ctx};

/// The name of the bucket document holding the rules.
pub const DOC: &str = "cors";

fn internal(e: &serde_json::Error) -> S3Error {
    S3Error::with_message(S3ErrorCode::InternalError, e.to_string())
}

impl S3Api {
    pub(in crate::s3) async fn do_put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        let rules: Vec<CorsRule> = i
            .cors_configuration
            .cors_rules
            .into_iter()
            .map(CorsRule::from)
            .collect();
        validate(&rules)
            .map_err(|e| S3Error::with_message(S3ErrorCode::InvalidRequest, e.to_string()))?;
        let doc = serde_json::to_vec(&rules).map_err(|e| internal(&e))?;
        let b = i.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, DOC, Some(&doc)))
            .await?;
        Ok(S3Response::new(PutBucketCorsOutput::default()))
    }

    pub(in crate::s3) async fn do_get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        let doc = self.run(&rc, move |s| s.bucket_config(&b, DOC)).await?;
        let Some(doc) = doc else {
            return Err(S3Error::with_message(
                S3ErrorCode::NoSuchCORSConfiguration,
                "The CORS configuration does not exist",
            ));
        };
        let rules: Vec<CorsRule> = serde_json::from_slice(&doc).map_err(|e| internal(&e))?;
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(
                rules
                    .into_iter()
                    .map(|r| CORSRule {
                        allowed_headers: (!r.allowed_headers.is_empty())
                            .then_some(r.allowed_headers),
                        allowed_methods: r.allowed_methods,
                        allowed_origins: r.allowed_origins,
                        expose_headers: (!r.expose_headers.is_empty()).then_some(r.expose_headers),
                        id: r.id,
                        max_age_seconds: r.max_age_seconds,
                    })
                    .collect(),
            ),
        }))
    }

    pub(in crate::s3) async fn do_delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        let rc = ctx(&req)?;
        let b = req.input.bucket;
        self.run(&rc, move |s| s.set_bucket_config(&b, DOC, None))
            .await?;
        Ok(S3Response::new(DeleteBucketCorsOutput::default()))
    }
}
