//! How fast one client may go: requests per second per client address (`--rate-limit-per-source`,
//! checked as a request arrives, before any work) and per authenticated principal
//! (`--rate-limit-per-principal`, checked once the signature is verified), and how many S3
//! requests may be in flight at once (`--max-requests`). Past a limit the answer is AWS's for
//! a request rate it will not serve: 503 `SlowDown` with `Retry-After`, which every SDK backs
//! off and retries.
//!
//! Rates are GCRA buckets (the `governor` crate) holding one second of requests: a client
//! may send its whole second's worth at once, then at the rate. Buckets of clients not seen
//! for a while are dropped every few seconds, so their memory stays bounded by the clients of
//! the last few seconds.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often buckets of quiet clients are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// The rate limits and the in-flight cap.
#[derive(Debug, Default)]
pub struct Rates {
    per_source: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    per_principal: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    max_requests: usize,
    in_flight: AtomicUsize,
}

fn limiter<K: Hash + Eq + Clone>(per_second: u32) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
    NonZeroU32::new(per_second).map(|n| Arc::new(RateLimiter::keyed(Quota::per_second(n))))
}

/// A request in flight, counted until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Rates {
    /// Limits of `per_source` and `per_principal` requests a second (0: none) and
    /// `max_requests` in flight (0: none). Starts the sweeper: call on the runtime.
    #[must_use]
    pub fn new(per_source: u32, per_principal: u32, max_requests: usize) -> Self {
        let rates = Self {
            per_source: limiter(per_source),
            per_principal: limiter(per_principal),
            max_requests,
            in_flight: AtomicUsize::new(0),
        };
        let (source, principal) = (rates.per_source.clone(), rates.per_principal.clone());
        if source.is_some() || principal.is_some() {
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(SWEEP_EVERY).await;
                    if let Some(l) = &source {
                        l.retain_recent();
                        l.shrink_to_fit();
                    }
                    if let Some(l) = &principal {
                        l.retain_recent();
                        l.shrink_to_fit();
                    }
                }
            });
        }
        rates
    }

    /// Counts a request in; `None` (refused) when `max_requests` are in flight already.
    pub fn enter(&self) -> Option<InFlight<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(&self.in_flight);
        if self.max_requests > 0 && before >= self.max_requests {
            metrics::counter!("fsgate_requests_limited_total", "limit" => "in-flight").increment(1);
            return None;
        }
        Some(guard)
    }

    /// Whether a request from `source` may go on now.
    pub fn admit_source(&self, source: IpAddr) -> bool {
        let ok = self
            .per_source
            .as_ref()
            .is_none_or(|l| l.check_key(&source).is_ok());
        if !ok {
            metrics::counter!("fsgate_requests_limited_total", "limit" => "source").increment(1);
        }
        ok
    }

    /// Whether a request of `principal` (a display name) may go on now.
    pub fn admit_principal(&self, principal: &str) -> bool {
        let Some(l) = &self.per_principal else {
            return true;
        };
        let ok = l.check_key(&principal.to_owned()).is_ok();
        if !ok {
            metrics::counter!("fsgate_requests_limited_total", "limit" => "principal").increment(1);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_of_requests_then_the_rate_per_key() {
        let r = Rates::new(5, 3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let admitted = (0..20).filter(|_| r.admit_source(a)).count();
        assert_eq!(admitted, 5);
        assert!(r.admit_source(b), "another source has its own bucket");
        assert_eq!((0..10).filter(|_| r.admit_principal("alice")).count(), 3);
        assert!(r.admit_principal("bob"));

        let one = r.enter();
        let two = r.enter();
        assert!(one.is_some() && two.is_some());
        assert!(r.enter().is_none(), "a third in flight");
        drop(one);
        assert!(r.enter().is_some(), "room again once one finished");
        drop(two);
        assert!(Rates::new(0, 0, 0).enter().is_some());
    }
}
