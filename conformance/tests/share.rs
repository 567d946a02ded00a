//! Share links (`fsctl share`) against a running fsgate: plain `curl` downloads, exact download
//! limits under 100 concurrent GETs, revocation racing downloads, expiry, passwords and their
//! attempt limits, upload-only links, folders, rights that follow the creator, an admin's
//! policy on links, the audit records of every use, and the pages in headless Chromium.

use std::fs;
use std::process::Command;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use fsgate_conformance::{Server, add_user, fails, json_lines, ok, python, run};
use serde_json::Value;

/// `fsctl share create ... --json` as `user`, returning (id, url).
fn create(s: &Server, who: (&str, &str), args: &[&str]) -> (String, String) {
    let mut all = vec!["share", "create"];
    all.extend_from_slice(args);
    let out = ok(&s.fsctl_as(who.0, who.1, &all));
    let v = &json_lines(&out)[0];
    assert!(
        v["expires"].as_str().is_some_and(|e| e.contains('T')),
        "{v}"
    );
    (
        v["id"].as_str().unwrap().to_owned(),
        v["url"].as_str().unwrap().to_owned(),
    )
}

/// `curl` with `args`; (status, body).
fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = run(Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args));
    let mut body = out.stdout;
    let pos = body.iter().rposition(|b| *b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&body[pos + 1..]).parse().unwrap();
    body.truncate(pos);
    (status, body)
}

/// A plain GET of `url` with no credentials: status and body (HTTP/1.1 over a socket, so 100
/// of them can run at once without 100 processes).
fn get(url: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut sock = std::net::TcpStream::connect(host).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: share-test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out[split + 4..].to_vec())
}

fn audit_of(s: &Server, id: &str) -> Vec<Value> {
    json_lines(&ok(&s.fsctl(&[
        "audit",
        "query",
        "--principal",
        &format!("sharelink:{id}"),
        "--limit",
        "1000",
    ])))
}

#[test]
fn share_links_download_limits_revocation_and_passwords() {
    let s = Server::start();
    ok(&s.aws(&["s3", "mb", "s3://team"]));
    let (ak, sk) = add_user(&s, "alice");
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "alice",
        "--role",
        "readwrite",
        "--bucket",
        "team",
    ]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.pdf");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&file, &bytes).unwrap();
    ok(&s.aws_as(
        &ak,
        &sk,
        &[
            "s3",
            "cp",
            "--only-show-errors",
            file.to_str().unwrap(),
            "s3://team/q3/report.pdf",
        ],
    ));
    let alice = (ak.as_str(), sk.as_str());

    // A plain download with curl, named as the file; HEAD answers without counting.
    let (id, url) = create(
        &s,
        alice,
        &["team/q3/report.pdf", "--ttl", "1h", "--label", "board"],
    );
    let (status, body) = curl(&[&url]);
    assert_eq!(status, 200);
    assert_eq!(body, bytes, "the whole file, byte for byte");
    let head = String::from_utf8_lossy(&run(Command::new("curl").args(["-sI", &url])).stdout)
        .to_lowercase();
    assert!(head.contains("content-length: 200000"), "{head}");
    let dl = String::from_utf8_lossy(
        &run(Command::new("curl").args(["-s", "-D", "-", "-o", "/dev/null", &url])).stdout,
    )
    .to_lowercase();
    assert!(
        dl.contains("content-disposition: attachment; filename=\"report.pdf\""),
        "{dl}"
    );
    // A range is served as a range.
    let (status, part) = curl(&["-r", "10-19", &url]);
    assert_eq!((status, part.as_slice()), (206, &bytes[10..20]));
    // A wrong secret, or an unknown id, is the same 404.
    let (status, _) = curl(&[&format!("{}x", url)]);
    assert_eq!(status, 404);
    let (status, _) = curl(&[&url.replace(&id, "0000000000000000")]);
    assert_eq!(status, 404);
    // A browser gets the page, not the bytes.
    let (status, page) = curl(&["-H", "Accept: text/html", &url]);
    let page = String::from_utf8_lossy(&page);
    assert_eq!(status, 200);
    assert!(
        page.contains("report.pdf")
            && page.contains("195.3 KiB")
            && page.contains("id=\"download\""),
        "{page}"
    );

    // Exactly 10 of 100 concurrent downloads of a 10-download link succeed.
    let (limited_id, limited) = create(&s, alice, &["team/q3/report.pdf", "--max-downloads", "10"]);
    let barrier = Arc::new(Barrier::new(100));
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let (b, u, want) = (barrier.clone(), limited.clone(), bytes.clone());
            std::thread::spawn(move || {
                b.wait();
                let (status, body) = get(&u);
                assert!(status != 200 || body == want, "a served download is whole");
                status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let served = statuses.iter().filter(|s| **s == 200).count();
    let gone = statuses.iter().filter(|s| **s == 410).count();
    println!("download limit 10 under 100 concurrent GETs: {served} served, {gone} refused (410)");
    assert_eq!((served, gone), (10, 90), "{statuses:?}");
    let ls = json_lines(&ok(&s.fsctl_as(alice.0, alice.1, &["share", "ls"])));
    let rec = ls.iter().find(|l| l["id"] == limited_id.as_str()).unwrap();
    assert_eq!(
        (rec["uses"].as_u64(), rec["state"].as_str()),
        (Some(10), Some("exhausted")),
        "{rec}"
    );

    // Revocation races downloads: nothing sent after `revoke` returned is served.
    let (race_id, race) = create(&s, alice, &["team/q3/report.pdf"]);
    let log: Arc<Mutex<Vec<(Instant, u16)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (u, log, stop) = (race.clone(), log.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let sent = Instant::now();
                    let (status, _) = get(&u);
                    log.lock().unwrap().push((sent, status));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    ok(&s.fsctl_as(alice.0, alice.1, &["share", "revoke", &race_id]));
    let returned = Instant::now();
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let log = log.lock().unwrap();
    let before_ok = log
        .iter()
        .filter(|(t, st)| *t < returned && *st == 200)
        .count();
    let after: Vec<u16> = log
        .iter()
        .filter(|(t, _)| *t > returned)
        .map(|(_, st)| *st)
        .collect();
    let after_ok = after.iter().filter(|st| **st == 200).count();
    println!(
        "revocation race: {before_ok} downloads served before revoke returned, {} sent after it: {after_ok} served",
        after.len()
    );
    assert!(
        before_ok > 0 && !after.is_empty(),
        "the race ran both sides"
    );
    assert_eq!(
        after_ok, 0,
        "a download sent after the revocation returned was served"
    );
    assert!(after.iter().all(|st| *st == 410), "{after:?}");

    // Expiry.
    let (_, short) = create(&s, alice, &["team/q3/report.pdf", "--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(curl(&[&short]).0, 410);
    // Longer than the server allows, or no such bucket: refused with a reason.
    let err = fails(&s.fsctl_as(
        alice.0,
        alice.1,
        &["share", "create", "team/q3/report.pdf", "--ttl", "30d"],
    ));
    assert!(err.contains("maximum"), "{err}");
    let err = fails(&s.fsctl_as(alice.0, alice.1, &["share", "create", "nope/x"]));
    assert!(err.contains("bucket not found"), "{err}");

    // Passwords: curl with -u :PASSWORD or the header; none or a wrong one is 401 with the
    // form; guesses are limited per link.
    let (_, locked) = create(
        &s,
        alice,
        &["team/q3/report.pdf", "--password", "open sesame"],
    );
    let (status, page) = curl(&[&locked]);
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&page).contains("name=\"password\""));
    // A browser gets the form as a 403 (a 401's challenge would open the browser's dialog).
    assert_eq!(curl(&["-H", "Accept: text/html", &locked]).0, 403);
    assert_eq!(curl(&["-u", ":wrong", &locked]).0, 401);
    let (status, body) = curl(&["-u", ":open sesame", &locked]);
    assert_eq!((status, body == bytes), (200, true));
    let (status, _) = curl(&["-H", "X-Fsgate-Share-Password: open sesame", &locked]);
    assert_eq!(status, 200);
    let mut limited_at = None;
    for i in 0..12 {
        if curl(&["-u", ":guess", &locked]).0 == 429 {
            limited_at = Some(i);
            break;
        }
    }
    assert!(limited_at.is_some(), "password guesses were never limited");
    // Still limited for the right password within the window (guessing gains nothing).
    assert_eq!(curl(&["-u", ":open sesame", &locked]).0, 429);
    // A generated password is printed once.
    let out = ok(&s.fsctl_as(
        alice.0,
        alice.1,
        &["share", "create", "team/q3/report.pdf", "--password"],
    ));
    let v = &json_lines(&out)[0];
    let generated = v["password"].as_str().unwrap();
    assert!(generated.len() >= 20);
    assert_eq!(
        curl(&["-u", &format!(":{generated}"), v["url"].as_str().unwrap()]).0,
        200
    );

    // A folder link: its page lists the folder; its files download; nothing outside it.
    ok(&s.aws_as(
        alice.0,
        alice.1,
        &[
            "s3",
            "cp",
            "--only-show-errors",
            file.to_str().unwrap(),
            "s3://team/q3/notes/a b.txt",
        ],
    ));
    ok(&s.aws_as(
        alice.0,
        alice.1,
        &[
            "s3",
            "cp",
            "--only-show-errors",
            file.to_str().unwrap(),
            "s3://team/secret.txt",
        ],
    ));
    let (_, folder) = create(&s, alice, &["team/q3/"]);
    let (status, page) = curl(&[&folder]);
    let page = String::from_utf8_lossy(&page);
    assert_eq!(status, 200);
    assert!(
        page.contains("report.pdf") && page.contains("notes/a b.txt") && !page.contains("secret"),
        "{page}"
    );
    let (status, body) = curl(&[&format!("{folder}/notes/a%20b.txt")]);
    assert_eq!((status, body == bytes), (200, true));
    // `..` is part of a key in S3, not a way out of the folder.
    assert_eq!(
        curl(&[&format!("{folder}/../secret.txt"), "--path-as-is"]).0,
        404
    );

    // Upload-only: files go in, never replace one, never come out; the size limit holds.
    let (up_id, up) = create(
        &s,
        alice,
        &[
            "team/inbox/",
            "--upload-only",
            "--max-size",
            "1KiB",
            "--max-downloads",
            "3",
        ],
    );
    let small = dir.path().join("small.txt");
    fs::write(&small, b"dropped off").unwrap();
    let (status, _) = curl(&["-T", small.to_str().unwrap(), &format!("{up}/")]);
    assert_eq!(status, 200);
    let got = ok(&s.aws(&["s3", "cp", "s3://team/inbox/small.txt", "-"]));
    assert_eq!(got, "dropped off");
    assert_eq!(
        curl(&["-T", small.to_str().unwrap(), &format!("{up}/")]).0,
        412,
        "no overwrite"
    );
    assert_eq!(
        curl(&["-T", file.to_str().unwrap(), &format!("{up}/big.pdf")]).0,
        413
    );
    let (status, body) = curl(&[&format!("{up}/small.txt")]);
    assert_eq!(status, 405, "an upload link serves nothing");
    assert!(!String::from_utf8_lossy(&body).contains("dropped off"));
    let (status, page) = curl(&[&up]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("id=\"upload\""));
    let up_rec = json_lines(&ok(&s.fsctl_as(alice.0, alice.1, &["share", "ls"])))
        .into_iter()
        .find(|l| l["id"] == up_id.as_str())
        .unwrap();
    assert_eq!(
        up_rec["uses"].as_u64(),
        Some(1),
        "refused uploads use nothing: {up_rec}"
    );

    // Rights follow the creator: detach alice's role and her links stop; attach it back and
    // they work; disable her and they stop again.
    let (_, follow) = create(&s, alice, &["team/q3/report.pdf"]);
    assert_eq!(curl(&[&follow]).0, 200);
    let atts = json_lines(&ok(&s.fsctl(&["policy", "ls"])));
    let att = atts.iter().find(|a| a["user"] == "alice").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&s.fsctl(&["policy", "detach", &att]));
    assert_eq!(curl(&[&follow]).0, 403, "the creator lost the right");
    ok(&s.fsctl(&[
        "policy", "attach", "--user", "alice", "--role", "readonly", "--bucket", "team",
    ]));
    assert_eq!(curl(&[&follow]).0, 200);
    ok(&s.fsctl(&["user", "disable", "alice"]));
    assert_eq!(curl(&[&follow]).0, 403, "a disabled creator's links stop");
    ok(&s.fsctl(&["user", "enable", "alice"]));
    assert_eq!(curl(&[&follow]).0, 200);

    // Revoking every link of an object, and of a user (root may revoke anyone's).
    let out = ok(&s.fsctl(&["share", "revoke", "--object", "team/q3/report.pdf"]));
    assert!(
        !json_lines(&out)[0]["revoked"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(curl(&[&follow]).0, 410);
    let (_, last) = create(&s, alice, &["team/q3/report.pdf"]);
    ok(&s.fsctl(&["share", "revoke", "--user", "alice"]));
    assert_eq!(curl(&[&last]).0, 410);
    // Another user can neither list nor revoke alice's links.
    let (bk, bs) = add_user(&s, "bob");
    fails(&s.fsctl_as(&bk, &bs, &["share", "ls", "--user", "alice"]));
    fails(&s.fsctl_as(&bk, &bs, &["share", "revoke", &id]));
    // bob cannot share what he cannot read.
    let err = fails(&s.fsctl_as(&bk, &bs, &["share", "create", "team/q3/report.pdf"]));
    assert!(err.contains("would not be allowed"), "{err}");

    // Every use is audited under the link, with source, user agent, bytes and outcome.
    let records = audit_of(&s, &limited_id);
    assert_eq!(records.len(), 100, "one record per request");
    let served: Vec<&Value> = records.iter().filter(|r| r["status"] == 200).collect();
    assert_eq!(served.len(), 10);
    for r in &served {
        assert_eq!(r["bytes_out"].as_u64(), Some(200_000), "{r}");
        assert_eq!(r["user_agent"], "share-test", "{r}");
        assert_eq!(r["source_ip"], "127.0.0.1", "{r}");
        assert_eq!(r["decision"], "allow", "{r}");
        assert_eq!(r["auth"], "sharelink", "{r}");
    }
    let refused = records.iter().find(|r| r["status"] == 410).unwrap();
    assert_eq!(refused["decision"], "deny", "{refused}");
    assert!(
        refused.to_string().contains("share-link:exhausted"),
        "{refused}"
    );
}

/// An admin's policy on links: a forbid of password-less links refuses them at creation, and
/// a `forbid` on a bucket stops links into it even when the creator may read.
#[test]
fn share_links_obey_policies_on_links() {
    let (_dir, pol) = fsgate_conformance::policy_dir_copy();
    fs::write(
        pol.join("links.cedar"),
        "@id(\"links-need-passwords\")\nforbid (principal is ShareLink, action, resource) unless { principal.has_password };\n\
         @id(\"no-links-to-vault\")\nforbid (principal is ShareLink, action, resource in Bucket::\"vault\");\n",
    )
    .unwrap();
    let s = Server::start_with(&["--policies", pol.to_str().unwrap()]);
    let (ak, sk) = add_user(&s, "carol");
    ok(&s.aws(&["s3", "mb", "s3://docs"]));
    ok(&s.aws(&["s3", "mb", "s3://vault"]));
    for b in ["docs", "vault"] {
        ok(&s.fsctl(&[
            "policy", "attach", "--user", "carol", "--role", "readonly", "--bucket", b,
        ]));
        ok(&s.aws(&["s3", "cp", "-", &format!("s3://{b}/f.txt")]));
    }
    let err = fails(&s.fsctl_as(&ak, &sk, &["share", "create", "docs/f.txt"]));
    assert!(err.contains("links-need-passwords"), "{err}");
    let (id, url) = create(&s, (&ak, &sk), &["docs/f.txt", "--password", "pw"]);
    assert_eq!(curl(&["-u", ":pw", &url]).0, 200);
    // `policy test` explains a link like any principal: its own policy and its creator's.
    let test = |action: &str, resource: &str| {
        json_lines(&ok(&s.fsctl(&[
            "policy",
            "test",
            "--principal",
            &format!("sharelink:{id}"),
            "--action",
            action,
            "--resource",
            resource,
        ])))
        .remove(0)
    };
    let d = test("s3:GetObject", "docs/f.txt");
    assert_eq!(d["decision"], "allow", "{d}");
    let policies = d["policies"].to_string();
    assert!(
        policies.contains("share-link-read") && policies.contains("creator:att-"),
        "{d}"
    );
    let d = test("s3:PutObject", "docs/f.txt");
    assert_eq!(d["decision"], "deny", "a download link does not write: {d}");
    let d = test("s3:GetObject", "docs/other.txt");
    assert_eq!(
        d["policies"],
        serde_json::json!(["share-link:outside-its-object"]),
        "{d}"
    );
    let err = fails(&s.fsctl_as(
        &ak,
        &sk,
        &["share", "create", "vault/f.txt", "--password", "pw"],
    ));
    assert!(err.contains("no-links-to-vault"), "{err}");
}

/// The recipient's pages in headless Chromium (Selenium + ChromeDriver): the password form,
/// a wrong and a right password, the download button's bytes, and the upload form.
#[test]
fn share_link_pages_in_a_browser() {
    let s = Server::start();
    ok(&s.aws(&["s3", "mb", "s3://web"]));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hello.txt");
    fs::write(&f, b"hello from a share link").unwrap();
    ok(&s.aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        f.to_str().unwrap(),
        "s3://web/docs/hello.txt",
    ]));
    let root = (fsgate_conformance::ROOT_USER, fsgate_conformance::ROOT_PASS);
    let (_, download) = create(&s, root, &["web/docs/hello.txt", "--password", "letmein"]);
    let (_, upload) = create(&s, root, &["web/drop/", "--upload-only"]);
    let upfile = dir.path().join("from-browser.txt");
    fs::write(&upfile, b"uploaded by chromium").unwrap();
    let out = ok(&run(Command::new(python())
        .arg(fsgate_conformance::scripts().join("share_browser.py"))
        .args([&download, "letmein", &upload, upfile.to_str().unwrap()])));
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}"));
    assert_eq!(v["form_shown"], true, "{v}");
    assert_eq!(v["wrong_password_error"], true, "{v}");
    assert_eq!(v["name"], "hello.txt", "{v}");
    assert_eq!(v["size"], "23", "{v}");
    assert_eq!(v["downloaded"], "hello from a share link", "{v}");
    assert_eq!(v["upload_status"], "done", "{v}");
    let got = ok(&s.aws(&["s3", "cp", "s3://web/drop/from-browser.txt", "-"]));
    assert_eq!(got, "uploaded by chromium");
}
