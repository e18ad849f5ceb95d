//! The execution queue's claim over real HTTP on both engines: a token for some tenants gets
//! their work however long another tenant's backlog is (the limit counts only what the token may
//! take).

use aro_tests::*;
use serde_json::{Value, json};

async fn now(core: &Running) -> chrono::DateTime<chrono::Utc> {
    let now: Value = http()
        .get(core.url.join("v1/admin/clock").unwrap())
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}

async fn advance(core: &Running, by: &str) {
    let resp = http()
        .post(core.url.join("v1/admin/clock").unwrap())
        .bearer_auth(admin_token())
        .json(&json!({"advance": by, "waitSeconds": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// Books a visit 72 h ahead for `phone`: its 48 h reminder falls due 24–35 h from now (the send
/// window may hold it back up to 11 h), and it stays claimable until the visit starts.
async fn book(core: &Running, tenant: &str, external: &str, phone: &str) {
    let starts = now(core).await + chrono::Duration::hours(72);
    let body = json!({"commandType": "appointment.upsert", "tenantId": tenant,
        "aggregate": {"type": "appointment"},
        "payload": {"source": "calendly", "externalId": external,
            "customer": {"name": "Pat Doe", "phone": phone, "timezone": "America/New_York"},
            "startsAt": starts.to_rfc3339(),
            "endsAt": (starts + chrono::Duration::minutes(30)).to_rfc3339()}});
    let (status, answer, _) =
        post_command(core, &admin_token(), tenant, Some(external), &body).await;
    assert_eq!(status, 200, "{answer}");
}

async fn claim(core: &Running, token: &str, limit: u32) -> Vec<Value> {
    let resp = http()
        .post(core.url.join("v1/executions/claim").unwrap())
        .bearer_auth(token)
        .json(&json!({"limit": limit, "leaseSeconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    body["executions"].as_array().cloned().unwrap_or_default()
}

both_engines!(
    a_tenant_token_is_not_starved_by_another_tenants_backlog,
    |db| async move {
        let Some(env) = TestEnv::with_extra(db, "[sandbox]\nenabled = true\n").await else {
            return;
        };
        let core = start_core(&env).await;
        for tenant in ["ta", "tb"] {
            create_tenant(&core, tenant).await;
            install_test_config(&core, tenant).await;
        }
        // An older backlog of twelve reminders for tb…
        for i in 0..12 {
            book(
                &core,
                "tb",
                &format!("TB-{i}"),
                &format!("+1415555{:04}", 1000 + i),
            )
            .await;
        }
        advance(&core, "36h").await;
        // …then one newer for ta (while tb's visits are still ahead, so nothing expires).
        book(&core, "ta", "TA-1", "+14155552671").await;
        advance(&core, "35h").await;

        let ta = token(&["executions:claim"], &["ta"]);
        let claimed = claim(&core, &ta, 10).await;
        assert!(!claimed.is_empty(), "ta's reminder is handed out");
        assert!(claimed.iter().all(|e| e["tenantId"] == "ta"), "{claimed:?}");
        // tb's backlog is intact for a token that may take it.
        let tb = token(&["executions:claim"], &["tb"]);
        let theirs = claim(&core, &tb, 100).await;
        assert!(theirs.len() >= 12, "{}", theirs.len());
        assert!(theirs.iter().all(|e| e["tenantId"] == "tb"));
        core.stop().await;
    }
);
