//! A real PostgreSQL for the suite's `postgres::` tests: one server per test process, started
//! on first use from Debian's binaries (`scripts/deps.sh` installs them) in a temporary
//! directory on a free port, and one schema per test, so tests run side by side. A watchdog
//! stops the server and removes its directory when the test process exits (a static is never
//! dropped): it waits for the end of a pipe only this process holds open. `initdb` refuses root: as root, the server runs as the `postgres` user.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Server {
    port: u16,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static SCHEMAS: AtomicU64 = AtomicU64::new(0);

/// The newest installed PostgreSQL's `bin` directory.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/deps.sh")
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL under /usr/lib/postgresql: run scripts/deps.sh")
        .1
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sh -c script`, as the `postgres` user when this process is root.
fn shell(script: &str) -> Command {
    if rustix::process::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }
}

fn start() -> Server {
    let bin = bin_dir();
    let dir = tempfile::Builder::new()
        .prefix("fsgate-pg-")
        .tempdir()
        .unwrap()
        .keep();
    if rustix::process::geteuid().is_root() {
        let st = Command::new("chown")
            .args(["-R", "postgres:", dir.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success(), "chown of the PostgreSQL directory failed");
    }
    let d = dir.display();
    let b = bin.display();
    let out = shell(&format!(
        "{b}/initdb -D {d}/data -U postgres --auth=trust -E UTF8 --no-sync >{d}/initdb.log 2>&1"
    ))
    .stdin(std::process::Stdio::null())
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "initdb failed: {}",
        std::fs::read_to_string(dir.join("initdb.log")).unwrap_or_default()
    );
    let port = free_port();
    // The server, and a watchdog that stops it and removes its directory once this test
    // process is gone: its standard input is a pipe whose other end this process holds until
    // it exits, however it exits. fsync off: these tests check logic, not the disk.
    let mut watchdog = shell(&format!(
        "{b}/postgres -D {d}/data -p {port} -k {d} -c listen_addresses=127.0.0.1 \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
         -c max_connections=300 </dev/null >{d}/server.log 2>&1 & pg=$!; \
         cat >/dev/null; kill -INT $pg 2>/dev/null; wait $pg; rm -rf {d}"
    ));
    let mut watchdog = watchdog
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The pipe's end, held open for the life of the process; the watchdog outlives it (and is
    // reaped by init).
    std::mem::forget(watchdog.stdin.take());
    std::mem::forget(watchdog);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match postgres::Client::connect(
            &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            postgres::NoTls,
        ) {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!(
                "PostgreSQL did not start: {e}\n{}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            ),
        }
    }
    Server { port }
}

/// A URL for a new, empty schema on the suite's PostgreSQL.
pub fn fresh_url() -> String {
    let port = SERVER.get_or_init(start).port;
    let schema = format!("t{}", SCHEMAS.fetch_add(1, Ordering::SeqCst));
    let base = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let mut c = postgres::Client::connect(&base, postgres::NoTls).unwrap();
    c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
    format!("{base} options='-c search_path={schema}'")
}
