//! Fault injection, as ARO's clients experience it.

use crate::common::Bench;
use serde_json::{Value, json};
use std::time::Duration;

const PATIENT: &str = "+14155552671";

async fn set_fault(bench: &Bench, fault: Value) {
    let response = bench.post_json("/sandbox/faults", fault).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn http_503_fails_the_given_number_of_requests_with_twilios_body() {
    let bench = Bench::start().await;
    set_fault(
        &bench,
        json!({"provider": "twilio", "mode": "http_503", "forRequests": 2}),
    )
    .await;
    for _ in 0..2 {
        let response = bench.send_sms(PATIENT, "Reminder").await;
        assert_eq!(response.status(), 503);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 503);
        assert!(body["code"].is_u64());
    }
    assert!(
        bench.inbox(PATIENT).await.is_empty(),
        "nothing was sent during the outage"
    );
    assert_eq!(bench.send_sms(PATIENT, "Reminder").await.status(), 201);
    assert_eq!(bench.inbox(PATIENT).await.len(), 1);
}

#[tokio::test]
async fn http_429_advertises_retry_after_for_a_timed_fault() {
    let bench = Bench::start().await;
    set_fault(
        &bench,
        json!({"provider": "stripe", "mode": "http_429", "forSeconds": 30}),
    )
    .await;
    let response = bench
        .http
        .post(bench.url("/v1/prices"))
        .bearer_auth(bench.secrets.stripe.secret_key.expose())
        .form(&[
            ("unit_amount", "100"),
            ("currency", "usd"),
            ("product_data[name]", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit");
    // Other providers are unaffected.
    assert_eq!(bench.send_sms(PATIENT, "Reminder").await.status(), 201);
    let listed = bench.get_json("/sandbox/faults").await;
    assert_eq!(listed["faults"][0]["provider"], "stripe");
    assert_eq!(listed["faults"][0]["mode"], "http_429");
}

#[tokio::test]
async fn drop_closes_the_connection_without_an_answer_and_sends_nothing() {
    let bench = Bench::start().await;
    set_fault(
        &bench,
        json!({"provider": "twilio", "mode": "drop", "forRequests": 1}),
    )
    .await;
    let error = bench
        .send_sms_with(&bench.http, PATIENT, "Reminder", "default")
        .await
        .expect_err("the connection is dropped");
    assert!(!error.is_timeout(), "{error:?}");
    assert!(error.status().is_none(), "no HTTP answer at all: {error:?}");
    assert!(bench.inbox(PATIENT).await.is_empty());
}

#[tokio::test]
async fn accept_then_drop_sends_the_message_but_loses_the_answer() {
    let bench = Bench::start().await;
    set_fault(
        &bench,
        json!({"provider": "twilio", "mode": "accept_then_drop", "forRequests": 1}),
    )
    .await;
    let error = bench
        .send_sms_with(&bench.http, PATIENT, "Reminder", "default")
        .await
        .expect_err("the answer is lost");
    assert!(error.status().is_none(), "{error:?}");

    // The patient got it…
    let inbox = bench.inbox(PATIENT).await;
    assert_eq!(inbox.len(), 1);
    let sid = inbox[0]["id"].as_str().unwrap().to_owned();
    // …and the executor can find it through Twilio's list look-up.
    let today = chrono::Utc::now().date_naive();
    let list: Value = bench
        .http
        .get(format!(
            "{}?To=%2B14155552671&DateSent%3E={today}",
            bench.messages_url()
        ))
        .basic_auth(
            bench.account_sid(),
            Some(bench.secrets.twilio.auth_token.expose()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["messages"][0]["sid"], sid);
    assert_eq!(list["messages"][0]["body"], "Reminder");
    // Delivery goes on as for any accepted message.
    bench
        .wait_for("the delivered callback", |all| {
            all.iter()
                .find(|d| {
                    d.param("MessageSid") == Some(sid.as_str())
                        && d.param("MessageStatus") == Some("delivered")
                })
                .cloned()
        })
        .await;
}

#[tokio::test]
async fn slow_outlasts_a_client_timeout_and_answers_a_patient_client() {
    let bench = Bench::start_with(|settings| {
        settings.timing.slow_delay = Duration::from_millis(1500);
    })
    .await;
    set_fault(
        &bench,
        json!({"provider": "twilio", "mode": "slow", "forRequests": 2}),
    )
    .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let error = bench
        .send_sms_with(&impatient, PATIENT, "Reminder", "default")
        .await
        .expect_err("the client gives up first");
    assert!(error.is_timeout(), "{error:?}");

    let patient = bench
        .send_sms_with(&bench.http, PATIENT, "Reminder", "default")
        .await
        .unwrap();
    assert_eq!(patient.status(), 201);
    // The abandoned request was never performed: only the patient client's message exists.
    let inbox = bench.inbox(PATIENT).await;
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
}

#[tokio::test]
async fn faults_never_touch_the_sandbox_side_and_can_be_cleared() {
    let bench = Bench::start().await;
    for provider in ["twilio", "stripe", "calendly"] {
        set_fault(&bench, json!({"provider": provider, "mode": "http_503"})).await;
    }
    assert!(bench.inbox(PATIENT).await.is_empty());
    let reply = bench
        .post_json("/sandbox/reply", json!({"from": PATIENT, "body": "C"}))
        .await;
    assert_eq!(reply.status(), 200);
    assert_eq!(bench.send_sms(PATIENT, "x").await.status(), 503);

    let cleared: Value = bench
        .http
        .delete(bench.url("/sandbox/faults?provider=twilio"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["cleared"], 1);
    assert_eq!(bench.send_sms(PATIENT, "x").await.status(), 201);
    let cleared: Value = bench
        .http
        .delete(bench.url("/sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["cleared"], 2);
    assert!(
        bench.get_json("/sandbox/faults").await["faults"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_fault_request_is_validated() {
    let bench = Bench::start().await;
    for (body, field) in [
        (
            json!({"provider": "twilio", "mode": "http_503", "forSeconds": 5, "forRequests": 1}),
            "forRequests",
        ),
        (
            json!({"provider": "twilio", "mode": "http_503", "forSeconds": 0}),
            "forSeconds",
        ),
        (
            json!({"provider": "twilio", "mode": "http_503", "forRequests": 0}),
            "forRequests",
        ),
        (
            json!({"provider": "acuity", "mode": "http_503"}),
            "provider",
        ),
        (json!({"provider": "twilio", "mode": "explode"}), "mode"),
    ] {
        let response = bench.post_json("/sandbox/faults", body).await;
        assert_eq!(response.status(), 422);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["details"]["field"], field);
    }
}
