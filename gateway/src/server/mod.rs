//! The HTTP side: connections and their limits (`connection`), TLS (`tls`), virtual-host
//! routing (`host`), the front layer every request passes
//! (`front`: request ids, health, `/metrics`, CORS preflight, limits, the audit record), and
//! the route s3s hands admin and STS requests to (`routes`).

pub mod connection;
pub mod front;
pub mod host;
pub mod routes;
pub mod tls;
