//! Appending to the chain: [`AuditLog`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::canonical::to_canonical_string;
use super::event::{
    ContinuationHeader, Event, FieldCompaction, Host, compute_hash, fill_defaults,
    format_timestamp, redact_event, sha256_tag,
};
use super::{
    ANCHOR_FILE, CHECKPOINT_FILE, LOCK_FILE, chain_file_name, chain_files, parse_chain_file_name,
};

/// Size rotation threshold: a line that would take the file over 100 MiB starts a new part.
pub const DEFAULT_ROTATE_BYTES: u64 = 100 * 1024 * 1024;
/// Largest record (one line, without its newline) before compaction kicks in (spec §13.2).
pub const MAX_RECORD_BYTES: usize = 2 * 1024 * 1024;
/// Events between two anchors (spec §13.3).
const ANCHOR_EVERY: u64 = 100;
/// Identifiers longer than this many characters are truncated by compaction.
const MAX_IDENTIFIER_CHARS: usize = 4096;
const TRUNCATION_MARKER: &str = "... [truncated]";
const COMPACTED_KEY: &str = "_rampart_compacted";
/// A hash of the final length, used to measure a record before its hash is known.
const PLACEHOLDER_HASH: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The writer's clock (UTC); injectable so tests can cross midnight.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Writer settings. `AuditOptions::default()` is what `rampart serve` uses.
#[derive(Clone)]
pub struct AuditOptions {
    /// Start a new `.pN` part when a line would take the file over this many bytes.
    pub rotate_bytes: u64,
    /// fsync every record (and the directory when a file is created). Default true.
    pub fsync: bool,
    /// Records larger than this are compacted (spec §13.2). Default 2 MiB.
    pub max_record_bytes: usize,
    /// Replaces `Utc::now` for timestamps, file dates and anchors.
    pub clock: Option<Clock>,
    /// Replaces the detected host for the `host` default.
    pub host: Option<Host>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            rotate_bytes: DEFAULT_ROTATE_BYTES,
            fsync: true,
            max_record_bytes: MAX_RECORD_BYTES,
            clock: None,
            host: None,
        }
    }
}

impl std::fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditOptions")
            .field("rotate_bytes", &self.rotate_bytes)
            .field("fsync", &self.fsync)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .field("host", &self.host)
            .finish()
    }
}

/// Where the chain ends: the content of `.audit-chain-state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChainState {
    pub version: u32,
    pub event_count: u64,
    pub last_hash: String,
    pub current_file: String,
    pub current_size: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_event_file: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_event_start: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_event_size: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The anchor file's content (spec §13.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Anchor {
    pub event_id: String,
    pub hash: String,
    pub event_count: u64,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub file: String,
}

/// The audit trail writer. Cheap to share (`Send + Sync`); appends are serialized by an
/// internal mutex and, across processes, by an `flock` on the lock file.
///
/// `open` resumes the chain from the checkpoint (or from the files when the checkpoint is
/// missing or stale); it does not verify the whole chain: `rampart serve` runs
/// [`verify`](super::verify()) first and refuses to start on a broken chain.
pub struct AuditLog {
    dir: PathBuf,
    opts: AuditOptions,
    host: Host,
    lock: File,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Open for append on `st.current_file`.
    file: Option<File>,
    st: ChainState,
}

/// Holds an `flock` until dropped.
pub(crate) struct FlockGuard<'a>(&'a File);

impl<'a> FlockGuard<'a> {
    /// Exclusive (writers).
    pub(crate) fn lock(f: &'a File) -> io::Result<Self> {
        Self::flock(f, libc::LOCK_EX)
    }

    /// Shared (readers taking a consistent snapshot).
    pub(crate) fn lock_shared(f: &'a File) -> io::Result<Self> {
        Self::flock(f, libc::LOCK_SH)
    }

    fn flock(f: &'a File, op: libc::c_int) -> io::Result<Self> {
        loop {
            // SAFETY: flock on a file descriptor that outlives the guard.
            let rc = unsafe { libc::flock(f.as_raw_fd(), op) };
            if rc == 0 {
                return Ok(FlockGuard(f));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for FlockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking cannot violate memory safety.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl AuditLog {
    /// Opens (creating with mode 0700 if needed) the audit directory with default options.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<AuditLog> {
        Self::open_with(dir, AuditOptions::default())
    }

    /// Opens the audit directory with explicit options.
    pub fn open_with(dir: impl AsRef<Path>, opts: AuditOptions) -> io::Result<AuditLog> {
        let dir = dir.as_ref().to_path_buf();
        crate::home::ensure_private_dir(&dir)?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))?;
        let host = opts.host.clone().unwrap_or_else(Host::local);
        let log = AuditLog {
            dir,
            opts,
            host,
            lock,
            inner: Mutex::new(Inner {
                file: None,
                st: ChainState {
                    version: 1,
                    ..ChainState::default()
                },
            }),
        };
        {
            let mut inner = log.lock_inner()?;
            let _flock = FlockGuard::lock(&log.lock)?;
            log.sync_state(&mut inner)?;
        }
        Ok(log)
    }

    /// The audit directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Events in the chain (as of this writer's last look).
    pub fn event_count(&self) -> u64 {
        self.lock_inner().map(|i| i.st.event_count).unwrap_or(0)
    }

    /// The hash of the chain's last event (`""` when empty).
    pub fn last_hash(&self) -> String {
        self.lock_inner()
            .map(|i| i.st.last_hash.clone())
            .unwrap_or_default()
    }

    /// The file the next event goes to unless it rotates (`None` before the first event).
    pub fn current_file(&self) -> Option<String> {
        self.lock_inner()
            .ok()
            .map(|i| i.st.current_file.clone())
            .filter(|f| !f.is_empty())
    }

    fn lock_inner(&self) -> io::Result<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| io::Error::other("audit writer lock poisoned"))
    }

    fn now(&self) -> DateTime<Utc> {
        match &self.opts.clock {
            Some(c) => c(),
            None => Utc::now(),
        }
    }

    /// Appends one event: redaction, defaults, compaction, hash, rotation, write + fsync,
    /// checkpoint and (every 100th event) anchor. Returns the event exactly as stored (id,
    /// timestamp, host, `prev_hash` and `hash` filled in). An error means the event is not
    /// in the chain.
    pub fn append(&self, event: Event) -> io::Result<Event> {
        let mut inner = self.lock_inner()?;
        let _flock = FlockGuard::lock(&self.lock)?;
        self.sync_state(&mut inner)?;

        let now = self.now();
        let mut ev = event;
        redact_event(&mut ev);
        fill_defaults(&mut ev, now, &self.host);
        ev.prev_hash = inner.st.last_hash.clone();
        ev.hash = String::new();
        compact(&mut ev, self.opts.max_record_bytes)?;
        let (stored, line) = finalize(ev)?;
        if line.len() > self.opts.max_record_bytes {
            return Err(invalid(format!(
                "audit record of {} bytes exceeds the {} byte limit even after compaction",
                line.len(),
                self.opts.max_record_bytes
            )));
        }

        let (target, header_prev) = self.choose_target(&inner.st, now.date_naive(), &line)?;
        let switching = target != inner.st.current_file || inner.file.is_none();
        let mut buf = Vec::with_capacity(line.len() + 200);
        if let Some(prev_file) = header_prev {
            let header = ContinuationHeader {
                chain_continue: inner.st.last_hash.clone(),
                prev_file,
            };
            let hv = serde_json::to_value(&header).map_err(io::Error::other)?;
            buf.extend_from_slice(to_canonical_string(&hv).as_bytes());
            buf.push(b'\n');
        }
        let header_len = buf.len() as u64;
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');

        let path = self.dir.join(&target);
        let start_size = if switching {
            let f = if target == inner.st.current_file {
                open_append(&path, false)?
            } else {
                open_append(&path, true)?
            };
            let len = f.metadata()?.len();
            inner.file = Some(f);
            if self.opts.fsync {
                sync_dir(&self.dir);
            }
            len
        } else {
            inner.st.current_size
        };
        let file = inner.file.as_mut().expect("file opened above");
        if let Err(e) = file.write_all(&buf) {
            let _ = file.set_len(start_size);
            return Err(e);
        }
        if self.opts.fsync {
            file.sync_data()?;
        }

        let st = &mut inner.st;
        st.version = 1;
        st.current_file = target.clone();
        st.current_size = start_size + buf.len() as u64;
        st.event_count += 1;
        st.last_hash = stored.hash.clone();
        st.last_event_file = target.clone();
        st.last_event_start = start_size + header_len;
        st.last_event_size = line.len() as u64 + 1;
        if let Err(e) = write_checkpoint(&self.dir, st) {
            tracing::warn!(error = %e, "audit: could not update the chain checkpoint");
        }
        if st.event_count % ANCHOR_EVERY == 0 {
            let anchor = Anchor {
                event_id: stored.id.clone(),
                hash: stored.hash.clone(),
                event_count: st.event_count,
                timestamp: format_timestamp(now),
                file: target,
            };
            if let Err(e) = write_anchor(&self.dir, &anchor) {
                tracing::warn!(error = %e, "audit: could not write the anchor");
            }
        }
        Ok(stored)
    }

    /// Picks the file for the next line and whether it needs a continuation header (the name
    /// of the previous file).
    fn choose_target(
        &self,
        st: &ChainState,
        today: NaiveDate,
        line: &str,
    ) -> io::Result<(String, Option<String>)> {
        let line_len = line.len() as u64 + 1;
        let chained = st.event_count > 0;
        if st.current_file.is_empty() {
            let header = chained.then(|| st.last_event_file.clone());
            return Ok((chain_file_name(today, 0), header));
        }
        let (cur_date, _) = parse_chain_file_name(&st.current_file)
            .ok_or_else(|| invalid(format!("not a chain file: {}", st.current_file)))?;
        if today > cur_date {
            let files = chain_files(&self.dir)?;
            let name = next_part(&files, today);
            return Ok((name, chained.then(|| st.current_file.clone())));
        }
        if st.current_size > 0 && st.current_size + line_len > self.opts.rotate_bytes {
            let files = chain_files(&self.dir)?;
            let name = next_part(&files, cur_date);
            return Ok((name, chained.then(|| st.current_file.clone())));
        }
        if st.current_size == 0 && chained {
            // A rotated-into file that was created but never written: it still needs its
            // header, naming the file before it.
            let files = chain_files(&self.dir)?;
            let prev = files
                .iter()
                .position(|f| *f == st.current_file)
                .and_then(|i| i.checked_sub(1))
                .map(|i| files[i].clone())
                .unwrap_or_else(|| st.last_event_file.clone());
            return Ok((st.current_file.clone(), Some(prev)));
        }
        Ok((st.current_file.clone(), None))
    }

    /// Makes `inner` describe the end of the chain on disk: unchanged when the checkpoint
    /// still matches this writer's view, adopted when another writer moved it validly,
    /// recovered from the files otherwise.
    fn sync_state(&self, inner: &mut Inner) -> io::Result<()> {
        let ckpt = read_checkpoint(&self.dir);
        if let (Some(c), Some(f)) = (&ckpt, &inner.file)
            && *c == inner.st
            && f.metadata()?.len() == c.current_size
        {
            return Ok(());
        }
        if let Some(c) = &ckpt
            && validate_checkpoint(&self.dir, c)?
        {
            inner.st = c.clone();
            inner.file = Some(open_append(&self.dir.join(&c.current_file), false)?);
            return Ok(());
        }
        let st = recover(&self.dir, ckpt.as_ref())?;
        inner.file = if st.current_file.is_empty() {
            None
        } else {
            Some(open_append(&self.dir.join(&st.current_file), false)?)
        };
        if !st.current_file.is_empty()
            && let Err(e) = write_checkpoint(&self.dir, &st)
        {
            tracing::warn!(error = %e, "audit: could not write the chain checkpoint");
        }
        inner.st = st;
        Ok(())
    }
}

/// `date.jsonl` when the day has no file yet, else the part after the day's highest part.
fn next_part(files: &[String], date: NaiveDate) -> String {
    let max = files
        .iter()
        .filter_map(|f| parse_chain_file_name(f))
        .filter(|(d, _)| *d == date)
        .map(|(_, s)| s)
        .max();
    match max {
        None => chain_file_name(date, 0),
        Some(s) => chain_file_name(date, s + 1),
    }
}

fn open_append(path: &Path, create_new: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.append(true).mode(0o600);
    if create_new {
        o.create_new(true);
    } else {
        o.create(true);
    }
    o.open(path)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Serializes the event with numbers normalized to what a reader parses back (IEEE doubles,
/// as `serde_json` reads them), computes the hash and returns the stored event and its line.
fn finalize(ev: Event) -> io::Result<(Event, String)> {
    let mut v = ev.to_value();
    // Reach a fixed point of write → parse, so the verifier's re-serialization of the stored
    // line is byte-identical even where the JSON parser's float rounding differs from the
    // shortest-form printer. Integers and ordinary floats are stable on the first round.
    let mut text = to_canonical_string(&v);
    let mut stable = false;
    for _ in 0..8 {
        let parsed: Value = serde_json::from_str(&text).map_err(io::Error::other)?;
        let again = to_canonical_string(&parsed);
        v = parsed;
        if again == text {
            stable = true;
            break;
        }
        text = again;
    }
    if !stable {
        return Err(invalid(
            "audit record has a number that does not survive a JSON round trip".into(),
        ));
    }
    let hash = compute_hash(&v);
    if let Value::Object(m) = &mut v {
        m.insert("hash".into(), Value::String(hash));
    }
    let line = to_canonical_string(&v);
    let stored: Event = serde_json::from_value(v).map_err(io::Error::other)?;
    Ok((stored, line))
}

// ---------------------------------------------------------------------------------------------
// Compaction (spec §13.2)
// ---------------------------------------------------------------------------------------------

fn record_len(ev: &Event) -> usize {
    let mut e = ev.clone();
    e.hash = PLACEHOLDER_HASH.to_string();
    to_canonical_string(&e.to_value()).len()
}

fn note(ev: &mut Event, field: &str, original: &str, disposition: &str) {
    ev.compacted_fields.insert(
        field.to_string(),
        FieldCompaction {
            original_json_bytes: original.len() as u64,
            sha256: sha256_tag(original.as_bytes()),
            disposition: disposition.to_string(),
        },
    );
}

fn compacted_map(original: &str) -> Map<String, Value> {
    let mut inner = Map::new();
    inner.insert("original_json_bytes".into(), Value::from(original.len()));
    inner.insert(
        "sha256".into(),
        Value::String(sha256_tag(original.as_bytes())),
    );
    let mut m = Map::new();
    m.insert(COMPACTED_KEY.into(), Value::Object(inner));
    m
}

fn replace_request(ev: &mut Event, original: &str) {
    note(ev, "request", original, "replaced");
    ev.request = compacted_map(original);
}

fn truncated_prefix(chars: &[char], n: usize) -> String {
    if n >= chars.len() {
        return chars.iter().collect();
    }
    if n == 0 {
        return String::new();
    }
    let mut s: String = chars[..n].iter().collect();
    s.push_str(TRUNCATION_MARKER);
    s
}

/// Shrinks an oversized record in the order of spec §13.2, re-checking after each step.
fn compact(ev: &mut Event, max: usize) -> io::Result<()> {
    let fits = |e: &Event| record_len(e) <= max;
    if fits(ev) {
        return Ok(());
    }
    let request_json = to_canonical_string(&Value::Object(ev.request.clone()));
    if request_json.len() > max / 2 {
        replace_request(ev, &request_json);
        if fits(ev) {
            return Ok(());
        }
    }
    if !ev.decision.suggestions.is_empty() {
        let orig = to_canonical_string(&serde_json::json!(ev.decision.suggestions));
        note(ev, "decision.suggestions", &orig, "dropped");
        ev.decision.suggestions.clear();
        if fits(ev) {
            return Ok(());
        }
    }
    if !ev.decision.message.is_empty() {
        let orig = to_canonical_string(&Value::String(ev.decision.message.clone()));
        note(ev, "decision.message", &orig, "truncated");
        let chars: Vec<char> = ev.decision.message.chars().collect();
        let (mut lo, mut hi) = (0usize, chars.len());
        let mut best = String::new();
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let mut candidate = ev.clone();
            candidate.decision.message = truncated_prefix(&chars, mid);
            if fits(&candidate) {
                best = candidate.decision.message;
                lo = mid + 1;
            } else if mid == 0 {
                break;
            } else {
                hi = mid - 1;
            }
        }
        ev.decision.message = best;
        if fits(ev) {
            return Ok(());
        }
    }
    if !ev.approval_owner.is_empty() {
        let orig = to_canonical_string(&Value::Object(ev.approval_owner.clone()));
        note(ev, "approval_owner", &orig, "replaced");
        ev.approval_owner = compacted_map(&orig);
        if fits(ev) {
            return Ok(());
        }
    }
    if let Some(r) = ev.response.take() {
        let orig = to_canonical_string(&serde_json::to_value(&r).map_err(io::Error::other)?);
        note(ev, "response", &orig, "dropped");
        if fits(ev) {
            return Ok(());
        }
    }
    if !ev.decision.matched_policies.is_empty() {
        let orig = to_canonical_string(&serde_json::json!(ev.decision.matched_policies));
        note(ev, "decision.matched_policies", &orig, "dropped");
        ev.decision.matched_policies.clear();
        if fits(ev) {
            return Ok(());
        }
    }
    if !ev.compacted_fields.contains_key("request") && !ev.request.is_empty() {
        replace_request(ev, &request_json);
        if fits(ev) {
            return Ok(());
        }
    }
    for name in ["agent", "session", "run_id", "tool_call_id", "tool"] {
        let value = match name {
            "agent" => &mut ev.agent,
            "session" => &mut ev.session,
            "run_id" => &mut ev.run_id,
            "tool_call_id" => &mut ev.tool_call_id,
            _ => &mut ev.tool,
        };
        if value.chars().count() > MAX_IDENTIFIER_CHARS {
            let orig = to_canonical_string(&Value::String(value.clone()));
            let mut short: String = value.chars().take(MAX_IDENTIFIER_CHARS).collect();
            short.push_str(TRUNCATION_MARKER);
            *value = short;
            note(ev, name, &orig, "truncated");
        }
    }
    if fits(ev) {
        return Ok(());
    }
    Err(invalid(format!(
        "audit record exceeds {max} bytes even after compaction"
    )))
}

// ---------------------------------------------------------------------------------------------
// Checkpoint, anchor, recovery
// ---------------------------------------------------------------------------------------------

pub(crate) fn read_checkpoint(dir: &Path) -> Option<ChainState> {
    let text = std::fs::read_to_string(dir.join(CHECKPOINT_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

pub(crate) fn read_anchor(dir: &Path) -> io::Result<Option<Result<Anchor, String>>> {
    match std::fs::read_to_string(dir.join(ANCHOR_FILE)) {
        Ok(text) => Ok(Some(
            serde_json::from_str::<Anchor>(&text).map_err(|e| e.to_string()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` through a temporary file and a rename (mode 0600), without fsync.
fn replace_file(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)
}

fn write_checkpoint(dir: &Path, st: &ChainState) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(st).map_err(io::Error::other)?;
    bytes.push(b'\n');
    replace_file(&dir.join(CHECKPOINT_FILE), &bytes, false)
}

fn write_anchor(dir: &Path, anchor: &Anchor) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(anchor).map_err(io::Error::other)?;
    bytes.push(b'\n');
    replace_file(&dir.join(ANCHOR_FILE), &bytes, true)
}

fn read_range(path: &Path, start: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if f.metadata()?.len() < start + len {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Whether a checkpoint still describes the end of the chain on disk.
fn validate_checkpoint(dir: &Path, c: &ChainState) -> io::Result<bool> {
    if c.version != 1
        || parse_chain_file_name(&c.current_file).is_none()
        || (c.event_count == 0) != c.last_hash.is_empty()
    {
        return Ok(false);
    }
    let files = chain_files(dir)?;
    if files.last() != Some(&c.current_file) {
        return Ok(false);
    }
    let size = match std::fs::metadata(dir.join(&c.current_file)) {
        Ok(m) => m.len(),
        Err(_) => return Ok(false),
    };
    if size != c.current_size {
        return Ok(false);
    }
    if c.event_count == 0 {
        return Ok(c.current_size == 0 && c.last_event_file.is_empty());
    }
    if !files.contains(&c.last_event_file)
        || c.last_event_size == 0
        || c.last_event_size > MAX_RECORD_BYTES as u64 + 1
    {
        return Ok(false);
    }
    let Some(record) = read_range(
        &dir.join(&c.last_event_file),
        c.last_event_start,
        c.last_event_size,
    )?
    else {
        return Ok(false);
    };
    if record.last() != Some(&b'\n') {
        return Ok(false);
    }
    if c.last_event_start > 0 {
        // the record must start a line
        match read_range(&dir.join(&c.last_event_file), c.last_event_start - 1, 1)? {
            Some(b) if b == b"\n" => {}
            _ => return Ok(false),
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(&record) else {
        return Ok(false);
    };
    if v.get("hash").and_then(Value::as_str) != Some(c.last_hash.as_str()) {
        return Ok(false);
    }
    if c.last_event_file == c.current_file {
        return Ok(c.last_event_start + c.last_event_size == c.current_size);
    }
    // The last event is in an earlier file: the current one holds at most its header.
    if c.current_size == 0 {
        return Ok(true);
    }
    if c.current_size > 4096 {
        return Ok(false);
    }
    let text = std::fs::read(dir.join(&c.current_file))?;
    let Some(first) = text.strip_suffix(b"\n") else {
        return Ok(false);
    };
    if first.contains(&b'\n') {
        return Ok(false);
    }
    Ok(serde_json::from_slice::<ContinuationHeader>(first)
        .is_ok_and(|h| h.chain_continue == c.last_hash))
}

/// A file split into lines.
pub(crate) struct Lines {
    pub bytes: Vec<u8>,
    /// `(start, end)` of each line, without its newline.
    pub ranges: Vec<(usize, usize)>,
    /// Whether the file ends with a newline (or is empty).
    pub terminated: bool,
}

impl Lines {
    pub fn read(path: &Path) -> io::Result<Lines> {
        let bytes = std::fs::read(path)?;
        let mut ranges = Vec::new();
        let mut start = 0;
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\n' {
                ranges.push((start, i));
                start = i + 1;
            }
        }
        let terminated = start == bytes.len();
        if !terminated {
            ranges.push((start, bytes.len()));
        }
        Ok(Lines {
            bytes,
            ranges,
            terminated,
        })
    }

    pub fn line(&self, i: usize) -> &[u8] {
        let (s, e) = self.ranges[i];
        &self.bytes[s..e]
    }
}

fn is_header_line(line: &[u8]) -> bool {
    line.starts_with(b"{\"chain_continue\":")
}

/// Rebuilds the chain state from the files: the last event is found by scanning backwards
/// from the newest file; the count comes from the stale checkpoint when its last hash is
/// found there, else from counting the event lines of every file.
fn recover(dir: &Path, hint: Option<&ChainState>) -> io::Result<ChainState> {
    let files = chain_files(dir)?;
    let mut st = ChainState {
        version: 1,
        ..ChainState::default()
    };
    let Some(current) = files.last() else {
        return Ok(st);
    };
    st.current_file = current.clone();
    st.current_size = std::fs::metadata(dir.join(current))?.len();

    // Events after the hint's last event, counted while scanning backwards.
    let hint_needle = hint
        .filter(|h| !h.last_hash.is_empty())
        .map(|h| format!("\"hash\":\"{}\"", h.last_hash));
    let mut after_hint = 0u64;
    let mut hint_found = false;
    let mut found_last = false;
    let mut header_hash: Option<String> = None;

    'files: for name in files.iter().rev() {
        let lines = Lines::read(&dir.join(name))?;
        if !lines.terminated {
            return Err(invalid(format!(
                "cannot resume the audit chain: {name} line {} is unterminated (an interrupted \
                 write or tampering); run `rampart audit verify`",
                lines.ranges.len()
            )));
        }
        for i in (0..lines.ranges.len()).rev() {
            let line = lines.line(i);
            if line.is_empty() {
                continue;
            }
            if is_header_line(line) {
                if !found_last && header_hash.is_none() {
                    header_hash = serde_json::from_slice::<ContinuationHeader>(line)
                        .ok()
                        .map(|h| h.chain_continue);
                }
                continue;
            }
            if !found_last {
                let v: Value = serde_json::from_slice(line).map_err(|e| {
                    invalid(format!(
                        "cannot resume the audit chain: {name} line {} is not valid JSON ({e}); \
                         run `rampart audit verify`",
                        i + 1
                    ))
                })?;
                let hash = v.get("hash").and_then(Value::as_str).unwrap_or("");
                if hash.is_empty() {
                    return Err(invalid(format!(
                        "cannot resume the audit chain: {name} line {} has no hash; run \
                         `rampart audit verify`",
                        i + 1
                    )));
                }
                found_last = true;
                st.last_hash = hash.to_string();
                st.last_event_file = name.clone();
                st.last_event_start = lines.ranges[i].0 as u64;
                st.last_event_size = (lines.ranges[i].1 - lines.ranges[i].0) as u64 + 1;
            }
            if let Some(needle) = &hint_needle {
                let text = String::from_utf8_lossy(line);
                if text.contains(needle.as_str()) {
                    hint_found = true;
                    break 'files;
                }
                after_hint += 1;
            } else {
                break 'files;
            }
        }
    }

    if !found_last {
        // No events at all (or only headers left): continue from a header if there is one.
        st.last_hash = header_hash.unwrap_or_default();
        st.event_count = 0;
        return Ok(st);
    }
    st.event_count = match (hint, hint_found) {
        (Some(h), true) => h.event_count + after_hint,
        _ => count_events(dir, &files)?,
    };
    Ok(st)
}

/// Event lines (non-empty, not continuation headers) across `files`.
fn count_events(dir: &Path, files: &[String]) -> io::Result<u64> {
    let mut n = 0u64;
    for name in files {
        let lines = Lines::read(&dir.join(name))?;
        for i in 0..lines.ranges.len() {
            let line = lines.line(i);
            if !line.is_empty() && !is_header_line(line) {
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventDecision;

    fn ev(cmd: &str) -> Event {
        let mut e = Event {
            agent: "a".into(),
            session: "s".into(),
            tool: "exec".into(),
            decision: EventDecision {
                action: "allow".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        e.request.insert("command".into(), cmd.into());
        e
    }

    #[test]
    fn compaction_order_and_notes() {
        let max = 4096;
        let mut e = ev("x");
        e.decision.suggestions = vec!["s".repeat(100)];
        e.decision.message = "m".repeat(5000);
        e.prev_hash = PLACEHOLDER_HASH.into();
        compact(&mut e, max).unwrap();
        assert!(record_len(&e) <= max);
        assert_eq!(e.request["command"], "x");
        assert!(e.decision.suggestions.is_empty());
        assert!(e.decision.message.ends_with(TRUNCATION_MARKER));
        assert!(
            e.decision.message.len() > 3000,
            "binary search keeps as much as fits"
        );
        assert_eq!(
            e.compacted_fields["decision.suggestions"].disposition,
            "dropped"
        );
        assert_eq!(
            e.compacted_fields["decision.message"].disposition,
            "truncated"
        );
        assert_eq!(
            e.compacted_fields["decision.message"].original_json_bytes,
            5002
        );
        // one more byte of headroom would not fit
        let mut longer = e.clone();
        let keep = e.decision.message.chars().count() - TRUNCATION_MARKER.len() + 1;
        longer.decision.message = format!("{}{TRUNCATION_MARKER}", "m".repeat(keep));
        assert!(record_len(&longer) > max);
    }

    #[test]
    fn big_request_replaced_first() {
        let max = 4096;
        let mut e = ev(&"y".repeat(5000));
        e.decision.message = "kept".into();
        compact(&mut e, max).unwrap();
        let c = &e.request[COMPACTED_KEY];
        assert_eq!(c["original_json_bytes"], 5014);
        assert!(c["sha256"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(e.decision.message, "kept");
        assert_eq!(e.compacted_fields["request"].disposition, "replaced");
    }

    #[test]
    fn identifiers_truncated_last_and_hopeless_records_fail() {
        let mut e = ev("x");
        e.agent = "a".repeat(10_000);
        compact(&mut e, 8000).unwrap();
        assert_eq!(e.agent.chars().count(), 4096 + TRUNCATION_MARKER.len());
        assert_eq!(e.compacted_fields["agent"].disposition, "truncated");
        // request was replaced before identifiers were touched
        assert!(e.request.contains_key(COMPACTED_KEY));

        let mut e = ev("x");
        e.agent = "a".repeat(10_000);
        assert!(compact(&mut e, 1000).is_err());
    }

    #[test]
    fn finalize_is_a_fixed_point() {
        let mut e = ev("x");
        e.request.insert("f".into(), serde_json::json!(0.1));
        e.request
            .insert("g".into(), serde_json::json!(1.2345678901234567e-300));
        e.request.insert("big".into(), serde_json::json!(u64::MAX));
        let (stored, line) = finalize(e).unwrap();
        let reparsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(to_canonical_string(&reparsed), line);
        assert_eq!(compute_hash(&reparsed), stored.hash);
    }
}
