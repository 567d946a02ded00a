//! The soak in short: `fsctl bench mixed --versioning --multipart` at 16 connections for 60 s
//! against one server, sampled every 5 s (`--interval`, `--watch-pid`): no request fails,
//! every interval serves, open descriptors stay flat, resident memory stays within its bounds.
//! The hour is `conformance/perf/soak.sh` (figures in `conformance/perf/soak/`).

use fsgate_conformance::{Server, ok};

#[test]
fn soak_60s_mixed_with_versions_and_multipart() {
    let s = Server::start();
    let pid = s.pid().unwrap().to_string();
    let out = ok(&s.fsctl(&[
        "bench",
        "mixed",
        "--versioning",
        "--multipart",
        "--concurrency",
        "16",
        "--objects",
        "500",
        "--size",
        "100KiB",
        "--duration",
        "60s",
        "--interval",
        "5s",
        "--watch-pid",
        &pid,
        "--quiet",
    ]));
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    eprintln!("soak: {r}");
    assert_eq!(r["errors"], 0, "{r}");
    let series = r["series"].as_array().unwrap();
    assert!(series.len() >= 10, "{r}");
    for s in series {
        assert_eq!(s["errors"], 0, "{s}");
        assert!(
            s["ops"].as_u64().unwrap() > 0,
            "an interval served nothing: {s}"
        );
    }
    // After the first 15 s (connections open, caches and memtables fill): flat.
    let settled = &series[3..];
    // Descriptors other than RocksDB's table files (which grow with the data: the audit log
    // only grows). Requests in flight hold blob files and connections: a leak grows past that.
    let fds: Vec<u64> = settled
        .iter()
        .map(|s| s["fds"].as_u64().unwrap() - s["sst_fds"].as_u64().unwrap())
        .collect();
    let (lo, hi) = (fds.iter().min().unwrap(), fds.iter().max().unwrap());
    assert!(
        hi - lo <= 24,
        "open descriptors moved {lo} -> {hi}: {fds:?}"
    );
    // A minute is the fill phase of RocksDB's memtables (256 MiB for all) and block cache (64
    // MiB): memory grows to those bounds and no further. Flat within 10 % is the hour's check
    // (conformance/perf/soak.sh); here, bounded.
    let rss: Vec<f64> = series
        .iter()
        .map(|s| s["rss_mib"].as_f64().unwrap())
        .collect();
    let hi = rss.iter().copied().fold(0f64, f64::max);
    assert!(hi < 640.0, "resident memory reached {hi:.1} MiB: {rss:?}");
}
