//! The provider webhooks from outside, on both engines: core-engine with the providers
//! configured, and the sandbox (`aro_sandbox`) posting genuine signed Calendly, Twilio and
//! Stripe webhooks to it — bookings, reschedules, cancellations, no-shows, patients' replies,
//! delivery callbacks and paid deposit links (by card, or by a bank debit that succeeds or
//! fails) — plus hand-signed edge cases built from the payloads in `tests/fixtures/webhooks/`:
//! bad, stale and future signatures, duplicates delivered five at once, a reschedule's halves
//! in either order, numbers that cannot take a text, and bookings too incomplete to store
//! without a look-up.

use aro_config::{ProvidersConfig, SandboxSecrets};
use aro_http::CancellationToken;
use aro_sandbox::{SandboxSettings, SandboxTiming};
use aro_security::signatures;
use aro_security::tokens::{Scope, TenantGrant, TokenSigner};
use aro_store::engine_rows::PaymentLinkRow;
use aro_store::{Event, EventQuery, Store};
use aro_tests::*;
use aro_workflow::tenants::{self, NewTenant};
use aro_workflow::timers::{self, TimerKind};
use aro_workflow::{Clock, Engine, EngineSettings};
use chrono::{DateTime, Duration as Days, SecondsFormat, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

const TENANT: &str = "default";
/// The longest any test waits for something that should happen within about a second.
const PATIENCE: Duration = Duration::from_secs(15);
const TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;
const PATIENT: &str = "+14155552671";

// ----- the world: core, the sandbox, and a store to look into -----

struct World {
    env: Option<TestEnv>,
    core_url: Url,
    sandbox_url: Url,
    store: Store,
    client: reqwest::Client,
    secrets: SandboxSecrets,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for World {
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

fn now_unix() -> i64 {
    Utc::now().timestamp()
}

fn token(scopes: &[Scope]) -> String {
    TokenSigner::new(SIGNING_KEY.as_bytes())
        .expect("signer")
        .issue(
            "webhooks-test",
            "core",
            scopes,
            TenantGrant::Only(vec![TENANT.to_owned()]),
            Duration::from_secs(3600),
            now_unix(),
        )
        .expect("token")
}

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/webhooks/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json_fixture(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).expect("fixture is JSON")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A whole-second time `days` from now (the sandbox and Calendly speak whole seconds).
fn days_ahead(days: i64) -> DateTime<Utc> {
    let t = Utc::now() + Days::days(days);
    DateTime::from_timestamp(t.timestamp(), 0).expect("time")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}{:04x}",
        Utc::now().timestamp_nanos_opt().unwrap_or(0),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

fn invitee_uri(event: &str, invitee: &str) -> String {
    format!("https://api.calendly.com/scheduled_events/{event}/invitees/{invitee}")
}

/// A Calendly `invitee.created` from the fixture, for invitee `uri` at `starts`.
fn calendly_created(uri: &str, starts: DateTime<Utc>, old_invitee: Option<&str>) -> Value {
    let mut hook = json_fixture("calendly-invitee-created.json");
    let event = uri
        .split("/invitees/")
        .next()
        .unwrap_or_default()
        .to_owned();
    let payload = &mut hook["payload"];
    payload["uri"] = json!(uri);
    payload["event"] = json!(event);
    payload["scheduled_event"]["uri"] = json!(event);
    payload["scheduled_event"]["start_time"] = json!(rfc3339(starts));
    payload["scheduled_event"]["end_time"] = json!(rfc3339(starts + Days::minutes(30)));
    payload["old_invitee"] = json!(old_invitee);
    hook
}

/// A Calendly `invitee.canceled` from the fixture; `new_invitee` makes it a reschedule's half.
fn calendly_canceled(uri: &str, new_invitee: Option<&str>) -> Value {
    let mut hook = json_fixture("calendly-invitee-canceled.json");
    let payload = &mut hook["payload"];
    payload["uri"] = json!(uri);
    payload["rescheduled"] = json!(new_invitee.is_some());
    payload["new_invitee"] = json!(new_invitee);
    hook
}

/// Twilio's form from a fixture, with values replaced by parameter name.
fn twilio_form(name: &str, values: &[(&str, &str)]) -> Vec<(String, String)> {
    form_urlencoded::parse(fixture(name).as_bytes())
        .into_owned()
        .map(|(k, v)| {
            let replaced = values
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, value)| (*value).to_owned());
            (k, replaced.unwrap_or(v))
        })
        .collect()
}

fn encode(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn stripe_completed(event_id: &str, payment_link: &str) -> Value {
    let mut event = json_fixture("stripe-checkout-session-completed.json");
    event["id"] = json!(event_id);
    event["created"] = json!(now_unix());
    event["data"]["object"]["id"] = json!(unique("cs_test_"));
    event["data"]["object"]["payment_link"] = json!(payment_link);
    event
}

/// A bank debit's two events for `payment_link`, as Stripe sends them: the checkout completes
/// with the money not yet there (`unpaid`), then the debit `succeeded` (`paid`) or `failed`
/// (`unpaid`). One session throughout; each event has its own id.
fn stripe_bank_debit(payment_link: &str, outcome: &str) -> (Value, Value) {
    let mut completed = stripe_completed(&unique("evt_"), payment_link);
    let session = &mut completed["data"]["object"];
    session["payment_method_types"] = json!(["us_bank_account"]);
    session["payment_status"] = json!("unpaid");
    let mut settled = completed.clone();
    settled["id"] = json!(unique("evt_"));
    settled["type"] = json!(format!("checkout.session.async_payment_{outcome}"));
    settled["data"]["object"]["payment_status"] = json!(if outcome == "succeeded" {
        "paid"
    } else {
        "unpaid"
    });
    (completed, settled)
}

/// One answer: status, content type and body text.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn assert_received(&self) {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.json(), json!({"received": true}));
    }

    fn assert_twiml(&self) {
        assert_eq!(self.status, 200, "{}", self.body);
        assert!(
            self.content_type.starts_with("text/xml"),
            "{}",
            self.content_type
        );
        assert_eq!(self.body, TWIML);
    }

    /// A refusal in the error envelope, with its request id.
    fn assert_refused(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        assert!(body["requestId"].is_string(), "{body}");
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Answer {
        status,
        content_type,
        body: resp.text().await.unwrap_or_default(),
    }
}

impl World {
    /// Core with the three providers configured (sandbox secrets) and the sandbox pointed at
    /// it; tenant `default` with the test pack installed.
    async fn new(db: Db) -> Option<Self> {
        Self::start(db, true).await
    }

    async fn start(db: Db, providers: bool) -> Option<Self> {
        let mut env = TestEnv::new(db).await?;
        let core_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sandbox_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let core_addr = core_listener.local_addr().expect("addr");
        let sandbox_addr = sandbox_listener.local_addr().expect("addr");
        let core_url = Url::parse(&format!("http://{core_addr}")).expect("url");
        let sandbox_url = Url::parse(&format!("http://{sandbox_addr}")).expect("url");
        let secrets = SandboxSecrets::generate(&sandbox_url);
        // Twilio signs over the public URL: here, core's own address.
        env.config.server.public_base_url = core_url.clone();
        if providers {
            env.config.providers = ProvidersConfig {
                twilio: Some(secrets.twilio.clone()),
                stripe: Some(secrets.stripe.clone()),
                calendly: Some(secrets.calendly.clone()),
            };
        }
        let store = aro_core_engine::storage::open(&env.config)
            .await
            .expect("open store");
        store.migrate_up().await.expect("migrate");
        tenants::create(&store, &Clock::default(), NewTenant::demo_default(), "test")
            .await
            .expect("tenant");
        let shutdown = CancellationToken::new();
        let mut tasks = vec![spawn(
            "core-engine",
            aro_core_engine::run(env.config.clone(), core_listener, shutdown.child_token()),
        )];
        let mut settings = SandboxSettings::new(
            sandbox_addr,
            core_url.clone(),
            sandbox_url.clone(),
            secrets.twilio.clone(),
            secrets.stripe.clone(),
            secrets.calendly.clone(),
        );
        settings.timing = SandboxTiming {
            delivery_step: Duration::from_millis(10),
            slow_delay: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(10),
            webhook_attempts: 3,
            webhook_backoff: Duration::from_millis(50),
        };
        tasks.push(spawn(
            "sandbox",
            aro_sandbox::run(settings, sandbox_listener, shutdown.child_token()),
        ));
        let world = Self {
            env: Some(env),
            core_url,
            sandbox_url,
            store,
            client: http(),
            secrets,
            shutdown,
            tasks,
        };
        let pack: Value =
            serde_json::from_str(include_str!("../fixtures/tenant-config.json")).expect("pack");
        let installed = world
            .command(
                "tenant.update_config",
                json!({"type": "tenant", "id": TENANT}),
                pack,
            )
            .await;
        assert_eq!(installed["status"], "applied", "{installed}");
        Some(world)
    }

    /// Stops core and the sandbox and waits for them (before the database goes away).
    async fn stop(mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        self.store.close().await;
        drop(self.env.take());
    }

    fn core(&self, path: &str) -> String {
        format!("{}{path}", self.core_url.as_str().trim_end_matches('/'))
    }

    fn sandbox(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox_url.as_str().trim_end_matches('/'))
    }

    async fn command(&self, command_type: &str, aggregate: Value, payload: Value) -> Value {
        let resp = self
            .client
            .post(self.core("/v1/commands"))
            .bearer_auth(token(&[Scope::CommandsWrite]))
            .header("x-tenant-id", TENANT)
            .header("idempotency-key", unique("key-"))
            .json(&json!({"commandType": command_type, "tenantId": TENANT,
                          "aggregate": aggregate, "payload": payload}))
            .send()
            .await
            .expect("command");
        let a = answer(resp).await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()
    }

    /// Drives the sandbox (the patient's phone, the booking and payment pages).
    async fn sandbox_post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .post(self.sandbox(path))
            .json(&body)
            .send()
            .await
            .expect("sandbox");
        let a = answer(resp).await;
        assert!((200..300).contains(&a.status), "{path}: {}", a.body);
        a.json()
    }

    // ----- hand-signed deliveries -----

    async fn post_signed(
        &self,
        path: &str,
        header: &str,
        signature: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .post(self.core(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(signature) = signature {
            request = request.header(header, signature);
        }
        answer(request.send().await.expect("webhook")).await
    }

    fn calendly_signature(&self, body: &[u8], timestamp: i64) -> String {
        signatures::calendly::sign_header(
            self.secrets.calendly.webhook_signing_key.expose(),
            body,
            timestamp,
        )
    }

    async fn calendly_raw(&self, tenant: &str, body: Vec<u8>, signature: Option<&str>) -> Answer {
        self.post_signed(
            &format!("/v1/webhooks/calendly/{tenant}"),
            signatures::calendly::HEADER,
            signature,
            "application/json",
            body,
        )
        .await
    }

    async fn calendly(&self, hook: &Value) -> Answer {
        let body = serde_json::to_vec(hook).expect("json");
        let signature = self.calendly_signature(&body, now_unix());
        self.calendly_raw(TENANT, body, Some(&signature)).await
    }

    /// Calendly's or Stripe's signature (the same scheme) with that provider's secret.
    fn timestamped_signature(&self, provider: &str, body: &[u8], timestamp: i64) -> String {
        match provider {
            "calendly" => self.calendly_signature(body, timestamp),
            _ => self.stripe_signature(body, timestamp),
        }
    }

    async fn timestamped(
        &self,
        provider: &str,
        tenant: &str,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> Answer {
        match provider {
            "calendly" => self.calendly_raw(tenant, body, signature).await,
            _ => self.stripe_raw(tenant, body, signature).await,
        }
    }

    fn stripe_signature(&self, body: &[u8], timestamp: i64) -> String {
        signatures::stripe::sign_header(
            self.secrets.stripe.webhook_secret.expose(),
            body,
            timestamp,
        )
    }

    async fn stripe_raw(&self, tenant: &str, body: Vec<u8>, signature: Option<&str>) -> Answer {
        self.post_signed(
            &format!("/v1/webhooks/stripe/{tenant}"),
            signatures::stripe::HEADER,
            signature,
            "application/json; charset=utf-8",
            body,
        )
        .await
    }

    async fn stripe(&self, event: &Value) -> Answer {
        let body = serde_json::to_vec(event).expect("json");
        let signature = self.stripe_signature(&body, now_unix());
        self.stripe_raw(TENANT, body, Some(&signature)).await
    }

    /// Twilio's signature over the public URL (core's address + `path`) and the parameters.
    fn twilio_signature(&self, path: &str, params: &[(String, String)]) -> String {
        signatures::twilio::signature(
            self.secrets.twilio.auth_token.expose(),
            &self.core(path),
            params,
        )
    }

    async fn twilio_raw(
        &self,
        path: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> Answer {
        self.post_signed(
            path,
            signatures::twilio::HEADER,
            signature,
            "application/x-www-form-urlencoded",
            encode(params).into_bytes(),
        )
        .await
    }

    async fn twilio(&self, path: &str, params: &[(String, String)]) -> Answer {
        let signature = self.twilio_signature(path, params);
        self.twilio_raw(path, params, Some(&signature)).await
    }

    // ----- looking into core -----

    async fn events(&self, event_type: &str) -> Vec<Event> {
        let event_type = event_type.to_owned();
        self.store
            .read(move |tx| {
                Box::pin(async move {
                    tx.events(&EventQuery {
                        tenant_id: Some(TENANT.into()),
                        after: 0,
                        limit: 1000,
                        event_type: Some(event_type),
                        aggregate_id: None,
                    })
                    .await
                })
            })
            .await
            .expect("events")
    }

    async fn events_where(&self, event_type: &str, keep: impl Fn(&Event) -> bool) -> Vec<Event> {
        self.events(event_type)
            .await
            .into_iter()
            .filter(|e| keep(e))
            .collect()
    }

    /// Waits until at least `n` events of the type match, and returns them.
    async fn wait_for(
        &self,
        event_type: &str,
        n: usize,
        keep: impl Fn(&Event) -> bool,
    ) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let found = self.events_where(event_type, &keep).await;
            if found.len() >= n {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited for {n} {event_type} event(s), saw {}",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The appointment booked for a provider identity.
    async fn booked(&self, external_id: &str) -> Event {
        let external = external_id.to_owned();
        self.wait_for("appointment.booked", 1, move |e| {
            e.payload["appointment"]["externalId"] == external.as_str()
        })
        .await
        .remove(0)
    }

    async fn of_appointment(&self, event_type: &str, appointment: &str) -> Vec<Event> {
        self.events_where(event_type, |e| e.aggregate.id == appointment)
            .await
    }

    async fn appointment(&self, id: &str) -> aro_domain::appointment::Appointment {
        let id = id.to_owned();
        self.store
            .read(move |tx| Box::pin(async move { tx.get_appointment(TENANT, &id).await }))
            .await
            .expect("read")
            .expect("appointment exists")
    }

    async fn pending_timer_kinds(&self, appointment: &str) -> Vec<String> {
        let id = appointment.to_owned();
        self.store
            .read(move |tx| {
                Box::pin(async move { tx.raw().pending_timers_for_aggregate(TENANT, &id).await })
            })
            .await
            .expect("timers")
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    /// Claims executions of one type through the executor's API, waiting for at least one.
    async fn claim(&self, command_type: &str) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let resp = self
                .client
                .post(self.core("/v1/executions/claim"))
                .bearer_auth(token(&[Scope::ExecutionsClaim]))
                .json(&json!({"limit": 10, "leaseSeconds": 60, "types": [command_type]}))
                .send()
                .await
                .expect("claim");
            let a = answer(resp).await;
            assert_eq!(a.status, 200, "{}", a.body);
            let claimed = a.json()["executions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !claimed.is_empty() {
                return claimed;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {command_type} execution appeared"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn report(&self, execution_id: &str, result: Value) {
        let resp = self
            .client
            .post(self.core(&format!("/v1/executions/{execution_id}/result")))
            .bearer_auth(token(&[Scope::ExecutionsClaim]))
            .json(&result)
            .send()
            .await
            .expect("result");
        let a = answer(resp).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }

    /// Books through the sandbox's booking page; returns `(booking id, invitee URI)`.
    /// A deposit link of `appointment` known to core as Stripe's `provider_ref`, unpaid, with
    /// the nudge and the staff alert a deposit link schedules; its id.
    async fn deposit_link_with_timers(&self, appointment: &str, provider_ref: &str) -> String {
        let row = PaymentLinkRow {
            tenant_id: TENANT.into(),
            id: unique("pay_"),
            appointment_id: Some(appointment.to_owned()),
            customer_id: None,
            provider_ref: Some(provider_ref.to_owned()),
            url: Some("https://buy.stripe.com/test".into()),
            amount_minor: 2500,
            currency: "USD".into(),
            status: "sent".into(),
            created_at: Utc::now(),
            paid_at: None,
        };
        let id = row.id.clone();
        let visit = appointment.to_owned();
        let engine = Engine::new(
            self.store.clone(),
            Clock::default(),
            EngineSettings::default(),
        );
        engine
            .with_ctx(TENANT, "test", "test", move |ctx| {
                Box::pin(async move {
                    ctx.tx.raw().insert_payment_link(&row).await?;
                    let payload = json!({"paymentLinkId": row.id});
                    let nudge = ctx.now + Days::hours(24);
                    timers::schedule(ctx, TimerKind::DepositNudge, &visit, nudge, payload.clone())
                        .await?;
                    let alert = nudge + Days::hours(12);
                    timers::schedule(ctx, TimerKind::DepositAlert, &visit, alert, payload).await?;
                    Ok(())
                })
            })
            .await
            .expect("deposit link and its timers");
        id
    }

    async fn payment_link_status(&self, id: &str) -> String {
        let id = id.to_owned();
        self.store
            .read(move |tx| Box::pin(async move { tx.raw().get_payment_link(TENANT, &id).await }))
            .await
            .expect("read")
            .expect("link")
            .status
    }

    /// A payment link made at the sandbox's Stripe, as the executor makes one; its `plink_…`.
    async fn sandbox_payment_link(&self, appointment: &str) -> String {
        let stripe = &self.secrets.stripe;
        let post = |path: &str, form: Vec<(String, String)>| {
            self.client
                .post(self.sandbox(path))
                .bearer_auth(stripe.secret_key.expose())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encode(&form))
                .send()
        };
        let price: Value = post(
            "/v1/prices",
            vec![
                ("currency".into(), "usd".into()),
                ("unit_amount".into(), "2500".into()),
                ("product_data[name]".into(), "Deposit".into()),
            ],
        )
        .await
        .expect("price")
        .json()
        .await
        .expect("price json");
        let link: Value = post(
            "/v1/payment_links",
            vec![
                (
                    "line_items[0][price]".into(),
                    price["id"].as_str().expect("price").into(),
                ),
                ("line_items[0][quantity]".into(), "1".into()),
                ("metadata[tenantId]".into(), TENANT.into()),
                ("metadata[appointmentId]".into(), appointment.into()),
            ],
        )
        .await
        .expect("link")
        .json()
        .await
        .expect("link json");
        link["id"].as_str().expect("plink").to_owned()
    }

    async fn book(
        &self,
        name: &str,
        phone: Option<&str>,
        starts: DateTime<Utc>,
    ) -> (String, String) {
        let mut request = json!({"name": name, "startsAt": rfc3339(starts), "durationMinutes": 30,
                                 "eventType": "Checkup", "timezone": "America/New_York"});
        if let Some(phone) = phone {
            request["phone"] = json!(phone);
        }
        let booking = self.sandbox_post("/sandbox/bookings", request).await;
        (
            booking["id"].as_str().expect("id").to_owned(),
            booking["inviteeUri"].as_str().expect("invitee").to_owned(),
        )
    }
}

// ----- signatures -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_checked_before_anything_is_read_or_done() {
    let Some(w) = World::new(Db::Sqlite).await else {
        return;
    };
    let body = serde_json::to_vec(&calendly_created(
        &invitee_uri("EVSIG", "INSIG"),
        days_ahead(4),
        None,
    ))
    .expect("json");
    let now = now_unix();

    // Calendly and Stripe: the same `t=…,v1=…` scheme, each with its own secret and tolerance.
    for provider in ["calendly", "stripe"] {
        let body = if provider == "stripe" {
            serde_json::to_vec(&stripe_completed("evt_sig", "plink_unknown")).expect("json")
        } else {
            body.clone()
        };
        let good = w.timestamped_signature(provider, &body, now);
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let wrong_secret = signatures::stripe::sign_header("whsec_not_the_secret", &body, now);
        let tolerance = if provider == "calendly" { 180 } else { 300 };
        let stale = w.timestamped_signature(provider, &body, now - tolerance - 60);
        let future = w.timestamped_signature(provider, &body, now + tolerance + 60);

        w.timestamped(provider, TENANT, tampered, Some(&good))
            .await
            .assert_refused(401, "INVALID_SIGNATURE");
        w.timestamped(provider, TENANT, body.clone(), Some(&wrong_secret))
            .await
            .assert_refused(401, "INVALID_SIGNATURE");
        w.timestamped(provider, TENANT, body.clone(), None)
            .await
            .assert_refused(401, "INVALID_SIGNATURE");
        for malformed in ["garbage", "t=,v1=", "v1=abc", "t=12x,v1=00", "t=1"] {
            w.timestamped(provider, TENANT, body.clone(), Some(malformed))
                .await
                .assert_refused(401, "INVALID_SIGNATURE");
        }
        w.timestamped(provider, TENANT, body.clone(), Some(&stale))
            .await
            .assert_refused(401, "STALE_SIGNATURE");
        w.timestamped(provider, TENANT, body.clone(), Some(&future))
            .await
            .assert_refused(401, "STALE_SIGNATURE");
        // A forged signature for a tenant that does not exist learns nothing: 401, not 404.
        w.timestamped(provider, "no-such-clinic", body.clone(), Some("t=1,v1=00"))
            .await
            .assert_refused(401, "INVALID_SIGNATURE");
        // A genuine one for an unknown tenant is 404.
        w.timestamped(provider, "no-such-clinic", body.clone(), Some(&good))
            .await
            .assert_refused(404, "NOT_FOUND");
        // Several v1 signatures (a secret being rolled): any match passes.
        let rolled = format!("{good},v1={}", "ab".repeat(32));
        let (t, v1) = good.split_once(',').expect("t and v1");
        let first_wrong = format!("{t},v1={},{v1}", "cd".repeat(32));
        for header in [good.clone(), rolled, first_wrong] {
            w.timestamped(provider, TENANT, body.clone(), Some(&header))
                .await
                .assert_received();
        }
    }
    // Nothing refused left a trace; the accepted Calendly booking is one visit.
    assert_eq!(
        w.events_where("appointment.booked", |e| {
            e.payload["appointment"]["externalId"] == invitee_uri("EVSIG", "INSIG").as_str()
        })
        .await
        .len(),
        1
    );

    // Twilio: over the configured public URL, the path and query as sent, and the form.
    let params = twilio_form(
        "twilio-inbound.form",
        &[
            ("MessageSid", "SMsig1"),
            ("SmsSid", "SMsig1"),
            ("SmsMessageSid", "SMsig1"),
            ("AccountSid", &w.secrets.twilio.account_sid),
            ("Body", "hello"),
        ],
    );
    let path = format!("/v1/webhooks/twilio/{TENANT}/inbound");
    let good = w.twilio_signature(&path, &params);
    let mut tampered = params.clone();
    tampered.push(("Extra".to_owned(), "1".to_owned()));
    w.twilio_raw(&path, &tampered, Some(&good))
        .await
        .assert_refused(401, "INVALID_SIGNATURE");
    let wrong_token = signatures::twilio::signature("not-the-token", &w.core(&path), &params);
    w.twilio_raw(&path, &params, Some(&wrong_token))
        .await
        .assert_refused(401, "INVALID_SIGNATURE");
    w.twilio_raw(&path, &params, None)
        .await
        .assert_refused(401, "INVALID_SIGNATURE");
    w.twilio_raw(&path, &params, Some("not base64!"))
        .await
        .assert_refused(401, "INVALID_SIGNATURE");
    // Signed for another host (what a proxy would see) or another query: refused.
    let other_host = signatures::twilio::signature(
        w.secrets.twilio.auth_token.expose(),
        &format!("http://aro.internal{path}"),
        &params,
    );
    w.twilio_raw(&path, &params, Some(&other_host))
        .await
        .assert_refused(401, "INVALID_SIGNATURE");
    let status_path = format!("/v1/webhooks/twilio/{TENANT}/status?m=msg_a");
    let status = twilio_form(
        "twilio-status.form",
        &[("MessageSid", "SMsig2"), ("MessageStatus", "sent")],
    );
    let signed_for_a = w.twilio_signature(&status_path, &status);
    w.twilio_raw(
        &format!("/v1/webhooks/twilio/{TENANT}/status?m=msg_b"),
        &status,
        Some(&signed_for_a),
    )
    .await
    .assert_refused(401, "INVALID_SIGNATURE");
    // A signed callback for a message ARO does not know is acknowledged.
    w.twilio_raw(&status_path, &status, Some(&signed_for_a))
        .await
        .assert_twiml();
    w.twilio_raw(&path, &params, Some(&good))
        .await
        .assert_twiml();
    // A genuine request for an unknown tenant is 404; a forged one 401.
    let unknown = "/v1/webhooks/twilio/no-such-clinic/inbound";
    w.twilio_raw(
        unknown,
        &params,
        Some(&w.twilio_signature(unknown, &params)),
    )
    .await
    .assert_refused(404, "NOT_FOUND");
    w.twilio_raw(unknown, &params, Some(&good))
        .await
        .assert_refused(401, "INVALID_SIGNATURE");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_without_the_provider_answers_503() {
    let Some(w) = World::start(Db::Sqlite, false).await else {
        return;
    };
    let body = b"{}".to_vec();
    w.calendly_raw(TENANT, body.clone(), Some("t=1,v1=00"))
        .await
        .assert_refused(503, "PROVIDER_NOT_CONFIGURED");
    w.stripe_raw(TENANT, body, None)
        .await
        .assert_refused(503, "PROVIDER_NOT_CONFIGURED");
    for kind in ["inbound", "status"] {
        w.twilio_raw(&format!("/v1/webhooks/twilio/{TENANT}/{kind}"), &[], None)
            .await
            .assert_refused(503, "PROVIDER_NOT_CONFIGURED");
    }
    w.stop().await;
}

// ----- Calendly -----

both_engines!(
    sandbox_bookings_become_visits_and_a_reschedule_moves_them_once,
    |db| async move {
        let Some(w) = World::new(db).await else {
            return;
        };
        let starts = days_ahead(5);
        let (booking, first) = w.book("Ana Lopez", Some(PATIENT), starts).await;
        let booked = w.booked(&first).await;
        let appointment = booked.aggregate.id.clone();
        let snapshot = &booked.payload["appointment"];
        assert_eq!(snapshot["source"], "calendly");
        assert_eq!(snapshot["needsContact"], false);
        assert_eq!(snapshot["serviceType"], "Checkup");
        assert_eq!(snapshot["startsAt"], json!(starts));
        assert!(snapshot["cancelUrl"].is_string(), "{snapshot}");
        assert_eq!(booked.payload["actor"], "provider:calendly");
        assert!(
            !w.of_appointment("reminder.scheduled", &appointment)
                .await
                .is_empty()
        );

        // The sandbox reschedules as Calendly does: the old invitee cancelled (rescheduled),
        // then a new invitee created with `old_invitee`, in that order.
        let moved_to = days_ahead(6);
        let moved = w
            .sandbox_post(
                &format!("/sandbox/bookings/{booking}/reschedule"),
                json!({"startsAt": rfc3339(moved_to)}),
            )
            .await;
        let second = moved["inviteeUri"]
            .as_str()
            .expect("new invitee")
            .to_owned();
        let appointment_id = appointment.clone();
        w.wait_for("appointment.rescheduled", 1, move |e| {
            e.aggregate.id == appointment_id
        })
        .await;
        assert_eq!(w.appointment(&appointment).await.starts_at, moved_to);

        // The created half first, then the cancel half.
        let third = invitee_uri(&unique("EV"), &unique("IN"));
        let later = days_ahead(7);
        w.calendly(&calendly_created(&third, later, Some(&second)))
            .await
            .assert_received();
        w.calendly(&calendly_canceled(&second, Some(&third)))
            .await
            .assert_received();
        assert_eq!(w.appointment(&appointment).await.starts_at, later);

        // The cancel half first: remembered, nothing moves; the created half then does.
        let fourth = invitee_uri(&unique("EV"), &unique("IN"));
        let latest = days_ahead(8);
        w.calendly(&calendly_canceled(&third, Some(&fourth)))
            .await
            .assert_received();
        let a = w.appointment(&appointment).await;
        assert_eq!((a.starts_at, a.status.as_str()), (later, "booked"));
        assert!(
            w.of_appointment("appointment.cancelled", &appointment)
                .await
                .is_empty()
        );
        w.calendly(&calendly_created(&fourth, latest, Some(&third)))
            .await
            .assert_received();
        assert_eq!(w.appointment(&appointment).await.starts_at, latest);

        // Three reschedules, each once, never a cancellation, and never a second visit.
        assert_eq!(
            w.of_appointment("appointment.rescheduled", &appointment)
                .await
                .len(),
            3
        );
        assert!(
            w.of_appointment("appointment.cancelled", &appointment)
                .await
                .is_empty()
        );
        assert_eq!(w.events("appointment.booked").await.len(), 1);

        // A real cancellation at the provider cancels the visit, as the provider.
        let (other, invitee) = w.book("Ben Ito", Some("+14155550122"), days_ahead(5)).await;
        let cancelled_visit = w.booked(&invitee).await.aggregate.id;
        w.sandbox_post(&format!("/sandbox/bookings/{other}/cancel"), json!({}))
            .await;
        let id = cancelled_visit.clone();
        let cancelled = w
            .wait_for("appointment.cancelled", 1, move |e| e.aggregate.id == id)
            .await;
        assert_eq!(cancelled[0].payload["actor"], "provider:calendly");
        assert_eq!(cancelled[0].payload["reason"], "provider_cancelled");
        assert_eq!(
            cancelled[0].payload["note"],
            "cancelled at calendly by the invitee"
        );
        assert!(
            w.pending_timer_kinds(&cancelled_visit)
                .await
                .iter()
                .all(|k| k != "reminder")
        );

        // A cancellation of a booking ARO never knew: acknowledged, nothing happens.
        let before = w.events("appointment.cancelled").await.len();
        w.calendly(&calendly_canceled(&invitee_uri("EVX", "INX"), None))
            .await
            .assert_received();
        assert_eq!(w.events("appointment.cancelled").await.len(), before);
        w.stop().await;
    }
);

both_engines!(
    bookings_without_a_text_capable_number_are_kept_flagged_and_never_texted,
    |db| async move {
        let Some(w) = World::new(db).await else {
            return;
        };
        let starts = days_ahead(4);
        let mut visits = Vec::new();
        for phone in [Some("+44 20 7946 0018"), Some("call me at work"), None] {
            let (_, invitee) = w.book("Sam Okafor", phone, starts).await;
            let booked = w.booked(&invitee).await;
            assert_eq!(
                booked.payload["appointment"]["needsContact"], true,
                "{phone:?}"
            );
            visits.push(booked.aggregate.id.clone());
        }
        for id in &visits {
            let skipped = w.of_appointment("reminder.skipped", id).await;
            assert!(!skipped.is_empty(), "{id}");
            assert!(
                skipped
                    .iter()
                    .all(|e| e.payload["reason"] == "no_text_capable_number")
            );
            assert!(w.of_appointment("reminder.scheduled", id).await.is_empty());
            assert!(
                w.pending_timer_kinds(id)
                    .await
                    .iter()
                    .all(|k| k != "reminder")
            );
        }
        assert!(w.events("message.queued").await.is_empty());
        w.stop().await;
    }
);

both_engines!(
    an_incomplete_booking_is_looked_up_by_an_execution_not_in_the_request,
    |db| async move {
        let Some(w) = World::new(db).await else {
            return;
        };
        let event = format!("https://api.calendly.com/scheduled_events/{}", unique("EV"));
        let invitee = format!("{event}/invitees/{}", unique("IN"));
        let mut hook = json_fixture("calendly-invitee-created-without-event.json");
        hook["payload"]["uri"] = json!(invitee);
        hook["payload"]["event"] = json!(event);
        // Delivered five times at once: one look-up.
        let answers = futures::future::join_all((0..5).map(|_| w.calendly(&hook))).await;
        answers.iter().for_each(Answer::assert_received);
        assert!(w.events("appointment.booked").await.is_empty());

        let claimed = w.claim("booking.fetch_invitee").await;
        assert_eq!(claimed.len(), 1, "{claimed:?}");
        assert_eq!(
            claimed[0]["payload"],
            json!({"inviteeUri": invitee, "eventUri": event})
        );
        // What the executor reports after its look-up: an `appointment.upsert` payload.
        let starts = days_ahead(3);
        w.report(
            claimed[0]["executionId"].as_str().expect("id"),
            json!({"status": "succeeded", "output": {"booking": {
                "source": "calendly",
                "externalId": invitee,
                "customer": {"name": "Rosa Diaz", "phone": "+1 415-555-2671",
                             "email": "not an address", "timezone": "America/New_York",
                             "language": null},
                "startsAt": starts,
                "endsAt": starts + Days::minutes(30),
                "serviceType": "Checkup",
                "cancelUrl": "https://calendly.com/cancellations/x",
                "rescheduleUrl": "https://calendly.com/reschedulings/x",
                "previousExternalId": null,
            }}}),
        )
        .await;
        let booked = w.booked(&invitee).await;
        assert_eq!(booked.payload["appointment"]["needsContact"], false);
        // The executor found no optional detail worth keeping malformed: an odd email is
        // dropped as from a webhook. And a look-up that finds the invitee cancelled meanwhile
        // reports `{"booking": null}`: nothing is booked.
        let cancelled = format!("{event}/invitees/{}", unique("IN"));
        let mut hook = hook.clone();
        hook["payload"]["uri"] = json!(cancelled);
        w.calendly(&hook).await.assert_received();
        let claimed = w.claim("booking.fetch_invitee").await;
        assert_eq!(claimed[0]["payload"]["inviteeUri"], cancelled.as_str());
        w.report(
            claimed[0]["executionId"].as_str().expect("id"),
            json!({"status": "succeeded", "output": {"booking": null}}),
        )
        .await;
        assert_eq!(w.events("appointment.booked").await.len(), 1);
        w.stop().await;
    }
);

// ----- duplicates -----

both_engines!(
    five_concurrent_deliveries_of_each_webhook_act_once,
    |db| async move {
        let Some(w) = World::new(db).await else {
            return;
        };
        // Calendly: one visit.
        let invitee = invitee_uri(&unique("EV"), &unique("IN"));
        let hook = calendly_created(&invitee, days_ahead(3), None);
        let answers = futures::future::join_all((0..5).map(|_| w.calendly(&hook))).await;
        assert_eq!(answers.len(), 5);
        answers.iter().for_each(Answer::assert_received);
        let booked = w.booked(&invitee).await;
        let appointment = booked.aggregate.id.clone();
        assert_eq!(
            w.events_where("appointment.booked", |e| e.aggregate.id == appointment)
                .await
                .len(),
            1
        );

        // Twilio inbound: the patient texts HELP; one message, one answer.
        let sid = unique("SM");
        let params = twilio_form(
            "twilio-inbound.form",
            &[
                ("MessageSid", &sid),
                ("SmsSid", &sid),
                ("SmsMessageSid", &sid),
                ("AccountSid", &w.secrets.twilio.account_sid),
                ("Body", "HELP"),
            ],
        );
        let path = format!("/v1/webhooks/twilio/{TENANT}/inbound");
        let answers = futures::future::join_all((0..5).map(|_| w.twilio(&path, &params))).await;
        answers.iter().for_each(Answer::assert_twiml);
        assert_eq!(w.events("message.received").await.len(), 1);
        let queued = w
            .events_where("message.queued", |e| e.payload["purpose"] == "help_answer")
            .await;
        assert_eq!(queued.len(), 1, "{queued:?}");
        let message = queued[0].payload["messageId"]
            .as_str()
            .expect("id")
            .to_owned();

        // Twilio status: one delivery.
        let sid = unique("SM");
        let path = format!("/v1/webhooks/twilio/{TENANT}/status?m={message}");
        let params = twilio_form(
            "twilio-status.form",
            &[
                ("MessageSid", &sid),
                ("SmsSid", &sid),
                ("MessageStatus", "delivered"),
                ("SmsStatus", "delivered"),
                ("AccountSid", &w.secrets.twilio.account_sid),
            ],
        );
        let answers = futures::future::join_all((0..5).map(|_| w.twilio(&path, &params))).await;
        answers.iter().for_each(Answer::assert_twiml);
        let delivered = w.events("message.delivered").await;
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].payload["messageId"], message.as_str());

        // Stripe: one payment, for a deposit link of that visit whose nudge is waiting.
        let link = unique("plink_");
        let row = PaymentLinkRow {
            tenant_id: TENANT.into(),
            id: unique("pay_"),
            appointment_id: Some(appointment.clone()),
            customer_id: None,
            provider_ref: Some(link.clone()),
            url: Some("https://buy.stripe.com/test".into()),
            amount_minor: 2500,
            currency: "USD".into(),
            status: "sent".into(),
            created_at: Utc::now(),
            paid_at: None,
        };
        let engine = Engine::new(w.store.clone(), Clock::default(), EngineSettings::default());
        let visit = appointment.clone();
        engine
            .with_ctx(TENANT, "test", "test", move |ctx| {
                Box::pin(async move {
                    ctx.tx.raw().insert_payment_link(&row).await?;
                    let due = ctx.now + Days::hours(24);
                    timers::schedule(
                        ctx,
                        TimerKind::DepositNudge,
                        &visit,
                        due,
                        json!({"paymentLinkId": row.id}),
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
            .expect("deposit link and its nudge");
        assert!(
            w.pending_timer_kinds(&appointment)
                .await
                .contains(&"deposit_nudge".to_owned())
        );
        let event = stripe_completed(&unique("evt_"), &link);
        let answers = futures::future::join_all((0..5).map(|_| w.stripe(&event))).await;
        answers.iter().for_each(Answer::assert_received);
        let paid = w.events("payment.completed").await;
        assert_eq!(paid.len(), 1);
        assert_eq!(paid[0].payload["appointmentId"], appointment.as_str());
        assert!(
            !w.pending_timer_kinds(&appointment)
                .await
                .contains(&"deposit_nudge".to_owned())
        );
        // Stripe's other events are acknowledged and ignored.
        let mut other = event.clone();
        other["id"] = json!(unique("evt_"));
        other["type"] = json!("payment_intent.created");
        w.stripe(&other).await.assert_received();
        assert_eq!(w.events("payment.completed").await.len(), 1);
        w.stop().await;
    }
);

both_engines!(
    five_concurrent_deliveries_of_a_calendly_cancellation_or_reschedule_act_once,
    |db| async move {
        let Some(w) = World::new(db).await else {
            return;
        };
        let reminders_pending = |visit: String| {
            let w = &w;
            async move {
                w.pending_timer_kinds(&visit)
                    .await
                    .iter()
                    .any(|k| k == "reminder")
            }
        };

        // A plain cancellation, five copies at once: cancelled once, its reminders withdrawn.
        let invitee = invitee_uri(&unique("EV"), &unique("IN"));
        w.calendly(&calendly_created(&invitee, days_ahead(3), None))
            .await
            .assert_received();
        let cancelled_visit = w.booked(&invitee).await.aggregate.id;
        assert!(reminders_pending(cancelled_visit.clone()).await);
        let cancel = calendly_canceled(&invitee, None);
        let answers = futures::future::join_all((0..5).map(|_| w.calendly(&cancel))).await;
        assert_eq!(answers.len(), 5);
        answers.iter().for_each(Answer::assert_received);
        let cancelled = w
            .of_appointment("appointment.cancelled", &cancelled_visit)
            .await;
        assert_eq!(cancelled.len(), 1, "{cancelled:?}");
        assert_eq!(cancelled[0].payload["reason"], "provider_cancelled");
        assert_eq!(
            w.appointment(&cancelled_visit).await.status.as_str(),
            "cancelled"
        );
        assert!(!reminders_pending(cancelled_visit.clone()).await);
        // Redelivered later: nothing more.
        w.calendly(&cancel).await.assert_received();
        assert_eq!(
            w.of_appointment("appointment.cancelled", &cancelled_visit)
                .await
                .len(),
            1
        );

        // A reschedule's two halves, five copies of each, all ten at once (interleaved): the
        // visit moves once, is never cancelled, and the created half books no second visit.
        let first = invitee_uri(&unique("EV"), &unique("IN"));
        w.calendly(&calendly_created(&first, days_ahead(4), None))
            .await
            .assert_received();
        let moved_visit = w.booked(&first).await.aggregate.id;
        let second = invitee_uri(&unique("EV"), &unique("IN"));
        let moved_to = days_ahead(6);
        let cancel_half = calendly_canceled(&first, Some(&second));
        let created_half = calendly_created(&second, moved_to, Some(&first));
        let hooks: Vec<&Value> = (0..10)
            .map(|i| {
                if i % 2 == 0 {
                    &cancel_half
                } else {
                    &created_half
                }
            })
            .collect();
        let answers = futures::future::join_all(hooks.into_iter().map(|h| w.calendly(h))).await;
        assert_eq!(answers.len(), 10);
        answers.iter().for_each(Answer::assert_received);
        let rescheduled = w
            .of_appointment("appointment.rescheduled", &moved_visit)
            .await;
        assert_eq!(rescheduled.len(), 1, "{rescheduled:?}");
        assert!(
            w.of_appointment("appointment.cancelled", &moved_visit)
                .await
                .is_empty()
        );
        let a = w.appointment(&moved_visit).await;
        assert_eq!((a.starts_at, a.status.as_str()), (moved_to, "booked"));
        assert!(reminders_pending(moved_visit.clone()).await);
        assert_eq!(w.events("appointment.booked").await.len(), 2);

        // The halves in Calendly's order, each five at once: the cancel half is remembered and
        // moves nothing; the created half then moves the visit, once.
        let third = invitee_uri(&unique("EV"), &unique("IN"));
        let later = days_ahead(7);
        let cancel_half = calendly_canceled(&second, Some(&third));
        let answers = futures::future::join_all((0..5).map(|_| w.calendly(&cancel_half))).await;
        answers.iter().for_each(Answer::assert_received);
        let a = w.appointment(&moved_visit).await;
        assert_eq!((a.starts_at, a.status.as_str()), (moved_to, "booked"));
        assert_eq!(
            w.of_appointment("appointment.rescheduled", &moved_visit)
                .await
                .len(),
            1
        );
        let created_half = calendly_created(&third, later, Some(&second));
        let answers = futures::future::join_all((0..5).map(|_| w.calendly(&created_half))).await;
        answers.iter().for_each(Answer::assert_received);
        let a = w.appointment(&moved_visit).await;
        assert_eq!((a.starts_at, a.status.as_str()), (later, "booked"));
        assert_eq!(
            w.of_appointment("appointment.rescheduled", &moved_visit)
                .await
                .len(),
            2
        );
        assert!(
            w.of_appointment("appointment.cancelled", &moved_visit)
                .await
                .is_empty()
        );
        assert!(reminders_pending(moved_visit.clone()).await);
        assert_eq!(w.events("appointment.booked").await.len(), 2);
        w.stop().await;
    }
);

// ----- Twilio, end to end -----

both_engines!(
    a_reply_and_its_answer_s_delivery_travel_through_the_sandbox,
    |db| async move {
        let Some(w) = World::new(db).await else {
            return;
        };
        let (_, invitee) = w.book("Ana Lopez", Some(PATIENT), days_ahead(4)).await;
        w.booked(&invitee).await;
        // The patient texts HELP from the sandbox phone: a genuine signed inbound webhook.
        let reply = w
            .sandbox_post("/sandbox/reply", json!({"from": PATIENT, "body": "HELP"}))
            .await;
        assert_eq!(reply["webhook"]["status"], 200, "{reply}");
        assert_eq!(reply["webhook"]["body"], TWIML);
        assert!(
            reply["webhook"]["contentType"]
                .as_str()
                .is_some_and(|c| c.starts_with("text/xml"))
        );
        w.wait_for("message.received", 1, |_| true).await;

        // The executor's part, by hand: send the answer through the sandbox's Twilio API with
        // the status callback core chose. The result is never reported, so the callbacks find
        // their message by the id in the callback URL.
        let claimed = w.claim("messaging.send_message").await;
        let payload = &claimed[0]["payload"];
        let message = payload["messageId"].as_str().expect("message").to_owned();
        let callback = payload["statusCallback"]
            .as_str()
            .expect("callback")
            .to_owned();
        assert_eq!(
            callback,
            w.core(&format!("/v1/webhooks/twilio/{TENANT}/status?m={message}"))
        );
        let twilio = &w.secrets.twilio;
        let send = encode(&[
            (
                "To".to_owned(),
                payload["to"].as_str().expect("to").to_owned(),
            ),
            (
                "From".to_owned(),
                twilio.from_number.clone().expect("from number"),
            ),
            (
                "Body".to_owned(),
                payload["body"].as_str().expect("body").to_owned(),
            ),
            ("StatusCallback".to_owned(), callback),
        ]);
        let resp = w
            .client
            .post(w.sandbox(&format!(
                "/2010-04-01/Accounts/{}/Messages.json",
                twilio.account_sid
            )))
            .basic_auth(&twilio.account_sid, Some(twilio.auth_token.expose()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(send)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 201);
        let message_id = message.clone();
        let delivered = w
            .wait_for("message.delivered", 1, move |e| {
                e.payload["messageId"] == message_id.as_str()
            })
            .await;
        assert!(
            delivered[0].payload["providerRef"]
                .as_str()
                .is_some_and(|r| r.starts_with("SM"))
        );
        w.stop().await;
    }
);

// ----- no-shows and deposits, end to end -----

both_engines!(
    no_shows_lead_to_a_deposit_link_whose_payment_is_recorded_once,
    |db| async move {
        let Some(w) = World::new(db).await else {
            return;
        };
        let phone = "+14155550111";
        // Two visits, both missed (marked at the provider).
        let mut first_invitee = None;
        for days in [2, 3] {
            let (booking, invitee) = w.book("Lee Park", Some(phone), days_ahead(days)).await;
            let appointment = w.booked(&invitee).await.aggregate.id;
            first_invitee.get_or_insert(invitee);
            w.sandbox_post(&format!("/sandbox/bookings/{booking}/no-show"), json!({}))
                .await;
            let id = appointment.clone();
            let no_show = w
                .wait_for("appointment.no_show", 1, move |e| e.aggregate.id == id)
                .await;
            assert_eq!(no_show[0].payload["actor"], "provider:calendly");
        }
        // A no-show mark in the no-show resource's shape, five times at once, for a visit
        // already marked: acknowledged, nothing more.
        let mut mark = json_fixture("calendly-invitee-no-show-created.json");
        mark["payload"]["invitee"] = json!(first_invitee.expect("first visit"));
        let answers = futures::future::join_all((0..5).map(|_| w.calendly(&mark))).await;
        answers.iter().for_each(Answer::assert_received);
        assert_eq!(w.events("appointment.no_show").await.len(), 2);

        // The third booking of a patient with two no-shows asks for a deposit link.
        let (_, invitee) = w.book("Lee Park", Some(phone), days_ahead(4)).await;
        let appointment = w.booked(&invitee).await.aggregate.id;
        let claimed = w.claim("payments.generate_deposit_link").await;
        let request = &claimed[0]["payload"];
        let stripe = &w.secrets.stripe;
        let price: Value = w
            .client
            .post(w.sandbox("/v1/prices"))
            .bearer_auth(stripe.secret_key.expose())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&[
                ("currency".into(), "usd".into()),
                ("unit_amount".into(), request["amountMinor"].to_string()),
                ("product_data[name]".into(), "Deposit".into()),
            ]))
            .send()
            .await
            .expect("price")
            .json()
            .await
            .expect("price json");
        let metadata = &request["metadata"];
        let link: Value = w
            .client
            .post(w.sandbox("/v1/payment_links"))
            .bearer_auth(stripe.secret_key.expose())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&[
                (
                    "line_items[0][price]".into(),
                    price["id"].as_str().expect("price").into(),
                ),
                ("line_items[0][quantity]".into(), "1".into()),
                ("metadata[tenantId]".into(), TENANT.into()),
                (
                    "metadata[paymentLinkId]".into(),
                    metadata["paymentLinkId"].as_str().expect("link id").into(),
                ),
                ("metadata[appointmentId]".into(), appointment.clone()),
            ]))
            .send()
            .await
            .expect("link")
            .json()
            .await
            .expect("link json");
        let plink = link["id"].as_str().expect("plink").to_owned();
        w.report(
            claimed[0]["executionId"].as_str().expect("id"),
            json!({"status": "succeeded", "providerRef": plink,
                   "output": {"url": link["url"]}}),
        )
        .await;

        // The patient pays on the sandbox's payment page: a genuine signed Stripe event.
        w.sandbox_post(&format!("/sandbox/payments/{plink}/complete"), json!({}))
            .await;
        let id = appointment.clone();
        let paid = w
            .wait_for("payment.completed", 1, move |e| e.aggregate.id == id)
            .await;
        assert_eq!(paid[0].payload["paymentLinkId"], metadata["paymentLinkId"]);
        assert_eq!(paid[0].payload["amountMinor"], 2500);
        assert_eq!(paid[0].payload["currency"], "USD");
        assert!(
            paid[0].payload["providerRef"]
                .as_str()
                .is_some_and(|r| r.starts_with("cs_"))
        );
        let kinds = w.pending_timer_kinds(&appointment).await;
        assert!(
            !kinds
                .iter()
                .any(|k| k == "deposit_nudge" || k == "deposit_alert"),
            "{kinds:?}"
        );
        let link_id = metadata["paymentLinkId"].as_str().expect("id").to_owned();
        let row = w
            .store
            .read(move |tx| {
                Box::pin(async move { tx.raw().get_payment_link(TENANT, &link_id).await })
            })
            .await
            .expect("read")
            .expect("link");
        assert_eq!(row.status, "paid");
        assert!(row.paid_at.is_some());
        w.stop().await;
    }
);

// ----- deposits paid by bank debit -----

both_engines!(
    a_bank_debit_deposit_counts_as_paid_when_the_money_arrives_and_not_before,
    |db| async move {
        let Some(w) = World::new(db).await else {
            return;
        };
        let invitee = invitee_uri(&unique("EV"), &unique("IN"));
        w.calendly(&calendly_created(&invitee, days_ahead(3), None))
            .await
            .assert_received();
        let appointment = w.booked(&invitee).await.aggregate.id;
        let plink = unique("plink_");
        let link = w.deposit_link_with_timers(&appointment, &plink).await;
        let deposit_timers = ["deposit_alert".to_owned(), "deposit_nudge".to_owned()];
        let pending_deposit_timers = || async {
            let mut kinds: Vec<String> = w
                .pending_timer_kinds(&appointment)
                .await
                .into_iter()
                .filter(|k| k.starts_with("deposit_"))
                .collect();
            kinds.sort();
            kinds
        };
        assert_eq!(pending_deposit_timers().await, deposit_timers);

        // The checkout completes, the debit still on its way: nothing is paid yet.
        let (completed, succeeded) = stripe_bank_debit(&plink, "succeeded");
        w.stripe(&completed).await.assert_received();
        assert_eq!(w.payment_link_status(&link).await, "sent");
        assert!(w.events("payment.completed").await.is_empty());
        assert_eq!(pending_deposit_timers().await, deposit_timers);

        // The money arrives (five copies at once): paid once, the nudge and alert called off.
        let answers = futures::future::join_all((0..5).map(|_| w.stripe(&succeeded))).await;
        answers.iter().for_each(Answer::assert_received);
        assert_eq!(w.payment_link_status(&link).await, "paid");
        let paid = w.events("payment.completed").await;
        assert_eq!(paid.len(), 1, "{paid:?}");
        assert_eq!(paid[0].aggregate.id, appointment);
        assert_eq!(paid[0].payload["paymentLinkId"], link.as_str());
        assert_eq!(
            paid[0].payload["providerRef"],
            completed["data"]["object"]["id"]
        );
        assert_eq!(paid[0].payload["amountMinor"], 2500);
        assert!(pending_deposit_timers().await.is_empty());

        // Redelivered later, or the completion again: nothing more.
        w.stripe(&succeeded).await.assert_received();
        w.stripe(&completed).await.assert_received();
        assert_eq!(w.events("payment.completed").await.len(), 1);
        w.stop().await;
    }
);

both_engines!(
    a_failed_bank_debit_pays_nothing_and_keeps_the_nudge_and_alert,
    |db| async move {
        let Some(w) = World::new(db).await else {
            return;
        };
        let invitee = invitee_uri(&unique("EV"), &unique("IN"));
        w.calendly(&calendly_created(&invitee, days_ahead(3), None))
            .await
            .assert_received();
        let appointment = w.booked(&invitee).await.aggregate.id;

        // By hand: the checkout completes unpaid, then the debit fails (three copies at once).
        let plink = w.sandbox_payment_link(&appointment).await;
        let link = w.deposit_link_with_timers(&appointment, &plink).await;
        let (completed, failed) = stripe_bank_debit(&plink, "failed");
        w.stripe(&completed).await.assert_received();
        let answers = futures::future::join_all((0..3).map(|_| w.stripe(&failed))).await;
        answers.iter().for_each(Answer::assert_received);
        assert_eq!(w.payment_link_status(&link).await, "sent");
        assert!(w.events("payment.completed").await.is_empty());
        let kinds = w.pending_timer_kinds(&appointment).await;
        assert!(
            kinds.contains(&"deposit_nudge".to_owned())
                && kinds.contains(&"deposit_alert".to_owned()),
            "{kinds:?}"
        );

        // Through the sandbox's payment page: a bank debit that fails leaves the link
        // payable; the patient's second debit goes through and is recorded once.
        let path = format!("/sandbox/payments/{plink}/complete");
        let first = w
            .sandbox_post(&path, json!({"method": "bank_debit", "outcome": "failed"}))
            .await;
        assert_eq!(first["status"], "open", "{first}");
        let second = w
            .sandbox_post(
                &path,
                json!({"method": "bank_debit", "outcome": "succeeded"}),
            )
            .await;
        assert_eq!(second["status"], "paid", "{second}");
        let visit = appointment.clone();
        let paid = w
            .wait_for("payment.completed", 1, move |e| e.aggregate.id == visit)
            .await;
        assert_eq!(paid.len(), 1);
        assert_eq!(paid[0].payload["providerRef"], second["sessionId"]);
        assert_eq!(w.payment_link_status(&link).await, "paid");
        let kinds = w.pending_timer_kinds(&appointment).await;
        assert!(
            !kinds
                .iter()
                .any(|k| k == "deposit_nudge" || k == "deposit_alert"),
            "{kinds:?}"
        );
        w.stop().await;
    }
);

// ----- no input makes a webhook fail -----

/// One request to throw at a webhook endpoint.
#[derive(Debug, Clone)]
struct Thrown {
    endpoint: usize,
    tenant: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// Sign the body correctly, so parsing and the engine see arbitrary verified content.
    sign: bool,
}

const ENDPOINTS: [&str; 4] = ["calendly", "twilio-inbound", "twilio-status", "stripe"];

fn header_names() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("calendly-webhook-signature".to_owned()),
        Just("stripe-signature".to_owned()),
        Just("x-twilio-signature".to_owned()),
        Just("content-type".to_owned()),
        Just("x-request-id".to_owned()),
        "[a-z][a-z0-9-]{0,20}".prop_filter("headers the HTTP layer itself owns", |name| {
            !matches!(
                name.as_str(),
                "content-length"
                    | "transfer-encoding"
                    | "host"
                    | "connection"
                    | "te"
                    | "upgrade"
                    | "expect"
                    | "keep-alive"
                    | "trailer"
            ) && !name.starts_with("proxy-")
        }),
    ]
}

/// Bodies: arbitrary bytes, or payloads shaped like the providers' with arbitrary values.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let text = || ".{0,40}";
    let calendly = (
        prop_oneof![
            Just("invitee.created"),
            Just("invitee.canceled"),
            Just("invitee_no_show.created"),
            Just("other.event")
        ],
        text(),
        text(),
        text(),
        any::<i32>(),
        -60_i64..600,
        any::<bool>(),
        proptest::option::of(text()),
    )
        .prop_map(
            |(event, uri, name, phone, start, minutes, rescheduled, old)| {
                let start =
                    DateTime::from_timestamp(i64::from(start).abs() * 100, 0).unwrap_or_default();
                serde_json::to_vec(&json!({"event": event, "payload": {
                "uri": uri, "name": name, "text_reminder_number": phone, "invitee": uri,
                "rescheduled": rescheduled, "old_invitee": old, "timezone": phone,
                "email": name,
                "scheduled_event": {"uri": name, "name": name,
                    "start_time": rfc3339(start),
                    "end_time": rfc3339(start + Days::minutes(minutes))}}}))
                .unwrap_or_default()
            },
        );
    let twilio =
        (text(), text(), text(), text(), text()).prop_map(|(sid, from, to, body, status)| {
            encode(&[
                ("MessageSid".into(), sid),
                ("From".into(), from),
                ("To".into(), to),
                ("Body".into(), body),
                ("MessageStatus".into(), status),
            ])
            .into_bytes()
        });
    let stripe = (
        prop_oneof![
            Just("checkout.session.completed"),
            Just("checkout.session.async_payment_succeeded"),
            Just("checkout.session.async_payment_failed"),
        ],
        text(),
        text(),
        any::<i64>(),
        text(),
        text(),
    )
        .prop_map(|(event_type, id, link, amount, currency, status)| {
            serde_json::to_vec(&json!({"id": id, "type": event_type,
                "created": 1, "data": {"object": {"id": id, "payment_link": link,
                "amount_total": amount, "currency": currency, "payment_status": status}}}))
            .unwrap_or_default()
        });
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        calendly,
        twilio,
        stripe,
    ]
}

fn thrown() -> impl Strategy<Value = Thrown> {
    (
        0..ENDPOINTS.len(),
        prop_oneof![3 => Just(TENANT.to_owned()), 1 => "[A-Za-z0-9._~-]{1,40}"],
        proptest::collection::vec(
            (
                header_names(),
                proptest::collection::vec(any::<u8>(), 0..120),
            ),
            0..4,
        ),
        bodies(),
        proptest::bool::weighted(0.75),
    )
        .prop_map(|(endpoint, tenant, headers, body, sign)| Thrown {
            endpoint,
            tenant,
            headers,
            body,
            sign,
        })
}

#[test]
fn no_header_value_or_body_makes_a_webhook_answer_5xx() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let Some(w) = runtime.block_on(World::new(Db::Sqlite)) else {
        return;
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 160,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&thrown(), |t| {
        let path = match ENDPOINTS[t.endpoint] {
            "calendly" => format!("/v1/webhooks/calendly/{}", t.tenant),
            "twilio-inbound" => format!("/v1/webhooks/twilio/{}/inbound", t.tenant),
            "twilio-status" => format!("/v1/webhooks/twilio/{}/status?m=msg_x", t.tenant),
            _ => format!("/v1/webhooks/stripe/{}", t.tenant),
        };
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &t.headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_bytes(value),
            ) {
                headers.append(name, value);
            }
        }
        if t.sign {
            let (name, value) = match ENDPOINTS[t.endpoint] {
                "calendly" => (
                    signatures::calendly::HEADER,
                    w.calendly_signature(&t.body, now_unix()),
                ),
                "stripe" => (
                    signatures::stripe::HEADER,
                    w.stripe_signature(&t.body, now_unix()),
                ),
                _ => {
                    let params: Vec<(String, String)> =
                        form_urlencoded::parse(&t.body).into_owned().collect();
                    (
                        signatures::twilio::HEADER,
                        w.twilio_signature(&path, &params),
                    )
                }
            };
            if let Ok(value) = reqwest::header::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        let status = runtime.block_on(async {
            w.client
                .post(w.core(&path))
                .headers(headers)
                .body(t.body.clone())
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        let status = status.map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
        prop_assert!(status < 500, "{} answered {status} to {t:?}", path);
        Ok(())
    });
    runtime.block_on(w.stop());
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
