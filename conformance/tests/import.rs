//! `fsctl import s3` (issue 21, item 7): `python/import_s3.py` fills one fsgate and imports it
//! into another, killed midway and resumed; and imports a plain `rclone serve s3` source. And
//! `fsctl import iam` from an export zip.

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, bin, ok};

fn group(tests: &[&str]) {
    let (source, dest) = (Server::start(), Server::start());
    let fsctl = bin("fsctl");
    let mut args = vec![dest.endpoint(), fsctl.display().to_string()];
    args.extend(tests.iter().map(|t| (*t).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(&source.python_as("import_s3.py", ROOT_USER, ROOT_PASS, &args));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn versioned_locked_source_after_an_interruption() {
    group(&["versioned_locked_tagged_source_imports_after_an_interruption"]);
}

#[test]
fn plain_source_and_a_vanished_one() {
    group(&["plain_rclone_source_imports_and_a_vanished_source_fails_clearly"]);
}

/// `fsctl import iam`: `python/import_iam.py` builds an export zip in MinIO's shape and imports it.
#[test]
fn iam_export_zip() {
    let s = Server::start();
    let fsctl = bin("fsctl").display().to_string();
    let out = ok(&s.python_as(
        "import_iam.py",
        ROOT_USER,
        ROOT_PASS,
        &[
            &fsctl,
            "minio_export_imports_with_keys_policies_and_refusals",
        ],
    ));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}
