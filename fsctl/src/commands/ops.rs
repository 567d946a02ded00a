//! Operations: a lifecycle run, a scrub, a backup, the Prometheus scrape job.

use anyhow::Result;

use crate::aliases::Alias;
use crate::client::call;
use crate::output::print_one;

/// `fsctl admin prometheus-config`: a scrape job for this server.
pub(crate) fn prometheus_config(c: &Alias, token: Option<&str>, interval: &str) -> Result<()> {
    print!("{}", prometheus_job(&c.url, token, interval)?);
    Ok(())
}

/// A Prometheus `scrape_configs` entry for the server at `url`.
fn prometheus_job(url: &str, token: Option<&str>, interval: &str) -> Result<String> {
    let u: http::Uri = url.parse().map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let scheme = u.scheme_str().unwrap_or("http");
    let host = u
        .authority()
        .map(ToString::to_string)
        .ok_or_else(|| anyhow::anyhow!("{url}: no host"))?;
    let mut out = format!(
        "scrape_configs:\n  - job_name: fsgate\n    scrape_interval: {interval}\n    metrics_path: /metrics\n    scheme: {scheme}\n    static_configs:\n      - targets: ['{host}']\n"
    );
    if let Some(t) = token {
        out.push_str(&format!(
            "    authorization:\n      type: Bearer\n      credentials: '{}'\n",
            t.replace('\'', "''")
        ));
    }
    Ok(out)
}

/// `fsctl admin scrub [--rate MIB_PER_S]`: exits 1 when anything was found corrupt.
pub(crate) async fn scrub(c: &Alias, rate: Option<f64>, j: bool) -> Result<()> {
    let path = match rate {
        Some(r) if r.is_finite() && r > 0.0 => format!("/admin/v1/scrub?rate={r}"),
        Some(_) => anyhow::bail!("--rate: MiB per second, above 0"),
        None => "/admin/v1/scrub".to_owned(),
    };
    let v = call(c, "POST", &path, None).await?;
    print_one(j, &v);
    let corrupt = v
        .get("corrupt")
        .and_then(serde_json::Value::as_array)
        .map_or(0, Vec::len);
    if corrupt > 0 {
        anyhow::bail!("{corrupt} corrupt blob(s) or object(s) found and quarantined");
    }
    Ok(())
}

/// `fsctl admin backup DIR`.
pub(crate) async fn backup(c: &Alias, dir: &std::path::Path, j: bool) -> Result<()> {
    let dir = std::path::absolute(dir)?;
    let body = serde_json::json!({ "dir": dir.to_string_lossy() });
    let v = call(c, "POST", "/admin/v1/backup", Some(body)).await?;
    print_one(j, &v);
    Ok(())
}

/// `fsctl lifecycle run`.
pub(crate) async fn lifecycle_run(c: &Alias, now: Option<String>, j: bool) -> Result<()> {
    let body = now.map(|t| serde_json::json!({ "now": t }));
    let v = call(c, "POST", "/admin/v1/lifecycle/run", body).await?;
    print_one(j, &v);
    Ok(())
}
