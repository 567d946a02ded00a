//! Conformance: the real `fsgate` binary driven by real clients. One test binary (link time).
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

mod acl;
mod audit_log;
mod aws_cli;
mod aws_iam;
mod backup;
mod bench;
mod boto3;
mod breadth;
mod cors;
mod crash;
mod crash_points;
mod disk_full;
mod explain;
mod faults;
mod identity;
mod import;
mod integrity;
mod js_sdk;
mod kms_vault;
mod limits;
mod memory;
mod minio_admin;
mod minio_py;
mod minio_settings;
mod operations;
mod policy;
mod postgres_meta;
mod raw;
mod rclone;
mod restic;
mod rust_sdk;
mod s3_blobs;
mod s3cmd;
mod security;
mod share;
mod shutdown;
mod soak;
mod tls;
mod traces;
mod zero_copy;
