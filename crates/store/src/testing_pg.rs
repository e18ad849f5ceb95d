//! A fresh PostgreSQL database per test, on the server named by `ARO_TEST_POSTGRES_URL`
//! (scripts/test.sh starts a throwaway cluster and sets it). Without it the PostgreSQL tests are
//! skipped — unless `ARO_REQUIRE_POSTGRES=1`, which CI sets, where a missing server fails them.

use sqlx::{Connection, Executor, PgConnection};

pub const URL_VAR: &str = "ARO_TEST_POSTGRES_URL";
pub const REQUIRE_VAR: &str = "ARO_REQUIRE_POSTGRES";

/// A database that is dropped when this value is.
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let root = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

impl PgDatabase {
    pub async fn create() -> Option<Self> {
        let admin_url = match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                    panic!("{URL_VAR} is not set but {REQUIRE_VAR}=1: PostgreSQL tests must run");
                }
                eprintln!(
                    "skipping: {URL_VAR} not set (scripts/test.sh starts a PostgreSQL server)"
                );
                return None;
            }
        };
        let name = format!("aro_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL server: {e}"));
        admin
            .execute(format!("create database {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Dropping happens outside any runtime guarantee, so use a small one of our own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(format!("drop database if exists {name} with (force)").as_str())
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_replace_the_path() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5433/postgres", "x"),
            "postgres://u@127.0.0.1:5433/x"
        );
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5433/postgres?sslmode=disable", "x"),
            "postgres://u@127.0.0.1:5433/x?sslmode=disable"
        );
    }
}
