//! Extra Twilio accounts (`POST /sandbox/accounts`): a tenant with credentials of its own sends
//! through its own account, kept apart from the configured one, and the webhooks about its
//! messages are signed with its own auth token.

use crate::common::Bench;
use serde_json::{Value, json};

const PATIENT: &str = "+14155552672";
const OWN_SID: &str = "ACfedcba9876543210fedcba9876543210";
const OWN_TOKEN: &str = "a-clinics-own-auth-token";

fn own_messages_url(bench: &Bench, sid: &str) -> String {
    bench.url(&format!("/2010-04-01/Accounts/{sid}/Messages.json"))
}

async fn send_as(bench: &Bench, sid: &str, token: &str) -> reqwest::Response {
    bench
        .http
        .post(own_messages_url(bench, sid))
        .basic_auth(sid, Some(token))
        .form(&[
            ("To", PATIENT),
            ("From", "+15005550006"),
            ("Body", "Hi from the clinic's own account"),
            ("StatusCallback", &bench.status_callback("clinic-b")),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_added_account_sends_on_its_own_and_signs_its_callbacks_with_its_own_token() {
    let bench = Bench::start().await;
    assert_eq!(
        send_as(&bench, OWN_SID, OWN_TOKEN).await.status(),
        401,
        "unknown until added"
    );

    let added = bench
        .post_json(
            "/sandbox/accounts",
            json!({"provider": "twilio", "accountSid": OWN_SID, "authToken": OWN_TOKEN}),
        )
        .await;
    assert_eq!(added.status(), 201);
    let listed = bench.get_json("/sandbox/accounts").await;
    assert_eq!(listed["accounts"][0]["accountSid"], OWN_SID);
    assert!(!listed.to_string().contains(OWN_TOKEN), "{listed}");
    assert_eq!(
        send_as(&bench, OWN_SID, "a-wrong-token").await.status(),
        401
    );

    let sent = send_as(&bench, OWN_SID, OWN_TOKEN).await;
    assert_eq!(sent.status(), 201);
    let message: Value = sent.json().await.unwrap();
    assert_eq!(message["account_sid"], OWN_SID);
    let sid = message["sid"].as_str().unwrap().to_owned();

    // The phone shows which account sent it; each account lists only its own messages.
    let inbox = bench.inbox(PATIENT).await;
    assert_eq!(inbox[0]["accountSid"], OWN_SID);
    let own: Value = bench
        .http
        .get(own_messages_url(&bench, OWN_SID))
        .basic_auth(OWN_SID, Some(OWN_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["messages"].as_array().map(Vec::len), Some(1));
    let configured: Value = bench
        .http
        .get(bench.messages_url())
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
    assert_eq!(configured["messages"].as_array().map(Vec::len), Some(0));

    // Its callbacks name its account, and the configured token does not verify them (the
    // stand-in core checks with the configured one, as core does for a tenant without its own).
    let callbacks = bench
        .wait_for("the callbacks of the own account's message", |all| {
            let mine: Vec<_> = all
                .iter()
                .filter(|d| d.param("MessageSid") == Some(sid.as_str()))
                .cloned()
                .collect();
            (!mine.is_empty()).then_some(mine)
        })
        .await;
    for callback in &callbacks {
        assert_eq!(callback.param("AccountSid"), Some(OWN_SID));
        assert!(
            callback.verified.is_err(),
            "signed with the account's own token"
        );
    }
}

#[tokio::test]
async fn only_well_formed_twilio_accounts_can_be_added() {
    let bench = Bench::start().await;
    for (body, field) in [
        (
            json!({"provider": "stripe", "accountSid": OWN_SID, "authToken": "x"}),
            "provider",
        ),
        (
            json!({"provider": "twilio", "accountSid": "AC1", "authToken": "x"}),
            "accountSid",
        ),
        (
            json!({"provider": "twilio", "accountSid": OWN_SID, "authToken": " "}),
            "authToken",
        ),
    ] {
        let response = bench.post_json("/sandbox/accounts", body).await;
        assert_eq!(response.status(), 422);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["details"]["field"], field);
    }
}
