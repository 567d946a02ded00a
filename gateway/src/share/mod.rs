//! Share links, served to whoever holds their URL (`/-/share/{id}/{secret}[/{name}]`, a path
//! no bucket can take): a download or upload page for browsers, the bytes for any other
//! client, a password form where the link has a password.
//!
//! A link is a Cedar principal (`ShareLink`). This route never reads or writes an object
//! itself: it checks the link (secret, state, password), counts the use, and hands the S3
//! service an unsigned GET, HEAD or PUT of the one object it names, with the link as the
//! request's principal (`RequestCtx::share_link`). The access hook then decides it as for any
//! request: the policies on links, the link's object or folder, and its creator's rights as
//! they are now (`PolicyEngine::decide`). The same audit record, encryption, ranges and
//! conditional headers apply.
//!
//! - `page.rs`: the pages (download, folder, upload, password, refusals);
//! - `password.rs`: password hashes, attempt limits, the cookie a correct password earns.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use rand::RngCore;
use s3s::Body;
use s3s::service::S3Service;
use sha2::{Digest, Sha256};

use fsgate_policy::{Action, Decision, Principal, Resource, ShareLink};
use fsgate_store::shares::{ShareLinkRecord, ShareRefusal};
use fsgate_store::{Store, now_ns};

use crate::access::{AccessFacts, Gate};
use crate::context::RequestCtx;
use crate::identity::iam::Iam;

mod page;
mod password;

pub use self::password::hash_password;
use self::password::{Attempts, CookieKey, Presented};

/// Where share links live: a path no bucket name can start (bucket names begin with a letter
/// or digit).
pub const PREFIX: &str = "/-/share/";

/// Password hashes computed at once.
const HASHING_AT_ONCE: usize = 4;

/// The most a folder page lists.
const FOLDER_PAGE_MAX: usize = 1000;

/// Share links' lifetimes (`--share-default-ttl`, `--share-max-ttl`).
#[derive(Debug, Clone, Copy)]
pub struct ShareSettings {
    /// A link made without `--ttl` lives this long.
    pub default_ttl: Duration,
    /// No link lives longer.
    pub max_ttl: Duration,
}

impl Default for ShareSettings {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(24 * 3600),
            max_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// `scheme://host` of a request, for the URLs of new links.
#[must_use]
pub fn base_url(headers: &HeaderMap, secure: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    let scheme = if secure { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// A new link's id, the secret its URL carries, and the secret's SHA-256 (hex), which is all
/// the store keeps of it.
#[must_use]
pub fn new_link_secret() -> (String, String, String) {
    use base64::Engine as _;
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let digest = hex::encode(Sha256::digest(secret.as_bytes()));
    (hex::encode(id), secret, digest)
}

/// The Cedar principal of a link acting for `creator` (as the creator is now).
#[must_use]
pub fn link_principal(rec: &ShareLinkRecord, creator: Principal) -> Principal {
    let secs = |ns: u64| i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    Principal::ShareLink(Box::new(ShareLink {
        id: rec.id.clone(),
        name: format!("sharelink:{}", rec.id),
        creator,
        bucket: rec.bucket.clone(),
        key: rec.key.clone(),
        folder: rec.folder,
        upload_only: rec.upload_only,
        has_password: rec.password_hash.is_some(),
        created: secs(rec.created_ns),
        expires: secs(rec.expires_ns),
        max_uses: rec.max_uses.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
    }))
}

/// Characters escaped in the key of the request handed to the S3 service.
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Headers of the recipient's request the S3 request keeps: ranges and conditions for
/// downloads; type and length for uploads.
const KEPT_HEADERS: [HeaderName; 8] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::USER_AGENT,
];

/// The share-link route.
#[derive(Debug)]
pub struct Shares {
    store: Arc<Store>,
    iam: Arc<Iam>,
    gate: Gate,
    attempts: Attempts,
    /// Password checks running at once (each holds Argon2's 19 MiB): whoever sends passwords,
    /// from however many addresses, costs bounded memory.
    hashing: tokio::sync::Semaphore,
    cookies: CookieKey,
}

/// Whether a request path is a share link's.
#[must_use]
pub fn is_share_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// A page or refusal, counted in `fsgate_share_requests_total{outcome}`.
fn answer(outcome: &'static str, resp: Response<Body>) -> Response<Body> {
    metrics::counter!("fsgate_share_requests_total", "outcome" => outcome).increment(1);
    resp
}

/// Records a refusal decided before the S3 service saw the request.
fn record_refusal(rc: &RequestCtx, rec: &ShareLinkRecord, action: Action, why: &str) {
    rc.record_decision(
        action,
        &rec.bucket,
        &rec.key,
        &Decision {
            allowed: false,
            policies: vec![format!("share-link:{why}")],
            errors: Vec::new(),
        },
    );
}

/// What the recipient asked for, from method, path and query.
enum Wanted {
    /// The link's page (a folder's listing, the upload form, the download button).
    Page,
    /// The bytes of one object.
    Download(String),
    /// One object's headers.
    Head(String),
    /// An upload to this key.
    Upload(String),
    /// A password sent from the page's form.
    Unlock,
}

impl Shares {
    /// The route over the store, IAM and the access gate.
    #[must_use]
    pub fn new(store: Arc<Store>, iam: Arc<Iam>, gate: Gate) -> Self {
        Self {
            store,
            iam,
            gate,
            attempts: Attempts::default(),
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
            cookies: CookieKey::random(),
        }
    }

    /// Answers one request on a share link's path.
    pub async fn call(
        &self,
        req: Request<Body>,
        rc: &Arc<RequestCtx>,
        s3: &S3Service,
    ) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let Some((id, secret, rest)) = split_path(&path) else {
            return answer("not_found", page::missing());
        };
        rc.fields().principal = format!("sharelink:{id}");
        let store = self.store.clone();
        let lookup = id.to_owned();
        let rec = match tokio::task::spawn_blocking(move || store.share(&lookup)).await {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) => return answer("not_found", page::missing()),
            _ => return answer("error", page::failed()),
        };
        let digest = hex::encode(Sha256::digest(secret.as_bytes()));
        if !crate::identity::keys::constant_time_eq(digest.as_bytes(), rec.secret_sha256.as_bytes())
        {
            return answer("not_found", page::missing());
        }
        let link_url = format!("{PREFIX}{id}/{secret}");
        let wanted = match wanted(&req, &rec, &rest) {
            Ok(w) => w,
            Err(refusal) => return answer("bad_request", refusal()),
        };
        let action = match &wanted {
            Wanted::Upload(_) => Action::PutObject,
            Wanted::Head(_) => Action::HeadObject,
            _ => Action::GetObject,
        };
        if let Err(why) = rec.live_at(now_ns()) {
            record_refusal(rc, &rec, action, refusal_name(why));
            return answer("gone", page::gone(why));
        }
        if matches!(wanted, Wanted::Unlock) {
            return self.unlock(req, rc, &rec, &link_url).await;
        }
        // The password: a cookie the page's form earned, or a header.
        if rec.password_hash.is_some() {
            let presented = password::presented(req.headers(), &self.cookies, &rec);
            let browser = accepts_html(req.headers());
            if let Err(resp) = self
                .check_password(rc, &rec, (action, browser), &link_url, presented)
                .await
            {
                return resp;
            }
        }
        // The creator as it is now: a link outlives nothing its creator lost.
        let creator = match self
            .iam
            .principal_for_link(&rec.creator_key, rec.created_ns)
        {
            Ok(p) => p,
            Err(_) => {
                record_refusal(rc, &rec, action, "creator-invalid");
                return answer("denied", page::creator_gone());
            }
        };
        let link = link_principal(&rec, creator);
        let _ = rc.share_link.set(link.clone());
        match wanted {
            Wanted::Page if rec.folder && !rec.upload_only => {
                self.folder_page(rc, &rec, &link, &link_url).await
            }
            Wanted::Page if rec.upload_only => answer("page", page::upload(&rec, &link_url)),
            Wanted::Page => {
                let head = build(Method::HEAD, &rec.bucket, &rec.key, &HeaderMap::new(), rc);
                let resp = call(s3, head).await;
                if resp.status().is_success() {
                    answer("page", page::download(&rec, &link_url, resp.headers()))
                } else {
                    answer("denied", page::refused(resp.status()))
                }
            }
            Wanted::Head(key) => {
                let head = build(Method::HEAD, &rec.bucket, &key, req.headers(), rc);
                answer("head", call(s3, head).await)
            }
            Wanted::Download(key) => {
                let get = build(Method::GET, &rec.bucket, &key, req.headers(), rc);
                self.counted(rc, &rec, action, s3, get, Some(&key)).await
            }
            Wanted::Upload(key) => {
                if let Some(resp) = upload_refusal(&rec, req.headers()) {
                    record_refusal(rc, &rec, action, "upload-refused");
                    return answer("bad_request", resp);
                }
                let (parts, body) = req.into_parts();
                let mut put = build(Method::PUT, &rec.bucket, &key, &parts.headers, rc);
                // An upload link adds files; it never replaces one.
                put.headers_mut()
                    .insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
                *put.body_mut() = body;
                self.counted(rc, &rec, action, s3, put, None).await
            }
            Wanted::Unlock => answer("bad_request", page::method_not_allowed()),
        }
    }

    /// Checks a presented password (or the cookie a correct one earned), within the attempt
    /// limits; the refusal page otherwise.
    async fn check_password(
        &self,
        rc: &RequestCtx,
        rec: &ShareLinkRecord,
        (action, browser): (Action, bool),
        link_url: &str,
        presented: Presented,
    ) -> Result<(), Response<Body>> {
        let p = match presented {
            Presented::Cookie => return Ok(()),
            Presented::Nothing => {
                record_refusal(rc, rec, action, "password-required");
                return Err(answer(
                    "password_required",
                    page::password(rec, link_url, false, browser),
                ));
            }
            Presented::Password(p) => p,
        };
        if !self.attempts.admit(&rec.id, rc.source_ip) {
            record_refusal(rc, rec, action, "password-attempts-limited");
            return Err(answer("rate_limited", page::too_many_attempts()));
        }
        let hash = rec.password_hash.clone().unwrap_or_default();
        let Ok(_permit) = self.hashing.acquire().await else {
            return Err(answer("error", page::failed()));
        };
        let ok = tokio::task::spawn_blocking(move || password::verify(&p, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            record_refusal(rc, rec, action, "wrong-password");
            return Err(answer(
                "wrong_password",
                page::password(rec, link_url, true, browser),
            ));
        }
        Ok(())
    }

    /// The page's password form: a correct password earns a cookie for this link and a
    /// redirect back to its page.
    async fn unlock(
        &self,
        req: Request<Body>,
        rc: &RequestCtx,
        rec: &ShareLinkRecord,
        link_url: &str,
    ) -> Response<Body> {
        if rec.password_hash.is_none() {
            return answer("bad_request", page::method_not_allowed());
        }
        let browser = accepts_html(req.headers());
        let presented = match read_form_password(req).await {
            Some(p) => Presented::Password(p),
            None => Presented::Nothing,
        };
        if let Err(resp) = self
            .check_password(rc, rec, (Action::GetObject, browser), link_url, presented)
            .await
        {
            return resp;
        }
        // Recorded as the link's use of its page: allowed, by its password.
        rc.record_decision(
            Action::GetObject,
            &rec.bucket,
            &rec.key,
            &Decision {
                allowed: true,
                policies: vec!["share-link:password".to_owned()],
                errors: Vec::new(),
            },
        );
        let cookie = self.cookies.issue(rec, rc.secure, link_url);
        answer("unlocked", page::unlocked(link_url, &cookie))
    }

    /// Claims one use of the link, runs the request, and gives the use back if it failed.
    async fn counted(
        &self,
        rc: &Arc<RequestCtx>,
        rec: &ShareLinkRecord,
        action: Action,
        s3: &S3Service,
        req: Request<Body>,
        download_name: Option<&str>,
    ) -> Response<Body> {
        let store = self.store.clone();
        let id = rec.id.clone();
        match tokio::task::spawn_blocking(move || store.claim_share_use(&id)).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(why))) => {
                record_refusal(rc, rec, action, refusal_name(why));
                return answer("gone", page::gone(why));
            }
            _ => return answer("error", page::failed()),
        }
        let mut resp = call(s3, req).await;
        if !resp.status().is_success() {
            let store = self.store.clone();
            let id = rec.id.clone();
            let given_back = tokio::task::spawn_blocking(move || {
                store.release_share_use(&id).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            if let Err(e) = given_back {
                tracing::warn!(request_id = %rc.request_id, error = %e, "could not give back a share link's use");
            }
            return answer("refused", resp);
        }
        if let Some(key) = download_name {
            let name = key.rsplit('/').next().unwrap_or(key);
            if let Ok(v) = HeaderValue::from_str(&content_disposition(name)) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            answer("downloaded", resp)
        } else {
            answer("uploaded", resp)
        }
    }

    /// A folder's page: its objects (the first `FOLDER_PAGE_MAX`), decided as a listing.
    async fn folder_page(
        &self,
        rc: &Arc<RequestCtx>,
        rec: &ShareLinkRecord,
        link: &Principal,
        link_url: &str,
    ) -> Response<Body> {
        let d = self.gate.decide(
            rc,
            link,
            Action::ListObjectsV2,
            Resource::Bucket(rec.bucket.clone()),
            AccessFacts {
                prefix: Some(&rec.key),
                ..AccessFacts::default()
            },
        );
        if !d.allowed {
            return answer("denied", page::refused(StatusCode::FORBIDDEN));
        }
        let store = self.store.clone();
        let (bucket, prefix) = (rec.bucket.clone(), rec.key.clone());
        let listed = tokio::task::spawn_blocking(move || {
            store.list_objects(
                &bucket,
                &fsgate_store::list::ListQuery {
                    prefix: &prefix,
                    max: FOLDER_PAGE_MAX,
                    ..Default::default()
                },
            )
        })
        .await;
        match listed {
            Ok(Ok(page)) => answer("page", page::folder(rec, link_url, &page.entries)),
            _ => answer("error", page::failed()),
        }
    }
}

fn refusal_name(why: ShareRefusal) -> &'static str {
    match why {
        ShareRefusal::Unknown => "unknown",
        ShareRefusal::Revoked => "revoked",
        ShareRefusal::Expired => "expired",
        ShareRefusal::Exhausted => "exhausted",
    }
}

/// `{id}/{secret}` and the decoded rest of a share path.
fn split_path(path: &str) -> Option<(&str, &str, String)> {
    let tail = path.strip_prefix(PREFIX)?;
    let mut parts = tail.splitn(3, '/');
    let id = parts.next().filter(|s| !s.is_empty())?;
    let secret = parts.next().filter(|s| !s.is_empty())?;
    let rest = percent_decode_str(parts.next().unwrap_or(""))
        .decode_utf8()
        .ok()?
        .into_owned();
    Some((id, secret, rest))
}

/// Whether the query names `name` (`?download`, `?download=1`).
fn query_has(req: &Request<Body>, name: &str) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.split('=').next() == Some(name)))
}

/// A browser (which asks for HTML first) rather than a client asking for the bytes.
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// A browser asking for a link's page (its download button adds `?download`).
fn wants_page(req: &Request<Body>) -> bool {
    !query_has(req, "download") && accepts_html(req.headers())
}

fn wanted(
    req: &Request<Body>,
    rec: &ShareLinkRecord,
    rest: &str,
) -> Result<Wanted, fn() -> Response<Body>> {
    // A file link names its object; a folder link names objects below its prefix.
    let key = if rest.is_empty() {
        (!rec.folder).then(|| rec.key.clone())
    } else if rec.folder {
        Some(format!("{}{rest}", rec.key))
    } else {
        return Err(page::missing);
    };
    let method = req.method().clone();
    Ok(match (method, key) {
        (Method::POST, _) if rest.is_empty() => Wanted::Unlock,
        // An upload link shows its form, and nothing else.
        (Method::GET, _) if rec.upload_only && rest.is_empty() => Wanted::Page,
        (Method::GET, None) => Wanted::Page,
        (Method::GET, Some(_)) if !rec.upload_only && rest.is_empty() && wants_page(req) => {
            Wanted::Page
        }
        (Method::GET, Some(k)) if !rec.upload_only => Wanted::Download(k),
        (Method::HEAD, Some(k)) if !rec.upload_only => Wanted::Head(k),
        (Method::PUT, Some(k)) if rec.upload_only && !k.ends_with('/') => Wanted::Upload(k),
        _ => return Err(page::method_not_allowed),
    })
}

/// Why an upload is refused before it starts: no length, or over the link's limit.
fn upload_refusal(rec: &ShareLinkRecord, headers: &HeaderMap) -> Option<Response<Body>> {
    let len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match (len, rec.max_size) {
        (None, _) => Some(page::length_required()),
        (Some(n), Some(max)) if n > max => Some(page::too_large(max)),
        _ => None,
    }
}

/// The password the page's form posts (`password=...`, at most 4 KiB of form).
async fn read_form_password(req: Request<Body>) -> Option<String> {
    let body = http_body_util::Limited::new(req.into_body(), 4096)
        .collect()
        .await
        .ok()?
        .to_bytes();
    form_urlencoded::parse(&body)
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v.into_owned())
        .filter(|p| !p.is_empty())
}

/// The unsigned S3 request for one object, with the recipient's kept headers and the
/// request's state (whose `share_link` is its principal).
fn build(
    method: Method,
    bucket: &str,
    key: &str,
    from: &HeaderMap,
    rc: &Arc<RequestCtx>,
) -> Request<Body> {
    let uri = format!("/{bucket}/{}", utf8_percent_encode(key, KEY_ESCAPES));
    let mut req = Request::new(Body::empty());
    *req.method_mut() = method;
    if let Ok(u) = uri.parse() {
        *req.uri_mut() = u;
    }
    for name in &KEPT_HEADERS {
        if let Some(v) = from.get(name) {
            req.headers_mut().insert(name.clone(), v.clone());
        }
    }
    req.extensions_mut().insert(rc.clone());
    req
}

async fn call(s3: &S3Service, req: Request<Body>) -> Response<Body> {
    match s3.call(req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, "share link: s3 service error");
            page::failed()
        }
    }
}

/// `attachment` with the name in both forms RFC 6266 gives.
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, NON_ALPHANUMERIC)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_id_secret_and_name() {
        let (id, secret, rest) = split_path("/-/share/ab12/s3cr3t/dir/a%20b.txt").unwrap();
        assert_eq!(
            (id, secret, rest.as_str()),
            ("ab12", "s3cr3t", "dir/a b.txt")
        );
        let (_, _, rest) = split_path("/-/share/ab12/s3cr3t").unwrap();
        assert_eq!(rest, "");
        assert!(split_path("/-/share/ab12").is_none());
        assert!(split_path("/-/share//x").is_none());
        assert!(split_path("/-/share/a/b/%ff").is_none());
    }

    #[test]
    fn content_disposition_keeps_names_safe() {
        assert_eq!(
            content_disposition("r\u{e9}sum\u{e9} \"1\".pdf"),
            "attachment; filename=\"r_sum_ _1_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22%2Epdf"
        );
    }
}
