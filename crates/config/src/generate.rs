//! The configuration `aro up` writes on first start: generated secrets, SQLite in the data
//! folder, and the sandbox standing in for the providers until real credentials are set.

use crate::model::*;
use crate::secret::Secret;
use base64::Engine;
use rand::RngCore;
use std::path::Path;

/// Provider secrets for the sandbox, generated like real ones so every signature path is used.
#[derive(Debug, Clone)]
pub struct SandboxSecrets {
    pub twilio: TwilioConfig,
    pub stripe: StripeConfig,
    pub calendly: CalendlyConfig,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn random_hex<const N: usize>() -> String {
    hex::encode(random_bytes::<N>())
}

impl SandboxSecrets {
    pub fn generate(sandbox_url: &url::Url) -> Self {
        Self {
            twilio: TwilioConfig {
                account_sid: format!("AC{}", random_hex::<16>()),
                auth_token: Secret::new(random_hex::<16>()),
                // Twilio's documented test "from" number.
                from_number: Some("+15005550006".to_owned()),
                messaging_service_sid: None,
                base_url: sandbox_url.clone(),
            },
            stripe: StripeConfig {
                secret_key: Secret::new(format!("sk_test_{}", random_hex::<16>())),
                webhook_secret: Secret::new(format!("whsec_{}", random_hex::<16>())),
                base_url: sandbox_url.clone(),
            },
            calendly: CalendlyConfig {
                api_token: Secret::new(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
                ),
                webhook_signing_key: Secret::new(random_hex::<32>()),
                base_url: sandbox_url.clone(),
            },
        }
    }
}

/// A complete configuration for a fresh data folder and its TOML text. `data_dir` should be
/// absolute so the file keeps working from any working directory.
pub fn generate_for_data_dir(data_dir: &Path) -> (Config, String) {
    let sandbox = SandboxConfig {
        enabled: true,
        ..SandboxConfig::default()
    };
    let sandbox_url = url::Url::parse(&format!("http://{}", sandbox.listen))
        .unwrap_or_else(|_| defaults::core_url());
    let secrets = SandboxSecrets::generate(&sandbox_url);
    let config = Config {
        database: DatabaseConfig {
            url: Some(Secret::new(format!(
                "sqlite://{}",
                data_dir.join("aro.db").display()
            ))),
            ..DatabaseConfig::default()
        },
        auth: AuthConfig {
            signing_key: Secret::new(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<48>()),
            ),
            master_key_file: "master.key".into(),
        },
        services: ServicesConfig::default(),
        server: ServerConfig::default(),
        sandbox,
        providers: ProvidersConfig {
            twilio: Some(secrets.twilio),
            stripe: Some(secrets.stripe),
            calendly: Some(secrets.calendly),
        },
        classifier: ClassifierConfig::default(),
        log: LogConfig::default(),
    };
    let body = toml::to_string_pretty(&config).unwrap_or_default();
    let text = format!(
        "# ARO configuration, written by `aro up` on first start. Keep this file private (mode 0600):\n\
         # it holds secrets. Every key can be overridden from the environment as ARO_<SECTION>__<KEY>,\n\
         # e.g. ARO_PROVIDERS__TWILIO__AUTH_TOKEN. The sandbox stands in for Twilio, Stripe and\n\
         # Calendly until real credentials replace the generated ones below.\n\n{body}"
    );
    (config, text)
}
