//! `aro tenant add`: a new clinic, created by the running core-engine; `aro tenant providers`:
//! its own provider credentials ([`crate::tenant_providers`]).

use crate::admin_client::CoreClient;
use crate::common::ConfigArgs;
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct TenantArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Create a tenant: `aro tenant add clinic-north --name "North Clinic" --timezone America/Chicago`.
    Add {
        /// Lower-case id used in URLs and tokens (a-z, 0-9, '-', '_').
        id: String,
        #[arg(long)]
        name: String,
        /// IANA time zone of the clinic.
        #[arg(long)]
        timezone: String,
        /// Phone region for numbers written without a country code.
        #[arg(long, default_value = "US")]
        region: String,
        /// Default language of patient texts.
        #[arg(long, default_value = "en")]
        language: String,
        /// The clinic's phone number, for help texts and staff alerts.
        #[arg(long)]
        clinic_phone: Option<String>,
        /// Where review requests send patients.
        #[arg(long)]
        review_link: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// A tenant's own Twilio, Stripe or Calendly credentials: `set`, `list`, `remove`.
    Providers(crate::tenant_providers::ProvidersArgs),
}

pub async fn run(args: TenantArgs) -> Result<ExitCode> {
    match args.action {
        Action::Add {
            id,
            name,
            timezone,
            region,
            language,
            clinic_phone,
            review_link,
            config,
        } => {
            let config = config.load()?;
            let client = CoreClient::new(&config)?;
            let body = json!({"id": id, "name": name, "timezone": timezone, "region": region, "language": language,
                              "clinicPhone": clinic_phone, "reviewLink": review_link});
            let created = client
                .call(reqwest::Method::POST, "/v1/admin/tenants", Some(&body))
                .await?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            Ok(ExitCode::SUCCESS)
        }
        Action::Providers(args) => crate::tenant_providers::run(args).await,
    }
}
