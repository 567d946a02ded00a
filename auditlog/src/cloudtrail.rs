//! Records in the shape of AWS CloudTrail events (`{"Records": [...]}`), for tools that read
//! CloudTrail logs.

use serde_json::{Value, json};

use crate::record::OwnedRecord;

/// The CloudTrail event of a record.
#[must_use]
pub fn event(r: &OwnedRecord) -> Value {
    let (source, name) = match r.action.split_once(':') {
        Some(("s3", op)) => ("s3.amazonaws.com", op),
        Some(("sts", op)) => ("sts.amazonaws.com", op),
        Some(("iam", op)) => ("iam.amazonaws.com", op),
        Some((_, op)) => ("fsgate.admin", op),
        None => ("fsgate", r.action.as_str()),
    };
    let identity = if r.principal == "-" {
        json!({"type": "AWSAccount", "principalId": "", "accountId": "anonymous"})
    } else {
        json!({
            "type": "IAMUser",
            "principalId": r.principal,
            "userName": r.principal,
            "accessKeyId": r.access_key,
        })
    };
    let read_only = ["Get", "List", "Head"]
        .iter()
        .any(|verb| name.starts_with(verb));
    let mut resources = Vec::new();
    if !r.bucket.is_empty() {
        resources
            .push(json!({"type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{}", r.bucket)}));
        if !r.key.is_empty() {
            resources.push(json!({"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{}/{}", r.bucket, r.key)}));
        }
    }
    let mut e = json!({
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": r.time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": r.source_ip,
        "userAgent": r.user_agent,
        "requestParameters": {
            "bucketName": r.bucket,
            "key": r.key,
            "versionId": r.version_id,
        },
        "responseElements": null,
        "additionalEventData": {
            "bytesTransferredIn": r.bytes_in,
            "bytesTransferredOut": r.bytes_out,
            "authenticationMethod": r.auth,
            "decision": r.decision,
            "policies": r.policies,
            "httpStatus": r.status,
            "durationMicros": r.duration_us,
            "logPosition": r.seq,
        },
        "requestID": r.request_id,
        "eventID": r.request_id,
        "readOnly": read_only,
        "resources": resources,
        "eventType": "AwsApiCall",
        "managementEvent": r.bucket.is_empty(),
        "recipientAccountId": "",
    });
    if !r.error_code.is_empty()
        && let Some(o) = e.as_object_mut()
    {
        o.insert("errorCode".into(), Value::String(r.error_code.clone()));
    }
    e
}
