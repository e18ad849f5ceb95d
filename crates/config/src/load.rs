//! Reading `aro.toml` and the `ARO_…` environment into a validated [`Config`].

use crate::model::Config;
use std::path::{Path, PathBuf};

/// Top-level sections an `ARO_` variable may override; other `ARO_` variables (a test's own,
/// say) are not configuration and are left alone.
const SECTIONS: &[&str] = &[
    "database",
    "auth",
    "services",
    "server",
    "sandbox",
    "providers",
    "classifier",
    "log",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid TOML at line {line}: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
    #[error("invalid configuration: `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// The key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// A snapshot of the environment, so loading is a pure function of its inputs.
#[derive(Debug, Clone, Default)]
pub struct Environment(Vec<(String, String)>);

impl Environment {
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn empty() -> Self {
        Self::default()
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.0.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// Loads the file at `path`, applies environment overrides and validates the result.
pub fn load(path: &Path, env: &Environment) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    load_str(&text, &path.display().to_string(), base, env)
}

/// Like [`load`] for text already in memory; `base_dir` anchors relative paths.
pub fn load_str(
    text: &str,
    origin: &str,
    base_dir: &Path,
    env: &Environment,
) -> Result<Config, ConfigError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: origin.to_owned(),
        // Only the position and the parser's message: the offending line may hold a secret.
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0),
        message: e.message().to_owned(),
    })?;
    apply_environment(&mut table, env)?;
    let mut config: Config =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::invalid(&key, e.into_inner().message().to_owned())
        })?;
    if config.auth.master_key_file.is_relative() {
        config.auth.master_key_file = base_dir.join(&config.auth.master_key_file);
    }
    validate(&config)?;
    Ok(config)
}

fn apply_environment(table: &mut toml::Table, env: &Environment) -> Result<(), ConfigError> {
    for (name, value) in &env.0 {
        let Some(path) = name.strip_prefix("ARO_") else {
            continue;
        };
        let segments: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        if !SECTIONS.contains(&segments[0].as_str()) {
            continue;
        }
        if segments.len() < 2 || segments.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                &segments.join("."),
                format!("environment variable {name} does not name a key"),
            ));
        }
        let mut cursor = &mut *table;
        for (i, segment) in segments[..segments.len() - 1].iter().enumerate() {
            let entry = cursor
                .entry(segment.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = entry.as_table_mut().ok_or_else(|| {
                ConfigError::invalid(
                    &segments[..=i].join("."),
                    format!("{name} overrides a key inside a value that is not a table"),
                )
            })?;
        }
        let leaf = segments[segments.len() - 1].clone();
        cursor.insert(leaf, toml::Value::String(value.clone()));
    }
    Ok(())
}

fn validate(config: &Config) -> Result<(), ConfigError> {
    if let Some(url) = &config.database.url {
        if config.database.engine().is_none() {
            return Err(ConfigError::invalid(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if url.expose().trim() == "sqlite://" {
            return Err(ConfigError::invalid(
                "database.url",
                "names no database file",
            ));
        }
    }
    if config.database.max_connections == 0 {
        return Err(ConfigError::invalid(
            "database.max_connections",
            "must be at least 1",
        ));
    }
    if !(1..=300).contains(&config.database.acquire_timeout_secs) {
        return Err(ConfigError::invalid(
            "database.acquire_timeout_secs",
            "must be 1–300 seconds",
        ));
    }
    if config.auth.signing_key.expose().len() < 32 {
        return Err(ConfigError::invalid(
            "auth.signing_key",
            "must be at least 32 characters of random text",
        ));
    }
    if config.auth.master_key_file.as_os_str().is_empty() {
        return Err(ConfigError::invalid(
            "auth.master_key_file",
            "must name a file",
        ));
    }
    if !(5..=3600).contains(&config.services.executor.lease_secs) {
        return Err(ConfigError::invalid(
            "services.executor.lease_secs",
            "must be 5–3600 seconds",
        ));
    }
    if !(1..=100).contains(&config.services.executor.max_in_flight) {
        return Err(ConfigError::invalid(
            "services.executor.max_in_flight",
            "must be 1–100",
        ));
    }
    let urls = [
        ("services.core.url", &config.services.core.url),
        ("services.bff.url", &config.services.bff.url),
        ("services.ui.bff_url", &config.services.ui.bff_url),
        ("server.public_base_url", &config.server.public_base_url),
    ];
    for (key, url) in urls {
        check_http_url(key, url)?;
    }
    if let Some(t) = &config.providers.twilio {
        check_http_url("providers.twilio.base_url", &t.base_url)?;
        if !(t.account_sid.starts_with("AC") && t.account_sid.len() == 34) {
            return Err(ConfigError::invalid(
                "providers.twilio.account_sid",
                "a Twilio Account SID is AC followed by 32 hex characters",
            ));
        }
        if t.auth_token.is_empty() {
            return Err(ConfigError::invalid(
                "providers.twilio.auth_token",
                "is empty",
            ));
        }
        match (&t.from_number, &t.messaging_service_sid) {
            (None, None) => {
                return Err(ConfigError::invalid(
                    "providers.twilio.from_number",
                    "set from_number or messaging_service_sid",
                ));
            }
            (Some(n), _) if !is_e164(n) => {
                return Err(ConfigError::invalid(
                    "providers.twilio.from_number",
                    "must be an E.164 number such as +14155550100",
                ));
            }
            (_, Some(m)) if !m.starts_with("MG") => {
                return Err(ConfigError::invalid(
                    "providers.twilio.messaging_service_sid",
                    "a Messaging Service SID starts with MG",
                ));
            }
            _ => {}
        }
    }
    if let Some(s) = &config.providers.stripe {
        check_http_url("providers.stripe.base_url", &s.base_url)?;
        let key = s.secret_key.expose();
        if !(key.starts_with("sk_") || key.starts_with("rk_")) {
            return Err(ConfigError::invalid(
                "providers.stripe.secret_key",
                "a Stripe secret or restricted key starts with sk_ or rk_",
            ));
        }
        if !s.webhook_secret.expose().starts_with("whsec_") {
            return Err(ConfigError::invalid(
                "providers.stripe.webhook_secret",
                "a Stripe webhook signing secret starts with whsec_",
            ));
        }
    }
    if let Some(c) = &config.providers.calendly {
        check_http_url("providers.calendly.base_url", &c.base_url)?;
        if c.api_token.is_empty() {
            return Err(ConfigError::invalid(
                "providers.calendly.api_token",
                "is empty",
            ));
        }
        if c.webhook_signing_key.is_empty() {
            return Err(ConfigError::invalid(
                "providers.calendly.webhook_signing_key",
                "is empty",
            ));
        }
    }
    if let Some(llm) = &config.classifier.llm {
        check_http_url("classifier.llm.base_url", &llm.base_url)?;
        if llm.model.trim().is_empty() {
            return Err(ConfigError::invalid("classifier.llm.model", "is empty"));
        }
        if !(1..=60).contains(&llm.timeout_secs) {
            return Err(ConfigError::invalid(
                "classifier.llm.timeout_secs",
                "must be 1–60 seconds",
            ));
        }
    }
    check_log_level(&config.log.level)?;
    Ok(())
}

/// `log.level` is a tracing filter: comma-separated directives, each a level or
/// `target=level` (targets are Rust module paths, e.g. `aro_core_engine::workers`). Checked here
/// so a typo stops the start with the key named instead of silently logging at `info`.
fn check_log_level(filter: &str) -> Result<(), ConfigError> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    if filter.trim().is_empty() {
        return Err(ConfigError::invalid("log.level", "is empty"));
    }
    for directive in filter.split(',').map(str::trim) {
        let (target, level) = match directive.split_once('=') {
            Some((target, level)) => (Some(target.trim()), level.trim()),
            None => (None, directive),
        };
        let target_ok = target.is_none_or(|t| {
            !t.is_empty()
                && t.split("::").all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                })
        });
        if !target_ok || !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(ConfigError::invalid(
                "log.level",
                format!(
                    "{directive:?} is not a level (trace, debug, info, warn, error, off) \
                     or target=level"
                ),
            ));
        }
    }
    Ok(())
}

fn check_http_url(key: &str, url: &url::Url) -> Result<(), ConfigError> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::invalid(
            key,
            "must be an http:// or https:// URL",
        ));
    }
    Ok(())
}

fn is_e164(raw: &str) -> bool {
    raw.len() >= 8
        && raw.len() <= 16
        && raw.starts_with('+')
        && raw[1..].chars().all(|c| c.is_ascii_digit())
}
