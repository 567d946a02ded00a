//! `fsctl bench`: a load generator in the spirit of MinIO's warp. Keep-alive HTTP/1.1
//! connections, SigV4 per request (unsigned payload), distinct object contents (no dedup wins),
//! bounded by object count and duration; prints ops/s, MiB/s and latency percentiles.
//!
//! `mixed --versioning --multipart` is a soak's mix (`mix`), and `--interval`/`--watch-pid`
//! record a time series of throughput, p99 and the server's memory and descriptors (`watch`).

mod mix;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use aws_sigv4::http_request::SignableBody;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::aliases::Alias;

/// What to measure.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Workload {
    /// Upload objects.
    Put,
    /// Download objects (uploaded first).
    Get,
    /// Delete objects (uploaded first).
    Delete,
    /// 45% GET, 30% HEAD, 15% PUT, 10% DELETE (warp's mix).
    Mixed,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Delete => "delete",
            Workload::Mixed => "mixed",
        }
    }
}

/// `fsctl bench` arguments.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Workload.
    #[arg(value_enum)]
    workload: Workload,
    /// Number of objects.
    #[arg(long, default_value_t = 1000)]
    objects: usize,
    /// Object size, e.g. 4KiB, 1MiB, 64MiB.
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    size: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Longest run of the measured phase, e.g. 30s, 2m. GET and mixed run this long; PUT and
    /// DELETE stop at whichever comes first, the object count or this.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Bucket to use (created if missing; default: a new one, removed afterwards). Objects
    /// written into a named bucket stay there.
    #[arg(long)]
    bucket: Option<String>,
    /// GET/DELETE/mixed: the objects already exist (written by an earlier `bench put` with the
    /// same --bucket, --objects and --size), so nothing is uploaded first.
    #[arg(long, requires = "bucket")]
    existing: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// mixed: turn versioning on for the bucket; PUTs keep at most 4 noncurrent versions per
    /// key (deleting the oldest by version id) and DELETEs remove versions.
    #[arg(long)]
    versioning: bool,
    /// mixed: multipart uploads (create, part, complete or abort) in the mix.
    #[arg(long)]
    multipart: bool,
    /// mixed: print and record, every interval, throughput, errors and p50/p99 (and the
    /// watched process's memory and descriptors), e.g. 10s, 1m.
    #[arg(long, value_parser = parse_duration)]
    interval: Option<Duration>,
    /// mixed: sample this process's resident memory and open descriptors each interval
    /// (Linux; the server's pid when it runs on this machine).
    #[arg(long)]
    watch_pid: Option<u32>,
}

pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("bad size {s}"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1024,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(format!("bad size unit in {s}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s} too large"))
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("bad duration unit in {s}")),
    };
    Ok(Duration::from_secs_f64(secs))
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Target {
    client: HttpClient,
    conn: Alias,
    base: String,
}

impl Target {
    /// Signs and sends a request (unsigned payload).
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        let url = format!("{}{path}", self.base);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .body(Full::new(body))?;
        crate::client::sign_request(&self.conn, &mut req, SignableBody::UnsignedPayload)?;
        Ok(self.client.request(req).await?)
    }

    /// Sends a request; the answer's status and how many bytes its body had.
    async fn send(&self, method: &str, path: &str, body: Bytes) -> Result<(u16, u64)> {
        let resp = self.call(method, path, body).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(d) = frame?.into_data() {
                n += d.len() as u64;
            }
        }
        Ok((status, n))
    }

    /// Sends a request and keeps the answer's headers and body.
    async fn send_full(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, http::HeaderMap, Bytes)> {
        let resp = self.call(method, path, body).await?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        Ok((status, parts.headers, body.collect().await?.to_bytes()))
    }
}

/// Latencies and counts of one phase.
#[derive(Default)]
struct Stats {
    lat_us: Vec<u64>,
    bytes: u64,
    errors: u64,
}

impl Stats {
    /// The workers' figures together.
    async fn join(tasks: Vec<tokio::task::JoinHandle<Stats>>) -> Result<Self> {
        let mut total = Stats::default();
        for task in tasks {
            let st = task.await?;
            total.lat_us.extend(st.lat_us);
            total.bytes += st.bytes;
            total.errors += st.errors;
        }
        Ok(total)
    }
}

/// The next number of a worker's xorshift64 sequence (choices of keys and operations).
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Distinct contents for every object: windows of one random buffer at distinct offsets.
struct Payloads {
    buf: Bytes,
    size: usize,
}

impl Payloads {
    fn new(size: usize, objects: usize) -> Self {
        let len = size + objects * 8 + 8;
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15
            ^ SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1);
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            // xorshift64*: fast, and plenty to keep contents distinct.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            v.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        v.truncate(len);
        Self {
            buf: Bytes::from(v),
            size,
        }
    }

    fn object(&self, i: usize) -> Bytes {
        let off = (i * 8) % (self.buf.len() - self.size);
        self.buf.slice(off..off + self.size)
    }
}

/// One request of a workload: method, path, and which payload to upload (if any).
type Op = (String, String, Option<usize>);
/// Builds the request for the i-th operation from a random number.
type OpFn = Arc<dyn Fn(usize, u64) -> Op + Send + Sync>;

/// How one phase runs.
struct PhaseSpec<'a> {
    name: &'a str,
    concurrency: usize,
    /// Stop after `objects` operations (PUT, DELETE), not only at the deadline (GET, mixed).
    counted: bool,
    objects: usize,
    duration: Option<Duration>,
    quiet: bool,
}

fn key(i: usize) -> String {
    format!("bench/{i:08}")
}

async fn phase(
    t: &Arc<Target>,
    spec: PhaseSpec<'_>,
    op: OpFn,
    payloads: &Arc<Payloads>,
    rec: Option<&Arc<watch::Recorder>>,
) -> Result<(Stats, Duration)> {
    let PhaseSpec {
        name,
        concurrency,
        counted,
        objects,
        duration,
        quiet,
    } = spec;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (t, next, done, op, payloads, rec) = (
            t.clone(),
            next.clone(),
            done.clone(),
            op.clone(),
            payloads.clone(),
            rec.cloned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut st = Stats::default();
            let mut rng = (w as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if (counted || deadline.is_none()) && i >= objects {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let (method, path, upload) = op(i, next_random(&mut rng));
                let body = upload.map_or_else(Bytes::new, |n| payloads.object(n));
                let sent = body.len() as u64;
                let t0 = Instant::now();
                match t.send(&method, &path, body).await {
                    Ok((status, got)) if status < 300 => {
                        let us = t0.elapsed().as_micros() as u64;
                        st.lat_us.push(us);
                        st.bytes += sent + got;
                        if let Some(r) = &rec {
                            r.record(Some(us));
                        }
                    }
                    _ => {
                        st.errors += 1;
                        if let Some(r) = &rec {
                            r.record(None);
                        }
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            st
        }));
    }
    let progress = (!quiet && rec.is_none()).then(|| {
        let done = done.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = done.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                eprint!("\r{name}: {n} ops, {:.0} ops/s   ", n as f64 / secs);
            }
        })
    });
    let total = Stats::join(tasks).await?;
    if let Some(p) = progress {
        p.abort();
        eprint!("\r");
    }
    Ok((total, started.elapsed()))
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or(0) as f64 / 1000.0
}

/// Runs the benchmark and prints the result.
pub async fn run(conn: &Alias, args: BenchArgs, json_out: bool) -> Result<()> {
    if args.objects == 0 || args.concurrency == 0 {
        bail!("--objects and --concurrency must be positive");
    }
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build(connector);
    let t = Arc::new(Target {
        client,
        conn: conn.clone(),
        base: conn.url.trim_end_matches('/').to_owned(),
    });
    let own_bucket = args.bucket.is_none();
    let bucket = args
        .bucket
        .clone()
        .unwrap_or_else(|| format!("fsctl-bench-{:08x}", rand_u32()));
    // A named bucket may already exist and belong to someone who lets us write but not create.
    let (exists, _) = t
        .send("HEAD", &format!("/{bucket}"), Bytes::new())
        .await
        .context("looking for the bucket")?;
    if own_bucket || exists >= 300 {
        let (status, _) = t
            .send("PUT", &format!("/{bucket}"), Bytes::new())
            .await
            .context("creating the bucket")?;
        if status >= 300 && status != 409 {
            bail!("creating bucket {bucket}: HTTP {status}");
        }
    }
    let payloads = Arc::new(Payloads::new(args.size, args.objects));
    let deadline = Some(args.duration);
    let spec = |name: &'static str, duration: Option<Duration>| PhaseSpec {
        name,
        concurrency: args.concurrency,
        counted: !matches!(name, "get" | "mixed"),
        objects: args.objects,
        duration,
        quiet: args.quiet,
    };
    let n = args.objects;
    let soak = args.workload == Workload::Mixed && (args.versioning || args.multipart);
    if args.versioning {
        let body = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
        let (status, _) = t
            .send("PUT", &format!("/{bucket}?versioning"), Bytes::from(body))
            .await
            .context("turning versioning on")?;
        if status >= 300 {
            bail!("turning versioning on for {bucket}: HTTP {status}");
        }
    }
    let mix = Arc::new(mix::Mix::new(
        bucket.clone(),
        n,
        args.versioning,
        args.multipart,
    ));
    let mut series = Vec::new();
    let b = bucket.clone();
    let put_op: OpFn = Arc::new(move |i, _| ("PUT".into(), format!("/{b}/{}", key(i)), Some(i)));
    let (stats, elapsed) = match args.workload {
        Workload::Put => phase(&t, spec("put", deadline), put_op.clone(), &payloads, None).await?,
        Workload::Get | Workload::Delete | Workload::Mixed => {
            if !args.existing {
                let (prep, _) =
                    phase(&t, spec("prepare", None), put_op.clone(), &payloads, None).await?;
                if prep.errors > 0 {
                    bail!("{} uploads failed while preparing", prep.errors);
                }
            }
            let b = bucket.clone();
            let op: OpFn = match args.workload {
                Workload::Get => Arc::new(move |_, r| {
                    ("GET".into(), format!("/{b}/{}", key(r as usize % n)), None)
                }),
                Workload::Delete => {
                    Arc::new(move |i, _| ("DELETE".into(), format!("/{b}/{}", key(i)), None))
                }
                _ => Arc::new(move |i, r| {
                    let k = key(r as usize % n);
                    match r % 100 {
                        0..=44 => ("GET".into(), format!("/{b}/{k}"), None),
                        45..=74 => ("HEAD".into(), format!("/{b}/{k}"), None),
                        75..=89 => ("PUT".into(), format!("/{b}/{k}"), Some(n + i)),
                        _ => ("DELETE".into(), format!("/{b}/{}", key(n + i)), None),
                    }
                }),
            };
            let rec = Arc::new(watch::Recorder::default());
            let sampler = args.interval.map(|every| {
                tokio::spawn(watch::sample(
                    rec.clone(),
                    every,
                    args.watch_pid,
                    args.quiet,
                ))
            });
            let ran = if soak {
                mix.clone()
                    .run(
                        t.clone(),
                        args.concurrency,
                        args.duration,
                        payloads.clone(),
                        rec.clone(),
                    )
                    .await?
            } else {
                let rec = sampler.as_ref().map(|_| &rec);
                phase(&t, spec(args.workload.name(), deadline), op, &payloads, rec).await?
            };
            rec.stop();
            if let Some(s) = sampler {
                series = s.await?;
            }
            ran
        }
    };
    let mut lat = stats.lat_us.clone();
    lat.sort_unstable();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let ops = lat.len() as f64 / secs;
    let mib = stats.bytes as f64 / secs / (1 << 20) as f64;
    let result = json!({
        "workload": args.workload.name(),
        "endpoint": conn.url, "objects": args.objects, "size": args.size, "concurrency": args.concurrency,
        "seconds": secs, "ops": lat.len(), "errors": stats.errors,
        "ops_per_sec": ops, "mib_per_sec": mib,
        "latency_ms": {"p50": pct(&lat, 0.50), "p90": pct(&lat, 0.90), "p99": pct(&lat, 0.99),
                        "max": lat.last().copied().unwrap_or(0) as f64 / 1000.0},
        "versioning": args.versioning, "multipart": args.multipart,
        "series": series,
    });
    if own_bucket {
        if soak {
            mix.cleanup(&t).await;
        }
        if args.versioning {
            delete_all_versions(&t, &bucket).await;
        }
        cleanup(&t, &bucket, n * 2 + 10).await;
    }
    if json_out {
        println!("{result}");
    } else {
        println!(
            "{}: {} ops in {:.2}s, {:.1} ops/s, {:.2} MiB/s, latency p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms, {} errors",
            result
                .get("workload")
                .and_then(|w| w.as_str())
                .unwrap_or(""),
            lat.len(),
            secs,
            ops,
            mib,
            pct(&lat, 0.5),
            pct(&lat, 0.9),
            pct(&lat, 0.99),
            lat.last().copied().unwrap_or(0) as f64 / 1000.0,
            stats.errors
        );
    }
    Ok(())
}

async fn cleanup(t: &Arc<Target>, bucket: &str, max_keys: usize) {
    let mut handles = Vec::new();
    for chunk in (0..max_keys)
        .collect::<Vec<_>>()
        .chunks(max_keys.div_ceil(16).max(1))
    {
        let (t, bucket, chunk) = (t.clone(), bucket.to_owned(), chunk.to_vec());
        handles.push(tokio::spawn(async move {
            for i in chunk {
                let _ = t
                    .send("DELETE", &format!("/{bucket}/{}", key(i)), Bytes::new())
                    .await;
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let _ = t.send("DELETE", &format!("/{bucket}"), Bytes::new()).await;
}

/// Deletes every version and delete marker of a versioned bucket (ListObjectVersions pages).
async fn delete_all_versions(t: &Arc<Target>, bucket: &str) {
    for _ in 0..10_000 {
        let Ok((200, _, body)) = t
            .send_full(
                "GET",
                &format!("/{bucket}?versions&max-keys=1000"),
                Bytes::new(),
            )
            .await
        else {
            return;
        };
        let text = String::from_utf8_lossy(&body);
        let mut found = 0;
        for entry in text.split("<Key>").skip(1) {
            let (Some(k), Some(v)) = (
                entry.split("</Key>").next(),
                entry
                    .split("<VersionId>")
                    .nth(1)
                    .and_then(|v| v.split("</VersionId>").next()),
            ) else {
                continue;
            };
            found += 1;
            let _ = t
                .send(
                    "DELETE",
                    &format!("/{bucket}/{k}?versionId={v}"),
                    Bytes::new(),
                )
                .await;
        }
        if found == 0 {
            return;
        }
    }
}

fn rand_u32() -> u32 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7);
    t ^ std::process::id().rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("10"), Ok(10));
        assert!(parse_size("4XB").is_err());
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn payloads_are_distinct() {
        let p = Payloads::new(4096, 100);
        assert_ne!(p.object(0), p.object(1));
        assert_eq!(p.object(99).len(), 4096);
    }
}
