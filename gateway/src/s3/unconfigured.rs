//! Bucket configurations fsgate does not keep — website, transfer acceleration, request
//! payment, replication, event notifications, analytics,
//! intelligent tiering, inventory and metrics — answered exactly as AWS answers for a bucket
//! that has none: the documented "no such configuration" error, an empty document, or success
//! for deleting nothing. Setting one stays NotImplemented. Each is decided first like every
//! operation (its own action, in the Read or Configure group).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::{S3Api, ctx};

/// A 404 with AWS's code for a configuration the bucket does not have.
fn missing(code: &'static str, message: &'static str) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.into()), message);
    e.set_status_code(http::StatusCode::NOT_FOUND);
    e
}

fn no_configuration() -> S3Error {
    missing(
        "NoSuchConfiguration",
        "The specified configuration does not exist.",
    )
}

/// Declares handlers that check the bucket exists, then answer `$answer`.
macro_rules! unconfigured {
    ($($handler:ident($input:ident) -> $output:ident => $answer:expr;)*) => {
        impl S3Api {
            $(
                pub(in crate::s3) async fn $handler(
                    &self,
                    req: S3Request<$input>,
                ) -> S3Result<S3Response<$output>> {
                    let rc = ctx(&req)?;
                    let bucket = req.input.bucket.clone();
                    self.run(&rc, move |s| s.bucket(&bucket)).await?;
                    let answer: S3Result<$output> = $answer;
                    answer.map(S3Response::new)
                }
            )*
        }
    };
}

unconfigured! {
    do_get_bucket_website(GetBucketWebsiteInput) -> GetBucketWebsiteOutput => Err(missing("NoSuchWebsiteConfiguration", "The specified bucket does not have a website configuration"));
    do_get_bucket_accelerate_configuration(GetBucketAccelerateConfigurationInput) -> GetBucketAccelerateConfigurationOutput => Ok(GetBucketAccelerateConfigurationOutput::default());
    do_get_bucket_request_payment(GetBucketRequestPaymentInput) -> GetBucketRequestPaymentOutput => Ok(GetBucketRequestPaymentOutput { payer: Some(Payer::from_static(Payer::BUCKET_OWNER)) });
    do_get_bucket_replication(GetBucketReplicationInput) -> GetBucketReplicationOutput => Err(missing("ReplicationConfigurationNotFoundError", "The replication configuration was not found"));
    do_get_bucket_notification_configuration(GetBucketNotificationConfigurationInput) -> GetBucketNotificationConfigurationOutput => Ok(GetBucketNotificationConfigurationOutput::default());
    do_get_bucket_analytics_configuration(GetBucketAnalyticsConfigurationInput) -> GetBucketAnalyticsConfigurationOutput => Err(no_configuration());
    do_list_bucket_analytics_configurations(ListBucketAnalyticsConfigurationsInput) -> ListBucketAnalyticsConfigurationsOutput => Ok(ListBucketAnalyticsConfigurationsOutput { is_truncated: Some(false), ..Default::default() });
    do_get_bucket_intelligent_tiering_configuration(GetBucketIntelligentTieringConfigurationInput) -> GetBucketIntelligentTieringConfigurationOutput => Err(no_configuration());
    do_list_bucket_intelligent_tiering_configurations(ListBucketIntelligentTieringConfigurationsInput) -> ListBucketIntelligentTieringConfigurationsOutput => Ok(ListBucketIntelligentTieringConfigurationsOutput { is_truncated: Some(false), ..Default::default() });
    do_get_bucket_inventory_configuration(GetBucketInventoryConfigurationInput) -> GetBucketInventoryConfigurationOutput => Err(no_configuration());
    do_list_bucket_inventory_configurations(ListBucketInventoryConfigurationsInput) -> ListBucketInventoryConfigurationsOutput => Ok(ListBucketInventoryConfigurationsOutput { is_truncated: Some(false), ..Default::default() });
    do_get_bucket_metrics_configuration(GetBucketMetricsConfigurationInput) -> GetBucketMetricsConfigurationOutput => Err(no_configuration());
    do_list_bucket_metrics_configurations(ListBucketMetricsConfigurationsInput) -> ListBucketMetricsConfigurationsOutput => Ok(ListBucketMetricsConfigurationsOutput { is_truncated: Some(false), ..Default::default() });
    do_delete_bucket_website(DeleteBucketWebsiteInput) -> DeleteBucketWebsiteOutput => Ok(DeleteBucketWebsiteOutput::default());
    do_delete_bucket_replication(DeleteBucketReplicationInput) -> DeleteBucketReplicationOutput => Ok(DeleteBucketReplicationOutput::default());
    do_delete_bucket_analytics_configuration(DeleteBucketAnalyticsConfigurationInput) -> DeleteBucketAnalyticsConfigurationOutput => Err(no_configuration());
    do_delete_bucket_intelligent_tiering_configuration(DeleteBucketIntelligentTieringConfigurationInput) -> DeleteBucketIntelligentTieringConfigurationOutput => Err(no_configuration());
    do_delete_bucket_inventory_configuration(DeleteBucketInventoryConfigurationInput) -> DeleteBucketInventoryConfigurationOutput => Err(no_configuration());
    do_delete_bucket_metrics_configuration(DeleteBucketMetricsConfigurationInput) -> DeleteBucketMetricsConfigurationOutput => Err(no_configuration());
}
