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

/// Objects written into a named bucket stay for a later `--existing` GET and DELETE, which
/// upload nothing; a user who may write the bucket but not create it can bench it.
#[test]
fn fsctl_bench_phases_share_a_named_bucket() {
    let s = Server::start();
    ok(&s.aws(&["s3", "mb", "s3://shared"]));
    let (ak, sk) = fsgate_conformance::add_user(&s, "bencher");
    ok(&s.fsctl(&[
        "policy",
        "attach",
        "--user",
        "bencher",
        "--role",
        "readwrite",
        "--bucket",
        "shared",
    ]));
    let bench = |args: &[&str]| {
        let out = ok(&s.fsctl_as(
            &ak,
            &sk,
            &[&["bench"], args, &["--bucket", "shared", "--quiet"]].concat(),
        ));
        let r = json_lines(&out)[0].clone();
        assert_eq!(r["errors"], 0, "{out}");
        r
    };
    let put = bench(&["put", "--objects", "120", "--size", "1KiB"]);
    assert_eq!(put["ops"], 120);
    let listed = ok(&s.aws(&["s3", "ls", "s3://shared/bench/"]));
    assert_eq!(listed.lines().count(), 120, "{listed}");
    let get = bench(&[
        "get",
        "--objects",
        "120",
        "--size",
        "1KiB",
        "--existing",
        "--duration",
        "1s",
    ]);
    assert!(get["ops"].as_u64().unwrap() > 120, "{get}");
    let del = bench(&["delete", "--objects", "120", "--existing"]);
    assert_eq!(del["ops"], 120);
    let left = ok(&s.aws(&["s3api", "list-objects-v2", "--bucket", "shared"]));
    assert!(!left.contains("\"Key\""), "{left}");
}

/// The side-by-side runner (`conformance/perf/compare.py`) works end to end on a tiny scale
/// against fsgate (and a second fsgate with the audit off, measured in turn) and renders every
/// section and target row.
#[test]
fn perf_compare_runner_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("RESULTS.md");
    let script = fsgate_conformance::scripts().join("../perf/compare.py");
    let out = ok(&fsgate_conformance::run(
        std::process::Command::new(fsgate_conformance::python())
            .arg(script)
            .arg("--fsgate")
            .arg(fsgate_conformance::bin("fsgate"))
            .arg("--fsctl")
            .arg(fsgate_conformance::bin("fsctl"))
            .args(["--only", "fsgate", "--rounds", "1", "--scale", "0.01"])
            .args(["--get-seconds", "0.5", "--big-object", "64MiB"])
            .args([
                "--scale-users",
                "30",
                "--scale-buckets",
                "12",
                "--audit-pairs",
                "2",
            ])
            .arg("--workdir")
            .arg(dir.path())
            .arg("--out")
            .arg(&out_file),
    ));
    let report = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(report.trim(), out.trim());
    for needle in [
        "## Machine ceilings",
        "| fsgate | GET |",
        "## What the audit costs",
        "| --audit off |",
        "| 4 KiB GET p99 < 5 ms |",
        "| Audit on costs < 10 % of 4 KiB GET ops/s |",
        "| fsgate peak RSS through the matrix < 256 MiB |",
        "| 64MiB upload grows RSS < 64 MiB |",
        "| 4 KiB GET with 30 users and 12 bucket policies within 10 % of 10 users |",
        "## Policy base of 30 users",
    ] {
        assert!(report.contains(needle), "{needle} missing:\n{report}");
    }
    assert!(!report.contains("failed"), "{report}");
}
