//! `aro classify "<text>"`: how ARO reads a reply, offline: the rules with the tenant's reply
//! codes (`--data-dir/--config` and `--tenant`), else the built-in healthcare pack's codes;
//! `--llm` asks the configured OpenAI-compatible model when the rules are not confident.

use anyhow::{Context, Result, bail};
use aro_replies::ReplyCodes;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// The reply to classify.
    text: String,
    /// The patient's language, if known (en, es).
    #[arg(long)]
    lang: Option<String>,
    /// Use this tenant's reply codes (needs --data-dir or --config).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Ask the configured LLM ([classifier.llm]) when the rules are below the threshold.
    #[arg(long)]
    llm: bool,
}

pub async fn run(args: ClassifyArgs) -> Result<ExitCode> {
    let config_path = args
        .config
        .clone()
        .or_else(|| args.data_dir.as_ref().map(|d| d.join("aro.toml")));
    let config = match &config_path {
        Some(p) => Some(
            aro_config::load(p, &aro_config::Environment::from_process())
                .with_context(|| format!("reading {}", p.display()))?,
        ),
        None => None,
    };
    let (codes, threshold) = match (&config, &args.tenant) {
        (Some(config), Some(tenant)) => {
            let store = aro_core_engine::storage::open(config)
                .await
                .context("opening the database")?;
            let id = tenant.clone();
            let found = store
                .read(move |tx| Box::pin(async move { tx.get_tenant(&id).await }))
                .await;
            store.close().await;
            let Some((t, _)) = found.context("reading the tenant")? else {
                bail!("no tenant {tenant:?}");
            };
            let codes: ReplyCodes = serde_json::to_value(&t.config.reply_codes)
                .and_then(serde_json::from_value)
                .unwrap_or_default();
            let codes = if codes.is_empty() {
                ReplyCodes::healthcare_default()
            } else {
                codes
            };
            (codes, t.config.policies.classification_threshold as f32)
        }
        (None, Some(_)) => bail!("--tenant needs --data-dir or --config"),
        _ => (
            ReplyCodes::healthcare_default(),
            aro_replies::DEFAULT_THRESHOLD,
        ),
    };
    let mut result = aro_replies::classify(&args.text, args.lang.as_deref(), &codes);
    if args.llm && !result.is_confident(threshold) {
        let Some(llm) = config.as_ref().and_then(|c| c.classifier.llm.clone()) else {
            bail!("--llm needs a [classifier.llm] section in the configuration");
        };
        let http = aro_integrations::http_client().context("HTTP client")?;
        let client =
            aro_integrations::llm::LlmClient::new(&llm, http, aro_resilience::Resilient::default());
        result = client
            .classify_reply(&args.text, args.lang.as_deref())
            .await
            .map_err(|e| anyhow::anyhow!("the LLM could not classify the reply: {e}"))?;
    }
    println!("{}", serde_json::to_string(&result)?);
    Ok(ExitCode::SUCCESS)
}
