//! AWS's IAM query API (issue 21, item 2): `python/aws_iam.py` drives it with boto3's IAM
//! client and `aws iam --endpoint-url`, as root and as users it makes.

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok};

fn group(tests: &[&str]) {
    let s = Server::start();
    let out = ok(&s.python_as("aws_iam.py", ROOT_USER, ROOT_PASS, tests));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn users_keys_and_inline_policies() {
    group(&["users_keys_and_inline_policies_with_boto3"]);
}

#[test]
fn managed_policies_and_groups() {
    group(&["managed_policies_and_groups"]);
}

#[test]
fn refusals_and_the_aws_cli() {
    group(&[
        "callers_without_the_right_are_refused",
        "aws_cli_drives_it_too",
    ]);
}
