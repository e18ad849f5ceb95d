//! `aro tenant providers set|list|remove`: a tenant's own Twilio, Stripe or Calendly
//! credentials, through core's admin API (docs/adr/0011-tenant-credentials.md).
//!
//! Secrets never come from the command line, where shell history and `ps` would keep them:
//! each is read from the environment variable named by its `--…-env` flag, or else from
//! standard input, one line per secret in the provider's order (Twilio: the auth token;
//! Stripe: the secret key, then the webhook secret; Calendly: the API token, then the webhook
//! signing key). Identifiers (an Account SID, a sending number) are ordinary flags. What is
//! printed back is core's redacted view: at most the last four characters of a secret.

use crate::admin_client::CoreClient;
use crate::common::ConfigArgs;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ProvidersArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ProviderName {
    Twilio,
    Stripe,
    Calendly,
}

impl ProviderName {
    fn as_str(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::Stripe => "stripe",
            Self::Calendly => "calendly",
        }
    }
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Set (or rotate) a tenant's own credentials for a provider, e.g.
    /// `TOKEN=… aro tenant providers set clinic-north twilio --account-sid AC… --auth-token-env TOKEN --from-number +14155550100`.
    /// Secrets without their `--…-env` flag are read from standard input, one per line.
    Set {
        /// The tenant.
        tenant: String,
        provider: ProviderName,
        /// Twilio: the Account SID (`AC…`).
        #[arg(long)]
        account_sid: Option<String>,
        /// Twilio: the variable holding the auth token.
        #[arg(long, value_name = "VAR")]
        auth_token_env: Option<String>,
        /// Twilio: the sending number (E.164).
        #[arg(long)]
        from_number: Option<String>,
        /// Twilio: a Messaging Service (`MG…`) instead of, or winning over, `--from-number`.
        #[arg(long)]
        messaging_service_sid: Option<String>,
        /// Stripe: the variable holding the secret (`sk_…`) or restricted (`rk_…`) key.
        #[arg(long, value_name = "VAR")]
        secret_key_env: Option<String>,
        /// Stripe: the variable holding the tenant's webhook endpoint signing secret (`whsec_…`).
        #[arg(long, value_name = "VAR")]
        webhook_secret_env: Option<String>,
        /// Calendly: the variable holding the API token.
        #[arg(long, value_name = "VAR")]
        api_token_env: Option<String>,
        /// Calendly: the variable holding the webhook signing key.
        #[arg(long, value_name = "VAR")]
        webhook_signing_key_env: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Which credentials each provider uses for a tenant (its own, redacted, or the installation's).
    List {
        tenant: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Remove a tenant's own credentials for a provider: the installation's apply again.
    Remove {
        tenant: String,
        provider: ProviderName,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// One secret field: its name in the API, the flag naming its variable, and that variable.
struct SecretField<'a> {
    field: &'static str,
    flag: &'static str,
    env: Option<&'a str>,
}

pub async fn run(args: ProvidersArgs) -> Result<ExitCode> {
    match args.action {
        Action::Set {
            tenant,
            provider,
            account_sid,
            auth_token_env,
            from_number,
            messaging_service_sid,
            secret_key_env,
            webhook_secret_env,
            api_token_env,
            webhook_signing_key_env,
            config,
        } => {
            // Flags of another provider are a mistake worth saying, not ignoring.
            let given = |flag: &'static str, value: &Option<String>| value.as_ref().map(|_| flag);
            let twilio_flags = [
                given("--account-sid", &account_sid),
                given("--auth-token-env", &auth_token_env),
                given("--from-number", &from_number),
                given("--messaging-service-sid", &messaging_service_sid),
            ];
            let stripe_flags = [
                given("--secret-key-env", &secret_key_env),
                given("--webhook-secret-env", &webhook_secret_env),
            ];
            let calendly_flags = [
                given("--api-token-env", &api_token_env),
                given("--webhook-signing-key-env", &webhook_signing_key_env),
            ];
            let others: Vec<&Option<&str>> = match provider {
                ProviderName::Twilio => stripe_flags.iter().chain(&calendly_flags).collect(),
                ProviderName::Stripe => twilio_flags.iter().chain(&calendly_flags).collect(),
                ProviderName::Calendly => twilio_flags.iter().chain(&stripe_flags).collect(),
            };
            let foreign: Vec<&str> = others.into_iter().flatten().copied().collect();
            if !foreign.is_empty() {
                bail!(
                    "{} {} not for {}",
                    foreign.join(", "),
                    if foreign.len() == 1 { "is" } else { "are" },
                    provider.as_str()
                );
            }
            let mut body = Map::new();
            let secrets = match provider {
                ProviderName::Twilio => {
                    let Some(sid) = account_sid else {
                        bail!("twilio needs --account-sid");
                    };
                    body.insert("accountSid".into(), Value::String(sid));
                    if let Some(n) = from_number {
                        body.insert("fromNumber".into(), Value::String(n));
                    }
                    if let Some(m) = messaging_service_sid {
                        body.insert("messagingServiceSid".into(), Value::String(m));
                    }
                    vec![SecretField {
                        field: "authToken",
                        flag: "--auth-token-env",
                        env: auth_token_env.as_deref(),
                    }]
                }
                ProviderName::Stripe => vec![
                    SecretField {
                        field: "secretKey",
                        flag: "--secret-key-env",
                        env: secret_key_env.as_deref(),
                    },
                    SecretField {
                        field: "webhookSecret",
                        flag: "--webhook-secret-env",
                        env: webhook_secret_env.as_deref(),
                    },
                ],
                ProviderName::Calendly => vec![
                    SecretField {
                        field: "apiToken",
                        flag: "--api-token-env",
                        env: api_token_env.as_deref(),
                    },
                    SecretField {
                        field: "webhookSigningKey",
                        flag: "--webhook-signing-key-env",
                        env: webhook_signing_key_env.as_deref(),
                    },
                ],
            };
            for (field, value) in read_secrets(provider, &secrets)? {
                body.insert(field.into(), Value::String(value));
            }
            let config = config.load()?;
            let client = CoreClient::new(&config)?;
            let path = format!(
                "/v1/admin/tenants/{}/providers/{}",
                segment(&tenant)?,
                provider.as_str()
            );
            let answer = client
                .call(reqwest::Method::PUT, &path, Some(&Value::Object(body)))
                .await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(ExitCode::SUCCESS)
        }
        Action::List { tenant, config } => {
            let config = config.load()?;
            let client = CoreClient::new(&config)?;
            let path = format!("/v1/admin/tenants/{}/providers", segment(&tenant)?);
            let answer = client.call(reqwest::Method::GET, &path, None).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(ExitCode::SUCCESS)
        }
        Action::Remove {
            tenant,
            provider,
            config,
        } => {
            let config = config.load()?;
            let client = CoreClient::new(&config)?;
            let path = format!(
                "/v1/admin/tenants/{}/providers/{}",
                segment(&tenant)?,
                provider.as_str()
            );
            client.call(reqwest::Method::DELETE, &path, None).await?;
            println!(
                "removed: tenant {tenant} uses the installation's {} credentials again",
                provider.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A tenant id as one path segment: tenant ids are `a-z0-9_-`, anything else cannot name one.
fn segment(tenant: &str) -> Result<&str> {
    if tenant.is_empty()
        || !tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        bail!("{tenant:?} is not a tenant id (a-z, 0-9, '-', '_')");
    }
    Ok(tenant)
}

/// Each secret from its variable, or else from standard input (one line each, in order).
fn read_secrets(
    provider: ProviderName,
    secrets: &[SecretField<'_>],
) -> Result<Vec<(&'static str, String)>> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut lines = stdin.lock();
    let mut out = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let value = match secret.env {
            Some(var) => std::env::var(var).with_context(|| {
                format!(
                    "{} names {var}, which is not set (or not UTF-8)",
                    secret.flag
                )
            })?,
            None => {
                if interactive {
                    // Typed text is echoed: prefer the variable on shared screens.
                    eprint!(
                        "{} {} (or use {}): ",
                        provider.as_str(),
                        secret.field,
                        secret.flag
                    );
                    std::io::stderr().flush().ok();
                }
                let mut line = String::new();
                lines
                    .read_line(&mut line)
                    .context("reading a secret from standard input")?;
                let line = line.trim_end_matches(['\n', '\r']).to_owned();
                if line.is_empty() {
                    bail!(
                        "no {} given: set the variable named by {}, or write it on standard input",
                        secret.field,
                        secret.flag
                    );
                }
                line
            }
        };
        out.push((secret.field, value));
    }
    Ok(out)
}
