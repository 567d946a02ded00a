//! `fsctl audit`: query records, export the log, verify it (a file offline, or the server's),
//! prove a record's inclusion, print the checkpoints' public key.

use std::io::{BufReader, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};

use fsgate_auditlog::proof::{ConsistencyDoc, ProofDoc, verify_consistency_doc, verify_proof};
use fsgate_auditlog::verify::{Finding, Report, Verifier, verify_reader};
use fsgate_auditlog::{Checkpoint, PublicKey};

use crate::aliases::Alias;
use crate::cli::AuditCmd;
use crate::client::{call, call_raw, enc};
use crate::output::{array, print_one, print_rows};

/// The header of a log page that goes on (the server's `audit::NEXT_HEADER`).
const NEXT_HEADER: &str = "x-fsgate-next-from";

/// `fsctl audit ...`.
pub(crate) async fn audit(c: &Alias, cmd: AuditCmd, j: bool) -> Result<()> {
    match cmd {
        q @ AuditCmd::Query { .. } => query(c, q, j).await,
        AuditCmd::Export {
            since,
            until,
            out,
            format,
            page_records,
        } => export(c, (since, until), &out, &format, page_records, j).await,
        AuditCmd::Verify {
            file,
            pubkey,
            proof,
            since,
            until,
        } => {
            let key = pubkey_of(c, pubkey.as_deref()).await?;
            if let Some(p) = proof {
                return finish_proof(check_proof_file(&p, &key)?, j);
            }
            let report = match file {
                Some(f) => verify_file(&f, key)?,
                None => verify_server(c, key, since, until).await?,
            };
            finish_report(&report, j)
        }
        AuditCmd::Prove {
            request_id,
            old_size,
            new_size,
            pubkey,
        } => {
            let key = pubkey_of(c, pubkey.as_deref()).await?;
            prove(c, request_id, old_size, new_size, &key, j).await
        }
        AuditCmd::Pubkey => {
            let v = call(c, "GET", "/admin/v1/audit/pubkey", None).await?;
            if j {
                print_one(true, &v);
            } else {
                print!(
                    "{}",
                    v.get("public_key").and_then(Value::as_str).unwrap_or("")
                );
            }
            Ok(())
        }
    }
}

/// True for a `verify` that reads only files.
pub(crate) fn is_offline(cmd: &AuditCmd) -> bool {
    matches!(cmd, AuditCmd::Verify { file, proof, pubkey: Some(_), .. } if file.is_some() || proof.is_some())
}

/// `fsctl audit verify --file F --pubkey K` or `--proof P --pubkey K`: no server involved.
pub(crate) fn verify_offline(cmd: &AuditCmd, j: bool) -> Result<()> {
    let AuditCmd::Verify {
        file,
        pubkey: Some(pubkey),
        proof,
        ..
    } = cmd
    else {
        bail!("not an offline verification");
    };
    let key = read_pubkey(pubkey)?;
    if let Some(p) = proof {
        return finish_proof(check_proof_file(p, &key)?, j);
    }
    let f = file
        .as_deref()
        .ok_or_else(|| anyhow!("--file or --proof"))?;
    finish_report(&verify_file(f, key)?, j)
}

fn read_pubkey(path: &Path) -> Result<PublicKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    PublicKey::from_pem(&text).with_context(|| format!("{}", path.display()))
}

/// The key in `file`, else the server's.
async fn pubkey_of(c: &Alias, file: Option<&Path>) -> Result<PublicKey> {
    match file {
        Some(p) => read_pubkey(p),
        None => server_pubkey(c).await,
    }
}

async fn server_pubkey(c: &Alias) -> Result<PublicKey> {
    let v = call(c, "GET", "/admin/v1/audit/pubkey", None).await?;
    let pem = v
        .get("public_key")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the server sent no public key"))?;
    Ok(PublicKey::from_pem(pem)?)
}

fn verify_file(path: &Path, key: PublicKey) -> Result<Report> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(verify_reader(key, BufReader::with_capacity(1 << 20, f))?)
}

/// Prints a verification's report; a failed one exits non-zero.
fn finish_report(r: &Report, j: bool) -> Result<()> {
    if j {
        println!(
            "{}",
            json!({
                "ok": r.ok, "records": r.records, "checkpoints": r.checkpoints,
                "first_error": r.first_error, "tree_size": r.tree_size, "root": r.root,
                "key_id": r.key_id,
            })
        );
    } else if r.ok {
        println!(
            "ok: {} records, {} checkpoints verified with key {}",
            r.records, r.checkpoints, r.key_id
        );
    } else if let Some(e) = &r.first_error {
        println!(
            "NOT OK: {} at record {}: {}",
            serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            e.record.map_or("-".into(), |n| format!("#{n}")),
            e.detail
        );
    }
    if !r.ok {
        std::process::exit(1);
    }
    Ok(())
}

/// The positions `[from, to)` covering a time range, after the server signed what it holds.
async fn range(c: &Alias, since: Option<&str>, until: Option<&str>) -> Result<(u64, u64)> {
    let mut q = Vec::new();
    for (k, v) in [("since", since), ("until", until)] {
        if let Some(v) = v {
            q.push(format!("{k}={}", enc(v)));
        }
    }
    let v = call(
        c,
        "GET",
        &format!("/admin/v1/audit/range?{}", q.join("&")),
        None,
    )
    .await?;
    let n = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("the server's range has no {k}"))
    };
    Ok((n("from")?, n("to")?))
}

/// Reads the log's pages `[from, to)` in order, handing each to `each`.
async fn pages(
    c: &Alias,
    (from, to, max): (u64, u64, u64),
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut next = Some(from);
    while let Some(at) = next {
        let (headers, body) = call_raw(
            c,
            "GET",
            &format!(
                "/admin/v1/audit/log?from={at}&to={to}&max={max}{}",
                if at == from { "" } else { "&next=1" }
            ),
            None,
        )
        .await?;
        each(&body)?;
        next = headers
            .get(NEXT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if next.is_some_and(|n| n <= at) {
            bail!("the server's log pages do not advance");
        }
    }
    Ok(())
}

async fn verify_server(
    c: &Alias,
    key: PublicKey,
    since: Option<String>,
    until: Option<String>,
) -> Result<Report> {
    let (from, to) = range(c, since.as_deref(), until.as_deref()).await?;
    let mut v = Verifier::new(key);
    pages(c, (from, to, 50_000), |page| {
        for line in page.split(|&b| b == b'\n') {
            v.push_line(line);
        }
        Ok(())
    })
    .await?;
    Ok(v.finish())
}

async fn export(
    c: &Alias,
    (since, until): (Option<String>, Option<String>),
    out: &Path,
    format: &str,
    page_records: u64,
    j: bool,
) -> Result<()> {
    let (from, to) = range(c, since.as_deref(), until.as_deref()).await?;
    let mut w: Box<dyn std::io::Write> = if out == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
        ))
    };
    let cloudtrail = format == "cloudtrail";
    let (mut records, mut checkpoints) = (0u64, Vec::<Checkpoint>::new());
    if cloudtrail {
        w.write_all(b"{\"Records\":[")?;
    }
    pages(c, (from, to, page_records), |page| {
        if !cloudtrail {
            w.write_all(page)?;
        }
        for line in page.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(cp) = Checkpoint::from_line(line) {
                checkpoints.push(cp);
            } else if fsgate_auditlog::record::seq_of(line).is_some() {
                if cloudtrail {
                    let r = fsgate_auditlog::record::parse(line)?;
                    if records > 0 {
                        w.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut w, &fsgate_auditlog::cloudtrail::event(&r))?;
                }
                records += 1;
            }
        }
        Ok(())
    })
    .await?;
    if cloudtrail {
        w.write_all(b"],\"fsgateCheckpoints\":")?;
        serde_json::to_writer(&mut w, &checkpoints)?;
        w.write_all(b"}\n")?;
    }
    w.flush()?;
    let summary = json!({
        "records": records,
        "checkpoints": checkpoints.len(),
        "from": from,
        "to": to,
        "first_checkpoint": checkpoints.first().map(|c| &c.time),
        "last_checkpoint": checkpoints.last().map(|c| &c.time),
        "out": out.display().to_string(),
        "format": format,
    });
    // The summary goes to stderr when the log goes to stdout.
    if out == Path::new("-") {
        eprintln!("{summary}");
    } else {
        print_one(j, &summary);
    }
    Ok(())
}

/// A proof file's verdict: what it proves, or the first thing wrong with it.
enum ProofVerdict {
    Inclusion(Box<ProofDoc>),
    Consistency(Box<ConsistencyDoc>),
    Failed(Finding),
}

fn check_proof_file(path: &Path, key: &PublicKey) -> Result<ProofVerdict> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check_proof(&text, key)
}

fn check_proof(text: &[u8], key: &PublicKey) -> Result<ProofVerdict> {
    let v: Value = serde_json::from_slice(text).context("the proof is not JSON")?;
    // `fsctl audit prove --json` wraps the document as `proof`, beside `verified`.
    let doc = match (v.get("verified"), v.get("proof")) {
        (Some(_), Some(inner)) => inner.clone(),
        _ => v,
    };
    if doc.get("request_id").is_some() {
        let p: ProofDoc = serde_json::from_value(doc).context("not an inclusion proof")?;
        Ok(match verify_proof(&p, key) {
            Ok(()) => ProofVerdict::Inclusion(Box::new(p)),
            Err(f) => ProofVerdict::Failed(f),
        })
    } else {
        let c: ConsistencyDoc = serde_json::from_value(doc).context("not a consistency proof")?;
        Ok(match verify_consistency_doc(&c, key) {
            Ok(()) => ProofVerdict::Consistency(Box::new(c)),
            Err(f) => ProofVerdict::Failed(f),
        })
    }
}

fn finish_proof(verdict: ProofVerdict, j: bool) -> Result<()> {
    let (ok, out) = match verdict {
        ProofVerdict::Inclusion(p) => (
            true,
            json!({"ok": true, "proves": "inclusion", "request_id": p.request_id, "record": p.seq,
                   "checkpoint_size": p.checkpoint.size, "first_error": null}),
        ),
        ProofVerdict::Consistency(c) => (
            true,
            json!({"ok": true, "proves": "consistency", "old_size": c.old.size,
                   "new_size": c.new.size, "first_error": null}),
        ),
        ProofVerdict::Failed(f) => (false, json!({"ok": false, "first_error": f})),
    };
    if j {
        println!("{out}");
    } else if ok {
        println!("ok: {out}");
    } else {
        println!("NOT OK: {out}");
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn prove(
    c: &Alias,
    request_id: Option<String>,
    old_size: Option<u64>,
    new_size: Option<u64>,
    key: &PublicKey,
    j: bool,
) -> Result<()> {
    let doc = match (request_id, old_size) {
        (Some(id), _) => {
            call(
                c,
                "GET",
                &format!("/admin/v1/audit/proof?request_id={}", enc(&id)),
                None,
            )
            .await?
        }
        (None, Some(old)) => {
            let new = new_size.map(|n| format!("&new={n}")).unwrap_or_default();
            call(
                c,
                "GET",
                &format!("/admin/v1/audit/consistency?old={old}{new}"),
                None,
            )
            .await?
        }
        (None, None) => bail!("--request-id or --old-size"),
    };
    // A proof is only handed on once it checks out here too.
    let verdict = check_proof(doc.to_string().as_bytes(), key)?;
    let verified = !matches!(verdict, ProofVerdict::Failed(_));
    if j {
        println!(
            "{}",
            json!({"verified": verified, "key_id": key.key_id(), "proof": doc})
        );
    } else {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        println!("verified with key {}: {verified}", key.key_id());
    }
    if !verified {
        std::process::exit(1);
    }
    Ok(())
}

/// `fsctl audit query`.
async fn query(c: &Alias, q: AuditCmd, j: bool) -> Result<()> {
    let AuditCmd::Query {
        principal,
        bucket,
        key,
        request_id,
        since,
        until,
        decision,
        limit,
    } = q
    else {
        bail!("not a query");
    };
    let mut q = vec![format!("limit={limit}")];
    for (k, v) in [
        ("principal", principal),
        ("bucket", bucket),
        ("key", key),
        ("request_id", request_id),
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
