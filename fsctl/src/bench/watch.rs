//! The time series of a long run (`--interval`): per interval, the requests that succeeded,
//! the errors and the latency percentiles, and with `--watch-pid` the server's resident memory
//! and open file descriptors (Linux `/proc`). A soak reads it to show that memory, descriptors
//! and p99 stay flat.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Requests of the interval in progress.
#[derive(Default)]
struct Window {
    lat_us: Vec<u64>,
    errors: u64,
}

/// Where workers record each request while a sampler cuts intervals.
#[derive(Default)]
pub(super) struct Recorder {
    window: Mutex<Window>,
    stop: AtomicBool,
}

impl Recorder {
    /// A request: its latency, or `None` when it failed.
    pub(super) fn record(&self, lat_us: Option<u64>) {
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match lat_us {
            Some(l) => w.lat_us.push(l),
            None => w.errors += 1,
        }
    }

    fn take(&self) -> Window {
        std::mem::take(
            &mut *self
                .window
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Ends the sampler after its current interval.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One interval.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Sample {
    /// Seconds since the start, at the interval's end.
    pub t: f64,
    /// Requests that succeeded.
    pub ops: u64,
    /// Requests that failed.
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The watched process's resident memory (VmRSS), MiB.
    pub rss_mib: Option<f64>,
    /// The watched process's open file descriptors.
    pub fds: Option<u64>,
    /// Of those, RocksDB table files (`*.sst`): they grow with the data (the audit log
    /// never shrinks), not with the requests in flight; the rest should stay flat.
    pub sst_fds: Option<u64>,
}

fn rss_mib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Open descriptors, and how many of them are RocksDB table files.
fn fds(pid: u32) -> Option<(u64, u64)> {
    let (mut all, mut sst) = (0, 0);
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        all += 1;
        if std::fs::read_link(entry.path()).is_ok_and(|t| t.extension().is_some_and(|e| e == "sst"))
        {
            sst += 1;
        }
    }
    Some((all, sst))
}

/// Cuts an interval every `every` until `rec.stop()`; prints each on stderr unless `quiet`.
pub(super) async fn sample(
    rec: std::sync::Arc<Recorder>,
    every: Duration,
    pid: Option<u32>,
    quiet: bool,
) -> Vec<Sample> {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    while !rec.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        if rec.stop.load(Ordering::Relaxed) {
            break;
        }
        let mut w = rec.take();
        w.lat_us.sort_unstable();
        let open = pid.and_then(fds);
        let s = Sample {
            t: started.elapsed().as_secs_f64(),
            ops: w.lat_us.len() as u64,
            errors: w.errors,
            p50_ms: super::pct(&w.lat_us, 0.50),
            p99_ms: super::pct(&w.lat_us, 0.99),
            rss_mib: pid.and_then(rss_mib),
            fds: open.map(|(all, _)| all),
            sst_fds: open.map(|(_, sst)| sst),
        };
        if !quiet {
            eprintln!(
                "{:>7.0}s {:>8} ops {:>4} errors  p50 {:>7.2} ms  p99 {:>7.2} ms  rss {}  fds {} ({} sst)",
                s.t,
                s.ops,
                s.errors,
                s.p50_ms,
                s.p99_ms,
                s.rss_mib.map_or("-".into(), |m| format!("{m:.1} MiB")),
                s.fds.map_or("-".into(), |f| f.to_string()),
                s.sst_fds.map_or("-".into(), |f| f.to_string()),
            );
        }
        out.push(s);
    }
    out
}
