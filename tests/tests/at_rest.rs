//! Patient data at rest: after real writes, neither the SQLite file (with its WAL) nor a
//! `pg_dump` of the PostgreSQL database contains a patient's name or phone number in any form —
//! first through the store alone, then after whole visits through every service (booking
//! webhook, reminders, replies, escalations, the staff digest), which writes every table.

#[allow(dead_code)]
#[path = "flows/clinic.rs"]
mod clinic;

use aro_domain::EventType;
use aro_domain::ids::TenantId;
use aro_store::contract::{patient, tenant};
use aro_store::{AggregateRef, EventMetadata, EventPii, NewEvent, StoreError};
use aro_tests::*;
use serde_json::json;

const NAMES: [&str; 3] = [
    "Quintessa Marlowe-Ibarra",
    "Thaddeus Okonkwo-Lindqvist",
    "Zephyrine Abernathy",
];
const PHONES: [&str; 3] = ["+14155559137", "+14155558264", "+14155557391"];

fn needles() -> Vec<String> {
    let mut out = Vec::new();
    for n in NAMES {
        out.push(n.to_owned());
        out.extend(
            n.split(['-', ' '])
                .filter(|p| p.len() > 5)
                .map(str::to_owned),
        );
    }
    for p in PHONES {
        out.push(p.to_owned());
        out.push(p.trim_start_matches('+').to_owned());
        out.push(p[2..].to_owned()); // national digits
    }
    out
}

async fn write_patients(env: &TestEnv) {
    let store = aro_core_engine::storage::open(&env.config).await.unwrap();
    store.migrate_up().await.unwrap();
    store
        .write(|tx| Box::pin(async move { tx.insert_tenant(&tenant("clinic-a")).await }))
        .await
        .unwrap();
    for (name, phone) in NAMES.iter().zip(PHONES) {
        let details = patient(name, phone);
        let name = name.to_string();
        store
            .write(move |tx| {
                Box::pin(async move {
                    let t = TenantId::parse("clinic-a").unwrap();
                    let c = tx
                        .insert_customer(&t, &details, aro_store::contract::now())
                        .await?;
                    tx.append_event(
                        NewEvent {
                            tenant_id: "clinic-a".into(),
                            event_type: EventType::AppointmentBooked,
                            aggregate: AggregateRef::new("appointment", "apt_1"),
                            occurred_at: aro_store::contract::now(),
                            profile: None,
                            payload: json!({"customerId": c.id}),
                            pii: Some(EventPii {
                                subject_id: c.id.to_string(),
                                fields: json!({"customer": {"name": name, "phone": phone}}),
                            }),
                            metadata: EventMetadata::default(),
                        },
                        aro_store::contract::now(),
                    )
                    .await?;
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .unwrap();
    }
    store.close().await;
}

fn assert_clean(haystack: &[u8], what: &str) {
    let text = String::from_utf8_lossy(haystack).to_lowercase();
    // The scan sees plain text where there is some: the clinic's own name is not patient data.
    assert!(
        text.contains("demo clinic"),
        "{what} scan found no plain text at all"
    );
    for needle in needles() {
        assert!(
            !text.contains(&needle.to_lowercase()),
            "{what} contains {needle:?} in plain text"
        );
    }
}

#[tokio::test]
async fn the_sqlite_file_holds_no_plaintext_names_or_phone_numbers() {
    let env = TestEnv::new(Db::Sqlite).await.unwrap();
    write_patients(&env).await;
    let mut bytes = Vec::new();
    let mut found = 0;
    for entry in std::fs::read_dir(env.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("aro.db") {
            found += 1;
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(found >= 1 && bytes.len() > 4096, "the database files exist");
    assert_clean(&bytes, "the SQLite database");
    // And the data is really there, readable through the store.
    let store = aro_core_engine::storage::open(&env.config).await.unwrap();
    let phone =
        aro_domain::values::Phone::parse(PHONES[0], aro_domain::values::Region::US).unwrap();
    let found = store
        .read(move |tx| Box::pin(async move { tx.customers_by_phone("clinic-a", &phone).await }))
        .await
        .unwrap();
    assert_eq!(found[0].name.as_deref(), Some(NAMES[0]));
    store.close().await;
}

#[tokio::test]
async fn a_pg_dump_holds_no_plaintext_names_or_phone_numbers() {
    let Some(env) = TestEnv::new(Db::Postgres).await else {
        return;
    };
    write_patients(&env).await;
    let url = env.pg.as_ref().unwrap().url.clone();
    let out = std::process::Command::new("pg_dump")
        .args(["--no-owner", "--data-only", "--inserts", &url])
        .output()
        .expect("pg_dump is on PATH (scripts/test.sh puts PostgreSQL's binaries there)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("INSERT INTO public.customers"));
    assert_clean(&out.stdout, "pg_dump");
}

/// What two patients' whole visits put in the database: their names (as booked and as greeted),
/// numbers, and the words of their replies.
const FLOW_NEEDLES: [&str; 9] = [
    "Quintessa Marlowe",
    "Quintessa",
    "Thaddeus Okonkwo",
    "Thaddeus",
    "4155559137",
    "4155558264",
    "marmalade",
    "saxophone",
    "Okonkwo",
];

/// The bytes a database holds: the SQLite file with its WAL, or a `pg_dump` of the database.
fn stored_bytes(env: &TestEnv) -> Vec<u8> {
    match &env.pg {
        Some(pg) => {
            let out = std::process::Command::new("pg_dump")
                .args(["--no-owner", "--data-only", "--inserts", &pg.url])
                .output()
                .expect("pg_dump is on PATH (scripts/test.sh puts PostgreSQL's binaries there)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
        None => {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(env.dir.path()).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("aro.db") {
                    bytes.extend(std::fs::read(&path).unwrap());
                }
            }
            bytes
        }
    }
}

both_engines!(
    after_whole_visits_through_every_service_no_table_holds_patient_data_in_plain_text,
    |db| async move {
        let Some(c) = clinic::Clinic::start(db, "2030-04-01T13:00:00Z").await else {
            return;
        };
        let first = c
            .book(&clinic::Booking::new(
                "Quintessa Marlowe",
                "+14155559137",
                "2030-04-04T14:00:00Z",
            ))
            .await;
        let second = c
            .book(&clinic::Booking::new(
                "Thaddeus Okonkwo",
                "+14155558264",
                "2030-04-04T15:00:00Z",
            ))
            .await;
        // Both reminders go out; one patient confirms in words, the other asks a question
        // (an escalation, then the staff digest to the clinic's phone).
        c.set_clock("2030-04-02T15:01:00Z").await;
        c.reply("+14155559137", "yes, I will bring the marmalade")
            .await;
        c.reply("+14155558264", "can I bring my saxophone?").await;
        c.wait_for_texts("+14155559137", 2).await;
        c.set_clock("2030-04-02T18:00:00Z").await;
        assert_eq!(c.status(&first).await, "confirmed");
        assert_eq!(c.status(&second).await, "booked");
        assert_eq!(c.texts(clinic::CLINIC_PHONE).await.len(), 1, "the digest");

        let bytes = stored_bytes(c.env());
        assert!(bytes.len() > 4096, "the database holds the visits");
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        assert!(
            text.contains("demo clinic"),
            "the scan sees plain text where there is some (the clinic's own name)"
        );
        for needle in FLOW_NEEDLES {
            assert!(
                !text.contains(&needle.to_lowercase()),
                "the stored data contains {needle:?} in plain text"
            );
        }
        c.stop().await;
    }
);
