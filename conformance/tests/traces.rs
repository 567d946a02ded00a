//! OpenTelemetry traces: fsgate exports over OTLP/HTTP (protobuf) to a receiver the test runs
//! (`python/otlp_receiver.py`, decoding with opentelemetry-proto). A signed request with a W3C
//! `traceparent` yields a `request` span under the client's span with `authenticate`, `policy`,
//! `store` and `audit_enqueue` children; the audit record and the log line carry the trace id;
//! a dead collector neither slows nor fails requests.

use std::time::{Duration, Instant};

use fsgate_conformance::{OtlpReceiver, Server, json_lines, ok};

#[test]
fn spans_reach_an_otlp_receiver_with_the_clients_parent() {
    let r = OtlpReceiver::start(0);
    let endpoint = format!("http://127.0.0.1:{}", r.port);
    let s = Server::start_with_env(
        &["--log-level", "debug", "--log-format", "json"],
        &[
            ("FSGATE_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    );
    ok(&s.aws(&["s3", "mb", "s3://traced"]));
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let out = ok(&s.python_as(
        "signed_get.py",
        fsgate_conformance::ROOT_USER,
        fsgate_conformance::ROOT_PASS,
        &["/traced", &format!("traceparent:00-{trace}-{parent}-01")],
    ));
    assert!(out.starts_with("200"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<serde_json::Value> = r
            .lines()
            .into_iter()
            .filter(|s| s["trace_id"] == trace)
            .collect();
        let names: Vec<&str> = spans.iter().filter_map(|s| s["name"].as_str()).collect();
        if ["authenticate", "policy", "store", "audit_enqueue"]
            .iter()
            .all(|n| names.contains(n))
        {
            break spans;
        }
        assert!(Instant::now() < deadline, "spans so far: {spans:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let request = spans
        .iter()
        .find(|s| s["parent"] == parent)
        .unwrap_or_else(|| panic!("no span under the client's: {spans:?}"));
    assert_eq!(request["name"], "fsgate GET", "{request}");
    assert_eq!(request["service"], "fsgate");
    let request_id = request["span_id"].clone();
    for child in ["authenticate", "policy", "store", "audit_enqueue"] {
        let c = spans.iter().find(|s| s["name"] == child).unwrap();
        assert_eq!(
            c["parent"], request_id,
            "{child} is not under the request: {spans:?}"
        );
    }
    // The audit record and the request's log line carry the trace id.
    let recs = json_lines(&ok(&s.fsctl(&["audit", "query", "--bucket", "traced"])));
    assert!(
        recs.iter()
            .any(|r| r["trace_id"] == trace && r["action"] == "s3:ListObjects"),
        "{recs:?}"
    );
    assert!(
        s.log()
            .lines()
            .any(|l| l.contains(r#""message":"request""#) && l.contains(trace)),
        "{}",
        s.log()
    );
}

/// With the collector unreachable, requests are answered as fast and as well as without one.
#[test]
fn a_dead_collector_costs_requests_nothing() {
    let port = fsgate_conformance::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let s = Server::start_with_env(
        &[],
        &[
            ("FSGATE_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    ok(&s.aws(&["s3", "mb", "s3://dead-collector"]));
    let started = Instant::now();
    for _ in 0..20 {
        let out = ok(&s.python_as(
            "signed_get.py",
            fsgate_conformance::ROOT_USER,
            fsgate_conformance::ROOT_PASS,
            &["/dead-collector"],
        ));
        assert!(out.starts_with("200"), "{out}");
    }
    // Generous: 20 Python processes; a blocked export would add seconds per request.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        fsgate_conformance::http_status(s.port, "/health/live"),
        Some(200)
    );
}
