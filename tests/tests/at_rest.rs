//! Patient data at rest: after real writes, neither the SQLite file (with its WAL) nor a
//! `pg_dump` of the PostgreSQL database contains a patient's name or phone number in any form.

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
