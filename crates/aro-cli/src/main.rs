//! `aro`: the operator's command. Each subcommand lives in its own module; this file only parses
//! arguments and turns errors into a readable message and a non-zero exit status.

mod admin_client;
mod classify;
mod clock;
mod common;
mod events;
mod migrate;
mod tenant;
mod tenant_providers;
mod token;
mod up;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "aro",
    version,
    about = "ARO, the Appointment Revenue Optimizer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all four services in one process on the embedded SQLite default.
    Up(up::UpArgs),
    /// Apply, revert or list database migrations.
    Migrate(migrate::MigrateArgs),
    /// Service tokens.
    Token(token::TokenArgs),
    /// Tenants (clinics).
    Tenant(tenant::TenantArgs),
    /// The sandbox's business clock.
    Clock(clock::ClockArgs),
    /// The event log.
    Events(events::EventsArgs),
    /// How ARO reads a patient's reply.
    Classify(classify::ClassifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aro: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Token(args) => token::run(args),
            Command::Tenant(args) => tenant::run(args).await,
            Command::Clock(args) => clock::run(args).await,
            Command::Events(args) => events::run(args).await,
            Command::Classify(args) => classify::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aro: {}", readable(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: many of our error types already
/// include their cause in their own message, which `{:#}` would repeat.
fn readable(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[derive(Debug, thiserror::Error)]
    #[error("database: {0}")]
    struct Wrapping(#[from] std::io::Error);

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let inner = std::io::Error::other("pool timed out");
        let error = anyhow::Error::from(Wrapping(inner)).context("opening the database");
        assert_eq!(
            readable(&error),
            "opening the database: database: pool timed out"
        );
        let plain = anyhow::anyhow!("no such tenant").context("sending the command");
        assert_eq!(readable(&plain), "sending the command: no such tenant");
    }
}
