//! `fsctl bench` runs every workload against a real server without errors.

use fsgate_conformance::{Server, json_lines, ok};

#[test]
fn fsctl_bench_workloads() {
    let s = Server::start();
    for args in [
        &[
            "bench",
            "put",
            "--objects",
            "200",
            "--size",
            "4KiB",
            "--concurrency",
            "8",
            "--quiet",
        ][..],
        &[
            "bench",
            "get",
            "--objects",
            "50",
            "--size",
            "1KiB",
            "--duration",
            "1s",
            "--quiet",
        ][..],
        &["bench", "delete", "--objects", "100", "--quiet"][..],
        &[
            "bench",
            "mixed",
            "--objects",
            "50",
            "--duration",
            "1s",
            "--quiet",
        ][..],
        &[
            "bench",
            "put",
            "--objects",
            "4",
            "--size",
            "6MiB",
            "--concurrency",
            "2",
            "--quiet",
        ][..],
    ] {
        let out = ok(&s.fsctl(args));
        let r = &json_lines(&out)[0];
        assert_eq!(r["errors"], 0, "{out}");
        assert!(r["ops"].as_u64().unwrap() > 0, "{out}");
        assert!(r["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "{out}");
    }
    // The bench cleans up after itself.
    assert!(ok(&s.aws(&["s3", "ls"])).trim().is_empty());
}
