//! Reading the trail back: `rampart audit tail` and `GET /v1/audit/events` (spec §13.8).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

use super::event::Event;
use super::writer::Lines;
use super::{chain_files, parse_chain_file_name};

/// Parses one stored line as an event; `None` for continuation headers and lines that are
/// not events.
fn parse_event(line: &[u8]) -> Option<Event> {
    if line.is_empty() || line.starts_with(b"{\"chain_continue\":") {
        return None;
    }
    let e: Event = serde_json::from_slice(line).ok()?;
    (!e.id.is_empty()).then_some(e)
}

fn file_events(path: &Path) -> io::Result<Vec<Event>> {
    let lines = Lines::read(path)?;
    let mut n = lines.ranges.len();
    if !lines.terminated {
        n -= 1; // a line still being written
    }
    Ok((0..n).filter_map(|i| parse_event(lines.line(i))).collect())
}

/// The last `n` events of the chain, oldest first. Continuation headers and unreadable lines
/// are skipped.
pub fn tail(dir: &Path, n: usize) -> io::Result<Vec<Event>> {
    let files = chain_files(dir)?;
    let mut out: Vec<Event> = Vec::new();
    for name in files.iter().rev() {
        if out.len() >= n {
            break;
        }
        let mut events = file_events(&dir.join(name))?;
        let take = (n - out.len()).min(events.len());
        let mut newest = events.split_off(events.len() - take);
        newest.append(&mut out);
        out = newest;
    }
    Ok(out)
}

/// Events from the complete lines of `path` starting at byte `offset`, and the offset after
/// the last complete line (for following a file as it grows).
pub fn read_events_from(path: &Path, offset: u64) -> io::Result<(Vec<Event>, u64)> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    if offset >= len {
        return Ok((Vec::new(), offset.min(len)));
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(f);
    let mut pos = offset;
    let mut buf = Vec::new();
    let mut events = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        pos += n as u64;
        if let Some(e) = parse_event(&buf[..n - 1]) {
            events.push(e);
        }
    }
    Ok((events, pos))
}

/// Query parameters of `GET /v1/audit/events`, as received (all optional strings, so that
/// invalid numbers can fall back to their defaults as the spec requires).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    /// `YYYY-MM-DD`, default today (UTC).
    pub date: Option<String>,
    /// Default 50, at most 500; invalid or ≤ 0 → 50.
    pub limit: Option<String>,
    /// Index into the filtered, newest-first list; invalid or < 0 → 0.
    pub offset: Option<String>,
    pub tool: Option<String>,
    pub action: Option<String>,
    pub agent: Option<String>,
    pub session: Option<String>,
}

/// Response body of `GET /v1/audit/events`.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub events: Vec<Event>,
    /// All of the day's events (chain files and legacy hook file), before filtering.
    pub total_in_file: usize,
    /// Offset of the next page; 0 when there is none.
    pub next_offset: usize,
    pub date: String,
}

/// Why a query failed.
#[derive(Debug)]
pub enum QueryError {
    /// 400 `invalid date format, expected YYYY-MM-DD`.
    InvalidDate,
    /// 503: the audit directory does not exist.
    NoAuditDir,
    /// 500.
    Io(io::Error),
}

impl QueryError {
    /// The HTTP status this error maps to.
    pub fn status(&self) -> u16 {
        match self {
            QueryError::InvalidDate => 400,
            QueryError::NoAuditDir => 503,
            QueryError::Io(_) => 500,
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::InvalidDate => write!(f, "invalid date format, expected YYYY-MM-DD"),
            QueryError::NoAuditDir => write!(f, "audit directory not available"),
            QueryError::Io(e) => write!(f, "audit read failed: {e}"),
        }
    }
}

impl std::error::Error for QueryError {}

fn wanted(filter: &Option<String>, value: &str) -> bool {
    match filter.as_deref() {
        None | Some("") => true,
        Some(f) => f == value,
    }
}

/// Answers `GET /v1/audit/events` (spec §13.8): the day's events (chain files of that date
/// in order, plus a legacy `audit-hook-<date>.jsonl`), filtered by exact `tool`, `action`,
/// `agent` and `session`, newest first, paged by `offset`/`limit`. Continuation headers are
/// never returned or counted. `today` is the default date (the caller's UTC today).
pub fn query_events(dir: &Path, q: &AuditQuery, today: NaiveDate) -> Result<AuditPage, QueryError> {
    let date = match q.date.as_deref().filter(|d| !d.is_empty()) {
        None => today,
        Some(d) => {
            if d.len() != 10 {
                return Err(QueryError::InvalidDate);
            }
            NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| QueryError::InvalidDate)?
        }
    };
    let limit = q
        .limit
        .as_deref()
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0)
        .map_or(50, |l| l.min(500) as usize);
    let offset = q
        .offset
        .as_deref()
        .and_then(|o| o.parse::<i64>().ok())
        .filter(|o| *o > 0)
        .map_or(0, |o| o as usize);
    if !dir.is_dir() {
        return Err(QueryError::NoAuditDir);
    }
    let date_str = date.format("%Y-%m-%d").to_string();
    let files = chain_files(dir).map_err(QueryError::Io)?;
    let mut all: Vec<Event> = Vec::new();
    for name in files
        .iter()
        .filter(|f| parse_chain_file_name(f).is_some_and(|(d, _)| d == date))
    {
        all.extend(file_events(&dir.join(name)).map_err(QueryError::Io)?);
    }
    let legacy = dir.join(format!("audit-hook-{date_str}.jsonl"));
    if legacy.is_file() {
        all.extend(file_events(&legacy).map_err(QueryError::Io)?);
        // interleave the two sources by time (stable: chain order is kept for equal times)
        all.sort_by_key(|e| DateTime::parse_from_rfc3339(&e.timestamp).ok());
    }
    let total_in_file = all.len();
    let mut filtered: Vec<Event> = all
        .into_iter()
        .filter(|e| {
            wanted(&q.tool, &e.tool)
                && wanted(&q.action, &e.decision.action)
                && wanted(&q.agent, &e.agent)
                && wanted(&q.session, &e.session)
        })
        .collect();
    filtered.reverse();
    let start = offset.min(filtered.len());
    let end = (start + limit).min(filtered.len());
    let next_offset = if end < filtered.len() { end } else { 0 };
    let events = filtered.drain(start..end).collect();
    Ok(AuditPage {
        events,
        total_in_file,
        next_offset,
        date: date_str,
    })
}
