//! The Command API, the execution queue's API and the admin routes over real HTTP: headers,
//! idempotency, errors, tenant isolation, and 401/403 on every protected route.

use aro_tests::*;
use serde_json::{Value, json};

fn booking(external: &str, starts: &str) -> Value {
    json!({"commandType": "appointment.upsert", "tenantId": "default", "aggregate": {"type": "appointment"},
           "payload": {"source": "calendly", "externalId": external,
                       "customer": {"name": "Ada Lovelace", "phone": "+14155552671", "timezone": "America/New_York"},
                       "startsAt": starts, "endsAt": "2030-03-15T14:30:00Z"}})
}

async fn core_with_default(db: Db, sandbox: bool) -> Option<(TestEnv, Running)> {
    let extra = if sandbox {
        "[sandbox]\nenabled = true\n"
    } else {
        ""
    };
    let env = TestEnv::with_extra(db, extra).await?;
    let core = start_core(&env).await;
    create_tenant(&core, "default").await;
    create_tenant(&core, "other").await;
    install_test_config(&core, "default").await;
    Some((env, core))
}

both_engines!(
    commands_are_applied_once_per_idempotency_key,
    |db| async move {
        let Some((_env, core)) = core_with_default(db, false).await else {
            return;
        };
        let writer = token(&["commands:write", "events:read"], &["default"]);
        let body = booking("IN-1", "2030-03-15T14:00:00Z");

        let (status, err, _) = post_command(&core, &writer, "default", None, &body).await;
        assert_eq!(status, 400);
        assert_eq!(err["error"]["code"], "MISSING_IDEMPOTENCY_KEY");

        let resp = http()
            .post(core.url.join("v1/commands").unwrap())
            .bearer_auth(&writer)
            .header("x-tenant-id", "default")
            .header("idempotency-key", "k-1")
            .header("x-correlation-id", "corr-from-caller")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["x-correlation-id"], "corr-from-caller");
        let first: Value = resp.json().await.unwrap();
        assert_eq!(first["status"], "applied");
        assert_eq!(first["correlationId"], "corr-from-caller");
        assert_eq!(first["aggregate"]["type"], "appointment");
        assert!(
            first["aggregate"]["id"]
                .as_str()
                .unwrap()
                .starts_with("apt_")
        );
        assert!(first["workflowId"].as_str().unwrap().starts_with("wf_"));
        assert!(!first["events"].as_array().unwrap().is_empty());

        let (status, again, headers) =
            post_command(&core, &writer, "default", Some("k-1"), &body).await;
        assert_eq!(status, 200);
        assert_eq!(again, first, "the stored answer, not a second effect");
        assert_eq!(headers["idempotent-replayed"], "true");
        assert!(
            headers.contains_key("x-correlation-id"),
            "a correlation id is always echoed"
        );

        let (status, err, _) = post_command(
            &core,
            &writer,
            "default",
            Some("k-1"),
            &booking("IN-2", "2030-03-15T14:00:00Z"),
        )
        .await;
        assert_eq!(status, 422);
        assert_eq!(err["error"]["code"], "IDEMPOTENCY_KEY_REUSED");

        let mut bad = booking("IN-3", "2030-03-15T14:00:00Z");
        bad["payload"]["startsAt"] = json!("soon");
        let (status, err, _) = post_command(&core, &writer, "default", Some("k-3"), &bad).await;
        assert_eq!(status, 422);
        assert_eq!(err["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(err["error"]["details"]["field"], "payload.startsAt");
        assert!(err["requestId"].is_string());

        let apt = first["aggregate"]["id"].as_str().unwrap();
        let cancel = json!({"commandType": "appointment.cancel", "tenantId": "default", "aggregate": {"type": "appointment", "id": apt}});
        assert_eq!(
            post_command(&core, &writer, "default", Some("k-4"), &cancel)
                .await
                .0,
            200
        );
        let confirm = json!({"commandType": "appointment.confirm", "tenantId": "default", "aggregate": {"type": "appointment", "id": apt}});
        let (status, err, _) = post_command(&core, &writer, "default", Some("k-5"), &confirm).await;
        assert_eq!(status, 409);
        assert_eq!(err["error"]["code"], "INVALID_TRANSITION");
        assert_eq!(
            err["error"]["details"],
            json!({"from": "cancelled", "to": "confirmed", "reason": null})
        );

        // Read-backs.
        let command_id = first["commandId"].as_str().unwrap();
        let got: Value = http()
            .get(core.url.join(&format!("v1/commands/{command_id}")).unwrap())
            .bearer_auth(&writer)
            .header("x-tenant-id", "default")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got["commandType"], "appointment.upsert");
        assert_eq!(got["aggregate"], first["aggregate"]);
        let wf = first["workflowId"].as_str().unwrap();
        let got: Value = http()
            .get(core.url.join(&format!("v1/workflows/{wf}")).unwrap())
            .bearer_auth(&writer)
            .header("x-tenant-id", "default")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got["state"], "cancelled");
        assert_eq!(got["aggregate"]["id"], apt);
    }
);

both_engines!(another_tenants_ids_are_not_found, |db| async move {
    let Some((_env, core)) = core_with_default(db, false).await else {
        return;
    };
    let both = token(&["commands:write", "events:read"], &["default", "other"]);
    let (_, first, _) = post_command(
        &core,
        &both,
        "default",
        Some("k-1"),
        &booking("IN-1", "2030-03-15T14:00:00Z"),
    )
    .await;
    let apt = first["aggregate"]["id"].as_str().unwrap();
    for path in [
        format!("v1/commands/{}", first["commandId"].as_str().unwrap()),
        format!("v1/workflows/{}", first["workflowId"].as_str().unwrap()),
    ] {
        let resp = http()
            .get(core.url.join(&path).unwrap())
            .bearer_auth(&both)
            .header("x-tenant-id", "other")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
    let confirm = json!({"commandType": "appointment.confirm", "tenantId": "other", "aggregate": {"type": "appointment", "id": apt}});
    let (status, _, _) = post_command(&core, &both, "other", Some("k-2"), &confirm).await;
    assert_eq!(status, 404);
    // tenantId in the body must match the header.
    let (status, err, _) = post_command(
        &core,
        &both,
        "other",
        Some("k-3"),
        &booking("IN-9", "2030-03-15T14:00:00Z"),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["details"]["field"], "tenantId");
});

/// Every protected route, as (method, path, body).
fn protected_routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        (
            "POST",
            "v1/commands",
            Some(booking("IN-X", "2030-03-15T14:00:00Z")),
        ),
        ("GET", "v1/commands/cmd_x", None),
        ("GET", "v1/workflows/wf_x", None),
        ("GET", "v1/events", None),
        ("GET", "v1/events/stream", None),
        (
            "POST",
            "v1/subscriptions",
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
        ),
        ("GET", "v1/subscriptions", None),
        ("GET", "v1/subscriptions/sub_x", None),
        ("DELETE", "v1/subscriptions/sub_x", None),
        (
            "POST",
            "v1/subscriptions/sub_x/replay",
            Some(json!({"fromSeq": 0})),
        ),
        ("POST", "v1/executions/claim", Some(json!({"limit": 1}))),
        ("POST", "v1/executions/exe_x/heartbeat", Some(json!({}))),
        (
            "POST",
            "v1/executions/exe_x/result",
            Some(json!({"status": "succeeded"})),
        ),
        ("GET", "v1/admin/tenants", None),
        (
            "POST",
            "v1/admin/tenants",
            Some(json!({"id": "x", "name": "X", "timezone": "UTC"})),
        ),
        ("GET", "v1/tenant", None),
        (
            "PUT",
            "v1/admin/tenants/default/providers/calendly",
            Some(json!({"apiToken": "t", "webhookSigningKey": "k"})),
        ),
        ("GET", "v1/admin/tenants/default/providers", None),
        (
            "DELETE",
            "v1/admin/tenants/default/providers/calendly",
            None,
        ),
        ("GET", "v1/executions/credentials/twilio", None),
        ("GET", "v1/reports/metrics", None),
        ("GET", "v1/dead-letters", None),
        ("GET", "v1/admin/clock", None),
        ("POST", "v1/admin/clock", Some(json!({"advance": "1h"}))),
    ]
}

async fn call(
    core: &Running,
    method: &str,
    path: &str,
    body: &Option<Value>,
    token: Option<&str>,
    tenant: &str,
) -> (u16, Value) {
    let mut req = http()
        .request(method.parse().unwrap(), core.url.join(path).unwrap())
        .header("x-tenant-id", tenant)
        .header("idempotency-key", "k-auth");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

both_engines!(
    every_protected_route_answers_401_without_a_valid_token_and_403_without_the_right_grant,
    |db| async move {
        let Some((_env, core)) = core_with_default(db, true).await else {
            return;
        };
        let wrong_key = token_issued(
            &["admin"],
            &["*"],
            std::time::Duration::from_secs(600),
            "another-signing-key-0123456789abcdef0123",
            0,
        );
        // Issued two hours ago for one hour: expired well beyond any clock-skew leeway.
        let expired = token_issued(
            &["admin"],
            &["*"],
            std::time::Duration::from_secs(3600),
            SIGNING_KEY,
            7200,
        );
        let no_scopes = token(&[], &["*"]);
        let other_tenant = token(
            &["commands:write", "events:read", "executions:claim"],
            &["other"],
        );
        for (method, path, body) in protected_routes() {
            let (status, err) = call(&core, method, path, &body, None, "default").await;
            assert_eq!(
                (status, err["error"]["code"].as_str()),
                (401, Some("MISSING_TOKEN")),
                "{method} {path}"
            );
            let (status, err) =
                call(&core, method, path, &body, Some("not.a.jwt"), "default").await;
            assert_eq!(
                (status, err["error"]["code"].as_str()),
                (401, Some("INVALID_TOKEN")),
                "{method} {path}"
            );
            let (status, _) = call(&core, method, path, &body, Some(&wrong_key), "default").await;
            assert_eq!(status, 401, "{method} {path} with another key's token");
            let (status, _) = call(&core, method, path, &body, Some(&expired), "default").await;
            assert_eq!(status, 401, "{method} {path} with an expired token");
            let (status, err) = call(&core, method, path, &body, Some(&no_scopes), "default").await;
            assert_eq!(status, 403, "{method} {path} without scopes: {err}");
            // Tenant-scoped routes refuse a tenant outside the token.
            if !path.starts_with("v1/executions") && !path.starts_with("v1/admin") {
                let (status, err) =
                    call(&core, method, path, &body, Some(&other_tenant), "default").await;
                assert_eq!(
                    (status, err["error"]["code"].as_str()),
                    (403, Some("TENANT_FORBIDDEN")),
                    "{method} {path}"
                );
            }
        }
    }
);

both_engines!(
    the_execution_queue_api_hands_out_leases_and_takes_results,
    |db| async move {
        let Some((_env, core)) = core_with_default(db, true).await else {
            return;
        };
        let writer = token(&["commands:write"], &["default"]);
        let executor = token(&["executions:claim"], &["*"]);
        // A booking whose 48 h reminder is due after the clock moves on.
        let now: Value = http()
            .get(core.url.join("v1/admin/clock").unwrap())
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let now = chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap()).unwrap();
        let starts = (now + chrono::Duration::hours(72)).with_timezone(&chrono::Utc);
        let mut body = booking("IN-Q", &starts.to_rfc3339());
        body["payload"]["endsAt"] = json!((starts + chrono::Duration::minutes(30)).to_rfc3339());
        assert_eq!(
            post_command(&core, &writer, "default", Some("k-q"), &body)
                .await
                .0,
            200
        );
        let (status, err) = call(
            &core,
            "POST",
            "v1/executions/claim",
            &Some(json!({"limit": 500})),
            Some(&executor),
            "default",
        )
        .await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["details"]["field"], "limit");
        let (status, claimed) = call(
            &core,
            "POST",
            "v1/executions/claim",
            &Some(json!({"limit": 10, "leaseSeconds": 30})),
            Some(&executor),
            "default",
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            claimed["executions"].as_array().unwrap().is_empty(),
            "nothing due yet"
        );
        let moved: Value = http()
            .post(core.url.join("v1/admin/clock").unwrap())
            .bearer_auth(admin_token())
            .json(&json!({"advance": "25h", "waitSeconds": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(moved["firedTimers"].as_u64().unwrap() >= 1, "{moved}");
        assert_eq!(
            moved["settled"], false,
            "a reminder is waiting for an executor"
        );
        let (_, claimed) = call(
            &core,
            "POST",
            "v1/executions/claim",
            &Some(json!({"limit": 10, "leaseSeconds": 30, "types": ["messaging.send_reminder"]})),
            Some(&executor),
            "default",
        )
        .await;
        let e = &claimed["executions"][0];
        assert_eq!(e["commandType"], "messaging.send_reminder");
        assert_eq!(e["tenantId"], "default");
        assert_eq!(e["attempt"], 1);
        assert_eq!(e["payload"]["to"], "+14155552671");
        let id = e["executionId"].as_str().unwrap();
        let (status, hb) = call(
            &core,
            "POST",
            &format!("v1/executions/{id}/heartbeat"),
            &Some(json!({"leaseSeconds": 60})),
            Some(&executor),
            "default",
        )
        .await;
        assert_eq!(status, 200, "{hb}");
        let result =
            json!({"status": "succeeded", "providerRef": "SM0001", "output": {"status": "queued"}});
        let (status, answer) = call(
            &core,
            "POST",
            &format!("v1/executions/{id}/result"),
            &Some(result.clone()),
            Some(&executor),
            "default",
        )
        .await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("succeeded"))
        );
        // Reporting the same result again is harmless; a contradicting one is refused.
        let (status, answer) = call(
            &core,
            "POST",
            &format!("v1/executions/{id}/result"),
            &Some(result),
            Some(&executor),
            "default",
        )
        .await;
        assert_eq!((status, answer["duplicate"].as_bool()), (200, Some(true)));
        let (status, err) = call(
            &core,
            "POST",
            &format!("v1/executions/{id}/result"),
            &Some(json!({"status": "failed", "error": {"code": "X"}})),
            Some(&executor),
            "default",
        )
        .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (409, Some("EXECUTION_FINISHED"))
        );
        // A token for another tenant does not see this tenant's executions.
        let narrow = token(&["executions:claim"], &["other"]);
        let (status, _) = call(
            &core,
            "POST",
            &format!("v1/executions/{id}/heartbeat"),
            &Some(json!({})),
            Some(&narrow),
            "default",
        )
        .await;
        assert_eq!(status, 404);
    }
);

both_engines!(
    the_clock_exists_only_in_the_sandbox_and_never_runs_back,
    |db| async move {
        let Some((_env, core)) = core_with_default(db, false).await else {
            return;
        };
        let (status, err) = call(
            &core,
            "GET",
            "v1/admin/clock",
            &None,
            Some(&admin_token()),
            "default",
        )
        .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (404, Some("NOT_FOUND"))
        );
        core.stop().await;

        let Some((_env, core)) = core_with_default(Db::Sqlite, true).await else {
            return;
        };
        let (_, now) = call(
            &core,
            "GET",
            "v1/admin/clock",
            &None,
            Some(&admin_token()),
            "default",
        )
        .await;
        let (status, err) = call(
            &core,
            "POST",
            "v1/admin/clock",
            &Some(json!({"set": "2001-01-01T00:00:00Z"})),
            Some(&admin_token()),
            "default",
        )
        .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (409, Some("CLOCK_BACKWARDS"))
        );
        let (status, err) = call(
            &core,
            "POST",
            "v1/admin/clock",
            &Some(json!({"advance": "soon"})),
            Some(&admin_token()),
            "default",
        )
        .await;
        assert_eq!(
            (status, err["error"]["details"]["field"].as_str()),
            (422, Some("advance"))
        );
        let (status, moved) = call(
            &core,
            "POST",
            "v1/admin/clock",
            &Some(json!({"advance": "2d"})),
            Some(&admin_token()),
            "default",
        )
        .await;
        assert_eq!(status, 200);
        let before = chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap()).unwrap();
        let after = chrono::DateTime::parse_from_rfc3339(moved["now"].as_str().unwrap()).unwrap();
        assert!(after - before >= chrono::Duration::hours(48));
        assert_eq!(moved["settled"], true);
        // Non-admin tokens cannot move it.
        let (status, _) = call(
            &core,
            "POST",
            "v1/admin/clock",
            &Some(json!({"advance": "1h"})),
            Some(&token(&["commands:write"], &["*"])),
            "default",
        )
        .await;
        assert_eq!(status, 403);
    }
);

both_engines!(
    metrics_are_served_per_tenant_and_check_their_period,
    |db| async move {
        let Some((_env, core)) = core_with_default(db, false).await else {
            return;
        };
        let writer = token(&["commands:write", "events:read"], &["default", "other"]);
        assert_eq!(
            post_command(
                &core,
                &writer,
                "default",
                Some("k-m"),
                &booking("IN-M", "2030-03-15T14:00:00Z")
            )
            .await
            .0,
            200
        );
        let get = |tenant: &'static str, query: &'static str| {
            let url = core
                .url
                .join(&format!("v1/reports/metrics{query}"))
                .unwrap();
            let writer = writer.clone();
            async move {
                let resp = http()
                    .get(url)
                    .bearer_auth(writer)
                    .header("x-tenant-id", tenant)
                    .send()
                    .await
                    .unwrap();
                (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
            }
        };
        let (status, m) = get("default", "").await;
        assert_eq!(status, 200, "{m}");
        assert_eq!(m["appointmentsBooked"], 1);
        let (_, other) = get("other", "").await;
        assert_eq!(
            other["appointmentsBooked"], 0,
            "another tenant's events do not count"
        );
        let (status, err) = get(
            "default",
            "?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z",
        )
        .await;
        assert_eq!(
            (status, err["error"]["details"]["field"].as_str()),
            (422, Some("query.to"))
        );
        let (status, err) = get("default", "?from=yesterday").await;
        assert_eq!(
            (status, err["error"]["details"]["field"].as_str()),
            (422, Some("query.from"))
        );
    }
);

/// Replicas on one PostgreSQL share the sandbox's business clock: a move made through one is
/// followed by the others (within their timer worker's next look), never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_move_through_one_replica_is_followed_by_the_others() {
    let Some((env, first)) = core_with_default(Db::Postgres, true).await else {
        return;
    };
    let second = start_core(&env).await;
    let (status, moved) = call(
        &first,
        "POST",
        "v1/admin/clock",
        &Some(json!({"set": "2031-01-01T00:00:00Z"})),
        Some(&admin_token()),
        "default",
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    let mut seen = Value::Null;
    for _ in 0..100 {
        let (status, now) = call(
            &second,
            "GET",
            "v1/admin/clock",
            &None,
            Some(&admin_token()),
            "default",
        )
        .await;
        assert_eq!(status, 200, "{now}");
        seen = now;
        if seen["now"].as_str().is_some_and(|t| t >= "2031-01-01") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        seen["now"].as_str().is_some_and(|t| t >= "2031-01-01"),
        "the other replica still says {seen}"
    );
    second.stop().await;
    first.stop().await;
}

both_engines!(
    a_tenant_configuration_with_an_unknown_placeholder_or_a_bad_window_is_refused_naming_the_field,
    |db| async move {
        let Some((_env, core)) = core_with_default(db, false).await else {
            return;
        };
        let good: Value =
            serde_json::from_str(include_str!("../fixtures/tenant-config.json")).unwrap();
        let update = |payload: &Value| {
            json!({"commandType": "tenant.update_config", "tenantId": "default",
                   "aggregate": {"type": "tenant", "id": "default"}, "payload": payload})
        };
        let mut unknown = good.clone();
        unknown["templates"]["en"]["reminder_48h"] = json!("Hi {{lastName}}, see you {{date}}");
        let mut window = good.clone();
        window["policies"]["sendWindow"] = json!({"start": "21:00", "end": "08:00"});
        let mut long = good.clone();
        long["templates"]["en"]["help"] = json!("{{clinicName}} ".repeat(12));
        for (key, payload, field) in [
            ("cfg-unknown", &unknown, "payload.templates.en.reminder_48h"),
            ("cfg-window", &window, "payload.policies.sendWindow"),
            ("cfg-long", &long, "payload.templates.en.help"),
        ] {
            let (status, answer, _) = post_command(
                &core,
                &admin_token(),
                "default",
                Some(key),
                &update(payload),
            )
            .await;
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (422, Some("VALIDATION_ERROR")),
                "{key}: {answer}"
            );
            assert_eq!(
                answer["error"]["details"]["field"], field,
                "{key}: {answer}"
            );
        }
        // Nothing of the refused ones was installed.
        let (status, tenant) = call(
            &core,
            "GET",
            "v1/tenant",
            &None,
            Some(&admin_token()),
            "default",
        )
        .await;
        assert_eq!(status, 200, "{tenant}");
        assert_eq!(
            tenant["config"]["templates"]["en"]["reminder_48h"],
            good["templates"]["en"]["reminder_48h"],
            "{tenant}"
        );
        assert_eq!(
            tenant["configVersion"], 1,
            "only the first installation took"
        );
        let (status, answer, _) = post_command(
            &core,
            &admin_token(),
            "default",
            Some("cfg-good"),
            &update(&good),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        core.stop().await;
    }
);
