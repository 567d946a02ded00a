//! The AWS SDK for Rust (aws-sdk-s3): its default checksums (CRC32, CRC64NVME), streaming
//! uploads, listing, multipart and batch delete.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete,
    ObjectIdentifier,
};
use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, unique};

/// A client for `s` with the given credentials.
pub fn client(s: &Server, ak: &str, sk: &str) -> Client {
    let creds = aws_credential_types::Credentials::new(ak, sk, None, None, "test");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(s.endpoint())
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_core() {
    let s = Server::start();
    let c = client(&s, ROOT_USER, ROOT_PASS);
    let b = unique("sdk");
    c.create_bucket().bucket(&b).send().await.unwrap();
    let body = vec![42u8; 100_000];
    for algo in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha256,
    ] {
        let key = format!("obj-{}", algo.as_str());
        c.put_object()
            .bucket(&b)
            .key(&key)
            .checksum_algorithm(algo.clone())
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let got = c
            .get_object()
            .bucket(&b)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let has = match algo {
            ChecksumAlgorithm::Crc32 => got.checksum_crc32().is_some(),
            ChecksumAlgorithm::Crc64Nvme => got.checksum_crc64_nvme().is_some(),
            _ => got.checksum_sha256().is_some(),
        };
        assert!(has, "{algo:?} checksum not returned");
        let data = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(data.as_ref(), body.as_slice());
    }
    let listed = c.list_objects_v2().bucket(&b).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(3));

    // Multipart with part checksums.
    let up = c
        .create_multipart_upload()
        .bucket(&b)
        .key("mp")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let uid = up.upload_id().unwrap().to_owned();
    let mut parts = Vec::new();
    for (n, len) in [(1, 5 * 1024 * 1024), (2, 777)] {
        let r = c
            .upload_part()
            .bucket(&b)
            .key("mp")
            .upload_id(&uid)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(vec![n as u8; len]))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .set_checksum_crc32(r.checksum_crc32().map(str::to_owned))
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(&b)
        .key("mp")
        .upload_id(&uid)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = c.get_object().bucket(&b).key("mp").send().await.unwrap();
    assert_eq!(got.content_length(), Some(5 * 1024 * 1024 + 777));
    let data = got.body.collect().await.unwrap().into_bytes();
    assert!(
        data[..5 * 1024 * 1024].iter().all(|x| *x == 1)
            && data[5 * 1024 * 1024..].iter().all(|x| *x == 2)
    );

    let del = Delete::builder()
        .set_objects(Some(
            ["obj-CRC32", "mp"]
                .iter()
                .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
                .collect(),
        ))
        .build()
        .unwrap();
    let r = c
        .delete_objects()
        .bucket(&b)
        .delete(del)
        .send()
        .await
        .unwrap();
    assert_eq!(r.deleted().len(), 2);
    let err = c
        .get_object()
        .bucket(&b)
        .key("mp")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_key());
}
