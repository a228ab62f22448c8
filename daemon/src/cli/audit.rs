//! `rampart audit verify|tail`: check and read the hash-chained audit trail.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};

use crate::audit::{self, Event};

/// Exit status of `audit verify` for a broken chain.
pub const EXIT_BROKEN: u8 = 1;
/// Exit status when there is nothing to verify or the files cannot be read.
pub const EXIT_UNREADABLE: u8 = 2;

const FOLLOW_POLL: Duration = Duration::from_millis(200);

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify the audit trail's hash chain.
    ///
    /// Walks every chain file (YYYY-MM-DD.jsonl, YYYY-MM-DD.pN.jsonl) in order and checks
    /// each record's hash, the link to the previous record, the continuation header of every
    /// rotated file, the anchor and the checkpoint.
    ///
    /// Exit status: 0 intact, 1 chain broken (the first broken file:line is named),
    /// 2 no audit files or unreadable.
    #[command(after_help = "Examples:\n  rampart audit verify\n  \
        rampart audit verify --since 2026-03-20\n  \
        rampart audit verify --audit-dir /var/lib/rampart/audit")]
    Verify(VerifyArgs),
    /// Show the latest decisions, one line each.
    ///
    /// Columns: time (UTC), action, tool, agent, command or path (redacted), policy,
    /// message.
    #[command(
        after_help = "Examples:\n  rampart audit tail\n  rampart audit tail -n 100\n  \
        rampart audit tail -f"
    )]
    Tail(TailArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Audit directory [default: $RAMPART_HOME/audit, i.e. ~/.rampart/audit].
    #[arg(long, value_name = "DIR")]
    audit_dir: Option<PathBuf>,
    /// Only verify files dated on or after this day (the first event may then continue an
    /// earlier, unverified chain).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    since: Option<NaiveDate>,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    /// Number of events to show.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20)]
    lines: usize,
    /// Keep printing new events as they are written (Ctrl-C to stop).
    #[arg(short = 'f', long)]
    follow: bool,
    /// Audit directory [default: $RAMPART_HOME/audit, i.e. ~/.rampart/audit].
    #[arg(long, value_name = "DIR")]
    audit_dir: Option<PathBuf>,
    /// Never color the action.
    #[arg(long)]
    no_color: bool,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    if s.len() == 10
        && let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
    {
        return Ok(d);
    }
    Err(format!("invalid date {s:?}, expected YYYY-MM-DD"))
}

pub fn run(cmd: AuditCommand) -> u8 {
    match cmd {
        AuditCommand::Verify(a) => run_verify(a),
        AuditCommand::Tail(a) => run_tail(a),
    }
}

fn run_verify(a: VerifyArgs) -> u8 {
    let dir = a.audit_dir.unwrap_or_else(audit::default_audit_dir);
    match audit::verify(&dir, a.since) {
        Ok(report) => {
            println!("{report}");
            0
        }
        Err(e) if e.is_broken_chain() => {
            eprintln!("audit: {e}");
            EXIT_BROKEN
        }
        Err(e) => {
            eprintln!("audit: {e}");
            EXIT_UNREADABLE
        }
    }
}

fn run_tail(a: TailArgs) -> u8 {
    let dir = a.audit_dir.unwrap_or_else(audit::default_audit_dir);
    if !dir.is_dir() {
        eprintln!("audit: no audit directory at {}", dir.display());
        return EXIT_UNREADABLE;
    }
    let color =
        !a.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    let events = match audit::tail(&dir, a.lines) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("audit: cannot read {}: {e}", dir.display());
            return EXIT_UNREADABLE;
        }
    };
    let mut out = std::io::stdout().lock();
    for e in &events {
        if writeln!(out, "{}", render_line(e, color)).is_err() {
            return 0; // stdout closed (e.g. piped into head)
        }
    }
    let _ = out.flush();
    drop(out);
    if a.follow {
        follow(&dir, color);
    }
    0
}

/// Polls the newest chain file and prints events as complete lines appear, moving on to new
/// files as the trail rotates. Returns only when stdout is closed.
fn follow(dir: &Path, color: bool) {
    let mut current: Option<(String, u64)> = audit::chain_files(dir)
        .ok()
        .and_then(|f| f.last().cloned())
        .map(|name| {
            let len = std::fs::metadata(dir.join(&name)).map_or(0, |m| m.len());
            (name, len)
        });
    loop {
        std::thread::sleep(FOLLOW_POLL);
        let Ok(files) = audit::chain_files(dir) else {
            continue;
        };
        // Files to read: the rest of the current one, then every newer one from the start.
        let start_idx = match &current {
            Some((name, _)) => files.iter().position(|f| f == name),
            None => None,
        };
        let mut todo: Vec<(String, u64)> = Vec::new();
        match (start_idx, &current) {
            (Some(i), Some((name, off))) => {
                todo.push((name.clone(), *off));
                todo.extend(files[i + 1..].iter().map(|f| (f.clone(), 0)));
            }
            _ => {
                // first file appeared, or ours vanished: start at the newest
                if let Some(last) = files.last() {
                    todo.push((last.clone(), 0));
                }
            }
        }
        for (name, off) in todo {
            let Ok((events, next)) = audit::read_events_from(&dir.join(&name), off) else {
                continue;
            };
            let mut out = std::io::stdout().lock();
            for e in &events {
                if writeln!(out, "{}", render_line(e, color)).is_err() {
                    return;
                }
            }
            if out.flush().is_err() {
                return;
            }
            current = Some((name, next));
        }
    }
}

/// One readable line per decision:
/// `2026-02-12 10:00:01  deny    exec      agent-1  rm -rf /  [block-destructive]  message`.
pub fn render_line(e: &Event, color: bool) -> String {
    let time = DateTime::parse_from_rfc3339(&e.timestamp)
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| e.timestamp.clone());
    let action = if e.decision.action.is_empty() {
        "-"
    } else {
        &e.decision.action
    };
    let padded = format!("{action:<8}");
    let action_col = if color {
        let code = match action {
            "deny" | "denied" | "timeout" | "cancelled" => "1;31",
            "allow" | "approved" | "authorized" => "32",
            "ask" | "watch" | "webhook" | "verify" | "require_approval" => "33",
            _ => "",
        };
        if code.is_empty() {
            padded
        } else {
            format!("\x1b[{code}m{padded}\x1b[0m")
        }
    } else {
        padded
    };
    let subject = e
        .subject()
        .map(|s| one_line(&rampart_engine::redact::sanitize_command(s)))
        .unwrap_or_else(|| "-".into());
    let agent = if e.agent.is_empty() { "-" } else { &e.agent };
    let policy = if e.decision.matched_policies.is_empty() {
        "-".to_string()
    } else {
        format!("[{}]", e.decision.matched_policies.join(","))
    };
    let mut line = format!(
        "{time}  {action_col}{:<9} {agent}  {subject}  {policy}",
        e.tool
    );
    if !e.decision.message.is_empty() {
        line.push_str("  ");
        line.push_str(&one_line(&e.decision.message));
    }
    line
}

/// Control characters shown escaped, so one event stays one terminal line.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventDecision;

    #[test]
    fn line_shape() {
        let mut e = Event {
            timestamp: "2026-02-12T10:00:01.123456789Z".into(),
            agent: "agent-1".into(),
            tool: "exec".into(),
            decision: EventDecision {
                action: "deny".into(),
                matched_policies: vec!["block-destructive".into()],
                message: "destructive\ncommand blocked".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        e.request
            .insert("command".into(), "rm -rf / --token abc".into());
        assert_eq!(
            render_line(&e, false),
            "2026-02-12 10:00:01  deny    exec      agent-1  rm -rf / --token [REDACTED]  \
             [block-destructive]  destructive\\ncommand blocked"
        );
        assert!(render_line(&e, true).contains("\x1b[1;31mdeny    \x1b[0m"));
    }

    #[test]
    fn dates() {
        assert!(parse_date("2026-02-12").is_ok());
        assert!(parse_date("2026-2-12").is_err());
        assert!(parse_date("yesterday").is_err());
    }
}
