//! The Event API from outside, on both engines: paging by seq, the Server-Sent Events stream
//! (resume with `Last-Event-ID`, live tail), and push subscriptions — signatures checked by the
//! reference Standard Webhooks implementation (PyPI `standardwebhooks`), a stable `webhook-id`
//! across retries, the persisted retry schedule, `Retry-After`, 410, sustained failure, replay
//! and the delivery lease.
//!
//! Events are appended straight through the store (as the Command API will), and deliveries go
//! to a small HTTP receiver on 127.0.0.1 that records every request byte for byte.

use aro_core_engine::workers::delivery::{DeliverySettings, DeliveryWorker, Jitter};
use aro_domain::EventType;
use aro_security::tokens::{Scope, TenantGrant, TokenSigner};
use aro_store::contract::tenant;
use aro_store::subscriptions::{DeliveryState, Subscription, SubscriptionStatus};
use aro_store::{AggregateRef, EventMetadata, NewEvent, Store, StoreError};
use aro_tests::*;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const A: &str = "clinic-a";
const B: &str = "clinic-b";
/// The longest any test waits for something that should happen within about a second.
const PATIENCE: Duration = Duration::from_secs(15);

// ----- setup -----

struct Setup {
    _env: TestEnv,
    core: Option<Running>,
    store: Store,
    client: reqwest::Client,
}

impl Setup {
    async fn new(db: Db) -> Option<Self> {
        let env = TestEnv::new(db).await?;
        let core = start_core(&env).await;
        let store = aro_core_engine::storage::open(&env.config)
            .await
            .expect("open store");
        for id in [A, B] {
            store
                .write(move |tx| Box::pin(async move { tx.insert_tenant(&tenant(id)).await }))
                .await
                .expect("tenant");
        }
        Some(Self {
            _env: env,
            core: Some(core),
            store,
            client: reqwest::Client::new(),
        })
    }

    fn url(&self, path: &str) -> String {
        let core = self.core.as_ref().expect("core is running");
        format!("http://{}{path}", core.addr)
    }

    /// Stops core (and its own delivery loop) so a test can drive a worker step by step.
    async fn stop_core(&mut self) {
        if let Some(core) = self.core.take() {
            core.stop().await;
        }
    }

    async fn get(&self, path: &str, token: &str, tenant: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .header("x-tenant-id", tenant)
            .send()
            .await
            .expect("request");
        status_and_json(resp).await
    }

    async fn post(&self, path: &str, token: &str, tenant: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header("x-tenant-id", tenant)
            .json(&body)
            .send()
            .await
            .expect("request");
        status_and_json(resp).await
    }

    async fn delete(&self, path: &str, token: &str, tenant: &str) -> u16 {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .header("x-tenant-id", tenant)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    /// Appends one event for `tenant` and returns its seq.
    async fn append(&self, tenant: &str, event_type: EventType, aggregate: &str) -> i64 {
        self.append_at(tenant, event_type, aggregate, Utc::now())
            .await
    }

    async fn append_at(
        &self,
        tenant: &str,
        event_type: EventType,
        aggregate: &str,
        occurred_at: DateTime<Utc>,
    ) -> i64 {
        let tenant = tenant.to_owned();
        let aggregate = aggregate.to_owned();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let (_, seq) = tx
                        .append_event(
                            NewEvent {
                                tenant_id: tenant,
                                event_type,
                                aggregate: AggregateRef::new("appointment", aggregate.clone()),
                                occurred_at,
                                profile: Some("healthcare".into()),
                                payload: json!({"appointmentId": aggregate}),
                                pii: None,
                                metadata: EventMetadata::default(),
                            },
                            occurred_at,
                        )
                        .await?;
                    Ok::<_, StoreError>(seq)
                })
            })
            .await
            .expect("append event")
    }

    async fn subscription(&self, tenant: &str, id: &str) -> Subscription {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.store
            .read(move |tx| Box::pin(async move { tx.get_subscription(&tenant, &id).await }))
            .await
            .expect("read subscription")
            .expect("subscription exists")
    }

    /// Creates a subscription through the API; returns `(id, secret)`.
    async fn subscribe(&self, token: &str, url: &str, event_types: &[&str]) -> (String, String) {
        let (status, body) = self
            .post(
                "/v1/subscriptions",
                token,
                A,
                json!({"url": url, "eventTypes": event_types}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().expect("id").to_owned(),
            body["secret"].as_str().expect("secret").to_owned(),
        )
    }
}

async fn status_and_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json::<Value>().await.unwrap_or(Value::Null))
}

fn token(tenants: &[&str], scopes: &[Scope]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    TokenSigner::new(SIGNING_KEY.as_bytes())
        .expect("signer")
        .issue(
            "events-test",
            "core",
            scopes,
            TenantGrant::Only(tenants.iter().map(|t| (*t).to_owned()).collect()),
            Duration::from_secs(3600),
            now,
        )
        .expect("token")
}

fn reader(tenant: &str) -> String {
    token(&[tenant], &[Scope::EventsRead])
}

fn seqs(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect()
}

/// Fast, deterministic delivery settings for tests that drive the worker themselves.
fn test_settings() -> DeliverySettings {
    DeliverySettings {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        jitter: Jitter::Ceiling,
        attempt_timeout: Duration::from_secs(5),
        ..DeliverySettings::default()
    }
}

async fn sleep_until(at: DateTime<Utc>) {
    if let Ok(wait) = (at - Utc::now()).to_std() {
        tokio::time::sleep(wait + Duration::from_millis(2)).await;
    }
}

// ----- a receiver that records raw deliveries -----

#[derive(Debug, Clone)]
struct Delivery {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Delivery {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("delivery body is JSON")
    }

    fn seq(&self) -> i64 {
        self.json()["seq"].as_i64().expect("seq")
    }
}

#[derive(Debug, Clone, Copy)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
}

const OK: Reply = Reply {
    status: 200,
    retry_after: None,
};

fn reply(status: u16) -> Reply {
    Reply {
        status,
        retry_after: None,
    }
}

struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Delivery>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Answers with `script` in order, then with `then` for ever.
    async fn start(script: Vec<Reply>, then: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hooks/aro", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(Mutex::new(VecDeque::from(script)));
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let (seen, replies) = (seen.clone(), replies.clone());
                    tokio::spawn(async move {
                        let _ = serve_one(socket, seen, replies, then).await;
                    });
                }
            })
        };
        Self { url, seen, task }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seen = self.deliveries();
            if seen.len() >= count {
                return seen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} deliveries, got {}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Reads one HTTP/1.1 request, records it, answers and closes.
async fn serve_one(
    mut socket: TcpStream,
    seen: Arc<Mutex<Vec<Delivery>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    then: Reply,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: BTreeMap<String, String> = head
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let answer = replies.lock().unwrap().pop_front().unwrap_or(then);
    seen.lock().unwrap().push(Delivery { headers, body });
    let extra = answer
        .retry_after
        .map(|v| format!("retry-after: {v}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n{extra}\r\n",
        answer.status
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

// ----- the independent signature check -----

/// The interpreter with `standardwebhooks` installed (scripts/test.sh exports it).
fn test_python() -> Option<String> {
    match std::env::var("ARO_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var("ARO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ARO_TEST_PYTHON is not set but the full suite is required (ARO_REQUIRE_POSTGRES=1)"
            );
            eprintln!(
                "skipping the Standard Webhooks reference check: ARO_TEST_PYTHON is not set \
                 (a Python with `pip install standardwebhooks`)"
            );
            None
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The reference implementation's verdict on each delivery, or `None` when it is unavailable.
async fn reference_verdicts(secret: &str, deliveries: &[Delivery]) -> Option<Vec<bool>> {
    let python = test_python()?;
    let input = json!({
        "secret": secret,
        "deliveries": deliveries
            .iter()
            .map(|d| json!({"headers": d.headers, "bodyHex": hex(&d.body)}))
            .collect::<Vec<_>>(),
    })
    .to_string();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/events/verify_standard_webhooks.py"
    );
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the reference checker starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write deliveries");
        child
            .wait_with_output()
            .expect("the reference checker ends")
    })
    .await
    .expect("join");
    assert!(
        output.status.success(),
        "reference checker failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdicts: Vec<Value> = serde_json::from_slice(&output.stdout).expect("verdicts");
    Some(verdicts.iter().map(|v| v["ok"] == true).collect())
}

/// Every delivery verifies with the reference implementation, and the same implementation
/// refuses a copy with one byte of the body changed and a copy checked with another secret.
async fn assert_signed(secret: &str, deliveries: &[Delivery]) {
    assert!(!deliveries.is_empty());
    let mut tampered = deliveries[0].clone();
    tampered.body.insert(1, b' ');
    let mut checked = deliveries.to_vec();
    checked.push(tampered);
    if let Some(verdicts) = reference_verdicts(secret, &checked).await {
        let (genuine, forged) = verdicts.split_at(deliveries.len());
        assert!(genuine.iter().all(|ok| *ok), "verdicts: {verdicts:?}");
        assert_eq!(forged, [false], "a changed body must not verify");
    }
    let other = aro_security::signatures::standard_webhooks::generate_secret();
    if let Some(verdicts) = reference_verdicts(&other, &deliveries[..1]).await {
        assert_eq!(verdicts, [false], "another secret must not verify");
    }
}

// ----- paging -----

both_engines!(
    events_page_by_seq_within_the_callers_tenant,
    |db| async move {
        let Some(setup) = Setup::new(db).await else {
            return;
        };
        let mut mine = Vec::new();
        for i in 0..7 {
            let kind = if i % 3 == 0 {
                EventType::MessageSent
            } else {
                EventType::AppointmentBooked
            };
            mine.push(setup.append(A, kind, &format!("apt_{}", i % 2)).await);
            setup.append(B, EventType::MessageSent, "apt_b").await;
        }
        let token_a = reader(A);

        // Defaults: everything after 0, in seq order, only tenant A.
        let (status, page) = setup.get("/v1/events", &token_a, A).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(seqs(&page), mine);
        assert_eq!(page["nextAfter"], json!(mine[6]));
        let first = &page["events"][0];
        assert_eq!(first["tenantId"], A);
        assert_eq!(first["eventType"], "message.sent");
        assert_eq!(
            first["aggregate"],
            json!({"type": "appointment", "id": "apt_0"})
        );
        assert_eq!(first["profile"], "healthcare");
        for key in ["eventId", "occurredAt", "payload", "metadata"] {
            assert!(first.get(key).is_some(), "{key} in {first}");
        }

        // Paging with limit=3 walks the same list, once, ending on an empty page.
        let mut walked = Vec::new();
        let mut after = 0;
        loop {
            let (status, page) = setup
                .get(&format!("/v1/events?after={after}&limit=3"), &token_a, A)
                .await;
            assert_eq!(status, 200);
            let got = seqs(&page);
            assert!(got.len() <= 3);
            if got.is_empty() {
                assert_eq!(
                    page["nextAfter"],
                    json!(after),
                    "an empty page keeps `after`"
                );
                break;
            }
            assert_eq!(page["nextAfter"], json!(got[got.len() - 1]));
            walked.extend(got);
            after = page["nextAfter"].as_i64().unwrap();
        }
        assert_eq!(walked, mine);

        // Filters.
        let (_, page) = setup
            .get("/v1/events?eventType=message.sent", &token_a, A)
            .await;
        assert_eq!(seqs(&page), vec![mine[0], mine[3], mine[6]]);
        let (_, page) = setup.get("/v1/events?aggregateId=apt_1", &token_a, A).await;
        assert_eq!(seqs(&page), vec![mine[1], mine[3], mine[5]]);
        let (_, page) = setup
            .get(
                &format!(
                    "/v1/events?after={}&eventType=appointment.booked&aggregateId=apt_0",
                    mine[0]
                ),
                &token_a,
                A,
            )
            .await;
        assert_eq!(seqs(&page), vec![mine[2], mine[4]]);

        // Tenant B sees only its own events.
        let (_, page) = setup.get("/v1/events", &reader(B), B).await;
        let theirs = seqs(&page);
        assert_eq!(theirs.len(), 7);
        assert!(theirs.iter().all(|s| !mine.contains(s)));

        // Validation names the parameter.
        for (query, field) in [
            ("limit=0", "query.limit"),
            ("limit=1001", "query.limit"),
            ("limit=lots", "query.limit"),
            ("after=-1", "query.after"),
            ("eventType=appointment.teleported", "query.eventType"),
        ] {
            let (status, body) = setup.get(&format!("/v1/events?{query}"), &token_a, A).await;
            assert_eq!(status, 422, "{query}: {body}");
            assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
            assert_eq!(body["error"]["details"]["field"], field, "{query}");
        }
        let (status, page) = setup.get("/v1/events?limit=1000", &token_a, A).await;
        assert_eq!(status, 200);
        assert_eq!(seqs(&page), mine);

        // Authentication and authorisation.
        let resp = setup
            .client
            .get(setup.url("/v1/events"))
            .header("x-tenant-id", A)
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(resp).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "MISSING_TOKEN");
        let (status, body) = setup.get("/v1/events", &reader(B), A).await;
        assert_eq!(status, 403, "a token for another tenant: {body}");
        let writer = token(&[A], &[Scope::CommandsWrite]);
        let (status, body) = setup.get("/v1/events", &writer, A).await;
        assert_eq!(status, 403, "a token without events:read: {body}");
        assert_eq!(body["error"]["code"], "INSUFFICIENT_SCOPE");
    }
);

// ----- Server-Sent Events -----

#[derive(Debug)]
struct SseMessage {
    id: String,
    event: String,
    data: Value,
}

struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    async fn open(setup: &Setup, query: &str, last_event_id: Option<i64>) -> Self {
        let mut request = setup
            .client
            .get(setup.url(&format!("/v1/events/stream{query}")))
            .bearer_auth(reader(A))
            .header("x-tenant-id", A);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let resp = request.send().await.expect("stream request");
        assert_eq!(resp.status().as_u16(), 200);
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next message with data (keep-alive comments are skipped).
    async fn next(&mut self) -> SseMessage {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return SseMessage {
                    id,
                    event,
                    data: serde_json::from_str(&data).expect("data is JSON"),
                };
            }
            let chunk = tokio::time::timeout(PATIENCE, self.resp.chunk())
                .await
                .expect("the stream sends an event")
                .expect("the stream is readable")
                .expect("the stream is still open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

both_engines!(
    stream_resumes_after_a_dropped_connection_with_every_seq_once,
    |db| async move {
        let Some(setup) = Setup::new(db).await else {
            return;
        };
        for i in 0..5 {
            setup
                .append(A, EventType::AppointmentBooked, &format!("apt_{i}"))
                .await;
            setup.append(B, EventType::AppointmentBooked, "apt_b").await;
        }

        let mut received = Vec::new();
        let mut stream = SseReader::open(&setup, "", None).await;
        for _ in 0..3 {
            let message = stream.next().await;
            assert_eq!(message.event, "appointment.booked");
            assert_eq!(message.data["tenantId"], A);
            assert_eq!(
                message.id,
                message.data["seq"].to_string(),
                "id: is the seq"
            );
            received.push(message.data["seq"].as_i64().unwrap());
        }
        drop(stream); // mid-stream: two events are still unread

        for i in 5..9 {
            setup
                .append(A, EventType::MessageSent, &format!("apt_{i}"))
                .await;
            setup.append(B, EventType::MessageSent, "apt_b").await;
        }
        let last_seen = *received.last().unwrap();
        let mut stream = SseReader::open(&setup, "?after=0", Some(last_seen)).await;
        for _ in 0..6 {
            let message = stream.next().await;
            assert_eq!(message.data["tenantId"], A);
            assert_eq!(message.event, message.data["eventType"].as_str().unwrap());
            received.push(message.data["seq"].as_i64().unwrap());
        }

        let (_, page) = setup.get("/v1/events", &reader(A), A).await;
        assert_eq!(received, seqs(&page), "every seq exactly once, in order");
    }
);

both_engines!(
    stream_tails_events_appended_after_connecting,
    |db| async move {
        let Some(setup) = Setup::new(db).await else {
            return;
        };
        let old = setup.append(A, EventType::MessageSent, "apt_old").await;
        let mut stream = SseReader::open(
            &setup,
            &format!("?after={old}&eventType=message.sent"),
            None,
        )
        .await;
        setup.append(B, EventType::MessageSent, "apt_b").await;
        setup.append(A, EventType::AppointmentBooked, "apt_1").await;
        let wanted = setup.append(A, EventType::MessageSent, "apt_1").await;
        let message = stream.next().await;
        assert_eq!(message.data["seq"], json!(wanted), "{:?}", message);
        assert_eq!(message.event, "message.sent");

        let (status, body) = setup
            .get("/v1/events/stream?eventType=nope", &reader(A), A)
            .await;
        assert_eq!(status, 422, "{body}");
        let resp = setup
            .client
            .get(setup.url("/v1/events/stream"))
            .bearer_auth(reader(A))
            .header("x-tenant-id", A)
            .header("last-event-id", "not-a-seq")
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(resp).await;
        assert_eq!(status, 422);
        assert_eq!(body["error"]["details"]["field"], "header.Last-Event-ID");
        let (status, _) = setup.get("/v1/events/stream", &reader(B), A).await;
        assert_eq!(status, 403);
    }
);

// ----- subscriptions -----

both_engines!(
    subscriptions_are_created_listed_and_deleted_per_tenant,
    |db| async move {
        let Some(setup) = Setup::new(db).await else {
            return;
        };
        let head = setup.append(A, EventType::AppointmentBooked, "apt_1").await;
        let token_a = reader(A);
        let (status, created) = setup
            .post(
                "/v1/subscriptions",
                &token_a,
                A,
                json!({"url": "https://hooks.example.org/aro", "eventTypes": ["message.sent"],
                   "description": "CRM sync"}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("sub_"), "{id}");
        assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
        assert_eq!(created["status"], "active");
        assert_eq!(created["eventTypes"], json!(["message.sent"]));
        assert_eq!(
            created["cursor"],
            json!(head),
            "new subscriptions start at the log's end"
        );
        assert!(created["createdAt"].is_string());

        let (status, fetched) = setup
            .get(&format!("/v1/subscriptions/{id}"), &token_a, A)
            .await;
        assert_eq!(status, 200);
        assert_eq!(fetched["url"], "https://hooks.example.org/aro");
        assert_eq!(fetched["description"], "CRM sync");
        assert!(fetched.get("secret").is_none(), "the secret is shown once");
        let (_, list) = setup.get("/v1/subscriptions", &token_a, A).await;
        assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1);
        assert!(list["subscriptions"][0].get("secret").is_none());

        // Another tenant neither sees nor touches it.
        let token_b = reader(B);
        let (_, list) = setup.get("/v1/subscriptions", &token_b, B).await;
        assert_eq!(list["subscriptions"], json!([]));
        let (status, body) = setup
            .get(&format!("/v1/subscriptions/{id}"), &token_b, B)
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "NOT_FOUND");
        let (status, _) = setup
            .post(
                &format!("/v1/subscriptions/{id}/replay"),
                &token_b,
                B,
                json!({"fromSeq": 1}),
            )
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            setup
                .delete(&format!("/v1/subscriptions/{id}"), &token_b, B)
                .await,
            404
        );
        let (status, _) = setup
            .get(&format!("/v1/subscriptions/{id}"), &token_b, A)
            .await;
        assert_eq!(status, 403);
        let writer = token(&[A], &[Scope::CommandsWrite]);
        let (status, _) = setup.get("/v1/subscriptions", &writer, A).await;
        assert_eq!(status, 403);
        let resp = setup
            .client
            .post(setup.url("/v1/subscriptions"))
            .header("x-tenant-id", A)
            .json(&json!({"url": "https://hooks.example.org/x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);

        // Validation.
        for (body, field) in [
            (json!({"url": "ftp://hooks.example.org/aro"}), "url"),
            (
                json!({"url": "https://user:secret@hooks.example.org/"}),
                "url",
            ),
            (
                json!({"url": "https://hooks.example.org/", "eventTypes": ["nope"]}),
                "eventTypes[0]",
            ),
        ] {
            let (status, answer) = setup.post("/v1/subscriptions", &token_a, A, body).await;
            assert_eq!(status, 422, "{answer}");
            assert_eq!(answer["error"]["details"]["field"], field);
        }
        for body in [
            json!({}),
            json!({"fromSeq": 1, "fromTime": "2030-01-01T00:00:00Z"}),
        ] {
            let (status, _) = setup
                .post(&format!("/v1/subscriptions/{id}/replay"), &token_a, A, body)
                .await;
            assert_eq!(status, 422);
        }

        assert_eq!(
            setup
                .delete(&format!("/v1/subscriptions/{id}"), &token_a, A)
                .await,
            204
        );
        let (status, _) = setup
            .get(&format!("/v1/subscriptions/{id}"), &token_a, A)
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            setup
                .delete(&format!("/v1/subscriptions/{id}"), &token_a, A)
                .await,
            404
        );
    }
);

both_engines!(
    deliveries_are_signed_per_standard_webhooks_in_seq_order,
    |db| async move {
        let Some(setup) = Setup::new(db).await else {
            return;
        };
        let receiver = Receiver::start(Vec::new(), OK).await;
        let (id, secret) = setup
            .subscribe(
                &reader(A),
                &receiver.url,
                &["appointment.booked", "message.sent"],
            )
            .await;
        let mut wanted = Vec::new();
        for i in 0..3 {
            wanted.push(
                setup
                    .append(A, EventType::AppointmentBooked, &format!("apt_{i}"))
                    .await,
            );
            setup.append(B, EventType::AppointmentBooked, "apt_b").await;
        }
        let skipped = setup.append(A, EventType::ConsentGranted, "apt_x").await;
        for i in 3..5 {
            wanted.push(
                setup
                    .append(A, EventType::MessageSent, &format!("apt_{i}"))
                    .await,
            );
        }

        // core's own delivery loop picks them up.
        let deliveries = receiver.wait_for(wanted.len()).await;
        let delivered: Vec<i64> = deliveries.iter().map(Delivery::seq).collect();
        assert_eq!(delivered, wanted, "in seq order, filtered, once each");
        assert!(!delivered.contains(&skipped));
        for d in &deliveries {
            let event = d.json();
            assert_eq!(event["tenantId"], A);
            assert_eq!(d.header("webhook-id"), event["eventId"].as_str().unwrap());
            assert_eq!(d.header("content-type"), "application/json");
            assert!(d.header("webhook-signature").starts_with("v1,"));
            assert!(d.header("webhook-timestamp").parse::<i64>().is_ok());
        }
        assert_signed(&secret, &deliveries).await;

        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (_, view) = setup
                .get(&format!("/v1/subscriptions/{id}"), &reader(A), A)
                .await;
            if view["cursor"] == json!(wanted[4]) {
                assert_eq!(view["failureCount"], 0);
                assert!(view["lastSuccessAt"].is_string());
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "cursor never reached the end: {view}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
);

both_engines!(
    a_retry_keeps_the_webhook_id_and_is_signed_again,
    |db| async move {
        let Some(mut setup) = Setup::new(db).await else {
            return;
        };
        let receiver = Receiver::start(vec![reply(500)], OK).await;
        let (id, secret) = setup.subscribe(&reader(A), &receiver.url, &[]).await;
        setup.stop_core().await;
        let worker = DeliveryWorker::new(setup.store.clone(), test_settings()).unwrap();
        let seq = setup
            .append(A, EventType::AppointmentConfirmed, "apt_1")
            .await;

        assert_eq!(worker.claim_and_run_once().await.unwrap(), 1);
        let failed = setup.subscription(A, &id).await;
        assert_eq!(failed.failure_count, 1);
        assert_eq!(failed.last_error.as_deref(), Some("http status 500"));
        assert!(
            failed.cursor < seq,
            "a failed delivery does not move the cursor"
        );

        sleep_until(failed.next_attempt_at).await;
        assert_eq!(worker.claim_and_run_once().await.unwrap(), 1);
        let delivered = setup.subscription(A, &id).await;
        assert_eq!(delivered.cursor, seq);
        assert_eq!(delivered.failure_count, 0);
        assert_eq!(delivered.failing_since, None);

        let deliveries = receiver.deliveries();
        assert_eq!(deliveries.len(), 2);
        assert_eq!(
            deliveries[0].header("webhook-id"),
            deliveries[1].header("webhook-id")
        );
        assert_eq!(deliveries[0].body, deliveries[1].body);
        assert_signed(&secret, &deliveries).await;
        assert_eq!(
            worker.claim_and_run_once().await.unwrap(),
            0,
            "nothing left to deliver"
        );
    }
);

both_engines!(
    failed_deliveries_back_off_exponentially_up_to_the_cap,
    |db| async move {
        let Some(mut setup) = Setup::new(db).await else {
            return;
        };
        let receiver = Receiver::start(Vec::new(), reply(503)).await;
        let (id, _) = setup.subscribe(&reader(A), &receiver.url, &[]).await;
        setup.stop_core().await;
        let worker = DeliveryWorker::new(setup.store.clone(), test_settings()).unwrap();
        setup.append(A, EventType::AppointmentBooked, "apt_1").await;

        // base 10 ms doubling, capped at 40 ms; the test jitter takes each window's upper bound.
        let mut waits = Vec::new();
        let mut first_failure = None;
        for attempt in 1..=4 {
            assert_eq!(
                worker.claim_and_run_once().await.unwrap(),
                1,
                "attempt {attempt}"
            );
            let s = setup.subscription(A, &id).await;
            assert_eq!(s.failure_count, attempt);
            assert_eq!(s.status, SubscriptionStatus::Active);
            let attempted = s.last_attempt_at.expect("attempt recorded");
            waits.push((s.next_attempt_at - attempted).num_milliseconds());
            first_failure.get_or_insert(s.failing_since.expect("failing since"));
            assert_eq!(s.failing_since, first_failure, "the streak keeps its start");
            sleep_until(s.next_attempt_at).await;
        }
        assert_eq!(waits, [10, 20, 40, 40]);
        let ids: Vec<String> = receiver
            .deliveries()
            .iter()
            .map(|d| d.header("webhook-id").to_owned())
            .collect();
        assert_eq!(ids.len(), 4);
        assert!(
            ids.iter().all(|i| *i == ids[0]),
            "one webhook-id for every retry"
        );
    }
);

both_engines!(
    retry_after_from_the_receiver_sets_the_next_attempt,
    |db| async move {
        let Some(mut setup) = Setup::new(db).await else {
            return;
        };
        let busy = Reply {
            status: 503,
            retry_after: Some("120"),
        };
        let receiver = Receiver::start(vec![busy], OK).await;
        let (id, _) = setup.subscribe(&reader(A), &receiver.url, &[]).await;
        setup.stop_core().await;
        let worker = DeliveryWorker::new(setup.store.clone(), test_settings()).unwrap();
        setup.append(A, EventType::AppointmentBooked, "apt_1").await;

        assert_eq!(worker.claim_and_run_once().await.unwrap(), 1);
        let s = setup.subscription(A, &id).await;
        let attempted = s.last_attempt_at.unwrap();
        assert!(
            s.next_attempt_at >= attempted + chrono::Duration::seconds(120),
            "Retry-After 120 honoured: {} vs {attempted}",
            s.next_attempt_at
        );
        assert_eq!(worker.claim_and_run_once().await.unwrap(), 0, "not due yet");
        assert_eq!(receiver.deliveries().len(), 1);
    }
);

both_engines!(
    gone_disables_at_once_and_sustained_failure_disables_later,
    |db| async move {
        let Some(mut setup) = Setup::new(db).await else {
            return;
        };
        let gone = Receiver::start(Vec::new(), reply(410)).await;
        let failing = Receiver::start(Vec::new(), reply(500)).await;
        let (gone_id, _) = setup.subscribe(&reader(A), &gone.url, &[]).await;
        let (failing_id, _) = setup.subscribe(&reader(A), &failing.url, &[]).await;
        setup.stop_core().await;
        let settings = DeliverySettings {
            disable_after: Duration::ZERO,
            disable_min_failures: 3,
            ..test_settings()
        };
        let worker = DeliveryWorker::new(setup.store.clone(), settings).unwrap();
        setup.append(A, EventType::AppointmentBooked, "apt_1").await;

        assert_eq!(worker.claim_and_run_once().await.unwrap(), 2);
        let s = setup.subscription(A, &gone_id).await;
        assert_eq!(s.status, SubscriptionStatus::Disabled);
        assert_eq!(s.disabled_reason.as_deref(), Some("receiver_gone"));
        for _ in 0..2 {
            let s = setup.subscription(A, &failing_id).await;
            assert_eq!(s.status, SubscriptionStatus::Active);
            sleep_until(s.next_attempt_at).await;
            assert_eq!(
                worker.claim_and_run_once().await.unwrap(),
                1,
                "only the failing one"
            );
        }
        let s = setup.subscription(A, &failing_id).await;
        assert_eq!(s.failure_count, 3);
        assert_eq!(s.status, SubscriptionStatus::Disabled);
        assert_eq!(s.disabled_reason.as_deref(), Some("sustained_failure"));

        setup.append(A, EventType::AppointmentBooked, "apt_2").await;
        assert_eq!(
            worker.claim_and_run_once().await.unwrap(),
            0,
            "disabled ones are not claimed"
        );
        assert_eq!(gone.deliveries().len(), 1);
        assert_eq!(failing.deliveries().len(), 3);
    }
);

both_engines!(
    replay_redelivers_from_a_seq_or_a_time_and_reenables,
    |db| async move {
        let Some(setup) = Setup::new(db).await else {
            return;
        };
        // The first delivery is refused with 410, which disables the subscription.
        let receiver = Receiver::start(vec![reply(410)], OK).await;
        let token_a = reader(A);
        let (id, secret) = setup.subscribe(&token_a, &receiver.url, &[]).await;
        let t0 = Utc.with_ymd_and_hms(2030, 3, 1, 9, 0, 0).unwrap();
        let mut seqs = Vec::new();
        for i in 0..3 {
            let at = t0 + chrono::Duration::hours(i);
            seqs.push(
                setup
                    .append_at(A, EventType::AppointmentBooked, &format!("apt_{i}"), at)
                    .await,
            );
        }
        receiver.wait_for(1).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (_, view) = setup
                .get(&format!("/v1/subscriptions/{id}"), &token_a, A)
                .await;
            if view["status"] == "disabled" {
                assert_eq!(view["disabledReason"], "receiver_gone");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never disabled: {view}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let (status, view) = setup
            .post(
                &format!("/v1/subscriptions/{id}/replay"),
                &token_a,
                A,
                json!({"fromSeq": seqs[0]}),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["status"], "active");
        assert_eq!(view["cursor"], json!(seqs[0] - 1));
        let deliveries = receiver.wait_for(4).await;
        let delivered: Vec<i64> = deliveries.iter().map(Delivery::seq).collect();
        assert_eq!(delivered, [seqs[0], seqs[0], seqs[1], seqs[2]]);
        assert_eq!(
            deliveries[0].header("webhook-id"),
            deliveries[1].header("webhook-id")
        );

        // From a time: the events that occurred at or after it, again.
        let from = (t0 + chrono::Duration::hours(1)).to_rfc3339();
        let (status, view) = setup
            .post(
                &format!("/v1/subscriptions/{id}/replay"),
                &token_a,
                A,
                json!({"fromTime": from}),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        let deliveries = receiver.wait_for(6).await;
        let delivered: Vec<i64> = deliveries[4..].iter().map(Delivery::seq).collect();
        assert_eq!(delivered, [seqs[1], seqs[2]]);
        assert_signed(&secret, &deliveries).await;
    }
);

both_engines!(
    unwanted_event_types_are_skipped_without_a_delivery,
    |db| async move {
        let Some(mut setup) = Setup::new(db).await else {
            return;
        };
        let receiver = Receiver::start(Vec::new(), OK).await;
        let (id, _) = setup
            .subscribe(&reader(A), &receiver.url, &["message.sent"])
            .await;
        setup.stop_core().await;
        let worker = DeliveryWorker::new(setup.store.clone(), test_settings()).unwrap();
        setup.append(A, EventType::AppointmentBooked, "apt_1").await;
        let last = setup
            .append(A, EventType::AppointmentConfirmed, "apt_1")
            .await;

        assert_eq!(worker.claim_and_run_once().await.unwrap(), 0);
        let s = setup.subscription(A, &id).await;
        assert_eq!(
            s.cursor, last,
            "the cursor moves past events the filter refuses"
        );
        assert_eq!(s.failure_count, 0);

        let wanted = setup.append(A, EventType::MessageSent, "apt_1").await;
        assert_eq!(worker.claim_and_run_once().await.unwrap(), 1);
        let deliveries = receiver.deliveries();
        assert_eq!(
            deliveries.iter().map(Delivery::seq).collect::<Vec<_>>(),
            [wanted]
        );
    }
);

// ----- the lease -----

both_engines!(one_worker_at_a_time_holds_a_subscription, |db| async move {
    let Some(mut setup) = Setup::new(db).await else {
        return;
    };
    let (id, _) = setup
        .subscribe(&reader(A), "https://hooks.example.org/aro", &[])
        .await;
    setup.stop_core().await;
    setup.append(A, EventType::AppointmentBooked, "apt_1").await;

    let claim = |owner: &'static str| {
        let store = setup.store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.claim_subscriptions(owner, Utc::now(), Duration::from_secs(60), 10)
                            .await
                    })
                })
                .await
                .expect("claim")
        }
    };
    let (first, second) = tokio::join!(claim("worker-1"), claim("worker-2"));
    assert_eq!(
        first.len() + second.len(),
        1,
        "claimed by exactly one worker"
    );
    let (holder, other) = if first.is_empty() {
        ("worker-2", "worker-1")
    } else {
        ("worker-1", "worker-2")
    };
    assert!(
        claim(other).await.is_empty(),
        "a live lease is not taken over"
    );

    let save = |owner: &'static str, cursor: i64| {
        let store = setup.store.clone();
        let id = id.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let current = tx.get_subscription(A, &id).await?.expect("exists");
                        let state = DeliveryState {
                            cursor,
                            lease_until: Some(Utc::now() + chrono::Duration::seconds(60)),
                            ..DeliveryState::of(&current)
                        };
                        tx.save_delivery_state(A, &id, owner, &state, Utc::now())
                            .await
                    })
                })
                .await
                .expect("save")
        }
    };
    assert!(!save(other, 999).await, "only the lease holder writes");
    assert!(save(holder, 1).await);

    // A replay breaks the lease: the old holder can no longer move the cursor forward.
    let (replayed, id2) = (setup.store.clone(), id.clone());
    replayed
        .write(move |tx| {
            Box::pin(async move { tx.replay_subscription(A, &id2, 0, Utc::now()).await })
        })
        .await
        .expect("replay")
        .expect("found");
    assert!(
        !save(holder, 999).await,
        "the replay fenced the old holder out"
    );
    assert_eq!(setup.subscription(A, &id).await.cursor, 0);
    assert_eq!(
        claim(other).await.len(),
        1,
        "claimable again after the replay"
    );
});
