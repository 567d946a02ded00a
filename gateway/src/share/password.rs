//! Share-link passwords: Argon2id hashes, the attempt limits that keep guessing slow, and the
//! cookie a correct password earns a browser (so the download button needs no password).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use rand::RngCore;
use sha2::Sha256;

use fsgate_store::now_ns;
use fsgate_store::shares::ShareLinkRecord;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// Argon2id with OWASP's recommended cost (19 MiB, 2 passes, 1 lane).
fn argon() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// A password's hash, `argon2id$<salt>$<hash>` (base64).
pub fn hash_password(password: &str) -> Result<String, argon2::Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    argon().hash_password_into(password.as_bytes(), &salt, &mut out)?;
    Ok(format!("argon2id${}${}", B64.encode(salt), B64.encode(out)))
}

/// Whether `password` matches a hash made by [`hash_password`].
pub(super) fn verify(password: &str, hash: &str) -> bool {
    let mut parts = hash.split('$');
    let (Some("argon2id"), Some(salt), Some(want), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(salt), Ok(want)) = (B64.decode(salt), B64.decode(want)) else {
        return false;
    };
    let mut out = [0u8; 32];
    if argon()
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .is_err()
    {
        return false;
    }
    crate::identity::keys::constant_time_eq(&out, &want)
}

/// Password attempts allowed per link, and per source address, in each window.
const PER_LINK: u32 = 10;
const PER_SOURCE: u32 = 30;
const WINDOW: Duration = Duration::from_secs(60);
/// Links and sources tracked at once; beyond it, attempts are refused until windows pass (a
/// flood of sources costs bounded memory and gains nothing).
const TRACKED: usize = 100_000;

/// Fixed-window counts of password attempts, per link and per source address.
#[derive(Debug, Default)]
pub(super) struct Attempts {
    windows: Mutex<HashMap<Tracked, (Instant, u32)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Tracked {
    Link(String),
    Source(IpAddr),
}

impl Attempts {
    /// Counts an attempt on `link` from `source`; false when either is over its limit.
    pub(super) fn admit(&self, link: &str, source: IpAddr) -> bool {
        let now = Instant::now();
        let mut w = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if w.len() >= TRACKED {
            w.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if w.len() >= TRACKED {
                return false;
            }
        }
        let mut count = |t: Tracked, limit: u32| {
            let e = w.entry(t).or_insert((now, 0));
            if now.duration_since(e.0) >= WINDOW {
                *e = (now, 0);
            }
            e.1 += 1;
            e.1 <= limit
        };
        let link_ok = count(Tracked::Link(link.to_owned()), PER_LINK);
        let source_ok = count(Tracked::Source(source), PER_SOURCE);
        link_ok && source_ok
    }
}

/// What a request presented for a password-protected link.
pub(super) enum Presented {
    /// A valid cookie for this link.
    Cookie,
    /// A password (`X-Fsgate-Share-Password`, or HTTP Basic's password: `curl -u :PASSWORD`).
    Password(String),
    /// Nothing.
    Nothing,
}

/// The header carrying a share link's password.
pub(super) const PASSWORD_HEADER: &str = "x-fsgate-share-password";
const COOKIE: &str = "fsgate_share";
/// How long a correct password's cookie lasts (never past the link's expiry).
const COOKIE_LIFETIME_SECS: u64 = 3600;

/// The password or cookie a request carries.
pub(super) fn presented(headers: &HeaderMap, key: &CookieKey, rec: &ShareLinkRecord) -> Presented {
    let cookie_ok = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|v| key.valid(v, rec));
    if cookie_ok {
        return Presented::Cookie;
    }
    if let Some(p) = headers.get(PASSWORD_HEADER).and_then(|v| v.to_str().ok()) {
        return Presented::Password(p.to_owned());
    }
    let basic = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split_once(':').map(|(_, p)| p.to_owned()));
    match basic {
        Some(p) if !p.is_empty() => Presented::Password(p),
        _ => Presented::Nothing,
    }
}

/// The key the server's password cookies are signed with (new at each start: a restart asks
/// browsers for the password again).
#[derive(Debug)]
pub(super) struct CookieKey([u8; 32]);

impl CookieKey {
    pub(super) fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        Self(k)
    }

    fn mac(&self, id: &str, until_secs: u64) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b"\n");
        mac.update(until_secs.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A `Set-Cookie` value for `rec`, scoped to the link's path.
    pub(super) fn issue(&self, rec: &ShareLinkRecord, secure: bool, link_path: &str) -> String {
        let now = now_ns() / 1_000_000_000;
        let until = (now + COOKIE_LIFETIME_SECS).min(rec.expires_ns / 1_000_000_000);
        let secure = if secure { "; Secure" } else { "" };
        format!(
            "{COOKIE}={until}.{}; Path={link_path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            self.mac(&rec.id, until),
            until.saturating_sub(now)
        )
    }

    fn valid(&self, value: &str, rec: &ShareLinkRecord) -> bool {
        let Some((until, mac)) = value.split_once('.') else {
            return false;
        };
        let Ok(until) = until.parse::<u64>() else {
            return false;
        };
        until > now_ns() / 1_000_000_000
            && crate::identity::keys::constant_time_eq(
                mac.as_bytes(),
                self.mac(&rec.id, until).as_bytes(),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsf", &h));
        assert!(!verify("correct horse", "argon2id$AAAA$BBBB"));
        assert!(!verify("x", "plain"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn attempts_are_limited_per_link_and_per_source() {
        let a = Attempts::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..PER_LINK {
            assert!(a.admit("l1", ip));
        }
        assert!(!a.admit("l1", ip), "the link's limit");
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(!a.admit("l1", other), "per link, whatever the source");
        for i in 0..(PER_SOURCE - PER_LINK - 1) {
            assert!(a.admit(&format!("other{i}"), ip));
        }
        assert!(!a.admit("fresh", ip), "the source's limit");
    }
}
