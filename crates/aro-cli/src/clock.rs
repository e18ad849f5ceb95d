//! `aro clock advance|set|now`: the sandbox's business clock (DESIGN.md "Time").

use crate::admin_client::CoreClient;
use crate::common::ConfigArgs;
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ClockArgs {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Move business time forward, firing everything that falls due: `aro clock advance 25h`.
    Advance { duration: String },
    /// Move business time to an instant (never backwards): `aro clock set 2030-03-14T09:00:00Z`.
    Set { time: String },
    /// Print business time.
    Now,
}

pub async fn run(args: ClockArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    let client = CoreClient::new(&config)?;
    let answer = match args.action {
        Action::Advance { duration } => {
            client
                .call(
                    reqwest::Method::POST,
                    "/v1/admin/clock",
                    Some(&json!({"advance": duration})),
                )
                .await?
        }
        Action::Set { time } => {
            client
                .call(
                    reqwest::Method::POST,
                    "/v1/admin/clock",
                    Some(&json!({"set": time})),
                )
                .await?
        }
        Action::Now => {
            client
                .call(reqwest::Method::GET, "/v1/admin/clock", None)
                .await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    if answer.get("settled") == Some(&json!(false)) {
        eprintln!("aro: the work started by this advance had not settled after 30 s");
    }
    Ok(ExitCode::SUCCESS)
}
