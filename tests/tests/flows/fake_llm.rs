//! A stand-in for an OpenAI-compatible chat completions endpoint (`POST /v1/chat/completions`,
//! OpenAI's request and answer shapes), answering by the patient's reply so one server can play
//! every case of a test: a confident reading, a timeout, a malformed answer, low confidence.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use url::Url;

/// What the model does for a reply containing a phrase.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A well-formed answer: `{"intent", "confidence", "language"}`.
    Label {
        intent: &'static str,
        confidence: f64,
        language: &'static str,
    },
    /// Text that is not the JSON object asked for.
    Malformed,
    /// The well-formed answer, but only after this long (longer than the client's timeout).
    Slow(Duration),
}

#[derive(Clone, Default)]
struct Model {
    script: Arc<Vec<(&'static str, Answer)>>,
    /// Every request body received.
    seen: Arc<Mutex<Vec<Value>>>,
}

pub struct FakeLlm {
    pub base_url: Url,
    seen: Arc<Mutex<Vec<Value>>>,
    stop: aro_http::CancellationToken,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeLlm {
    /// Serves on 127.0.0.1 port 0 until dropped. `script` maps a phrase of the reply (lower
    /// case) to what the model answers; anything else is `unknown` with confidence 0.3.
    pub async fn start(script: Vec<(&'static str, Answer)>) -> Self {
        let model = Model {
            script: Arc::new(script),
            seen: Arc::default(),
        };
        let seen = model.seen.clone();
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(model);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = aro_http::CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await;
        });
        Self {
            base_url: Url::parse(&format!("http://{addr}/v1")).expect("url"),
            seen,
            stop,
        }
    }

    /// The requests received so far whose reply contains `phrase`.
    pub fn requests_about(&self, phrase: &str) -> Vec<Value> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .filter(|r| reply_of(r).contains(phrase))
            .cloned()
            .collect()
    }
}

/// The patient's reply inside the request (the user message is `{"reply": …}` as JSON text).
fn reply_of(request: &Value) -> String {
    request["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .and_then(|u| u["reply"].as_str().map(str::to_lowercase))
        .unwrap_or_default()
}

fn completion(content: String) -> Value {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_900_000_000,
        "model": "fake-classifier",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140},
    })
}

async fn complete(State(model): State<Model>, Json(request): Json<Value>) -> Json<Value> {
    model.seen.lock().expect("seen").push(request.clone());
    let reply = reply_of(&request);
    let answer = model
        .script
        .iter()
        .find(|(phrase, _)| reply.contains(phrase))
        .map(|(_, a)| a.clone());
    let label = |intent: &str, confidence: f64, language: &str| {
        json!({"intent": intent, "confidence": confidence, "language": language}).to_string()
    };
    let content = match answer {
        Some(Answer::Label {
            intent,
            confidence,
            language,
        }) => label(intent, confidence, language),
        Some(Answer::Malformed) => "Sure! The patient will probably come.".to_owned(),
        Some(Answer::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            label("confirm", 0.95, "en")
        }
        None => label("unknown", 0.3, "en"),
    };
    Json(completion(content))
}
