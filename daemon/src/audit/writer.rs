//! Appending to the chain: [`AuditLog`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use sha2::{Digest, Sha256};

use super::canonical::{to_canonical_string, write_string_body};
use super::event::{
    ContinuationHeader, Event, FieldCompaction, Holes, Host, canonical_with_holes, compute_hash,
    fill_identity_defaults, format_timestamp, plain_canonical, redact_event, sha256_tag,
    sha256_text,
};
use super::{
    ANCHOR_FILE, CHECKPOINT_FILE, LOCK_FILE, chain_file_name, chain_files, parse_chain_file_name,
};
use crate::file_lock::{FlockGuard, flock};

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

/// The longest a written record stays unsynced under [`AuditSync::Interval`] as `rampart
/// serve` runs it.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// When appended records reach stable storage.
///
/// In every mode a record is written to the kernel (its `write(2)` has completed) before
/// `append` returns, so a crash of the writing process cannot lose a record whose caller was
/// answered. The modes differ in what a power loss or kernel crash can lose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditSync {
    /// `append` also waits for an `fdatasync` covering its record. Appends waiting at the
    /// same time share one sync (the flusher thread's group commit).
    Always,
    /// `append` does not wait; the flusher thread syncs at most this long after the first
    /// unsynced write, and when a file is left (rotation), on `flush` and on close. A power
    /// loss can take up to one interval of records with it; the chain stays valid, because
    /// the checkpoint and the anchor only ever name synced records.
    Interval(Duration),
    /// No `fdatasync` at all (tests, throw-away trails). The checkpoint and the anchor are
    /// still kept up to date, every [`DEFAULT_SYNC_INTERVAL`].
    Never,
}

/// Writer settings. The defaults are those of `rampart serve` without `--audit-sync`,
/// except [`exclusive`](Self::exclusive), which serve sets.
#[derive(Clone)]
pub struct AuditOptions {
    /// Start a new `.pN` part when a line would take the file over this many bytes.
    pub rotate_bytes: u64,
    /// When records are synced (and whether the directory is, when a file is created).
    /// Default: [`AuditSync::Interval`] of [`DEFAULT_SYNC_INTERVAL`].
    pub sync: AuditSync,
    /// Records larger than this are compacted (spec §13.2). Default 2 MiB.
    pub max_record_bytes: usize,
    /// Replaces `Utc::now` for timestamps, file dates and anchors.
    pub clock: Option<Clock>,
    /// Replaces the detected host for the `host` default.
    pub host: Option<Host>,
    /// This process is the only writer of the directory for the log's lifetime (as
    /// `rampart serve` is, holding `$RAMPART_HOME/serve.lock`): the writer trusts its own view
    /// of the chain's end instead of re-reading the checkpoint before every append (it still
    /// checks its file's size), writes the checkpoint after each sync pass instead of after
    /// each append, and keeps the directory lock from its first append until the next sync
    /// pass instead of taking it per append (a reader such as `rampart audit verify` waits
    /// for at most one sync interval for its consistent snapshot). Default false: several
    /// writers may share the directory; each takes the lock per append and keeps the
    /// checkpoint current for the others.
    pub exclusive: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            rotate_bytes: DEFAULT_ROTATE_BYTES,
            sync: AuditSync::Interval(DEFAULT_SYNC_INTERVAL),
            max_record_bytes: MAX_RECORD_BYTES,
            clock: None,
            host: None,
            exclusive: false,
        }
    }
}

impl std::fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditOptions")
            .field("rotate_bytes", &self.rotate_bytes)
            .field("sync", &self.sync)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .field("host", &self.host)
            .field("exclusive", &self.exclusive)
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

/// The audit trail writer. Cheap to share (`Send + Sync`).
///
/// An append runs on the caller's thread, with no handoff to another thread:
///
/// - outside any lock, the caller redacts the event, fills its defaults and serializes it
///   once, with holes for `hash`, `prev_hash` and `timestamp` (in parallel across callers);
/// - under the log's mutex and the directory's cross-process `flock` (see
///   [`AuditOptions::exclusive`] for how long it is held), it timestamps and
///   chains the record (a SHA-256: the only serial work besides the system call), rotates
///   when due, and appends the line with one `write(2)`.
///
/// When [`append`](Self::append) returns, the record is in the kernel. Syncing it to the
/// disk is the flusher thread's job, as [`AuditSync`] says; with `Always`, `append` waits
/// for it ([`append_async`](Self::append_async) without blocking a runtime worker). The
/// flusher also writes the checkpoint (a hint) and every 100th event's anchor, after the
/// sync that covers the events they name. An error means the event is not in the chain.
///
/// `open` resumes the chain from the checkpoint (or from the files when the checkpoint is
/// missing or stale); it does not verify the whole chain: `rampart serve` runs
/// [`verify`](super::verify()) first and refuses to start on a broken chain.
pub struct AuditLog {
    dir: PathBuf,
    host: Arc<Host>,
    max_record_bytes: usize,
    sync: AuditSync,
    shared: Arc<Shared>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// What the appenders, `flush` and the flusher thread share.
struct Shared {
    dir: PathBuf,
    exclusive: bool,
    /// `fdatasync` at all (not [`AuditSync::Never`]).
    fsync: bool,
    /// The end of the chain; an append holds it while it writes.
    tail: Mutex<Tail>,
    /// Set by the first write after a sync pass started, so only that write tells the
    /// flusher (one lock and wake-up per interval, not per record).
    armed: AtomicBool,
    durability: Mutex<Durability>,
    /// Wakes the flusher: an `Always` append waits, an interval started, or the log closes.
    wake: Condvar,
    /// Wakes blocking appends after a sync pass.
    synced: Condvar,
    /// Wakes async appends after a sync pass: the highest sequence number synced.
    synced_seq: tokio::sync::watch::Sender<u64>,
    /// Sync passes run one at a time (the flusher's and `flush`'s).
    pass: Mutex<Pass>,
    records: AtomicU64,
    syncs: AtomicU64,
}

/// The end of the chain and the file it grows in.
struct Tail {
    lock: File,
    /// An exclusive writer holds the directory lock (through `lock`) from its first append
    /// after a sync pass until the next pass: two `flock` calls per interval instead of two
    /// per record.
    lock_held: bool,
    chain: Chain,
    /// Sequence number of the last record this log wrote (the first is 1).
    written: u64,
    /// The anchor of a written event, for the next sync pass (spec §13.3).
    anchor: Option<Anchor>,
}

#[derive(Default)]
struct Durability {
    /// Records up to this sequence number went through a sync pass.
    synced: u64,
    /// The highest sequence number an `Always` append waits for.
    wanted: u64,
    /// When the first write since the last pass happened.
    armed_at: Option<Instant>,
    closed: bool,
    /// The flusher thread has ended (closed, or it panicked): nothing will be synced.
    dead: bool,
    /// Sequence numbers whose sync failed (one range, merged when it happens again) and why.
    failed: Option<(u64, u64, String)>,
}

/// A sync pass's own state.
struct Pass {
    /// The checkpoint, kept open by an exclusive writer.
    checkpoint: Option<CheckpointFile>,
    /// What the last pass covered.
    synced: u64,
}

/// A record as its caller prepared it.
#[allow(clippy::large_enum_variant)] // moved once, into the writer; `Raw` is the rare one
enum Prepared {
    /// Serialized once, with holes; small enough that it cannot need compaction (the writer
    /// confirms with the real lengths).
    Ready(Serialized),
    /// Redacted, defaults filled (except a missing timestamp); takes the general path on the
    /// writer: compaction (it may exceed the record limit), then the write → parse fixed point.
    Raw(Box<Event>),
}

/// The caller's serialization of a record.
struct Serialized {
    /// The event as it will be stored, without `prev_hash`, `hash` and (when it is a hole)
    /// `timestamp`.
    event: Event,
    /// Its JCS text with those values empty.
    text: String,
    holes: Holes,
    /// Length of the JCS text before the write → parse fixed point (what compaction
    /// measures); `text.len()` for plain events.
    pre_len: usize,
    /// The event before the fixed point, when that changed it: the general path's input if
    /// the writer finds the record too long after all.
    original: Option<Box<Event>>,
}

fn stopped() -> io::Error {
    io::Error::other("the audit writer has stopped")
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl AuditLog {
    /// Opens (creating with mode 0700 if needed) the audit directory with default options.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<AuditLog> {
        Self::open_with(dir, AuditOptions::default())
    }

    /// Opens the audit directory with explicit options and starts the flusher thread.
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
        let host = Arc::new(opts.host.clone().unwrap_or_else(Host::local));
        let max_record_bytes = opts.max_record_bytes;
        let sync = opts.sync;
        let exclusive = opts.exclusive;
        let mut chain = Chain {
            dir: dir.clone(),
            opts,
            file: None,
            st: ChainState {
                version: 1,
                ..ChainState::default()
            },
            dirty: false,
            spare: Vec::new(),
        };
        {
            let _flock = FlockGuard::lock(&lock)?;
            chain.sync_state()?;
        }
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            exclusive,
            fsync: sync != AuditSync::Never,
            tail: Mutex::new(Tail {
                lock,
                lock_held: false,
                chain,
                written: 0,
                anchor: None,
            }),
            armed: AtomicBool::new(false),
            durability: Mutex::new(Durability::default()),
            wake: Condvar::new(),
            synced: Condvar::new(),
            synced_seq: tokio::sync::watch::Sender::new(0),
            pass: Mutex::new(Pass {
                checkpoint: None,
                synced: 0,
            }),
            records: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        });
        let interval = match sync {
            AuditSync::Interval(d) => d,
            AuditSync::Always | AuditSync::Never => DEFAULT_SYNC_INTERVAL,
        };
        let flusher = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("rampart-audit-sync".into())
                .spawn(move || flush_loop(&shared, interval))?
        };
        Ok(AuditLog {
            dir,
            host,
            max_record_bytes,
            sync,
            shared,
            flusher: Some(flusher),
        })
    }

    /// The audit directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Events in the chain (as of this writer's last append).
    pub fn event_count(&self) -> u64 {
        self.shared.lock_tail().chain.st.event_count
    }

    /// The hash of the chain's last event (`""` when empty).
    pub fn last_hash(&self) -> String {
        self.shared.lock_tail().chain.st.last_hash.clone()
    }

    /// The file the next event goes to unless it rotates (`None` before the first event).
    pub fn current_file(&self) -> Option<String> {
        Some(self.shared.lock_tail().chain.st.current_file.clone()).filter(|f| !f.is_empty())
    }

    /// Appends one event: redaction, defaults, compaction, hash, rotation and the `write`,
    /// then (with [`AuditSync::Always`]) the wait for its `fdatasync`. Returns the event
    /// exactly as stored (id, timestamp, host, `prev_hash` and `hash` filled in). An error
    /// means the event is not in the chain, or (`Always`) not known to be durable.
    ///
    /// Blocks the calling thread for the write (and the sync); async code uses
    /// [`append_async`](Self::append_async).
    pub fn append(&self, event: Event) -> io::Result<Event> {
        let (stored, seq) = self.write(event)?;
        if self.sync == AuditSync::Always {
            self.shared.wait_synced(seq)?;
        }
        Ok(stored)
    }

    /// [`append`](Self::append) for async callers. The record is written when this is called,
    /// on the calling thread (a `write(2)` to a local file, as short as the runtime's own
    /// I/O), not when the future is first polled: dropping the future does not withdraw it.
    /// Only the wait for the sync (`Always`) is asynchronous.
    pub fn append_async(
        &self,
        event: Event,
    ) -> impl Future<Output = io::Result<Event>> + Send + '_ {
        let written = self.write(event);
        async move {
            let (stored, seq) = written?;
            if self.sync == AuditSync::Always {
                self.shared.wait_synced_async(seq).await?;
            }
            Ok(stored)
        }
    }

    /// Syncs everything written so far, then writes the checkpoint and the anchor due (at
    /// shutdown, and for tests). Returns the sync's error, if it failed.
    pub fn flush(&self) -> io::Result<()> {
        self.shared.pass()
    }

    /// `fdatasync`s of the chain so far (each covers every record written before it; under
    /// load with [`AuditSync::Always`], many appends share one).
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Records this writer appended so far.
    pub fn records(&self) -> u64 {
        self.shared.records.load(Ordering::Relaxed)
    }

    /// The caller's share of an append: everything that does not depend on the chain's end
    /// (redaction, defaults, serialization, the size check and the number normalization).
    fn prepare(&self, mut ev: Event) -> Prepared {
        redact_event(&mut ev);
        fill_identity_defaults(&mut ev, &self.host);
        ev.prev_hash.clear();
        ev.hash.clear();
        let timestamp_hole = ev.timestamp.is_empty();
        // The line adds the hash, the previous hash (71 bytes in any chain this writer made)
        // and maybe a 30-byte timestamp. Below this, no compaction step can apply.
        let fits = |len: usize| len + HASH_LEN + HASH_LEN + TIMESTAMP_LEN <= self.max_record_bytes;
        match plain_canonical(&ev, timestamp_hole) {
            Some((text, holes)) if fits(text.len()) => Prepared::Ready(Serialized {
                pre_len: text.len(),
                event: ev,
                text,
                holes,
                original: None,
            }),
            Some(_) => Prepared::Raw(Box::new(ev)),
            None => match normalize(&ev, timestamp_hole) {
                Some(s) if fits(s.pre_len) && fits(s.text.len()) => Prepared::Ready(Serialized {
                    original: Some(Box::new(ev)),
                    ..s
                }),
                _ => Prepared::Raw(Box::new(ev)),
            },
        }
    }

    /// Prepares and writes one record; returns it as stored and its sequence number.
    fn write(&self, event: Event) -> io::Result<(Event, u64)> {
        let prepared = self.prepare(event);
        let written = self.shared.lock_tail().append(prepared);
        let (stored, seq) = written?;
        self.shared.records.fetch_add(1, Ordering::Relaxed);
        if !self.shared.armed.swap(true, Ordering::SeqCst) {
            self.shared.arm();
        }
        Ok((stored, seq))
    }
}

impl Drop for AuditLog {
    /// Lets the flusher run its last pass, then joins it.
    fn drop(&mut self) {
        lock_ignoring_poison(&self.shared.durability).closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
    }
}

/// `"sha256:" + 64 hex digits`.
const HASH_LEN: usize = 71;
/// A line buffer up to this size is kept for the next append.
const MAX_SPARE_BUFFER: usize = 4 << 20;
/// An exclusive writer reopens the checkpoint after this many in-place rewrites.
const CHECKPOINT_REOPEN: u32 = 256;
/// `format_timestamp` of any date in years 1000–9999.
const TIMESTAMP_LEN: usize = 30;

impl Shared {
    fn lock_tail(&self) -> MutexGuard<'_, Tail> {
        match self.tail.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                // A panic in the middle of an append may have left the in-memory end of the
                // chain out of step with the file: re-read it before the next write.
                let mut g = poisoned.into_inner();
                g.chain.dirty = true;
                self.tail.clear_poison();
                g
            }
        }
    }

    /// Starts the interval after the first write since the last pass.
    fn arm(&self) {
        let mut d = lock_ignoring_poison(&self.durability);
        if d.armed_at.is_none() {
            d.armed_at = Some(Instant::now());
            drop(d);
            self.wake.notify_one();
        }
    }

    /// One sync pass: an `fdatasync` covering every record written so far, then (only once
    /// that succeeded, so neither ever names a record a power loss could take) the
    /// checkpoint of an exclusive writer and the anchor due. Waiting appends learn the
    /// outcome. An exclusive writer's directory lock is let go here, so readers get their
    /// turn.
    fn pass(&self) -> io::Result<()> {
        let mut pass = lock_ignoring_poison(&self.pass);
        // Before the snapshot: a write the snapshot misses re-arms the flusher.
        self.armed.store(false, Ordering::SeqCst);
        let (upto, file, st, anchor) = {
            let mut t = self.lock_tail();
            let fresh = t.written > pass.synced;
            (
                t.written,
                t.chain.file.clone(),
                (fresh && self.exclusive).then(|| t.chain.st.clone()),
                t.anchor.take(),
            )
        };
        let from = pass.synced;
        // Only the current file: leaving a file syncs it (`Chain::switch_to`).
        let synced = match &file {
            Some(f) if self.fsync && upto > from => {
                self.syncs.fetch_add(1, Ordering::Relaxed);
                f.sync_data()
            }
            _ => Ok(()),
        };
        let hint = {
            let mut t = self.lock_tail();
            // Under the appenders' lock, so a reader never sees it half rewritten.
            let r = match &st {
                Some(st) if synced.is_ok() && !st.current_file.is_empty() => t
                    .hold_lock()
                    .and_then(|()| pass.write_checkpoint(&self.dir, st)),
                _ => Ok(()),
            };
            t.let_go_of_lock();
            r
        };
        // Replaced by a rename: readers see the old or the new one whole, and the event it
        // names is already written.
        let hint = hint.and_then(|()| match &anchor {
            Some(a) if synced.is_ok() => write_anchor(&self.dir, a, self.fsync),
            _ => Ok(()),
        });
        if let Err(e) = hint {
            tracing::warn!(error = %e, "audit: could not update the checkpoint or anchor");
        }
        pass.synced = upto;
        drop(pass);
        self.publish(from, upto, synced.as_ref().err());
        synced
    }

    fn publish(&self, from: u64, upto: u64, failure: Option<&io::Error>) {
        let mut d = lock_ignoring_poison(&self.durability);
        if let Some(e) = failure {
            tracing::error!(error = %e, "audit: fdatasync failed; records {}..={upto} may not be durable", from + 1);
            d.failed = Some(match d.failed.take() {
                Some((a, b, _)) => (a.min(from + 1), b.max(upto), e.to_string()),
                None => (from + 1, upto, e.to_string()),
            });
        }
        d.synced = d.synced.max(upto);
        drop(d);
        self.synced.notify_all();
        self.synced_seq.send_if_modified(|s| {
            let newer = upto > *s;
            *s = (*s).max(upto);
            newer
        });
    }

    /// Asks the flusher for a sync covering `seq` (unless one already did or is asked for).
    fn want(&self, d: &mut Durability, seq: u64) {
        if d.synced < seq && d.wanted < seq && !d.dead {
            d.wanted = seq;
            self.wake.notify_one();
        }
    }

    /// Blocks until a sync pass covered `seq`.
    fn wait_synced(&self, seq: u64) -> io::Result<()> {
        let mut d = lock_ignoring_poison(&self.durability);
        self.want(&mut d, seq);
        while d.synced < seq && !d.dead {
            d = self.synced.wait(d).unwrap_or_else(PoisonError::into_inner);
        }
        outcome(&d, seq)
    }

    /// [`wait_synced`](Self::wait_synced) without blocking a runtime worker.
    async fn wait_synced_async(&self, seq: u64) -> io::Result<()> {
        let mut rx = self.synced_seq.subscribe();
        self.want(&mut lock_ignoring_poison(&self.durability), seq);
        // The sender lives in `self`: this returns once a pass covered `seq` (or the
        // flusher ended, which publishes `u64::MAX`).
        let _ = rx.wait_for(|s| *s >= seq).await;
        outcome(&lock_ignoring_poison(&self.durability), seq)
    }
}

/// Whether the record with sequence number `seq` is known to be durable.
fn outcome(d: &Durability, seq: u64) -> io::Result<()> {
    if let Some((a, b, e)) = &d.failed
        && (*a..=*b).contains(&seq)
    {
        return Err(io::Error::other(format!("audit fdatasync failed: {e}")));
    }
    if d.synced >= seq {
        Ok(())
    } else {
        Err(stopped())
    }
}

/// The flusher thread: a pass when an `Always` append waits (at once: appends arriving
/// meanwhile share the next pass), when the interval since the first unsynced write is
/// over, and a last one when the log closes.
fn flush_loop(shared: &Shared, interval: Duration) {
    let _dead = DeadOnExit(shared);
    loop {
        let closing = {
            let mut d = lock_ignoring_poison(&shared.durability);
            let closing = loop {
                if d.closed {
                    break true;
                }
                if d.wanted > d.synced {
                    break false;
                }
                match d.armed_at {
                    Some(t) => {
                        let now = Instant::now();
                        if now >= t + interval {
                            break false;
                        }
                        d = shared
                            .wake
                            .wait_timeout(d, t + interval - now)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    None => d = shared.wake.wait(d).unwrap_or_else(PoisonError::into_inner),
                }
            };
            d.armed_at = None;
            closing
        };
        // A failure is logged and reported to the appends waiting for this pass.
        let _ = shared.pass();
        if closing {
            return;
        }
    }
}

/// Marks the flusher gone when its thread ends, even by a panic, and releases the appends
/// still waiting (they fail: nothing will sync their records).
struct DeadOnExit<'a>(&'a Shared);

impl Drop for DeadOnExit<'_> {
    fn drop(&mut self) {
        lock_ignoring_poison(&self.0.durability).dead = true;
        self.0.synced.notify_all();
        self.0.synced_seq.send_replace(u64::MAX);
    }
}

impl Tail {
    /// Writes one record under the directory lock; returns it as stored and its sequence
    /// number.
    fn append(&mut self, prepared: Prepared) -> io::Result<(Event, u64)> {
        let exclusive = self.chain.opts.exclusive;
        let _flock = if exclusive {
            self.hold_lock()?;
            None
        } else {
            Some(FlockGuard::lock(&self.lock)?)
        };
        let appended = self
            .chain
            .catch_up()
            .inspect_err(|_| self.chain.dirty = true)
            .and_then(|()| self.chain.append_one(prepared));
        let (stored, anchor) = match appended {
            Ok(a) => a,
            Err(e) => {
                // No sync pass is due for a failed append: nothing else would let go.
                let_go(&self.lock, &mut self.lock_held);
                return Err(e);
            }
        };
        if !exclusive && let Err(e) = write_checkpoint(&self.chain.dir, &self.chain.st) {
            // Other writers start from it; a stale one only makes them re-read the files.
            tracing::warn!(error = %e, "audit: could not update the chain checkpoint");
        }
        if anchor.is_some() {
            self.anchor = anchor;
        }
        self.written += 1;
        Ok((stored, self.written))
    }

    fn hold_lock(&mut self) -> io::Result<()> {
        if !self.lock_held {
            flock(&self.lock, libc::LOCK_EX)?;
            self.lock_held = true;
        }
        Ok(())
    }

    fn let_go_of_lock(&mut self) {
        let_go(&self.lock, &mut self.lock_held);
    }
}

fn let_go(lock: &File, held: &mut bool) {
    if *held {
        let _ = flock(lock, libc::LOCK_UN);
        *held = false;
    }
}

impl Pass {
    /// The checkpoint, in place, through a kept descriptor reopened every
    /// [`CHECKPOINT_REOPEN`] writes.
    fn write_checkpoint(&mut self, dir: &Path, st: &ChainState) -> io::Result<()> {
        if self
            .checkpoint
            .as_ref()
            .is_none_or(|c| c.writes >= CHECKPOINT_REOPEN)
        {
            self.checkpoint = Some(CheckpointFile::open(dir)?);
        }
        let c = self.checkpoint.as_mut().expect("opened above");
        let r = c.write(st);
        if r.is_err() {
            self.checkpoint = None;
        }
        r
    }
}

/// The end of the chain as the appenders track it.
struct Chain {
    dir: PathBuf,
    opts: AuditOptions,
    /// Open for append on `st.current_file` (shared with a sync pass in progress).
    file: Option<Arc<File>>,
    st: ChainState,
    /// A write failed: re-read the end of the chain from disk before the next append.
    dirty: bool,
    /// The last line buffer, kept for the next one.
    spare: Vec<u8>,
}

/// A record ready to be chained: its line's length is known before its hash.
enum Staged {
    Ready {
        event: Event,
        text: String,
        holes: Holes,
        /// The JCS-escaped previous hash.
        prev: String,
        timestamp: Option<String>,
    },
    Line {
        stored: Event,
        line: String,
    },
}

impl Staged {
    fn line_len(&self) -> usize {
        match self {
            Staged::Ready {
                text,
                prev,
                timestamp,
                ..
            } => text.len() + HASH_LEN + prev.len() + timestamp.as_ref().map_or(0, String::len),
            Staged::Line { line, .. } => line.len(),
        }
    }

    /// Appends the line (and its newline) to `buf`; returns the stored event.
    fn emit(self, prev_hash: &str, buf: &mut Vec<u8>) -> Event {
        match self {
            Staged::Line { stored, line } => {
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
                stored
            }
            Staged::Ready {
                mut event,
                text,
                holes,
                prev,
                timestamp,
            } => {
                let t = text.as_bytes();
                let ts = timestamp.as_deref().unwrap_or("").as_bytes();
                let ts_at = holes.timestamp.unwrap_or(t.len());
                // Spec §13.5: SHA-256(prev_hash || JCS(event with "hash":"")).
                let mut h = Sha256::new();
                h.update(prev_hash.as_bytes());
                h.update(&t[..holes.prev_hash]);
                h.update(prev.as_bytes());
                h.update(&t[holes.prev_hash..ts_at]);
                h.update(ts);
                h.update(&t[ts_at..]);
                let hash = sha256_text(&h.finalize());
                buf.extend_from_slice(&t[..holes.hash]);
                buf.extend_from_slice(hash.as_bytes());
                buf.extend_from_slice(&t[holes.hash..holes.prev_hash]);
                buf.extend_from_slice(prev.as_bytes());
                buf.extend_from_slice(&t[holes.prev_hash..ts_at]);
                buf.extend_from_slice(ts);
                buf.extend_from_slice(&t[ts_at..]);
                buf.push(b'\n');
                event.prev_hash = prev_hash.to_string();
                event.hash = hash;
                if let Some(ts) = timestamp {
                    event.timestamp = ts;
                }
                event
            }
        }
    }
}

impl Chain {
    fn now(&self) -> DateTime<Utc> {
        match &self.opts.clock {
            Some(c) => c(),
            None => Utc::now(),
        }
    }

    /// Before an append, under the lock: make `st` describe the end of the chain on disk. A
    /// shared directory re-reads the checkpoint (another writer may have appended); an
    /// exclusive writer only checks its file's size, unless a failed write left it unsure.
    fn catch_up(&mut self) -> io::Result<()> {
        if self.opts.exclusive
            && !self.dirty
            && let Some(f) = &self.file
            && (&**f).seek(SeekFrom::End(0))? == self.st.current_size
        {
            return Ok(());
        }
        self.sync_state()?;
        self.dirty = false;
        Ok(())
    }

    /// Chains one record and appends its line (after a continuation header when it starts a
    /// file) with one `write`. Returns the stored event and the anchor due, if any. On
    /// failure the file is cut back and the next append re-reads the end of the chain.
    fn append_one(&mut self, prepared: Prepared) -> io::Result<(Event, Option<Anchor>)> {
        let now = self.now();
        let staged = self.stage(prepared, now)?;
        let (target, header_prev) = self.choose_target(now.date_naive(), staged.line_len())?;
        let start_size = match self.switch_to(&target) {
            Ok(s) => s,
            Err(e) => {
                self.dirty = true;
                return Err(e);
            }
        };
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        if let Some(prev_file) = header_prev {
            let header = ContinuationHeader {
                chain_continue: self.st.last_hash.clone(),
                prev_file,
            };
            let hv = serde_json::to_value(&header).expect("a header serializes");
            buf.extend_from_slice(to_canonical_string(&hv).as_bytes());
            buf.push(b'\n');
        }
        let line_start = start_size + buf.len() as u64;
        let line_len = staged.line_len() as u64;
        let stored = staged.emit(&self.st.last_hash, &mut buf);
        let end = start_size + buf.len() as u64;
        let mut file: &File = self.file.as_deref().expect("switch_to opened the file");
        let written = file.write_all(&buf);
        if written.is_err() {
            let _ = file.set_len(start_size);
            self.dirty = true;
        }
        if buf.capacity() <= MAX_SPARE_BUFFER {
            self.spare = buf;
        }
        written?;
        let st = &mut self.st;
        st.version = 1;
        st.current_file = target.clone();
        st.current_size = end;
        st.event_count += 1;
        st.last_hash = stored.hash.clone();
        st.last_event_file = target.clone();
        st.last_event_start = line_start;
        st.last_event_size = line_len + 1;
        let anchor = (st.event_count % ANCHOR_EVERY == 0).then(|| Anchor {
            event_id: stored.id.clone(),
            hash: stored.hash.clone(),
            event_count: st.event_count,
            timestamp: format_timestamp(now),
            file: target,
        });
        Ok((stored, anchor))
    }

    /// The writer's share of one record, now that the previous hash and the time are known.
    fn stage(&self, prepared: Prepared, now: DateTime<Utc>) -> io::Result<Staged> {
        let max = self.opts.max_record_bytes;
        let mut ev = match prepared {
            Prepared::Ready(s) => {
                let mut prev = String::with_capacity(self.st.last_hash.len());
                write_string_body(&self.st.last_hash, &mut prev);
                let timestamp = s.holes.timestamp.map(|_| format_timestamp(now));
                let extra = HASH_LEN + prev.len() + timestamp.as_ref().map_or(0, String::len);
                // What `compact` measures first, and the final line: both must fit.
                if s.pre_len + extra <= max && s.text.len() + extra <= max {
                    return Ok(Staged::Ready {
                        event: s.event,
                        text: s.text,
                        holes: s.holes,
                        prev,
                        timestamp,
                    });
                }
                // Only with an unusually long previous hash: the general path decides.
                match s.original {
                    Some(original) => *original,
                    None => s.event,
                }
            }
            Prepared::Raw(ev) => *ev,
        };
        if ev.timestamp.is_empty() {
            ev.timestamp = format_timestamp(now);
        }
        ev.prev_hash = self.st.last_hash.clone();
        ev.hash = String::new();
        compact(&mut ev, max)?;
        let (stored, line) = finalize(ev)?;
        if line.len() > max {
            return Err(invalid(format!(
                "audit record of {} bytes exceeds the {} byte limit even after compaction",
                line.len(),
                max
            )));
        }
        Ok(Staged::Line { stored, line })
    }

    /// Makes `target` the open file and returns its size. The file being left is synced
    /// first: a sync pass syncs only the current file, and must not leave an earlier file's
    /// records behind a later one's.
    fn switch_to(&mut self, target: &str) -> io::Result<u64> {
        if target == self.st.current_file && self.file.is_some() {
            return Ok(self.st.current_size);
        }
        let sync = self.opts.sync != AuditSync::Never;
        if sync && let Some(old) = &self.file {
            old.sync_data()?;
        }
        let f = open_append(&self.dir.join(target), target != self.st.current_file)?;
        let len = f.metadata()?.len();
        self.file = Some(Arc::new(f));
        if sync {
            sync_dir(&self.dir);
        }
        Ok(len)
    }

    /// Picks the file for the next line and whether it needs a continuation header (the name
    /// of the previous file).
    fn choose_target(
        &self,
        today: NaiveDate,
        line_len: usize,
    ) -> io::Result<(String, Option<String>)> {
        let st = &self.st;
        let line_len = line_len as u64 + 1;
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

    /// Makes `st` describe the end of the chain on disk: unchanged when the checkpoint
    /// still matches this writer's view, adopted when another writer moved it validly,
    /// recovered from the files otherwise.
    fn sync_state(&mut self) -> io::Result<()> {
        let ckpt = read_checkpoint(&self.dir);
        if let (Some(c), Some(f)) = (&ckpt, &self.file)
            && *c == self.st
            && f.metadata()?.len() == c.current_size
        {
            return Ok(());
        }
        if let Some(c) = &ckpt
            && validate_checkpoint(&self.dir, c)?
        {
            self.st = c.clone();
            self.file = Some(Arc::new(open_append(
                &self.dir.join(&c.current_file),
                false,
            )?));
            return Ok(());
        }
        let st = recover(&self.dir, ckpt.as_ref())?;
        self.file = if st.current_file.is_empty() {
            None
        } else {
            Some(Arc::new(open_append(
                &self.dir.join(&st.current_file),
                false,
            )?))
        };
        if !st.current_file.is_empty()
            && let Err(e) = write_checkpoint(&self.dir, &st)
        {
            tracing::warn!(error = %e, "audit: could not write the chain checkpoint");
        }
        self.st = st;
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

/// [`finalize`]'s number normalization without the chain: the write → parse fixed point of
/// `ev` (with `hash`, `prev_hash` and a missing `timestamp` empty: strings survive the round
/// trip, so filling them in later changes nothing else), its stored form and its JCS text
/// with holes. `None` when there is no fixed point or the result does not read back as an
/// event: the general path then reports the error.
fn normalize(ev: &Event, timestamp_hole: bool) -> Option<Serialized> {
    let mut v = ev.to_value();
    let mut text = to_canonical_string(&v);
    let pre_len = text.len();
    let mut stable = false;
    for _ in 0..8 {
        let parsed: Value = serde_json::from_str(&text).ok()?;
        let again = to_canonical_string(&parsed);
        v = parsed;
        if again == text {
            stable = true;
            break;
        }
        text = again;
    }
    if !stable {
        return None;
    }
    let (text, holes) = canonical_with_holes(&v, timestamp_hole)?;
    let event: Event = serde_json::from_value(v).ok()?;
    Some(Serialized {
        event,
        text,
        holes,
        pre_len,
        original: None,
    })
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

/// The checkpoint is padded with spaces to a multiple of this, so rewriting it in place
/// (one `pwrite` at offset 0) practically never needs a truncation.
const CHECKPOINT_BLOCK: usize = 512;

/// The checkpoint's bytes: its JSON padded with spaces to a multiple of [`CHECKPOINT_BLOCK`]
/// (JSON allows the trailing whitespace), ending with a newline.
fn checkpoint_bytes(st: &ChainState) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(st).map_err(io::Error::other)?;
    let padded = (bytes.len() + 1).div_ceil(CHECKPOINT_BLOCK) * CHECKPOINT_BLOCK;
    bytes.resize(padded - 1, b' ');
    bytes.push(b'\n');
    Ok(bytes)
}

/// The checkpoint file, open for rewriting in place, and its current length.
struct CheckpointFile {
    file: File,
    len: u64,
    /// Rewrites through this descriptor (it is reopened now and then, in case the file was
    /// removed or replaced behind the writer's back).
    writes: u32,
}

impl CheckpointFile {
    fn open(dir: &Path) -> io::Result<CheckpointFile> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(CHECKPOINT_FILE))?;
        let meta = file.metadata()?;
        if meta.permissions().mode() & 0o777 != 0o600 {
            // as a fresh file would be (one left by something else keeps its inode)
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(CheckpointFile {
            file,
            len: meta.len(),
            writes: 0,
        })
    }

    fn write(&mut self, st: &ChainState) -> io::Result<()> {
        let bytes = checkpoint_bytes(st)?;
        self.file.write_all_at(&bytes, 0)?;
        let len = bytes.len() as u64;
        if self.len > len {
            self.file.set_len(len)?;
        }
        self.len = len;
        self.writes += 1;
        Ok(())
    }
}

/// Rewrites the checkpoint in place: a hint (the files are the truth), written under the
/// directory lock, without fsync (after every append of a shared directory, after every
/// sync pass of an exclusive writer). A torn or stale checkpoint after a crash fails
/// validation and the chain's end is recovered from the files; in place avoids a temporary
/// file and rename per write (and the discard of the replaced inode).
fn write_checkpoint(dir: &Path, st: &ChainState) -> io::Result<()> {
    CheckpointFile::open(dir)?.write(st)
}

fn write_anchor(dir: &Path, anchor: &Anchor, fsync: bool) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(anchor).map_err(io::Error::other)?;
    bytes.push(b'\n');
    crate::home::write_private_atomically(&dir.join(ANCHOR_FILE), &bytes, fsync)
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

    // --- the caller-side serialization and the group commit ------------------------------

    /// A small deterministic generator (no extra dev-dependency).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn string(&mut self) -> String {
            const PIECES: &[&str] = &[
                "a",
                "Z",
                "0",
                " ",
                "\"",
                "\\",
                "\n",
                "\t",
                "\u{1}",
                "\u{1f}",
                "\u{7f}",
                "é",
                "\u{2028}",
                "😀",
                "\u{fb33}",
                "/",
                "<",
                "&",
                "--token",
                "password=",
                "git",
            ];
            let n = self.below(6);
            (0..n)
                .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
                .collect()
        }
        fn value(&mut self, depth: u32) -> Value {
            match self.below(if depth > 2 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => {
                    let edge = [
                        0i64,
                        -1,
                        1,
                        (1 << 53) - 1,
                        1 << 53,
                        -(1 << 53),
                        i64::MAX,
                        i64::MIN,
                    ];
                    Value::from(edge[self.below(edge.len() as u64) as usize])
                }
                3 => match self.below(4) {
                    0 => Value::from(u64::MAX),
                    1 => Value::from((1u64 << 53) + 1),
                    2 => serde_json::json!(0.25),
                    _ => Value::from(self.below(1_000_000)),
                },
                4 => Value::String(self.string()),
                5 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
                _ => Value::Object(
                    (0..self.below(4))
                        .map(|_| (self.string(), self.value(depth + 1)))
                        .collect(),
                ),
            }
        }
        fn event(&mut self) -> Event {
            let mut e = ev(&self.string());
            e.schema_version = if self.below(2) == 0 {
                crate::audit::SCHEMA_VERSION.into()
            } else {
                String::new()
            };
            e.id = self.string();
            e.agent = self.string();
            e.session = self.string();
            e.tool = self.string();
            e.run_id = self.string();
            e.tool_call_id = self.string();
            e.timestamp = if self.below(2) == 0 {
                self.string()
            } else {
                String::new()
            };
            if self.below(3) == 0 {
                e.host = Some(Arc::new(Host {
                    hostname: self.string(),
                    os: self.string(),
                    arch: self.string(),
                }));
            }
            for _ in 0..self.below(4) {
                let k = self.string();
                let v = self.value(0);
                e.request.insert(k, v);
            }
            if self.below(3) == 0 {
                let k = self.string();
                let v = self.value(1);
                e.approval_owner.insert(k, v);
            }
            e.decision.action = self.string();
            e.decision.evaluation_time_us = match self.below(4) {
                0 => 1 << 53,
                1 => (1 << 53) + 1,
                _ => self.below(100),
            };
            e.decision.message = self.string();
            e.decision.matched_policies =
                (0..self.below(3)).map(|_| self.string().into()).collect();
            e.decision.suggestions = (0..self.below(3)).map(|_| self.string()).collect();
            if self.below(2) == 0 {
                e.response = Some(crate::audit::EventResponse {
                    exit_code: match self.below(4) {
                        0 => None,
                        1 => Some(i64::MIN),
                        _ => Some(self.below(3) as i64 - 1),
                    },
                    duration_ms: self.below(1000),
                    flags: (0..self.below(3)).map(|_| self.string()).collect(),
                });
            }
            e
        }
    }

    /// The fast path (serialize once with holes, fill and hash in the writer) produces
    /// exactly the line and hash of the general path, or declines the event.
    #[test]
    fn plain_serialization_matches_the_general_path() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut plain, mut declined, mut normalized) = (0, 0, 0);
        let prevs = [
            String::new(),
            PLACEHOLDER_HASH.to_string(),
            "odd \"prev\"\n".to_string(),
        ];
        for i in 0..4000 {
            let e = rng.event();
            let prev = &prevs[i % prevs.len()];
            let ts_hole = e.timestamp.is_empty();
            let ts = "2026-02-12T10:00:00.123456789Z";
            // the general path, as the writer always did it
            let mut general = e.clone();
            general.prev_hash = prev.clone();
            if ts_hole {
                general.timestamp = ts.into();
            }
            let mut esc = String::new();
            write_string_body(prev, &mut esc);
            let extra = HASH_LEN + esc.len() + if ts_hole { ts.len() } else { 0 };
            let measured = record_len(&general);
            let general_result = finalize(general.clone());
            let s = match plain_canonical(&e, ts_hole) {
                Some((text, holes)) => {
                    plain += 1;
                    Serialized {
                        pre_len: text.len(),
                        event: e,
                        text,
                        holes,
                        original: None,
                    }
                }
                None => {
                    declined += 1;
                    // declined only for a number the round trip may change
                    fn non_plain(v: &Value) -> bool {
                        match v {
                            Value::Number(n) => {
                                n.is_f64()
                                    || n.as_u64().is_some_and(|u| u > 1 << 53)
                                    || n.as_i64().is_some_and(|i| i < -(1 << 53))
                            }
                            Value::Array(a) => a.iter().any(non_plain),
                            Value::Object(m) => m.values().any(non_plain),
                            _ => false,
                        }
                    }
                    assert!(non_plain(&general.to_value()), "event {i} declined");
                    match normalize(&e, ts_hole) {
                        Some(s) => {
                            normalized += 1;
                            s
                        }
                        None => {
                            assert!(general_result.is_err(), "event {i}");
                            continue;
                        }
                    }
                }
            };
            // what compaction measures, and the line, from the caller's lengths
            assert_eq!(s.pre_len + extra, measured, "event {i}");
            let (stored, line) = general_result.unwrap();
            let staged = Staged::Ready {
                event: s.event,
                text: s.text,
                holes: s.holes,
                prev: esc,
                timestamp: ts_hole.then(|| ts.to_string()),
            };
            let len = staged.line_len();
            let mut buf = Vec::new();
            let fast = staged.emit(prev, &mut buf);
            assert_eq!(buf.pop(), Some(b'\n'));
            assert_eq!(String::from_utf8(buf).unwrap(), line, "event {i}");
            assert_eq!(len, line.len());
            assert_eq!(fast, stored, "event {i}");
            let reparsed: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(compute_hash(&reparsed), fast.hash);
        }
        assert!(normalized > 200, "{normalized} normalized");
        assert!(
            plain > 1000 && declined > 500,
            "{plain} plain, {declined} declined"
        );
    }

    #[test]
    fn floats_and_big_integers_take_the_general_path() {
        for v in [
            serde_json::json!(0.5),
            serde_json::json!(1.0),
            serde_json::json!((1u64 << 53) + 1),
            serde_json::json!(-(1i64 << 53) - 1),
            serde_json::json!([1, {"x": 1e300}]),
        ] {
            let mut e = ev("x");
            e.request.insert("n".into(), v.clone());
            assert!(plain_canonical(&e, true).is_none(), "{v}");
        }
        let mut e = ev("x");
        e.request.insert(
            "n".into(),
            serde_json::json!([1i64 << 53, -(1i64 << 53), 0]),
        );
        assert!(plain_canonical(&e, true).is_some());
    }

    fn test_opts(fsync: bool) -> AuditOptions {
        AuditOptions {
            sync: if fsync {
                AuditSync::Always
            } else {
                AuditSync::Never
            },
            rotate_bytes: 64 * 1024,
            ..AuditOptions::default()
        }
    }

    fn exclusive_interval(interval: Duration) -> AuditOptions {
        AuditOptions {
            sync: AuditSync::Interval(interval),
            exclusive: true,
            ..AuditOptions::default()
        }
    }

    /// Interval mode: an append returns with its line in the file and no sync; the
    /// checkpoint and the anchor wait for the sync pass, which `flush` runs.
    #[test]
    fn interval_appends_are_written_at_once_and_synced_later() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            AuditLog::open_with(dir.path(), exclusive_interval(Duration::from_secs(3600))).unwrap();
        let mut last = None;
        for i in 0..150 {
            let stored = log.append(ev(&format!("i{i}"))).unwrap();
            let file = dir.path().join(log.current_file().unwrap());
            let text = std::fs::read_to_string(file).unwrap();
            assert!(
                text.ends_with('\n') && text.contains(&format!("\"hash\":\"{}\"", stored.hash)),
                "record {i} is in the file when append returns"
            );
            last = Some(stored);
        }
        let last = last.unwrap();
        assert_eq!(log.syncs(), 0, "nothing synced on the append path");
        assert_eq!(
            read_checkpoint(dir.path()),
            None,
            "no checkpoint before a sync"
        );
        assert!(
            !dir.path().join(ANCHOR_FILE).exists(),
            "no anchor before a sync"
        );
        log.flush().unwrap();
        assert_eq!(log.syncs(), 1, "one sync covers all 150 records");
        let ckpt = read_checkpoint(dir.path()).unwrap();
        assert_eq!((ckpt.event_count, ckpt.last_hash), (150, last.hash.clone()));
        let anchor = read_anchor(dir.path()).unwrap().unwrap().unwrap();
        assert_eq!(anchor.event_count, 100);
        // nothing new: no sync
        log.flush().unwrap();
        assert_eq!(log.syncs(), 1);
        let report = crate::audit::verify(dir.path(), None).unwrap();
        assert_eq!((report.events, report.last_hash), (150, last.hash));
    }

    /// An exclusive writer keeps the directory lock between sync passes; a failed append
    /// (no pass due) lets go of it at once, so readers are not shut out.
    #[test]
    fn a_failed_exclusive_append_lets_readers_in() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open_with(
            dir.path(),
            AuditOptions {
                max_record_bytes: 4096,
                ..exclusive_interval(Duration::from_secs(3600))
            },
        )
        .unwrap();
        let mut e = ev("x");
        e.agent = "a".repeat(10_000); // hopeless even after compaction
        assert!(log.append(e).is_err());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let _ = crate::audit::verify(&path, None);
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("verify got the shared lock");
    }

    #[test]
    fn the_flusher_syncs_within_the_interval_and_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            AuditLog::open_with(dir.path(), exclusive_interval(Duration::from_millis(20))).unwrap();
        let first = log.append(ev("one")).unwrap();
        let start = std::time::Instant::now();
        while log.syncs() == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no background sync"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // the pass writes the checkpoint right after its sync
        while read_checkpoint(dir.path()).map(|c| c.last_hash) != Some(first.hash.clone()) {
            assert!(start.elapsed() < Duration::from_secs(30), "no checkpoint");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(log);

        let log =
            AuditLog::open_with(dir.path(), exclusive_interval(Duration::from_secs(3600))).unwrap();
        let second = log.append(ev("two")).unwrap();
        drop(log);
        let ckpt = read_checkpoint(dir.path()).unwrap();
        assert_eq!((ckpt.event_count, ckpt.last_hash), (2, second.hash));
    }

    #[test]
    fn concurrent_appends_are_group_committed() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open_with(dir.path(), test_opts(true)).unwrap());
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|i| log.append(ev(&format!("t{t} i{i}"))).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut stored: Vec<Event> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(log.event_count(), 800);
        assert!(log.syncs() < 800, "{} syncs for 800 records", log.syncs());
        let report = crate::audit::verify(dir.path(), None).unwrap();
        assert_eq!(report.events, 800);
        assert!(report.files > 1, "rotation happened within batches");
        // every caller got its own record back, as stored
        let on_disk = crate::audit::tail(dir.path(), 1000).unwrap();
        stored.sort_by(|a, b| a.hash.cmp(&b.hash));
        let mut sorted = on_disk.clone();
        sorted.sort_by(|a, b| a.hash.cmp(&b.hash));
        assert_eq!(stored, sorted);
        // the chain's timestamps follow the chain's order
        assert!(on_disk.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    }

    #[test]
    fn async_appends_and_cancelled_callers_are_all_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open_with(dir.path(), test_opts(true)).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..200 {
                let log = log.clone();
                set.spawn(async move { log.append_async(ev(&format!("a{i}"))).await });
            }
            while let Some(r) = set.join_next().await {
                let stored = r.unwrap().unwrap();
                assert!(stored.hash.starts_with("sha256:"));
            }
            // a caller that stops waiting does not withdraw its record
            for i in 0..10 {
                let fut = log.append_async(ev(&format!("dropped{i}")));
                let _ = tokio::time::timeout(std::time::Duration::from_nanos(1), fut).await;
            }
        });
        log.flush().unwrap();
        assert_eq!(log.event_count(), 210);
        assert_eq!(crate::audit::verify(dir.path(), None).unwrap().events, 210);
    }

    #[test]
    fn a_failing_record_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(
            AuditLog::open_with(
                dir.path(),
                AuditOptions {
                    max_record_bytes: 4096,
                    ..test_opts(false)
                },
            )
            .unwrap(),
        );
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut ok = 0;
                    for i in 0..40 {
                        let mut e = ev(&format!("t{t} i{i}"));
                        if i % 10 == 3 {
                            e.agent = "a".repeat(10_000); // hopeless even after compaction
                            assert!(log.append(e).is_err());
                        } else {
                            log.append(e).unwrap();
                            ok += 1;
                        }
                    }
                    ok
                })
            })
            .collect();
        let ok: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(ok, 8 * 36);
        assert_eq!(log.event_count(), ok);
        assert_eq!(crate::audit::verify(dir.path(), None).unwrap().events, ok);
    }

    #[test]
    fn exclusive_writer_notices_a_foreign_append() {
        let dir = tempfile::tempdir().unwrap();
        let a = AuditLog::open_with(
            dir.path(),
            AuditOptions {
                exclusive: true,
                ..test_opts(false)
            },
        )
        .unwrap();
        a.append(ev("one")).unwrap();
        {
            let b = AuditLog::open_with(dir.path(), test_opts(false)).unwrap();
            b.append(ev("two")).unwrap();
        }
        let third = a.append(ev("three")).unwrap();
        assert_eq!(a.event_count(), 3);
        let report = crate::audit::verify(dir.path(), None).unwrap();
        assert_eq!((report.events, report.last_hash), (3, third.hash));
    }

    #[test]
    fn checkpoint_is_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        // an older, longer checkpoint file is cut to the new content
        std::fs::write(&path, " ".repeat(3000)).unwrap();
        let st = ChainState {
            version: 1,
            event_count: 7,
            last_hash: PLACEHOLDER_HASH.into(),
            current_file: "2026-02-12.jsonl".into(),
            current_size: 1234,
            last_event_file: "2026-02-12.jsonl".into(),
            last_event_start: 1000,
            last_event_size: 234,
        };
        write_checkpoint(dir.path(), &st).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), CHECKPOINT_BLOCK);
        assert!(text.ends_with('\n'));
        assert_eq!(read_checkpoint(dir.path()), Some(st.clone()));
        let shorter = ChainState {
            event_count: 1,
            ..st
        };
        write_checkpoint(dir.path(), &shorter).unwrap();
        assert_eq!(read_checkpoint(dir.path()), Some(shorter));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    /// A caller-serialized record that turns out too long for the chain's actual previous
    /// hash (never 71 bytes here) takes the general path from its original form: the result
    /// is what the writer always produced.
    #[test]
    fn too_long_after_all_falls_back_to_the_general_path() {
        for float in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let long_prev = format!("sha256:{}", "ab".repeat(400));
            std::fs::write(
                dir.path().join("2026-02-12.jsonl"),
                format!("{{\"hash\":\"{long_prev}\",\"id\":\"x\"}}\n"),
            )
            .unwrap();
            let t = DateTime::parse_from_rfc3339("2026-02-12T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc);
            let host = Host {
                hostname: "h".into(),
                os: "linux".into(),
                arch: "x86_64".into(),
            };
            let max = 4096;
            let log = AuditLog::open_with(
                dir.path(),
                AuditOptions {
                    max_record_bytes: max,
                    clock: Some(Arc::new(move || t)),
                    host: Some(host.clone()),
                    ..test_opts(false)
                },
            )
            .unwrap();
            assert_eq!(log.last_hash(), long_prev);
            let mut e = ev("x");
            e.id = "01JTEST0000000000000000001".into();
            e.decision.message = "m".repeat(3500);
            if float {
                e.request.insert("f".into(), serde_json::json!(0.5));
            }
            // the caller takes it as fitting (for a 71-byte previous hash)
            assert!(matches!(log.prepare(e.clone()), Prepared::Ready(_)));
            let mut expected = e.clone();
            expected.schema_version = crate::audit::SCHEMA_VERSION.into();
            expected.host = Some(Arc::new(host.clone()));
            expected.timestamp = format_timestamp(t);
            expected.prev_hash = long_prev;
            compact(&mut expected, max).unwrap();
            let (expected, line) = finalize(expected).unwrap();
            let stored = log.append(e).unwrap();
            assert_eq!(stored, expected);
            assert_eq!(
                stored.compacted_fields["decision.message"].disposition,
                "truncated"
            );
            assert_eq!(stored.request.contains_key("f"), float);
            let text = std::fs::read_to_string(dir.path().join("2026-02-12.jsonl")).unwrap();
            assert_eq!(text.lines().last().unwrap(), line);
        }
    }
}
