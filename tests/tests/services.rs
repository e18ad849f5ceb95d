//! Every app serves /health, /ready and /metrics, answers every error with the envelope, and
//! carries a request id end to end.

use aro_tests::*;
use serde_json::Value;

async fn json(resp: reqwest::Response) -> (u16, Value, Option<String>) {
    let status = resp.status().as_u16();
    let rid = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body, rid)
}

async fn assert_frame(base: &url::Url, service: &str) {
    let client = http();
    let (status, body, rid) = json(
        client
            .get(base.join("health").unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{service} /health");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["service"], service);
    assert!(rid.is_some(), "every response carries a request id");

    let (status, body, rid) = json(
        client
            .get(base.join("no/such/route").unwrap())
            .header("x-request-id", "caller-chosen-id-1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{service} unknown route");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert_eq!(body["error"]["retryable"], false);
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["details"].is_object());
    assert_eq!(
        body["requestId"], "caller-chosen-id-1",
        "an incoming request id is kept"
    );
    assert_eq!(rid.as_deref(), Some("caller-chosen-id-1"));

    let (status, body, rid) = json(
        client
            .post(base.join("health").unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405, "{service} wrong method");
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    assert_eq!(
        body["requestId"].as_str(),
        rid.as_deref(),
        "body and header agree"
    );

    let metrics = client
        .get(base.join("metrics").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(&format!("service=\"{service}\"")),
        "{service} /metrics is labelled by service:\n{text}"
    );
    assert!(text.contains("aro_http_requests_total"), "{text}");
}

async fn ready(base: &url::Url) -> (u16, Value) {
    let (status, body, _) = json(
        http()
            .get(base.join("ready").unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    (status, body)
}

both_engines!(all_four_apps_serve_the_shared_frame, |db| async move {
    let _ = aro_telemetry_install();
    let Some(mut env) = TestEnv::new(db).await else {
        return;
    };
    let core = start_core(&env).await;
    assert_frame(&core.url, "core-engine").await;
    let (status, body) = ready(&core.url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"][0]["name"], "database");
    // The event log's size, for operators watching it grow (ADR 0005): published by core's
    // timer worker as soon as it starts.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = http()
            .get(core.url.join("metrics").unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("aro_event_log_seq") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains("aro_event_log_seq{service=\"core-engine\"}"),
        "{metrics}"
    );

    env.config.services.core.url = core.url.clone();
    let executor = spawn_service(env.config.clone(), aro_openclaw_executor::run).await;
    let bff = spawn_service(env.config.clone(), aro_profile_backend_healthcare::run).await;
    env.config.services.ui.bff_url = bff.url.clone();
    let ui = spawn_service(env.config.clone(), aro_profile_ui_healthcare::run).await;
    for (svc, running) in [
        ("openclaw-executor", &executor),
        ("profile-backend-healthcare", &bff),
        ("profile-ui-healthcare", &ui),
    ] {
        assert_frame(&running.url, svc).await;
        let (status, body) = ready(&running.url).await;
        assert_eq!(status, 200, "{svc} ready: {body}");
    }

    let page = http().get(ui.url.clone()).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("ARO is running."));

    // Readiness follows dependencies: with core gone, the executor and BFF are not ready,
    // and the UI, which depends on the BFF, follows.
    core.stop().await;
    for (svc, running) in [
        ("openclaw-executor", &executor),
        ("profile-backend-healthcare", &bff),
        ("profile-ui-healthcare", &ui),
    ] {
        let (status, body) = ready(&running.url).await;
        assert_eq!(status, 503, "{svc} without core: {body}");
        assert_eq!(body["error"]["code"], "NOT_READY");
        assert_eq!(body["error"]["details"]["checks"][0]["ok"], false);
    }
    let page = http()
        .get(ui.url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("not ready"), "{page}");
    executor.stop().await;
    bff.stop().await;
    ui.stop().await;
});

both_engines!(core_is_not_ready_before_migrations, |db| async move {
    let Some(env) = TestEnv::new(db).await else {
        return;
    };
    // Start without migrating.
    let core = spawn_service(env.config.clone(), aro_core_engine::run).await;
    let (status, body) = ready(&core.url).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["details"]["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("pending")
    );
    core.stop().await;
});

fn aro_telemetry_install() -> bool {
    // The process-wide recorder, as a binary's main installs it.
    aro_telemetry::metrics().is_some()
}
