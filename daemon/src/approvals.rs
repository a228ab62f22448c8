//! The approval store, shared by both front doors (HTTP and the preload socket).
//!
//! An `ask` decision creates a pending approval; a human approves or denies it (CLI, API);
//! unanswered ones expire and deny. Approving leaves a one-shot grant for the identical
//! call, valid for 60 s, which the re-sent request (or the request still waiting) consumes.
//! Pending approvals are journaled so they survive a daemon restart.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Most pending approvals at once.
pub const MAX_PENDING: usize = 1000;
/// How long an approval's one-shot grant stays usable after approval.
pub const GRANT_TTL: Duration = Duration::from_secs(60);
/// How long resolved approvals stay visible.
pub const KEEP_RESOLVED: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub tool: String,
    pub command: String,
    pub agent: String,
    pub session: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// SHA-256 over the call; identical re-sends share it.
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// The audit id of the `ask` decision that created it.
    #[serde(default)]
    pub policy_audit_id: String,
    /// Approved with `persist`, and the exact allow rule is in force.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub persisted: bool,
}

/// What a new approval is made from.
#[derive(Clone, Debug)]
pub struct NewApproval {
    pub tool: String,
    pub command: String,
    pub agent: String,
    pub session: String,
    pub message: String,
    pub run_id: Option<String>,
    pub tool_call_id: Option<String>,
    pub fingerprint: String,
    pub policy_audit_id: String,
}

/// A consumed one-shot grant.
#[derive(Clone, Debug)]
pub struct Grant {
    pub approval_id: String,
    pub resolved_by: String,
    pub policy_audit_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    #[error("approval not found")]
    NotFound,
    #[error("approval already resolved; URL cannot be reused")]
    Gone,
    #[error("approval: too many pending requests (limit: {MAX_PENDING})")]
    Full,
    #[error("approval state unavailable: {0}")]
    Journal(String),
}

#[derive(Default)]
struct Inner {
    approvals: HashMap<String, Approval>,
    /// Creation order, oldest first.
    order: Vec<String>,
    grants: HashMap<String, (Grant, DateTime<Utc>)>,
}

pub struct ApprovalStore {
    inner: Mutex<Inner>,
    timeout: Duration,
    journal: Option<PathBuf>,
    changes: watch::Sender<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum JournalEntry {
    Create {
        approval: Box<Approval>,
    },
    Resolve {
        id: String,
        status: Status,
        by: String,
        at: DateTime<Utc>,
    },
}

impl ApprovalStore {
    /// A store whose approvals expire after `timeout`, journaled to `journal` (replayed now).
    pub fn open(timeout: Duration, journal: Option<PathBuf>) -> std::io::Result<ApprovalStore> {
        let mut inner = Inner::default();
        if let Some(path) = &journal {
            replay(path, &mut inner)?;
            compact(path, &inner)?;
        }
        Ok(ApprovalStore {
            inner: Mutex::new(inner),
            timeout,
            journal,
            changes: watch::channel(0).0,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A receiver that changes whenever any approval does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn notify(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    fn write_journal(&self, entry: &JournalEntry) -> Result<(), ApprovalError> {
        let Some(path) = &self.journal else {
            return Ok(());
        };
        let line =
            serde_json::to_string(entry).map_err(|e| ApprovalError::Journal(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| ApprovalError::Journal(e.to_string()))?;
        writeln!(f, "{line}").map_err(|e| ApprovalError::Journal(e.to_string()))?;
        f.sync_data()
            .map_err(|e| ApprovalError::Journal(e.to_string()))
    }

    /// Creates a pending approval, or returns the pending one for the same `tool_call_id`
    /// and identical payload. The flag says whether it was created now.
    pub fn create(
        &self,
        new: NewApproval,
        now: DateTime<Utc>,
    ) -> Result<(Approval, bool), ApprovalError> {
        let mut inner = self.inner.lock().expect("approvals lock");
        if new.tool_call_id.is_some()
            && let Some(existing) = inner.approvals.values().find(|a| {
                a.status == Status::Pending
                    && a.tool_call_id == new.tool_call_id
                    && a.fingerprint == new.fingerprint
            })
        {
            return Ok((existing.clone(), false));
        }
        let pending = inner
            .approvals
            .values()
            .filter(|a| a.status == Status::Pending)
            .count();
        if pending >= MAX_PENDING {
            return Err(ApprovalError::Full);
        }
        let approval = Approval {
            id: ulid::Ulid::generate().to_string(),
            tool: new.tool,
            command: new.command,
            agent: new.agent,
            session: new.session,
            message: new.message,
            run_id: new.run_id,
            tool_call_id: new.tool_call_id,
            fingerprint: new.fingerprint,
            created_at: now,
            expires_at: now + chrono::Duration::from_std(self.timeout).unwrap_or_default(),
            status: Status::Pending,
            resolved_at: None,
            resolved_by: None,
            policy_audit_id: new.policy_audit_id,
            persisted: false,
        };
        self.write_journal(&JournalEntry::Create {
            approval: Box::new(approval.clone()),
        })?;
        inner.order.push(approval.id.clone());
        inner
            .approvals
            .insert(approval.id.clone(), approval.clone());
        drop(inner);
        self.notify();
        Ok((approval, true))
    }

    pub fn get(&self, id: &str) -> Option<Approval> {
        self.inner
            .lock()
            .expect("approvals lock")
            .approvals
            .get(id)
            .cloned()
    }

    /// Pending approvals, oldest first.
    pub fn pending(&self) -> Vec<Approval> {
        let inner = self.inner.lock().expect("approvals lock");
        inner
            .order
            .iter()
            .filter_map(|id| inner.approvals.get(id))
            .filter(|a| a.status == Status::Pending)
            .cloned()
            .collect()
    }

    pub fn pending_count(&self) -> usize {
        let inner = self.inner.lock().expect("approvals lock");
        inner
            .approvals
            .values()
            .filter(|a| a.status == Status::Pending)
            .count()
    }

    /// Approves or denies a pending approval. `before_publish` runs (with the resolved
    /// approval) before anything changes; if it fails (e.g. the audit write), the approval
    /// stays pending.
    pub fn resolve<E>(
        &self,
        id: &str,
        approved: bool,
        by: &str,
        now: DateTime<Utc>,
        before_publish: impl FnOnce(&Approval) -> Result<(), E>,
    ) -> Result<Result<Approval, E>, ApprovalError> {
        let mut inner = self.inner.lock().expect("approvals lock");
        let Some(current) = inner.approvals.get(id) else {
            return Err(ApprovalError::NotFound);
        };
        if current.status != Status::Pending {
            return Err(ApprovalError::Gone);
        }
        if current.expires_at <= now {
            return Err(ApprovalError::Gone);
        }
        let mut resolved = current.clone();
        resolved.status = if approved {
            Status::Approved
        } else {
            Status::Denied
        };
        resolved.resolved_at = Some(now);
        resolved.resolved_by = Some(by.to_string());
        if let Err(e) = before_publish(&resolved) {
            return Ok(Err(e));
        }
        self.write_journal(&JournalEntry::Resolve {
            id: id.to_string(),
            status: resolved.status,
            by: by.to_string(),
            at: now,
        })?;
        if approved {
            let grant = Grant {
                approval_id: resolved.id.clone(),
                resolved_by: by.to_string(),
                policy_audit_id: resolved.policy_audit_id.clone(),
            };
            let until = now + chrono::Duration::from_std(GRANT_TTL).unwrap_or_default();
            inner
                .grants
                .insert(resolved.fingerprint.clone(), (grant, until));
        }
        inner.approvals.insert(id.to_string(), resolved.clone());
        drop(inner);
        self.notify();
        Ok(Ok(resolved))
    }

    /// Notes that an approved approval's exact allow rule was written and loaded.
    pub fn mark_persisted(&self, id: &str) {
        if let Some(a) = self
            .inner
            .lock()
            .expect("approvals lock")
            .approvals
            .get_mut(id)
        {
            a.persisted = true;
        }
    }

    /// Consumes the one-shot grant for an identical call, if one is still valid.
    pub fn take_grant(&self, fingerprint: &str, now: DateTime<Utc>) -> Option<Grant> {
        let mut inner = self.inner.lock().expect("approvals lock");
        match inner.grants.remove(fingerprint) {
            Some((grant, until)) if until > now => Some(grant),
            _ => None,
        }
    }

    /// Expires overdue approvals and forgets old resolved ones; returns the newly expired.
    pub fn expire_due(&self, now: DateTime<Utc>) -> Vec<Approval> {
        let mut inner = self.inner.lock().expect("approvals lock");
        let mut expired = Vec::new();
        for a in inner.approvals.values_mut() {
            if a.status == Status::Pending && a.expires_at <= now {
                a.status = Status::Expired;
                a.resolved_at = Some(now);
                a.resolved_by = Some("timeout".into());
                expired.push(a.clone());
            }
        }
        let keep = chrono::Duration::from_std(KEEP_RESOLVED).unwrap_or_default();
        let stale: Vec<String> = inner
            .approvals
            .values()
            .filter(|a| {
                a.status != Status::Pending && a.resolved_at.is_some_and(|t| t + keep < now)
            })
            .map(|a| a.id.clone())
            .collect();
        for id in &stale {
            inner.approvals.remove(id);
        }
        inner.order.retain(|id| !stale.contains(id));
        inner.grants.retain(|_, (_, until)| *until > now);
        drop(inner);
        for a in &expired {
            let _ = self.write_journal(&JournalEntry::Resolve {
                id: a.id.clone(),
                status: Status::Expired,
                by: "timeout".into(),
                at: now,
            });
        }
        if !expired.is_empty() || !stale.is_empty() {
            self.notify();
        }
        expired
    }

    /// Waits until approval `id` is no longer pending, or `timeout` passes. Returns the
    /// approval as last seen.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Option<Approval> {
        let mut rx = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = self.get(id)?;
            if current.status != Status::Pending {
                return Some(current);
            }
            let remaining = current
                .expires_at
                .signed_duration_since(Utc::now())
                .to_std()
                .unwrap_or_default();
            let until = deadline.min(tokio::time::Instant::now() + remaining);
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return self.get(id),
                Err(_) => {
                    if tokio::time::Instant::now() >= deadline {
                        return self.get(id);
                    }
                    // The approval's own expiry passed; the sweeper (which audits the
                    // expiry) will mark it shortly.
                    let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
                }
            }
        }
    }
}

fn replay(path: &Path, inner: &mut Inner) -> std::io::Result<()> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        // A torn last line (crash mid-write) is skipped, not fatal.
        let Ok(entry) = serde_json::from_str::<JournalEntry>(&line) else {
            continue;
        };
        match entry {
            JournalEntry::Create { approval } => {
                if !inner.approvals.contains_key(&approval.id) {
                    inner.order.push(approval.id.clone());
                }
                inner.approvals.insert(approval.id.clone(), *approval);
            }
            JournalEntry::Resolve { id, status, by, at } => {
                if let Some(a) = inner.approvals.get_mut(&id) {
                    a.status = status;
                    a.resolved_by = Some(by);
                    a.resolved_at = Some(at);
                }
            }
        }
    }
    // Only pending approvals carry over a restart.
    inner.approvals.retain(|_, a| a.status == Status::Pending);
    let approvals = &inner.approvals;
    inner.order.retain(|id| approvals.contains_key(id));
    Ok(())
}

/// Rewrites the journal with just the pending approvals.
fn compact(path: &Path, inner: &Inner) -> std::io::Result<()> {
    let mut text = String::new();
    for id in &inner.order {
        if let Some(a) = inner.approvals.get(id) {
            let entry = JournalEntry::Create {
                approval: Box::new(a.clone()),
            };
            text.push_str(&serde_json::to_string(&entry).map_err(std::io::Error::other)?);
            text.push('\n');
        }
    }
    crate::home::write_private_atomically(path, text.as_bytes(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(id: Option<&str>, fp: &str) -> NewApproval {
        NewApproval {
            tool: "exec".into(),
            command: "deploy".into(),
            agent: "a".into(),
            session: "s".into(),
            message: "m".into(),
            run_id: None,
            tool_call_id: id.map(str::to_string),
            fingerprint: fp.into(),
            policy_audit_id: "audit".into(),
        }
    }

    #[test]
    fn dedup_resolve_grant_and_gone() {
        let store = ApprovalStore::open(Duration::from_secs(60), None).unwrap();
        let now = Utc::now();
        let (a, created) = store.create(new(Some("t1"), "fp"), now).unwrap();
        assert!(created);
        let (b, created) = store.create(new(Some("t1"), "fp"), now).unwrap();
        assert!(!created);
        assert_eq!(a.id, b.id);
        let (c, _) = store.create(new(None, "fp"), now).unwrap();
        assert_ne!(a.id, c.id, "no dedup without tool_call_id");
        let r = store
            .resolve::<()>(&a.id, true, "alice", now, |_| Ok(()))
            .unwrap()
            .unwrap();
        assert_eq!(r.status, Status::Approved);
        assert_eq!(
            store.resolve::<()>(&a.id, false, "bob", now, |_| Ok(())),
            Err(ApprovalError::Gone)
        );
        assert_eq!(
            store.resolve::<()>("nope", true, "x", now, |_| Ok(())),
            Err(ApprovalError::NotFound)
        );
        assert!(store.take_grant("fp", now).is_some());
        assert!(
            store.take_grant("fp", now).is_none(),
            "a grant is consumed once"
        );
    }

    #[test]
    fn failed_audit_keeps_it_pending() {
        let store = ApprovalStore::open(Duration::from_secs(60), None).unwrap();
        let now = Utc::now();
        let (a, _) = store.create(new(None, "fp"), now).unwrap();
        let r = store
            .resolve(&a.id, true, "x", now, |_| Err("disk full"))
            .unwrap();
        assert_eq!(r, Err("disk full"));
        assert_eq!(store.get(&a.id).unwrap().status, Status::Pending);
    }

    #[test]
    fn expiry() {
        let store = ApprovalStore::open(Duration::from_secs(1), None).unwrap();
        let now = Utc::now();
        let (a, _) = store.create(new(None, "fp"), now).unwrap();
        assert!(store.expire_due(now).is_empty());
        let later = now + chrono::Duration::seconds(2);
        assert_eq!(store.expire_due(later).len(), 1);
        assert_eq!(store.get(&a.id).unwrap().status, Status::Expired);
        assert_eq!(
            store.resolve::<()>(&a.id, true, "x", later, |_| Ok(())),
            Err(ApprovalError::Gone)
        );
    }

    #[test]
    fn pending_approvals_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("pending-approvals.jsonl");
        let now = Utc::now();
        let (keep, gone) = {
            let store =
                ApprovalStore::open(Duration::from_secs(60), Some(journal.clone())).unwrap();
            let (keep, _) = store.create(new(None, "a"), now).unwrap();
            let (gone, _) = store.create(new(None, "b"), now).unwrap();
            store
                .resolve::<()>(&gone.id, false, "x", now, |_| Ok(()))
                .unwrap()
                .unwrap();
            (keep, gone)
        };
        let store = ApprovalStore::open(Duration::from_secs(60), Some(journal)).unwrap();
        assert_eq!(store.pending().len(), 1);
        assert_eq!(store.get(&keep.id).unwrap().status, Status::Pending);
        assert!(store.get(&gone.id).is_none());
    }

    #[tokio::test]
    async fn waiting_is_released_by_a_resolution() {
        let store =
            std::sync::Arc::new(ApprovalStore::open(Duration::from_secs(60), None).unwrap());
        let (a, _) = store.create(new(None, "fp"), Utc::now()).unwrap();
        let s2 = store.clone();
        let id = a.id.clone();
        let waiter = tokio::spawn(async move { s2.wait(&id, Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        store
            .resolve::<()>(&a.id, false, "x", Utc::now(), |_| Ok(()))
            .unwrap()
            .unwrap();
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(got.status, Status::Denied);
    }
}
