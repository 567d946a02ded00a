//! s3cmd (Debian): mb, put (single and multipart), ls, get, sync, del, rb.

use std::fs;

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok, run, unique};

fn s3cmd(s: &Server, cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    run(s.cmd("s3cmd").arg("-c").arg(cfg).args(args))
}

#[test]
fn s3cmd_round_trip() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("s3cfg");
    let host = format!("127.0.0.1:{}", s.port);
    fs::write(
        &cfg,
        format!(
            "[default]\naccess_key = {ROOT_USER}\nsecret_key = {ROOT_PASS}\nhost_base = {host}\nhost_bucket = {host}\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\nmultipart_chunk_size_mb = 5\n"
        ),
    )
    .unwrap();
    let b = unique("s3cmd");
    let url = format!("s3://{b}");
    ok(&s3cmd(&s, &cfg, &["mb", &url]));
    let small = dir.path().join("small.txt");
    fs::write(&small, b"s3cmd small").unwrap();
    let big = dir.path().join("big.bin");
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    fs::write(&big, &data).unwrap();
    ok(&s3cmd(
        &s,
        &cfg,
        &[
            "put",
            small.to_str().unwrap(),
            &format!("{url}/dir/small.txt"),
        ],
    ));
    ok(&s3cmd(
        &s,
        &cfg,
        &["put", big.to_str().unwrap(), &format!("{url}/big.bin")],
    ));
    let ls = ok(&s3cmd(&s, &cfg, &["ls", "--recursive", &url]));
    assert!(
        ls.contains("dir/small.txt") && ls.contains("big.bin"),
        "{ls}"
    );
    let top = ok(&s3cmd(&s, &cfg, &["ls", &url]));
    assert!(
        top.contains("DIR") && top.contains(&format!("{url}/dir/")),
        "{top}"
    );
    let got = dir.path().join("got.bin");
    ok(&s3cmd(
        &s,
        &cfg,
        &["get", &format!("{url}/big.bin"), got.to_str().unwrap()],
    ));
    assert_eq!(fs::read(&got).unwrap(), data);
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("x/y")).unwrap();
    fs::write(tree.join("x/y/z.txt"), b"zzz").unwrap();
    fs::write(tree.join("top.txt"), b"top").unwrap();
    ok(&s3cmd(
        &s,
        &cfg,
        &[
            "sync",
            &format!("{}/", tree.display()),
            &format!("{url}/tree/"),
        ],
    ));
    let ls = ok(&s3cmd(
        &s,
        &cfg,
        &["ls", "--recursive", &format!("{url}/tree/")],
    ));
    assert!(
        ls.contains("tree/x/y/z.txt") && ls.contains("tree/top.txt"),
        "{ls}"
    );
    ok(&s3cmd(&s, &cfg, &["del", "--recursive", "--force", &url]));
    ok(&s3cmd(&s, &cfg, &["rb", &url]));
}
