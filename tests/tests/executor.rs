//! openclaw-executor end to end: a real core on SQLite and PostgreSQL, the real provider
//! sandbox, and the executor, all on loopback. Reminders are produced by core's own workflow
//! (bookings through the Command API, business time moved with the sandbox clock) and counted
//! where a patient would see them: the sandbox's phone.
//!
//! The crash drill, which needs the executor as a separate process, lives with the executor
//! (`apps/openclaw-executor/tests/crash_drill.rs`) and shares this drill ground.

#[path = "../../apps/openclaw-executor/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use aro_openclaw_executor::core::ClaimedExecution;
use aro_openclaw_executor::handlers;
use aro_openclaw_executor::outcome::Outcome;
use aro_openclaw_executor::providers::{self, Providers};
use aro_security::tokens::Scope;
use aro_tests::both_engines;
use serde_json::{Value, json};
use support::{Drill, drill_tuning, per_recipient, phones, wait_until};

/// The message ids core recorded as sent, by provider reference.
fn sent_refs(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["payload"]["providerRef"].as_str().map(str::to_owned))
        .collect()
}

both_engines!(
    reminders_leave_through_the_executor_and_come_back_as_sent,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        let (worker, _executor) = drill.start_executor().await;
        let numbers = phones(3);
        drill.book_many("default", &numbers, 50).await;
        drill.advance("3h").await;
        wait_until(
            Duration::from_secs(30),
            "three reminders are recorded as sent",
            || async { drill.events("default", "message.sent").await.len() == 3 },
        )
        .await;
        let messages = drill.messages(None).await;
        assert_eq!(messages.len(), 3, "{messages:?}");
        let mut sids: Vec<String> = messages
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        let mut refs = sent_refs(&drill.events("default", "message.sent").await);
        sids.sort();
        refs.sort();
        assert_eq!(sids, refs, "core records the SID Twilio gave each message");
        assert!(
            messages
                .iter()
                .all(|m| m["body"].as_str().unwrap_or("").starts_with("Hi Pat"))
        );
        assert_eq!(worker.stats().succeeded, 3);
    }
);

both_engines!(
    an_execution_the_tenant_does_not_permit_is_never_performed,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        // A clinic that lets the executor create payment links but not send texts.
        drill
            .create_tenant("closed", Some(&["payments.generate_deposit_link"]))
            .await;
        let (worker, _executor) = drill.start_executor().await;
        drill
            .book("closed", "https://x.example/i/closed", "+14155550171", 50)
            .await;
        drill
            .book("default", "https://x.example/i/open", "+14155550172", 50)
            .await;
        drill.advance("3h").await;
        wait_until(
            Duration::from_secs(30),
            "the refused reminder is recorded",
            || async {
                !drill
                    .events("closed", "message.delivery_failed")
                    .await
                    .is_empty()
            },
        )
        .await;
        let failed = drill.events("closed", "message.delivery_failed").await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["payload"]["errorCode"], "PERMISSION_DENIED");
        assert!(
            drill.messages(Some("+14155550171")).await.is_empty(),
            "never performed"
        );
        assert!(drill.events("closed", "message.sent").await.is_empty());
        // The permitted tenant's reminder went out as usual.
        wait_until(
            Duration::from_secs(30),
            "the permitted reminder is sent",
            || async { drill.messages(Some("+14155550172")).await.len() == 1 },
        )
        .await;
        let stats = worker.stats();
        assert_eq!(stats.failed_permanent, 1, "{stats:?}");
        assert_eq!(stats.claimed, 2, "the refusal was final: {stats:?}");
    }
);

both_engines!(
    a_token_that_cannot_read_permissions_refuses_nothing_for_good,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        // A hand-made token with the claim scope but without `events:read`.
        let mut config = drill.config();
        config.services.executor.core_token = Some(aro_config::Secret::new(support::token(&[
            Scope::ExecutionsClaim,
        ])));
        let (worker, _executor) = drill.start_executor_with(config).await;
        drill
            .book("default", "https://x.example/i/scope", "+14155550166", 50)
            .await;
        drill.advance("3h").await;
        wait_until(
            Duration::from_secs(30),
            "the execution was put back",
            || async { worker.stats().failed_retryable >= 1 },
        )
        .await;
        assert_eq!(
            worker.stats().failed_permanent,
            0,
            "nothing refused for good"
        );
        assert!(
            drill
                .events("default", "message.delivery_failed")
                .await
                .is_empty()
        );
        assert!(
            drill.messages(Some("+14155550166")).await.is_empty(),
            "and nothing sent"
        );
    }
);

both_engines!(
    outage_drill_delivers_every_reminder_exactly_once,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        let (worker, _executor) = drill.start_executor().await;
        let numbers = phones(200);
        drill.book_many("default", &numbers, 50).await;

        // Twilio goes down for two seconds of real time once the batch is under way.
        let outage =
            {
                let http = drill.http.clone();
                let sandbox = drill.sandbox.url.clone();
                tokio::spawn(async move {
                    let started = tokio::time::Instant::now();
                    loop {
                        let body: Value = http
                            .get(sandbox.join("sandbox/messages").expect("url"))
                            .send()
                            .await
                            .expect("messages")
                            .json()
                            .await
                            .expect("json");
                        let seen = body["messages"].as_array().map_or(0, Vec::len);
                        if seen >= 30 {
                            let resp = http
                        .post(sandbox.join("sandbox/faults").expect("url"))
                        .json(&json!({"provider": "twilio", "mode": "http_503", "forSeconds": 2}))
                        .send()
                        .await
                        .expect("fault");
                            assert!(resp.status().is_success());
                            return seen;
                        }
                        assert!(
                            started.elapsed() < Duration::from_secs(60),
                            "the batch never started"
                        );
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
            };
        drill.advance("3h").await;
        let seen_at_outage = outage.await.expect("outage task");
        assert!(
            seen_at_outage < 200,
            "the outage began mid-batch ({seen_at_outage} sent)"
        );

        wait_until(
            Duration::from_secs(120),
            "every reminder is recorded as sent",
            || async { drill.events("default", "message.sent").await.len() >= 200 },
        )
        .await;
        let counts = per_recipient(&drill.messages(None).await);
        assert_eq!(counts.len(), 200, "every patient got a reminder");
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "none got two: {twice:?}");
        assert_eq!(drill.events("default", "message.sent").await.len(), 200);
        assert!(
            drill
                .events("default", "execution.dead_lettered")
                .await
                .is_empty()
        );
        let stats = worker.stats();
        eprintln!("outage drill: {seen_at_outage} sent before the outage; executor {stats:?}");
        assert!(
            stats.failed_retryable > 0,
            "the outage was felt and retried through core's queue: {stats:?}"
        );
    }
);

both_engines!(
    accept_then_drop_is_resolved_by_a_look_up_not_a_resend,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        let (worker, _executor) = drill.start_executor().await;
        // Twilio takes the first send and loses the answer.
        drill
            .fault(json!({"provider": "twilio", "mode": "accept_then_drop", "forRequests": 1}))
            .await;
        drill
            .book("default", "https://x.example/i/drop", "+14155550181", 50)
            .await;
        drill.advance("3h").await;
        wait_until(
            Duration::from_secs(30),
            "the reminder is recorded as sent",
            || async { drill.events("default", "message.sent").await.len() == 1 },
        )
        .await;
        let messages = drill.messages(Some("+14155550181")).await;
        assert_eq!(messages.len(), 1, "exactly one message: {messages:?}");
        let refs = sent_refs(&drill.events("default", "message.sent").await);
        assert_eq!(
            refs,
            vec![messages[0]["id"].as_str().unwrap_or("").to_owned()]
        );
        assert_eq!(worker.stats().succeeded, 1);
    }
);

both_engines!(
    a_send_an_earlier_holder_made_is_found_not_repeated,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        drill
            .book("default", "https://x.example/i/crash", "+14155550191", 50)
            .await;
        drill.advance("3h").await;

        // An executor claims the reminder with a short lease, sends it, and dies before reporting.
        let claimer = support::token(&[Scope::ExecutionsClaim]);
        let claimed: Value = drill
            .http
            .post(drill.core.url.join("v1/executions/claim").expect("url"))
            .bearer_auth(&claimer)
            .json(&json!({"limit": 10, "leaseSeconds": 5}))
            .send()
            .await
            .expect("claim")
            .json()
            .await
            .expect("claim json");
        let execution = &claimed["executions"][0];
        assert_eq!(execution["attempt"], 1);
        assert!(
            execution["createdAt"].is_string(),
            "claims say when the execution was written"
        );
        let twilio = drill.config().providers.twilio.expect("twilio");
        let sent: Value = drill
            .http
            .post(
                drill
                    .sandbox
                    .url
                    .join(&format!(
                        "2010-04-01/Accounts/{}/Messages.json",
                        twilio.account_sid
                    ))
                    .expect("url"),
            )
            .basic_auth(&twilio.account_sid, Some(twilio.auth_token.expose()))
            .form(&[
                ("To", execution["payload"]["to"].as_str().unwrap_or("")),
                ("From", "+15005550006"),
                ("Body", execution["payload"]["body"].as_str().unwrap_or("")),
            ])
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("send json");
        let sid = sent["sid"].as_str().expect("sid").to_owned();

        // The executor starts; core offers the execution again once the lease lapses.
        let (worker, _executor) = drill.start_executor().await;
        wait_until(
            Duration::from_secs(30),
            "the re-offered reminder is reported",
            || async { drill.events("default", "message.sent").await.len() == 1 },
        )
        .await;
        assert_eq!(
            drill.messages(Some("+14155550191")).await.len(),
            1,
            "not sent again"
        );
        assert_eq!(
            sent_refs(&drill.events("default", "message.sent").await),
            vec![sid]
        );
        assert_eq!(worker.stats().succeeded, 1);
    }
);

both_engines!(
    an_opted_out_recipient_revokes_consent_and_is_not_retried,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        let (worker, _executor) = drill.start_executor().await;
        // Twilio's test number for a recipient who replied STOP: every send is refused with 21610.
        let opted_out = "+15005550004";
        drill
            .book("default", "https://x.example/i/stop", opted_out, 50)
            .await;
        drill.advance("3h").await;
        wait_until(Duration::from_secs(30), "consent is revoked", || async {
            !drill.events("default", "consent.revoked").await.is_empty()
        })
        .await;
        let failed = drill.events("default", "message.delivery_failed").await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["payload"]["errorCode"], "21610");
        // The next reminder is not even attempted.
        drill.advance("24h").await;
        wait_until(
            Duration::from_secs(30),
            "the second reminder is skipped",
            || async {
                drill
                    .events("default", "reminder.skipped")
                    .await
                    .iter()
                    .any(|e| e["payload"]["reason"] == "no_consent")
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stats = worker.stats();
        assert_eq!(stats.claimed, 1, "one attempt, never retried: {stats:?}");
        assert_eq!(stats.failed_permanent, 1);
        assert!(drill.messages(Some(opted_out)).await.is_empty());
    }
);

both_engines!(
    a_reminder_whose_not_after_passed_during_an_outage_expires_unsent,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        let (worker, _executor) = drill.start_executor().await;
        drill
            .fault(json!({"provider": "twilio", "mode": "http_503", "forSeconds": 120}))
            .await;
        // 30 h ahead: only the 24 h reminder is planned.
        let phone = "+14155550199";
        drill
            .book("default", "https://x.example/i/late", phone, 30)
            .await;
        drill.advance("6h1m").await;
        wait_until(
            Duration::from_secs(30),
            "the reminder failed while Twilio is down",
            || async { worker.stats().failed_retryable >= 1 },
        )
        .await;
        // The visit starts while the provider is still down; then the provider comes back.
        drill.advance("25h").await;
        drill.clear_faults().await;
        wait_until(Duration::from_secs(60), "the reminder expires", || async {
            !drill
                .events("default", "execution.expired")
                .await
                .is_empty()
        })
        .await;
        let expired = drill.events("default", "execution.expired").await;
        assert_eq!(
            expired[0]["payload"]["commandType"],
            "messaging.send_reminder"
        );
        assert!(
            drill
                .events("default", "reminder.skipped")
                .await
                .iter()
                .any(|e| e["payload"]["reason"] == "expired")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(drill.messages(Some(phone)).await.is_empty(), "never sent");
        assert_eq!(worker.stats().succeeded, 0);
    }
);

both_engines!(
    readiness_names_a_provider_whose_credentials_were_refused,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        let mut config = drill.config();
        let wrong = "wrong-token-never-shown";
        if let Some(twilio) = config.providers.twilio.as_mut() {
            twilio.auth_token = aro_config::Secret::new(wrong);
        }
        let (worker, executor) = drill.start_executor_with(config).await;
        let ready = |http: reqwest::Client, url: url::Url| async move {
            let resp = http
                .get(url.join("ready").expect("url"))
                .send()
                .await
                .expect("ready");
            (
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            )
        };
        let (status, body) = ready(drill.http.clone(), executor.url.clone()).await;
        assert_eq!(
            status, 200,
            "credentials look present until a provider refuses them: {body}"
        );
        let checks: Value = serde_json::from_str(&body).unwrap_or_default();
        let names: Vec<&str> = checks["checks"]
            .as_array()
            .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["core", "twilio", "stripe", "calendly"]);

        drill
            .book("default", "https://x.example/i/cred", "+14155550177", 50)
            .await;
        drill.advance("3h").await;
        wait_until(Duration::from_secs(30), "the send was refused", || async {
            worker.stats().failed_retryable >= 1
        })
        .await;
        let (status, body) = ready(drill.http.clone(), executor.url.clone()).await;
        assert_eq!(status, 503, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap_or_default();
        let twilio = answer["error"]["details"]["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "twilio").cloned())
            .unwrap_or_default();
        assert_eq!(twilio["ok"], false, "{body}");
        assert!(
            twilio["detail"].as_str().unwrap_or("").contains("401"),
            "{body}"
        );
        assert!(!body.contains(wrong), "the secret never appears");
        assert!(drill.messages(Some("+14155550177")).await.is_empty());
    }
);

/// A claimed execution for a handler, as core would hand it out.
fn claimed(command_type: &str, attempt: u32, payload: Value) -> ClaimedExecution {
    serde_json::from_value(json!({
        "executionId": format!("exe_{command_type}"), "tenantId": "default",
        "correlationId": "corr", "commandType": command_type, "payload": payload,
        "attempt": attempt, "leaseUntil": "2099-01-01T00:00:00Z",
        "createdAt": chrono::Utc::now(),
    }))
    .expect("claimed execution")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_speak_to_the_sandbox_providers() {
    let Some(drill) = Drill::start(aro_tests::Db::Sqlite).await else {
        return;
    };
    let config = drill.config();
    let http = aro_integrations_client();
    let resilient = providers::policies(&config, &drill_tuning()).build();
    let providers = Providers::new(&config, &http, &resilient, 4);
    assert_eq!(providers.configured(), ["twilio", "stripe", "calendly"]);

    // A deposit link, twice under one key: the same link both times (Stripe idempotency).
    let deposit = json!({"paymentLinkId": "pl_1", "amountMinor": 2500, "currency": "USD",
        "description": "Deposit for your visit", "idempotencyKey": "pl_1",
        "metadata": {"tenantId": "default", "paymentLinkId": "pl_1", "appointmentId": "apt_1"}});
    let first = handlers::perform(
        &providers,
        &claimed("payments.generate_deposit_link", 1, deposit.clone()),
    )
    .await;
    let again = handlers::perform(
        &providers,
        &claimed("payments.generate_deposit_link", 2, deposit),
    )
    .await;
    let Outcome::Succeeded {
        provider_ref,
        output,
    } = &first
    else {
        panic!("deposit link: {first:?}");
    };
    assert!(provider_ref.as_deref().unwrap_or("").starts_with("plink_"));
    assert!(output["url"].as_str().unwrap_or("").starts_with("http"));
    assert!(
        output["priceId"]
            .as_str()
            .unwrap_or("")
            .starts_with("price_")
    );
    assert_eq!(first, again, "a retry returns the link already made");

    // A booking read back through the Calendly API becomes core's upsert payload.
    let booked: Value = drill
        .http
        .post(drill.sandbox.url.join("sandbox/bookings").expect("url"))
        .json(&json!({"name": "Pat Example", "phone": "+14155550123",
            "startsAt": "2030-03-10T15:00:00Z", "durationMinutes": 30, "eventType": "checkup"}))
        .send()
        .await
        .expect("book")
        .json()
        .await
        .expect("book json");
    let invitee = booked["inviteeUri"].as_str().expect("invitee uri");
    let fetched = handlers::perform(
        &providers,
        &claimed("booking.fetch_invitee", 1, json!({"inviteeUri": invitee})),
    )
    .await;
    let Outcome::Succeeded { output, .. } = &fetched else {
        panic!("fetch invitee: {fetched:?}");
    };
    let booking = &output["booking"];
    assert_eq!(booking["source"], "calendly");
    assert_eq!(booking["externalId"], invitee);
    assert_eq!(booking["customer"]["name"], "Pat Example");
    assert_eq!(booking["startsAt"], "2030-03-10T15:00:00Z");
    assert_eq!(booking["endsAt"], "2030-03-10T15:30:00Z");

    // Cancelled while the look-up waited: nothing to book.
    let cancelled = drill
        .http
        .post(
            drill
                .sandbox
                .url
                .join(&format!(
                    "sandbox/bookings/{}/cancel",
                    booked["id"].as_str().unwrap_or("")
                ))
                .expect("url"),
        )
        .send()
        .await
        .expect("cancel");
    assert!(cancelled.status().is_success());
    let refetched = handlers::perform(
        &providers,
        &claimed(
            "booking.fetch_invitee",
            1,
            json!({"inviteeUri": invitee, "eventUri": null}),
        ),
    )
    .await;
    assert!(
        matches!(&refetched, Outcome::Succeeded { output, .. } if output["booking"].is_null()),
        "{refetched:?}"
    );

    // Without a model configured, classification fails at once and for good.
    let classify = handlers::perform(
        &providers,
        &claimed(
            "classification.classify_reply",
            1,
            json!({"messageId": "msg_1", "text": "maybe", "languageHint": "en"}),
        ),
    )
    .await;
    assert!(
        matches!(&classify, Outcome::Failed(f) if f.code == "LLM_NOT_CONFIGURED" && !f.retryable),
        "{classify:?}"
    );

    let unknown = handlers::perform(&providers, &claimed("fax.send", 1, json!({}))).await;
    assert!(
        matches!(&unknown, Outcome::Failed(f) if f.code == "UNKNOWN_EXECUTION_TYPE" && !f.retryable),
        "{unknown:?}"
    );

    // Twilio's permanent refusals carry Twilio's code.
    for (to, code) in [("+15005550001", "21211"), ("+15005550009", "21614")] {
        let refused = handlers::perform(
            &providers,
            &claimed("messaging.send_message", 1, json!({"to": to, "channel": "sms", "body": "Hello", "idempotencyKey": format!("k-{code}")})),
        )
        .await;
        assert!(
            matches!(&refused, Outcome::Failed(f) if f.code == code && !f.retryable),
            "{refused:?}"
        );
    }
}

fn aro_integrations_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}
