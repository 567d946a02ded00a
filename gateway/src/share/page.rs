//! The pages a share link's recipient sees, rendered by fsgate itself: no script but the upload
//! form's own (by nonce), no referrer (the URL is the credential), never cached or framed.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rand::RngCore;
use s3s::Body;

use fsgate_store::list::ListEntry;
use fsgate_store::shares::{ShareLinkRecord, ShareRefusal};

/// Text made safe to place in HTML text and attribute values (the five characters XML and
/// HTML both escape).
fn esc(s: &str) -> String {
    crate::sts::xml_escape(s)
}

/// `1.5 MiB`.
fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS.get(u).copied().unwrap_or("TiB"))
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}\
h1{font-size:1.4rem;word-break:break-all}.meta{color:#555}\
a.button,button{display:inline-block;background:#0b57d0;color:#fff;border:0;border-radius:.4rem;padding:.6rem 1.2rem;font-size:1rem;text-decoration:none;cursor:pointer}\
input{font-size:1rem;padding:.4rem}.error{color:#b3261e}table{border-collapse:collapse;width:100%}td{padding:.3rem;border-bottom:1px solid #eee}";

fn respond(status: StatusCode, title: &str, body: &str, nonce: Option<&str>) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body>{body}\
<p class=\"meta\"><small>Shared with fsgate</small></p></body></html>",
        esc(title)
    );
    let script = nonce.map_or_else(|| "'none'".to_owned(), |n| format!("'nonce-{n}'"));
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src {script}; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    let mut resp = Response::new(Body::from(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

fn message(status: StatusCode, title: &str, text: &str) -> Response<Body> {
    respond(
        status,
        title,
        &format!("<h1>{}</h1><p id=\"message\">{}</p>", esc(title), esc(text)),
        None,
    )
}

/// The last segment of a key: the file's name.
fn file_name(key: &str) -> &str {
    key.trim_end_matches('/').rsplit('/').next().unwrap_or(key)
}

/// An unknown link (or a wrong secret: the same answer).
pub(super) fn missing() -> Response<Body> {
    message(
        StatusCode::NOT_FOUND,
        "Link not found",
        "This link does not exist. Check that it was copied whole.",
    )
}

/// A revoked, expired or used-up link.
pub(super) fn gone(why: ShareRefusal) -> Response<Body> {
    let text = match why {
        ShareRefusal::Revoked => "This link was revoked by its owner.",
        ShareRefusal::Expired => "This link has expired.",
        ShareRefusal::Exhausted => "This link has been used as many times as it allows.",
        ShareRefusal::Unknown => "This link does not exist.",
    };
    message(StatusCode::GONE, "Link no longer available", text)
}

/// The creator can no longer share (disabled, deleted, revoked, session over).
pub(super) fn creator_gone() -> Response<Body> {
    message(
        StatusCode::FORBIDDEN,
        "Link no longer valid",
        "The person who shared this can no longer share it.",
    )
}

/// Refused by policy, or the object is gone.
pub(super) fn refused(status: StatusCode) -> Response<Body> {
    let (title, text) = match status {
        StatusCode::NOT_FOUND => ("File not found", "The shared file no longer exists."),
        StatusCode::FORBIDDEN => ("Not allowed", "This link is not allowed to show this."),
        _ => ("Not available", "The shared file cannot be shown now."),
    };
    message(status, title, text)
}

/// fsgate failed.
pub(super) fn failed() -> Response<Body> {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again later.",
    )
}

/// A method the link does not take.
pub(super) fn method_not_allowed() -> Response<Body> {
    message(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not supported",
        "This link does not support this request.",
    )
}

/// An upload without a length.
pub(super) fn length_required() -> Response<Body> {
    message(
        StatusCode::LENGTH_REQUIRED,
        "Length required",
        "Uploads through a link must say their size (Content-Length).",
    )
}

/// An upload over the link's limit.
pub(super) fn too_large(max: u64) -> Response<Body> {
    message(
        StatusCode::PAYLOAD_TOO_LARGE,
        "File too large",
        &format!("This link accepts files up to {}.", human_size(max)),
    )
}

/// Too many password attempts.
pub(super) fn too_many_attempts() -> Response<Body> {
    let mut r = message(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "Too many password attempts. Wait a minute and try again.",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    r
}

/// The password form, saying so when the last password was wrong: 401 with a Basic
/// challenge for clients (`curl -u :PASSWORD`), 403 for browsers (a challenge would make them
/// ask in their own dialog instead of showing the form).
pub(super) fn password(
    rec: &ShareLinkRecord,
    link_url: &str,
    wrong: bool,
    browser: bool,
) -> Response<Body> {
    let error = if wrong {
        "<p class=\"error\" id=\"error\">Wrong password.</p>"
    } else {
        ""
    };
    let status = if browser {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    let mut r = respond(
        status,
        "Password required",
        &format!(
            "<h1>{}</h1><p>This link is protected by a password.</p>{error}\
<form method=\"post\" action=\"{}\"><input type=\"password\" name=\"password\" id=\"password\" autofocus required> \
<button type=\"submit\" id=\"unlock\">Open</button></form>",
            esc(file_name(&rec.key)),
            esc(link_url)
        ),
        None,
    );
    if !browser {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"fsgate share link\""),
        );
    }
    r
}

/// After a correct password: back to the link's page, with the cookie.
pub(super) fn unlocked(link_url: &str, cookie: &str) -> Response<Body> {
    let mut r = message(StatusCode::SEE_OTHER, "Opening", "Opening the shared file.");
    if let Ok(v) = HeaderValue::from_str(link_url) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// One file's page: name, size, a download button.
pub(super) fn download(rec: &ShareLinkRecord, link_url: &str, head: &HeaderMap) -> Response<Body> {
    let header = |n: header::HeaderName| {
        head.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let size = header(header::CONTENT_LENGTH).parse::<u64>().unwrap_or(0);
    let name = file_name(&rec.key);
    respond(
        StatusCode::OK,
        name,
        &format!(
            "<h1 id=\"name\">{}</h1><p class=\"meta\"><span id=\"size\" data-bytes=\"{size}\">{}</span> · {} · \
modified {}</p><p><a class=\"button\" id=\"download\" href=\"{}?download=1\" download>Download</a></p>{}",
            esc(name),
            esc(&human_size(size)),
            esc(&header(header::CONTENT_TYPE)),
            esc(&header(header::LAST_MODIFIED)),
            esc(link_url),
            expiry_note(rec),
        ),
        None,
    )
}

/// A folder's page: its files with their sizes and download links.
pub(super) fn folder(
    rec: &ShareLinkRecord,
    link_url: &str,
    entries: &[ListEntry],
) -> Response<Body> {
    let mut rows = String::new();
    for e in entries {
        if let ListEntry::Object { key, size, .. } = e {
            let rel = key.strip_prefix(&rec.key).unwrap_or(key);
            let href = format!(
                "{link_url}/{}?download=1",
                rel.split('/')
                    .map(|s| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            );
            rows.push_str(&format!(
                "<tr><td><a class=\"file\" href=\"{}\" download>{}</a></td><td>{}</td></tr>",
                esc(&href),
                esc(rel),
                esc(&human_size(*size))
            ));
        }
    }
    if rows.is_empty() {
        rows.push_str("<tr><td>This folder is empty.</td></tr>");
    }
    let name = file_name(&rec.key);
    respond(
        StatusCode::OK,
        name,
        &format!(
            "<h1 id=\"name\">{}/</h1><table id=\"files\">{rows}</table>{}",
            esc(name),
            expiry_note(rec)
        ),
        None,
    )
}

/// The upload form: the file goes up with `PUT` to the link (or a name under it).
pub(super) fn upload(rec: &ShareLinkRecord, link_url: &str) -> Response<Body> {
    let mut n = [0u8; 16];
    rand::rng().fill_bytes(&mut n);
    let nonce = hex::encode(n);
    let limit = rec
        .max_size
        .map(|m| {
            format!(
                "<p class=\"meta\">Up to {} per file.</p>",
                esc(&human_size(m))
            )
        })
        .unwrap_or_default();
    let target = if rec.folder {
        format!("'{}/' + encodeURIComponent(file.name)", js_str(link_url))
    } else {
        format!("'{}'", js_str(link_url))
    };
    respond(
        StatusCode::OK,
        "Upload a file",
        &format!(
            "<h1>Upload to {}</h1>{limit}<form id=\"form\"><input type=\"file\" id=\"file\" required> \
<button type=\"submit\" id=\"upload\">Upload</button></form><p id=\"status\"></p>{}\
<script nonce=\"{nonce}\">\
document.getElementById('form').addEventListener('submit', async (e) => {{\
e.preventDefault(); const file = document.getElementById('file').files[0]; if (!file) return;\
const status = document.getElementById('status'); status.textContent = 'Uploading ' + file.name + '…';\
const r = await fetch({target}, {{method: 'PUT', body: file, headers: {{'Content-Type': file.type || 'application/octet-stream'}}}});\
status.dataset.state = r.ok ? 'done' : 'failed';\
status.textContent = r.ok ? 'Uploaded ' + file.name : (r.status === 412 ? 'A file with this name is already there.' : 'Upload failed (' + r.status + ').');\
}});</script>",
            esc(file_name(&rec.key)),
            expiry_note(rec),
        ),
        Some(&nonce),
    )
}

/// A string inside a single-quoted JavaScript literal in an HTML script element.
fn js_str(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '\'' | '\\' | '<' | '>' | '&' => format!("\\u{:04x}", u32::from(c)).chars().collect(),
            c => vec![c],
        })
        .collect()
}

fn expiry_note(rec: &ShareLinkRecord) -> String {
    let expires = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(rec.expires_ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default();
    let uses = rec
        .max_uses
        .map(|m| format!(", {} of {m} uses left", m.saturating_sub(rec.uses)))
        .unwrap_or_default();
    format!(
        "<p class=\"meta\" id=\"expires\">Available until {}{}.</p>",
        esc(&expires),
        esc(&uses)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html_and_script() {
        assert_eq!(
            esc("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&apos;&amp;"
        );
        assert_eq!(js_str("a'</script>"), "a\\u0027\\u003c/script\\u003e");
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
