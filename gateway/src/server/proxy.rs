//! Behind a proxy: the client's address from `X-Forwarded-For` or `Forwarded` (RFC 7239),
//! believed only when the connection comes from a configured trusted proxy
//! (`--trusted-proxies`), so Cedar's `source_ip`, bucket policies' `aws:SourceIp` and the
//! audit see the client, and no client can claim an address by sending the header itself.
//!
//! The chain is read from the right (the hop nearest fsgate): trusted proxies are skipped,
//! and the first address that is not one is the client. A chain of trusted proxies only gives
//! its leftmost address; an entry that does not parse ends the walk at the hop before it.

use std::net::IpAddr;

use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

/// A trusted-proxy entry that is neither an address nor a network.
#[derive(Debug, thiserror::Error)]
#[error("trusted proxy {0:?}: expected an address or a network (10.0.0.0/8, ::1)")]
pub struct BadProxy(String);

impl TrustedProxies {
    /// From a comma-separated list of addresses and networks.
    pub fn parse(list: &str) -> Result<Self, BadProxy> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BadProxy(s.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a connection from `peer` carrying `headers`.
    #[must_use]
    pub fn client(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        if self.0.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        let mut client = peer;
        for hop in chain.iter().rev() {
            let Some(ip) = hop else {
                return client;
            };
            client = *ip;
            if !self.trusts(*ip) {
                return client;
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses a request passed through, oldest first: `X-Forwarded-For` when present,
/// else the `for=` parameters of `Forwarded`; `None` for an entry that does not parse.
fn forwarded_chain(headers: &http::HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let xff = values("x-forwarded-for");
    if !xff.is_empty() {
        return xff.iter().map(|s| parse_node(s)).collect();
    }
    values("forwarded")
        .iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(v.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(canonical);
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap_or(http::header::FROM),
                http::HeaderValue::from_str(v).unwrap_or(http::HeaderValue::from_static("")),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let t = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap_or_default();
        let xff = headers(&[("x-forwarded-for", "203.0.113.9, 10.1.1.1")]);
        // From a trusted proxy: the first untrusted hop from the right.
        assert_eq!(t.client(ip("127.0.0.1"), &xff), ip("203.0.113.9"));
        // From anyone else: the header is ignored.
        assert_eq!(t.client(ip("198.51.100.7"), &xff), ip("198.51.100.7"));
        // A client cannot prepend its way past the proxies: the rightmost untrusted hop wins.
        let spoof = headers(&[("x-forwarded-for", "10.9.9.9, 203.0.113.9")]);
        assert_eq!(t.client(ip("127.0.0.1"), &spoof), ip("203.0.113.9"));
        let fwd = headers(&[(
            "forwarded",
            r#"for="[2001:db8::1]:4711";proto=https, for=10.2.2.2"#,
        )]);
        assert_eq!(t.client(ip("::ffff:127.0.0.1"), &fwd), ip("2001:db8::1"));
        let junk = headers(&[("x-forwarded-for", "not-an-ip, 10.3.3.3")]);
        assert_eq!(t.client(ip("127.0.0.1"), &junk), ip("10.3.3.3"));
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), &xff),
            ip("127.0.0.1")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }
}
