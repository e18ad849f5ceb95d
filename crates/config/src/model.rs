//! The schema of `aro.toml` (DESIGN.md "Configuration"). Unknown keys are refused so a typo is
//! an error, not a silently ignored setting.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use url::Url;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    #[serde(default)]
    pub services: ServicesConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub sandbox: SandboxConfig,
    #[serde(default)]
    pub providers: ProvidersConfig,
    #[serde(default)]
    pub classifier: ClassifierConfig,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://<path>` or `postgres://…`; a secret because a DSN may carry a password.
    pub url: Option<Secret>,
    #[serde(
        default = "defaults::max_connections",
        deserialize_with = "lenient::u32"
    )]
    pub max_connections: u32,
    #[serde(
        default = "defaults::acquire_timeout_secs",
        deserialize_with = "lenient::u64"
    )]
    pub acquire_timeout_secs: u64,
    /// Starts even when the engine's durability settings could lose committed writes
    /// (SQLite `synchronous` below FULL, PostgreSQL `fsync` or `synchronous_commit` off).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub allow_unsafe_durability: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: defaults::max_connections(),
            acquire_timeout_secs: defaults::acquire_timeout_secs(),
            allow_unsafe_durability: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Signs service tokens (HS256); at least 32 characters.
    pub signing_key: Secret,
    /// The master key that wraps patients' data keys; relative paths are read from the
    /// configuration file's folder.
    pub master_key_file: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesConfig {
    #[serde(default)]
    pub core: CoreServiceConfig,
    #[serde(default)]
    pub executor: ExecutorServiceConfig,
    #[serde(default)]
    pub bff: BffServiceConfig,
    #[serde(default)]
    pub ui: UiServiceConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreServiceConfig {
    #[serde(default = "defaults::core_listen")]
    pub listen: SocketAddr,
    #[serde(default = "defaults::core_url")]
    pub url: Url,
}

impl Default for CoreServiceConfig {
    fn default() -> Self {
        Self {
            listen: defaults::core_listen(),
            url: defaults::core_url(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorServiceConfig {
    #[serde(default = "defaults::executor_listen")]
    pub listen: SocketAddr,
    /// Token for core (scope `executions:claim`, tenants `*`); `aro up` mints one at start.
    pub core_token: Option<Secret>,
    /// The lease asked for each claimed execution (5–3600 s). Heartbeats renew it while a
    /// call runs; an executor that dies has its executions re-offered after at most this long.
    #[serde(
        default = "defaults::executor_lease_secs",
        deserialize_with = "lenient::u32"
    )]
    pub lease_secs: u32,
    /// Executions performed at once (1–100); each claim asks for at most the free room.
    #[serde(
        default = "defaults::executor_max_in_flight",
        deserialize_with = "lenient::u32"
    )]
    pub max_in_flight: u32,
}

impl Default for ExecutorServiceConfig {
    fn default() -> Self {
        Self {
            listen: defaults::executor_listen(),
            core_token: None,
            lease_secs: defaults::executor_lease_secs(),
            max_in_flight: defaults::executor_max_in_flight(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BffServiceConfig {
    #[serde(default = "defaults::bff_listen")]
    pub listen: SocketAddr,
    #[serde(default = "defaults::bff_url")]
    pub url: Url,
    /// Token for core (scopes `commands:write`, `events:read`); `aro up` mints one at start.
    pub core_token: Option<Secret>,
}

impl Default for BffServiceConfig {
    fn default() -> Self {
        Self {
            listen: defaults::bff_listen(),
            url: defaults::bff_url(),
            core_token: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiServiceConfig {
    #[serde(default = "defaults::ui_listen")]
    pub listen: SocketAddr,
    #[serde(default = "defaults::bff_url")]
    pub bff_url: Url,
}

impl Default for UiServiceConfig {
    fn default() -> Self {
        Self {
            listen: defaults::ui_listen(),
            bff_url: defaults::bff_url(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The URL providers call; Twilio signs over it.
    #[serde(default = "defaults::core_url")]
    pub public_base_url: Url,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_base_url: defaults::core_url(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    #[serde(default, deserialize_with = "lenient::bool")]
    pub enabled: bool,
    #[serde(default = "defaults::sandbox_listen")]
    pub listen: SocketAddr,
}

impl SandboxConfig {
    /// Where the sandbox listens unless told otherwise (DESIGN.md: 127.0.0.1:7400); `aro up`
    /// writes the providers' base URLs pointing here on first start.
    pub fn default_listen() -> SocketAddr {
        defaults::sandbox_listen()
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: defaults::sandbox_listen(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    pub twilio: Option<TwilioConfig>,
    pub stripe: Option<StripeConfig>,
    pub calendly: Option<CalendlyConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: Secret,
    pub from_number: Option<String>,
    pub messaging_service_sid: Option<String>,
    #[serde(default = "defaults::twilio_base_url")]
    pub base_url: Url,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    pub secret_key: Secret,
    pub webhook_secret: Secret,
    #[serde(default = "defaults::stripe_base_url")]
    pub base_url: Url,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendlyConfig {
    pub api_token: Secret,
    pub webhook_signing_key: Secret,
    #[serde(default = "defaults::calendly_base_url")]
    pub base_url: Url,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    pub llm: Option<LlmConfig>,
}

/// Any OpenAI-compatible chat completions endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    pub base_url: Url,
    pub model: String,
    pub api_key: Option<Secret>,
    #[serde(
        default = "defaults::llm_timeout_secs",
        deserialize_with = "lenient::u64"
    )]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable in a terminal, JSON otherwise.
    #[default]
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: comma-separated `level` or `target=level` directives (levels trace,
    /// debug, info, warn, error, off), e.g. `info` or `info,aro_core_engine=debug`.
    #[serde(default = "defaults::log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: defaults::log_level(),
            format: LogFormat::Auto,
        }
    }
}

/// Which engine a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseEngine {
    Sqlite,
    Postgres,
}

impl DatabaseConfig {
    pub fn engine(&self) -> Option<DatabaseEngine> {
        let url = self.url.as_ref()?.expose();
        if url.starts_with("sqlite:") {
            Some(DatabaseEngine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DatabaseEngine::Postgres)
        } else {
            None
        }
    }
}

pub(crate) mod defaults {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    fn url(s: &str) -> Url {
        // The literals below are valid URLs; the fallback is never used.
        Url::parse(s).unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("static URL"))
    }

    pub fn max_connections() -> u32 {
        10
    }
    pub fn acquire_timeout_secs() -> u64 {
        5
    }
    pub fn core_listen() -> SocketAddr {
        addr("127.0.0.1:7100")
    }
    pub fn core_url() -> Url {
        url("http://127.0.0.1:7100")
    }
    pub fn executor_listen() -> SocketAddr {
        addr("127.0.0.1:7300")
    }
    pub fn executor_lease_secs() -> u32 {
        60
    }
    pub fn executor_max_in_flight() -> u32 {
        16
    }
    pub fn bff_listen() -> SocketAddr {
        addr("127.0.0.1:7200")
    }
    pub fn bff_url() -> Url {
        url("http://127.0.0.1:7200")
    }
    pub fn ui_listen() -> SocketAddr {
        addr("127.0.0.1:7000")
    }
    pub fn sandbox_listen() -> SocketAddr {
        addr("127.0.0.1:7400")
    }
    pub fn twilio_base_url() -> Url {
        url("https://api.twilio.com")
    }
    pub fn stripe_base_url() -> Url {
        url("https://api.stripe.com")
    }
    pub fn calendly_base_url() -> Url {
        url("https://api.calendly.com")
    }
    pub fn llm_timeout_secs() -> u64 {
        5
    }
    pub fn log_level() -> String {
        "info".to_owned()
    }
}

/// Environment overrides arrive as strings; these accept `"true"` or `"8"` where the file would
/// have `true` or `8`.
mod lenient {
    use serde::{Deserialize, Deserializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrString {
        Bool(bool),
        Str(String),
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Str(String),
    }

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match BoolOrString::deserialize(d)? {
            BoolOrString::Bool(b) => Ok(b),
            BoolOrString::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(D::Error::custom("expected true or false")),
            },
        }
    }

    fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match IntOrString::deserialize(d)? {
            IntOrString::Int(i) => Ok(i),
            IntOrString::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| D::Error::custom("expected a whole number")),
        }
    }

    pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let v = int(d)?;
        u32::try_from(v).map_err(|_| D::Error::custom("expected a non-negative whole number"))
    }

    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = int(d)?;
        u64::try_from(v).map_err(|_| D::Error::custom("expected a non-negative whole number"))
    }
}
