//! Walking the chain: [`verify()`] (spec §13.7).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::event::compute_hash;
use super::writer::{read_anchor, read_checkpoint};
use super::{ANCHOR_FILE, CHECKPOINT_FILE, LOCK_FILE, chain_files, parse_chain_file_name};
use crate::file_lock::FlockGuard;

/// An intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events verified.
    pub events: u64,
    /// Chain files walked.
    pub files: usize,
    pub first_file: String,
    pub last_file: String,
    /// Hash of the last event (`""` when there is none).
    pub last_hash: String,
    /// Whether `audit-anchor.json` was present and checked.
    pub anchor_checked: bool,
    /// Whether `.audit-chain-state.json` was present and checked.
    pub checkpoint_checked: bool,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "✓ Chain verified: {} events across {} files, no tampering detected",
            self.events, self.files
        )
    }
}

/// The first broken link of the chain, or why the chain could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    /// File name inside the audit directory (the directory itself for
    /// [`ChainErrorKind::NoAuditDir`] and [`ChainErrorKind::NoFiles`]).
    pub file: String,
    /// 1-based line number; 0 when the problem is not one line (a missing file, an anchor).
    pub line: usize,
    pub kind: ChainErrorKind,
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainErrorKind {
    /// The audit directory does not exist.
    NoAuditDir,
    /// No chain files (`YYYY-MM-DD[.pN].jsonl`), or none on or after `--since`.
    NoFiles,
    /// A file could not be read.
    Io(String),
    /// The file's last line has no newline: an interrupted write or a truncation.
    UnterminatedLine,
    /// An empty line.
    EmptyLine,
    /// The line is not a JSON object.
    BadJson(String),
    /// A JSON object without `id` that is not a continuation header.
    NotAnEvent,
    /// A required field is missing or not a string.
    BadField(&'static str),
    /// The stored hash does not match the recomputed one: the record was altered.
    HashMismatch { stored: String, computed: String },
    /// `prev_hash` is not the previous event's hash: a record before it was deleted,
    /// inserted or moved.
    PrevHashMismatch { expected: String, found: String },
    /// A rotated-into file does not start with its continuation header.
    MissingContinuationHeader { prev_file: String },
    /// A continuation header that is not the first line of its file.
    MisplacedContinuationHeader,
    /// The header names another previous file than the one before it on disk.
    ContinuationPrevFile {
        expected: String,
        found: String,
        found_exists: bool,
    },
    /// The header's `chain_continue` is not the hash the chain reached.
    ContinuationHash { expected: String, found: String },
    /// The anchored event id is not in the chain.
    AnchorEventMissing { event_id: String },
    /// The anchored event's hash differs from the anchor's.
    AnchorHashMismatch {
        event_id: String,
        anchored: String,
        found: String,
    },
    /// The anchored event is not at the position the anchor recorded.
    AnchorPosition {
        event_id: String,
        anchored: u64,
        found: u64,
    },
    /// The anchor file is not valid.
    BadAnchor(String),
    /// A file the checkpoint names is gone.
    CheckpointFileMissing,
    /// The checkpoint's last hash is not in the chain: records were removed from its end.
    CheckpointHashMissing { last_hash: String, event_count: u64 },
    /// The checkpoint's last event is not at the position it recorded.
    CheckpointPosition { recorded: u64, found: u64 },
}

impl ChainError {
    /// Whether this is evidence of a broken chain (as opposed to nothing to verify or an
    /// I/O failure).
    pub fn is_broken_chain(&self) -> bool {
        !matches!(
            self.kind,
            ChainErrorKind::NoAuditDir | ChainErrorKind::NoFiles | ChainErrorKind::Io(_)
        )
    }
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ChainErrorKind as K;
        match &self.kind {
            K::NoAuditDir => return write!(f, "no audit directory at {}", self.file),
            K::NoFiles => return write!(f, "no audit chain files found in {}", self.file),
            K::Io(e) => return write!(f, "cannot read {}: {e}", self.file),
            _ => {}
        }
        if self.line > 0 {
            write!(f, "CHAIN BROKEN: {}:{}: ", self.file, self.line)?;
        } else {
            write!(f, "CHAIN BROKEN: {}: ", self.file)?;
        }
        match &self.kind {
            K::NoAuditDir | K::NoFiles | K::Io(_) => Ok(()),
            K::UnterminatedLine => write!(
                f,
                "last line is unterminated (truncated file or interrupted write)"
            ),
            K::EmptyLine => write!(f, "empty line"),
            K::BadJson(e) => write!(f, "not a valid JSON object ({e})"),
            K::NotAnEvent => write!(f, "line has no id and is not a continuation header"),
            K::BadField(name) => write!(f, "field `{name}` is missing or not a string"),
            K::HashMismatch { stored, computed } => write!(
                f,
                "hash mismatch: the record was modified (stored {stored}, computed {computed})"
            ),
            K::PrevHashMismatch { expected, found } if expected.is_empty() => write!(
                f,
                "the first event of the chain has prev_hash {found}, expected \"\" (earlier \
                 records or files are missing; use --since to start later)"
            ),
            K::PrevHashMismatch { expected, found } => write!(
                f,
                "prev_hash mismatch: a record before this line was deleted, inserted or \
                 reordered (expected {expected}, found {found})"
            ),
            K::MissingContinuationHeader { prev_file } => write!(
                f,
                "missing continuation header (the file after {prev_file} must start with \
                 {{\"chain_continue\",\"prev_file\"}})"
            ),
            K::MisplacedContinuationHeader => {
                write!(f, "continuation header is not the first line of its file")
            }
            K::ContinuationPrevFile {
                expected,
                found,
                found_exists,
            } => write!(
                f,
                "continuation header names prev_file {found}{}, but the previous file is \
                 {expected} (a file was deleted, renamed or added)",
                if *found_exists { "" } else { " (missing)" }
            ),
            K::ContinuationHash { expected, found } if expected.is_empty() => write!(
                f,
                "the chain continues from {found}, but no earlier records exist (earlier files \
                 were deleted; use --since to start later)"
            ),
            K::ContinuationHash { expected, found } => write!(
                f,
                "continuation header continues from {found}, but the previous file ends at \
                 {expected} (records at the end of the previous file are missing)"
            ),
            K::AnchorEventMissing { event_id } => write!(
                f,
                "anchored event {event_id} ({ANCHOR_FILE}) is not in the chain (records were \
                 deleted)"
            ),
            K::AnchorHashMismatch {
                event_id,
                anchored,
                found,
            } => write!(
                f,
                "event {event_id} has hash {found}, but {ANCHOR_FILE} recorded {anchored} (the \
                 chain was rewritten)"
            ),
            K::AnchorPosition {
                event_id,
                anchored,
                found,
            } => write!(
                f,
                "event {event_id} is event #{found} of the chain, but {ANCHOR_FILE} recorded \
                 #{anchored} (records were deleted or inserted before it)"
            ),
            K::BadAnchor(e) => write!(f, "{ANCHOR_FILE} is not valid: {e}"),
            K::CheckpointFileMissing => write!(
                f,
                "file named by {CHECKPOINT_FILE} is missing (a chain file was deleted)"
            ),
            K::CheckpointHashMissing {
                last_hash,
                event_count,
            } => write!(
                f,
                "{CHECKPOINT_FILE} records {event_count} events ending in {last_hash}, which is \
                 not in the chain (records were deleted from its end)"
            ),
            K::CheckpointPosition { recorded, found } => write!(
                f,
                "{CHECKPOINT_FILE} records {recorded} events, but its last event is event \
                 #{found} of the chain"
            ),
        }
    }
}

impl std::error::Error for ChainError {}

fn err(file: &str, line: usize, kind: ChainErrorKind) -> ChainError {
    ChainError {
        file: file.to_string(),
        line,
        kind,
    }
}

fn str_field<'a>(
    m: &'a Map<String, Value>,
    name: &'static str,
    file: &str,
    line: usize,
) -> Result<&'a str, ChainError> {
    m.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| err(file, line, ChainErrorKind::BadField(name)))
}

/// Where an event was found.
#[derive(Clone)]
struct Found {
    file: String,
    line: usize,
    index: u64,
    hash: String,
}

/// Verifies the chain in `dir` (spec §13.7): every event's hash recomputes; every
/// `prev_hash` is the previous event's hash (the first is `""`); every rotated-into file
/// starts with a continuation header that continues the running hash and names the previous
/// file; no stray lines; no unterminated last line. Then the anchor (its event exists with the
/// same hash at the recorded position) and the checkpoint (its last event is in the chain).
///
/// `since` skips files dated before it and accepts a non-empty first `prev_hash` (and a
/// leading continuation header). The first problem found is returned.
pub fn verify(dir: &Path, since: Option<NaiveDate>) -> Result<VerifyReport, ChainError> {
    let dir_name = dir.display().to_string();
    if !dir.is_dir() {
        return Err(err(&dir_name, 0, ChainErrorKind::NoAuditDir));
    }
    let io_err = |file: &str, e: io::Error| err(file, 0, ChainErrorKind::Io(e.to_string()));

    // A consistent snapshot while a writer may be appending: under a shared lock (when the
    // lock file exists; verification never creates files), the file list, their sizes, the
    // checkpoint and the anchor. The walk then reads each file only up to its snapshot size.
    let lock = File::open(dir.join(LOCK_FILE)).ok();
    let guard = match &lock {
        Some(f) => Some(FlockGuard::lock_shared(f).map_err(|e| io_err(LOCK_FILE, e))?),
        None => None,
    };
    let mut files = chain_files(dir).map_err(|e| io_err(&dir_name, e))?;
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for f in &files {
        let len = std::fs::metadata(dir.join(f))
            .map_err(|e| io_err(f, e))?
            .len();
        sizes.insert(f.clone(), len);
    }
    let in_range = |name: &str| match (since, parse_chain_file_name(name)) {
        (Some(s), Some((d, _))) => d >= s,
        _ => true,
    };
    files.retain(|f| in_range(f));
    if files.is_empty() {
        return Err(err(&dir_name, 0, ChainErrorKind::NoFiles));
    }

    let anchor = match read_anchor(dir).map_err(|e| io_err(ANCHOR_FILE, e))? {
        None => None,
        Some(Ok(a)) if a.event_id.is_empty() => None,
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => return Err(err(ANCHOR_FILE, 0, ChainErrorKind::BadAnchor(e))),
    };
    let checkpoint = read_checkpoint(dir);
    drop(guard);

    // `None`: any prev_hash is accepted for the next event (start of a --since walk).
    let mut running: Option<String> = if since.is_some() {
        None
    } else {
        Some(String::new())
    };
    let mut count = 0u64;
    let mut anchor_hits: Vec<Found> = Vec::new();
    let mut checkpoint_hit: Option<Found> = None;
    let mut lines_per_file: HashMap<String, usize> = HashMap::new();

    for (fi, name) in files.iter().enumerate() {
        let path = dir.join(name);
        let file = File::open(&path).map_err(|e| io_err(name, e))?;
        let mut reader = BufReader::new(file.take(sizes[name]));
        let mut buf = Vec::new();
        let mut lineno = 0usize;
        let mut saw_header = false;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| io_err(name, e))?;
            if n == 0 {
                break;
            }
            lineno += 1;
            if buf.last() != Some(&b'\n') {
                return Err(err(name, lineno, ChainErrorKind::UnterminatedLine));
            }
            let line = &buf[..buf.len() - 1];
            if line.is_empty() {
                return Err(err(name, lineno, ChainErrorKind::EmptyLine));
            }
            let value: Value = serde_json::from_slice(line)
                .map_err(|e| err(name, lineno, ChainErrorKind::BadJson(e.to_string())))?;
            let Value::Object(obj) = &value else {
                return Err(err(
                    name,
                    lineno,
                    ChainErrorKind::BadJson("not an object".into()),
                ));
            };

            if obj.contains_key("id") {
                if fi > 0 && lineno == 1 {
                    return Err(err(
                        name,
                        lineno,
                        ChainErrorKind::MissingContinuationHeader {
                            prev_file: files[fi - 1].clone(),
                        },
                    ));
                }
                let id = str_field(obj, "id", name, lineno)?;
                let prev = str_field(obj, "prev_hash", name, lineno)?;
                let stored = str_field(obj, "hash", name, lineno)?;
                let computed = compute_hash(&value);
                if computed != stored {
                    return Err(err(
                        name,
                        lineno,
                        ChainErrorKind::HashMismatch {
                            stored: stored.to_string(),
                            computed,
                        },
                    ));
                }
                if let Some(expected) = &running
                    && expected != prev
                {
                    return Err(err(
                        name,
                        lineno,
                        ChainErrorKind::PrevHashMismatch {
                            expected: expected.clone(),
                            found: prev.to_string(),
                        },
                    ));
                }
                count += 1;
                running = Some(stored.to_string());
                let here = || Found {
                    file: name.clone(),
                    line: lineno,
                    index: count,
                    hash: stored.to_string(),
                };
                if let Some(a) = &anchor
                    && a.event_id == id
                {
                    anchor_hits.push(here());
                }
                if let Some(c) = &checkpoint
                    && c.last_hash == stored
                {
                    checkpoint_hit = Some(here());
                }
            } else if obj.contains_key("chain_continue") {
                if lineno != 1 {
                    return Err(err(
                        name,
                        lineno,
                        ChainErrorKind::MisplacedContinuationHeader,
                    ));
                }
                saw_header = true;
                let cc = str_field(obj, "chain_continue", name, lineno)?;
                let pf = str_field(obj, "prev_file", name, lineno)?;
                if fi > 0 && pf != files[fi - 1] {
                    return Err(err(
                        name,
                        lineno,
                        ChainErrorKind::ContinuationPrevFile {
                            expected: files[fi - 1].clone(),
                            found: pf.to_string(),
                            found_exists: dir.join(pf).is_file(),
                        },
                    ));
                }
                match &running {
                    Some(expected) if expected != cc => {
                        return Err(err(
                            name,
                            lineno,
                            ChainErrorKind::ContinuationHash {
                                expected: expected.clone(),
                                found: cc.to_string(),
                            },
                        ));
                    }
                    _ => running = Some(cc.to_string()),
                }
            } else {
                return Err(err(name, lineno, ChainErrorKind::NotAnEvent));
            }
        }
        if fi > 0 && !saw_header && lineno == 0 && fi + 1 < files.len() {
            // An empty file in the middle of the chain.
            return Err(err(
                name,
                1,
                ChainErrorKind::MissingContinuationHeader {
                    prev_file: files[fi - 1].clone(),
                },
            ));
        }
        lines_per_file.insert(name.clone(), lineno);
    }

    // Checkpoint (a hint for the writer, but a deleted tail shows up here).
    let mut checkpoint_checked = false;
    if let Some(c) = &checkpoint {
        let last_file = if c.last_event_file.is_empty() {
            &c.current_file
        } else {
            &c.last_event_file
        };
        let skipped = c.current_file.is_empty()
            || since.is_some_and(|s| parse_chain_file_name(last_file).is_some_and(|(d, _)| d < s));
        if !skipped {
            checkpoint_checked = true;
            for f in [&c.current_file, &c.last_event_file] {
                if !f.is_empty() && parse_chain_file_name(f).is_some() && !dir.join(f).is_file() {
                    return Err(err(f, 0, ChainErrorKind::CheckpointFileMissing));
                }
            }
            if !c.last_hash.is_empty() {
                match &checkpoint_hit {
                    None => {
                        let line = lines_per_file.get(last_file).map_or(0, |n| n + 1);
                        return Err(err(
                            last_file,
                            line,
                            ChainErrorKind::CheckpointHashMissing {
                                last_hash: c.last_hash.clone(),
                                event_count: c.event_count,
                            },
                        ));
                    }
                    Some(hit) if since.is_none() && hit.index != c.event_count => {
                        return Err(err(
                            &hit.file,
                            hit.line,
                            ChainErrorKind::CheckpointPosition {
                                recorded: c.event_count,
                                found: hit.index,
                            },
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
    }

    // Anchor.
    let mut anchor_checked = false;
    if let Some(a) = &anchor {
        let skipped = since.is_some_and(|s| {
            parse_chain_file_name(&a.file).is_some_and(|(d, _)| d < s)
                || a.timestamp
                    .get(..10)
                    .is_some_and(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok_and(|d| d < s))
        });
        if !skipped {
            anchor_checked = true;
            let Some(hit) = anchor_hits.first() else {
                let file = if a.file.is_empty() {
                    ANCHOR_FILE
                } else {
                    &a.file
                };
                return Err(err(
                    file,
                    0,
                    ChainErrorKind::AnchorEventMissing {
                        event_id: a.event_id.clone(),
                    },
                ));
            };
            if let Some(h) = anchor_hits.iter().find(|h| h.hash != a.hash) {
                return Err(err(
                    &h.file,
                    h.line,
                    ChainErrorKind::AnchorHashMismatch {
                        event_id: a.event_id.clone(),
                        anchored: a.hash.clone(),
                        found: h.hash.clone(),
                    },
                ));
            }
            if since.is_none() && hit.index != a.event_count {
                return Err(err(
                    &hit.file,
                    hit.line,
                    ChainErrorKind::AnchorPosition {
                        event_id: a.event_id.clone(),
                        anchored: a.event_count,
                        found: hit.index,
                    },
                ));
            }
        }
    }

    Ok(VerifyReport {
        events: count,
        files: files.len(),
        first_file: files.first().cloned().unwrap_or_default(),
        last_file: files.last().cloned().unwrap_or_default(),
        last_hash: running.unwrap_or_default(),
        anchor_checked,
        checkpoint_checked,
    })
}
