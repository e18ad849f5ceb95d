//! Webhooks from the sandbox to core, signed as each provider signs them: Twilio over the URL
//! and the form parameters with the auth token of the account the webhook is about, Stripe and
//! Calendly over a fresh timestamp and the raw body (so a retry carries a new timestamp, as the
//! providers' own retries do) with the secret of the account whose object it is about. A failed delivery is
//! logged — with the provider, kind and status, never a body — and never takes the sandbox down.

use crate::faults::Provider;
use crate::state::Sandbox;
use aro_security::signatures;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use std::time::Duration;

/// How a webhook body is encoded and signed.
#[derive(Clone)]
pub(crate) enum Payload {
    /// Twilio: form-encoded parameters (signed with the token of their `AccountSid`).
    TwilioForm(Vec<(String, String)>),
    /// Stripe: a JSON event, signed with the webhook secret of the account it is about.
    StripeJson {
        body: Vec<u8>,
        secret: aro_config::Secret,
    },
    /// Calendly: a JSON webhook payload, signed with the signing key of the account it is about.
    CalendlyJson {
        body: Vec<u8>,
        secret: aro_config::Secret,
    },
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies carry patient data and the secrets are secrets: neither is shown.
        f.write_str(match self {
            Self::TwilioForm(_) => "TwilioForm",
            Self::StripeJson { .. } => "StripeJson",
            Self::CalendlyJson { .. } => "CalendlyJson",
        })
    }
}

/// One webhook to post.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    /// What it is, for logs (e.g. `invitee.created`, `status_callback`).
    pub kind: &'static str,
    pub url: String,
    pub payload: Payload,
}

impl Webhook {
    fn provider(&self) -> Provider {
        match self.payload {
            Payload::TwilioForm(_) => Provider::Twilio,
            Payload::StripeJson { .. } => Provider::Stripe,
            Payload::CalendlyJson { .. } => Provider::Calendly,
        }
    }
}

/// Core's answer to one post.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// The largest answer body kept (it is only shown back to a tester).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

impl Sandbox {
    /// Posts once; `Err` is a transport failure (no answer).
    #[tracing::instrument(skip_all, fields(provider = hook.provider().as_str(), kind = hook.kind))]
    pub(crate) async fn post_webhook(&self, hook: &Webhook) -> Result<Answer, reqwest::Error> {
        let (headers, body) = self.sign(hook);
        let response = self
            .http()
            .post(&hook.url)
            .headers(headers)
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await?;
        let cut = bytes.len().min(MAX_ANSWER_BYTES);
        Ok(Answer {
            status,
            content_type,
            body: String::from_utf8_lossy(&bytes[..cut]).into_owned(),
        })
    }

    /// Posts with retries (transport errors, 5xx, 408, 429), backing off between attempts.
    /// `None` when every attempt failed or the sandbox shut down.
    #[tracing::instrument(skip_all, fields(provider = hook.provider().as_str(), kind = hook.kind))]
    pub(crate) async fn deliver(&self, hook: &Webhook) -> Option<Answer> {
        let timing = &self.settings().timing;
        let attempts = timing.webhook_attempts.max(1);
        let provider = hook.provider().as_str();
        let mut backoff = timing.webhook_backoff;
        for attempt in 1..=attempts {
            let outcome = self.post_webhook(hook).await;
            let retry = match &outcome {
                Ok(answer) => matches!(answer.status, 408 | 429 | 500..=599),
                Err(_) => true,
            };
            match &outcome {
                Ok(answer) if !retry => {
                    if !(200..300).contains(&answer.status) {
                        tracing::warn!(
                            provider,
                            kind = hook.kind,
                            status = answer.status,
                            "core refused a webhook"
                        );
                    }
                    return outcome.ok();
                }
                Ok(answer) => tracing::warn!(
                    provider,
                    kind = hook.kind,
                    attempt,
                    status = answer.status,
                    "webhook answered with a retryable status"
                ),
                Err(error) => tracing::warn!(
                    provider,
                    kind = hook.kind,
                    attempt,
                    timeout = error.is_timeout(),
                    connect = error.is_connect(),
                    "webhook delivery failed"
                ),
            }
            if attempt == attempts {
                tracing::error!(provider, kind = hook.kind, attempts, "gave up on a webhook");
                return None;
            }
            if !self.pause(backoff).await {
                return None;
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        None
    }

    /// Delivers `hooks` one after another (in order) in the background.
    pub(crate) fn deliver_in_background(&self, hooks: Vec<Webhook>) {
        let sandbox = self.clone();
        self.spawn(async move {
            for hook in &hooks {
                sandbox.deliver(hook).await;
            }
        });
    }

    /// The headers and body of one attempt, signed now.
    fn sign(&self, hook: &Webhook) -> (HeaderMap, Vec<u8>) {
        let settings = self.settings();
        let mut headers = HeaderMap::new();
        let now = chrono::Utc::now().timestamp();
        let body = match &hook.payload {
            Payload::TwilioForm(params) => {
                // Twilio signs with the auth token of the account the webhook is about.
                let account = params
                    .iter()
                    .find(|(name, _)| name == "AccountSid")
                    .map(|(_, sid)| sid.as_str());
                let added = account
                    .filter(|sid| *sid != settings.twilio.account_sid)
                    .and_then(|sid| self.state().twilio.added_account_token(sid).cloned());
                let token = added.unwrap_or_else(|| settings.twilio.auth_token.clone());
                let signature = signatures::twilio::signature(token.expose(), &hook.url, params);
                insert(&mut headers, signatures::twilio::HEADER, &signature);
                insert(
                    &mut headers,
                    "I-Twilio-Idempotency-Token",
                    &uuid::Uuid::new_v4().to_string(),
                );
                headers.insert(USER_AGENT, HeaderValue::from_static("TwilioProxy/1.1"));
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .finish()
                    .into_bytes()
            }
            Payload::StripeJson { body, secret } => {
                let signature = signatures::stripe::sign_header(secret.expose(), body, now);
                insert(&mut headers, signatures::stripe::HEADER, &signature);
                headers.insert(
                    USER_AGENT,
                    HeaderValue::from_static("Stripe/1.0 (+https://stripe.com/docs/webhooks)"),
                );
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                );
                body.clone()
            }
            Payload::CalendlyJson { body, secret } => {
                let signature = signatures::calendly::sign_header(secret.expose(), body, now);
                insert(&mut headers, signatures::calendly::HEADER, &signature);
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                body.clone()
            }
        };
        (headers, body)
    }
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    // Names are the providers' documented ones (normalised to lower case by `from_bytes`);
    // values are base64, hex or `t=…,v1=…`. Anything unusable is left out, which core then
    // rejects as unsigned.
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(name, value);
    }
}
