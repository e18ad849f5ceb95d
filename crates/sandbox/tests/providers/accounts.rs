//! Extra provider accounts (`POST /sandbox/accounts`): a tenant with credentials of its own
//! sends through its own Twilio account, makes deposit links in its own Stripe account and
//! books in its own Calendly user, each kept apart from the configured one, and the webhooks
//! about them are signed with its own secrets. The account fetch each check of credentials
//! makes answers each account to its own credentials only.

use crate::calendly::{book, booking_request};
use crate::common::{Bench, Delivery};
use aro_security::signatures;
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
async fn only_well_formed_accounts_can_be_added() {
    let bench = Bench::start().await;
    for (body, field) in [
        (
            json!({"provider": "stripe", "accountSid": OWN_SID, "authToken": "x"}),
            "accountSid",
        ),
        (
            json!({"provider": "stripe", "secretKey": "pk_test_public", "webhookSecret": "whsec_x"}),
            "secretKey",
        ),
        (
            json!({"provider": "stripe", "secretKey": bench.secrets.stripe.secret_key.expose(), "webhookSecret": "whsec_x"}),
            "secretKey",
        ),
        (
            json!({"provider": "stripe", "secretKey": "sk_test_x", "webhookSecret": "secret"}),
            "webhookSecret",
        ),
        (
            json!({"provider": "calendly", "apiToken": "t", "webhookSigningKey": " k "}),
            "webhookSigningKey",
        ),
        (
            json!({"provider": "calendly", "apiToken": "t", "webhookSigningKey": "k", "tenantId": "Not A Tenant"}),
            "tenantId",
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

const OWN_STRIPE_KEY: &str = "sk_test_a_clinics_own_key_0001";
const OWN_WHSEC: &str = "whsec_a_clinics_own_endpoint_secret";
const OWN_CALENDLY_TOKEN: &str = "a-clinics-own-calendly-token";
const OWN_CALENDLY_KEY: &str = "a-clinics-own-calendly-signing-key";

async fn post_form_as(
    bench: &Bench,
    key: &str,
    path: &str,
    idempotency_key: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = bench
        .http
        .post(bench.url(path))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency_key)
        .form(form)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn get_as(bench: &Bench, bearer: &str, url: &str) -> (u16, Value) {
    let response = bench
        .http
        .get(url)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A deposit link as ARO's client makes one, with `key`, under idempotency keys derived from
/// `execution`.
async fn link_as(bench: &Bench, key: &str, execution: &str, tenant: &str) -> (Value, Value) {
    let (status, price) = post_form_as(
        bench,
        key,
        "/v1/prices",
        &format!("{execution}-price"),
        &[
            ("unit_amount", "2500"),
            ("currency", "usd"),
            ("product_data[name]", "Deposit"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{price}");
    let (status, link) = post_form_as(
        bench,
        key,
        "/v1/payment_links",
        &format!("{execution}-link"),
        &[
            ("line_items[0][price]", price["id"].as_str().unwrap()),
            ("line_items[0][quantity]", "1"),
            ("metadata[tenantId]", tenant),
        ],
    )
    .await;
    assert_eq!(status, 200, "{link}");
    (price, link)
}

fn stripe_signed_with(delivery: &Delivery, secret: &str) -> bool {
    signatures::stripe::verify(
        secret,
        &delivery.raw,
        delivery.signature.as_deref(),
        chrono::Utc::now().timestamp(),
        signatures::stripe::DEFAULT_TOLERANCE_SECS,
    )
    .is_ok()
}

fn calendly_signed_with(delivery: &Delivery, secret: &str) -> bool {
    signatures::calendly::verify(
        secret,
        &delivery.raw,
        delivery.signature.as_deref(),
        chrono::Utc::now().timestamp(),
        signatures::calendly::DEFAULT_TOLERANCE_SECS,
    )
    .is_ok()
}

#[tokio::test]
async fn an_added_stripe_account_keeps_its_objects_and_signs_its_events_with_its_own_secret() {
    let bench = Bench::start().await;
    let configured = bench.secrets.stripe.secret_key.expose().to_owned();
    let prices = bench.url("/v1/prices?limit=10");
    assert_eq!(get_as(&bench, OWN_STRIPE_KEY, &prices).await.0, 401);

    let added = bench
        .post_json(
            "/sandbox/accounts",
            json!({"provider": "stripe", "secretKey": OWN_STRIPE_KEY, "webhookSecret": OWN_WHSEC}),
        )
        .await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    let account = added["accountId"].as_str().unwrap().to_owned();
    assert!(account.starts_with("acct_"), "{added}");
    let listed = bench.get_json("/sandbox/accounts").await;
    assert!(
        listed["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["accountId"] == account.as_str())
    );
    assert!(!listed.to_string().contains(OWN_STRIPE_KEY), "{listed}");
    assert!(!listed.to_string().contains(OWN_WHSEC), "{listed}");

    // The same execution's keys in both accounts: idempotency keys are each account's own.
    let (own_price, own_link) = link_as(&bench, OWN_STRIPE_KEY, "exe-1", "clinic-s").await;
    let (_, other_link) = link_as(&bench, &configured, "exe-1", "default").await;
    assert_ne!(own_link["id"], other_link["id"]);
    let own_price_url = bench.url(&format!("/v1/prices/{}", own_price["id"].as_str().unwrap()));
    assert_eq!(get_as(&bench, OWN_STRIPE_KEY, &own_price_url).await.0, 200);
    let (status, missing) = get_as(&bench, &configured, &own_price_url).await;
    assert_eq!(status, 404, "another account's price does not exist for it");
    assert_eq!(missing["error"]["code"], "resource_missing");
    let (_, own_list) = get_as(&bench, OWN_STRIPE_KEY, &prices).await;
    assert_eq!(own_list["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(own_list["data"][0]["id"], own_price["id"]);

    // The payment page's link names its account; paying it signs the event with the
    // account's own webhook secret, which the configured secret does not verify.
    let links = bench.get_json("/sandbox/payments?tenantId=clinic-s").await;
    assert_eq!(links["links"][0]["account"], account.as_str());
    let defaults = bench.get_json("/sandbox/payments").await;
    assert_eq!(defaults["links"][0]["account"], "acct_sandbox");
    let paid = bench
        .post_json(
            &format!(
                "/sandbox/payments/{}/complete",
                own_link["id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await;
    assert_eq!(paid.status(), 200);
    let event = bench
        .wait_for("the own account's checkout event", |all| {
            all.iter()
                .find(|d| d.path == "/v1/webhooks/stripe/clinic-s")
                .cloned()
        })
        .await;
    assert!(stripe_signed_with(&event, OWN_WHSEC));
    assert!(event.verified.is_err(), "not with the configured secret");
    bench
        .post_json(
            &format!(
                "/sandbox/payments/{}/complete",
                other_link["id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await;
    let event = bench
        .wait_for("the configured account's checkout event", |all| {
            all.iter()
                .find(|d| d.path == "/v1/webhooks/stripe/default")
                .cloned()
        })
        .await;
    assert_eq!(event.verified, Ok(()));

    // Removed: the key is refused from then on.
    let removed = bench
        .http
        .delete(bench.url(&format!("/sandbox/accounts/stripe/{account}")))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(get_as(&bench, OWN_STRIPE_KEY, &prices).await.0, 401);
    let again = bench
        .http
        .delete(bench.url(&format!("/sandbox/accounts/stripe/{account}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn an_added_calendly_user_takes_its_tenants_bookings_and_signs_them_with_its_own_key() {
    let bench = Bench::start().await;
    let configured = bench.secrets.calendly.api_token.expose().to_owned();
    let me = bench.url("/users/me");
    assert_eq!(get_as(&bench, OWN_CALENDLY_TOKEN, &me).await.0, 401);
    let added = bench
        .post_json(
            "/sandbox/accounts",
            json!({"provider": "calendly", "apiToken": OWN_CALENDLY_TOKEN,
                   "webhookSigningKey": OWN_CALENDLY_KEY, "tenantId": "clinic-c"}),
        )
        .await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    let user = added["accountId"].as_str().unwrap().to_owned();
    assert_eq!(added["tenantId"], "clinic-c");
    let (status, own_me) = get_as(&bench, OWN_CALENDLY_TOKEN, &me).await;
    assert_eq!(status, 200);
    assert!(own_me["resource"]["uri"].as_str().unwrap().ends_with(&user));
    let (_, configured_me) = get_as(&bench, &configured, &me).await;
    assert_ne!(configured_me["resource"]["uri"], own_me["resource"]["uri"]);

    // The tenant's booking is its user's: signed with its key, read with its token only.
    let mut request = booking_request();
    request["tenantId"] = json!("clinic-c");
    let own = book(&bench, request).await;
    let webhook = bench
        .wait_for("the own user's booking webhook", |all| {
            all.iter()
                .find(|d| d.path == "/v1/webhooks/calendly/clinic-c")
                .cloned()
        })
        .await;
    assert!(calendly_signed_with(&webhook, OWN_CALENDLY_KEY));
    assert!(webhook.verified.is_err(), "not with the configured key");
    assert!(
        webhook.json["created_by"]
            .as_str()
            .unwrap()
            .ends_with(&user)
    );
    let invitee = own["inviteeUri"].as_str().unwrap();
    let event = own["eventUri"].as_str().unwrap();
    assert_eq!(get_as(&bench, OWN_CALENDLY_TOKEN, invitee).await.0, 200);
    assert_eq!(get_as(&bench, OWN_CALENDLY_TOKEN, event).await.0, 200);
    assert_eq!(get_as(&bench, &configured, invitee).await.0, 404);
    assert_eq!(get_as(&bench, &configured, event).await.0, 404);

    // Another tenant's booking stays the configured user's.
    let plain = book(&bench, booking_request()).await;
    let plain_invitee = plain["inviteeUri"].as_str().unwrap();
    assert_eq!(get_as(&bench, &configured, plain_invitee).await.0, 200);
    assert_eq!(
        get_as(&bench, OWN_CALENDLY_TOKEN, plain_invitee).await.0,
        404
    );

    // Removed: the tenant's next booking is the configured user's again, signed with the
    // configured key; the token is refused.
    let removed = bench
        .http
        .delete(bench.url(&format!("/sandbox/accounts/calendly/{user}")))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(get_as(&bench, OWN_CALENDLY_TOKEN, &me).await.0, 401);
    let mut request = booking_request();
    request["tenantId"] = json!("clinic-c");
    let after = book(&bench, request).await;
    let webhooks = bench
        .wait_for("the tenant's booking after the removal", |all| {
            let mine: Vec<Delivery> = all
                .iter()
                .filter(|d| d.path == "/v1/webhooks/calendly/clinic-c")
                .cloned()
                .collect();
            (mine.len() >= 2).then_some(mine)
        })
        .await;
    assert_eq!(webhooks[1].verified, Ok(()));
    let after_invitee = after["inviteeUri"].as_str().unwrap();
    assert_eq!(get_as(&bench, &configured, after_invitee).await.0, 200);
}

#[tokio::test]
async fn the_account_fetch_answers_each_account_to_its_own_credentials_only() {
    let bench = Bench::start().await;
    let fetch = |sid: &str, user: &str, token: &str| {
        let request = bench
            .http
            .get(bench.url(&format!("/2010-04-01/Accounts/{sid}.json")))
            .basic_auth(user, Some(token));
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let configured = bench.account_sid().to_owned();
    let token = bench.secrets.twilio.auth_token.expose().to_owned();
    let (status, account) = fetch(&configured, &configured, &token).await;
    assert_eq!(status, 200);
    assert_eq!(account["sid"], configured.as_str());
    assert_eq!(account["status"], "active");
    let (status, refused) = fetch(&configured, &configured, "a-wrong-token").await;
    assert_eq!(status, 401);
    assert_eq!(refused["code"], 20003);

    bench
        .post_json(
            "/sandbox/accounts",
            json!({"provider": "twilio", "accountSid": OWN_SID, "authToken": OWN_TOKEN}),
        )
        .await;
    assert_eq!(fetch(OWN_SID, OWN_SID, OWN_TOKEN).await.0, 200);
    assert_eq!(
        fetch(&configured, OWN_SID, OWN_TOKEN).await.0,
        401,
        "not another account"
    );
    let removed = bench
        .http
        .delete(bench.url(&format!("/sandbox/accounts/twilio/{OWN_SID}")))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(fetch(OWN_SID, OWN_SID, OWN_TOKEN).await.0, 401);
}
