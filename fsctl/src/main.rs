//! `fsctl`: the operator's command-line client for fsgate. It speaks HTTP only: the admin API
//! under `/admin/v1/`, signed with SigV4 like any S3 request.

use anyhow::Result;
use clap::Parser;

mod aliases;
mod bench;
mod cli;
mod client;
mod commands;
mod output;

use cli::{AdminCmd, Cli, Cmd, ImportCmd, KmsCmd, LifecycleCmd};
use commands::{audit, identity, import, import_iam, ops, policy, share};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("fsctl: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let j = cli.json;
    if let Cmd::Alias(a) = &cli.cmd {
        return aliases::command(a, j);
    }
    // Checking an exported log or a proof with a key file needs no server.
    if let Cmd::Audit(cmd) = &cli.cmd
        && audit::is_offline(cmd)
    {
        return audit::verify_offline(cmd, j);
    }
    let c = cli.conn.resolve()?;
    match cli.cmd {
        Cmd::Alias(_) => {}
        Cmd::User(u) => identity::user(&c, u, j).await?,
        Cmd::Key(k) => identity::key(&c, k, j).await?,
        Cmd::Idp(i) => identity::idp(&c, i, j).await?,
        Cmd::Svcacct(sa) => identity::svcacct(&c, sa, j).await?,
        Cmd::Kms(KmsCmd::Key(k)) => identity::kms_key(&c, k, j).await?,
        Cmd::Group(g) => identity::group(&c, g, j).await?,
        Cmd::Policy(p) => policy::policy(&c, p, j).await?,
        Cmd::Bench(args) => bench::run(&c, args, j).await?,
        Cmd::Import(ImportCmd::S3(args)) => import::import_s3(&c, args, j).await?,
        Cmd::Import(ImportCmd::Iam(args)) => import_iam::import_iam(&c, args, j).await?,
        Cmd::Admin(AdminCmd::PrometheusConfig { token, interval }) => {
            ops::prometheus_config(&c, token.as_deref(), &interval)?;
        }
        Cmd::Admin(AdminCmd::Scrub { rate }) => ops::scrub(&c, rate, j).await?,
        Cmd::Admin(AdminCmd::Backup { dir }) => ops::backup(&c, &dir, j).await?,
        Cmd::Lifecycle(LifecycleCmd::Run { now }) => ops::lifecycle_run(&c, now, j).await?,
        Cmd::Audit(a) => audit::audit(&c, a, j).await?,
        Cmd::Share(s) => share::share(&c, s, j).await?,
    }
    Ok(())
}
