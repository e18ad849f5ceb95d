//! The PostgreSQL store refuses a database that acknowledges commits before they are durable,
//! unless told otherwise.

use aro_store::StoreError;
use aro_store::backend::Backend;
use aro_store::testing_pg::PgDatabase;
use aro_store_postgres::{PostgresBackend, PostgresSettings};
use sqlx::{Connection, Executor, PgConnection};

#[tokio::test]
async fn synchronous_commit_off_is_refused_unless_explicitly_allowed() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    conn.execute(format!("alter database {} set synchronous_commit = off", db.name).as_str())
        .await
        .unwrap();
    conn.close().await.unwrap();
    match PostgresBackend::open(PostgresSettings::new(db.url.clone())).await {
        Err(StoreError::UnsafeDurability(message)) => {
            assert!(message.contains("synchronous_commit"), "{message}")
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("synchronous_commit=off must be refused"),
    }
    let mut settings = PostgresSettings::new(db.url.clone());
    settings.allow_unsafe_durability = true;
    let backend = PostgresBackend::open(settings).await.unwrap();
    backend.ping().await.unwrap();
    backend.close().await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_within_the_acquire_timeout() {
    let mut settings = PostgresSettings::new("postgres://nobody@127.0.0.1:1/none");
    settings.acquire_timeout = std::time::Duration::from_secs(1);
    let err = PostgresBackend::open(settings)
        .await
        .err()
        .expect("must fail");
    // Unavailable (an operator can retry once the server is up), saying why in words an
    // operator reads: the connection was refused, not that a pool timed out.
    assert!(err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to PostgreSQL") && text.contains("refused"),
        "{text}"
    );
    assert!(!text.contains("pool timed out"), "{text}");
}
