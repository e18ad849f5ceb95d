//! The reply classifier against a fake OpenAI-compatible `/chat/completions` endpoint
//! (chat completion JSON, OpenAI error JSON).

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aro_config::{LlmConfig, Secret};
use aro_integrations::ErrorKind;
use aro_integrations::llm::LlmClient;
use aro_replies::{Intent, Source};
use aro_resilience::Resilient;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use common::{Journal, Received, TestResult};
use serde_json::{Value, json};
use url::Url;

const API_KEY: &str = "sk-llm-test";

#[derive(Debug, Clone)]
enum Reply {
    Content(String),
    Slow(Duration),
    Error { status: u16, code: &'static str },
}

#[derive(Clone, Default)]
struct FakeModel {
    journal: Journal,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

impl FakeModel {
    fn script(&self, replies: &[Reply]) {
        self.replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(replies.iter().cloned());
    }
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-123", "object": "chat.completion", "created": 1_893_456_000,
        "model": "small-model",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                     "message": {"role": "assistant", "content": content, "refusal": null}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140},
    })
}

async fn chat(
    State(fake): State<FakeModel>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    fake.journal.record(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        body: body.to_vec(),
    });
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(format!("Bearer {API_KEY}").as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                  "param": null, "code": "invalid_api_key"}})),
        )
            .into_response();
    }
    let reply = fake
        .replies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front()
        .unwrap_or(Reply::Content(
            r#"{"intent": "confirm", "confidence": 0.95, "language": "en"}"#.to_owned(),
        ));
    match reply {
        Reply::Content(content) => Json(completion(&content)).into_response(),
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            Json(completion(
                r#"{"intent": "confirm", "confidence": 0.95, "language": "en"}"#,
            ))
            .into_response()
        }
        Reply::Error { status, code } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(
                json!({"error": {"message": "Rate limit reached", "type": "requests",
                                  "param": null, "code": code}}),
            ),
        )
            .into_response(),
    }
}

async fn start(
    resilient: Resilient,
    timeout_secs: u64,
) -> Result<(FakeModel, LlmClient), Box<dyn std::error::Error>> {
    let fake = FakeModel::default();
    let url = common::serve(
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(fake.clone()),
    )
    .await?;
    let config = LlmConfig {
        base_url: Url::parse(&format!("{url}v1"))?,
        model: "small-model".to_owned(),
        api_key: Some(Secret::new(API_KEY)),
        timeout_secs,
    };
    Ok((fake, LlmClient::new(&config, common::http()?, resilient)))
}

#[tokio::test]
async fn a_reply_is_classified_from_the_models_json() -> TestResult {
    let (fake, llm) = start(common::fast_resilient(), 5).await?;
    fake.script(&[Reply::Content(
        r#"{"intent": "cancel", "confidence": 0.91, "language": "es"}"#.to_owned(),
    )]);
    let reading = llm
        .classify_reply("no puedo ir el viernes", Some("es"))
        .await?;
    assert_eq!(reading.intent, Intent::Cancel);
    assert!((reading.confidence - 0.91).abs() < 1e-6);
    assert_eq!(reading.source, Source::Llm);
    assert_eq!(reading.language, "es");

    let requests = fake.journal.all();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    let sent: Value = serde_json::from_slice(&requests[0].body)?;
    assert_eq!(sent["model"], "small-model");
    assert_eq!(sent["temperature"], 0.1);
    assert_eq!(sent["response_format"], json!({"type": "json_object"}));
    assert_eq!(sent["messages"][0]["role"], "system");
    let prompt = sent["messages"][0]["content"].as_str().unwrap_or("");
    assert!(prompt.contains("\"intent\"") && prompt.contains("\"confidence\""));
    assert!(prompt.contains("never give medical or any other advice"));
    // The reply travels as data inside a JSON value, not spliced into the instructions.
    assert!(!prompt.contains("viernes"));
    let user: Value = serde_json::from_str(sent["messages"][1]["content"].as_str().unwrap_or(""))?;
    assert_eq!(user["reply"], "no puedo ir el viernes");
    assert_eq!(user["languageHint"], "es");
    Ok(())
}

#[tokio::test]
async fn low_confidence_is_passed_through_for_the_caller_to_judge() -> TestResult {
    let (fake, llm) = start(common::fast_resilient(), 5).await?;
    fake.script(&[Reply::Content(
        r#"{"intent": "question", "confidence": 0.2, "language": "en"}"#.to_owned(),
    )]);
    let reading = llm.classify_reply("hmm maybe?", None).await?;
    assert_eq!(reading.intent, Intent::Question);
    assert!((reading.confidence - 0.2).abs() < 1e-6);
    assert!(!reading.is_confident(0.7));
    Ok(())
}

#[tokio::test]
async fn the_models_extra_words_never_leave_the_client() -> TestResult {
    let (fake, llm) = start(common::fast_resilient(), 5).await?;
    fake.script(&[Reply::Content(
        r#"{"intent": "question", "confidence": 0.8, "language": "en",
            "advice": "double your dose"}"#
            .to_owned(),
    )]);
    let reading = llm.classify_reply("should I take more?", None).await?;
    let shown = serde_json::to_string(&reading)?;
    assert!(!shown.contains("dose"), "{shown}");
    assert_eq!(reading.intent, Intent::Question);
    Ok(())
}

#[tokio::test]
async fn malformed_answers_are_permanent_and_not_retried() -> TestResult {
    for content in [
        "The patient is confirming.",
        r#"{"intent": "book_surgery", "confidence": 0.9, "language": "en"}"#,
        r#"{"intent": "confirm", "confidence": 7, "language": "en"}"#,
        r#"{"intent": "confirm"}"#,
    ] {
        let (fake, llm) = start(common::fast_resilient(), 5).await?;
        fake.script(&[Reply::Content(content.to_owned())]);
        let error = llm
            .classify_reply("C", None)
            .await
            .err()
            .ok_or("expected an error")?;
        assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{content}");
        assert!(!error.is_retryable());
        assert!(!error.message().contains("surgery"));
        assert_eq!(fake.journal.all().len(), 1, "{content}");
    }
    Ok(())
}

#[tokio::test]
async fn a_slow_model_times_out_as_a_retryable_error() -> TestResult {
    let (fake, llm) = start(common::resilient_with(1, Duration::from_secs(30)), 1).await?;
    fake.script(&[Reply::Slow(Duration::from_secs(4))]);
    let error = llm
        .classify_reply("C", None)
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.is_retryable());
    assert!(
        !error.maybe_delivered(),
        "classification has no side effect"
    );
    assert_eq!(fake.journal.all().len(), 1);
    Ok(())
}

#[tokio::test]
async fn throttling_is_retried_but_an_exhausted_quota_is_not() -> TestResult {
    let (fake, llm) = start(common::fast_resilient(), 5).await?;
    fake.script(&[Reply::Error {
        status: 429,
        code: "rate_limit_exceeded",
    }]);
    llm.classify_reply("C", None).await?;
    assert_eq!(fake.journal.all().len(), 2);

    let (fake, llm) = start(common::fast_resilient(), 5).await?;
    fake.script(&[Reply::Error {
        status: 429,
        code: "insufficient_quota",
    }]);
    let error = llm
        .classify_reply("C", None)
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert_eq!(error.provider_code(), Some("insufficient_quota"));
    assert_eq!(fake.journal.all().len(), 1);
    Ok(())
}

#[tokio::test]
async fn model_outages_are_retried() -> TestResult {
    let (fake, llm) = start(common::fast_resilient(), 5).await?;
    fake.script(&[Reply::Error {
        status: 503,
        code: "server_error",
    }]);
    llm.classify_reply("C", None).await?;
    assert_eq!(fake.journal.all().len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_rejected_api_key_is_permanent() -> TestResult {
    let fake = FakeModel::default();
    let url = common::serve(
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(fake.clone()),
    )
    .await?;
    let config = LlmConfig {
        base_url: Url::parse(&format!("{url}v1/"))?,
        model: "small-model".to_owned(),
        api_key: Some(Secret::new("sk-wrong")),
        timeout_secs: 5,
    };
    let error = LlmClient::new(&config, common::http()?, common::fast_resilient())
        .classify_reply("C", None)
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::CredentialRejected);
    assert!(!error.to_string().contains("sk-wrong"));
    assert_eq!(fake.journal.all().len(), 1);
    Ok(())
}
