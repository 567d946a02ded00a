//! Secret lookup for signature verification (s3s verifies SigV4, presigned and streaming
//! signatures with the secret returned here).

use std::sync::Arc;

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

use crate::iam::Iam;

/// Looks secrets up in the IAM cache. Disabled users and deleted keys get no secret, so every
/// signature made with them fails, presigned URLs included.
#[derive(Debug, Clone)]
pub struct IamAuth {
    iam: Arc<Iam>,
}

impl IamAuth {
    /// Wraps the IAM cache.
    #[must_use]
    pub fn new(iam: Arc<Iam>) -> Self {
        Self { iam }
    }
}

#[async_trait::async_trait]
impl S3Auth for IamAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.iam.secret_for(access_key) {
            Some(secret) => Ok(SecretKey::from(secret)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}
