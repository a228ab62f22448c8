//! The decision log, `$VERIFY_LOG_DIR/decisions.jsonl` (HTTP API spec §14.7): one compact JSON
//! line per `/verify` that reached the provider path. The directory is created 0700 and the
//! file 0600, since even masked tool calls say what the agent did.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};

pub const DECISIONS_FILE: &str = "decisions.jsonl";

/// One line of the log. `params`, `task_context` and `lineage` are masked unless the operator
/// opted into `VERIFY_LOG_RAW_PARAMS`.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub timestamp: &'a str,
    pub tool: &'a str,
    pub params: &'a Map<String, Value>,
    pub agent: Option<&'a str>,
    pub session: Option<&'a str>,
    pub task_context: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub lineage: &'a [String],
    /// `allow`/`deny`; `None` when the call failed closed (503).
    pub decision: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub model: &'a str,
    pub latency_ms: f64,
    /// The failure class when the provider call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

pub struct DecisionLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl DecisionLog {
    /// Creates the directory if needed and opens the log for appending.
    pub fn open(dir: &Path) -> io::Result<DecisionLog> {
        create_private_dir(dir)?;
        let path = dir.join(DECISIONS_FILE);
        let file = open_private_append(&path)?;
        Ok(DecisionLog {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Appends one line with a single write, so lines from concurrent requests never
    /// interleave.
    pub fn append(&self, entry: &Entry<'_>) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)
    }
}

/// `mkdir -p` with mode 0700 for the directories it creates (an existing directory's mode is
/// the operator's choice and left alone).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Opens `path` for appending, creating it 0600; an existing file readable by others is
/// narrowed to 0600, because it may have been created by a tool that did not care.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn private_files_and_compact_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let log = DecisionLog::open(&dir).unwrap();
        let params = json!({"command": "ls"}).as_object().unwrap().clone();
        let entry = Entry {
            timestamp: "2026-01-01T00:00:00+00:00",
            tool: "exec",
            params: &params,
            agent: Some("a"),
            session: None,
            task_context: None,
            lineage: &[],
            decision: Some("allow"),
            reason: None,
            model: "m",
            latency_ms: 1.5,
            error: None,
        };
        log.append(&entry).unwrap();
        log.append(&entry).unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"{"timestamp":"2026-01-01T00:00:00+00:00","tool":"exec","params":{"command":"ls"},"agent":"a","session":null,"task_context":null,"decision":"allow","reason":null,"model":"m","latency_ms":1.5}"#
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(log.path()), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
    }

    #[test]
    fn an_open_file_is_narrowed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(DECISIONS_FILE);
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _ = DecisionLog::open(tmp.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
