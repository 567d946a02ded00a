//! The HTTP side.
//!
//! - `connection`: the per-connection clock that closes idle connections.
//! - `tls`: certificates and their reload.
//! - `host`: virtual-host routing (`bucket.domain`).
//! - `front`: the layer every request passes first — request ids, the S3 call, and the
//!   pieces it is made of:
//!   - `health`: `/health/*`, `/metrics`, the answer while the store opens;
//!   - `limits`: what a client may cost (timeouts, pre-decision memory, DeleteObjects checks);
//!   - `preflight`: CORS preflight;
//!   - `audit`: the one audit record per request and its end-of-request metrics;
//!   - `proxy`: the client's address behind trusted proxies.
//! - `routes`: the route s3s hands admin and STS requests to.

mod audit;
pub(crate) mod connection;
pub(crate) mod front;
mod health;
pub(crate) mod host;
pub mod limits;
mod preflight;
pub mod proxy;
pub(crate) mod routes;
pub mod tls;

pub(crate) use health::starting_response;
