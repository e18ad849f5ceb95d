//! Determinism: random sequences of valid and invalid commands, interleaved with business time
//! passing, lead to a state that `rebuild` recreates identically from the event log alone.

mod support;

use chrono::Duration;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::*;

#[derive(Debug, Clone)]
enum Op {
    Book {
        visit: u8,
        patient: u8,
        hours_ahead: i64,
    },
    Confirm(u8),
    Cancel(u8),
    Reschedule {
        visit: u8,
        hours_ahead: i64,
    },
    CheckIn(u8),
    Complete(u8),
    NoShow(u8),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..5, 0u8..3, 3i64..120).prop_map(|(visit, patient, hours_ahead)| Op::Book { visit, patient, hours_ahead }),
        1 => (0u8..5).prop_map(Op::Confirm),
        1 => (0u8..5).prop_map(Op::Cancel),
        1 => (0u8..5, 3i64..120).prop_map(|(visit, hours_ahead)| Op::Reschedule { visit, hours_ahead }),
        1 => (0u8..5).prop_map(Op::CheckIn),
        1 => (0u8..5).prop_map(Op::Complete),
        1 => (0u8..5).prop_map(Op::NoShow),
        2 => (1i64..60).prop_map(Op::Advance),
    ]
}

const PATIENTS: [(&str, &str); 3] = [
    ("Ada Lovelace", "+14155552671"),
    ("Grace Hopper", "+14155552672"),
    ("Alan Lovelace", "+14155552671"),
];

async fn apply(h: &Harness, ids: &mut std::collections::HashMap<u8, String>, op: &Op) {
    let by_id = |ids: &std::collections::HashMap<u8, String>, v: &u8| ids.get(v).cloned();
    let transition = |kind: &str, id: String| {
        (
            kind.to_owned(),
            json!({"type": "appointment", "id": id}),
            Value::Null,
        )
    };
    let command = match op {
        Op::Book {
            visit,
            patient,
            hours_ahead,
        } => {
            let (name, phone) = PATIENTS[*patient as usize];
            let starts = h.engine.clock().now() + Duration::hours(*hours_ahead);
            (
                "appointment.upsert".to_owned(),
                json!({"type": "appointment"}),
                booking(&format!("EXT-{visit}"), name, phone, starts),
            )
        }
        Op::Reschedule { visit, hours_ahead } => {
            let Some(id) = by_id(ids, visit) else { return };
            let starts = h.engine.clock().now() + Duration::hours(*hours_ahead);
            (
                "appointment.reschedule".to_owned(),
                json!({"type": "appointment", "id": id}),
                json!({"startsAt": starts, "endsAt": starts + Duration::minutes(45)}),
            )
        }
        Op::Confirm(v) => match by_id(ids, v) {
            Some(id) => transition("appointment.confirm", id),
            None => return,
        },
        Op::Cancel(v) => match by_id(ids, v) {
            Some(id) => transition("appointment.cancel", id),
            None => return,
        },
        Op::CheckIn(v) => match by_id(ids, v) {
            Some(id) => transition("appointment.check_in", id),
            None => return,
        },
        Op::Complete(v) => match by_id(ids, v) {
            Some(id) => transition("appointment.mark_completed", id),
            None => return,
        },
        Op::NoShow(v) => match by_id(ids, v) {
            Some(id) => transition("appointment.mark_no_show", id),
            None => return,
        },
        Op::Advance(hours) => {
            h.advance(Duration::hours(*hours)).await;
            return;
        }
    };
    let answer = h.command(&command.0, command.1, command.2).await;
    assert!(answer.status < 500, "{}", answer.body);
    if let Op::Book { visit, .. } = op
        && answer.status == 200
    {
        ids.insert(
            *visit,
            answer.body["aggregate"]["id"].as_str().unwrap().to_owned(),
        );
    }
}

/// Everything the read models hold, in a comparable form.
async fn snapshot(h: &Harness) -> Value {
    h.store
        .read(|tx| {
            Box::pin(async move {
                let rows = tx.raw().all_appointments("default").await?;
                let mut appointments = Vec::new();
                let mut customers = std::collections::BTreeMap::new();
                for row in rows {
                    let a = tx.get_appointment("default", &row.id).await?.unwrap();
                    if let Some(c) = tx.get_customer("default", a.customer_id.as_str()).await? {
                        customers.insert(c.id.to_string(), serde_json::to_value(&c).unwrap());
                    }
                    appointments.push(serde_json::to_value(&a).unwrap());
                }
                Ok::<_, aro_store::StoreError>(
                    json!({"appointments": appointments, "customers": customers}),
                )
            })
        })
        .await
        .unwrap()
}

async fn open_executions(h: &Harness) -> i64 {
    h.store
        .read(|tx| Box::pin(async move { tx.raw().count_open_executions().await }))
        .await
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 20, ..ProptestConfig::default() })]

    #[test]
    fn rebuilding_from_the_event_log_recreates_the_same_state(ops in prop::collection::vec(op(), 1..18)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let h = Harness::sqlite().await;
            let mut ids = std::collections::HashMap::new();
            for op in &ops {
                apply(&h, &mut ids, op).await;
            }
            let before = snapshot(&h).await;
            let events_before = h.events(None).await.len();
            let open_before = open_executions(&h).await;
            let report = aro_workflow::rebuild::rebuild(&h.store).await.unwrap();
            let after = snapshot(&h).await;
            assert_eq!(before, after, "ops: {ops:?}");
            assert_eq!(h.events(None).await.len(), events_before, "a rebuild appends nothing");
            assert_eq!(report.appointments as usize, before["appointments"].as_array().unwrap().len());
            assert_eq!(open_executions(&h).await, open_before, "a rebuild sends nothing");
        });
    }
}
