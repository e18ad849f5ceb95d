//! A tenant's own provider credentials (docs/adr/0011-tenant-credentials.md), end to end on both
//! engines: set, list and remove them through core's admin API (refusals naming the field),
//! never finding a secret in an answer, a log line, the SQLite file or a `pg_dump`; texts of a
//! tenant with its own Twilio account leave through that account while another tenant's leave
//! through the installation's, and removing them falls back; webhooks verify with the tenant's
//! own secret; a refusal of a tenant's own credentials fails the executor's `/ready` by name.

#[path = "../../apps/openclaw-executor/tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aro_security::signatures;
use aro_tests::*;
use serde_json::{Value, json};
use support::{Drill, wait_until};

const OWN_SID: &str = "ACfeedc0ffee0123456789abcdef012345";
const OWN_TOKEN: &str = "own-twilio-auth-token-b7d1e09f";
const OWN_NUMBER: &str = "+14155550199";
const ROTATED_TOKEN: &str = "rotated-twilio-auth-token-55aa21";
const OWN_STRIPE_KEY: &str = "sk_test_ownclinic0123456789abcdefXK42";
const OWN_WHSEC: &str = "whsec_ownclinic0123456789abcdefWS77";
const OWN_CALENDLY_TOKEN: &str = "own-calendly-api-token-c3f9a2e11d";
const OWN_CALENDLY_KEY: &str = "own-calendly-signing-key-9e8d7c6b";
const INSTALLATION_WHSEC: &str = "whsec_installation_secret_0000";
const INSTALLATION_CALENDLY_KEY: &str = "installation-calendly-signing-key";

/// Every secret these tests set: none may ever be seen outside the store's ciphertext.
const SECRETS: [&str; 7] = [
    OWN_TOKEN,
    ROTATED_TOKEN,
    OWN_STRIPE_KEY,
    OWN_WHSEC,
    OWN_CALENDLY_TOKEN,
    OWN_CALENDLY_KEY,
    "refused-twilio-auth-token-4242aa",
];

/// Providers configured for the installation (base URLs on a closed port: core never calls
/// them), so the webhooks have installation secrets to fall back to.
const INSTALLATION: &str = r#"
[providers.twilio]
account_sid = "AC00000000000000000000000000000000"
auth_token = "installation-twilio-auth-token"
from_number = "+15005550006"
base_url = "http://127.0.0.1:9/"

[providers.stripe]
secret_key = "sk_test_installation"
webhook_secret = "whsec_installation_secret_0000"
base_url = "http://127.0.0.1:9/"

[providers.calendly]
api_token = "installation-calendly-token"
webhook_signing_key = "installation-calendly-signing-key"
base_url = "http://127.0.0.1:9/"
"#;

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

// ----- calling core -----

async fn call(
    core: &Running,
    method: &str,
    path: &str,
    token: &str,
    tenant: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http()
        .request(method.parse().unwrap(), core.url.join(path).unwrap())
        .bearer_auth(token);
    if let Some(t) = tenant {
        request = request.header("x-tenant-id", t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("core answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_no_secret(&text, "an answer");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn put(core: &Running, tenant: &str, provider: &str, body: Value) -> (u16, Value) {
    call(
        core,
        "PUT",
        &format!("v1/admin/tenants/{tenant}/providers/{provider}"),
        &admin_token(),
        None,
        Some(body),
    )
    .await
}

fn own_twilio() -> Value {
    json!({"accountSid": OWN_SID, "authToken": OWN_TOKEN, "fromNumber": OWN_NUMBER})
}

both_engines!(
    operators_set_list_and_remove_a_tenants_own_credentials,
    |db| async move {
        logs();
        let Some(env) = TestEnv::with_extra(db, INSTALLATION).await else {
            return;
        };
        let core = start_core(&env).await;
        create_tenant(&core, "clinic-own").await;
        create_tenant(&core, "clinic-plain").await;
        let admin = admin_token();

        // Refusals name the field (never quoting it), and store nothing.
        for (body, field) in [
            (
                json!({"accountSid": "AC12", "authToken": OWN_TOKEN, "fromNumber": OWN_NUMBER}),
                "accountSid",
            ),
            (
                json!({"accountSid": OWN_SID, "authToken": "", "fromNumber": OWN_NUMBER}),
                "authToken",
            ),
            (
                json!({"accountSid": OWN_SID, "authToken": OWN_TOKEN}),
                "fromNumber",
            ),
            (
                json!({"accountSid": OWN_SID, "authToken": OWN_TOKEN, "fromNumber": "555-0100"}),
                "fromNumber",
            ),
            (
                json!({"accountSid": OWN_SID, "authToken": OWN_TOKEN, "messagingServiceSid": "MG1"}),
                "messagingServiceSid",
            ),
            (
                json!({"accountSid": OWN_SID, "authToken": 42, "fromNumber": OWN_NUMBER}),
                "authToken",
            ),
            (
                json!({"accountSid": OWN_SID, "authToken": OWN_TOKEN, "fromNumber": OWN_NUMBER, "baseUrl": "http://x"}),
                "baseUrl",
            ),
        ] {
            let (status, error) = put(&core, "clinic-own", "twilio", body).await;
            assert_eq!(status, 422, "{error}");
            assert_eq!(error["error"]["code"], "VALIDATION_ERROR");
            assert_eq!(error["error"]["details"]["field"], field, "{error}");
        }
        let (status, error) = put(
            &core,
            "clinic-own",
            "stripe",
            json!({"secretKey": "pk_test_nope", "webhookSecret": OWN_WHSEC}),
        )
        .await;
        assert_eq!(
            (status, error["error"]["details"]["field"].as_str()),
            (422, Some("secretKey"))
        );
        let (status, error) = put(
            &core,
            "clinic-own",
            "stripe",
            json!({"secretKey": OWN_STRIPE_KEY, "webhookSecret": "sec_nope"}),
        )
        .await;
        assert_eq!(
            (status, error["error"]["details"]["field"].as_str()),
            (422, Some("webhookSecret"))
        );
        let (status, error) = put(
            &core,
            "clinic-own",
            "calendly",
            json!({"apiToken": OWN_CALENDLY_TOKEN, "webhookSigningKey": "  "}),
        )
        .await;
        assert_eq!(
            (status, error["error"]["details"]["field"].as_str()),
            (422, Some("webhookSigningKey"))
        );
        assert_eq!(
            put(&core, "clinic-own", "acuity", own_twilio()).await.0,
            404
        );
        assert_eq!(
            put(&core, "no-such-clinic", "twilio", own_twilio()).await.0,
            404
        );

        // Who may: the admin scope, for a tenant the token grants.
        let writer = token(
            &["commands:write", "events:read", "executions:claim"],
            &["*"],
        );
        let (status, error) = call(
            &core,
            "PUT",
            "v1/admin/tenants/clinic-own/providers/twilio",
            &writer,
            None,
            Some(own_twilio()),
        )
        .await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (403, Some("INSUFFICIENT_SCOPE"))
        );
        let other = token(&["admin"], &["clinic-plain"]);
        let (status, error) = call(
            &core,
            "GET",
            "v1/admin/tenants/clinic-own/providers",
            &other,
            None,
            None,
        )
        .await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (403, Some("TENANT_FORBIDDEN"))
        );

        // Set: 201, redacted; rotate: 200.
        let (status, set) = put(&core, "clinic-own", "twilio", own_twilio()).await;
        assert_eq!(status, 201, "{set}");
        assert_eq!(set["source"], "tenant");
        assert_eq!(set["rotated"], false);
        assert_eq!(set["credentials"]["accountSid"], OWN_SID);
        assert_eq!(set["credentials"]["fromNumber"], OWN_NUMBER);
        assert_eq!(set["credentials"]["authToken"], "…e09f");
        let rotated =
            json!({"accountSid": OWN_SID, "authToken": ROTATED_TOKEN, "fromNumber": OWN_NUMBER});
        let (status, set) = put(&core, "clinic-own", "twilio", rotated).await;
        assert_eq!((status, set["rotated"].as_bool()), (200, Some(true)));
        let (status, _) = put(
            &core,
            "clinic-own",
            "stripe",
            json!({"secretKey": OWN_STRIPE_KEY, "webhookSecret": OWN_WHSEC}),
        )
        .await;
        assert_eq!(status, 201);

        // List: every provider, its source, secrets redacted.
        let (status, list) = call(
            &core,
            "GET",
            "v1/admin/tenants/clinic-own/providers",
            &admin,
            None,
            None,
        )
        .await;
        assert_eq!(status, 200, "{list}");
        let sources: Vec<(&str, &str)> = list["providers"]
            .as_array()
            .expect("providers")
            .iter()
            .map(|p| {
                (
                    p["provider"].as_str().unwrap_or(""),
                    p["source"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            sources,
            [
                ("twilio", "tenant"),
                ("stripe", "tenant"),
                ("calendly", "installation")
            ]
        );
        assert_eq!(list["providers"][0]["credentials"]["authToken"], "…aa21");
        assert_eq!(
            list["providers"][1]["credentials"]["secretKey"],
            "sk_test_…XK42"
        );
        assert_eq!(
            list["providers"][1]["credentials"]["webhookSecret"],
            "whsec_…WS77"
        );
        let (_, plain) = call(
            &core,
            "GET",
            "v1/admin/tenants/clinic-plain/providers",
            &admin,
            None,
            None,
        )
        .await;
        assert!(
            plain["providers"]
                .as_array()
                .expect("providers")
                .iter()
                .all(|p| p["source"] == "installation")
        );
        assert_eq!(
            call(
                &core,
                "GET",
                "v1/admin/tenants/no-such-clinic/providers",
                &admin,
                None,
                None
            )
            .await
            .0,
            404
        );

        // The executor's read: secrets in the clear, for executions:claim only.
        let executor = token(&["executions:claim", "events:read"], &["*"]);
        let response = http()
            .get(core.url.join("v1/executions/credentials/twilio").unwrap())
            .bearer_auth(&executor)
            .header("x-tenant-id", "clinic-own")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let own: Value = response.json().await.unwrap();
        assert_eq!(
            own,
            json!({"provider": "twilio", "accountSid": OWN_SID, "authToken": ROTATED_TOKEN, "fromNumber": OWN_NUMBER})
        );
        let reader = token(&["events:read", "commands:write"], &["*"]);
        let response = http()
            .get(core.url.join("v1/executions/credentials/twilio").unwrap())
            .bearer_auth(&reader)
            .header("x-tenant-id", "clinic-own")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            403,
            "no executions:claim, no secrets"
        );
        // An operator's token sees the secrets redacted on the admin routes, and not in the
        // clear here: admin does not stand in for executions:claim on this route.
        let operator = token(&["admin", "events:read", "commands:write"], &["*"]);
        let (status, error) = call(
            &core,
            "GET",
            "v1/executions/credentials/twilio",
            &operator,
            Some("clinic-own"),
            None,
        )
        .await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (403, Some("INSUFFICIENT_SCOPE")),
            "admin alone reads no secrets: {error}"
        );
        assert!(
            !error.to_string().contains(ROTATED_TOKEN),
            "the refusal carries no secret"
        );
        let (status, error) = call(
            &core,
            "GET",
            "v1/executions/credentials/calendly",
            &executor,
            Some("clinic-own"),
            None,
        )
        .await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (404, Some("NO_TENANT_CREDENTIALS"))
        );

        // Remove: the installation's apply again.
        let (status, _) = call(
            &core,
            "DELETE",
            "v1/admin/tenants/clinic-own/providers/twilio",
            &admin,
            None,
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (status, error) = call(
            &core,
            "DELETE",
            "v1/admin/tenants/clinic-own/providers/twilio",
            &admin,
            None,
            None,
        )
        .await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (404, Some("NO_TENANT_CREDENTIALS"))
        );
        let (status, _) = call(
            &core,
            "GET",
            "v1/executions/credentials/twilio",
            &executor,
            Some("clinic-own"),
            None,
        )
        .await;
        assert_eq!(status, 404);
        let (_, list) = call(
            &core,
            "GET",
            "v1/admin/tenants/clinic-own/providers",
            &admin,
            None,
            None,
        )
        .await;
        assert_eq!(list["providers"][0]["source"], "installation");
        assert_eq!(list["providers"][1]["source"], "tenant");

        // The audit trail says who changed which provider, and nothing more; no event was added.
        let store = aro_core_engine::storage::open(&env.config)
            .await
            .expect("store");
        let trail = store
            .read(|tx| Box::pin(async move { tx.raw().audit_trail("clinic-own", 0, 100).await }))
            .await
            .expect("audit trail");
        store.close().await;
        let actions: Vec<(&str, Option<&str>)> = trail
            .iter()
            .map(|r| (r.action.as_str(), r.subject.as_deref()))
            .filter(|(a, _)| a.starts_with("tenant.credentials"))
            .collect();
        assert_eq!(
            actions,
            [
                ("tenant.credentials_set", Some("twilio")),
                ("tenant.credentials_set", Some("twilio")),
                ("tenant.credentials_set", Some("stripe")),
                ("tenant.credentials_removed", Some("twilio")),
            ]
        );
        let details: String = trail.iter().map(|r| r.detail.0.to_string()).collect();
        assert_no_secret(&details, "the audit trail");
        let (_, events) = call(
            &core,
            "GET",
            "v1/events?limit=1000",
            &admin,
            Some("clinic-own"),
            None,
        )
        .await;
        let types: Vec<&str> = events["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["eventType"].as_str())
            .collect();
        assert!(types.iter().all(|t| !t.contains("credential")), "{types:?}");
        assert_no_secret(&events.to_string(), "the event log");

        core.stop().await;
        assert_logs_clean();
    }
);

/// Stores credentials for all three providers straight through the store, as core does.
async fn seal_all(env: &TestEnv) {
    let store = aro_core_engine::storage::open(&env.config)
        .await
        .expect("store");
    store.migrate_up().await.expect("migrate");
    store
        .write(|tx| {
            Box::pin(async move {
                tx.insert_tenant(&aro_store::contract::tenant("clinic-own"))
                    .await?;
                use aro_domain::credentials::*;
                let now = aro_store::contract::now();
                for credentials in [
                    ProviderCredentials::Twilio(TwilioCredentials {
                        account_sid: OWN_SID.into(),
                        auth_token: OWN_TOKEN.into(),
                        from_number: Some(OWN_NUMBER.into()),
                        messaging_service_sid: None,
                    }),
                    ProviderCredentials::Stripe(StripeCredentials {
                        secret_key: OWN_STRIPE_KEY.into(),
                        webhook_secret: OWN_WHSEC.into(),
                    }),
                    ProviderCredentials::Calendly(CalendlyCredentials {
                        api_token: OWN_CALENDLY_TOKEN.into(),
                        webhook_signing_key: OWN_CALENDLY_KEY.into(),
                    }),
                ] {
                    tx.put_tenant_credentials("clinic-own", &credentials, now)
                        .await?;
                }
                Ok::<_, aro_store::StoreError>(())
            })
        })
        .await
        .expect("sealed");
    // Read back whole, and bound to their row: a copy under another provider does not open.
    let (listed, moved) = store
        .write(|tx| {
            Box::pin(async move {
                let listed = tx.list_tenant_credentials("clinic-own").await?;
                let row = tx
                    .raw()
                    .get_tenant_credentials("clinic-own", "stripe")
                    .await?
                    .expect("row");
                tx.raw()
                    .upsert_tenant_credentials(
                        &aro_store::tenant_credentials::TenantCredentialRow {
                            provider: "calendly".into(),
                            ..row
                        },
                    )
                    .await?;
                let moved = tx
                    .tenant_credentials(
                        "clinic-own",
                        aro_domain::credentials::CredentialProvider::Calendly,
                    )
                    .await;
                Ok::<_, aro_store::StoreError>((listed, moved.is_err()))
            })
        })
        .await
        .expect("read back");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].credentials.webhook_secret(), OWN_CALENDLY_KEY);
    assert!(
        moved,
        "a ciphertext copied to another provider's row does not open"
    );
    // Put calendly back as it was, so the scan below sees the state an installation would.
    store
        .write(|tx| {
            Box::pin(async move {
                tx.put_tenant_credentials(
                    "clinic-own",
                    &aro_domain::credentials::ProviderCredentials::Calendly(
                        aro_domain::credentials::CalendlyCredentials {
                            api_token: OWN_CALENDLY_TOKEN.into(),
                            webhook_signing_key: OWN_CALENDLY_KEY.into(),
                        },
                    ),
                    aro_store::contract::now(),
                )
                .await
            })
        })
        .await
        .expect("calendly again");
    store.close().await;
}

fn assert_clean_at_rest(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.contains("tenant_credentials"),
        "{what}: the scan found the table"
    );
    assert_no_secret(&text, what);
    assert!(
        !text.contains(OWN_SID),
        "{what}: the whole document is sealed, identifiers too"
    );
}

#[tokio::test]
async fn the_sqlite_file_holds_no_tenant_secrets() {
    let env = TestEnv::new(Db::Sqlite).await.expect("sqlite env");
    seal_all(&env).await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(env.dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("aro.db"))
        {
            bytes.extend(std::fs::read(&path).expect("read"));
        }
    }
    assert_clean_at_rest(&bytes, "the SQLite database");
}

#[tokio::test]
async fn a_pg_dump_holds_no_tenant_secrets() {
    let Some(env) = TestEnv::new(Db::Postgres).await else {
        return;
    };
    seal_all(&env).await;
    let url = env.pg.as_ref().expect("pg").url.clone();
    let out = std::process::Command::new("pg_dump")
        .args(["--no-owner", "--inserts", &url])
        .output()
        .expect("pg_dump is on PATH (scripts/test.sh puts PostgreSQL's binaries there)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("INSERT INTO public.tenant_credentials"));
    assert_clean_at_rest(&out.stdout, "pg_dump");
}

/// Posts a Stripe or Calendly webhook signed with `secret`; returns the status.
async fn signed_webhook(core: &Running, provider: &str, tenant: &str, secret: &str) -> u16 {
    let now = chrono::Utc::now().timestamp();
    let (body, header, signature) = if provider == "stripe" {
        let body = serde_json::to_vec(&json!({"id": format!("evt_{}", uuid_like()), "object": "event",
            "type": "customer.created", "created": now, "livemode": false, "api_version": "2020-08-27",
            "data": {"object": {"id": "cus_x", "object": "customer"}}})).expect("json");
        let signature = signatures::stripe::sign_header(secret, &body, now);
        (body, signatures::stripe::HEADER, signature)
    } else {
        let body = serde_json::to_vec(&json!({"event": "routing_form_submission.created",
            "created_at": "2030-01-01T00:00:00.000000Z", "payload": {}}))
        .expect("json");
        let signature = signatures::calendly::sign_header(secret, &body, now);
        (body, signatures::calendly::HEADER, signature)
    };
    http()
        .post(
            core.url
                .join(&format!("v1/webhooks/{provider}/{tenant}"))
                .unwrap(),
        )
        .header("content-type", "application/json")
        .header(header, signature)
        .body(body)
        .send()
        .await
        .expect("webhook answered")
        .status()
        .as_u16()
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{:08}", N.fetch_add(1, Ordering::SeqCst))
}

both_engines!(
    webhooks_verify_with_the_tenants_own_secret_and_fall_back_when_it_is_removed,
    |db| async move {
        logs();
        let Some(env) = TestEnv::with_extra(db, INSTALLATION).await else {
            return;
        };
        let core = start_core(&env).await;
        create_tenant(&core, "clinic-own").await;
        create_tenant(&core, "clinic-plain").await;
        assert_eq!(
            put(
                &core,
                "clinic-own",
                "stripe",
                json!({"secretKey": OWN_STRIPE_KEY, "webhookSecret": OWN_WHSEC})
            )
            .await
            .0,
            201
        );
        assert_eq!(
            put(
                &core,
                "clinic-own",
                "calendly",
                json!({"apiToken": OWN_CALENDLY_TOKEN, "webhookSigningKey": OWN_CALENDLY_KEY})
            )
            .await
            .0,
            201
        );

        for (provider, own, installation) in [
            ("stripe", OWN_WHSEC, INSTALLATION_WHSEC),
            ("calendly", OWN_CALENDLY_KEY, INSTALLATION_CALENDLY_KEY),
        ] {
            // Stripe gives each endpoint its own secret: the tenant's endpoint signs with its own.
            assert_eq!(
                signed_webhook(&core, provider, "clinic-own", own).await,
                200,
                "{provider}"
            );
            assert_eq!(
                signed_webhook(&core, provider, "clinic-own", installation).await,
                401,
                "{provider}"
            );
            // A tenant without its own keeps the installation's.
            assert_eq!(
                signed_webhook(&core, provider, "clinic-plain", installation).await,
                200,
                "{provider}"
            );
            assert_eq!(
                signed_webhook(&core, provider, "clinic-plain", own).await,
                401,
                "{provider}"
            );
            // An unknown tenant learns nothing before the signature: 401, then 404.
            assert_eq!(
                signed_webhook(&core, provider, "nobody", own).await,
                401,
                "{provider}"
            );
            assert_eq!(
                signed_webhook(&core, provider, "nobody", installation).await,
                404,
                "{provider}"
            );
        }

        let admin = admin_token();
        for provider in ["stripe", "calendly"] {
            let (status, _) = call(
                &core,
                "DELETE",
                &format!("v1/admin/tenants/clinic-own/providers/{provider}"),
                &admin,
                None,
                None,
            )
            .await;
            assert_eq!(status, 204);
        }
        for (provider, own, installation) in [
            ("stripe", OWN_WHSEC, INSTALLATION_WHSEC),
            ("calendly", OWN_CALENDLY_KEY, INSTALLATION_CALENDLY_KEY),
        ] {
            assert_eq!(
                signed_webhook(&core, provider, "clinic-own", installation).await,
                200,
                "{provider} falls back"
            );
            assert_eq!(
                signed_webhook(&core, provider, "clinic-own", own).await,
                401,
                "{provider}"
            );
        }
        core.stop().await;
        assert_logs_clean();
    }
);

/// The sandbox's phone: the messages sent to `to`.
async fn phone(drill: &Drill, to: &str) -> Vec<Value> {
    drill.messages(Some(to)).await
}

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
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn add_sandbox_account(drill: &Drill, sid: &str, token: &str) {
    let response = drill
        .http
        .post(drill.sandbox.url.join("sandbox/accounts").unwrap())
        .json(&json!({"provider": "twilio", "accountSid": sid, "authToken": token}))
        .send()
        .await
        .expect("sandbox");
    assert_eq!(response.status().as_u16(), 201);
}

both_engines!(
    a_tenants_texts_leave_through_its_own_twilio_account_and_fall_back_when_it_is_removed,
    |db| async move {
        logs();
        let Some(drill) = Drill::start(db).await else {
            return;
        };
        drill.create_tenant("clinic-own", None).await;
        add_sandbox_account(&drill, OWN_SID, OWN_TOKEN).await;
        let (status, answer) = admin_call(
            &drill,
            "PUT",
            "v1/admin/tenants/clinic-own/providers/twilio",
            Some(own_twilio()),
        )
        .await;
        assert_eq!(status, 201, "{answer}");

        // An executor driven step by step, re-reading tenants' credentials on every execution,
        // so the removal below takes effect at once.
        let (worker, providers) = drill.stepped_executor();
        let run_until = |what: &'static str, to: &'static str, n: usize| {
            let worker = worker.clone();
            let drill = &drill;
            async move {
                wait_until(Duration::from_secs(30), what, || {
                    let worker = worker.clone();
                    async move {
                        let _ = worker.claim_and_run_once().await;
                        phone(drill, to).await.len() >= n
                    }
                })
                .await;
            }
        };

        drill
            .book(
                "clinic-own",
                "https://x.example/i/own-1",
                "+14155550181",
                50,
            )
            .await;
        drill
            .book("default", "https://x.example/i/plain-1", "+14155550182", 50)
            .await;
        drill.advance("3h").await;
        run_until("the own tenant's reminder is sent", "+14155550181", 1).await;
        run_until("the other tenant's reminder is sent", "+14155550182", 1).await;
        let own = phone(&drill, "+14155550181").await;
        assert_eq!(own.len(), 1, "{own:?}");
        assert_eq!(
            own[0]["accountSid"], OWN_SID,
            "through the tenant's own account"
        );
        assert_eq!(own[0]["from"], OWN_NUMBER);
        let plain = phone(&drill, "+14155550182").await;
        assert_eq!(
            plain[0]["accountSid"], "AC0123456789abcdef0123456789abcdef",
            "the installation's"
        );
        assert_eq!(plain[0]["from"], "+15005550006");

        // Twilio signs the delivery reports and the patient's reply with the tenant's own auth
        // token; core verifies them with it.
        wait_until(
            Duration::from_secs(30),
            "the own account's delivery report is accepted",
            || async {
                !drill
                    .events("clinic-own", "message.delivered")
                    .await
                    .is_empty()
            },
        )
        .await;
        let reply: Value = drill
            .http
            .post(drill.sandbox.url.join("sandbox/reply").unwrap())
            .json(&json!({"from": "+14155550181", "body": "C", "tenantId": "clinic-own"}))
            .send()
            .await
            .expect("reply")
            .json()
            .await
            .expect("reply json");
        assert_eq!(reply["webhook"]["status"], 200, "{reply}");

        // Removed: the tenant's next text leaves through the installation's account.
        let (status, _) = admin_call(
            &drill,
            "DELETE",
            "v1/admin/tenants/clinic-own/providers/twilio",
            None,
        )
        .await;
        assert_eq!(status, 204);
        drill
            .book(
                "clinic-own",
                "https://x.example/i/own-2",
                "+14155550183",
                50,
            )
            .await;
        drill.advance("3h").await;
        run_until(
            "the tenant's reminder after the removal is sent",
            "+14155550183",
            1,
        )
        .await;
        let after = phone(&drill, "+14155550183").await;
        assert_eq!(after[0]["accountSid"], "AC0123456789abcdef0123456789abcdef");
        wait_until(
            Duration::from_secs(30),
            "its delivery report, signed with the installation's token, is accepted",
            || async { drill.events("clinic-own", "message.delivered").await.len() >= 2 },
        )
        .await;
        assert!(
            providers.checks().iter().all(|c| c.ok),
            "{:?}",
            providers.checks()
        );
        assert_logs_clean();
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_refused_credentials_fail_the_executors_readiness_by_name() {
    logs();
    let Some(drill) = Drill::start(Db::Sqlite).await else {
        return;
    };
    drill.create_tenant("clinic-bad", None).await;
    let refused = SECRETS[6];
    // An account the provider (the sandbox) does not know: every call is refused with 401.
    let (status, _) = admin_call(
        &drill,
        "PUT",
        "v1/admin/tenants/clinic-bad/providers/twilio",
        Some(json!({"accountSid": OWN_SID, "authToken": refused, "fromNumber": OWN_NUMBER})),
    )
    .await;
    assert_eq!(status, 201);
    let (_worker, executor) = drill.start_executor().await;
    drill
        .book(
            "clinic-bad",
            "https://x.example/i/bad-1",
            "+14155550184",
            50,
        )
        .await;
    drill
        .book("default", "https://x.example/i/fine-1", "+14155550185", 50)
        .await;
    drill.advance("3h").await;

    let ready = executor.url.join("ready").unwrap();
    let last = Arc::new(Mutex::new(Value::Null));
    wait_until(
        Duration::from_secs(30),
        "/ready names the refused tenant",
        || {
            let http = drill.http.clone();
            let ready = ready.clone();
            let last = last.clone();
            async move {
                let response = http.get(ready).send().await.expect("ready");
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                assert_no_secret(&text, "/ready");
                *last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    serde_json::from_str(&text).unwrap_or(Value::Null);
                status == 503 && text.contains("twilio:clinic-bad")
            }
        },
    )
    .await;
    let last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let checks = last["error"]["details"]["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let bad = checks
        .iter()
        .find(|c| c["name"] == "twilio:clinic-bad")
        .expect("a check for the tenant");
    assert_eq!(bad["ok"], false);
    assert!(
        bad["detail"].as_str().unwrap_or("").contains("clinic-bad"),
        "{bad}"
    );
    // The installation's own Twilio check is unaffected, and its tenant's text went out.
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "twilio" && c["ok"] == true),
        "{checks:?}"
    );
    wait_until(
        Duration::from_secs(30),
        "the other tenant's reminder is sent",
        || async { phone(&drill, "+14155550185").await.len() == 1 },
    )
    .await;
    assert!(phone(&drill, "+14155550184").await.is_empty());
    let events = drill
        .http
        .get(drill.core.url.join("v1/events?limit=1000").unwrap())
        .bearer_auth(&drill.admin)
        .header("x-tenant-id", "clinic-bad")
        .send()
        .await
        .expect("events")
        .text()
        .await
        .unwrap_or_default();
    assert!(events.contains("message.queued"), "{events}");
    assert_no_secret(&events, "the events");
    assert_logs_clean();
}
