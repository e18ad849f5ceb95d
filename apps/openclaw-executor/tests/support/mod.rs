//! The drill ground the executor's end-to-end tests share (this crate's crash drill and
//! `tests/tests/executor.rs`, which includes this file by path): a real core-engine on a real
//! database, the real provider sandbox, both on 127.0.0.1 port 0, a tenant with short
//! templates, and the business clock set to a fixed morning so reminders land inside the send
//! window. Business time moves through core's sandbox clock API; leases, breakers and retries
//! run on real time, as in production.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aro_config::Config;
use aro_http::CancellationToken;
use aro_openclaw_executor::{Executor, Tuning, Worker};
use aro_security::tokens::{Scope, TenantGrant, TokenSigner};
use aro_tests::{Db, SIGNING_KEY, TestEnv};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

/// The business clock's start: a Friday, 10:00 in New York.
pub const START: &str = "2030-03-01T15:00:00Z";

/// Short timings: breakers recover in a second, the loop polls often, shutdown is quick.
pub fn drill_tuning() -> Tuning {
    Tuning {
        poll_interval: Duration::from_millis(50),
        breaker_cool_down: Duration::from_millis(500),
        breaker_max_cool_down: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(2),
    }
}

/// A service task, stopped when dropped.
pub struct Service {
    pub url: Url,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

impl Service {
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn spawn<F>(addr: std::net::SocketAddr, shutdown: CancellationToken, fut: F) -> Service
where
    F: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let handle = tokio::spawn(async move {
        if let Err(e) = fut.await {
            panic!("service stopped with an error: {e}");
        }
    });
    Service {
        url: Url::parse(&format!("http://{addr}/")).expect("url"),
        shutdown,
        handle: Some(handle),
    }
}

/// A token for core signed with the test key.
pub fn token(scopes: &[Scope]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    TokenSigner::new(SIGNING_KEY.as_bytes())
        .expect("signer")
        .issue(
            "drill",
            "core",
            scopes,
            TenantGrant::All,
            Duration::from_secs(3600),
            now,
        )
        .expect("token")
}

/// Core, the sandbox and an admin token, with the tenant `default` set up.
pub struct Drill {
    pub env: TestEnv,
    pub core: Service,
    pub sandbox: Service,
    pub admin: String,
    pub http: reqwest::Client,
    keys: std::sync::atomic::AtomicU64,
}

impl Drill {
    /// An executor driven step by step that reads tenants' credentials from core on every
    /// execution (the running service keeps them 60 s), so a change takes effect at once.
    pub fn stepped_executor(&self) -> (Worker, aro_openclaw_executor::providers::Providers) {
        use aro_openclaw_executor::core::CoreClient;
        use aro_openclaw_executor::credentials::TenantCredentials;
        use aro_openclaw_executor::providers::{self, Providers};
        let config = self.config();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let resilient = providers::policies(&config, &drill_tuning()).build();
        let core = CoreClient::new(&config, http.clone(), resilient.clone()).expect("core client");
        let providers = Providers::new(&config, &http, &resilient, 4)
            .with_tenant_credentials(TenantCredentials::with_ttl(core.clone(), Duration::ZERO));
        let worker = Worker::new(
            core,
            providers.clone(),
            Duration::from_secs(30),
            4,
            drill_tuning(),
        );
        (worker, providers)
    }

    /// `None` when the engine is PostgreSQL and no test server is configured.
    pub async fn start(db: Db) -> Option<Self> {
        let sandbox_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let core_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sandbox_addr = sandbox_listener.local_addr().expect("addr");
        let core_addr = core_listener.local_addr().expect("addr");
        let extra = format!(
            r#"
[sandbox]
enabled = true
listen = "{sandbox_addr}"

[server]
public_base_url = "http://{core_addr}"

[services.core]
listen = "{core_addr}"
url = "http://{core_addr}"

[services.executor]
listen = "127.0.0.1:0"
lease_secs = 30

[providers.twilio]
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "drill-twilio-auth-token"
from_number = "+15005550006"
base_url = "http://{sandbox_addr}"

[providers.stripe]
secret_key = "sk_test_drill"
webhook_secret = "whsec_drill"
base_url = "http://{sandbox_addr}"

[providers.calendly]
api_token = "drill-calendly-token"
webhook_signing_key = "drill-calendly-signing-key"
base_url = "http://{sandbox_addr}"
"#
        );
        let env = TestEnv::with_extra(db, &extra).await?;

        let store = aro_core_engine::storage::open(&env.config)
            .await
            .expect("open store");
        store.migrate_up().await.expect("migrate");
        store.close().await;
        let core_stop = CancellationToken::new();
        let core = spawn(
            core_addr,
            core_stop.clone(),
            aro_core_engine::run(env.config.clone(), core_listener, core_stop).map_err_to_string(),
        );

        let mut settings =
            aro_sandbox::SandboxSettings::from_config(&env.config).expect("sandbox settings");
        settings.timing.delivery_step = Duration::from_millis(20);
        // The `slow` fault holds a request this long, past the moment a drill kills its caller.
        settings.timing.slow_delay = Duration::from_secs(2);
        let sandbox_stop = CancellationToken::new();
        let sandbox = spawn(
            sandbox_addr,
            sandbox_stop.clone(),
            aro_sandbox::run(settings, sandbox_listener, sandbox_stop).map_err_to_string(),
        );

        let drill = Self {
            env,
            core,
            sandbox,
            admin: token(&[
                Scope::Admin,
                Scope::CommandsWrite,
                Scope::EventsRead,
                Scope::ExecutionsClaim,
            ]),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            keys: std::sync::atomic::AtomicU64::new(0),
        };
        drill.create_tenant("default", None).await;
        drill.set_clock(START).await;
        Some(drill)
    }

    /// The configuration as the executor reads it (core's URL, the sandbox as providers).
    pub fn config(&self) -> Config {
        self.env.config.clone()
    }

    /// Starts an in-process executor with drill timings; returns its worker and service.
    pub async fn start_executor(&self) -> (Worker, Service) {
        self.start_executor_with(self.config()).await
    }

    /// Starts an executor and returns once it has checked its providers' credentials, so the
    /// check's requests to the sandbox are over before a drill sets a counted fault.
    pub async fn start_executor_with(&self, config: Config) -> (Worker, Service) {
        let executor = Executor::new(&config, drill_tuning()).expect("executor");
        let worker = executor.worker().clone();
        let providers = executor.providers().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let service = spawn(
            addr,
            stop.clone(),
            executor.serve(listener, stop).map_err_to_string(),
        );
        wait_until(
            Duration::from_secs(30),
            "the executor checked its providers' credentials",
            || {
                let checked = providers.credentials_checked();
                async move { checked }
            },
        )
        .await;
        (worker, service)
    }

    fn core_url(&self, path: &str) -> Url {
        self.core.url.join(path).expect("url")
    }

    fn sandbox_url(&self, path: &str) -> Url {
        self.sandbox.url.join(path).expect("url")
    }

    /// Creates a tenant; `permissions` `None` grants the standard set.
    pub async fn create_tenant(&self, id: &str, permissions: Option<&[&str]>) {
        let mut body =
            json!({"id": id, "name": format!("Clinic {id}"), "timezone": "America/New_York"});
        if let Some(list) = permissions {
            body["permissions"] = json!(list);
        }
        let resp = self
            .http
            .post(self.core_url("v1/admin/tenants"))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .expect("create tenant");
        assert_eq!(resp.status().as_u16(), 201, "creating tenant {id}");
        let config: Value =
            serde_json::from_str(include_str!("tenant-config.json")).expect("tenant config");
        let (status, answer) = self
            .command(
                id,
                json!({"commandType": "tenant.update_config", "tenantId": id,
                       "aggregate": {"type": "tenant", "id": id}, "payload": config}),
            )
            .await;
        assert_eq!(status, 200, "installing the tenant configuration: {answer}");
    }

    /// Posts a command with a fresh idempotency key.
    pub async fn command(&self, tenant: &str, body: Value) -> (u16, Value) {
        let key = format!(
            "drill-{}",
            self.keys.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let resp = self
            .http
            .post(self.core_url("v1/commands"))
            .bearer_auth(&self.admin)
            .header("x-tenant-id", tenant)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .expect("post command");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Books a visit for `phone` starting `hours_ahead` hours after the business clock's now;
    /// returns the appointment id.
    pub async fn book(
        &self,
        tenant: &str,
        external: &str,
        phone: &str,
        hours_ahead: i64,
    ) -> String {
        let starts = self.now().await + chrono::Duration::hours(hours_ahead);
        let (status, answer) = self
            .command(
                tenant,
                json!({"commandType": "appointment.upsert", "tenantId": tenant,
                "aggregate": {"type": "appointment"},
                "payload": {
                    "source": "calendly", "externalId": external,
                    "customer": {"name": "Pat Example", "phone": phone,
                                 "timezone": "America/New_York", "language": "en"},
                    "startsAt": starts, "endsAt": starts + chrono::Duration::minutes(30),
                    "serviceType": "checkup",
                }}),
            )
            .await;
        assert_eq!(status, 200, "booking: {answer}");
        answer["aggregate"]["id"]
            .as_str()
            .expect("appointment id")
            .to_owned()
    }

    /// Books many visits concurrently (a few at a time: SQLite has one writer).
    pub async fn book_many(&self, tenant: &str, phones: &[String], hours_ahead: i64) {
        let starts = self.now().await + chrono::Duration::hours(hours_ahead);
        let mut set = tokio::task::JoinSet::new();
        for (i, phone) in phones.iter().enumerate() {
            let http = self.http.clone();
            let url = self.core_url("v1/commands");
            let admin = self.admin.clone();
            let tenant = tenant.to_owned();
            let phone = phone.clone();
            set.spawn(async move {
                let body = json!({"commandType": "appointment.upsert", "tenantId": tenant,
                    "aggregate": {"type": "appointment"},
                    "payload": {
                        "source": "calendly", "externalId": format!("https://api.calendly.com/scheduled_events/E{i}/invitees/I{i}"),
                        "customer": {"name": "Pat Example", "phone": phone,
                                     "timezone": "America/New_York", "language": "en"},
                        "startsAt": starts, "endsAt": starts + chrono::Duration::minutes(30),
                        "serviceType": "checkup",
                    }});
                let resp = http
                    .post(url)
                    .bearer_auth(admin)
                    .header("x-tenant-id", &tenant)
                    .header("idempotency-key", format!("book-{tenant}-{i}"))
                    .json(&body)
                    .send()
                    .await
                    .expect("book");
                assert_eq!(resp.status().as_u16(), 200, "booking {i}");
            });
            if set.len() >= 8 {
                set.join_next().await.expect("task").expect("booking task");
            }
        }
        while let Some(done) = set.join_next().await {
            done.expect("booking task");
        }
    }

    /// The business clock.
    pub async fn now(&self) -> DateTime<Utc> {
        let body: Value = self
            .http
            .get(self.core_url("v1/admin/clock"))
            .bearer_auth(&self.admin)
            .send()
            .await
            .expect("clock")
            .json()
            .await
            .expect("clock json");
        body["now"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .expect("now")
            .with_timezone(&Utc)
    }

    pub async fn set_clock(&self, at: &str) {
        let resp = self
            .http
            .post(self.core_url("v1/admin/clock"))
            .bearer_auth(&self.admin)
            .json(&json!({"set": at}))
            .send()
            .await
            .expect("set clock");
        assert_eq!(resp.status().as_u16(), 200, "setting the clock");
    }

    /// Moves business time forward by `by` (`"3h"`). Core answers once the work it caused has
    /// settled (up to 30 s); this returns as soon as the timers have fired, leaving the
    /// settling to the caller's own checks.
    pub async fn advance(&self, by: &str) {
        let target =
            self.now().await + chrono::Duration::from_std(humantime_hours(by)).expect("duration");
        let http = self.http.clone();
        let url = self.core_url("v1/admin/clock");
        let admin = self.admin.clone();
        let by = by.to_owned();
        // The request keeps running in the background until core has settled.
        tokio::spawn(async move {
            let _ = http
                .post(url)
                .bearer_auth(admin)
                .json(&json!({"advance": by}))
                .send()
                .await;
        });
        wait_until(
            Duration::from_secs(30),
            "the clock advance fired its timers",
            || async { self.now().await >= target },
        )
        .await;
    }

    /// Messages the sandbox phone received, optionally for one number.
    pub async fn messages(&self, to: Option<&str>) -> Vec<Value> {
        let mut url = self.sandbox_url("sandbox/messages");
        if let Some(to) = to {
            url.query_pairs_mut().append_pair("to", to);
        }
        let body: Value = self
            .http
            .get(url)
            .send()
            .await
            .expect("messages")
            .json()
            .await
            .expect("messages json");
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    pub async fn fault(&self, fault: Value) {
        let resp = self
            .http
            .post(self.sandbox_url("sandbox/faults"))
            .json(&fault)
            .send()
            .await
            .expect("fault");
        assert!(
            resp.status().is_success(),
            "setting a fault: {}",
            resp.status()
        );
    }

    pub async fn active_faults(&self) -> Value {
        self.http
            .get(self.sandbox_url("sandbox/faults"))
            .send()
            .await
            .expect("faults")
            .json()
            .await
            .expect("faults json")
    }

    pub async fn clear_faults(&self) {
        let resp = self
            .http
            .delete(self.sandbox_url("sandbox/faults"))
            .send()
            .await
            .expect("clear faults");
        assert!(resp.status().is_success());
    }

    /// A tenant's events of one type, oldest first.
    pub async fn events(&self, tenant: &str, event_type: &str) -> Vec<Value> {
        let mut url = self.core_url("v1/events");
        url.query_pairs_mut()
            .append_pair("eventType", event_type)
            .append_pair("limit", "1000");
        let body: Value = self
            .http
            .get(url)
            .bearer_auth(&self.admin)
            .header("x-tenant-id", tenant)
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("events json");
        body["events"].as_array().cloned().unwrap_or_default()
    }
}

/// `"3h"`, `"90m"`, `"25h1m"` as a duration (the few forms the drills use).
fn humantime_hours(by: &str) -> Duration {
    let mut total = 0u64;
    let mut number = 0u64;
    for c in by.chars() {
        match c {
            '0'..='9' => number = number * 10 + u64::from(c as u8 - b'0'),
            'd' => {
                total += number * 86_400;
                number = 0;
            }
            'h' => {
                total += number * 3_600;
                number = 0;
            }
            'm' => {
                total += number * 60;
                number = 0;
            }
            's' => {
                total += number;
                number = 0;
            }
            _ => panic!("unsupported duration {by}"),
        }
    }
    Duration::from_secs(total)
}

/// Polls `check` until it holds, or fails the test after `limit` (real time) naming `what`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` distinct mobile numbers.
pub fn phones(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("+1415555{:04}", 1000 + i)).collect()
}

/// Counts messages per recipient.
pub fn per_recipient(messages: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for m in messages {
        if let Some(to) = m["to"].as_str() {
            *counts.entry(to.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

trait MapErrToString {
    type Out;
    fn map_err_to_string(self) -> Self::Out;
}

impl<F, E> MapErrToString for F
where
    F: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    type Out = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;
    fn map_err_to_string(self) -> Self::Out {
        Box::pin(async move { self.await.map_err(|e| e.to_string()) })
    }
}
