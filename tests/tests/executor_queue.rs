//! The execution queue over real HTTP on both engines: a token for some tenants gets their work
//! however long another tenant's backlog is (the limit counts only what the token may take), and
//! a claimant whose lapsed lease was claimed again cannot extend or settle it (`LEASE_LOST`).

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

/// `POST /v1/executions/{id}/{action}` with `body`: the status and the answer.
async fn execution_call(
    core: &Running,
    token: &str,
    id: &str,
    action: &str,
    body: Value,
) -> (u16, Value) {
    let resp = http()
        .post(
            core.url
                .join(&format!("v1/executions/{id}/{action}"))
                .unwrap(),
        )
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn claim_with_lease(core: &Running, token: &str, lease_seconds: u32) -> Vec<Value> {
    let resp = http()
        .post(core.url.join("v1/executions/claim").unwrap())
        .bearer_auth(token)
        .json(&json!({"limit": 10, "leaseSeconds": lease_seconds}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    body["executions"].as_array().cloned().unwrap_or_default()
}

// Two executor replicas share one token (one subject); each claim's `leaseId` tells them apart.
// A's lease lapses and B claims the execution again: A can no longer extend or settle it, and
// B's result is the one core takes (docs/adr/0006, "one lease per claim").
both_engines!(
    a_replica_whose_lease_was_claimed_again_gets_lease_lost,
    |db| async move {
        let Some(env) = TestEnv::with_extra(db, "[sandbox]\nenabled = true\n").await else {
            return;
        };
        let core = start_core(&env).await;
        create_tenant(&core, "ta").await;
        install_test_config(&core, "ta").await;
        book(&core, "ta", "LEASE-1", "+14155552671").await;
        advance(&core, "35h").await;
        // Both replicas use the executor's one token.
        let executor = token(&["executions:claim"], &["*"]);

        // A claims with the shortest lease there is, and lets it lapse (real time).
        let a = claim_with_lease(&core, &executor, 5).await;
        assert_eq!(a.len(), 1, "{a:?}");
        let (id, a_lease) = (
            a[0]["executionId"].as_str().unwrap().to_owned(),
            a[0]["leaseId"].as_str().unwrap().to_owned(),
        );
        assert!(a_lease.starts_with("lse_"), "{a_lease}");
        tokio::time::sleep(std::time::Duration::from_millis(5300)).await;

        // B claims it again: same execution, next attempt, its own lease.
        let b = claim_with_lease(&core, &executor, 60).await;
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0]["executionId"], id.as_str());
        assert_eq!(b[0]["attempt"], 2);
        let b_lease = b[0]["leaseId"].as_str().unwrap().to_owned();
        assert_ne!(a_lease, b_lease);

        // A's heartbeat and result are refused; the result changes nothing.
        let (status, answer) = execution_call(
            &core,
            &executor,
            &id,
            "heartbeat",
            json!({"leaseSeconds": 60, "leaseId": a_lease}),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (409, Some("LEASE_LOST")),
            "{answer}"
        );
        let (status, answer) = execution_call(
            &core,
            &executor,
            &id,
            "result",
            json!({"status": "succeeded", "providerRef": "SM_A", "leaseId": a_lease}),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (409, Some("LEASE_LOST")),
            "{answer}"
        );
        // A malformed lease id is a validation error, not a lost lease.
        let (status, answer) = execution_call(
            &core,
            &executor,
            &id,
            "heartbeat",
            json!({"leaseId": "nope"}),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("VALIDATION_ERROR")),
            "{answer}"
        );

        // B still holds the lease, and its result is recorded as the first one (no duplicate).
        let (status, answer) = execution_call(
            &core,
            &executor,
            &id,
            "heartbeat",
            json!({"leaseSeconds": 60, "leaseId": b_lease}),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let b_result = json!({"status": "succeeded", "providerRef": "SM_B",
            "output": {"status": "queued"}, "leaseId": b_lease});
        let (status, answer) =
            execution_call(&core, &executor, &id, "result", b_result.clone()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "succeeded");
        assert!(answer["duplicate"].is_null(), "{answer}");
        // B's report repeated is a duplicate; A's late one is still refused.
        let (status, answer) = execution_call(&core, &executor, &id, "result", b_result).await;
        assert_eq!(
            (status, answer["duplicate"].as_bool()),
            (200, Some(true)),
            "{answer}"
        );
        let (status, answer) = execution_call(
            &core,
            &executor,
            &id,
            "result",
            json!({"status": "failed", "retryable": false,
                "error": {"code": "X", "message": "late"}, "leaseId": a_lease}),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (409, Some("LEASE_LOST")),
            "{answer}"
        );
        core.stop().await;
    }
);
