//! The real `rampart-verify` binary, started on an ephemeral port with a clean environment
//! (a developer's real API keys must never leak into a test) and its own log directory.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

use super::standin::StandIn;

pub const BIN: &str = env!("CARGO_BIN_EXE_rampart-verify");

pub struct Sidecar {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub log_dir: PathBuf,
    child: Child,
    stderr: Arc<Mutex<String>>,
    _tmp: tempfile::TempDir,
}

/// The environment that points the sidecar at `standin` speaking `provider`'s format.
pub fn provider_env(provider: &str, standin: &StandIn) -> Vec<(String, String)> {
    let pairs: Vec<(&str, String)> = match provider {
        "openai" => vec![
            ("VERIFY_MODEL", "gpt-4o-mini".into()),
            ("OPENAI_API_KEY", "test-openai-key".into()),
            ("OPENAI_BASE_URL", format!("{}/v1", standin.url)),
        ],
        "anthropic" => vec![
            ("VERIFY_MODEL", "claude-3-haiku-20240307".into()),
            ("ANTHROPIC_API_KEY", "test-anthropic-key".into()),
            ("ANTHROPIC_BASE_URL", standin.url.clone()),
        ],
        "ollama" => vec![
            ("VERIFY_MODEL", "qwen2.5-coder:1.5b".into()),
            ("OLLAMA_URL", standin.url.clone()),
        ],
        "ollama-generate" => vec![
            ("VERIFY_MODEL", "qwen2.5-coder:1.5b".into()),
            ("OLLAMA_URL", standin.url.clone()),
            ("VERIFY_OLLAMA_API", "generate".into()),
        ],
        other => panic!("unknown provider {other}"),
    };
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

impl Sidecar {
    /// Starts the sidecar for `provider` against `standin`, plus `extra` variables.
    pub fn for_provider(provider: &str, standin: &StandIn, extra: &[(&str, &str)]) -> Sidecar {
        let mut env = provider_env(provider, standin);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Sidecar::start(&env, &[])
    }

    /// Starts the binary with only `env` (plus PATH, HOME and a private VERIFY_LOG_DIR) and
    /// waits for its ready line.
    pub fn start(env: &[(String, String)], args: &[&str]) -> Sidecar {
        let tmp = tempfile::tempdir().unwrap();
        let log_dir = tmp.path().join("verify-logs");
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", tmp.path())
            .env("VERIFY_PORT", "0")
            .env("VERIFY_LOG_DIR", &log_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("rampart-verify starts");

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("rampart-verify ready: ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rampart-verify did not become ready; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Sidecar {
            url,
            log_dir,
            child,
            stderr,
            _tmp: tmp,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn decisions_raw(&self) -> String {
        std::fs::read_to_string(self.log_dir.join("decisions.jsonl")).unwrap_or_default()
    }

    pub fn decisions(&self) -> Vec<Value> {
        self.decisions_raw()
            .lines()
            .map(|l| serde_json::from_str(l).expect("decision log lines are JSON"))
            .collect()
    }

    pub fn text_log(&self) -> String {
        std::fs::read_to_string(self.log_dir.join("verify.log")).unwrap_or_default()
    }

    /// POSTs a JSON body to `/verify`.
    pub async fn verify(&self, body: &Value) -> (u16, Value) {
        let resp = client()
            .post(format!("{}/verify", self.url))
            .json(body)
            .send()
            .await
            .expect("the sidecar answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POSTs an exec call for `command` and returns the status and answer.
    pub async fn verify_command(&self, command: &str) -> (u16, Value) {
        self.verify(&serde_json::json!({"tool": "exec", "params": {"command": command}}))
            .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the sidecar answers")
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}
