//! CORS from a real browser: headless Chromium loads a page from another origin (a local
//! static server) that PUTs and GETs objects through presigned URLs and uploads a file with a
//! presigned POST form. The preflight, the
//! exposed ETag and the refusal of an origin the rules do not list are all the browser's own
//! decisions.

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, fails, free_port, ok, python, raw, run};

struct Static(Child);

impl Drop for Static {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn presign(s: &Server, method: &str, bucket: &str, key: &str) -> String {
    ok(&s.python_as("presign.py", ROOT_USER, ROOT_PASS, &[method, bucket, key]))
        .trim()
        .to_owned()
}

fn browser_result(page_url: &str, profile: &std::path::Path) -> String {
    let out = run(Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(page_url)
        .stderr(Stdio::null()));
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    dom.split("data-result=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no result in the page: {dom}"))
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn browser_cross_origin_put_and_get() {
    let s = Server::start();
    let page_port = free_port();
    let origin = format!("http://127.0.0.1:{page_port}");
    ok(&s.aws(&["s3", "mb", "s3://web"]));
    ok(&s.aws(&["s3", "mb", "s3://closed"]));
    let err = fails(&s.aws(&["s3api", "get-bucket-cors", "--bucket", "web"]));
    assert!(err.contains("NoSuchCORSConfiguration"), "{err}");
    let rules = format!(
        r#"{{"CORSRules":[{{"AllowedOrigins":["{origin}"],"AllowedMethods":["GET","PUT","POST"],"AllowedHeaders":["*"],"ExposeHeaders":["ETag"],"MaxAgeSeconds":60}}]}}"#
    );
    ok(&s.aws(&[
        "s3api",
        "put-bucket-cors",
        "--bucket",
        "web",
        "--cors-configuration",
        &rules,
    ]));
    let got = ok(&s.aws(&["s3api", "get-bucket-cors", "--bucket", "web"]));
    assert!(got.contains(&origin) && got.contains("ETag"), "{got}");
    let bad = r#"{"CORSRules":[{"AllowedOrigins":["*"],"AllowedMethods":["PATCH"]}]}"#;
    let err = fails(&s.aws(&[
        "s3api",
        "put-bucket-cors",
        "--bucket",
        "web",
        "--cors-configuration",
        bad,
    ]));
    assert!(err.contains("InvalidRequest"), "{err}");

    let put_url = presign(&s, "PUT", "web", "from-browser.txt");
    let get_url = presign(&s, "GET", "web", "from-browser.txt");
    ok(&s.aws(&["s3", "cp", "-", "s3://closed/secret.txt"]));
    let closed_url = presign(&s, "GET", "closed", "secret.txt");
    let post_form = presign(&s, "POST", "web", "form/posted.txt");

    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("page.html"),
        format!(
            r"<html><body><script>
(async () => {{
  const out = [];
  try {{
    const put = await fetch('{put_url}', {{method: 'PUT', body: 'written by a browser', headers: {{'Content-Type': 'text/plain', 'x-amz-meta-from': 'chromium'}}}});
    out.push('put:' + put.status + ':' + (put.headers.get('ETag') || 'no-etag'));
    const get = await fetch('{get_url}');
    out.push('get:' + get.status + ':' + (await get.text()));
    const form = {post_form};
    const fd = new FormData();
    for (const [k, v] of Object.entries(form.fields)) fd.append(k, v);
    fd.append('file', new Blob(['posted from a browser form'], {{type: 'text/plain'}}), 'b.txt');
    const post = await fetch(form.url, {{method: 'POST', body: fd}});
    out.push('post:' + post.status + ':' + ((await post.text()).includes('<Key>form/posted.txt</Key>')));
  }} catch (e) {{ out.push('error:' + e); }}
  try {{ await fetch('{closed_url}'); out.push('closed:readable'); }} catch (e) {{ out.push('closed:' + e.name); }}
  document.body.setAttribute('data-result', out.join('|'));
}})();
</script></body></html>"
        ),
    )
    .unwrap();
    let server = Static(
        Command::new(python())
            .args([
                "-m",
                "http.server",
                &page_port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", page_port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "static server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let result = browser_result(&format!("{origin}/page.html"), &dir.path().join("profile"));
    drop(server);
    let head = ok(&s.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "web",
        "--key",
        "from-browser.txt",
    ]));
    let head: serde_json::Value = serde_json::from_str(&head).unwrap();
    assert_eq!(head["Metadata"]["from"], "chromium", "{head}");
    let etag = head["ETag"].as_str().unwrap();
    assert_eq!(
        result,
        format!("put:200:{etag}|get:200:written by a browser|post:201:true|closed:TypeError"),
    );

    let posted = ok(&s.aws(&["s3", "cp", "s3://web/form/posted.txt", "-"]));
    assert_eq!(posted, "posted from a browser form");
    // The preflight by hand: allowed, and refused for another origin or method.
    let port = s
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let preflight = |origin: &str, method: &str| {
        raw(
            port,
            &format!(
                "OPTIONS /web/k HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: {method}\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n"
            ),
        )
        .unwrap()
    };
    let r = preflight(&origin, "PUT");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let lower = r.to_ascii_lowercase();
    assert!(
        lower.contains(&format!("access-control-allow-origin: {origin}")),
        "{r}"
    );
    assert!(lower.contains("access-control-max-age: 60"), "{r}");
    assert!(preflight("http://evil.test", "PUT").starts_with("HTTP/1.1 403"));
    assert!(preflight(&origin, "DELETE").starts_with("HTTP/1.1 403"));
    ok(&s.aws(&["s3api", "delete-bucket-cors", "--bucket", "web"]));
    assert!(preflight(&origin, "PUT").starts_with("HTTP/1.1 403"));
}
