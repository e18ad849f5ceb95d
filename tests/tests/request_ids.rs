//! One request id follows a request: onto every log line written while it is served, inside
//! instrumented handlers too, and into the requests it makes to the next service.
//!
//! The services run in this process with the JSON log format the binaries use, written into
//! memory; tests running side by side tell their lines apart by the ids they send.

use aro_config::{ProvidersConfig, SandboxSecrets};
use aro_telemetry::LogStyle;
use aro_tests::*;
use axum::extract::Request;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::net::TcpListener;
use url::Url;

/// What the services logged, as the binaries log it (JSON lines), kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().expect("log lock").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"))
            })
            .collect()
    }

    fn lines_where(&self, key: &str, value: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|line| line[key] == value)
            .collect()
    }
}

/// The process's log subscriber, installed once for all the tests of this file.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let installed =
            aro_telemetry::init_logging_to("info", LogStyle::Json, move || writer.clone());
        assert!(installed, "no other log subscriber in this test binary");
        captured
    })
}

fn messages(lines: &[Value]) -> Vec<&str> {
    lines.iter().filter_map(|l| l["message"].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_logged_inside_instrumented_handlers_carry_the_request_id() {
    let logs = logs();
    let Some(mut env) = TestEnv::new(Db::Sqlite).await else {
        return;
    };
    let secrets = SandboxSecrets::generate(&Url::parse("http://127.0.0.1:9/").expect("url"));
    env.config.providers = ProvidersConfig {
        twilio: None,
        stripe: Some(secrets.stripe),
        calendly: None,
    };
    let core = start_core(&env).await;
    create_tenant(&core, "rid-clinic").await;

    // A handler with `#[tracing::instrument]` that logs what it did.
    let answer = http()
        .post(core.url.join("v1/subscriptions").expect("url"))
        .bearer_auth(token(&["events:read"], &["rid-clinic"]))
        .header("x-tenant-id", "rid-clinic")
        .header("x-request-id", "rid-subscribe-1")
        .json(&json!({"url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
        .expect("create subscription");
    assert_eq!(answer.status().as_u16(), 201);
    let created: Value = answer.json().await.expect("JSON answer");

    let lines = logs.lines_where("request_id", "rid-subscribe-1");
    assert_eq!(
        messages(&lines),
        ["subscription created", "request served"],
        "{lines:#?}"
    );
    let inside = &lines[0];
    assert_eq!(inside["span"], "create_subscription", "{inside}");
    assert_eq!(inside["tenant"], "rid-clinic");
    assert_eq!(inside["subscription"], created["id"]);
    assert_eq!(inside["service"], "core-engine");
    assert_eq!(inside["route"], "/v1/subscriptions");
    assert_eq!(lines[1]["status"], 201);
    let handler_lines = logs.lines_where("span", "create_subscription");
    assert!(
        handler_lines.iter().all(|l| l["request_id"].is_string()),
        "every line of the handler names its request: {handler_lines:#?}"
    );

    // A refused webhook: the warning is written deep inside the instrumented receiver.
    let refused = http()
        .post(core.url.join("v1/webhooks/stripe/rid-clinic").expect("url"))
        .header("stripe-signature", "t=1,v1=00")
        .header("x-request-id", "rid-webhook-1")
        .body("{}")
        .send()
        .await
        .expect("webhook");
    assert_eq!(refused.status().as_u16(), 401);
    let lines = logs.lines_where("request_id", "rid-webhook-1");
    assert_eq!(
        messages(&lines),
        ["webhook signature refused", "request served"],
        "{lines:#?}"
    );
    assert_eq!(lines[0]["span"], "receive", "{}", lines[0]);
    assert_eq!(lines[0]["provider"], "stripe");
    assert_eq!(lines[0]["route"], "/v1/webhooks/stripe/{tenant_id}");
    assert_eq!(lines[1]["status"], 401);

    // No id sent: the minted one, which the answer carries, is on the lines.
    let answer = http()
        .get(core.url.join("v1/subscriptions").expect("url"))
        .bearer_auth(token(&["events:read"], &["rid-clinic"]))
        .header("x-tenant-id", "rid-clinic")
        .send()
        .await
        .expect("list subscriptions");
    assert_eq!(answer.status().as_u16(), 200);
    let minted = answer.headers()["x-request-id"]
        .to_str()
        .expect("ASCII id")
        .to_owned();
    let lines = logs.lines_where("request_id", &minted);
    assert_eq!(messages(&lines), ["request served"], "{lines:#?}");
    core.stop().await;
}

/// What a stand-in core received: each request's path and `X-Request-Id`.
type Received = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A stand-in for core: `/ready` answers 200, a claim finds no work, and every request's id
/// is kept.
async fn recording_core() -> (Url, Received, aro_http::CancellationToken) {
    let received: Received = Arc::default();
    let record = received.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        let record = record.clone();
        async move {
            let path = request.uri().path().to_owned();
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            record.lock().expect("record lock").push((path.clone(), id));
            match path.as_str() {
                "/ready" => axum::Json(json!({"status": "ready"})),
                "/v1/executions/claim" => axum::Json(json!({"executions": []})),
                _ => axum::Json(json!({})),
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url =
        Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
    let stop = aro_http::CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
    });
    (url, received, stop)
}

fn ids_for(received: &Received, path: &str) -> Vec<Option<String>> {
    received
        .lock()
        .expect("record lock")
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, id)| id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_sent_to_the_ui_reaches_the_bff_and_core() {
    let logs = logs();
    let Some(mut env) = TestEnv::new(Db::Sqlite).await else {
        return;
    };
    let (core_url, received, stop_core) = recording_core().await;
    env.config.services.core.url = core_url;
    let bff = spawn_service(env.config.clone(), aro_profile_backend_healthcare::run).await;
    env.config.services.ui.bff_url = bff.url.clone();
    let ui = spawn_service(env.config.clone(), aro_profile_ui_healthcare::run).await;
    let executor = spawn_service(env.config.clone(), aro_openclaw_executor::run).await;

    // UI /ready → BFF /ready → core /ready, one id all the way.
    let answer = http()
        .get(ui.url.join("ready").expect("url"))
        .header("x-request-id", "rid-chain-1")
        .send()
        .await
        .expect("UI ready");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        ids_for(&received, "/ready"),
        [Some("rid-chain-1".to_owned())]
    );

    // The start page checks the same chain, under the page's request id.
    let page = http()
        .get(ui.url.clone())
        .header("x-request-id", "rid-page-1")
        .send()
        .await
        .expect("UI page");
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(
        ids_for(&received, "/ready").last(),
        Some(&Some("rid-page-1".to_owned()))
    );
    let served = logs.lines_where("request_id", "rid-page-1");
    assert_eq!(messages(&served), ["request served"], "{served:#?}");
    assert_eq!(served[0]["service"], "profile-ui-healthcare");
    assert_eq!(served[0]["route"], "/");

    // The executor's readiness asks core under the probe's id too.
    let answer = http()
        .get(executor.url.join("ready").expect("url"))
        .header("x-request-id", "rid-executor-1")
        .send()
        .await
        .expect("executor ready");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        ids_for(&received, "/ready").last(),
        Some(&Some("rid-executor-1".to_owned()))
    );

    executor.stop().await;
    ui.stop().await;
    bff.stop().await;
    // Everything the executor asked core on its own (claims) carried an id of its own.
    let claims = ids_for(&received, "/v1/executions/claim");
    assert!(claims.iter().all(Option::is_some), "{claims:?}");
    stop_core.cancel();
}
