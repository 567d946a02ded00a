//! DeleteObject and DeleteObjects (each key decided on its own).

use fsgate_policy::{Action, Principal, Resource};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::access::{ListingContext, request_state};

use super::{FsGate, ctx};

impl FsGate {
    pub(super) async fn do_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let rc = ctx(&req)?;
        let i = req.input;
        if i.version_id.as_deref().is_some_and(|v| v != "null") {
            return Err(s3_error!(
                NoSuchVersion,
                "Versioning is not enabled on this bucket"
            ));
        }
        let (b, k) = (i.bucket, i.key);
        self.run(&rc, move |s| s.delete_object(&b, &k)).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    pub(super) async fn do_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let (rc, principal) = request_state(&req)?;
        let i = req.input;
        if i.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "DeleteObjects accepts at most 1000 keys"
            ));
        }
        let bucket = i.bucket.clone();
        self.run(&rc, move |s| s.bucket(&bucket)).await?;
        let quiet = i.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        let mut any_allowed = false;
        for obj in i.delete.objects {
            let key = obj.key;
            let d = self.gate.decide(
                &rc,
                &principal,
                Action::DeleteObject,
                Resource::Object {
                    bucket: i.bucket.clone(),
                    key: key.clone(),
                },
                ListingContext::default(),
            );
            if !d.allowed {
                errors.push(Error {
                    code: Some("AccessDenied".into()),
                    key: Some(key),
                    message: Some("Access Denied".into()),
                    version_id: None,
                });
                continue;
            }
            any_allowed = true;
            if key.len() > super::MAX_KEY_LEN {
                errors.push(Error {
                    code: Some("KeyTooLongError".into()),
                    key: Some(key),
                    message: Some("Your key is too long".into()),
                    version_id: None,
                });
                continue;
            }
            let (b, k) = (i.bucket.clone(), key.clone());
            match self.run(&rc, move |s| s.delete_object(&b, &k)).await {
                Ok(_) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(key),
                            ..Default::default()
                        });
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(key),
                    message: e.message().map(str::to_owned),
                    version_id: None,
                }),
            }
        }
        // An unsigned request that may delete nothing is refused outright.
        if principal == Principal::Anonymous && !any_allowed {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }
}
