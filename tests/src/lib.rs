//! Shared harness for the end-to-end tests: real services on 127.0.0.1 port 0, a real SQLite
//! file or a fresh PostgreSQL database, and a configuration written the way operators write it.

use aro_config::{Config, Environment};
use aro_http::CancellationToken;
use aro_security::crypto::MasterKey;
use aro_store::testing_pg::PgDatabase;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs a test body once per engine: `both_engines!(name, |db| async move { ... })`.
#[macro_export]
macro_rules! both_engines {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::Db::Postgres).await
            }
        }
    };
}

/// A configuration in a temporary folder, with its master key file and database.
pub struct TestEnv {
    pub config: Config,
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
}

pub const SIGNING_KEY: &str = "test-signing-key-0123456789abcdef0123456789";

impl TestEnv {
    /// `None` when the engine is PostgreSQL and no test server is configured (skipped).
    pub async fn new(db: Db) -> Option<Self> {
        Self::with_extra(db, "").await
    }

    /// `extra` is appended to the generated aro.toml (more sections or keys).
    pub async fn with_extra(db: Db, extra: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        MasterKey::create_file(&dir.path().join("master.key")).expect("master key");
        let (url, pg) = match db {
            Db::Sqlite => (
                format!("sqlite://{}", dir.path().join("aro.db").display()),
                None,
            ),
            Db::Postgres => {
                let pg = PgDatabase::create().await?;
                (pg.url.clone(), Some(pg))
            }
        };
        let text = format!(
            "[database]\nurl = \"{url}\"\n\n[auth]\nsigning_key = \"{SIGNING_KEY}\"\nmaster_key_file = \"master.key\"\n{extra}\n"
        );
        let path = dir.path().join("aro.toml");
        std::fs::write(&path, text).expect("write config");
        let config = aro_config::load(&path, &Environment::empty()).expect("valid test config");
        Some(Self { config, dir, pg })
    }
}

/// A service running on a loopback port until dropped or stopped.
pub struct Running {
    pub addr: SocketAddr,
    pub url: Url,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_service<F, Fut, E>(config: Config, run: F) -> Running
where
    F: FnOnce(Config, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let fut = run(config, listener, shutdown.clone());
    let handle = tokio::spawn(async move {
        if let Err(e) = fut.await {
            panic!("service stopped with an error: {e}");
        }
    });
    Running {
        addr,
        url: Url::parse(&format!("http://{addr}/")).expect("url"),
        shutdown,
        handle: Some(handle),
    }
}

/// Migrates the environment's database and starts core-engine.
pub async fn start_core(env: &TestEnv) -> Running {
    let store = aro_core_engine::storage::open(&env.config)
        .await
        .expect("open store");
    store.migrate_up().await.expect("migrate");
    store.close().await;
    spawn_service(env.config.clone(), aro_core_engine::run).await
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client")
}
