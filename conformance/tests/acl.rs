//! ACLs and ownership (issue 20): `python/acl.py` against a running fsgate, as root with a
//! second user holding nothing and anonymous callers.

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok};

fn group(tests: &[&str]) {
    let s = Server::start();
    let out = ok(&s.python_as("acl.py", ROOT_USER, ROOT_PASS, tests));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn bucket_acls() {
    group(&["bucket_acls_grant_what_aws_documents"]);
}

#[test]
fn public_acls() {
    group(&["public_acls_and_the_public_access_block"]);
}

#[test]
fn objects_of_others_and_grant_errors() {
    group(&["objects_written_by_others_and_grant_errors"]);
}

#[test]
fn concurrent_writes_settle() {
    group(&["concurrent_writes_settle_on_the_current_version"]);
}

#[test]
fn ownership_controls() {
    group(&["ownership_controls"]);
}

#[test]
fn owner_role() {
    group(&["the_owner_role_makes_tenants"]);
}

#[test]
fn request_header_conditions() {
    group(&["bucket_policy_conditions_on_request_headers"]);
}

#[test]
fn account_public_access_block() {
    group(&["account_public_access_block"]);
}

#[test]
fn iam_json_identity_policies() {
    group(&["iam_json_identity_policies"]);
}
