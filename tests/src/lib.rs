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

/// A service token signed with the test signing key (audience `core`).
pub fn token(scopes: &[&str], tenants: &[&str]) -> String {
    token_issued(
        scopes,
        tenants,
        std::time::Duration::from_secs(600),
        SIGNING_KEY,
        0,
    )
}

/// A token issued `issued_secs_ago` seconds ago with lifetime `ttl`, signed with `key`.
pub fn token_issued(
    scopes: &[&str],
    tenants: &[&str],
    ttl: std::time::Duration,
    key: &str,
    issued_secs_ago: i64,
) -> String {
    use aro_security::tokens::{Scope, TenantGrant, TokenSigner};
    use std::str::FromStr;
    let scopes: Vec<Scope> = scopes
        .iter()
        .map(|s| Scope::from_str(s).expect("known scope"))
        .collect();
    let grant = if tenants == ["*"] {
        TenantGrant::All
    } else {
        TenantGrant::Only(tenants.iter().map(|t| (*t).to_owned()).collect())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        - issued_secs_ago;
    TokenSigner::new(key.as_bytes())
        .expect("signing key")
        .issue("tests", "core", &scopes, grant, ttl, now)
        .expect("token")
}

/// An admin token for every tenant.
pub fn admin_token() -> String {
    token(
        &["admin", "commands:write", "events:read", "executions:claim"],
        &["*"],
    )
}

/// Creates a tenant through core's admin API.
pub async fn create_tenant(core: &Running, id: &str) {
    let resp = http()
        .post(core.url.join("v1/admin/tenants").expect("url"))
        .bearer_auth(admin_token())
        .json(&serde_json::json!({"id": id, "name": format!("Clinic {id}"), "timezone": "America/New_York"}))
        .send()
        .await
        .expect("create tenant");
    assert_eq!(resp.status().as_u16(), 201, "creating tenant {id}");
}

/// Posts a command; returns status, body and headers.
pub async fn post_command(
    core: &Running,
    token: &str,
    tenant: &str,
    key: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let mut req = http()
        .post(core.url.join("v1/commands").expect("url"))
        .bearer_auth(token)
        .header("x-tenant-id", tenant)
        .json(body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().await.expect("post command");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (
        status,
        resp.json().await.unwrap_or(serde_json::Value::Null),
        headers,
    )
}

/// The short test templates and policies (tests/fixtures/tenant-config.json) for a tenant.
pub async fn install_test_config(core: &Running, tenant: &str) {
    let config: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/tenant-config.json")).expect("fixture");
    let body = serde_json::json!({"commandType": "tenant.update_config", "tenantId": tenant,
        "aggregate": {"type": "tenant", "id": tenant}, "payload": config});
    let (status, answer, _) = post_command(
        core,
        &admin_token(),
        tenant,
        Some(&format!("config-{tenant}")),
        &body,
    )
    .await;
    assert_eq!(status, 200, "installing the test configuration: {answer}");
}

/// Every log line of this test process, in memory, to look for secrets or ids in. The global
/// subscriber can be installed once per process: [`CapturedLogs::install`] does it at debug
/// level on the first call and hands back the same capture afterwards.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    pub fn install() -> &'static CapturedLogs {
        static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let captured = CapturedLogs::default();
            let writer = captured.clone();
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug")
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .try_init();
            captured
        })
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}
