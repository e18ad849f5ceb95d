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
        let outage = twilio_outage_once_under_way(
            &drill,
            json!({"provider": "twilio", "mode": "http_503", "forSeconds": 2}),
        );
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
    a_counted_outage_mid_batch_still_delivers_every_reminder_exactly_once,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        // The drill's usual breakers (open 0.5 s, doubling to 2 s): an open breaker lets one
        // probe through per cool-down and turns every other claim away. Those claims never
        // reach Twilio, so they use none of a message's attempts (docs/executor.md, "Not
        // attempted"): core offers them again after the cool-down, and nothing is dead-lettered
        // however many times the breaker turns a message away. With these timings the
        // outage lasts about 1.5 s of real time per counted request (one probe per
        // cool-down), so 30 requests (~45 s, thousands of turned-away claims, about twenty per
        // message, against six attempts each) is the most that keeps the drill near a minute;
        // 150 would take about four minutes and prove nothing more.
        let (worker, executor) = drill.start_executor().await;
        let numbers = phones(200);
        drill.book_many("default", &numbers, 50).await;

        // Twilio answers the next OUTAGE_REQUESTS requests with 503, however long that takes,
        // once the batch is under way: the outage ends by count, not by the clock.
        const OUTAGE_REQUESTS: u64 = 30;
        let outage = twilio_outage_once_under_way(
            &drill,
            json!({"provider": "twilio", "mode": "http_503", "forRequests": OUTAGE_REQUESTS}),
        );
        drill.advance("3h").await;
        let seen_at_outage = outage.await.expect("outage task");
        assert!(
            seen_at_outage < 200,
            "the outage began mid-batch ({seen_at_outage} sent)"
        );

        let outage_began = std::time::Instant::now();
        wait_until(
            Duration::from_secs(120),
            "every reminder is recorded as sent",
            || async { drill.events("default", "message.sent").await.len() >= 200 },
        )
        .await;
        // Every counted 503 was served: the outage really happened, and ended by count.
        let faults = drill.active_faults().await;
        assert_eq!(faults["faults"], json!([]), "{faults}");
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
        assert!(
            drill
                .events("default", "message.delivery_failed")
                .await
                .is_empty()
        );
        let stats = worker.stats();
        eprintln!(
            "counted outage drill: {seen_at_outage} sent before the outage; all sent {:?} after it began; executor {stats:?}",
            outage_began.elapsed()
        );
        assert!(
            stats.failed_retryable > 0,
            "the outage was felt and retried through core's queue: {stats:?}"
        );
        executor.stop().await;
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

/// The executor's `/ready`: its status and body.
async fn ready(http: &reqwest::Client, executor: &url::Url) -> (u16, String) {
    let resp = http
        .get(executor.join("ready").expect("url"))
        .send()
        .await
        .expect("ready");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

/// The readiness check called `name` in a `/ready` body (200 or 503).
fn check_named(body: &str, name: &str) -> Value {
    let answer: Value = serde_json::from_str(body).unwrap_or_default();
    let checks = if answer["checks"].is_array() {
        &answer["checks"]
    } else {
        &answer["error"]["details"]["checks"]
    };
    checks
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name).cloned())
        .unwrap_or_default()
}

both_engines!(
    readiness_names_a_provider_that_refused_the_configured_credentials_from_the_start,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        let mut config = drill.config();
        let wrong = "wrong-token-never-shown";
        if let Some(twilio) = config.providers.twilio.as_mut() {
            twilio.auth_token = aro_config::Secret::new(wrong);
        }
        // Returns once the executor has made its credential checks.
        let (worker, executor) = drill.start_executor_with(config).await;
        // Refused at start, before any text depends on it: Twilio's account fetch said 401.
        let (status, body) = ready(&drill.http, &executor.url).await;
        assert_eq!(status, 503, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap_or_default();
        let names: Vec<&str> = answer["error"]["details"]["checks"]
            .as_array()
            .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["core", "twilio", "stripe", "calendly"]);
        let twilio = check_named(&body, "twilio");
        assert_eq!(twilio["ok"], false, "{body}");
        let detail = twilio["detail"].as_str().unwrap_or("");
        assert!(detail.contains("HTTP 401"), "{body}");
        assert!(
            detail.contains("[providers.twilio]") && detail.contains("auth_token"),
            "names the keys to fix: {body}"
        );
        for accepted in ["stripe", "calendly"] {
            let check = check_named(&body, accepted);
            assert_eq!(check["ok"], true, "{body}");
            assert_eq!(check["detail"], "credentials accepted by the provider");
        }
        assert!(!body.contains(wrong), "the secret never appears");

        // A send is refused too, and nothing reaches the patient.
        drill
            .book("default", "https://x.example/i/cred", "+14155550177", 50)
            .await;
        drill.advance("3h").await;
        wait_until(Duration::from_secs(30), "the send was refused", || async {
            worker.stats().failed_retryable >= 1
        })
        .await;
        let (status, body) = ready(&drill.http, &executor.url).await;
        assert_eq!(status, 503, "{body}");
        assert!(!body.contains(wrong), "the secret never appears");
        assert!(drill.messages(Some("+14155550177")).await.is_empty());
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_leaves_the_credentials_unverified_not_refused() {
    let Some(drill) = Drill::start(aro_tests::Db::Sqlite).await else {
        return;
    };
    let mut config = drill.config();
    // Nothing listens on port 9 of loopback: the check cannot ask Stripe anything.
    if let Some(stripe) = config.providers.stripe.as_mut() {
        stripe.base_url = url::Url::parse("http://127.0.0.1:9/").expect("url");
    }
    let (_worker, executor) = drill.start_executor_with(config).await;
    let (status, body) = ready(&drill.http, &executor.url).await;
    assert_eq!(status, 200, "{body}");
    let stripe = check_named(&body, "stripe");
    assert_eq!(stripe["ok"], true, "{body}");
    assert!(
        stripe["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("credentials not verified"),
        "{body}"
    );
    assert_eq!(
        check_named(&body, "twilio")["detail"],
        "credentials accepted by the provider"
    );
}

both_engines!(
    a_missing_provider_section_is_named_once_a_tenants_policies_need_it,
    |db| async move {
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        let mut config = drill.config();
        config.providers.stripe = None;
        let (_worker, executor) = drill.start_executor_with(config).await;
        // Listed, and fine while no tenant needs it.
        let (status, body) = ready(&drill.http, &executor.url).await;
        assert_eq!(status, 200, "{body}");
        let stripe = check_named(&body, "stripe");
        assert_eq!(stripe["ok"], true, "{body}");
        assert!(
            stripe["detail"]
                .as_str()
                .unwrap_or("")
                .contains("not configured ([providers.stripe])"),
            "{body}"
        );

        // The executor meets the tenant through a reminder; its policies ask for deposits
        // (the default 25.00) and it has no Stripe credentials of its own.
        drill
            .book("default", "https://x.example/i/needs", "+14155550178", 50)
            .await;
        drill.advance("3h").await;
        let last = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        wait_until(
            Duration::from_secs(30),
            "/ready names the tenant that needs Stripe",
            || {
                let last = last.clone();
                let http = drill.http.clone();
                let url = executor.url.clone();
                async move {
                    let (status, body) = ready(&http, &url).await;
                    let named = status == 503 && check_named(&body, "stripe")["ok"] == false;
                    *last.lock().expect("last") = body;
                    named
                }
            },
        )
        .await;
        let body = last.lock().expect("last").clone();
        let detail = check_named(&body, "stripe")["detail"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(detail.contains("default (deposits are on)"), "{detail}");
        assert!(detail.contains("set [providers.stripe]"), "{detail}");
        // The reminder itself went out: Twilio is configured.
        assert_eq!(check_named(&body, "twilio")["ok"], true, "{body}");
        wait_until(Duration::from_secs(30), "the reminder is sent", || async {
            drill.messages(Some("+14155550178")).await.len() == 1
        })
        .await;
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

/// Injects `fault` at the sandbox once 30 texts of the batch have gone out (mid-batch);
/// answers how many had gone out by then.
fn twilio_outage_once_under_way(drill: &Drill, fault: Value) -> tokio::task::JoinHandle<usize> {
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
                    .json(&fault)
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
}
