//! The configuration contract: what loads, what is refused (naming the key), how the
//! environment overrides the file, and that secrets never show.

use aro_config::{Environment, generate_for_data_dir, load, load_str};
use std::io::Write;
use std::path::Path;

const VALID: &str = r#"
[database]
url = "postgres://aro:hunter2-db-password@127.0.0.1:5432/aro"
max_connections = 8

[auth]
signing_key = "0123456789abcdef0123456789abcdef-signing"
master_key_file = "keys/master.key"

[services.core]
listen = "127.0.0.1:7100"
url = "http://127.0.0.1:7100"

[services.executor]
core_token = "executor-token-value"

[server]
public_base_url = "https://aro.example.org"

[providers.twilio]
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "twilio-auth-token-value"
from_number = "+14155550100"

[providers.stripe]
secret_key = "sk_test_abc"
webhook_secret = "whsec_abc"

[providers.calendly]
api_token = "calendly-api-token"
webhook_signing_key = "calendly-signing-key"

[classifier.llm]
base_url = "http://127.0.0.1:11434/v1"
model = "small-model"
"#;

fn load_text(text: &str, env: &Environment) -> Result<aro_config::Config, aro_config::ConfigError> {
    load_str(text, "aro.toml", Path::new("/etc/aro"), env)
}

fn key_of(text: &str, env: &Environment) -> String {
    let err = load_text(text, env).expect_err("configuration should be refused");
    err.key().unwrap_or("<no key>").to_owned()
}

#[test]
fn a_complete_file_loads_with_defaults_filled_in() {
    let config = load_text(VALID, &Environment::empty()).unwrap();
    assert_eq!(config.database.max_connections, 8);
    assert_eq!(config.database.acquire_timeout_secs, 5);
    assert_eq!(config.services.bff.listen.to_string(), "127.0.0.1:7200");
    assert_eq!(config.services.ui.listen.to_string(), "127.0.0.1:7000");
    assert_eq!(
        config.auth.master_key_file,
        Path::new("/etc/aro/keys/master.key")
    );
    assert_eq!(
        config.providers.twilio.unwrap().base_url.as_str(),
        "https://api.twilio.com/"
    );
    assert!(!config.sandbox.enabled);
}

#[test]
fn the_file_is_read_from_disk_relative_to_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aro.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(VALID.as_bytes())
        .unwrap();
    let config = load(&path, &Environment::empty()).unwrap();
    assert_eq!(
        config.auth.master_key_file,
        dir.path().join("keys/master.key")
    );
    let missing = load(&dir.path().join("nope.toml"), &Environment::empty()).unwrap_err();
    assert!(missing.to_string().contains("nope.toml"));
}

#[test]
fn each_kind_of_invalid_value_is_refused_naming_its_key() {
    let env = Environment::empty();
    let cases: &[(&str, &str, &str)] = &[
        (
            "max_connections = 8",
            "max_connections = \"many\"",
            "database.max_connections",
        ),
        (
            "max_connections = 8",
            "max_connections = 0",
            "database.max_connections",
        ),
        (
            "url = \"postgres://aro",
            "url = \"mysql://aro",
            "database.url",
        ),
        (
            "signing_key = \"0123456789abcdef0123456789abcdef-signing\"",
            "signing_key = \"short\"",
            "auth.signing_key",
        ),
        (
            "listen = \"127.0.0.1:7100\"",
            "listen = \"localhost\"",
            "services.core.listen",
        ),
        (
            "url = \"http://127.0.0.1:7100\"",
            "url = \"ftp://127.0.0.1\"",
            "services.core.url",
        ),
        (
            "public_base_url = \"https://aro.example.org\"",
            "public_base_url = \"not a url\"",
            "server.public_base_url",
        ),
        (
            "account_sid = \"AC0123456789abcdef0123456789abcdef\"",
            "account_sid = \"XX1\"",
            "providers.twilio.account_sid",
        ),
        (
            "from_number = \"+14155550100\"",
            "from_number = \"4155550100\"",
            "providers.twilio.from_number",
        ),
        (
            "webhook_secret = \"whsec_abc\"",
            "webhook_secret = \"abc\"",
            "providers.stripe.webhook_secret",
        ),
        (
            "secret_key = \"sk_test_abc\"",
            "secret_key = \"pk_test_abc\"",
            "providers.stripe.secret_key",
        ),
        (
            "model = \"small-model\"",
            "model = \"\"",
            "classifier.llm.model",
        ),
        ("[server]", "[server]\nmystery = 1", "server.mystery"),
    ];
    for (from, to, key) in cases {
        assert!(VALID.contains(from), "fixture lacks {from}");
        let text = VALID.replacen(from, to, 1);
        assert_eq!(&key_of(&text, &env), key, "replacing {from:?} with {to:?}");
    }
    let without_auth = VALID.replace("[auth]", "[auth_missing]");
    let err = load_text(&without_auth, &env).unwrap_err();
    assert!(err.to_string().contains("auth"), "{err}");
}

#[test]
fn broken_toml_reports_the_line_but_not_its_content() {
    let text = VALID.replace(
        "auth_token = \"twilio-auth-token-value\"",
        "auth_token = \"twilio-auth-token-value",
    );
    let err = load_text(&text, &Environment::empty()).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("line"), "{shown}");
    assert!(!shown.contains("twilio-auth-token-value"), "{shown}");
}

#[test]
fn environment_overrides_any_key_by_its_path() {
    let env = Environment::empty()
        .with("ARO_PROVIDERS__TWILIO__AUTH_TOKEN", "from-the-environment")
        .with("ARO_DATABASE__MAX_CONNECTIONS", "3")
        .with("ARO_SANDBOX__ENABLED", "true")
        .with("ARO_SERVICES__BFF__LISTEN", "127.0.0.1:9200")
        .with("ARO_TEST_SOMETHING", "not configuration")
        .with("PATH", "/usr/bin");
    let config = load_text(VALID, &env).unwrap();
    assert_eq!(
        config.providers.twilio.unwrap().auth_token.expose(),
        "from-the-environment"
    );
    assert_eq!(config.database.max_connections, 3);
    assert!(config.sandbox.enabled);
    assert_eq!(config.services.bff.listen.to_string(), "127.0.0.1:9200");
}

#[test]
fn a_bad_environment_value_names_the_key() {
    let env = Environment::empty().with("ARO_SANDBOX__ENABLED", "perhaps");
    assert_eq!(key_of(VALID, &env), "sandbox.enabled");
    let env = Environment::empty().with("ARO_DATABASE__MAX_CONNECTIONS", "-1");
    assert_eq!(key_of(VALID, &env), "database.max_connections");
}

#[test]
fn secrets_never_show_in_debug_output_or_errors() {
    let config = load_text(VALID, &Environment::empty()).unwrap();
    let shown = format!("{config:?}");
    for secret in [
        "hunter2-db-password",
        "0123456789abcdef0123456789abcdef-signing",
        "executor-token-value",
        "twilio-auth-token-value",
        "sk_test_abc",
        "whsec_abc",
        "calendly-api-token",
        "calendly-signing-key",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked into Debug");
    }
    assert!(shown.contains("[redacted]"));
    // A secret with the wrong type is refused without echoing what was there.
    let text = VALID.replace(
        "auth_token = \"twilio-auth-token-value\"",
        "auth_token = [\"twilio-auth-token-value\"]",
    );
    let err = load_text(&text, &Environment::empty())
        .unwrap_err()
        .to_string();
    assert!(err.contains("providers.twilio.auth_token"), "{err}");
    assert!(!err.contains("twilio-auth-token-value"), "{err}");
}

#[test]
fn the_generated_file_loads_back_with_the_sandbox_on() {
    let dir = tempfile::tempdir().unwrap();
    let (generated, text) = generate_for_data_dir(dir.path());
    let path = dir.path().join("aro.toml");
    std::fs::write(&path, &text).unwrap();
    let loaded = load(&path, &Environment::empty()).unwrap();
    assert!(loaded.sandbox.enabled);
    assert_eq!(
        loaded.auth.signing_key.expose(),
        generated.auth.signing_key.expose()
    );
    assert!(
        loaded
            .database
            .url
            .unwrap()
            .expose()
            .starts_with("sqlite://")
    );
    let twilio = loaded.providers.twilio.unwrap();
    assert_eq!(twilio.base_url.as_str(), "http://127.0.0.1:7400/");
    // Two generations never share secrets.
    let (again, _) = generate_for_data_dir(dir.path());
    assert_ne!(again.auth.signing_key, generated.auth.signing_key);
}

#[test]
fn log_filters_are_checked_at_start() {
    let env = Environment::empty();
    for good in [
        "info",
        "WARN",
        "info,aro_core_engine=debug",
        "aro_http::ops=trace, warn",
    ] {
        let text = format!("{VALID}\n[log]\nlevel = \"{good}\"\n");
        let config = load_text(&text, &env).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        assert_eq!(config.log.level, good);
    }
    for bad in [
        "",
        "verbose",
        "info,aro_core_engine=loud",
        "=debug",
        "a b=info",
        "info,",
    ] {
        let text = format!("{VALID}\n[log]\nlevel = \"{bad}\"\n");
        assert_eq!(key_of(&text, &env), "log.level", "{bad:?}");
    }
}
