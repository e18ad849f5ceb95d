//! `aro token create`: a service token (JWT), printed alone on stdout.

use crate::common::ConfigArgs;
use anyhow::{Context, Result, bail};
use aro_security::tokens::{Scope, TenantGrant, TokenSigner};
use clap::{Args, Subcommand};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Create a token: `aro token create --tenant default --scopes commands:write,events:read --ttl 1h`.
    Create {
        /// A tenant the token may act for (repeatable), or '*' for all.
        #[arg(long = "tenant", required = true)]
        tenants: Vec<String>,
        /// Comma-separated scopes: commands:write, events:read, executions:claim, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Lifetime, e.g. 30m, 1h, 30d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The service the token is for.
        #[arg(long, default_value = "core")]
        audience: String,
        /// Who the token identifies, for the audit trail.
        #[arg(long, default_value = "operator")]
        subject: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn run(args: TokenArgs) -> Result<ExitCode> {
    match args.action {
        Action::Create {
            tenants,
            scopes,
            ttl,
            audience,
            subject,
            config,
        } => {
            let config = config.load()?;
            let grant = if tenants.iter().any(|t| t == "*") {
                if tenants.len() > 1 {
                    bail!("--tenant '*' cannot be combined with named tenants");
                }
                TenantGrant::All
            } else {
                for t in &tenants {
                    aro_domain::ids::TenantId::parse(t)
                        .with_context(|| format!("--tenant {t:?}"))?;
                }
                TenantGrant::Only(tenants)
            };
            let scopes = scopes
                .iter()
                .map(|s| Scope::from_str(s.trim()).map_err(|_| anyhow::anyhow!("unknown scope {s:?} (commands:write, events:read, executions:claim, admin)")))
                .collect::<Result<Vec<_>>>()?;
            let ttl: Duration =
                humantime::parse_duration(&ttl).with_context(|| format!("--ttl {ttl:?}"))?;
            let signer = TokenSigner::new(config.auth.signing_key.expose().as_bytes())
                .context("auth.signing_key")?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let token = signer
                .issue(&subject, &audience, &scopes, grant, ttl, now)
                .context("signing the token")?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
