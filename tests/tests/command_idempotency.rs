//! Idempotency of the Command API at its edges, over real HTTP on both engines: a refusal of the
//! envelope itself is stored under its key like any other 4xx (so the key cannot later apply a
//! different body), and a retryable answer is never stored (so a retry with the same key can
//! succeed); concurrent commands on one visit take turns instead of failing.

use aro_tests::*;
use serde_json::{Value, json};

async fn core_with_default(db: Db) -> Option<(TestEnv, Running)> {
    let env = TestEnv::new(db).await?;
    let core = start_core(&env).await;
    create_tenant(&core, "default").await;
    install_test_config(&core, "default").await;
    Some((env, core))
}

fn booking(external: &str) -> Value {
    json!({"commandType": "appointment.upsert", "tenantId": "default", "aggregate": {"type": "appointment"},
           "payload": {"source": "calendly", "externalId": external,
                       "customer": {"name": "Ada Lovelace", "phone": "+14155552671", "timezone": "America/New_York"},
                       "startsAt": "2030-03-15T14:00:00Z", "endsAt": "2030-03-15T14:30:00Z"}})
}

fn writer() -> String {
    token(&["commands:write", "events:read"], &["default"])
}

/// How many events of `event_type` the tenant's log holds.
async fn count_events(core: &Running, event_type: &str) -> usize {
    let body: Value = http()
        .get(
            core.url
                .join(&format!("v1/events?limit=1000&eventType={event_type}"))
                .unwrap(),
        )
        .bearer_auth(writer())
        .header("x-tenant-id", "default")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["events"].as_array().map_or(0, Vec::len)
}

both_engines!(
    an_envelope_refusal_is_stored_under_its_key,
    |db| async move {
        let Some((_env, core)) = core_with_default(db).await else {
            return;
        };
        let writer = writer();
        // A root field is missing: 422 naming it.
        let incomplete = json!({"commandType": "appointment.upsert"});
        let (status, err, headers) =
            post_command(&core, &writer, "default", Some("e1"), &incomplete).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(err["error"]["details"]["field"], "tenantId");
        assert!(!headers.contains_key("idempotent-replayed"));
        // The same request again: the stored answer.
        let (status, again, headers) =
            post_command(&core, &writer, "default", Some("e1"), &incomplete).await;
        assert_eq!(status, 422);
        assert_eq!(again["error"], err["error"]);
        assert_eq!(headers["idempotent-replayed"], "true");
        // The key now stands for that request: a valid body under it is refused, not applied.
        let (status, err, _) =
            post_command(&core, &writer, "default", Some("e1"), &booking("IN-E1")).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
        assert_eq!(count_events(&core, "appointment.booked").await, 0);

        // Other envelope errors name their field too.
        let cases = [
            (
                json!({"tenantId": "default", "aggregate": {"type": "appointment"}}),
                "commandType",
            ),
            (
                json!({"commandType": "appointment.confirm", "tenantId": "default",
                       "aggregate": {"id": "apt_x"}}),
                "aggregate.type",
            ),
            (
                json!({"commandType": "appointment.confirm", "tenantId": "default",
                       "aggregate": {"type": "appointment", "id": "apt_x"}, "surprise": true}),
                "surprise",
            ),
            (json!(["not", "an", "object"]), "body"),
        ];
        for (i, (body, field)) in cases.into_iter().enumerate() {
            let key = format!("e-case-{i}");
            let (status, err, _) = post_command(&core, &writer, "default", Some(&key), &body).await;
            assert_eq!(
                (status, err["error"]["details"]["field"].as_str()),
                (422, Some(field)),
                "{body}: {err}"
            );
            let (status, _, headers) =
                post_command(&core, &writer, "default", Some(&key), &body).await;
            assert_eq!(status, 422);
            assert_eq!(headers["idempotent-replayed"], "true", "{body}");
        }

        // A key first used for a valid command still refuses a broken body under it.
        let (status, _, _) =
            post_command(&core, &writer, "default", Some("e2"), &booking("IN-E2")).await;
        assert_eq!(status, 200);
        let (status, err, _) =
            post_command(&core, &writer, "default", Some("e2"), &incomplete).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (422, Some("IDEMPOTENCY_KEY_REUSED"))
        );
    }
);

both_engines!(
    concurrent_commands_on_one_visit_all_apply_and_replay_as_applied,
    |db| async move {
        let Some((_env, core)) = core_with_default(db).await else {
            return;
        };
        let writer = writer();
        let (status, booked, _) =
            post_command(&core, &writer, "default", Some("book"), &booking("IN-R")).await;
        assert_eq!(status, 200, "{booked}");
        let apt = booked["aggregate"]["id"].as_str().unwrap().to_owned();
        let bodies: Vec<Value> = (0..20)
            .map(|i| {
                let starts = chrono::DateTime::parse_from_rfc3339("2030-03-16T14:00:00Z")
                    .unwrap()
                    + chrono::Duration::hours(i);
                json!({"commandType": "appointment.reschedule", "tenantId": "default",
                       "aggregate": {"type": "appointment", "id": apt},
                       "payload": {"startsAt": starts.to_rfc3339(),
                                   "endsAt": (starts + chrono::Duration::minutes(30)).to_rfc3339()}})
            })
            .collect();
        let mut tasks = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let core_url = core.url.clone();
            let writer = writer.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let resp = http()
                    .post(core_url.join("v1/commands").unwrap())
                    .bearer_auth(writer)
                    .header("x-tenant-id", "default")
                    .header("idempotency-key", format!("move-{i}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap_or(Value::Null))
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let (status, answer) = t.await.unwrap();
            assert_eq!(status, 200, "move-{i}: {answer}");
        }
        assert_eq!(count_events(&core, "appointment.rescheduled").await, 20);
        // Each key replays its own applied answer.
        for (i, body) in bodies.iter().enumerate() {
            let (status, answer, headers) =
                post_command(&core, &writer, "default", Some(&format!("move-{i}")), body).await;
            assert_eq!(status, 200, "move-{i}: {answer}");
            assert_eq!(headers["idempotent-replayed"], "true");
        }
        assert_eq!(count_events(&core, "appointment.rescheduled").await, 20);
    }
);
