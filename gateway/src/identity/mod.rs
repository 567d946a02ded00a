//! Who is asking: the IAM cache (users, keys, groups, service accounts, STS sessions,
//! revocations) and authentication against it (`iam`), the facts a signature carries
//! (`signing`: signing time, expiry, session token, read as s3s reads them), the one decoding
//! of the query string (`query`), identity providers (`oidc`, `ldap`) and what they vouch for
//! (`federated`), bearer tokens (`bearer`), credential generation and comparison (`keys`), and
//! SigV4 for the IAM scope s3s does not verify (`sigv4_iam`), and the providers MinIO's
//! settings describe (`minio_providers`).
//!
//! It decides nothing: `access` asks Cedar. It must not depend on `server`, `admin`, `sts` or
//! `s3`, which use it.

pub mod bearer;
pub mod federated;
pub mod iam;
pub mod keys;
pub mod ldap;
pub mod minio_providers;
pub mod oidc;
pub mod query;
pub mod signing;
pub mod sigv4_iam;

/// fsgate's one account: the owner of every bucket, and what `x-amz-expected-bucket-owner`
/// must name.
pub const ACCOUNT_ID: &str = "fsgate";
