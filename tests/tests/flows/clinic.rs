//! The clinic the flow tests play in, assembled the way `aro up` assembles it: core-engine on a
//! real database (a SQLite file or a fresh PostgreSQL database), the provider sandbox standing
//! in for Twilio, Stripe and Calendly with generated secrets, openclaw-executor performing every
//! side effect against it, and the healthcare BFF installing the real profile pack into the
//! tenant — each on 127.0.0.1 port 0.
//!
//! Tests act only where a person would: bookings, cancellations, reschedules and no-shows at the
//! sandbox's Calendly, the patient's phone (`GET /sandbox/messages`, `POST /sandbox/reply`), the
//! payment page, staff commands on the Command API, and business time through
//! `POST /v1/admin/clock`. They observe what phones received and what core's event log says.

use aro_config::{Config, LlmConfig, ProvidersConfig, SandboxSecrets, Secret};
use aro_domain::tenant::ClassificationResidency;
use aro_http::CancellationToken;
use aro_openclaw_executor::{Executor, Tuning};
use aro_profile_backend_healthcare::install::InstallSchedule;
use aro_sandbox::{SandboxSettings, SandboxTiming};
use aro_tests::{Db, TestEnv, admin_token, token};
use aro_workflow::Clock;
use aro_workflow::tenants::{self, NewTenant};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

/// The tenant `aro up` creates ("Demo Clinic", America/New_York).
pub const TENANT: &str = "default";
/// The clinic's phone (`NewTenant::demo_default`): where staff digests go.
pub const CLINIC_PHONE: &str = "+15005550100";
/// The tenant's review link (`NewTenant::demo_default`).
pub const REVIEW_LINK: &str = "https://example.org/review-us";
/// How long (real time) a test waits for something that should follow within a second or so.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What differs between clinics in these tests.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `[classifier.llm] base_url`: an OpenAI-compatible endpoint (a fake in these tests).
    pub llm: Option<Url>,
    /// Where the tenant's LLM classification runs.
    pub residency: ClassificationResidency,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            llm: None,
            residency: ClassificationResidency::OpenclawExecutor,
        }
    }
}

/// A patient booking through the sandbox's Calendly.
#[derive(Debug, Clone)]
pub struct Booking {
    pub name: &'static str,
    pub phone: &'static str,
    pub starts_at: &'static str,
    pub minutes: i64,
    pub timezone: &'static str,
    pub language: Option<&'static str>,
}

impl Booking {
    /// A 30-minute checkup for a patient in New York, in English.
    pub fn new(name: &'static str, phone: &'static str, starts_at: &'static str) -> Self {
        Self {
            name,
            phone,
            starts_at,
            minutes: 30,
            timezone: "America/New_York",
            language: None,
        }
    }

    pub fn in_zone(mut self, timezone: &'static str) -> Self {
        self.timezone = timezone;
        self
    }

    pub fn in_language(mut self, language: &'static str) -> Self {
        self.language = Some(language);
        self
    }
}

/// A booked visit: the sandbox's booking and core's appointment.
#[derive(Debug, Clone)]
pub struct Visit {
    pub booking: String,
    pub appointment: String,
    /// The appointment as `appointment.booked` carried it.
    pub snapshot: Value,
}

impl Visit {
    pub fn cancel_url(&self) -> String {
        self.snapshot["cancelUrl"]
            .as_str()
            .expect("the booking has a cancel link")
            .to_owned()
    }

    pub fn reschedule_url(&self) -> String {
        self.snapshot["rescheduleUrl"]
            .as_str()
            .expect("the booking has a reschedule link")
            .to_owned()
    }
}

/// One text on a phone, as the sandbox shows it.
#[derive(Debug, Clone)]
pub struct Text {
    pub body: String,
    /// `outbound-api` (sent by ARO through the API) or `outbound-reply` (Twilio's own answer).
    pub direction: String,
    pub status: String,
}

impl Text {
    pub fn sent_by_aro(&self) -> bool {
        self.direction == "outbound-api"
    }
}

pub struct Clinic {
    env: Option<TestEnv>,
    pub config: Config,
    pub core: Url,
    pub sandbox: Url,
    pub bff: Url,
    http: reqwest::Client,
    admin: String,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    executor: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
    keys: AtomicU64,
}

impl Drop for Clinic {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn spawn<F, E>(what: &'static str, fut: F) -> JoinHandle<()>
where
    F: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            panic!("{what} stopped with an error: {e}");
        }
    })
}

fn url_of(listener: &TcpListener) -> Url {
    Url::parse(&format!("http://{}", listener.local_addr().expect("addr"))).expect("url")
}

/// Short real-time timings: the loop polls often and shuts down quickly. Business time is
/// never involved.
fn executor_tuning() -> Tuning {
    Tuning {
        poll_interval: Duration::from_millis(50),
        breaker_cool_down: Duration::from_millis(500),
        breaker_max_cool_down: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(2),
    }
}

pub fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

/// Polls `check` until it holds, or fails the test after [`PATIENCE`] naming `what`.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
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

impl Clinic {
    /// The configuration folder and database behind this clinic (to look at what is stored).
    #[allow(dead_code)] // used by at_rest.rs, not by every test binary that includes this file
    pub fn env(&self) -> &TestEnv {
        self.env.as_ref().expect("the clinic is running")
    }

    /// `None` when the engine is PostgreSQL and no test server is configured (skipped).
    pub async fn start(db: Db, at: &str) -> Option<Self> {
        Self::start_with(db, at, Setup::default()).await
    }

    /// Everything running, the pack installed, business time at `at`.
    pub async fn start_with(db: Db, at: &str, setup: Setup) -> Option<Self> {
        let core_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sandbox_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let bff_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let core = url_of(&core_listener);
        let sandbox = url_of(&sandbox_listener);
        let bff = url_of(&bff_listener);
        let core_addr = core_listener.local_addr().expect("addr");
        let sandbox_addr = sandbox_listener.local_addr().expect("addr");
        // As `aro up` writes it: the sandbox on, core reachable at its public URL (Twilio signs
        // over it), every provider pointing at the sandbox with generated secrets.
        let extra = format!(
            "\n[sandbox]\nenabled = true\nlisten = \"{sandbox_addr}\"\n\n[server]\npublic_base_url = \"{core}\"\n\n[services.core]\nlisten = \"{core_addr}\"\nurl = \"{core}\"\n"
        );
        let mut env = TestEnv::with_extra(db, &extra).await?;
        let secrets = SandboxSecrets::generate(&sandbox);
        env.config.providers = ProvidersConfig {
            twilio: Some(secrets.twilio),
            stripe: Some(secrets.stripe),
            calendly: Some(secrets.calendly),
        };
        env.config.classifier.llm = setup.llm.map(|base_url| LlmConfig {
            base_url,
            model: "fake-classifier".into(),
            api_key: Some(Secret::new("sk-fake".to_owned())),
            timeout_secs: 1,
        });
        // The grants `aro up` mints for the executor and the BFF.
        env.config.services.executor.core_token = Some(Secret::new(token(
            &["executions:claim", "events:read"],
            &["*"],
        )));
        env.config.services.bff.core_token = Some(Secret::new(token(
            &["commands:write", "events:read"],
            &["*"],
        )));
        env.config.services.bff.url = bff.clone();
        let config = env.config.clone();

        let store = aro_core_engine::storage::open(&config)
            .await
            .expect("open store");
        store.migrate_up().await.expect("migrate");
        let mut tenant = NewTenant::demo_default();
        tenant.classification_residency = setup.residency;
        tenants::create(&store, &Clock::default(), tenant, "aro up")
            .await
            .expect("default tenant");
        store.close().await;

        let shutdown = CancellationToken::new();
        let mut tasks = vec![spawn(
            "core-engine",
            aro_core_engine::run(config.clone(), core_listener, shutdown.child_token()),
        )];
        let mut settings = SandboxSettings::from_config(&config).expect("sandbox settings");
        settings.timing = SandboxTiming {
            delivery_step: Duration::from_millis(10),
            slow_delay: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(20),
            webhook_attempts: 3,
            webhook_backoff: Duration::from_millis(50),
        };
        tasks.push(spawn(
            "sandbox",
            aro_sandbox::run(settings, sandbox_listener, shutdown.child_token()),
        ));
        // The BFF's installer checks again only after an hour here, so a test that changes one
        // policy by hand (as a clinic's integrator could) keeps it for the test's length.
        tasks.push(spawn(
            "profile-backend-healthcare",
            aro_profile_backend_healthcare::run_with_schedule(
                config.clone(),
                bff_listener,
                shutdown.child_token(),
                InstallSchedule {
                    period: Duration::from_secs(3600),
                    ..InstallSchedule::default()
                },
            ),
        ));
        let clinic = Self {
            env: Some(env),
            config,
            core,
            sandbox,
            bff,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            admin: admin_token(),
            shutdown,
            tasks,
            executor: Mutex::new(None),
            keys: AtomicU64::new(0),
        };
        clinic.wait_for_pack().await;
        clinic.start_executor().await;
        clinic.set_clock(at).await;
        Some(clinic)
    }

    /// Stops every service and waits for them, then drops the database.
    pub async fn stop(mut self) {
        self.pause_executor().await;
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        drop(self.env.take());
    }

    async fn wait_for_pack(&self) {
        let ready = self.bff.join("ready").expect("url");
        wait_until("the BFF installed the healthcare pack", || async {
            let Ok(resp) = self.http.get(ready.clone()).send().await else {
                return false;
            };
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            body.to_string().contains("installed in 1 of 1 tenants")
        })
        .await;
    }

    /// Starts openclaw-executor (the real one, with short real-time tuning).
    pub async fn start_executor(&self) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let stop = self.shutdown.child_token();
        let executor = Executor::new(&self.config, executor_tuning()).expect("executor");
        let handle = spawn("openclaw-executor", executor.serve(listener, stop.clone()));
        let previous = self
            .executor
            .lock()
            .expect("executor slot")
            .replace((stop, handle));
        assert!(previous.is_none(), "one executor at a time");
    }

    /// Stops the executor: what core queues meanwhile stays queued.
    pub async fn pause_executor(&self) {
        let running = self.executor.lock().expect("executor slot").take();
        if let Some((stop, handle)) = running {
            stop.cancel();
            let _ = handle.await;
        }
    }

    fn executor_running(&self) -> bool {
        self.executor.lock().expect("executor slot").is_some()
    }

    // ----- business time -----

    async fn move_clock(&self, body: Value) -> Value {
        let mut body = body;
        if !self.executor_running() {
            // Nothing would settle: queued work waits for the executor.
            body["waitSeconds"] = json!(0);
        }
        let resp = self
            .http
            .post(self.core.join("v1/admin/clock").expect("url"))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .expect("clock");
        assert_eq!(resp.status().as_u16(), 200, "moving the clock");
        let answer: Value = resp.json().await.expect("clock json");
        if self.executor_running() {
            assert_eq!(answer["settled"], true, "the work settled: {answer}");
        }
        answer
    }

    /// Moves business time to `at`, firing what falls due, and waits for the work to settle
    /// (every text handed to the sandbox, every result recorded).
    pub async fn set_clock(&self, at: &str) {
        self.move_clock(json!({"set": at})).await;
    }

    pub async fn advance(&self, by: &str) {
        self.move_clock(json!({"advance": by})).await;
    }

    /// Waits until the work already started (a reply's answer, a webhook's effects) settles.
    pub async fn settle(&self) {
        self.move_clock(json!({"advance": "0s"})).await;
    }

    // ----- the sandbox: bookings, phones, payments -----

    async fn sandbox_post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(self.sandbox.join(path).expect("url"))
            .json(&body)
            .send()
            .await
            .expect("sandbox");
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            (200..300).contains(&status),
            "sandbox {path}: {status} {answer}"
        );
        answer
    }

    /// Books at the sandbox's Calendly (a signed `invitee.created` to core); returns the visit
    /// once core has booked it.
    pub async fn book(&self, b: &Booking) -> Visit {
        let mut request = json!({"name": b.name, "phone": b.phone, "startsAt": b.starts_at,
            "durationMinutes": b.minutes, "eventType": "checkup", "timezone": b.timezone});
        if let Some(language) = b.language {
            request["language"] = json!(language);
        }
        let booking = self.sandbox_post("/sandbox/bookings", request).await;
        let invitee = booking["inviteeUri"].as_str().expect("invitee").to_owned();
        let booked = self
            .wait_for_event("appointment.booked", |e| {
                e["payload"]["appointment"]["externalId"] == invitee.as_str()
            })
            .await;
        Visit {
            booking: booking["id"].as_str().expect("booking id").to_owned(),
            appointment: booked["aggregate"]["id"]
                .as_str()
                .expect("appointment")
                .to_owned(),
            snapshot: booked["payload"]["appointment"].clone(),
        }
    }

    /// The patient moves the visit at Calendly; waits until core has moved it.
    pub async fn reschedule(&self, visit: &Visit, starts_at: &str) {
        let before = self
            .events_of(&visit.appointment, "appointment.rescheduled")
            .await
            .len();
        self.sandbox_post(
            &format!("/sandbox/bookings/{}/reschedule", visit.booking),
            json!({"startsAt": starts_at}),
        )
        .await;
        wait_until("core moved the visit", || async {
            self.events_of(&visit.appointment, "appointment.rescheduled")
                .await
                .len()
                > before
        })
        .await;
    }

    /// The patient cancels at Calendly; waits until core has cancelled the visit.
    pub async fn cancel_at_calendly(&self, visit: &Visit) {
        self.sandbox_post(
            &format!("/sandbox/bookings/{}/cancel", visit.booking),
            json!({}),
        )
        .await;
        self.wait_for_event("appointment.cancelled", |e| {
            e["aggregate"]["id"] == visit.appointment.as_str()
        })
        .await;
    }

    /// The clinic marks a no-show at Calendly; waits until core has recorded it.
    pub async fn no_show_at_calendly(&self, visit: &Visit) {
        self.sandbox_post(
            &format!("/sandbox/bookings/{}/no-show", visit.booking),
            json!({}),
        )
        .await;
        self.wait_for_event("appointment.no_show", |e| {
            e["aggregate"]["id"] == visit.appointment.as_str()
        })
        .await;
    }

    /// Everything the phone at `number` received, oldest first.
    pub async fn phone(&self, number: &str) -> Vec<Text> {
        let mut url = self.sandbox.join("sandbox/messages").expect("url");
        url.query_pairs_mut().append_pair("to", number);
        let body: Value = self
            .http
            .get(url)
            .send()
            .await
            .expect("messages")
            .json()
            .await
            .expect("messages json");
        body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| Text {
                body: m["body"].as_str().unwrap_or_default().to_owned(),
                direction: m["direction"].as_str().unwrap_or_default().to_owned(),
                status: m["status"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// The bodies of the texts on a phone.
    pub async fn texts(&self, number: &str) -> Vec<String> {
        self.phone(number)
            .await
            .into_iter()
            .map(|t| t.body)
            .collect()
    }

    /// Waits until the phone holds `n` texts; returns them.
    pub async fn wait_for_texts(&self, number: &str, n: usize) -> Vec<String> {
        wait_until(&format!("{number} holds {n} texts"), || async {
            self.phone(number).await.len() >= n
        })
        .await;
        self.texts(number).await
    }

    /// The patient texts back (a signed Twilio inbound webhook); returns the sandbox's answer
    /// (Twilio's automatic reply, core's answer).
    pub async fn reply(&self, from: &str, body: &str) -> Value {
        let answer = self
            .sandbox_post("/sandbox/reply", json!({"from": from, "body": body}))
            .await;
        assert_eq!(
            answer["webhook"]["status"], 200,
            "core took the reply: {answer}"
        );
        answer
    }

    /// Switches the sandbox's Twilio opt-out handling for the tenant.
    pub async fn twilio_opt_out_handling(&self, on: bool) {
        self.sandbox_post("/sandbox/settings", json!({"twilioOptOutHandling": on}))
            .await;
    }

    /// The payment links the sandbox's Stripe holds.
    pub async fn payment_links(&self) -> Vec<Value> {
        let body: Value = self
            .http
            .get(self.sandbox.join("sandbox/payments").expect("url"))
            .send()
            .await
            .expect("payments")
            .json()
            .await
            .expect("payments json");
        body["links"].as_array().cloned().unwrap_or_default()
    }

    /// The patient pays on the payment page (a signed `checkout.session.completed` to core).
    pub async fn pay(&self, link_id: &str) {
        self.sandbox_post(&format!("/sandbox/payments/{link_id}/complete"), json!({}))
            .await;
    }

    // ----- core: commands, the tenant, events, metrics -----

    pub async fn command(&self, command_type: &str, aggregate: Value, payload: Value) -> Value {
        let key = format!("flows-{}", self.keys.fetch_add(1, Ordering::SeqCst));
        let resp = self
            .http
            .post(self.core.join("v1/commands").expect("url"))
            .bearer_auth(&self.admin)
            .header("x-tenant-id", TENANT)
            .header("idempotency-key", key)
            .json(&json!({"commandType": command_type, "tenantId": TENANT,
                          "aggregate": aggregate, "payload": payload}))
            .send()
            .await
            .expect("command");
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "{command_type}: {answer}");
        answer
    }

    /// A staff action on a visit (`appointment.mark_no_show`, …).
    pub async fn staff(&self, command_type: &str, visit: &Visit) -> Value {
        self.command(
            command_type,
            json!({"type": "appointment", "id": visit.appointment}),
            Value::Null,
        )
        .await
    }

    /// The tenant as core shows it, with its installed configuration.
    pub async fn tenant(&self) -> Value {
        self.http
            .get(self.core.join("v1/tenant").expect("url"))
            .bearer_auth(&self.admin)
            .header("x-tenant-id", TENANT)
            .send()
            .await
            .expect("tenant")
            .json()
            .await
            .expect("tenant json")
    }

    /// Changes one policy of the installed pack through the Command API.
    pub async fn set_policy(&self, key: &str, value: Value) {
        let mut config = self.tenant().await["config"].clone();
        config["policies"][key] = value;
        self.command(
            "tenant.update_config",
            json!({"type": "tenant", "id": TENANT}),
            config,
        )
        .await;
    }

    async fn events_page(&self, query: &[(&str, String)]) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0i64;
        loop {
            let mut url = self.core.join("v1/events").expect("url");
            {
                let mut pairs = url.query_pairs_mut();
                pairs.append_pair("after", &after.to_string());
                pairs.append_pair("limit", "1000");
                for (k, v) in query {
                    pairs.append_pair(k, v);
                }
            }
            let page: Value = self
                .http
                .get(url)
                .bearer_auth(&self.admin)
                .header("x-tenant-id", TENANT)
                .send()
                .await
                .expect("events")
                .json()
                .await
                .expect("events json");
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                return all;
            }
            after = page["nextAfter"].as_i64().expect("nextAfter");
            all.extend(events);
        }
    }

    /// Every event of one type, in order.
    pub async fn events(&self, event_type: &str) -> Vec<Value> {
        self.events_page(&[("eventType", event_type.to_owned())])
            .await
    }

    /// The events of one type about one appointment.
    pub async fn events_of(&self, appointment: &str, event_type: &str) -> Vec<Value> {
        self.events_page(&[
            ("eventType", event_type.to_owned()),
            ("aggregateId", appointment.to_owned()),
        ])
        .await
    }

    /// Waits for an event of `event_type` matching `keep`; returns the first.
    pub async fn wait_for_event(&self, event_type: &str, keep: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(found) = self.events(event_type).await.into_iter().find(|e| keep(e)) {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until core recorded {event_type}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visit's status, from the last appointment event about it.
    pub async fn status(&self, visit: &Visit) -> String {
        self.events_page(&[("aggregateId", visit.appointment.clone())])
            .await
            .iter()
            .rev()
            .find_map(|e| {
                e["payload"]["appointment"]["status"]
                    .as_str()
                    .map(str::to_owned)
            })
            .expect("an appointment event")
    }

    /// The reasons of the escalations opened so far.
    pub async fn escalation_reasons(&self) -> Vec<String> {
        self.events("escalation.opened")
            .await
            .iter()
            .filter_map(|e| e["payload"]["reason"].as_str().map(str::to_owned))
            .collect()
    }

    /// `reminder.skipped` reasons for one visit, as `(kind, reason)`.
    pub async fn skipped(&self, visit: &Visit) -> Vec<(String, String)> {
        self.events_of(&visit.appointment, "reminder.skipped")
            .await
            .iter()
            .map(|e| {
                (
                    e["payload"]["kind"].as_str().unwrap_or_default().to_owned(),
                    e["payload"]["reason"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    }

    /// When (business time) each of the visit's texts was queued, with its purpose.
    pub async fn queued(&self, visit: &Visit) -> Vec<(String, DateTime<Utc>)> {
        self.events_of(&visit.appointment, "message.queued")
            .await
            .iter()
            .map(|e| {
                (
                    e["payload"]["purpose"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    parse_time(e["occurredAt"].as_str().expect("occurredAt")),
                )
            })
            .collect()
    }

    pub async fn metrics(&self) -> Value {
        let resp = self
            .http
            .get(self.core.join("v1/reports/metrics").expect("url"))
            .bearer_auth(&self.admin)
            .header("x-tenant-id", TENANT)
            .send()
            .await
            .expect("metrics");
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().await.expect("metrics json")
    }
}
