//! The hash-chained JSONL audit trail (http-api spec §13).
//!
//! - [`AuditLog`] appends events: redaction (§13.6), writer defaults, compaction (§13.2),
//!   the hash chain (§13.5), daily and size rotation with continuation headers (§13.1),
//!   the checkpoint `.audit-chain-state.json`, anchors every 100 events (§13.3) and a
//!   cross-process lock. Every record is written to its file (one `write`, on the caller's
//!   thread) before its `append` returns; a flusher thread `fdatasync`s either before the
//!   append returns or within an interval ([`AuditSync`]).
//! - [`verify()`] walks the chain and names the first broken link (§13.7).
//! - [`tail`], [`read_events_from`] and [`query_events`] read it back (`rampart audit tail`,
//!   `GET /v1/audit/events`, §13.8).
//!
//! Secret masking itself lives in `rampart_engine::redact`.
//!
//! On-disk layout of the audit directory (mode 0700; files 0600):
//!
//! | file | what |
//! |---|---|
//! | `YYYY-MM-DD.jsonl`, `YYYY-MM-DD.pN.jsonl` | the chain: one canonical (JCS) event per line |
//! | `.audit-chain-state.json` | checkpoint: where the chain ends (a hint; the files are the truth) |
//! | `.audit-chain-state.json.rampart.lock` | cross-process writer lock (`flock`) |
//! | `audit-anchor.json` | every 100th event's id and hash (diagnostics) |

mod canonical;
mod event;
mod read;
mod verify;
mod writer;

use std::io;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

pub use canonical::to_canonical_string;
pub use event::{
    ContinuationHeader, Event, EventDecision, EventResponse, FieldCompaction, Host, SCHEMA_VERSION,
    compute_hash, format_timestamp, redact_event,
};
pub use read::{AuditPage, AuditQuery, QueryError, query_events, read_events_from, tail};
pub use verify::{ChainError, ChainErrorKind, VerifyReport, verify};
pub use writer::{
    AuditLog, AuditOptions, AuditSync, Clock, DEFAULT_ROTATE_BYTES, DEFAULT_SYNC_INTERVAL,
    MAX_RECORD_BYTES,
};

/// The checkpoint file name.
pub const CHECKPOINT_FILE: &str = ".audit-chain-state.json";
/// The cross-process lock file name.
pub const LOCK_FILE: &str = ".audit-chain-state.json.rampart.lock";
/// The anchor file name.
pub const ANCHOR_FILE: &str = "audit-anchor.json";

/// `$RAMPART_HOME/audit` (`~/.rampart/audit` by default).
pub fn default_audit_dir() -> PathBuf {
    crate::home::rampart_home().join("audit")
}

/// Parses a managed chain file name: `YYYY-MM-DD.jsonl` → `(date, 0)`,
/// `YYYY-MM-DD.pN.jsonl` (N ≥ 1, no leading zeros) → `(date, N)`. Anything else (legacy
/// `audit-hook-*.jsonl`, exports) is not part of the chain.
pub fn parse_chain_file_name(name: &str) -> Option<(NaiveDate, u32)> {
    let stem = name.strip_suffix(".jsonl")?;
    let date_part = stem.get(..10)?;
    let b = date_part.as_bytes();
    let shape_ok = b.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        _ => c.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    // The shape is checked above: the digits are read directly (the writer looks at its
    // current file's date on every append; chrono's format parser cost a tenth of that).
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let date = NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10))?;
    let rest = &stem[10..];
    if rest.is_empty() {
        return Some((date, 0));
    }
    let n = rest.strip_prefix(".p")?;
    if n.is_empty() || n.starts_with('0') || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let seq: u32 = n.parse().ok()?;
    Some((date, seq))
}

/// The chain file name for a date and part number (0 = the day's first file).
pub fn chain_file_name(date: NaiveDate, seq: u32) -> String {
    if seq == 0 {
        format!("{}.jsonl", date.format("%Y-%m-%d"))
    } else {
        format!("{}.p{seq}.jsonl", date.format("%Y-%m-%d"))
    }
}

/// The managed chain files of `dir` (regular files only), in chain order: by date, then
/// part number (numerically).
pub fn chain_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut files: Vec<(NaiveDate, u32, String)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if let Some((date, seq)) = parse_chain_file_name(&name) {
            files.push((date, seq, name));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, _, n)| n).collect())
}

/// Cuts an unterminated last line off the newest chain file, returning the file name and the
/// bytes removed. Such a line is a write that was interrupted (the daemon killed in the
/// middle of it, or a power loss before its sync): a decision is answered only after its
/// whole line is written, so after a crash of the daemon dropping it loses nothing. A
/// deliberate truncation of an answered event is still caught by `verify` once the
/// checkpoint names that event's hash.
pub fn repair_torn_tail(dir: &Path) -> io::Result<Option<(String, u64)>> {
    let files = match chain_files(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(last) = files.last() else {
        return Ok(None);
    };
    let path = dir.join(last);
    let bytes = std::fs::read(&path)?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(None);
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let file = std::fs::OpenOptions::new().write(true).open(&path)?;
    file.set_len(keep as u64)?;
    file.sync_all()?;
    Ok(Some((last.clone(), (bytes.len() - keep) as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn file_names() {
        let d = NaiveDate::from_ymd_opt(2026, 2, 12).unwrap();
        assert_eq!(parse_chain_file_name("2026-02-12.jsonl"), Some((d, 0)));
        assert_eq!(parse_chain_file_name("2026-02-12.p1.jsonl"), Some((d, 1)));
        assert_eq!(parse_chain_file_name("2026-02-12.p10.jsonl"), Some((d, 10)));
        for bad in [
            "2026-02-12.p0.jsonl",
            "2026-02-12.p01.jsonl",
            "2026-02-12.1.jsonl",
            "2026-2-12.jsonl",
            "2026-02-30.jsonl",
            "2026-13-01.jsonl",
            "2026-00-10.jsonl",
            "2026-01-00.jsonl",
            "2026-04-31.jsonl",
            "2027-02-29.jsonl",
            "audit-hook-2026-02-12.jsonl",
            "2026-02-12.json",
            "2026-02-12.px.jsonl",
        ] {
            assert_eq!(parse_chain_file_name(bad), None, "{bad}");
        }
        // Every day of a span with leap years and a century: read back as written.
        let mut day = NaiveDate::from_ymd_opt(1999, 1, 1).unwrap();
        while day.year() < 2101 {
            assert_eq!(
                parse_chain_file_name(&chain_file_name(day, 2)),
                Some((day, 2))
            );
            day = day.succ_opt().unwrap();
        }
        assert_eq!(chain_file_name(d, 0), "2026-02-12.jsonl");
        assert_eq!(chain_file_name(d, 3), "2026-02-12.p3.jsonl");
    }

    #[test]
    fn numeric_part_order() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "2026-02-12.p10.jsonl",
            "2026-02-12.p2.jsonl",
            "2026-02-13.jsonl",
            "2026-02-12.jsonl",
            "audit-hook-2026-02-12.jsonl",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        assert_eq!(
            chain_files(dir.path()).unwrap(),
            vec![
                "2026-02-12.jsonl",
                "2026-02-12.p2.jsonl",
                "2026-02-12.p10.jsonl",
                "2026-02-13.jsonl"
            ]
        );
    }
}
