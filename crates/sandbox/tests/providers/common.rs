//! The test bench: a real sandbox on 127.0.0.1 port 0, and a small server standing in for core
//! that verifies every webhook's signature with aro-security (as core does) and records what
//! arrived.

use aro_config::SandboxSecrets;
use aro_http::CancellationToken;
use aro_sandbox::SandboxSettings;
use aro_security::signatures::{self, SignatureError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// One webhook as core received it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    /// Checked with the configured secret, as core checks a tenant without its own.
    pub verified: Result<(), SignatureError>,
    pub form: Vec<(String, String)>,
    pub json: Value,
    /// The provider's signature header and the raw body, to check with another secret.
    pub signature: Option<String>,
    pub raw: Vec<u8>,
}

impl Delivery {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
struct Core {
    base: String,
    secrets: Arc<SandboxSecrets>,
    log: Arc<Mutex<Vec<Delivery>>>,
    /// Answer this many of the next webhooks with 503 (to exercise the sandbox's retries).
    fail_next: Arc<AtomicUsize>,
}

async fn receive(State(core): State<Core>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if core
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let path = uri.path().to_owned();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let (provider, verified, form, json) = if path.starts_with("/v1/webhooks/twilio/") {
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        // Core verifies over its configured public URL plus the path it was called on.
        let url = format!("{}{}", core.base, path);
        let verified = signatures::twilio::verify(
            core.secrets.twilio.auth_token.expose(),
            &url,
            &form,
            header(signatures::twilio::HEADER),
        );
        ("twilio", verified, form, Value::Null)
    } else if path.starts_with("/v1/webhooks/stripe/") {
        let verified = signatures::stripe::verify(
            core.secrets.stripe.webhook_secret.expose(),
            &body,
            header(signatures::stripe::HEADER),
            now,
            signatures::stripe::DEFAULT_TOLERANCE_SECS,
        );
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        ("stripe", verified, Vec::new(), json)
    } else if path.starts_with("/v1/webhooks/calendly/") {
        let verified = signatures::calendly::verify(
            core.secrets.calendly.webhook_signing_key.expose(),
            &body,
            header(signatures::calendly::HEADER),
            now,
            signatures::calendly::DEFAULT_TOLERANCE_SECS,
        );
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        ("calendly", verified, Vec::new(), json)
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let ok = verified.is_ok();
    let signature_header = match provider {
        "twilio" => signatures::twilio::HEADER,
        "stripe" => signatures::stripe::HEADER,
        _ => signatures::calendly::HEADER,
    };
    let signature = header(signature_header).map(str::to_owned);
    core.log.lock().unwrap().push(Delivery {
        path,
        verified,
        form,
        json,
        signature,
        raw: body.to_vec(),
    });
    match (ok, provider) {
        (false, _) => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": "INVALID_SIGNATURE"}})),
        )
            .into_response(),
        (true, "twilio") => (
            [(axum::http::header::CONTENT_TYPE, "text/xml")],
            "<Response/>",
        )
            .into_response(),
        (true, _) => axum::Json(json!({"received": true})).into_response(),
    }
}

/// A running sandbox and its stand-in core.
pub struct Bench {
    pub sandbox: String,
    pub core: String,
    pub secrets: Arc<SandboxSecrets>,
    pub http: reqwest::Client,
    log: Arc<Mutex<Vec<Delivery>>>,
    fail_next: Arc<AtomicUsize>,
    shutdown: CancellationToken,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How long waiting for an asynchronous effect may take before a test fails (a bound against
/// hanging, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(15);

impl Bench {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut SandboxSettings)) -> Self {
        let shutdown = CancellationToken::new();
        let core_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let core = format!("http://{}", core_listener.local_addr().unwrap());
        let sandbox_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sandbox_addr = sandbox_listener.local_addr().unwrap();
        let sandbox = format!("http://{sandbox_addr}");
        let sandbox_url = url::Url::parse(&sandbox).unwrap();
        let secrets = Arc::new(SandboxSecrets::generate(&sandbox_url));
        let log = Arc::new(Mutex::new(Vec::new()));
        let fail_next = Arc::new(AtomicUsize::new(0));

        let receiver = Router::new().fallback(receive).with_state(Core {
            base: core.clone(),
            secrets: secrets.clone(),
            log: log.clone(),
            fail_next: fail_next.clone(),
        });
        tokio::spawn(aro_http::serve(core_listener, receiver, shutdown.clone()));

        let mut settings = SandboxSettings::new(
            sandbox_addr,
            url::Url::parse(&core).unwrap(),
            sandbox_url,
            secrets.twilio.clone(),
            secrets.stripe.clone(),
            secrets.calendly.clone(),
        );
        settings.timing.delivery_step = Duration::from_millis(10);
        settings.timing.webhook_backoff = Duration::from_millis(20);
        adjust(&mut settings);
        let running = tokio::spawn(aro_sandbox::run(
            settings,
            sandbox_listener,
            shutdown.clone(),
        ));

        Self {
            sandbox,
            core,
            secrets,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            log,
            fail_next,
            shutdown,
            running: Some(running),
        }
    }

    /// Asks the sandbox to stop and waits until `run` has returned.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.shutdown.cancel();
        let running = self.running.take().expect("started");
        tokio::time::timeout(PATIENCE, running)
            .await
            .expect("the sandbox stops")
            .expect("the sandbox task does not panic")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox)
    }

    pub fn account_sid(&self) -> &str {
        &self.secrets.twilio.account_sid
    }

    pub fn sender_number(&self) -> String {
        self.secrets.twilio.from_number.clone().unwrap()
    }

    pub fn messages_url(&self) -> String {
        self.url(&format!(
            "/2010-04-01/Accounts/{}/Messages.json",
            self.account_sid()
        ))
    }

    pub fn status_callback(&self, tenant: &str) -> String {
        format!("{}/v1/webhooks/twilio/{tenant}/status", self.core)
    }

    /// Sends an SMS as ARO's executor would.
    pub async fn send_sms_with(
        &self,
        client: &reqwest::Client,
        to: &str,
        body: &str,
        tenant: &str,
    ) -> reqwest::Result<reqwest::Response> {
        client
            .post(self.messages_url())
            .basic_auth(
                self.account_sid(),
                Some(self.secrets.twilio.auth_token.expose()),
            )
            .form(&[
                ("To", to),
                ("From", &self.sender_number()),
                ("Body", body),
                ("StatusCallback", &self.status_callback(tenant)),
            ])
            .send()
            .await
    }

    pub async fn send_sms(&self, to: &str, body: &str) -> reqwest::Response {
        self.send_sms_with(&self.http, to, body, "default")
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// The patient's phone.
    pub async fn inbox(&self, phone: &str) -> Vec<Value> {
        let encoded: String = form_urlencoded::byte_serialize(phone.as_bytes()).collect();
        let page = self
            .get_json(&format!("/sandbox/messages?to={encoded}"))
            .await;
        page["messages"].as_array().unwrap().clone()
    }

    /// Makes core answer the next `n` webhooks with 503.
    pub fn fail_next_webhooks(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `pick` finds what it looks for among the deliveries so far.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        mut pick: impl FnMut(&[Delivery]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(found) = pick(&self.deliveries()) {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {what}; deliveries so far: {:#?}",
                self.deliveries()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `check` holds for what `fetch` returns.
    pub async fn eventually<T, F>(
        &self,
        what: &str,
        mut fetch: impl FnMut() -> F,
        check: impl Fn(&T) -> bool,
    ) -> T
    where
        F: std::future::Future<Output = T>,
        T: std::fmt::Debug,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let value = fetch().await;
            if check(&value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {what}; last seen: {value:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Calendly webhooks delivered to `tenant`, in arrival order.
    pub fn calendly_events(&self, tenant: &str) -> Vec<Value> {
        let path = format!("/v1/webhooks/calendly/{tenant}");
        self.deliveries()
            .into_iter()
            .filter(|d| d.path == path)
            .map(|d| {
                assert_eq!(d.verified, Ok(()), "Calendly signature");
                d.json
            })
            .collect()
    }
}
