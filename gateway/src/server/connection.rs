//! The per-connection clock that closes a connection with no request in flight (sending
//! headers slowly, or idle between keep-alive requests).
//!
//! hyper's own `header_read_timeout` resets a runtime timer on every request, which cost ~4 %
//! of small GETs here; this clock costs two atomic stores per request, and one timer per
//! connection that wakes a few times per timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a connection last had a request in flight.
#[derive(Debug)]
pub struct ConnectionClock {
    started: Instant,
    in_flight: AtomicU32,
    /// Milliseconds after `started` when the last request finished (or the connection opened).
    idle_since_ms: AtomicU64,
}

impl ConnectionClock {
    /// A clock for a connection that just opened.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since_ms: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A request's headers arrived.
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A request's response is done (sent or abandoned).
    pub fn request_finished(&self) {
        self.idle_since_ms.store(self.now_ms(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Resolves once the connection has had no request in flight for `limit`: the caller
    /// then drops (closes) it. A request in flight (a slow download, an upload) never counts;
    /// stalled bodies have their own limit.
    pub async fn idle_past(self: Arc<Self>, limit: Duration) {
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        let tick = (limit / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(tick).await;
            if self.in_flight.load(Ordering::Acquire) == 0
                && self
                    .now_ms()
                    .saturating_sub(self.idle_since_ms.load(Ordering::Acquire))
                    >= limit_ms
            {
                return;
            }
        }
    }
}

/// Marks a request finished when dropped (carried by the response body).
#[derive(Debug)]
pub struct InFlight(Arc<ConnectionClock>);

impl InFlight {
    /// Marks a request started on `clock`.
    #[must_use]
    pub fn start(clock: &Arc<ConnectionClock>) -> Self {
        clock.request_started();
        Self(clock.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closes_only_when_idle_past_the_limit() {
        let clock = ConnectionClock::new();
        let req = InFlight::start(&clock);
        let limit = Duration::from_millis(200);
        let idle = tokio::spawn(clock.clone().idle_past(limit));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(!idle.is_finished(), "closed with a request in flight");
        drop(req);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!idle.is_finished(), "closed before the limit");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(idle.is_finished(), "not closed 0.5 s after going idle");
    }
}
