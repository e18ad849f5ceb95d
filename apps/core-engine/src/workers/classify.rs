//! Reply classification for tenants whose LLM runs in core-engine (the "centralized" residency
//! of ADR-0006; the executor never takes these). Below the rules' confidence threshold the
//! engine queues a `classification.classify_reply` execution; this worker claims those of
//! core-engine tenants, asks the configured OpenAI-compatible model, and reports the result —
//! or, without a model or when it fails, a permanent failure, which sends the reply to staff.

use crate::AppState;
use aro_integrations::llm::LlmClient;
use aro_workflow::executions::{ExecutionResult, ResultError, ResultStatus};
use chrono::Duration;
use serde_json::Value;
use std::time::Duration as StdDuration;

const POLL: StdDuration = StdDuration::from_millis(500);
const OWNER: &str = "core-engine:classifier";

pub struct Classifier {
    llm: Option<LlmClient>,
    /// How long one classification may take, retries included: the lease of each claim.
    lease: Duration,
}

impl Classifier {
    pub fn from_config(config: &aro_config::Config) -> Self {
        let llm = config.classifier.llm.as_ref().and_then(|llm| {
            let http = aro_integrations::http_client().ok()?;
            Some(LlmClient::new(
                llm,
                http,
                aro_resilience::Resilient::default(),
            ))
        });
        // One reply per claim, leased for the model's timeout over every attempt the
        // resilience layer may make, so a slow model never outlives its lease (and its answer
        // is then refused as LEASE_LOST while another replica redoes the work).
        let timeout = config
            .classifier
            .llm
            .as_ref()
            .map_or(0, |llm| i64::try_from(llm.timeout_secs).unwrap_or(60));
        let lease = Duration::seconds((timeout * 4 + 10).max(30));
        Self { llm, lease }
    }

    /// Classifies what is waiting; returns how many were handled.
    pub async fn run_once(&self, state: &AppState) -> usize {
        let claimed = match state
            .engine
            .claim_core_classifications(OWNER, 1, self.lease)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claiming classifications failed");
                return 0;
            }
        };
        let n = claimed.len();
        for execution in claimed {
            let text = execution
                .payload
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let hint = execution
                .payload
                .get("languageHint")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let result = match &self.llm {
                None => failed(
                    "LLM_NOT_CONFIGURED",
                    "no [classifier.llm] is configured for core-engine",
                ),
                Some(llm) => match llm.classify_reply(&text, hint.as_deref()).await {
                    Ok(c) => ExecutionResult {
                        status: ResultStatus::Succeeded,
                        retryable: false,
                        error: None,
                        provider_ref: None,
                        output: serde_json::to_value(&c).ok(),
                        retry_after_seconds: None,
                    },
                    Err(e) => {
                        tracing::warn!(execution = %execution.execution_id, code = e.code(), "LLM classification failed");
                        failed(e.code(), "the model did not give a usable answer")
                    }
                },
            };
            // With the claim's lease: another core replica that took this execution after our
            // lease lapsed (a slow model) keeps it, and ours is refused with LEASE_LOST.
            if let Err(e) = state
                .engine
                .record_lease_result(&execution.execution_id, &execution.lease_id, result, None)
                .await
            {
                tracing::warn!(execution = %execution.execution_id, error = %e, "recording a classification failed");
            }
        }
        if n > 0 {
            state.events_appended.notify_waiters();
        }
        n
    }

    pub async fn run(self, state: AppState) {
        loop {
            if self.run_once(&state).await > 0 {
                continue;
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// A failure the engine does not retry: the reply goes to staff.
fn failed(code: &str, message: &str) -> ExecutionResult {
    ExecutionResult {
        status: ResultStatus::Failed,
        retryable: false,
        error: Some(ResultError {
            code: code.to_owned(),
            message: message.to_owned(),
        }),
        provider_ref: None,
        output: None,
        retry_after_seconds: None,
    }
}
