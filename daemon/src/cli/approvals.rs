//! `rampart approvals`, `rampart approve ID`, `rampart deny ID`: talk to the running daemon.

use clap::Args;
use serde_json::{Value, json};

use crate::home::{admin_token, rampart_home};

#[derive(Args, Debug, Clone)]
pub struct DaemonArgs {
    /// The daemon's HTTP address.
    #[arg(
        long,
        value_name = "URL",
        env = "RAMPART_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    url: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the daemon's JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ResolveArgs {
    /// The approval id (see `rampart approvals`).
    id: String,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    #[command(flatten)]
    resolve: ResolveArgs,
    /// Also allow this exact command (or path) from now on, without asking: an exact rule
    /// is added to ~/.rampart/policies/auto-allowed.yaml (list and revoke them with
    /// `GET`/`DELETE /v1/rules/auto-allowed`). Policy denies still win over it.
    #[arg(long)]
    always: bool,
}

fn client(d: &DaemonArgs) -> anyhow::Result<(reqwest::Client, String, String)> {
    let token = admin_token(&rampart_home())?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok((client, d.url.trim_end_matches('/').to_string(), token))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Admin actions are refused from processes running under the preload library.
fn refuse_under_library() -> anyhow::Result<()> {
    let preload = std::env::var("LD_PRELOAD").unwrap_or_default();
    if preload.contains("librampart") {
        anyhow::bail!("refusing an admin action from a process running under librampart.so");
    }
    Ok(())
}

pub fn list(a: ListArgs) -> anyhow::Result<u8> {
    let (client, url, token) = client(&a.daemon)?;
    let v: Value = runtime()?.block_on(async {
        let resp = client
            .get(format!("{url}/v1/approvals"))
            .bearer_auth(&token)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            anyhow::bail!(
                "daemon answered {status}: {}",
                body["error"].as_str().unwrap_or("")
            );
        }
        Ok(body)
    })?;
    if a.json {
        println!("{v}");
        return Ok(0);
    }
    let items = v["approvals"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("no pending approvals");
    }
    for i in items {
        println!(
            "{}  {}  {}  (agent {}, expires {})\n    {}",
            i["id"].as_str().unwrap_or(""),
            i["tool"].as_str().unwrap_or(""),
            i["command"].as_str().unwrap_or(""),
            i["agent"].as_str().unwrap_or(""),
            i["expires_at"].as_str().unwrap_or(""),
            i["message"].as_str().unwrap_or(""),
        );
    }
    Ok(0)
}

/// `rampart approve`.
pub fn approve(a: ApproveArgs) -> anyhow::Result<u8> {
    resolve(a.resolve, true, a.always)
}

/// `rampart deny`.
pub fn deny(a: ResolveArgs) -> anyhow::Result<u8> {
    resolve(a, false, false)
}

fn resolve(a: ResolveArgs, approved: bool, always: bool) -> anyhow::Result<u8> {
    refuse_under_library()?;
    let (client, url, token) = client(&a.daemon)?;
    let who = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let (status, body): (reqwest::StatusCode, Value) = runtime()?.block_on(async {
        let resp = client
            .post(format!("{url}/v1/approvals/{}/resolve", a.id))
            .bearer_auth(&token)
            .json(&json!({
                "approved": approved, "resolved_by": format!("cli:{who}"), "reason": a.reason,
                "persist": always,
            }))
            .send()
            .await?;
        let status = resp.status();
        Ok::<_, anyhow::Error>((status, resp.json().await?))
    })?;
    if status.is_success() {
        let persisted = if body["persisted"] == true {
            " (always allowed from now on)"
        } else if always {
            " (once: the rule could not be saved; see the daemon's log)"
        } else {
            ""
        };
        println!(
            "{} {}{persisted}",
            a.id,
            body["status"].as_str().unwrap_or("")
        );
        Ok(0)
    } else {
        eprintln!(
            "rampart: {} ({status})",
            body["error"].as_str().unwrap_or("request failed")
        );
        Ok(1)
    }
}
