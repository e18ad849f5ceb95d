//! Stripe: prices and payment links with idempotency, authentication, and paying a link.

use crate::common::Bench;
use serde_json::{Value, json};

async fn post_form(
    bench: &Bench,
    path: &str,
    key: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = bench
        .http
        .post(bench.url(path))
        .bearer_auth(bench.secrets.stripe.secret_key.expose())
        .form(form);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

/// A price and a link for `tenant`, as an executor creates a deposit link.
pub async fn deposit_link(bench: &Bench, tenant: &str, amount: &str) -> Value {
    let price: Value = post_form(
        bench,
        "/v1/prices",
        Some(&format!("exe-{tenant}-price")),
        &[
            ("unit_amount", amount),
            ("currency", "usd"),
            ("product_data[name]", "Deposit"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    post_form(
        bench,
        "/v1/payment_links",
        Some(&format!("exe-{tenant}-link")),
        &[
            ("line_items[0][price]", price["id"].as_str().unwrap()),
            ("line_items[0][quantity]", "1"),
            ("metadata[tenantId]", tenant),
            ("metadata[appointmentId]", "apt_1"),
        ],
    )
    .await
    .json()
    .await
    .unwrap()
}

#[tokio::test]
async fn the_same_idempotency_key_replays_and_other_parameters_are_refused() {
    let bench = Bench::start().await;
    let form = [
        ("unit_amount", "2500"),
        ("currency", "usd"),
        ("product_data[name]", "Deposit"),
    ];
    let first = post_form(&bench, "/v1/prices", Some("key-1"), &form).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    assert!(first["id"].as_str().unwrap().starts_with("price_"));
    assert_eq!(first["object"], "price");
    assert_eq!(first["livemode"], false);

    // Same key, same parameters in another order: the stored answer.
    let reordered = [form[2], form[0], form[1]];
    let replay = post_form(&bench, "/v1/prices", Some("key-1"), &reordered).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);

    // Same key, other parameters: refused, nothing created.
    let mismatch = post_form(
        &bench,
        "/v1/prices",
        Some("key-1"),
        &[
            ("unit_amount", "9900"),
            ("currency", "usd"),
            ("product_data[name]", "Deposit"),
        ],
    )
    .await;
    assert_eq!(mismatch.status(), 400);
    let error: Value = mismatch.json().await.unwrap();
    assert_eq!(error["error"]["type"], "idempotency_error");

    // Same key on another endpoint: refused too.
    let elsewhere = post_form(
        &bench,
        "/v1/payment_links",
        Some("key-1"),
        &[
            ("line_items[0][price]", first["id"].as_str().unwrap()),
            ("line_items[0][quantity]", "1"),
        ],
    )
    .await;
    assert_eq!(elsewhere.status(), 400);

    // No key: a new object each time.
    let a: Value = post_form(&bench, "/v1/prices", None, &form)
        .await
        .json()
        .await
        .unwrap();
    let b: Value = post_form(&bench, "/v1/prices", None, &form)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn a_validation_error_is_not_stored_under_its_key() {
    let bench = Bench::start().await;
    let refused = post_form(&bench, "/v1/prices", Some("k"), &[("unit_amount", "100")]).await;
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "parameter_missing");
    assert_eq!(error["error"]["param"], "currency");
    let fixed = post_form(
        &bench,
        "/v1/prices",
        Some("k"),
        &[
            ("unit_amount", "100"),
            ("currency", "usd"),
            ("product_data[name]", "Deposit"),
        ],
    )
    .await;
    assert_eq!(fixed.status(), 200);
}

#[tokio::test]
async fn a_payment_link_points_at_the_sandboxs_payment_page() {
    let bench = Bench::start().await;
    let link = deposit_link(&bench, "default", "2500").await;
    let id = link["id"].as_str().unwrap();
    assert!(id.starts_with("plink_"));
    assert_eq!(link["object"], "payment_link");
    assert_eq!(link["active"], true);
    assert_eq!(link["livemode"], false);
    assert_eq!(link["metadata"]["tenantId"], "default");
    assert_eq!(link["url"], bench.url(&format!("/pay/{id}")));

    let fetched: Value = bench
        .http
        .get(bench.url(&format!("/v1/payment_links/{id}")))
        .bearer_auth(bench.secrets.stripe.secret_key.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, link);

    let page = bench
        .http
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("25.00 USD"), "{html}");
    assert!(html.contains(&format!("/sandbox/payments/{id}/complete")));
}

#[tokio::test]
async fn a_wrong_or_missing_key_gets_stripes_401() {
    let bench = Bench::start().await;
    let wrong = bench
        .http
        .post(bench.url("/v1/prices"))
        .bearer_auth("sk_test_not_the_key_1234")
        .form(&[("unit_amount", "100"), ("currency", "usd")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let error: Value = wrong.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Invalid API Key provided"), "{message}");
    assert!(
        !message.contains("not_the_key"),
        "the key is masked: {message}"
    );
    let missing = bench
        .http
        .get(bench.url("/v1/payment_links/plink_x"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
}

#[tokio::test]
async fn paying_a_link_sends_a_signed_checkout_session_completed_to_its_tenant() {
    let bench = Bench::start().await;
    let link = deposit_link(&bench, "clinic-b", "4000").await;
    let id = link["id"].as_str().unwrap();

    let listed = bench.get_json("/sandbox/payments?tenantId=clinic-b").await;
    let links = listed["links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["id"], id);
    assert_eq!(links[0]["amountMinor"], 4000);
    assert_eq!(links[0]["currency"], "USD");
    assert_eq!(links[0]["status"], "open");
    let default = bench.get_json("/sandbox/payments").await;
    assert!(
        default["links"].as_array().unwrap().is_empty(),
        "other tenants do not see it"
    );

    let done = bench
        .post_json(&format!("/sandbox/payments/{id}/complete"), Value::Null)
        .await;
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.unwrap();

    let event = bench
        .wait_for("the Stripe event", |all| {
            all.iter()
                .find(|d| d.path == "/v1/webhooks/stripe/clinic-b")
                .cloned()
        })
        .await;
    assert_eq!(event.verified, Ok(()), "Stripe-Signature");
    let event = event.json;
    assert_eq!(event["id"], done["eventId"]);
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["type"], "checkout.session.completed");
    let session = &event["data"]["object"];
    assert_eq!(session["object"], "checkout.session");
    assert_eq!(session["id"], done["sessionId"]);
    assert_eq!(session["payment_link"], id);
    assert_eq!(session["amount_total"], 4000);
    assert_eq!(session["currency"], "usd");
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(session["metadata"]["appointmentId"], "apt_1");

    let listed = bench.get_json("/sandbox/payments?tenantId=clinic-b").await;
    assert_eq!(listed["links"][0]["status"], "paid");
    let again = bench
        .post_json(&format!("/sandbox/payments/{id}/complete"), Value::Null)
        .await;
    assert_eq!(again.status(), 409);
    let unknown = bench
        .post_json("/sandbox/payments/plink_unknown/complete", Value::Null)
        .await;
    assert_eq!(unknown.status(), 404);
}

/// The Stripe events delivered to `tenant`'s webhook, in arrival order, once there are `n`.
async fn stripe_events(bench: &Bench, tenant: &str, n: usize) -> Vec<Value> {
    let path = format!("/v1/webhooks/stripe/{tenant}");
    bench
        .wait_for("the Stripe events", |all| {
            let mine: Vec<_> = all.iter().filter(|d| d.path == path).cloned().collect();
            (mine.len() >= n).then_some(mine)
        })
        .await
        .into_iter()
        .map(|delivery| {
            assert_eq!(delivery.verified, Ok(()), "Stripe-Signature");
            delivery.json
        })
        .collect()
}

#[tokio::test]
async fn a_bank_debit_sends_an_unpaid_completion_then_the_arrived_payment() {
    let bench = Bench::start().await;
    let link = deposit_link(&bench, "clinic-d", "4000").await;
    let id = link["id"].as_str().unwrap();

    let done = bench
        .post_json(
            &format!("/sandbox/payments/{id}/complete"),
            json!({"method": "bank_debit", "outcome": "succeeded"}),
        )
        .await;
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["status"], "paid");
    assert_eq!(done["method"], "bank_debit");
    assert_eq!(done["outcome"], "succeeded");

    let events = stripe_events(&bench, "clinic-d", 2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let types: Vec<&Value> = events.iter().map(|e| &e["type"]).collect();
    assert_eq!(
        types,
        [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded"
        ]
    );
    let ids: Vec<&Value> = events.iter().map(|e| &e["id"]).collect();
    let announced: Vec<&Value> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, announced);
    assert_ne!(
        events[0]["id"], events[1]["id"],
        "each event has its own id"
    );
    assert_eq!(done["eventId"], events[0]["id"]);
    let statuses: Vec<&Value> = events
        .iter()
        .map(|e| &e["data"]["object"]["payment_status"])
        .collect();
    assert_eq!(statuses, ["unpaid", "paid"]);
    for event in &events {
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        let session = &event["data"]["object"];
        assert_eq!(session["id"], done["sessionId"], "one session throughout");
        assert_eq!(session["payment_link"], id);
        assert_eq!(session["payment_method_types"], json!(["us_bank_account"]));
        assert_eq!(session["status"], "complete");
        assert_eq!(session["amount_total"], 4000);
        assert_eq!(session["metadata"]["tenantId"], "clinic-d");
    }

    let listed = bench.get_json("/sandbox/payments?tenantId=clinic-d").await;
    assert_eq!(listed["links"][0]["status"], "paid");
    let again = bench
        .post_json(&format!("/sandbox/payments/{id}/complete"), Value::Null)
        .await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn a_failed_bank_debit_leaves_the_link_payable_again() {
    let bench = Bench::start().await;
    let link = deposit_link(&bench, "clinic-e", "2500").await;
    let id = link["id"].as_str().unwrap();

    let failed: Value = bench
        .post_json(
            &format!("/sandbox/payments/{id}/complete"),
            json!({"method": "bank_debit", "outcome": "failed"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed["status"], "open");
    assert_eq!(failed["outcome"], "failed");
    let events = stripe_events(&bench, "clinic-e", 2).await;
    let types: Vec<&Value> = events.iter().map(|e| &e["type"]).collect();
    assert_eq!(
        types,
        [
            "checkout.session.completed",
            "checkout.session.async_payment_failed"
        ]
    );
    let statuses: Vec<&Value> = events
        .iter()
        .map(|e| &e["data"]["object"]["payment_status"])
        .collect();
    assert_eq!(statuses, ["unpaid", "unpaid"]);
    let listed = bench.get_json("/sandbox/payments?tenantId=clinic-e").await;
    assert_eq!(listed["links"][0]["status"], "open");

    // The patient tries again, by card: a new session, paid.
    let paid = bench
        .post_json(&format!("/sandbox/payments/{id}/complete"), json!({}))
        .await;
    assert_eq!(paid.status(), 200);
    let paid: Value = paid.json().await.unwrap();
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["method"], "card");
    assert_ne!(paid["sessionId"], failed["sessionId"]);
    let events = stripe_events(&bench, "clinic-e", 3).await;
    let card = events
        .iter()
        .find(|e| e["id"] == paid["eventId"])
        .expect("the card payment's event");
    assert_eq!(card["type"], "checkout.session.completed");
    assert_eq!(card["data"]["object"]["payment_status"], "paid");
    assert_eq!(
        card["data"]["object"]["payment_method_types"],
        json!(["card"])
    );
}

#[tokio::test]
async fn the_hosted_pages_forms_pay_by_card_or_by_bank_debit() {
    let bench = Bench::start().await;
    let link = deposit_link(&bench, "clinic-f", "2500").await;
    let id = link["id"].as_str().unwrap();
    let page = bench
        .http
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"method\" value=\"bank_debit\""),
        "{page}"
    );
    assert!(page.contains("name=\"outcome\" value=\"failed\""), "{page}");

    let post_form = |form: &'static [(&'static str, &'static str)]| {
        bench
            .http
            .post(bench.url(&format!("/sandbox/payments/{id}/complete")))
            .form(form)
            .send()
    };
    // A failing debit's button, with a field a browser might add.
    let failed: Value = post_form(&[("method", "bank_debit"), ("outcome", "failed"), ("x", "1")])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(failed["method"], "bank_debit");
    assert_eq!(failed["status"], "open");
    // The card button posts no fields at all.
    let paid = post_form(&[]).await.unwrap();
    assert_eq!(paid.status(), 200);
    let paid: Value = paid.json().await.unwrap();
    assert_eq!(paid["method"], "card");
    assert_eq!(paid["status"], "paid");
}

#[tokio::test]
async fn an_unknown_method_or_a_failing_card_is_refused_and_pays_nothing() {
    let bench = Bench::start().await;
    let link = deposit_link(&bench, "clinic-g", "2500").await;
    let path = format!(
        "/sandbox/payments/{}/complete",
        link["id"].as_str().unwrap()
    );
    for (body, field) in [
        (json!({"method": "cash"}), "method"),
        (json!({"method": "card", "outcome": "failed"}), "outcome"),
        (
            json!({"method": "bank_debit", "outcome": "maybe"}),
            "outcome",
        ),
        (json!({"amount": 1}), "amount"),
    ] {
        let refused = bench.post_json(&path, body.clone()).await;
        assert_eq!(refused.status(), 422, "{body}");
        let error: Value = refused.json().await.unwrap();
        assert_eq!(error["error"]["code"], "VALIDATION_ERROR", "{body}");
        assert!(
            error["error"]["details"]["field"]
                .as_str()
                .is_some_and(|f| f.contains(field)),
            "{body}: {error}"
        );
    }
    let malformed = bench
        .http
        .post(bench.url(&path))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let listed = bench.get_json("/sandbox/payments?tenantId=clinic-g").await;
    assert_eq!(listed["links"][0]["status"], "open");
}
