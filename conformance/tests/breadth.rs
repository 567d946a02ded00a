//! The S3 surface beyond the core (issue 4), one test per feature group of
//! `python/breadth.py`, each against its own server so they run in parallel.

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok};

fn group(tests: &[&str]) {
    let s = Server::start();
    let out = ok(&s.python_as("breadth.py", ROOT_USER, ROOT_PASS, tests));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn versioning() {
    group(&["versioning", "versioned_delete_objects_reports_markers"]);
}

#[test]
fn conditional_writes() {
    group(&["conditional_writes"]);
}
