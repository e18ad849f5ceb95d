//! The sandbox tested from outside, over real HTTP on loopback: what ARO's clients get from the
//! provider side, and what core receives (signatures verified with aro-security) when a tester
//! drives the sandbox side.

mod accounts;
mod aro_parsers;
mod calendly;
mod common;
mod faults;
mod schemas;
mod stripe;
mod twilio;

use common::Bench;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn the_sandbox_serves_health_readiness_and_the_error_envelope() {
    let bench = Bench::start().await;
    let health = bench.get_json("/health").await;
    assert_eq!(health["service"], "sandbox");
    assert_eq!(bench.get_json("/ready").await["status"], "ready");
    let missing = bench.http.get(bench.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn shutting_down_releases_a_request_held_by_the_slow_fault() {
    let bench = Bench::start_with(|settings| {
        // Far longer than the test's patience: only cancellation can end it.
        settings.timing.slow_delay = Duration::from_secs(3600);
    })
    .await;
    let response = bench
        .post_json(
            "/sandbox/faults",
            json!({"provider": "twilio", "mode": "slow", "forRequests": 1}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let held = {
        let client = bench.http.clone();
        let url = bench.messages_url();
        let auth = (
            bench.account_sid().to_owned(),
            bench.secrets.twilio.auth_token.expose().to_owned(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .basic_auth(auth.0, Some(auth.1))
                .form(&[
                    ("To", "+14155552671"),
                    ("From", "+15005550006"),
                    ("Body", "x"),
                ])
                .send()
                .await
        })
    };
    // The fault is used up once the request is being held: shut down only then.
    bench
        .eventually(
            "the request to be held",
            || bench.get_json("/sandbox/faults"),
            |listed| listed["faults"].as_array().is_some_and(Vec::is_empty),
        )
        .await;
    bench.stop().await.expect("run returns cleanly");
    let answer = held
        .await
        .unwrap()
        .expect("the held request is answered, not cut off");
    assert_eq!(answer.status(), 503);
}
