//! The SQLite store refuses settings that could lose committed writes unless told otherwise.

use aro_store::StoreError;
use aro_store::backend::Backend;
use aro_store_sqlite::{SqliteBackend, SqliteSettings};

#[tokio::test]
async fn synchronous_normal_is_refused_unless_explicitly_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?synchronous=normal",
        dir.path().join("a.db").display()
    );
    match SqliteBackend::open(SqliteSettings::from_url(&url, false).unwrap()).await {
        Err(StoreError::UnsafeDurability(message)) => {
            assert!(message.contains("synchronous"), "{message}");
            assert!(message.contains("allow_unsafe_durability"), "{message}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("synchronous=normal must be refused"),
    }
    let allowed = SqliteBackend::open(SqliteSettings::from_url(&url, true).unwrap())
        .await
        .unwrap();
    allowed.ping().await.unwrap();
    allowed.close().await;
}

#[tokio::test]
async fn the_default_is_wal_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    let backend = SqliteBackend::open(SqliteSettings::from_url(&url, false).unwrap())
        .await
        .unwrap();
    backend.ping().await.unwrap();
    backend.close().await;
    // WAL is a property of the file: any later connection sees it.
    use sqlx::Connection;
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.path().join("b.db").display()))
            .await
            .unwrap();
    let journal: String = sqlx::query_scalar("pragma journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    conn.close().await.unwrap();
    // FULL is per connection: the default settings ask for it (and `open` refuses a
    // connection that does not have it, see the test above).
    let settings = SqliteSettings::from_url(&url, false).unwrap();
    assert_eq!(
        format!("{:?}", settings.synchronous),
        format!("{:?}", sqlx::sqlite::SqliteSynchronous::Full)
    );
}

#[test]
fn urls_are_checked() {
    assert!(SqliteSettings::from_url("sqlite://", false).is_err());
    assert!(SqliteSettings::from_url("sqlite://x.db?journal=delete", false).is_err());
    assert!(SqliteSettings::from_url("sqlite://x.db?synchronous=sometimes", false).is_err());
    assert!(SqliteSettings::from_url("postgres://x", false).is_err());
    assert!(SqliteSettings::from_url("sqlite:///tmp/x.db?synchronous=extra", false).is_ok());
}
