//! A tenant's own Stripe and Calendly credentials end to end (docs/adr/0011-tenant-credentials.md),
//! on both engines: a real core, the sandbox (with the tenant's own Stripe account and Calendly
//! user added, as the clinic would have them at the providers), and an executor reading
//! tenants' credentials from core.
//!
//! - Stripe: the deposit link core asks for a tenant's patient is made with the tenant's own
//!   secret key, in its own account; the patient's payment arrives signed with the tenant's own
//!   webhook secret and core records it. Once the tenant's credentials are removed, the next
//!   link is made in the installation's account and its payment verifies with the
//!   installation's secret.
//! - Calendly: the tenant's booking arrives signed with its own signing key and core books it;
//!   the executor's invitee look-up uses the tenant's own token (the installation's token
//!   cannot see that user's bookings). Once removed, the installation's token reads the
//!   tenant's next booking.
//!
//! Secrets never appear in an answer or a log line.

#[path = "../../apps/openclaw-executor/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use aro_openclaw_executor::Worker;
use aro_openclaw_executor::core::ClaimedExecution;
use aro_openclaw_executor::handlers;
use aro_openclaw_executor::outcome::Outcome;
use aro_openclaw_executor::providers::{self, Providers};
use aro_tests::{CapturedLogs, both_engines};
use serde_json::{Value, json};
use support::{Drill, drill_tuning, wait_until};

const OWN_STRIPE_KEY: &str = "sk_test_payclinic0123456789abcdefQ7";
const OWN_WHSEC: &str = "whsec_payclinic0123456789abcdefW5";
const OWN_CALENDLY_TOKEN: &str = "calclinic-own-calendly-token-5d1e";
const OWN_CALENDLY_KEY: &str = "calclinic-own-calendly-signing-key-8f";

/// Every secret these tests set.
const SECRETS: [&str; 4] = [
    OWN_STRIPE_KEY,
    OWN_WHSEC,
    OWN_CALENDLY_TOKEN,
    OWN_CALENDLY_KEY,
];

// ----- every log line of this test process, to look for secrets in -----

/// Installs (once) a debug-level subscriber writing into memory.
fn logs() -> &'static CapturedLogs {
    CapturedLogs::install()
}

fn assert_no_secret(haystack: &str, what: &str) {
    for secret in SECRETS {
        assert!(!haystack.contains(secret), "{what} shows a secret");
    }
}

fn assert_logs_clean() {
    let text = logs().text();
    assert!(!text.is_empty(), "the log capture saw nothing");
    assert_no_secret(&text, "the log");
}

// ----- calling core and the sandbox -----

async fn admin_call(drill: &Drill, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = drill
        .http
        .request(method.parse().unwrap(), drill.core.url.join(path).unwrap())
        .bearer_auth(&drill.admin);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("core answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_no_secret(&text, "core's answer");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn sandbox_call(
    drill: &Drill,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = drill.http.request(
        method.parse().unwrap(),
        drill.sandbox.url.join(path).unwrap(),
    );
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("sandbox answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_no_secret(&text, "the sandbox's answer");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Providers with the installation's credentials only (no tenant's own).
fn installation_only(drill: &Drill) -> Providers {
    let config = drill.config();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resilient = providers::policies(&config, &drill_tuning()).build();
    Providers::new(&config, &http, &resilient, 4)
}

/// A claimed execution for `tenant`, as core would hand it out.
fn claimed(tenant: &str, command_type: &str, payload: Value) -> ClaimedExecution {
    serde_json::from_value(json!({
        "executionId": format!("exe_{tenant}_{}", chrono::Utc::now().timestamp_micros()),
        "tenantId": tenant, "correlationId": "corr", "commandType": command_type,
        "payload": payload, "attempt": 1, "leaseUntil": "2099-01-01T00:00:00Z",
        "createdAt": chrono::Utc::now(),
    }))
    .expect("claimed execution")
}

// ----- Stripe -----

/// The tenant's deposit links at the sandbox's payment page, oldest first.
async fn links(drill: &Drill, tenant: &str) -> Vec<Value> {
    let (status, body) = sandbox_call(
        drill,
        "GET",
        &format!("sandbox/payments?tenantId={tenant}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    body["links"].as_array().cloned().unwrap_or_default()
}

/// Installs the drill's tenant configuration with every patient counted high risk, so each
/// new booking asks for a deposit link at once.
async fn deposits_for_everyone(drill: &Drill, tenant: &str) {
    let mut config: Value = serde_json::from_str(include_str!(
        "../../apps/openclaw-executor/tests/support/tenant-config.json"
    ))
    .expect("tenant config");
    config["policies"]["highRiskThreshold"] = json!(0);
    let (status, answer) = drill
        .command(
            tenant,
            json!({"commandType": "tenant.update_config", "tenantId": tenant,
                   "aggregate": {"type": "tenant", "id": tenant}, "payload": config}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// Books a visit for `phone` and runs the executor until the tenant has `n` links.
async fn book_and_get_link(
    drill: &Drill,
    worker: &Worker,
    tenant: &str,
    external: &str,
    phone: &str,
    n: usize,
) -> Value {
    drill.book(tenant, external, phone, 50).await;
    wait_until(Duration::from_secs(30), "the deposit link is made", || {
        let worker = worker.clone();
        async move {
            let _ = worker.claim_and_run_once().await;
            links(drill, tenant).await.len() >= n
        }
    })
    .await;
    wait_until(Duration::from_secs(30), "core records the link", || async {
        drill.events(tenant, "payment.link_created").await.len() >= n
    })
    .await;
    links(drill, tenant).await.remove(n - 1)
}

/// The patient pays `link` by card; waits until core has recorded `n` payments.
async fn pay(drill: &Drill, tenant: &str, link: &Value, n: usize) {
    let id = link["id"].as_str().expect("link id");
    let (status, answer) = sandbox_call(
        drill,
        "POST",
        &format!("sandbox/payments/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    wait_until(
        Duration::from_secs(30),
        "core verifies the signed payment and records it",
        || async { drill.events(tenant, "payment.completed").await.len() >= n },
    )
    .await;
}

both_engines!(
    a_tenants_deposit_link_is_made_with_its_own_stripe_key_and_with_the_installations_once_removed,
    |db| async move {
        logs();
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        drill.create_tenant("clinic-pay", None).await;
        deposits_for_everyone(&drill, "clinic-pay").await;
        // The clinic's own Stripe account, at Stripe (the sandbox) and in ARO.
        let (status, added) = sandbox_call(
            &drill,
            "POST",
            "sandbox/accounts",
            Some(json!({"provider": "stripe", "secretKey": OWN_STRIPE_KEY, "webhookSecret": OWN_WHSEC})),
        )
        .await;
        assert_eq!(status, 201, "{added}");
        let own_account = added["accountId"].as_str().expect("account id").to_owned();
        let (status, answer) = admin_call(
            &drill,
            "PUT",
            "v1/admin/tenants/clinic-pay/providers/stripe",
            Some(json!({"secretKey": OWN_STRIPE_KEY, "webhookSecret": OWN_WHSEC})),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        let (worker, providers) = drill.stepped_executor();

        // Made with the tenant's key: the link is in its own account.
        let own = book_and_get_link(
            &drill,
            &worker,
            "clinic-pay",
            "https://x.example/i/pay-1",
            "+14155550161",
            1,
        )
        .await;
        assert_eq!(own["account"], own_account.as_str(), "{own}");
        assert_eq!(own["amountMinor"], 2500);
        assert_eq!(own["metadata"]["tenantId"], "clinic-pay");
        let created = drill.events("clinic-pay", "payment.link_created").await;
        assert_eq!(
            created[0]["payload"]["providerRef"].as_str(),
            own["id"].as_str(),
            "core keeps Stripe's id of the link: {created:?}"
        );
        // Stripe signs the payment with the tenant's own webhook secret; core verifies it so.
        pay(&drill, "clinic-pay", &own, 1).await;

        // Removed: the installation's key makes the next link, in the installation's account,
        // and the installation's secret verifies its payment.
        let (status, _) = admin_call(
            &drill,
            "DELETE",
            "v1/admin/tenants/clinic-pay/providers/stripe",
            None,
        )
        .await;
        assert_eq!(status, 204);
        let fallback = book_and_get_link(
            &drill,
            &worker,
            "clinic-pay",
            "https://x.example/i/pay-2",
            "+14155550162",
            2,
        )
        .await;
        assert_eq!(fallback["account"], "acct_sandbox", "{fallback}");
        pay(&drill, "clinic-pay", &fallback, 2).await;
        assert!(
            providers.checks().iter().all(|c| c.ok),
            "{:?}",
            providers.checks()
        );
        assert_logs_clean();
    }
);

// ----- Calendly -----

/// A booking at the sandbox's Calendly for `tenant`; returns its invitee URI.
async fn book_at_calendly(drill: &Drill, tenant: &str, phone: &str) -> String {
    let (status, booked) = sandbox_call(
        drill,
        "POST",
        "sandbox/bookings",
        Some(
            json!({"name": "Pat Example", "phone": phone, "startsAt": "2030-03-05T15:00:00Z",
                    "durationMinutes": 30, "eventType": "checkup", "tenantId": tenant}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{booked}");
    booked["inviteeUri"]
        .as_str()
        .expect("invitee uri")
        .to_owned()
}

/// Waits until core has booked `n` visits for `tenant` (the booking webhooks verified).
async fn booked(drill: &Drill, tenant: &str, n: usize) {
    wait_until(
        Duration::from_secs(30),
        "core verifies the signed booking and books the visit",
        || async { drill.events(tenant, "appointment.booked").await.len() >= n },
    )
    .await;
}

/// The executor's `booking.fetch_invitee` for `tenant`.
async fn look_up(providers: &Providers, tenant: &str, invitee: &str) -> Outcome {
    handlers::perform(
        providers,
        &claimed(
            tenant,
            "booking.fetch_invitee",
            json!({"inviteeUri": invitee}),
        ),
    )
    .await
}

fn looked_up(outcome: &Outcome, invitee: &str) {
    let Outcome::Succeeded { output, .. } = outcome else {
        panic!("the look-up failed: {outcome:?}");
    };
    assert_eq!(output["booking"]["externalId"], invitee, "{output}");
    assert_eq!(output["booking"]["customer"]["name"], "Pat Example");
}

both_engines!(
    a_tenants_invitee_look_up_uses_its_own_calendly_token_and_the_installations_once_removed,
    |db| async move {
        logs();
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        drill.create_tenant("clinic-cal", None).await;
        // The clinic's own Calendly, at Calendly (the sandbox) and in ARO.
        let (status, added) = sandbox_call(
            &drill,
            "POST",
            "sandbox/accounts",
            Some(
                json!({"provider": "calendly", "apiToken": OWN_CALENDLY_TOKEN,
                        "webhookSigningKey": OWN_CALENDLY_KEY, "tenantId": "clinic-cal"}),
            ),
        )
        .await;
        assert_eq!(status, 201, "{added}");
        let own_user = added["accountId"].as_str().expect("user").to_owned();
        let (status, answer) = admin_call(
            &drill,
            "PUT",
            "v1/admin/tenants/clinic-cal/providers/calendly",
            Some(json!({"apiToken": OWN_CALENDLY_TOKEN, "webhookSigningKey": OWN_CALENDLY_KEY})),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        let (_worker, providers) = drill.stepped_executor();

        // Signed with the tenant's own key, verified so by core.
        let own = book_at_calendly(&drill, "clinic-cal", "+14155550163").await;
        booked(&drill, "clinic-cal", 1).await;
        // The look-up reads it with the tenant's own token...
        looked_up(&look_up(&providers, "clinic-cal", &own).await, &own);
        // ...which it needs: the installation's token does not see the tenant's user's
        // bookings (a provider answer about the booking, not a refusal of the token).
        let installation_only = installation_only(&drill);
        let refused = look_up(&installation_only, "clinic-cal", &own).await;
        assert!(
            matches!(&refused, Outcome::Failed(f) if !f.retryable),
            "{refused:?}"
        );
        assert!(installation_only.checks().iter().all(|c| c.ok));

        // Removed in ARO, and the clinic's own Calendly closed: its next booking is the
        // installation's user's, signed with the installation's key, and read with the
        // installation's token.
        let (status, _) = admin_call(
            &drill,
            "DELETE",
            "v1/admin/tenants/clinic-cal/providers/calendly",
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (status, _) = sandbox_call(
            &drill,
            "DELETE",
            &format!("sandbox/accounts/calendly/{own_user}"),
            None,
        )
        .await;
        assert_eq!(status, 204);
        let fallback = book_at_calendly(&drill, "clinic-cal", "+14155550164").await;
        booked(&drill, "clinic-cal", 2).await;
        looked_up(
            &look_up(&providers, "clinic-cal", &fallback).await,
            &fallback,
        );
        assert!(
            providers.checks().iter().all(|c| c.ok),
            "{:?}",
            providers.checks()
        );
        assert_logs_clean();
    }
);
