//! The metrics every request updates (count, duration, time to first byte, bytes, requests in
//! flight, policy decisions), through handles kept per worker thread.
//!
//! `metrics::counter!(name, labels)` looks its series up in the recorder on every call: it
//! builds the key, allocates its label strings and hashes them. A request makes about ten such
//! updates, which cost more than the counting. The handles here are looked up once per thread
//! (and per API name and status) and then only incremented. The label values are bounded:
//! API names are Cedar action names or `unknown`, statuses are HTTP status codes.

use std::cell::RefCell;
use std::collections::HashMap;

use metrics::{Counter, Gauge, Histogram};

/// The API label of a request whose action was never resolved (it failed before its
/// authorization, or named no S3 operation): one series for all of them, whatever the path.
pub const UNKNOWN_API: &str = "unknown";

struct Api {
    duration: Histogram,
    /// Registered on the first response with a body, so bodiless APIs have no TTFB series.
    ttfb: Option<Histogram>,
    by_status: Vec<(u16, Counter)>,
}

struct Handles {
    received: Counter,
    sent: Counter,
    in_flight: Gauge,
    policy_eval: Histogram,
    allowed: Counter,
    denied: Counter,
    apis: HashMap<String, Api>,
}

impl Handles {
    fn new() -> Self {
        Self {
            received: metrics::counter!("fsgate_received_bytes_total"),
            sent: metrics::counter!("fsgate_sent_bytes_total"),
            in_flight: metrics::gauge!("fsgate_requests_in_flight"),
            policy_eval: metrics::histogram!("fsgate_policy_eval_seconds"),
            allowed: metrics::counter!("fsgate_policy_decisions_total", "result" => "allow"),
            denied: metrics::counter!("fsgate_policy_decisions_total", "result" => "deny"),
            apis: HashMap::new(),
        }
    }

    /// Runs `f` on `api`'s handles, registering them on its first request.
    fn with_api(&mut self, api: &str, f: impl FnOnce(&mut Api)) {
        if let Some(a) = self.apis.get_mut(api) {
            f(a);
            return;
        }
        let mut a = Api {
            duration: metrics::histogram!("fsgate_request_duration_seconds", "api" => api.to_owned()),
            ttfb: None,
            by_status: Vec::new(),
        };
        f(&mut a);
        self.apis.insert(api.to_owned(), a);
    }
}

/// The API label of a request whose action is `api` (empty when never resolved).
#[must_use]
pub fn label(api: &str) -> &str {
    if api.is_empty() { UNKNOWN_API } else { api }
}

thread_local! {
    static HANDLES: RefCell<Option<Handles>> = const { RefCell::new(None) };
}

fn with<R>(f: impl FnOnce(&mut Handles) -> R) -> R {
    HANDLES.with_borrow_mut(|h| f(h.get_or_insert_with(Handles::new)))
}

/// A request arrived (`+1`) or finished (`-1`).
pub fn in_flight(delta: f64) {
    with(|h| h.in_flight.increment(delta));
}

/// The first body bytes of a response to `api` left `seconds` after the request arrived.
pub fn first_byte(api: &str, seconds: f64) {
    let api = label(api);
    with(|h| {
        h.with_api(api, |a| {
            a.ttfb
                .get_or_insert_with(
                    || metrics::histogram!("fsgate_request_ttfb_seconds", "api" => api.to_owned()),
                )
                .record(seconds);
        });
    });
}

/// A request to `api` finished with `status` after `seconds`, having received and sent those
/// many bytes.
pub fn finished(api: &str, status: u16, seconds: f64, received: u64, sent: u64) {
    let api = label(api);
    with(|h| {
        h.received.increment(received);
        h.sent.increment(sent);
        h.with_api(api, |a| {
            a.duration.record(seconds);
            if let Some((_, c)) = a.by_status.iter().find(|(s, _)| *s == status) {
                c.increment(1);
                return;
            }
            let c = metrics::counter!(
                "fsgate_requests_total",
                "api" => api.to_owned(),
                "status" => status.to_string()
            );
            c.increment(1);
            a.by_status.push((status, c));
        });
    });
}

/// A policy decision took `seconds`.
pub fn decision(allowed: bool, seconds: f64) {
    with(|h| {
        h.policy_eval.record(seconds);
        if allowed { &h.allowed } else { &h.denied }.increment(1);
    });
}
