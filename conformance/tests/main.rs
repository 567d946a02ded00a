//! Conformance: the real `fsgate` binary driven by real clients. One test binary (link time).

mod aws_cli;
mod boto3;
mod crash;
mod minio_py;
mod policy;
mod raw;
mod rclone;
mod rust_sdk;
mod s3cmd;
