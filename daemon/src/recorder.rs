//! Writing decisions to the audit trail before they are answered.

use serde_json::{Map, Value};

/// One decision (or approval event) to record.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Reuse this id (approval resolutions reuse the approval's id); new ULID otherwise.
    pub id: Option<String>,
    pub tool: String,
    pub agent: String,
    pub session: String,
    pub run_id: Option<String>,
    pub tool_call_id: Option<String>,
    pub request: Map<String, Value>,
    pub action: String,
    /// Shared with the engine's compiled policies: a deny names every policy in scope.
    pub matched_policies: Vec<std::sync::Arc<str>>,
    pub evaluation_time_us: u64,
    pub message: String,
    pub suggestions: Vec<String>,
    pub flags: Vec<String>,
}

/// The audit trail could not take the record.
#[derive(Debug, thiserror::Error)]
#[error("audit storage is unavailable: {0}")]
pub struct AuditUnavailable(pub String);

pub struct Recorder {
    log: Option<crate::audit::AuditLog>,
    /// Where written events are announced (`/v1/events/stream`), once the server has one.
    stream: std::sync::OnceLock<tokio::sync::broadcast::Sender<String>>,
}

impl Recorder {
    /// Opens (or resumes) the audit trail in `dir` as its only writer: `rampart serve`
    /// holds `$RAMPART_HOME/serve.lock` for its lifetime, so the writer does not re-read the
    /// checkpoint before every append (see [`AuditOptions::exclusive`](crate::audit::AuditOptions)).
    pub fn open(dir: &std::path::Path, sync: crate::audit::AuditSync) -> std::io::Result<Recorder> {
        let opts = crate::audit::AuditOptions {
            exclusive: true,
            sync,
            ..crate::audit::AuditOptions::default()
        };
        Ok(Recorder {
            log: Some(crate::audit::AuditLog::open_with(dir, opts)?),
            stream: std::sync::OnceLock::new(),
        })
    }

    /// A recorder that refuses every record (for tests of the refusal paths).
    pub fn unavailable() -> Recorder {
        Recorder {
            log: None,
            stream: std::sync::OnceLock::new(),
        }
    }

    /// Appends one record and returns its audit id once it is in the chain: written to the
    /// audit file (so a crash of the daemon cannot lose it), and with `--audit-sync always`
    /// also synced, a wait that does not block the runtime. Redaction, hashing and the write
    /// happen on this task.
    pub async fn record(&self, r: Record) -> Result<String, AuditUnavailable> {
        let Some(log) = &self.log else {
            return Err(AuditUnavailable("no audit trail configured".into()));
        };
        self.announce(outcome(log.append_async(event_of(r)).await))
    }

    /// Sends written events to `/v1/events/stream` subscribers from now on.
    pub fn stream_to(&self, events: tokio::sync::broadcast::Sender<String>) {
        let _ = self.stream.set(events);
    }

    /// Announces a written event: `{"type":"audit","event":{...}}`, already redacted, with
    /// the chain fields blanked and no host or schema version (HTTP API spec §11).
    fn announce(
        &self,
        r: Result<crate::audit::Event, AuditUnavailable>,
    ) -> Result<String, AuditUnavailable> {
        let event = r?;
        if let Some(tx) = self.stream.get()
            && tx.receiver_count() > 0
        {
            let mut e = event.clone();
            e.prev_hash.clear();
            e.hash.clear();
            e.host = None;
            e.schema_version.clear();
            if let Ok(v) = serde_json::to_value(&e) {
                let _ = tx.send(serde_json::json!({"type": "audit", "event": v}).to_string());
            }
        }
        Ok(event.id)
    }

    /// [`record`](Self::record) for synchronous code (with `--audit-sync always` it blocks
    /// the calling thread for the sync): the approval resolution, which audits under the
    /// approvals lock.
    pub fn record_blocking(&self, r: Record) -> Result<String, AuditUnavailable> {
        let Some(log) = &self.log else {
            return Err(AuditUnavailable("no audit trail configured".into()));
        };
        self.announce(outcome(log.append(event_of(r))))
    }

    /// `GET /v1/audit/events`.
    pub fn query(
        &self,
        q: &std::collections::HashMap<String, String>,
    ) -> Result<Value, (axum::http::StatusCode, String)> {
        use axum::http::StatusCode;
        let Some(log) = &self.log else {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "audit directory not available".into(),
            ));
        };
        let query = crate::audit::AuditQuery {
            date: q.get("date").cloned(),
            limit: q.get("limit").cloned(),
            offset: q.get("offset").cloned(),
            tool: q.get("tool").cloned(),
            action: q.get("action").cloned(),
            agent: q.get("agent").cloned(),
            session: q.get("session").cloned(),
        };
        match crate::audit::query_events(log.dir(), &query, chrono::Utc::now().date_naive()) {
            Ok(page) => serde_json::to_value(page)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            Err(e) => Err((
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                e.to_string(),
            )),
        }
    }

    /// Syncs every record written so far and writes the checkpoint (at shutdown). Each
    /// record was already written to the file before its caller was answered.
    pub fn flush(&self) {
        if let Some(log) = &self.log {
            if let Err(e) = log.flush() {
                tracing::error!("audit flush failed: {e}");
            }
            tracing::info!(
                records = log.records(),
                syncs = log.syncs(),
                "audit trail flushed"
            );
        }
    }
}

fn event_of(r: Record) -> crate::audit::Event {
    crate::audit::Event {
        id: r.id.unwrap_or_default(),
        agent: r.agent,
        session: r.session,
        run_id: r.run_id.unwrap_or_default(),
        tool_call_id: r.tool_call_id.unwrap_or_default(),
        tool: r.tool,
        request: r.request,
        decision: crate::audit::EventDecision {
            action: r.action,
            matched_policies: r.matched_policies,
            evaluation_time_us: r.evaluation_time_us,
            message: r.message,
            suggestions: r.suggestions,
        },
        response: (!r.flags.is_empty()).then_some(crate::audit::EventResponse {
            exit_code: None,
            duration_ms: 0,
            flags: r.flags,
        }),
        ..crate::audit::Event::default()
    }
}

fn outcome(
    r: std::io::Result<crate::audit::Event>,
) -> Result<crate::audit::Event, AuditUnavailable> {
    match r {
        Ok(written) => Ok(written),
        Err(e) => {
            tracing::error!("audit write failed: {e}");
            Err(AuditUnavailable(e.to_string()))
        }
    }
}
