//! The non-S3 routes s3s hands over after checking any signature: the admin API under
//! `/admin/v1/` and STS on `POST /` with a form body.

use http::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};

use crate::admin::AdminApi;
use crate::sts::{Sts, is_sts_request};

/// Both routes behind the one `S3Route` s3s accepts.
#[derive(Debug, Clone)]
pub struct Routes {
    admin: AdminApi,
    sts: Sts,
}

impl Routes {
    /// The admin API and STS.
    #[must_use]
    pub fn new(admin: AdminApi, sts: Sts) -> Self {
        Self { admin, sts }
    }
}

fn has_bearer(headers: &HeaderMap) -> bool {
    crate::identity::bearer::bearer_token(headers).is_some()
}

#[async_trait::async_trait]
impl S3Route for Routes {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        _ext: &mut http::Extensions,
    ) -> bool {
        AdminApi::matches(uri)
            || AdminApi::is_metrics(method, uri)
            || is_sts_request(method, uri, headers)
    }

    /// STS authenticates per action (the web-identity and LDAP forms are unsigned); the admin
    /// API needs a signature or an OIDC bearer token.
    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let admin = AdminApi::matches(&req.uri) || AdminApi::is_metrics(&req.method, &req.uri);
        if admin && req.credentials.is_none() && !has_bearer(&req.headers) {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        }
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        if AdminApi::matches(&req.uri) || AdminApi::is_metrics(&req.method, &req.uri) {
            self.admin.call(req).await
        } else {
            self.sts.call(req).await
        }
    }
}
