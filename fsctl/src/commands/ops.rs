//! Operations: the audit query, a lifecycle run, the Prometheus scrape job.

use anyhow::Result;

use crate::aliases::Alias;
use crate::cli::AuditCmd;
use crate::client::{call, enc};
use crate::output::{array, print_one, print_rows};

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

/// `fsctl lifecycle run`.
pub(crate) async fn lifecycle_run(c: &Alias, now: Option<String>, j: bool) -> Result<()> {
    let body = now.map(|t| serde_json::json!({ "now": t }));
    let v = call(c, "POST", "/admin/v1/lifecycle/run", body).await?;
    print_one(j, &v);
    Ok(())
}

/// `fsctl audit query`.
pub(crate) async fn audit_query(c: &Alias, q: AuditCmd, j: bool) -> Result<()> {
    let AuditCmd::Query {
        principal,
        bucket,
        key,
        since,
        until,
        decision,
        limit,
    } = q;
    let mut q = vec![format!("limit={limit}")];
    for (k, v) in [
        ("principal", principal),
        ("bucket", bucket),
        ("key", key),
        ("since", since),
        ("until", until),
        ("decision", decision),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", enc(&v)));
        }
    }
    let rows = array(call(c, "GET", &format!("/admin/v1/audit?{}", q.join("&")), None).await?);
    print_rows(
        j,
        &rows,
        &[
            "time",
            "principal",
            "action",
            "bucket",
            "key",
            "decision",
            "status",
            "error_code",
            "policies",
        ],
    );
    Ok(())
}
