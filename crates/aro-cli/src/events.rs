//! `aro events rebuild`: appointments, their booking aliases and patients (details and risk
//! counters) forgotten and recreated from the event log alone, in one transaction. Sends nothing.

use crate::common::ConfigArgs;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Recreate appointments, their booking aliases and patients (details, risk) from the events.
    Rebuild,
}

pub async fn run(args: EventsArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    let store = aro_core_engine::storage::open(&config)
        .await
        .context("opening the database")?;
    let result = match args.action {
        Action::Rebuild => aro_workflow::rebuild::rebuild(&store)
            .await
            .context("rebuilding the read models"),
    };
    store.close().await;
    let report = result?;
    println!(
        "rebuilt from {} events: {} appointments, {} booking aliases, {} patients",
        report.events, report.appointments, report.aliases, report.customers
    );
    Ok(ExitCode::SUCCESS)
}
