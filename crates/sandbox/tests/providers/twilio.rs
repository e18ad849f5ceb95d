//! Twilio: sends, callbacks, errors, opt-outs, replies and the list look-up.

use crate::common::Bench;
use serde_json::{Value, json};

const PATIENT: &str = "+14155552671";

#[tokio::test]
async fn a_send_is_accepted_and_its_status_callbacks_arrive_signed_and_in_order() {
    let bench = Bench::start().await;
    let response = bench
        .send_sms(PATIENT, "Hi Ada, see you Friday at 2 pm.")
        .await;
    assert_eq!(response.status(), 201);
    let message: Value = response.json().await.unwrap();
    let sid = message["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert_eq!(message["status"], "queued");
    assert_eq!(message["direction"], "outbound-api");
    assert_eq!(message["to"], PATIENT);
    assert_eq!(message["from"], bench.sender_number());
    assert_eq!(message["num_segments"], "1");
    assert_eq!(message["account_sid"], bench.account_sid());
    assert!(
        chrono::DateTime::parse_from_rfc2822(message["date_created"].as_str().unwrap()).is_ok(),
        "date_created is RFC 2822"
    );
    assert_eq!(
        message["uri"],
        format!(
            "/2010-04-01/Accounts/{}/Messages/{sid}.json",
            bench.account_sid()
        )
    );

    let callbacks = bench
        .wait_for("the sent and delivered callbacks", |all| {
            let mine: Vec<_> = all
                .iter()
                .filter(|d| d.param("MessageSid") == Some(sid.as_str()))
                .cloned()
                .collect();
            (mine.len() >= 2).then_some(mine)
        })
        .await;
    let statuses: Vec<_> = callbacks
        .iter()
        .map(|d| d.param("MessageStatus").unwrap())
        .collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    for callback in &callbacks {
        assert_eq!(
            callback.verified,
            Ok(()),
            "X-Twilio-Signature over the callback URL"
        );
        assert_eq!(callback.path, "/v1/webhooks/twilio/default/status");
        assert_eq!(callback.param("AccountSid"), Some(bench.account_sid()));
        assert_eq!(callback.param("SmsSid"), Some(sid.as_str()));
        assert_eq!(callback.param("SmsStatus"), callback.param("MessageStatus"));
        assert_eq!(callback.param("To"), Some(PATIENT));
        assert_eq!(callback.param("From"), Some(bench.sender_number().as_str()));
        assert_eq!(callback.param("ApiVersion"), Some("2010-04-01"));
        assert_eq!(callback.param("ErrorCode"), None);
    }

    let inbox = bench.inbox(PATIENT).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["id"], sid);
    assert_eq!(inbox[0]["status"], "delivered");
    assert_eq!(inbox[0]["tenantId"], "default");
    assert_eq!(inbox[0]["body"], "Hi Ada, see you Friday at 2 pm.");

    let fetched: Value = bench
        .http
        .get(bench.url(&format!(
            "/2010-04-01/Accounts/{}/Messages/{sid}.json",
            bench.account_sid()
        )))
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
    assert_eq!(fetched["status"], "delivered");
}

#[tokio::test]
async fn sends_to_the_sandboxs_failing_numbers_report_undelivered_with_an_error_code() {
    let bench = Bench::start().await;
    let response = bench.send_sms("+15005550010", "Reminder").await;
    assert_eq!(response.status(), 201);
    let sid = response.json::<Value>().await.unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let last = bench
        .wait_for("the undelivered callback", |all| {
            all.iter()
                .find(|d| {
                    d.param("MessageSid") == Some(sid.as_str())
                        && d.param("MessageStatus") == Some("undelivered")
                })
                .cloned()
        })
        .await;
    assert_eq!(last.param("ErrorCode"), Some("30003"));
    assert_eq!(last.verified, Ok(()));
}

#[tokio::test]
async fn wrong_credentials_get_twilios_401() {
    let bench = Bench::start().await;
    let token = bench.secrets.twilio.auth_token.expose().to_owned();
    let attempts = [
        (
            bench.account_sid().to_owned(),
            Some("wrong-token".to_owned()),
            bench.messages_url(),
        ),
        (bench.account_sid().to_owned(), None, bench.messages_url()),
        (
            bench.account_sid().to_owned(),
            Some(token),
            bench.url(&format!(
                "/2010-04-01/Accounts/AC{}/Messages.json",
                "0".repeat(32)
            )),
        ),
    ];
    for (user, password, url) in attempts {
        let response = bench
            .http
            .post(url)
            .basic_auth(user, password)
            .form(&[("To", PATIENT), ("From", "+15005550006"), ("Body", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 20003);
        assert_eq!(body["status"], 401);
        assert_eq!(
            body["more_info"],
            "https://www.twilio.com/docs/errors/20003"
        );
        assert!(body["message"].is_string());
    }
    let unauthenticated = bench.http.post(bench.messages_url()).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert!(bench.inbox(PATIENT).await.is_empty());
}

#[tokio::test]
async fn magic_numbers_answer_with_twilios_error_codes() {
    let bench = Bench::start().await;
    for (to, code) in [
        ("+15005550001", 21211),
        ("+15005550009", 21614),
        ("+15005550004", 21610),
    ] {
        let response = bench.send_sms(to, "Reminder").await;
        assert_eq!(response.status(), 400, "{to}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{to}");
        assert_eq!(body["status"], 400);
        assert_eq!(
            body["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}")
        );
        assert!(bench.inbox(to).await.is_empty(), "nothing was sent to {to}");
    }
}

#[tokio::test]
async fn a_reply_is_posted_to_core_signed_and_cores_answer_is_shown() {
    let bench = Bench::start().await;
    assert_eq!(
        bench.send_sms(PATIENT, "Reply C to confirm").await.status(),
        201
    );
    let response = bench
        .post_json("/sandbox/reply", json!({"from": PATIENT, "body": "C"}))
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["webhook"]["status"], 200);
    assert_eq!(answer["webhook"]["body"], "<Response/>");
    assert_eq!(answer["autoReply"], Value::Null);
    let sid = answer["messageSid"].as_str().unwrap();

    let inbound = bench
        .wait_for("the inbound webhook", |all| {
            all.iter()
                .find(|d| d.path == "/v1/webhooks/twilio/default/inbound")
                .cloned()
        })
        .await;
    assert_eq!(inbound.verified, Ok(()));
    assert_eq!(inbound.param("MessageSid"), Some(sid));
    assert_eq!(inbound.param("SmsSid"), Some(sid));
    assert_eq!(inbound.param("AccountSid"), Some(bench.account_sid()));
    assert_eq!(inbound.param("From"), Some(PATIENT));
    assert_eq!(inbound.param("To"), Some(bench.sender_number().as_str()));
    assert_eq!(inbound.param("Body"), Some("C"));
    assert_eq!(inbound.param("NumMedia"), Some("0"));
    assert_eq!(inbound.param("NumSegments"), Some("1"));
    assert_eq!(inbound.param("ApiVersion"), Some("2010-04-01"));
}

#[tokio::test]
async fn a_reply_goes_to_the_tenants_url_and_an_unknown_tenant_id_is_refused() {
    let bench = Bench::start().await;
    let answer: Value = bench
        .post_json(
            "/sandbox/reply",
            json!({"from": PATIENT, "body": "hello", "tenantId": "clinic-b"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["webhook"]["url"],
        format!("{}/v1/webhooks/twilio/clinic-b/inbound", bench.core)
    );
    let refused = bench
        .post_json(
            "/sandbox/reply",
            json!({"from": PATIENT, "body": "x", "tenantId": "../x"}),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let refused = bench
        .post_json(
            "/sandbox/reply",
            json!({"from": "415 555 2671", "body": "x"}),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["details"]["field"], "from");
}

#[tokio::test]
async fn stop_blocks_further_sends_with_21610_until_start() {
    let bench = Bench::start().await;
    assert_eq!(bench.send_sms(PATIENT, "Reminder 1").await.status(), 201);

    let stop: Value = bench
        .post_json("/sandbox/reply", json!({"from": PATIENT, "body": " Stop "}))
        .await
        .json()
        .await
        .unwrap();
    assert!(stop["autoReply"].as_str().unwrap().contains("unsubscribed"));
    // Twilio still forwards the keyword to core.
    bench
        .wait_for("the STOP webhook", |all| {
            all.iter()
                .find(|d| d.param("Body") == Some(" Stop ") && d.verified.is_ok())
                .cloned()
        })
        .await;
    let inbox = bench.inbox(PATIENT).await;
    let confirmation = inbox.last().unwrap();
    assert_eq!(confirmation["direction"], "outbound-reply");
    assert!(
        confirmation["body"]
            .as_str()
            .unwrap()
            .starts_with("You have successfully been unsubscribed")
    );

    let blocked = bench.send_sms(PATIENT, "Reminder 2").await;
    assert_eq!(blocked.status(), 400);
    assert_eq!(blocked.json::<Value>().await.unwrap()["code"], 21610);

    let start: Value = bench
        .post_json("/sandbox/reply", json!({"from": PATIENT, "body": "START"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        start["autoReply"]
            .as_str()
            .unwrap()
            .contains("re-subscribed")
    );
    assert_eq!(bench.send_sms(PATIENT, "Reminder 3").await.status(), 201);
    let bodies: Vec<String> = bench
        .inbox(PATIENT)
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert!(!bodies.iter().any(|b| b == "Reminder 2"));
    assert!(bodies.iter().any(|b| b == "Reminder 3"));
}

#[tokio::test]
async fn a_tenant_can_turn_twilios_opt_out_handling_off() {
    let bench = Bench::start().await;
    let switched: Value = bench
        .post_json(
            "/sandbox/settings",
            json!({"tenantId": "clinic-b", "twilioOptOutHandling": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        switched,
        json!({"tenantId": "clinic-b", "twilioOptOutHandling": false})
    );
    let reply: Value = bench
        .post_json(
            "/sandbox/reply",
            json!({"from": PATIENT, "body": "STOP", "tenantId": "clinic-b"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["autoReply"], Value::Null);
    assert_eq!(reply["webhook"]["status"], 200, "still forwarded to core");
    assert!(
        bench.inbox(PATIENT).await.is_empty(),
        "no automatic confirmation"
    );
    assert_eq!(bench.send_sms(PATIENT, "still allowed").await.status(), 201);
    // Other tenants keep the default.
    let default: Value = bench.get_json("/sandbox/settings").await;
    assert_eq!(default["twilioOptOutHandling"], true);
}

#[tokio::test]
async fn the_list_filters_by_recipient_and_date_sent_newest_first() {
    let bench = Bench::start().await;
    let other = "+14155550100";
    for (to, body) in [(PATIENT, "one"), (other, "two"), (PATIENT, "three")] {
        assert_eq!(bench.send_sms(to, body).await.status(), 201);
    }
    let today = chrono::Utc::now().date_naive();
    let list = |query: String| {
        let bench = &bench;
        async move {
            let response = bench
                .http
                .get(format!("{}?{query}", bench.messages_url()))
                .basic_auth(
                    bench.account_sid(),
                    Some(bench.secrets.twilio.auth_token.expose()),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let page = list(format!("To=%2B14155552671&DateSent%3E={today}")).await;
    let bodies: Vec<_> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["three", "one"]);
    let tomorrow = today.succ_opt().unwrap();
    let none = list(format!("To=%2B14155552671&DateSent>={tomorrow}")).await;
    assert!(none["messages"].as_array().unwrap().is_empty());
    // A full UTC timestamp, as the API description declares the filter (and ARO's look-up
    // sends it), bounds by the instant: a minute ago finds them, a minute ahead does not.
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let now = chrono::Utc::now();
    let recent = list(format!(
        "To=%2B14155552671&DateSent%3E={}",
        stamp(now - chrono::Duration::minutes(1))
    ))
    .await;
    assert_eq!(recent["messages"].as_array().unwrap().len(), 2);
    let later = list(format!(
        "To=%2B14155552671&DateSent%3E={}",
        stamp(now + chrono::Duration::minutes(1))
    ))
    .await;
    assert!(later["messages"].as_array().unwrap().is_empty());
    let first = list("PageSize=2".to_owned()).await;
    assert_eq!(first["messages"].as_array().unwrap().len(), 2);
    assert_eq!(first["page_size"], 2);
    let next = first["next_page_uri"].as_str().unwrap();
    let second: Value = bench
        .http
        .get(bench.url(next))
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
    assert_eq!(second["messages"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_page_uri"], Value::Null);
    assert_eq!(second["messages"][0]["body"], "one");
}

#[tokio::test]
async fn a_messaging_service_send_is_accepted_before_a_sender_is_chosen() {
    let bench = Bench::start().await;
    let service = format!("MG{}", "ab".repeat(16));
    let response = bench
        .http
        .post(bench.messages_url())
        .basic_auth(
            bench.account_sid(),
            Some(bench.secrets.twilio.auth_token.expose()),
        )
        .form(&[
            ("To", PATIENT),
            ("MessagingServiceSid", &service),
            ("Body", "Hi"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["status"], "accepted");
    assert_eq!(message["from"], Value::Null);
    assert_eq!(message["messaging_service_sid"], service.as_str());
    let inbox = bench
        .eventually(
            "the message delivered",
            || bench.inbox(PATIENT),
            |inbox| inbox.first().is_some_and(|m| m["status"] == "delivered"),
        )
        .await;
    assert_eq!(inbox[0]["from"], bench.sender_number());
}
