//! Talking to fsgate: the connection an alias or the flags name, SigV4 signing, and one admin
//! API call.

use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::aliases::{Alias, load_aliases};
use crate::cli::Conn;

pub(crate) type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// An http(s) client trusting the system's roots and the CA bundle, if any.
pub(crate) fn https_client(ca_bundle: Option<&std::path::Path>) -> Result<HttpsClient> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    // The system's roots (none when they cannot be read).
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_bundle {
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading {}", path.display()))?
        {
            roots
                .add(cert.with_context(|| format!("reading {}", path.display()))?)
                .with_context(|| format!("{}: bad certificate", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

impl Conn {
    pub(crate) fn resolve(&self) -> Result<Alias> {
        let base = match &self.alias {
            Some(name) => Some(
                load_aliases()?
                    .remove(name)
                    .ok_or_else(|| anyhow!("no alias '{name}'"))?,
            ),
            None => None,
        };
        let pick = |flag: &Option<String>, from: Option<String>, what: &str| -> Result<String> {
            flag.clone().or(from).ok_or_else(|| {
                anyhow!(
                    "no {what}: use --alias, --{what} or FSCTL_{}",
                    what.to_uppercase().replace('-', "_")
                )
            })
        };
        Ok(Alias {
            url: pick(
                &self.endpoint,
                base.as_ref().map(|b| b.url.clone()),
                "endpoint",
            )?,
            access_key: pick(
                &self.access_key,
                base.as_ref().map(|b| b.access_key.clone()),
                "access-key",
            )?,
            secret_key: pick(&self.secret_key, base.map(|b| b.secret_key), "secret-key")?,
            ca_bundle: self.ca_bundle.clone(),
        })
    }
}

/// What SigV4 (and S3) leave unencoded: letters, digits and `-_.~`. Encoding anything else
/// differently from the server's canonical form breaks the signature.
pub(crate) const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Signs a request with SigV4 as S3 expects it (single-encoded path, no normalization), after
/// setting its Host header from the URI.
pub(crate) fn sign_request<B>(
    conn: &Alias,
    req: &mut http::Request<B>,
    body: SignableBody<'_>,
) -> Result<()> {
    sign_request_in(conn, "us-east-1", req, body)
}

/// `sign_request` for a server in `region`.
pub(crate) fn sign_request_in<B>(
    conn: &Alias,
    region: &str,
    req: &mut http::Request<B>,
    body: SignableBody<'_>,
) -> Result<()> {
    let url = req.uri().to_string();
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| anyhow!("bad endpoint {url}"))?;
    req.headers_mut().insert("host", host.parse()?);
    let identity = Credentials::new(&conn.access_key, &conn.secret_key, None, None, "fsctl").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    settings.uri_path_normalization_mode =
        aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        url.clone(),
        headers.into_iter(),
        body,
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

pub(crate) async fn call(
    conn: &Alias,
    method: &str,
    path_and_query: &str,
    body: Option<Value>,
) -> Result<Value> {
    let (_, bytes) = call_raw(conn, method, path_and_query, body).await?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// `call`, answering the response's headers and bytes as they are (an error status is still
/// an error, with the server's code and message).
pub(crate) async fn call_raw(
    conn: &Alias,
    method: &str,
    path_and_query: &str,
    body: Option<Value>,
) -> Result<(http::HeaderMap, Bytes)> {
    let url = format!("{}{}", conn.url.trim_end_matches('/'), path_and_query);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("content-type", "application/json")
        .header("x-amz-content-sha256", sha256_hex(body.as_bytes()))
        .body(Full::new(Bytes::from(body.clone())))?;
    sign_request(conn, &mut req, SignableBody::Bytes(body.as_bytes()))?;
    let client = https_client(conn.ca_bundle.as_deref())?;
    let resp = client
        .request(req)
        .await
        .with_context(|| format!("connecting to {}", conn.url))?;
    let status = resp.status();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await?.to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes).to_string();
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                Some(format!(
                    "{}: {}",
                    v.get("code")?.as_str()?,
                    v.get("message")?.as_str()?
                ))
            })
            .or_else(|| {
                let code = text
                    .split_once("<Code>")?
                    .1
                    .split_once("</Code>")?
                    .0
                    .to_owned();
                let msg = text
                    .split_once("<Message>")
                    .and_then(|(_, r)| r.split_once("</Message>"))
                    .map(|(m, _)| m)
                    .unwrap_or("");
                Some(format!("{code}: {msg}"))
            })
            .unwrap_or(text);
        bail!("{status}: {msg}");
    }
    Ok((parts.headers, bytes))
}

pub(crate) fn sha256_hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(b);
    digest.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}
