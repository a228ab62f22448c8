//! A stand-in model provider on 127.0.0.1, speaking each real wire format (OpenAI
//! `/v1/chat/completions`, Anthropic `/v1/messages`, Ollama `/api/chat` and `/api/generate`)
//! and answering whatever the test scripts: a model answer, an HTTP error, garbage, an
//! oversized body, or nothing at all. It records every request it receives.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What the stand-in does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this model answer, in the wire format of the path asked.
    Answer(String),
    /// This status with a provider-style JSON error, and a `Retry-After` header when given.
    Status(u16, Option<&'static str>),
    /// This status and body, verbatim.
    Raw(u16, String),
    /// A 200 whose body is larger than any answer should be.
    Huge,
    /// Never answers.
    Hang,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body exactly as sent.
    pub raw: String,
    pub json: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The user prompt, whatever the wire format.
    pub fn user_prompt(&self) -> String {
        let j = &self.json;
        let from_messages = j["messages"].as_array().and_then(|m| {
            m.iter()
                .find(|x| x["role"] == "user")
                .and_then(|x| x["content"].as_str())
        });
        from_messages
            .or_else(|| j["prompt"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

type Responder = dyn Fn(&Received, usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    responder: Arc<Responder>,
}

pub struct StandIn {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    shared: Shared,
}

impl StandIn {
    /// Answers with `responder(request, index)` unless a scripted reply is queued.
    pub async fn start(
        responder: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static,
    ) -> StandIn {
        let shared = Shared {
            received: Arc::default(),
            script: Arc::default(),
            responder: Arc::new(responder),
        };
        let state = shared.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { handle(state, uri, headers, body).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn { url, shared }
    }

    /// Always answers `text` (unless a reply is queued).
    pub async fn answering(text: &str) -> StandIn {
        let text = text.to_string();
        StandIn::start(move |_, _| Reply::Answer(text.clone())).await
    }

    /// Queues the replies for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    pub fn last(&self) -> Received {
        self.received()
            .pop()
            .expect("the stand-in received a request")
    }
}

async fn handle(state: Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let raw = String::from_utf8_lossy(&body).into_owned();
    let received = Received {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        json: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    };
    let index = {
        let mut all = state.received.lock().unwrap();
        all.push(received.clone());
        all.len() - 1
    };
    let scripted = state.script.lock().unwrap().pop_front();
    let reply = scripted.unwrap_or_else(|| (state.responder)(&received, index));
    match reply {
        Reply::Answer(text) => match wire_answer(&received.path, &received.json, &text) {
            Some(body) => axum::Json(body).into_response(),
            None => (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
        },
        Reply::Status(code, retry_after) => {
            let status = StatusCode::from_u16(code).unwrap();
            let body = json!({"error": {"type": "stand_in", "message": format!("HTTP {code}")}});
            let mut resp = (status, axum::Json(body)).into_response();
            if let Some(ra) = retry_after {
                resp.headers_mut()
                    .insert("retry-after", ra.parse().unwrap());
            }
            resp
        }
        Reply::Raw(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
        Reply::Huge => {
            let text = "A".repeat(300 << 10);
            axum::Json(wire_answer(&received.path, &received.json, &text)).into_response()
        }
        Reply::Hang => std::future::pending().await,
    }
}

/// `text` as the provider of `path` would send it.
fn wire_answer(path: &str, request: &Value, text: &str) -> Option<Value> {
    let model = request["model"].clone();
    Some(match path {
        "/v1/chat/completions" => json!({
            "id": "chatcmpl-standin", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }),
        "/v1/messages" => json!({
            "id": "msg_standin", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1},
        }),
        "/api/chat" => json!({
            "model": model, "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": text}, "done": true,
        }),
        "/api/generate" => json!({
            "model": model, "created_at": "2026-01-01T00:00:00Z", "response": text,
            "done": true,
        }),
        _ => return None,
    })
}
