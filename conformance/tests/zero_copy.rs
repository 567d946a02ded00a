//! Downloads with `sendfile` (plain HTTP, the default) and without (`--zero-copy off`, the path
//! HTTPS always takes) return the same bytes: whole objects, ranges across part and chunk
//! boundaries, bodies abandoned half-way and pipelined requests, over keep-alive connections.
//! The same holds for objects uploaded with `--direct-writes on` (written past the page cache,
//! so their first reads come from the disk).

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok};

fn suite(s: &Server) {
    let out = ok(&s.python_as("download_suite.py", ROOT_USER, ROOT_PASS, &[]));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn downloads_with_sendfile() {
    suite(&Server::start());
}

#[test]
fn downloads_without_sendfile() {
    suite(&Server::start_with(&["--zero-copy", "off"]));
}

#[test]
fn downloads_of_objects_written_past_the_page_cache() {
    suite(&Server::start_with(&["--direct-writes", "on"]));
}
