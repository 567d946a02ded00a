//! MinIO's admin API (issue 21, item 1): `python/minio_admin.py` drives it with `MinioAdmin`
//! from the `minio` package, as root and as users it makes.

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok};

fn group(tests: &[&str]) {
    let s = Server::start();
    let out = ok(&s.python_as("minio_admin.py", ROOT_USER, ROOT_PASS, tests));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn users_groups_and_canned_policies() {
    group(&["users_groups_and_canned_policies_as_a_minio_script"]);
}

#[test]
fn service_accounts() {
    group(&["service_accounts_with_policy_status_and_expiry"]);
}

#[test]
fn bucket_quota() {
    group(&["bucket_quota_is_enforced_on_writes"]);
}

#[test]
fn identity_configuration() {
    group(&["identity_configuration_through_config_kv"]);
}

#[test]
fn kms_keys() {
    group(&["kms_keys_through_the_admin_api"]);
}

#[test]
fn bad_input() {
    group(&["bad_input_changes_nothing"]);
}
